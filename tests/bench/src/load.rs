//! The load generator: `concurrency` workers, each with its own keep-alive connection, sending
//! calls back to back (closed loop) after a warm-up, every answer checked, latencies in an HDR
//! histogram.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::Barrier;

/// The stateless protocol revision: one POST per call, no session.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// The session protocol revision: `initialize` once, then POSTs carrying `mcp-session-id`.
pub const SESSION_VERSION: &str = "2025-11-25";
/// A fixed, valid W3C trace context: the adapter sends one on every upstream request.
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const ACCEPT: &str = "application/json, text/event-stream";

/// What every answer of a lane must hold to count as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Linear's teams: `data.teams.nodes` in the GraphQL answer (direct), `structuredContent.teams`
    /// in the tool result (gateway).
    Teams,
    /// An MCP tool result whose first content part is exactly this text; a direct answer is the
    /// JSON-RPC message with this id (the direct body's).
    Text { id: u64, text: &'static str },
}

/// The gateway tool a lane calls and what its answer must hold.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub url: String,
    pub bearer: Option<String>,
    pub tool: &'static str,
    pub expect: Expect,
}

/// Where the calls go.
#[derive(Debug, Clone)]
pub enum Target {
    /// The request the gateway's adapter sends upstream, posted unchanged straight to the
    /// backend (or through the relay): the same body and headers on every call.
    Direct {
        url: String,
        body: String,
        headers: HeaderMap,
        expect: Expect,
    },
    /// `tools/call` through the gateway in the stateless 2026-07-28 mode.
    Stateless(ToolCall),
    /// `tools/call` through the gateway in a 2025-11-25 session (one session per worker).
    Session(ToolCall),
}

impl Target {
    /// The access token gateway calls carry (`--signed-in`).
    fn bearer(&self) -> Option<&str> {
        match self {
            Target::Direct { .. } => None,
            Target::Stateless(call) | Target::Session(call) => call.bearer.as_deref(),
        }
    }
}

/// How many calls to make.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Unmeasured calls before the measured phase, shared out among the workers.
    pub warmup: u64,
    /// Measured calls (ignored when `duration` is set).
    pub calls: u64,
    /// Measure for this long instead of a fixed number of calls.
    pub duration: Option<Duration>,
}

/// The measured phase of one run.
#[derive(Debug)]
pub struct RunResult {
    /// Latency of every measured call, successful or not, in nanoseconds.
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
    pub elapsed: Duration,
    /// CPU time of the gateway process during the measured phase.
    pub gateway_cpu: Duration,
    /// CPU time of this process (the load generator) during the measured phase.
    pub client_cpu: Duration,
}

impl RunResult {
    /// Counts calls measured alongside these (another worker's, or another slice's).
    fn add_calls(
        &mut self,
        latency: &Histogram<u64>,
        ok: u64,
        failures: u64,
        first_failure: Option<String>,
    ) -> anyhow::Result<()> {
        self.latency
            .add(latency)
            .context("cannot merge histograms")?;
        self.ok += ok;
        self.failures += failures;
        if self.first_failure.is_none() {
            self.first_failure = first_failure;
        }
        Ok(())
    }

    /// Adds another slice of the same target to this one.
    pub fn absorb(&mut self, other: RunResult) -> anyhow::Result<()> {
        self.add_calls(
            &other.latency,
            other.ok,
            other.failures,
            other.first_failure,
        )?;
        self.elapsed += other.elapsed;
        self.gateway_cpu += other.gateway_cpu;
        self.client_cpu += other.client_cpu;
        Ok(())
    }

    pub fn calls(&self) -> u64 {
        self.ok + self.failures
    }

    pub fn per_second(&self) -> f64 {
        self.calls() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile_us(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// CPU µs per call of `cpu` spread over this run's calls.
    pub fn per_call_us(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.calls().max(1) as f64
    }
}

struct Worker {
    target: Target,
    http: reqwest::Client,
    session: Option<String>,
    next_id: u64,
}

struct WorkerResult {
    latency: Histogram<u64>,
    ok: u64,
    failures: u64,
    first_failure: Option<String>,
}

/// The HTTP client of one worker: the settings the gateway's own upstream client uses
/// (`adapters/src/upstream.rs`), and at most one pooled connection, so one connection per worker.
pub fn client() -> anyhow::Result<reqwest::Client> {
    client_with(None)
}

/// [`client`], sending `bearer` as the access token of every request.
fn client_with(bearer: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    if let Some(token) = bearer {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the access token is not a valid header value")?;
        value.set_sensitive(true);
        headers.insert("authorization", value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent("manifold/0.1.0")
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()
        .context("cannot build the HTTP client")
}

/// Runs `plan` against `target` with `concurrency` workers in one go; `gateway_cpu` reads the
/// CPU time of the process under test, sampled right before and right after the measured phase.
pub async fn run(
    target: &Target,
    concurrency: usize,
    plan: Plan,
    gateway_cpu: impl Fn() -> anyhow::Result<Duration>,
) -> anyhow::Result<RunResult> {
    let mut pool = Pool::prepare(target, concurrency, plan.warmup).await?;
    let result = pool.measure(plan.calls, plan.duration, gateway_cpu).await;
    pool.finish().await;
    result
}

/// `concurrency` workers for one target, prepared once (sessions opened, warm-up done) and then
/// measured in as many slices as asked, so several targets can take turns and share whatever
/// the machine is doing at the time.
pub struct Pool {
    workers: Vec<Worker>,
}

impl Pool {
    /// Opens the workers' connections (and sessions) and makes the warm-up calls, shared out
    /// among them (at least one each); every warm-up call must succeed.
    pub async fn prepare(target: &Target, concurrency: usize, warmup: u64) -> anyhow::Result<Self> {
        let concurrency = concurrency.max(1);
        let warmup_each = warmup.div_ceil(concurrency as u64).max(1);
        let mut tasks = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let mut worker = Worker {
                target: target.clone(),
                http: client_with(target.bearer())?,
                session: None,
                next_id: 1,
            };
            tasks.push(tokio::spawn(async move {
                worker.prepare(warmup_each).await.map(|()| worker)
            }));
        }
        let mut workers = Vec::with_capacity(concurrency);
        for task in tasks {
            workers.push(task.await.context("a worker panicked")??);
        }
        Ok(Self { workers })
    }

    /// One measured slice: `calls` calls in all, or for `duration` when set; `cpu` as in [`run`].
    pub async fn measure(
        &mut self,
        calls: u64,
        duration: Option<Duration>,
        cpu: impl Fn() -> anyhow::Result<Duration>,
    ) -> anyhow::Result<RunResult> {
        let plan = Plan {
            warmup: 0,
            calls,
            duration,
        };
        let go = Arc::new(Barrier::new(self.workers.len() + 1));
        let issued = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(self.workers.len());
        for mut worker in self.workers.drain(..) {
            let (go, issued) = (go.clone(), issued.clone());
            tasks.push(tokio::spawn(async move {
                go.wait().await;
                let result = worker.measure(plan, &issued).await;
                (worker, result)
            }));
        }
        let (gateway_before, client_before) = (cpu()?, crate::gateway::own_cpu()?);
        let started = Instant::now();
        go.wait().await;
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            let (worker, result) = task.await.context("a worker panicked")?;
            self.workers.push(worker);
            results.push(result);
        }
        let elapsed = started.elapsed();
        let (gateway_after, client_after) = (cpu()?, crate::gateway::own_cpu()?);
        let mut total = RunResult {
            latency: histogram()?,
            ok: 0,
            failures: 0,
            first_failure: None,
            elapsed,
            gateway_cpu: gateway_after.saturating_sub(gateway_before),
            client_cpu: client_after.saturating_sub(client_before),
        };
        for result in results {
            let result = result?;
            total.add_calls(
                &result.latency,
                result.ok,
                result.failures,
                result.first_failure,
            )?;
        }
        Ok(total)
    }

    /// Ends the workers' sessions (best effort).
    pub async fn finish(&mut self) {
        for worker in &mut self.workers {
            worker.finish().await;
        }
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 ns … 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).context("cannot create a histogram")
}

impl Worker {
    /// Opens the session (session mode) and makes the warm-up calls, which must all succeed.
    async fn prepare(&mut self, warmup: u64) -> anyhow::Result<()> {
        if let Target::Session(_) = self.target {
            self.initialize().await?;
        }
        for _ in 0..warmup {
            self.call().await.context("warm-up call failed")?;
        }
        Ok(())
    }

    async fn measure(&mut self, plan: Plan, issued: &AtomicU64) -> anyhow::Result<WorkerResult> {
        let mut result = WorkerResult {
            latency: histogram()?,
            ok: 0,
            failures: 0,
            first_failure: None,
        };
        let deadline = plan.duration.map(|duration| Instant::now() + duration);
        loop {
            match deadline {
                Some(deadline) if Instant::now() >= deadline => break,
                Some(_) => {}
                None if issued.fetch_add(1, Ordering::Relaxed) >= plan.calls => break,
                None => {}
            }
            let started = Instant::now();
            let outcome = self.call().await;
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            result.latency.saturating_record(nanos.max(1));
            match outcome {
                Ok(()) => result.ok += 1,
                Err(error) => {
                    result.failures += 1;
                    result
                        .first_failure
                        .get_or_insert_with(|| format!("{error:#}"));
                }
            }
        }
        Ok(result)
    }

    /// Ends the session, if there is one (best effort).
    async fn finish(&mut self) {
        if let (Target::Session(call), Some(session)) = (&self.target, self.session.take()) {
            let _ = self
                .http
                .delete(&call.url)
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", SESSION_VERSION)
                .send()
                .await;
        }
    }

    async fn initialize(&mut self) -> anyhow::Result<()> {
        let Target::Session(call) = &self.target else {
            return Ok(());
        };
        let url = call.url.clone();
        let body = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": SESSION_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "bench", "version": "1" },
            },
        });
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT)
            .body(body.to_string())
            .send()
            .await
            .context("initialize: no answer")?;
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .context("initialize: the answer has no mcp-session-id")?;
        let answer = jsonrpc_answer(response, 0).await?;
        if answer.get("result").is_none() {
            bail!("initialize failed: {answer}");
        }
        let notified = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", SESSION_VERSION)
            .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .send()
            .await
            .context("notifications/initialized: no answer")?;
        if !notified.status().is_success() {
            bail!("notifications/initialized: HTTP {}", notified.status());
        }
        let _ = notified.bytes().await;
        self.session = Some(session);
        Ok(())
    }

    /// One call, its answer read in full and checked.
    async fn call(&mut self) -> anyhow::Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        match &self.target {
            Target::Direct {
                url,
                body,
                headers,
                expect,
            } => {
                let response = self
                    .http
                    .post(url)
                    .headers(headers.clone())
                    .body(body.clone())
                    .send()
                    .await
                    .context("no answer")?;
                match *expect {
                    Expect::Teams => check_graphql_teams(response).await,
                    Expect::Text { id, .. } => {
                        check_tool_result(&jsonrpc_answer(response, id).await?, *expect)
                    }
                }
            }
            Target::Stateless(call) => {
                let tool = call.tool;
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"{STATELESS_VERSION}","io.modelcontextprotocol/clientCapabilities":{{}},"io.modelcontextprotocol/clientInfo":{{"name":"bench","version":"1"}}}},"name":"{tool}","arguments":{{}}}}}}"#
                );
                let response = self
                    .http
                    .post(&call.url)
                    .headers(mcp_headers(STATELESS_VERSION))
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", tool)
                    .body(body)
                    .send()
                    .await
                    .context("no answer")?;
                check_tool_result(&jsonrpc_answer(response, id).await?, call.expect)
            }
            Target::Session(call) => {
                let session = self.session.as_deref().context("no session")?;
                let tool = call.tool;
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
                );
                let response = self
                    .http
                    .post(&call.url)
                    .headers(mcp_headers(SESSION_VERSION))
                    .header("mcp-session-id", session)
                    .body(body)
                    .send()
                    .await
                    .context("no answer")?;
                check_tool_result(&jsonrpc_answer(response, id).await?, call.expect)
            }
        }
    }
}

/// The Linear emulator's GraphQL answer: HTTP 200, no `errors`, `data.teams.nodes` a list.
async fn check_graphql_teams(response: reqwest::Response) -> anyhow::Result<()> {
    let status = response.status();
    let bytes = response.bytes().await.context("answer cut short")?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
    }
    let answer: Value = serde_json::from_slice(&bytes).context("answer is not JSON")?;
    if answer.get("errors").is_some() {
        bail!("GraphQL errors: {}", answer["errors"]);
    }
    if !answer
        .pointer("/data/teams/nodes")
        .is_some_and(Value::is_array)
    {
        bail!("answer has no data.teams.nodes: {answer}");
    }
    Ok(())
}

fn mcp_headers(version: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("accept", HeaderValue::from_static(ACCEPT));
    headers.insert("mcp-protocol-version", HeaderValue::from_static(version));
    headers
}

/// The JSON-RPC message answering request `id`, from a JSON body or an SSE stream.
pub async fn jsonrpc_answer(response: reqwest::Response, id: u64) -> anyhow::Result<Value> {
    let status = response.status();
    let sse = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let bytes = response.bytes().await.context("answer cut short")?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
    }
    message_with_id(&bytes, sse, id)
}

/// The JSON-RPC message with `id` in a body: the body itself, or in an SSE stream the event whose
/// data is that message (priming events with empty data and other messages skipped).
fn message_with_id(bytes: &[u8], sse: bool, id: u64) -> anyhow::Result<Value> {
    if !sse {
        return serde_json::from_slice(bytes).context("answer is not JSON");
    }
    let text = std::str::from_utf8(bytes).context("SSE stream is not UTF-8")?;
    for event in text.split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim_start)
            .collect();
        if data.is_empty() {
            continue;
        }
        let Ok(message) = serde_json::from_str::<Value>(&data.join("\n")) else {
            continue;
        };
        if message.get("id").and_then(Value::as_u64) == Some(id) {
            return Ok(message);
        }
    }
    bail!("no answer to request {id} in the SSE stream: {text}")
}

/// A successful `tools/call` answer: no JSON-RPC `error`, a `result` with `isError` not true, and
/// the content `expect` asks for.
fn check_tool_result(answer: &Value, expect: Expect) -> anyhow::Result<()> {
    if let Some(error) = answer.get("error") {
        bail!("JSON-RPC error: {error}");
    }
    let result = answer
        .get("result")
        .with_context(|| format!("answer has no result: {answer}"))?;
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        bail!("tool error: {result}");
    }
    match expect {
        Expect::Teams => {
            if !result
                .pointer("/structuredContent/teams")
                .is_some_and(Value::is_array)
            {
                bail!("result has no structuredContent.teams: {result}");
            }
        }
        Expect::Text { text, .. } => {
            let first = result.pointer("/content/0");
            let matches = first.is_some_and(|part| {
                part.get("type").and_then(Value::as_str) == Some("text")
                    && part.get("text").and_then(Value::as_str) == Some(text)
            });
            if !matches {
                bail!("result's first content part is not the text {text:?}: {result}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SIMPLE: &str = "This is a simple text response for testing.";
    const TEXT: Expect = Expect::Text {
        id: 1,
        text: SIMPLE,
    };

    #[test]
    fn a_text_result_with_the_expected_text_passes() {
        let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {
            "content": [{"type": "text", "text": SIMPLE}]
        }});
        assert!(check_tool_result(&answer, TEXT).is_ok());
    }

    #[test]
    fn a_text_result_with_other_text_fails() {
        let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {
            "content": [{"type": "text", "text": "something else"}]
        }});
        assert!(check_tool_result(&answer, TEXT).is_err());
    }

    #[test]
    fn a_tool_error_fails_even_with_the_expected_text() {
        let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {
            "isError": true,
            "content": [{"type": "text", "text": SIMPLE}]
        }});
        assert!(check_tool_result(&answer, TEXT).is_err());
    }

    #[test]
    fn a_json_rpc_error_fails() {
        let answer = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "no"}});
        assert!(check_tool_result(&answer, TEXT).is_err());
    }

    #[test]
    fn a_teams_result_needs_structured_teams() {
        let with = json!({"result": {"content": [], "structuredContent": {"teams": []}}});
        let without = json!({"result": {"content": [{"type": "text", "text": "[]"}]}});
        assert!(check_tool_result(&with, Expect::Teams).is_ok());
        assert!(check_tool_result(&without, Expect::Teams).is_err());
    }

    #[test]
    fn the_answer_is_found_in_an_sse_stream_after_a_priming_event_and_a_notification() {
        let stream = "id: 0\nretry: 3000\ndata:\n\n\
                      data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\n\
                      id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n";
        let message = message_with_id(stream.as_bytes(), true, 7).expect("answer found");
        assert_eq!(message["id"], 7);
        assert!(message_with_id(stream.as_bytes(), true, 8).is_err());
    }
}
