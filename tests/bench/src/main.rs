//! `manifold-bench`: the gateway's overhead. Measures `tools/call` through the gateway
//! (stateless 2026-07-28 mode and a 2025-11-25 session) against the identical upstream request
//! posted straight to the backend, at each concurrency asked for, beside a pass-through relay,
//! and prints latency, throughput and the gateway's CPU per call. Two backends: `linear`
//! (`linear_list_teams` against `manifold demo`'s Linear emulator) and `mcp` (`test_simple_text`
//! of the rmcp fixture server behind `kind = "mcp"`).
//!
//! A benchmark, not a test: it prints figures and a PASS/MISS per target, and exits non-zero only
//! when something broke (the gateway would not start, or calls failed).

mod floor;
mod gateway;
mod load;
mod mcp;
mod report;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::Value;

use crate::{
    gateway::Gateway,
    load::{Expect, Plan, Target, ToolCall},
    report::{Report, Row, Side},
};

/// The Linear tool the `linear` backend calls through the gateway.
const LINEAR_TOOL: &str = "linear_list_teams";

/// tools/call latency, throughput and gateway CPU: through Manifold versus direct to the backend.
#[derive(Debug, Parser)]
#[command(name = "manifold-bench", about, long_about = None)]
struct Args {
    /// The gateway binary (build it with `cargo build --release -p manifold`).
    #[arg(long, default_value = "target/release/manifold")]
    gateway_bin: PathBuf,
    /// What the gateway fronts: the demo's Linear emulator, or an upstream MCP server (the rmcp
    /// fixture, `kind = "mcp"`).
    #[arg(long, value_enum, default_value_t = Backend::Linear)]
    backend: Backend,
    /// `--backend mcp`: the fixture binary (default: `mcp-fixture` beside this executable, built
    /// with `cargo build --release -p manifold-mcp-fixture`).
    #[arg(long)]
    fixture_bin: Option<PathBuf>,
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

/// What the gateway fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// `linear_list_teams` against `manifold demo`'s Linear emulator (GraphQL).
    Linear,
    /// `test_simple_text` of `mcp-fixture` (rmcp, Streamable HTTP) behind `kind = "mcp"`.
    Mcp,
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

/// The backend the direct lane calls, kept running for the whole benchmark.
enum Upstream {
    /// `manifold demo`, for its Linear emulator (held only to keep it running: dropped, it is
    /// stopped); `requests` is the emulator's request log.
    Linear {
        _emulators: Gateway,
        requests: String,
    },
    /// The rmcp fixture server.
    Mcp(mcp::Fixture),
}

/// The processes under test and the requests every lane sends.
struct Setup {
    gateway: Gateway,
    upstream: Upstream,
    /// Where the direct lane posts, and the relay forwards to.
    direct_url: String,
    direct: Target,
    /// The gateway lanes' call (URL, token, tool, expected answer).
    call: ToolCall,
}

impl Setup {
    /// Starts the backend and a gateway in front of it, and works out the direct request.
    async fn start(args: &Args, control: &reqwest::Client) -> anyhow::Result<Self> {
        match args.backend {
            Backend::Linear => Self::linear(args, control).await,
            Backend::Mcp => Self::mcp(args).await,
        }
    }

    async fn linear(args: &Args, control: &reqwest::Client) -> anyhow::Result<Self> {
        let emulators = Gateway::launch(&args.gateway_bin)?;
        let gateway = Gateway::serve(&args.gateway_bin, &emulators.sandbox_url, args.signed_in)?;
        let call = ToolCall {
            url: gateway.mcp_url.clone(),
            bearer: bearer(&gateway, args)?,
            tool: LINEAR_TOOL,
            expect: Expect::Teams,
        };
        eprintln!(
            "gateway pid {} at {}, emulators (pid {}) at {}",
            gateway.pid(),
            gateway.mcp_url,
            emulators.pid(),
            emulators.sandbox_url
        );
        let requests = format!("{}/linear/_sandbox/requests", emulators.sandbox_url);
        let direct_url = format!("{}/linear/graphql", emulators.sandbox_url);
        let body = adapter_request(control, &call, &requests).await?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "content-type",
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "authorization",
            reqwest::header::HeaderValue::from_str(&args.linear_token)
                .context("--linear-token is not a valid header value")?,
        );
        headers.insert(
            "traceparent",
            reqwest::header::HeaderValue::from_static(load::TRACEPARENT),
        );
        Ok(Self {
            direct: Target::Direct {
                url: direct_url.clone(),
                body,
                headers,
                expect: Expect::Teams,
            },
            direct_url,
            gateway,
            upstream: Upstream::Linear {
                _emulators: emulators,
                requests,
            },
            call,
        })
    }

    async fn mcp(args: &Args) -> anyhow::Result<Self> {
        let fixture = mcp::Fixture::start(args.fixture_bin.as_deref())?;
        let gateway = Gateway::serve_mcp(&args.gateway_bin, &fixture.url, args.signed_in)?;
        let call = ToolCall {
            url: gateway.mcp_url.clone(),
            bearer: bearer(&gateway, args)?,
            tool: mcp::TOOL,
            expect: mcp::EXPECT,
        };
        eprintln!(
            "gateway pid {} at {}, fixture (pid {}) at {}",
            gateway.pid(),
            gateway.mcp_url,
            fixture.pid(),
            fixture.url
        );
        mcp::wait_until_served(&call.url, call.bearer.clone()).await?;
        mcp::check_direct(&fixture.url).await?;
        Ok(Self {
            direct: mcp::direct(&fixture.url),
            direct_url: fixture.url.clone(),
            gateway,
            upstream: Upstream::Mcp(fixture),
            call,
        })
    }

    /// The direct request, sent to `url` (the relay's) instead.
    fn direct_via(&self, url: &str) -> Target {
        let mut target = self.direct.clone();
        if let Target::Direct { url: to, .. } = &mut target {
            url.clone_into(to);
        }
        target
    }

    /// Work between slices that keeps the backend steady: the Linear emulator's request log
    /// otherwise grows by one entry per call.
    async fn tidy(&self, control: &reqwest::Client) -> anyhow::Result<()> {
        match &self.upstream {
            Upstream::Linear { requests, .. } => clear_log(control, requests).await,
            Upstream::Mcp(_) => Ok(()),
        }
    }
}

/// The access token gateway calls carry with `--signed-in`.
fn bearer(gateway: &Gateway, args: &Args) -> anyhow::Result<Option<String>> {
    if args.signed_in {
        Ok(Some(gateway.token(&args.gateway_bin, "alice")?))
    } else {
        Ok(None)
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
    let control = load::client()?;
    let setup = Setup::start(&args, &control).await?;
    let gateway = &setup.gateway;
    // The same request as the direct run, sent through the relay.
    let relay = if args.modes.contains(&Mode::Relay) {
        let relay = floor::Relay::start(&setup.direct_url)?;
        eprintln!("relay floor pid {} at {}", relay.pid(), relay.url);
        let target = setup.direct_via(&relay.url);
        Some((relay, target))
    } else {
        None
    };
    // The lanes of each concurrency: direct first, then each mode, with the process whose CPU
    // counts for it (the direct run reads the idle gateway's).
    let mut lanes: Vec<(&str, Target, Lane)> =
        vec![("direct", setup.direct.clone(), Lane::Gateway)];
    for &mode in &args.modes {
        let target = match (mode, &relay) {
            (Mode::Relay, Some((_, target))) => target.clone(),
            (Mode::Relay, None) => bail!("the relay floor is not running"),
            (Mode::Stateless, _) => Target::Stateless(setup.call.clone()),
            (Mode::Session, _) => Target::Session(setup.call.clone()),
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
    let upstream_cpu_before = upstream_cpu(&setup.upstream);
    let rounds = u64::from(args.rounds.max(1));
    let slice_calls = args.calls.div_ceil(rounds);
    let slice_duration = args
        .duration
        .map(|d| d / u32::try_from(rounds).unwrap_or(1));
    let mut rows = Vec::new();
    let mut calls_made = 0u64;
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
                setup.tidy(&control).await?;
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
        // Every lane's call reaches the upstream once, warm-ups included.
        let warmup_calls = args.warmup.div_ceil(concurrency as u64).max(1) * concurrency as u64;
        calls_made += runs
            .iter()
            .map(|run| run.calls() + warmup_calls)
            .sum::<u64>();
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
    setup.tidy(&control).await?;
    let upstream_cpu = upstream_cpu(&setup.upstream)
        .zip(upstream_cpu_before)
        .map(|(after, before)| after.saturating_sub(before));

    let failures = rows.iter().map(|r| r.gateway.failures).sum::<u64>()
        + rows
            .iter()
            .map(|r| (r.concurrency, r.direct.failures))
            .collect::<std::collections::BTreeMap<_, _>>()
            .values()
            .sum::<u64>();
    report::compare_with_relay(&mut rows);
    let targets = report::verdicts(&rows, args.backend);
    let mut notes = notes(gateway, args.signed_in, args.backend);
    if let Some(cpu) = upstream_cpu {
        notes.push(format!(
            "The fixture (upstream, its own process, never charged to a lane) used {:.1} µs \
             CPU per call it served (all lanes, warm-ups included).",
            cpu.as_secs_f64() * 1e6 / calls_made.max(1) as f64
        ));
    }
    if args.backend == Backend::Mcp && relay.is_none() {
        notes.push(
            "No relay lane (--modes without relay): the MCP targets, relative to the relay \
             floor, were not checked."
                .to_owned(),
        );
    }
    let report = Report {
        gateway_bin: args.gateway_bin.display().to_string(),
        backend: format!("{:?}", args.backend).to_lowercase(),
        machine_cpus: std::thread::available_parallelism().map_or(0, usize::from),
        warmup_calls: args.warmup,
        rows,
        targets,
        failures,
        notes,
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

/// The upstream MCP server's CPU so far (the Linear emulator shares the demo's process with
/// other emulators, so it is not read).
fn upstream_cpu(upstream: &Upstream) -> Option<Duration> {
    match upstream {
        Upstream::Linear { .. } => None,
        Upstream::Mcp(fixture) => fixture.cpu().ok(),
    }
}

fn notes(gateway: &Gateway, signed_in: bool, backend: Backend) -> Vec<String> {
    let (direct, process) = match backend {
        Backend::Linear => (
            "direct = the exact GraphQL request the Linear adapter sends (recorded from the \
             emulator's request log), POSTed straight to the demo's Linear emulator with the \
             adapter's HTTP client settings; gateway = tools/call linear_list_teams to /mcp, \
             which sends that same request to the same emulator.",
            "gw CPU µs/call: the gateway is its own `manifold serve` process, pointed at the \
             emulators of a separate `manifold demo`; its CPU (utime+stime from \
             /proc/<pid>/stat, before/after each run) is the gateway's alone. (Its idle CPU \
             during the direct run is subtracted, which is ~0.)",
        ),
        Backend::Mcp => (
            "direct = the stateless 2026-07-28 tools/call of test_simple_text that the gateway's \
             `kind = \"mcp\"` adapter sends upstream (same headers and _meta, no session: the \
             gateway negotiates 2026-07-28 with the fixture), POSTed straight to `mcp-fixture` \
             (rmcp, Streamable HTTP, answers as SSE); gateway = tools/call test_simple_text to \
             /mcp, which sends that request to the same fixture. Every answer must carry the \
             fixture's text.",
            "gw CPU µs/call: the gateway is its own `manifold serve` process in front of a \
             separate `mcp-fixture` process; its CPU (utime+stime from /proc/<pid>/stat, \
             before/after each run) is the gateway's alone. (Its idle CPU during the direct run \
             is subtracted, which is ~0.)",
        ),
    };
    let mut notes = vec![
        direct.to_owned(),
        process.to_owned(),
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
    call: &ToolCall,
    requests_url: &str,
) -> anyhow::Result<String> {
    clear_log(http, requests_url).await?;
    let probe = Target::Stateless(call.clone());
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
