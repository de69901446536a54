//! The figures: one row per (mode, concurrency) comparing the gateway run with the direct run at
//! the same concurrency, the PASS/MISS verdict per target, as a table and as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{Backend, load::RunResult};

/// Gateway CPU per proxied call must not exceed this (µs).
pub const CPU_TARGET_US: f64 = 100.0;
/// Added p50 latency at concurrency 1 must not exceed this (µs).
pub const ADDED_P50_TARGET_US: f64 = 150.0;
/// Through-gateway throughput at concurrency 64 must be at least this fraction of direct.
pub const RATIO_TARGET: f64 = 0.45;
/// MCP backend: gateway CPU per proxied call at concurrency 64 at most this far above the relay
/// floor's (µs).
pub const MCP_OVER_RELAY_TARGET_US: f64 = 40.0;
/// MCP backend: gateway CPU per proxied call at concurrency 1 at most this multiple of the relay
/// floor's.
pub const MCP_RELAY_MULTIPLE_TARGET: f64 = 1.5;
/// The scenario name of the relay floor's rows (`manifold-relay`; no targets apply).
pub const RELAY_SCENARIO: &str = "relay";

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub calls: u64,
    pub failures: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub req_per_s: f64,
    pub elapsed_s: f64,
    /// CPU time of the gateway process during the run (µs) — includes the in-process emulator.
    pub gateway_process_cpu_us: f64,
    /// The same, per call.
    pub gateway_process_cpu_us_per_call: f64,
    /// CPU time of the load generator per call (µs).
    pub client_cpu_us_per_call: f64,
    pub first_failure: Option<String>,
}

impl Side {
    pub fn of(run: &RunResult) -> Self {
        Self {
            calls: run.calls(),
            failures: run.failures,
            p50_us: run.percentile_us(0.50),
            p99_us: run.percentile_us(0.99),
            req_per_s: run.per_second(),
            elapsed_s: run.elapsed.as_secs_f64(),
            gateway_process_cpu_us: run.gateway_cpu.as_secs_f64() * 1e6,
            gateway_process_cpu_us_per_call: run.per_call_us(run.gateway_cpu),
            client_cpu_us_per_call: run.per_call_us(run.client_cpu),
            first_failure: run.first_failure.clone(),
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `stateless` (2026-07-28, no session) or `session` (2025-11-25).
    pub scenario: String,
    pub concurrency: usize,
    pub direct: Side,
    pub gateway: Side,
    /// Gateway p50 − direct p50 (µs).
    pub added_p50_us: f64,
    /// Gateway req/s ÷ direct req/s.
    pub throughput_ratio: f64,
    /// The gateway's own CPU per proxied call (µs): the gateway process's CPU during the gateway
    /// run, minus what the in-process emulator costs (the process's CPU per call during the
    /// direct run × calls), divided by calls. On a relay row, the relay's CPU per call.
    pub gateway_cpu_us_per_call: f64,
    /// On a gateway row: its CPU per call minus the relay's at the same concurrency — the part
    /// that is the gateway's own work rather than the two HTTP hops every gateway makes.
    pub cpu_over_relay_us_per_call: Option<f64>,
}

impl Row {
    pub fn new(scenario: &str, concurrency: usize, direct: Side, gateway: Side) -> Self {
        let emulator_us = direct.gateway_process_cpu_us_per_call * gateway.calls as f64;
        let own_us = gateway.gateway_process_cpu_us - emulator_us;
        Self {
            scenario: scenario.to_owned(),
            concurrency,
            added_p50_us: gateway.p50_us - direct.p50_us,
            throughput_ratio: gateway.req_per_s / direct.req_per_s.max(1e-9),
            gateway_cpu_us_per_call: own_us / gateway.calls.max(1) as f64,
            cpu_over_relay_us_per_call: None,
            direct,
            gateway,
        }
    }
}

/// One target checked against one row.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub target: String,
    pub scenario: String,
    pub concurrency: usize,
    pub measured: f64,
    pub limit: f64,
    pub pass: bool,
}

/// The whole result, as written to `--json-out`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub gateway_bin: String,
    /// `linear` or `mcp`.
    pub backend: String,
    pub machine_cpus: usize,
    pub warmup_calls: u64,
    pub rows: Vec<Row>,
    pub targets: Vec<Verdict>,
    pub failures: u64,
    pub notes: Vec<String>,
}

/// Sets each gateway row's CPU over the relay row of its concurrency, where there is one.
pub fn compare_with_relay(rows: &mut [Row]) {
    let floors: Vec<(usize, f64)> = rows
        .iter()
        .filter(|row| row.scenario == RELAY_SCENARIO)
        .map(|row| (row.concurrency, row.gateway_cpu_us_per_call))
        .collect();
    for row in rows.iter_mut().filter(|row| row.scenario != RELAY_SCENARIO) {
        row.cpu_over_relay_us_per_call = floors
            .iter()
            .find(|(concurrency, _)| *concurrency == row.concurrency)
            .map(|(_, floor)| row.gateway_cpu_us_per_call - floor);
    }
}

/// The verdicts of `backend`'s targets, on gateway rows (not the relay's).
pub fn verdicts(rows: &[Row], backend: Backend) -> Vec<Verdict> {
    match backend {
        Backend::Linear => linear_verdicts(rows),
        Backend::Mcp => mcp_verdicts(rows),
    }
}

/// Linear: CPU per call on every row, added p50 on concurrency-1 rows, throughput ratio on
/// concurrency-64 rows.
fn linear_verdicts(rows: &[Row]) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for row in rows.iter().filter(|row| row.scenario != RELAY_SCENARIO) {
        let mut check = |target: &str, measured: f64, limit: f64, pass: bool| {
            verdicts.push(Verdict {
                target: target.to_owned(),
                scenario: row.scenario.clone(),
                concurrency: row.concurrency,
                measured,
                limit,
                pass,
            });
        };
        check(
            "gateway CPU per proxied call <= 100 us",
            row.gateway_cpu_us_per_call,
            CPU_TARGET_US,
            row.gateway_cpu_us_per_call <= CPU_TARGET_US,
        );
        if row.concurrency == 1 {
            check(
                "added p50 <= 150 us at concurrency 1",
                row.added_p50_us,
                ADDED_P50_TARGET_US,
                row.added_p50_us <= ADDED_P50_TARGET_US,
            );
        }
        if row.concurrency == 64 {
            check(
                "gateway throughput >= 0.45 x direct at concurrency 64",
                row.throughput_ratio,
                RATIO_TARGET,
                row.throughput_ratio >= RATIO_TARGET,
            );
        }
    }
    verdicts
}

/// MCP: both targets are relative to the relay floor of the same concurrency, so a row without
/// one (no relay lane) gets no verdict.
fn mcp_verdicts(rows: &[Row]) -> Vec<Verdict> {
    let floor_at = |concurrency: usize| {
        rows.iter()
            .find(|row| row.scenario == RELAY_SCENARIO && row.concurrency == concurrency)
            .map(|row| row.gateway_cpu_us_per_call)
    };
    let mut verdicts = Vec::new();
    for row in rows.iter().filter(|row| row.scenario != RELAY_SCENARIO) {
        let Some(floor) = floor_at(row.concurrency) else {
            continue;
        };
        let (target, measured, limit) = match row.concurrency {
            64 => (
                "gateway CPU <= relay + 40 us per call at concurrency 64",
                row.gateway_cpu_us_per_call - floor,
                MCP_OVER_RELAY_TARGET_US,
            ),
            1 => (
                "gateway CPU <= 1.5 x relay per call at concurrency 1",
                row.gateway_cpu_us_per_call / floor.max(1e-9),
                MCP_RELAY_MULTIPLE_TARGET,
            ),
            _ => continue,
        };
        verdicts.push(Verdict {
            target: target.to_owned(),
            scenario: row.scenario.clone(),
            concurrency: row.concurrency,
            measured,
            limit,
            pass: measured <= limit,
        });
    }
    verdicts
}

/// The report as text: the table, the raw CPU figures, the verdicts and the notes.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let header = [
        "scenario",
        "conc",
        "direct p50/p99 µs",
        "gateway p50/p99 µs",
        "added p50 µs",
        "direct req/s",
        "gateway req/s",
        "ratio",
        "gw CPU µs/call",
        "over relay µs",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for row in &report.rows {
        lines.push(vec![
            row.scenario.clone(),
            row.concurrency.to_string(),
            format!("{:.0} / {:.0}", row.direct.p50_us, row.direct.p99_us),
            format!("{:.0} / {:.0}", row.gateway.p50_us, row.gateway.p99_us),
            format!("{:.0}", row.added_p50_us),
            format!("{:.0}", row.direct.req_per_s),
            format!("{:.0}", row.gateway.req_per_s),
            format!("{:.2}", row.throughput_ratio),
            format!("{:.1}", row.gateway_cpu_us_per_call),
            row.cpu_over_relay_us_per_call
                .map_or_else(|| "-".to_owned(), |over| format!("{over:.1}")),
        ]);
    }
    table(&mut out, &lines);

    out.push_str("\nGateway-process CPU per call, raw (the direct run's is the idle gateway's):\n");
    let mut raw: Vec<Vec<String>> = vec![
        [
            "scenario",
            "conc",
            "calls d/g",
            "failures d/g",
            "proc CPU/call direct µs",
            "proc CPU/call gateway µs",
            "gw own CPU/call µs",
            "bench client CPU/call d/g µs",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
    ];
    for row in &report.rows {
        raw.push(vec![
            row.scenario.clone(),
            row.concurrency.to_string(),
            format!("{}/{}", row.direct.calls, row.gateway.calls),
            format!("{}/{}", row.direct.failures, row.gateway.failures),
            format!("{:.1}", row.direct.gateway_process_cpu_us_per_call),
            format!("{:.1}", row.gateway.gateway_process_cpu_us_per_call),
            format!("{:.1}", row.gateway_cpu_us_per_call),
            format!(
                "{:.1}/{:.1}",
                row.direct.client_cpu_us_per_call, row.gateway.client_cpu_us_per_call
            ),
        ]);
    }
    table(&mut out, &raw);

    out.push_str("\nTargets:\n");
    for verdict in &report.targets {
        let _ = writeln!(
            out,
            "  {}  {:<55} {:>9} conc {:>2}: measured {:.2}, limit {:.2}",
            if verdict.pass { "PASS" } else { "MISS" },
            verdict.target,
            verdict.scenario,
            verdict.concurrency,
            verdict.measured,
            verdict.limit,
        );
    }
    if !report.notes.is_empty() {
        out.push_str("\nNotes:\n");
        for note in &report.notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    out
}

fn table(out: &mut String, lines: &[Vec<String>]) {
    let columns = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|line| line.get(c).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, width))| {
                let pad = width.saturating_sub(cell.chars().count());
                // Text columns left-aligned, figures right-aligned.
                if c == 0 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("-|-"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(calls: u64, cpu_us: f64) -> Side {
        Side {
            calls,
            failures: 0,
            p50_us: 100.0,
            p99_us: 200.0,
            req_per_s: 1000.0,
            elapsed_s: 1.0,
            gateway_process_cpu_us: cpu_us,
            gateway_process_cpu_us_per_call: cpu_us / calls as f64,
            client_cpu_us_per_call: 0.0,
            first_failure: None,
        }
    }

    /// A row whose lane spent `per_call` µs of CPU on each of 1000 calls (idle direct run).
    fn row(scenario: &str, concurrency: usize, per_call: f64) -> Row {
        Row::new(
            scenario,
            concurrency,
            side(1000, 0.0),
            side(1000, per_call * 1000.0),
        )
    }

    #[test]
    fn mcp_targets_compare_each_mode_with_the_relay_of_its_concurrency() {
        let rows = [
            row(RELAY_SCENARIO, 1, 100.0),
            row("stateless", 1, 149.0),
            row("session", 1, 151.0),
            row(RELAY_SCENARIO, 64, 70.0),
            row("stateless", 64, 109.0),
            row("session", 64, 111.0),
        ];
        let verdicts = verdicts(&rows, Backend::Mcp);
        let passed: Vec<(&str, usize, bool)> = verdicts
            .iter()
            .map(|v| (v.scenario.as_str(), v.concurrency, v.pass))
            .collect();
        assert_eq!(
            passed,
            [
                ("stateless", 1, true),
                ("session", 1, false),
                ("stateless", 64, true),
                ("session", 64, false),
            ]
        );
        assert!((verdicts[1].measured - 1.51).abs() < 1e-9);
        assert!((verdicts[3].measured - 41.0).abs() < 1e-9);
    }

    #[test]
    fn mcp_targets_are_not_judged_without_a_relay_row() {
        let rows = [row("stateless", 1, 149.0), row("stateless", 64, 109.0)];
        assert!(verdicts(&rows, Backend::Mcp).is_empty());
    }

    #[test]
    fn linear_targets_stay_absolute() {
        let rows = [row(RELAY_SCENARIO, 64, 70.0), row("stateless", 64, 99.0)];
        let verdicts = verdicts(&rows, Backend::Linear);
        assert_eq!(verdicts.len(), 2);
        assert!(verdicts.iter().all(|v| v.scenario == "stateless" && v.pass));
    }
}
