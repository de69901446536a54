//! `manifold-bench`: the gateway's overhead. Starts `manifold demo`, then measures `tools/call`
//! of `linear_list_teams` through the gateway (stateless 2026-07-28 mode and a 2025-11-25 session)
//! against the identical GraphQL request posted straight to the sandbox Linear emulator, at each
//! concurrency asked for, and prints latency, throughput and the gateway's CPU per call.
//!
//! A benchmark, not a test: it prints figures and a PASS/MISS per target, and exits non-zero only
//! when something broke (the gateway would not start, or calls failed).

mod floor;
mod gateway;
mod load;
mod report;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::Value;

use crate::{
    gateway::Gateway,
    load::{Plan, Target},
    report::{Report, Row, Side},
};

/// tools/call latency, throughput and gateway CPU: through Manifold versus direct to the backend.
#[derive(Debug, Parser)]
#[command(name = "manifold-bench", about, long_about = None)]
struct Args {
    /// The gateway binary (build it with `cargo build --release -p manifold`).
    #[arg(long, default_value = "target/release/manifold")]
    gateway_bin: PathBuf,
    /// Measured calls per run (each scenario at each concurrency is one run).
    #[arg(long, default_value_t = 20_000)]
    calls: u64,
    /// Measure each run for this long instead of `--calls` (e.g. `10s`, `500ms`).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Concurrency levels (concurrent workers, one keep-alive connection each).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    concurrency: Vec<usize>,
    /// Unmeasured calls before each run, shared among its workers (at least one per worker).
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// Each run is measured in this many slices, taken in turns with the other lanes of its
    /// concurrency (direct, relay, each mode), so a machine whose speed drifts during the
    /// benchmark slows them all alike.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Modes to measure: the gateway's two, and the relay floor (two HTTP hops, no gateway work).
    #[arg(long, value_delimiter = ',', default_value = "relay,stateless,session")]
    modes: Vec<Mode>,
    /// The Linear API key the demo's Linear emulator accepts (the demo config's token).
    #[arg(long, default_value = "lin_api_sandbox_alice")]
    linear_token: String,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Run the gateway with its built-in OAuth server, as deployed for ChatGPT: every call
    /// carries an access token (minted with `manifold token`) that the gateway verifies.
    #[arg(long)]
    signed_in: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// The direct request through `manifold-relay`, a pass-through relay on the gateway's
    /// libraries: the CPU two loopback HTTP hops cost here, whatever a gateway does besides.
    Relay,
    /// 2026-07-28: one POST per call, no session.
    Stateless,
    /// 2025-11-25: `initialize` once per worker, then POSTs with `mcp-session-id`.
    Session,
}

/// Whose CPU a lane's calls are charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// The gateway process (for the direct lane: what it spends while idle, ~0).
    Gateway,
    /// The relay floor's process.
    Relay,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Relay => report::RELAY_SCENARIO,
            Mode::Stateless => "stateless",
            Mode::Session => "session",
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s or 500ms"))?;
    if !(value.is_finite() && value > 0.0 && value * scale <= 3600.0) {
        return Err(format!("`{text}` must be between 0 and 1 hour"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failures) => {
            eprintln!("error: {failures} calls failed (see first_failure in the JSON output)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every scenario and prints the report; returns the number of failed calls.
async fn run(args: Args) -> anyhow::Result<u64> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs levels of at least 1");
    }
    if args.duration.is_none() && args.calls == 0 {
        bail!("--calls must be at least 1");
    }
    let emulators = Gateway::launch(&args.gateway_bin)?;
    let gateway = Gateway::serve(&args.gateway_bin, &emulators.sandbox_url, args.signed_in)?;
    let bearer = if args.signed_in {
        Some(gateway.token(&args.gateway_bin, "alice")?)
    } else {
        None
    };
    eprintln!(
        "gateway pid {} at {}, emulators (pid {}) at {}",
        gateway.pid(),
        gateway.mcp_url,
        emulators.pid(),
        emulators.sandbox_url
    );
    let control = load::client()?;
    let requests_url = format!("{}/linear/_sandbox/requests", emulators.sandbox_url);
    let graphql_url = format!("{}/linear/graphql", emulators.sandbox_url);
    let body = adapter_request(&control, &gateway.mcp_url, bearer.clone(), &requests_url).await?;
    let direct = Target::Direct {
        url: graphql_url.clone(),
        body: body.clone(),
        authorization: args.linear_token.clone(),
    };
    // The same request as the direct run, sent through the relay.
    let relay = if args.modes.contains(&Mode::Relay) {
        let relay = floor::Relay::start(&graphql_url)?;
        eprintln!("relay floor pid {} at {}", relay.pid(), relay.url);
        let target = Target::Direct {
            url: relay.url.clone(),
            body,
            authorization: args.linear_token.clone(),
        };
        Some((relay, target))
    } else {
        None
    };
    // The lanes of each concurrency: direct first, then each mode, with the process whose CPU
    // counts for it (the direct run reads the idle gateway's).
    let mut lanes: Vec<(&str, Target, Lane)> = vec![("direct", direct.clone(), Lane::Gateway)];
    for &mode in &args.modes {
        let target = match (mode, &relay) {
            (Mode::Relay, Some((_, target))) => target.clone(),
            (Mode::Relay, None) => bail!("the relay floor is not running"),
            (Mode::Stateless, _) => Target::Stateless {
                url: gateway.mcp_url.clone(),
                bearer: bearer.clone(),
            },
            (Mode::Session, _) => Target::Session {
                url: gateway.mcp_url.clone(),
                bearer: bearer.clone(),
            },
        };
        let lane = if mode == Mode::Relay {
            Lane::Relay
        } else {
            Lane::Gateway
        };
        lanes.push((mode.name(), target, lane));
    }
    let cpu_of = |lane: Lane| match (lane, &relay) {
        (Lane::Relay, Some((relay, _))) => relay.cpu(),
        _ => gateway.cpu(),
    };
    let rounds = u64::from(args.rounds.max(1));
    let slice_calls = args.calls.div_ceil(rounds);
    let slice_duration = args
        .duration
        .map(|d| d / u32::try_from(rounds).unwrap_or(1));
    let mut rows = Vec::new();
    for &concurrency in &args.concurrency {
        let mut pools = Vec::with_capacity(lanes.len());
        for (name, target, _) in &lanes {
            eprintln!("concurrency {concurrency}: preparing {name} …");
            pools.push(load::Pool::prepare(target, concurrency, args.warmup).await?);
        }
        let mut runs: Vec<Option<load::RunResult>> = lanes.iter().map(|_| None).collect();
        eprintln!("concurrency {concurrency}: {rounds} rounds, each lane once per round …");
        for round in 0..rounds {
            // Each round starts with another lane, so none always runs right after another.
            let start = usize::try_from(round).unwrap_or(0) % lanes.len();
            for offset in 0..lanes.len() {
                let index = (start + offset) % lanes.len();
                clear_log(&control, &requests_url).await?;
                let lane = lanes[index].2;
                let slice = pools[index]
                    .measure(slice_calls, slice_duration, || cpu_of(lane))
                    .await?;
                match &mut runs[index] {
                    Some(run) => run.absorb(slice)?,
                    empty => *empty = Some(slice),
                }
            }
        }
        for pool in &mut pools {
            pool.finish().await;
        }
        let runs: Vec<load::RunResult> = runs
            .into_iter()
            .collect::<Option<_>>()
            .context("a lane was never measured")?;
        let Some((direct_run, mode_runs)) = runs.split_first() else {
            bail!("no direct run");
        };
        let direct_side = Side::of(direct_run);
        for ((name, ..), run) in lanes.iter().skip(1).zip(mode_runs) {
            rows.push(Row::new(
                name,
                concurrency,
                direct_side.clone(),
                Side::of(run),
            ));
        }
    }
    clear_log(&control, &requests_url).await?;

    let failures = rows.iter().map(|r| r.gateway.failures).sum::<u64>()
        + rows
            .iter()
            .map(|r| (r.concurrency, r.direct.failures))
            .collect::<std::collections::BTreeMap<_, _>>()
            .values()
            .sum::<u64>();
    report::compare_with_relay(&mut rows);
    let targets = report::verdicts(&rows);
    let report = Report {
        gateway_bin: args.gateway_bin.display().to_string(),
        machine_cpus: std::thread::available_parallelism().map_or(0, usize::from),
        warmup_calls: args.warmup,
        rows,
        targets,
        failures,
        notes: notes(&gateway, args.signed_in),
    };
    println!("{}", report::render(&report));
    if let Some(path) = &args.json_out {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    Ok(failures)
}

fn notes(gateway: &Gateway, signed_in: bool) -> Vec<String> {
    let mut notes = vec![
        "direct = the exact GraphQL request the Linear adapter sends (recorded from the emulator's \
         request log), POSTed straight to the demo's Linear emulator with the adapter's HTTP \
         client settings; gateway = tools/call linear_list_teams to /mcp, which sends that same \
         request to the same emulator."
            .to_owned(),
        "gw CPU µs/call: the gateway is its own `manifold serve` process, pointed at the \
         emulators of a separate `manifold demo`; its CPU (utime+stime from /proc/<pid>/stat, \
         before/after each run) is the gateway's alone. (Its idle CPU during the direct run is \
         subtracted, which is ~0.)"
            .to_owned(),
        "relay = the direct request sent through `manifold-relay`, a pass-through relay built \
         from the gateway's libraries and settings (axum, reqwest, mimalloc, one runtime worker) \
         that does nothing but forward: its CPU per call is what the two loopback HTTP hops of \
         any such gateway cost on this machine. `over relay` = gateway CPU per call − relay CPU \
         per call at the same concurrency: the gateway's own work."
            .to_owned(),
        "Load generator and gateway share this machine's CPUs: at high concurrency throughput is \
         bounded by both (see bench client CPU/call); /proc CPU figures have clock-tick (10 ms) \
         resolution per run."
            .to_owned(),
        format!(
            "The gateway wrote {} bytes of log (stderr, default filter) during the benchmark.",
            gateway.log_bytes()
        ),
    ];
    notes.push(if signed_in {
        "Signed in (--signed-in): the gateway runs its built-in OAuth server and every gateway \
         call carries alice's access token, which it verifies (ES256) before the call."
            .to_owned()
    } else {
        "Not signed in: the gateway runs with `[auth] mode = \"none\"` (add --signed-in for the \
         built-in OAuth server, as deployed for ChatGPT)."
            .to_owned()
    });
    notes
}

/// Makes one stateless gateway call and returns the body of the GraphQL request the adapter sent
/// for it, as the emulator recorded it: the direct run sends exactly this.
async fn adapter_request(
    http: &reqwest::Client,
    mcp_url: &str,
    bearer: Option<String>,
    requests_url: &str,
) -> anyhow::Result<String> {
    clear_log(http, requests_url).await?;
    let probe = Target::Stateless {
        url: mcp_url.to_owned(),
        bearer,
    };
    let plan = Plan {
        warmup: 1,
        calls: 1,
        duration: None,
    };
    let run = load::run(&probe, 1, plan, || Ok(Duration::ZERO))
        .await
        .context("the first call through the gateway failed")?;
    if run.failures > 0 {
        bail!(
            "the first call through the gateway failed: {}",
            run.first_failure.unwrap_or_default()
        );
    }
    let log: Value = http
        .get(requests_url)
        .send()
        .await
        .context("cannot read the emulator's request log")?
        .json()
        .await
        .context("the emulator's request log is not JSON")?;
    let request = log
        .as_array()
        .and_then(|log| log.iter().rev().find(|r| r["operationName"] == "ListTeams"))
        .with_context(|| format!("the emulator recorded no ListTeams request: {log}"))?;
    Ok(request.to_string())
}

/// Empties the emulator's request log, which otherwise grows by one entry per call.
async fn clear_log(http: &reqwest::Client, requests_url: &str) -> anyhow::Result<()> {
    let response = http
        .delete(requests_url)
        .send()
        .await
        .context("cannot clear the emulator's request log")?;
    if !response.status().is_success() {
        bail!(
            "clearing the emulator's request log: HTTP {}",
            response.status()
        );
    }
    Ok(())
}
