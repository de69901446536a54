//! Per-tool call counters and latency histograms, for `/metrics` in Prometheus text format.
//! Recording is a map lookup and a few relaxed atomic adds, cheap enough for every call.

use std::{
    fmt::Write,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use dashmap::DashMap;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The outcomes a call ends with, as the audit log names them.
const OUTCOMES: [&str; 9] = [
    "ok",
    "error",
    "cancelled",
    "denied",
    "quota_exceeded",
    "not_connected",
    "invalid_arguments",
    "abandoned",
    "audit_unavailable",
];

/// Calls per tool and outcome, and their latency, since the process started.
#[derive(Debug, Default)]
pub struct CallMetrics {
    tools: DashMap<String, Arc<ToolStats>>,
}

#[derive(Debug, Default)]
struct ToolStats {
    outcomes: [AtomicU64; OUTCOMES.len()],
    /// Calls that took at most `BUCKETS[i]` and more than `BUCKETS[i - 1]`.
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

// === impl CallMetrics ===

impl CallMetrics {
    /// Counts one call of `tool` that ended with `outcome` after `elapsed`.
    pub fn record(&self, tool: &str, outcome: &str, elapsed: Duration) {
        let stats = match self.tools.get(tool) {
            Some(stats) => stats.clone(),
            None => self.tools.entry(tool.to_owned()).or_default().clone(),
        };
        if let Some(index) = OUTCOMES.iter().position(|known| *known == outcome) {
            stats.outcomes[index].fetch_add(1, Ordering::Relaxed);
        }
        let seconds = elapsed.as_secs_f64();
        if let Some(index) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            stats.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        stats.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        stats.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Appends the counters and histograms, tools in name order.
    pub fn render(&self, out: &mut String) {
        let mut tools: Vec<(String, Arc<ToolStats>)> = self
            .tools
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect();
        tools.sort_by(|a, b| a.0.cmp(&b.0));
        out.push_str(
            "# HELP manifold_tool_calls_total Tool calls, by tool and outcome.\n\
             # TYPE manifold_tool_calls_total counter\n",
        );
        for (tool, stats) in &tools {
            let tool = escape(tool);
            for (outcome, count) in OUTCOMES.iter().zip(&stats.outcomes) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "manifold_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} {count}"
                    );
                }
            }
        }
        out.push_str(
            "# HELP manifold_tool_call_duration_seconds Time from a call's arrival to its answer.\n\
             # TYPE manifold_tool_call_duration_seconds histogram\n",
        );
        for (tool, stats) in &tools {
            let tool = escape(tool);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(&stats.buckets) {
                cumulative += count.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "manifold_tool_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = stats.count.load(Ordering::Relaxed);
            let sum = stats.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "manifold_tool_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"+Inf\"}} {count}\n\
                 manifold_tool_call_duration_seconds_sum{{tool=\"{tool}\"}} {sum}\n\
                 manifold_tool_call_duration_seconds_count{{tool=\"{tool}\"}} {count}"
            );
        }
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_and_fills_cumulative_buckets() {
        let metrics = CallMetrics::default();
        metrics.record("a_tool", "ok", Duration::from_millis(3));
        metrics.record("a_tool", "ok", Duration::from_millis(40));
        metrics.record("a_tool", "denied", Duration::from_micros(10));
        metrics.record("b_tool", "error", Duration::from_secs(30));
        let mut out = String::new();
        metrics.render(&mut out);
        for line in [
            "manifold_tool_calls_total{tool=\"a_tool\",outcome=\"ok\"} 2",
            "manifold_tool_calls_total{tool=\"a_tool\",outcome=\"denied\"} 1",
            "manifold_tool_calls_total{tool=\"b_tool\",outcome=\"error\"} 1",
            "manifold_tool_call_duration_seconds_bucket{tool=\"a_tool\",le=\"0.005\"} 2",
            "manifold_tool_call_duration_seconds_bucket{tool=\"a_tool\",le=\"0.05\"} 3",
            "manifold_tool_call_duration_seconds_bucket{tool=\"b_tool\",le=\"10\"} 0",
            "manifold_tool_call_duration_seconds_bucket{tool=\"b_tool\",le=\"+Inf\"} 1",
            "manifold_tool_call_duration_seconds_count{tool=\"a_tool\"} 3",
            "manifold_tool_call_duration_seconds_sum{tool=\"b_tool\"} 30",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line} in\n{out}");
        }
        assert!(
            !out.contains("outcome=\"cancelled\""),
            "zero counts are left out"
        );
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
