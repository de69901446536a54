//! The `mcp` kind over the legacy HTTP+SSE transport (`settings.transport = "sse"`), against the
//! fixture's SSE server: tools listed and called, `initialize` rather than `server/discover`,
//! the credential headers on the GET and on every POST, a restarted upstream served again, an
//! endpoint on another origin refused before anything is sent to it, and oversized events.
#![allow(clippy::unwrap_used)]

#[path = "../../tests/mcp-fixture/src/legacy_sse.rs"]
mod legacy_sse;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::header,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use manifold_adapters::{
    Adapter, AdapterKind, CallContext, Health, InstanceSettings, Secret, ToolError, UpstreamClient,
    UpstreamConfig, mcp::McpKind,
};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The answer cap of every instance here; the transport's own bound is four times it.
const CAP: usize = 4096;

/// `echo` returns its `text`; `fill` returns `bytes` bytes of text.
#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let schema = Arc::new(json!({"type": "object"}).as_object().unwrap().clone());
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("echo", "Echoes text", schema.clone()),
            Tool::new("fill", "Answers with that many bytes", schema),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let arguments = request.arguments.unwrap_or_default();
        let text = match request.name.as_ref() {
            "echo" => arguments["text"].as_str().unwrap_or_default().to_owned(),
            "fill" => "x".repeat(arguments["bytes"].as_u64().unwrap_or_default() as usize),
            other => return Err(McpError::invalid_params(format!("no tool {other}"), None)),
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

/// One HTTP request as the upstream received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    authorization: Option<String>,
    api_key: Option<String>,
    /// The JSON-RPC method of a POSTed request or notification.
    rpc: Option<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Records every request's method, credential headers and JSON-RPC method.
async fn record(log: Log, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let rpc = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|message| message["method"].as_str().map(str::to_owned));
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    log.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        authorization: header("authorization"),
        api_key: header("x-api-key"),
        rpc,
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The SSE upstream on `addr`, until `stop`; the task ends once it no longer listens.
async fn serve(
    addr: SocketAddr,
    stop: CancellationToken,
    log: Log,
) -> (SocketAddr, JoinHandle<()>) {
    let app = legacy_sse::router(|| Echo, stop.clone()).layer(middleware::from_fn(
        move |request, next| record(log.clone(), request, next),
    ));
    serve_router(addr, app, stop).await
}

async fn serve_router(
    addr: SocketAddr,
    app: Router,
    stop: CancellationToken,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    });
    (addr, task)
}

/// An started `mcp` instance with `transport = "sse"` at `url`; it stops with the token.
fn adapter(url: &str, credentials: &[(&str, &str)]) -> (Arc<dyn Adapter>, CancellationToken) {
    let settings = json!({"transport": "sse", "max_response_bytes": CAP});
    let adapter = McpKind
        .build(InstanceSettings {
            name: "legacy".into(),
            base_url: url.parse().unwrap(),
            client: UpstreamClient::new(UpstreamConfig::default())
                .unwrap()
                .for_instance("legacy", 8),
            settings: settings.as_object().unwrap().clone(),
            credentials: credentials
                .iter()
                .map(|(key, value)| ((*key).to_owned(), Secret::new(*value)))
                .collect(),
        })
        .unwrap();
    let shutdown = CancellationToken::new();
    adapter.start(shutdown.clone());
    (adapter, shutdown)
}

fn health(adapter: &Arc<dyn Adapter>) -> Health {
    adapter.health().unwrap()
}

/// Waits until `done` holds of the instance's health, or fails with the last one seen.
async fn until(adapter: &Arc<dyn Adapter>, what: &str, done: impl Fn(&Health) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(&health(adapter)) {
        assert!(
            Instant::now() < deadline,
            "never {what}: {:?}",
            health(adapter)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until_up(adapter: &Arc<dyn Adapter>) {
    until(adapter, "up", |health| *health == Health::Up).await;
}

/// The reason the instance is degraded with, once it contains `needle`.
async fn degraded_with(adapter: &Arc<dyn Adapter>, needle: &str) -> String {
    until(
        adapter,
        &format!("degraded with `{needle}`"),
        |health| matches!(health, Health::Degraded { reason } if reason.contains(needle)),
    )
    .await;
    match health(adapter) {
        Health::Degraded { reason } => reason,
        Health::Up => unreachable!(),
    }
}

async fn call(
    adapter: &Arc<dyn Adapter>,
    tool: &str,
    arguments: Value,
) -> Result<String, ToolError> {
    let arguments: Map<String, Value> = arguments.as_object().unwrap().clone();
    adapter
        .call(tool, arguments, &CallContext::default())
        .await
        .map(|output| output.text)
}

#[tokio::test]
async fn the_tools_of_a_legacy_sse_server_are_listed_and_called() {
    let stop = CancellationToken::new();
    let (addr, _) = serve("127.0.0.1:0".parse().unwrap(), stop.clone(), Log::default()).await;
    let (adapter, shutdown) = adapter(&format!("http://{addr}/sse"), &[]);
    until_up(&adapter).await;
    let names: Vec<String> = adapter
        .tools()
        .current()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["echo", "fill"]);
    assert_eq!(
        call(&adapter, "echo", json!({"text": "over sse"}))
            .await
            .unwrap(),
        "over sse"
    );
    // An answer over the cap but within the transport's bound: a clear tool error, and the
    // connection stays.
    let error = call(&adapter, "fill", json!({"bytes": 2 * CAP}))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ToolError::BadResponse(text) if text.contains("larger than")),
        "{error}"
    );
    assert_eq!(health(&adapter), Health::Up);
    assert_eq!(
        call(&adapter, "echo", json!({"text": "still"}))
            .await
            .unwrap(),
        "still"
    );
    shutdown.cancel();
    stop.cancel();
}

#[tokio::test]
async fn the_credential_headers_reach_the_server_on_the_stream_and_every_message_and_initialize_comes_first()
 {
    let stop = CancellationToken::new();
    let log = Log::default();
    let (addr, _) = serve("127.0.0.1:0".parse().unwrap(), stop.clone(), log.clone()).await;
    let (adapter, shutdown) = adapter(
        &format!("http://{addr}/sse"),
        &[("token", "sse-secret"), ("header_x_api_key", "key-1")],
    );
    until_up(&adapter).await;
    call(&adapter, "echo", json!({"text": "hi"})).await.unwrap();
    let seen = log.lock().unwrap().clone();
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(seen[0].method, "GET", "{seen:?}");
    assert!(
        posts.len() >= 4,
        "initialize, initialized, tools/list, tools/call: {seen:?}"
    );
    for request in &seen {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer sse-secret"),
            "{request:?}"
        );
        assert_eq!(request.api_key.as_deref(), Some("key-1"), "{request:?}");
    }
    // The legacy era knows no `server/discover`: the client opens with `initialize`.
    assert_eq!(posts[0].rpc.as_deref(), Some("initialize"));
    assert!(
        seen.iter()
            .all(|s| s.rpc.as_deref() != Some("server/discover"))
    );
    assert!(posts.iter().any(|s| s.rpc.as_deref() == Some("tools/call")));
    shutdown.cancel();
    stop.cancel();
}

#[tokio::test]
async fn an_upstream_restarted_mid_session_is_connected_again_and_serves_calls() {
    let stop = CancellationToken::new();
    let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), stop.clone(), Log::default()).await;
    let (adapter, shutdown) = adapter(&format!("http://{addr}/sse"), &[]);
    until_up(&adapter).await;
    assert_eq!(
        call(&adapter, "echo", json!({"text": "one"}))
            .await
            .unwrap(),
        "one"
    );

    // The upstream goes away: its event stream ends, and the instance says so.
    stop.cancel();
    task.await.unwrap();
    degraded_with(&adapter, "").await;
    let error = call(&adapter, "echo", json!({"text": "down"}))
        .await
        .unwrap_err();
    assert!(matches!(error, ToolError::Unreachable(_)), "{error}");

    // Back on the same address: reconnected and served again.
    let again = CancellationToken::new();
    serve(addr, again.clone(), Log::default()).await;
    until_up(&adapter).await;
    assert_eq!(
        call(&adapter, "echo", json!({"text": "two"}))
            .await
            .unwrap(),
        "two"
    );
    shutdown.cancel();
    again.cancel();
}

/// Counts the requests that reach it: the would-be target of a foreign endpoint.
async fn decoy(stop: CancellationToken) -> (SocketAddr, Arc<Mutex<usize>>) {
    let hits = Arc::new(Mutex::new(0));
    let counted = hits.clone();
    let app = Router::new().fallback(move || {
        *counted.lock().unwrap() += 1;
        async { "ok" }
    });
    let (addr, _) = serve_router("127.0.0.1:0".parse().unwrap(), app, stop).await;
    (addr, hits)
}

/// An SSE server whose whole stream is `body`.
async fn raw_sse(body: String, stop: CancellationToken) -> SocketAddr {
    let app = Router::new()
        .route(
            "/sse",
            get(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response() }
            }),
        )
        .route(
            "/messages",
            post(|| async { axum::http::StatusCode::ACCEPTED }),
        );
    serve_router("127.0.0.1:0".parse().unwrap(), app, stop)
        .await
        .0
}

#[tokio::test]
async fn an_endpoint_on_another_origin_is_refused_before_anything_is_sent_to_it() {
    let stop = CancellationToken::new();
    let (elsewhere, hits) = decoy(stop.clone()).await;
    // Same host, another port: another origin.
    let addr = raw_sse(
        format!("event: endpoint\ndata: http://{elsewhere}/messages?sessionId=1\n\n"),
        stop.clone(),
    )
    .await;
    let (adapter, shutdown) = adapter(&format!("http://{addr}/sse"), &[("token", "sse-secret")]);
    let reason = degraded_with(&adapter, "another origin").await;
    assert!(reason.contains(&format!("http://{elsewhere}")), "{reason}");
    assert!(!reason.contains("sse-secret"), "{reason}");
    assert_eq!(*hits.lock().unwrap(), 0);
    assert!(adapter.tools().current().is_empty());
    shutdown.cancel();
    stop.cancel();
}

#[tokio::test]
async fn an_oversized_event_before_the_endpoint_is_refused_with_a_clear_reason() {
    let stop = CancellationToken::new();
    let padding = "x".repeat(4 * CAP + 1);
    let addr = raw_sse(
        format!("event: ping\ndata: {padding}\n\nevent: endpoint\ndata: /messages\n\n"),
        stop.clone(),
    )
    .await;
    let (adapter, shutdown) = adapter(&format!("http://{addr}/sse"), &[]);
    let reason = degraded_with(&adapter, "larger than").await;
    assert!(reason.contains(&format!("{} bytes", 4 * CAP)), "{reason}");
    shutdown.cancel();
    stop.cancel();
}

#[tokio::test]
async fn an_answer_over_the_transport_bound_closes_the_connection_which_is_then_made_again() {
    let stop = CancellationToken::new();
    let (addr, _) = serve("127.0.0.1:0".parse().unwrap(), stop.clone(), Log::default()).await;
    let (adapter, shutdown) = adapter(&format!("http://{addr}/sse"), &[]);
    until_up(&adapter).await;
    let error = call(&adapter, "fill", json!({"bytes": 5 * CAP}))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ToolError::Unreachable(text) if text.contains("closed")),
        "{error}"
    );
    // The connection is made again and serves the next call.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match call(&adapter, "echo", json!({"text": "back"})).await {
            Ok(text) => break assert_eq!(text, "back"),
            Err(error) => assert!(Instant::now() < deadline, "never served again: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    stop.cancel();
}

#[tokio::test]
async fn a_base_url_that_answers_no_event_stream_is_refused_with_a_clear_reason() {
    let stop = CancellationToken::new();
    let app = Router::new().route("/sse", get(|| async { axum::Json(json!({"hello": 1})) }));
    let (addr, _) = serve_router("127.0.0.1:0".parse().unwrap(), app, stop.clone()).await;
    let (adapter, shutdown) = adapter(&format!("http://{addr}/sse"), &[]);
    let reason = degraded_with(&adapter, "not an event stream").await;
    assert!(reason.contains("application/json"), "{reason}");
    shutdown.cancel();
    stop.cancel();
}
