//! Shared test fixtures: a `test` adapter kind with tools that echo, stall, fail and report
//! progress, and a gateway started in-process on a free port with it.
#![allow(dead_code, clippy::unwrap_used)]

pub mod asking_mcp;
pub mod broker;
pub mod decision;
pub mod demo;
pub mod mcp_gateway;
pub mod mock_idp;
pub mod oauth;
pub mod process;
pub mod upstream_mcp;
pub mod upstream_oauth;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use manifold::app::{self, RunningGateway};
use manifold_adapters::{
    Adapter, AdapterKind, BuildError, CallContext, InstanceSettings, Registry, ToolAnnotations,
    ToolError, ToolOutput, ToolSpec,
};
use serde_json::{Map, Value, json};

/// Counters the tests read to see what reached the adapter.
#[derive(Debug, Default)]
pub struct Probe {
    pub calls: AtomicUsize,
    pub cancelled: AtomicUsize,
    pub last_credential: std::sync::Mutex<Option<String>>,
    pub last_traceparent: std::sync::Mutex<Option<String>>,
}

pub struct TestKind {
    pub probe: Arc<Probe>,
}

struct TestAdapter {
    probe: Arc<Probe>,
    extra_tools: usize,
    /// `era_tools = true`: also `needs_sampling` (fails for want of a client capability) and
    /// `regional` (arguments mirrored in `Mcp-Param-*` headers), for protocol 2026-07-28.
    era_tools: bool,
}

impl AdapterKind for TestKind {
    fn id(&self) -> &'static str {
        "test"
    }
    fn summary(&self) -> &'static str {
        "test tools"
    }
    fn default_base_url(&self) -> &'static str {
        "http://127.0.0.1:9/"
    }
    fn build(&self, settings: InstanceSettings) -> Result<Arc<dyn Adapter>, BuildError> {
        let extra_tools = settings
            .settings
            .get("extra_tools")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let era_tools = settings
            .settings
            .get("era_tools")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Arc::new(TestAdapter {
            probe: self.probe.clone(),
            extra_tools,
            era_tools,
        }))
    }
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

#[async_trait::async_trait]
impl Adapter for TestAdapter {
    fn tools(&self) -> manifold_adapters::Tools {
        manifold_adapters::Tools::Static({
            let echo_out = object(json!({"echo": {"type": "string"}}), &["echo"]);
            let mut tools = vec![
                ToolSpec::new(
                    "echo",
                    "Echo",
                    "Returns its text.",
                    ToolAnnotations::READ,
                    object(
                        json!({"text": {"type": "string", "maxLength": 100}}),
                        &["text"],
                    ),
                    echo_out.clone(),
                ),
                ToolSpec::new(
                    "slow",
                    "Slow",
                    "Waits `millis` ms, reporting progress every 10 ms.",
                    ToolAnnotations::READ,
                    object(
                        json!({"millis": {"type": "integer", "minimum": 0}}),
                        &["millis"],
                    ),
                    echo_out.clone(),
                ),
                ToolSpec::new(
                    "fail",
                    "Fail",
                    "Always fails like a provider that is down.",
                    ToolAnnotations::CREATE,
                    object(json!({}), &[]),
                    echo_out.clone(),
                ),
            ];
            if self.era_tools {
                tools.push(ToolSpec::new(
                    "needs_sampling",
                    "Needs sampling",
                    "Fails like an upstream server that asks the client for sampling.",
                    ToolAnnotations::READ,
                    object(json!({}), &[]),
                    echo_out.clone(),
                ));
                tools.push(ToolSpec::new(
                    "regional",
                    "Regional",
                    "Returns its region; region and count travel in Mcp-Param-* headers too.",
                    ToolAnnotations::READ,
                    object(
                        json!({
                            "region": {"type": "string", "x-mcp-header": "Region"},
                            "count": {"type": "integer", "x-mcp-header": "Count"},
                            "query": {"type": "string"}
                        }),
                        &["region"],
                    ),
                    echo_out.clone(),
                ));
            }
            for index in 0..self.extra_tools {
                tools.push(ToolSpec::new(
                    &format!("extra_{index:03}"),
                    "Extra",
                    "Filler for paging.",
                    ToolAnnotations::READ,
                    object(json!({}), &[]),
                    echo_out.clone(),
                ));
            }
            tools
        })
    }

    async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        self.probe.calls.fetch_add(1, Ordering::SeqCst);
        *self.probe.last_credential.lock().unwrap() =
            ctx.credential.as_ref().map(|c| c.expose().to_owned());
        *self.probe.last_traceparent.lock().unwrap() = ctx.traceparent.clone();
        match tool {
            "echo" => {
                let text = arguments["text"].as_str().unwrap_or_default();
                Ok(ToolOutput {
                    structured: json!({"echo": text}),
                    text: text.to_owned(),
                })
            }
            "slow" => {
                // Counts the call as cancelled if its future is dropped before it finishes: that
                // is how the gateway abandons an adapter call.
                struct DropProbe(Arc<Probe>, bool);
                impl Drop for DropProbe {
                    fn drop(&mut self) {
                        if !self.1 {
                            self.0.cancelled.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                let mut guard = DropProbe(self.probe.clone(), false);
                let millis = arguments["millis"].as_u64().unwrap_or(0);
                let steps = (millis / 10).max(1);
                for step in 0..steps {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(10)) => {}
                        () = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
                    }
                    ctx.report_progress(step as f64 + 1.0, Some(steps as f64), None);
                }
                guard.1 = true;
                Ok(ToolOutput::from_structured(json!({"echo": "done"})))
            }
            "needs_sampling" => Err(ToolError::MissingClientCapability {
                capability: "sampling".into(),
            }),
            "regional" => {
                let region = arguments["region"].as_str().unwrap_or_default();
                Ok(ToolOutput::from_structured(json!({"echo": region})))
            }
            "fail" => Err(ToolError::Upstream {
                status: 503,
                message: "service unavailable".into(),
            }),
            other if other.starts_with("extra_") => {
                Ok(ToolOutput::from_structured(json!({"echo": other})))
            }
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }
}

/// Config for one `test` instance plus `extra` TOML (after the adapter) and `server` lines.
pub fn config(data_dir: &Path, extra: &str, server: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
tools_page_size = 2
max_body_bytes = 65536
call_timeout = "5s"
{server}

[storage]
data_dir = "{}"

[adapters.t]
kind = "test"
[adapters.t.credentials]
token = "provider-secret"
{extra}
"#,
        data_dir.display()
    )
}

pub struct TestGateway {
    pub running: RunningGateway,
    pub probe: Arc<Probe>,
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.running.addr)
    }
    pub fn base(&self) -> String {
        format!("http://{}", self.running.addr)
    }
}

pub fn registry(probe: &Arc<Probe>) -> Registry {
    let mut registry = Registry::builtin();
    registry.register(Arc::new(TestKind {
        probe: probe.clone(),
    }));
    registry
}

pub async fn start(extra: &str) -> TestGateway {
    start_with(extra, "").await
}

pub async fn start_with_server(server: &str) -> TestGateway {
    start_with("", server).await
}

/// Extra TOML after the adapter and extra `[server]` lines.
pub async fn start_with_extra_server(extra: &str, server: &str) -> TestGateway {
    start_with(extra, server).await
}

async fn start_with(extra: &str, server: &str) -> TestGateway {
    start_with_env(extra, server, &[]).await
}

/// [`start_with_extra_server`] with `MANIFOLD_…` environment overrides (given, not read from
/// the process).
pub async fn start_with_env(extra: &str, server: &str, env: &[(String, String)]) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let registry = registry(&probe);
    let source = config(dir.path(), extra, server);
    let path = Path::new("test.toml");
    let config = manifold::config::load_str(&source, path, &registry, env).unwrap();
    let running = app::start(config, &source, path, &registry).await.unwrap();
    TestGateway {
        running,
        probe,
        dir,
    }
}

/// `[outbound]` for tests whose identity provider or client documents are loopback http: the
/// SSRF guard refuses both unless told (as a deployment must be told about its private IdP).
pub const LOOPBACK_OUTBOUND: &str =
    "\n[outbound]\nallow_http = true\nallowed_cidrs = [\"127.0.0.0/8\", \"::1\"]\n";

/// Accept header every Streamable HTTP POST must carry.
pub const ACCEPT: &str = "application/json, text/event-stream";

/// The JSON-RPC messages in a response body, whether JSON or SSE.
pub fn messages(content_type: &str, body: &str) -> Vec<Value> {
    if content_type.starts_with("application/json") {
        return vec![serde_json::from_str(body).unwrap()];
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .filter_map(|data| serde_json::from_str(data).ok())
        .collect()
}

/// POSTs one message and returns status, headers and the messages answered.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (
    reqwest::StatusCode,
    reqwest::header::HeaderMap,
    Vec<Value>,
    String,
) {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT)
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.unwrap();
    let parsed = if content_type.is_empty() {
        vec![]
    } else {
        messages(&content_type, &text)
    };
    (status, headers, parsed, text)
}

pub fn initialize_body(version: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}})
    .to_string()
}

/// The headers of a request in `session` on `version`.
pub fn in_session<'a>(session: &'a str, version: &'a str) -> [(&'static str, &'a str); 2] {
    [
        ("mcp-session-id", session),
        ("mcp-protocol-version", version),
    ]
}

/// Initializes a session on `version`, sends `notifications/initialized`, returns the session id.
pub async fn open_session(client: &reqwest::Client, url: &str, version: &str) -> String {
    let (status, headers, messages, _) = post(client, url, &[], &initialize_body(version)).await;
    assert_eq!(status, 200);
    assert_eq!(messages[0]["result"]["protocolVersion"], version);
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    let (status, ..) = post(
        client,
        url,
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", version),
        ],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(status, 202);
    session
}

/// The `manifold` binary under test: `MANIFOLD_BIN` when set, else the one cargo built.
pub fn manifold_bin() -> String {
    std::env::var("MANIFOLD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_manifold").to_owned())
}
