//! The `mcp` kind's direct `tools/call` path, against an rmcp Streamable HTTP server that
//! negotiates 2026-07-28: calls are one POST each with the headers and `_meta` rmcp would send,
//! progress under the call's own token reaches the call, a cancelled or dropped call is
//! cancelled upstream, and answers an upstream should not give — over the cap, a JSON-RPC error,
//! a 401, `input_required`, garbage — become clear tool errors. A layer in front of the server
//! answers the scripted tools itself.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use manifold_adapters::{
    Adapter, AdapterKind, CallContext, Health, InstanceSettings, Secret, ToolAnswer, ToolError,
    UpstreamClient, UpstreamConfig, mcp::McpKind,
};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// The answer cap of the instance.
const CAP: usize = 4096;
/// Where the direct path's request ids begin (`direct.rs`); rmcp's own are small.
const FIRST_DIRECT_ID: i64 = 1 << 40;

/// What the upstream saw.
#[derive(Default)]
struct Seen {
    /// Headers and body of every `tools/call` POST.
    calls: Mutex<Vec<(HeaderMap, Value)>>,
    /// The params of every `notifications/cancelled` POST.
    cancelled: Mutex<Vec<Value>>,
    /// Calls of `slow` that ended because they were cancelled.
    slow_cancelled: AtomicUsize,
}

/// The real tools, served by rmcp: `echo`, `progress` (three steps under the request's own
/// token) and `slow` (until cancelled). The rest are scripted (see [`scripted`]).
#[derive(Clone)]
struct Upstream(Arc<Seen>);

const SCRIPTED: [&str; 9] = [
    "big_json",
    "big_sse",
    "invalid_params",
    "not_found",
    "unauthorized",
    "input",
    "garbage",
    "garbage_sse",
    "progress_sse",
];

impl ServerHandler for Upstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let schema = Arc::new(json!({"type": "object"}).as_object().unwrap().clone());
        let tools = ["echo", "progress", "slow"]
            .into_iter()
            .chain(SCRIPTED)
            .map(|name| Tool::new(name, "a test tool", schema.clone()))
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let arguments = request.arguments.unwrap_or_default();
        let text = match request.name.as_ref() {
            "echo" => arguments["text"].as_str().unwrap_or_default().to_owned(),
            "progress" => {
                let token = context.meta.get_progress_token().unwrap();
                for step in [1, 2, 3] {
                    let param: ProgressNotificationParam = serde_json::from_value(json!({
                        "progressToken": token, "progress": step, "total": 3,
                        "message": format!("step {step}"),
                    }))
                    .unwrap();
                    context.peer.notify_progress(param).await.unwrap();
                }
                "done".to_owned()
            }
            "slow" => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(60)) => {}
                    () = context.ct.cancelled() => {
                        self.0.slow_cancelled.fetch_add(1, Ordering::SeqCst);
                    }
                }
                "slept".to_owned()
            }
            other => return Err(McpError::invalid_params(format!("no tool {other}"), None)),
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn sse_response(messages: &[Value]) -> Response {
    let body: String = messages
        .iter()
        .map(|message| format!("event: message\ndata: {message}\n\n"))
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/event-stream")],
        body,
    )
        .into_response()
}

/// The answer of a scripted tool to the `tools/call` request `message`.
fn scripted(name: &str, message: &Value) -> Option<Response> {
    let id = message["id"].clone();
    let token = message["params"]["_meta"]["progressToken"].clone();
    let result = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    let big = json!({"content": [{"type": "text", "text": "x".repeat(2 * CAP)}]});
    Some(match name {
        "big_json" => json_response(StatusCode::OK, result(big)),
        "big_sse" => sse_response(&[result(big)]),
        // As rmcp's server answers a bad request: a 4xx carrying the JSON-RPC error.
        "invalid_params" => json_response(
            StatusCode::BAD_REQUEST,
            json!({"jsonrpc": "2.0", "id": id,
                   "error": {"code": -32602, "message": "`text` must be a string"}}),
        ),
        "not_found" => json_response(
            StatusCode::NOT_FOUND,
            json!({"jsonrpc": "2.0", "id": id,
                   "error": {"code": -32000, "message": "the thing is gone"}}),
        ),
        "unauthorized" => (StatusCode::UNAUTHORIZED, "no").into_response(),
        "input" => json_response(
            StatusCode::OK,
            result(json!({"resultType": "input_required", "requestState": "round-1"})),
        ),
        "garbage" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "<html>this is not JSON</html>",
        )
            .into_response(),
        "garbage_sse" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/event-stream")],
            "data: {\"jsonrpc\": \"2.0\", \"id\": [unclosed\n\n",
        )
            .into_response(),
        // Progress of other calls and another call's answer before this one's.
        "progress_sse" => sse_response(&[
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
                   "params": {"progressToken": "someone-else", "progress": 9}}),
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
                   "params": {"progressToken": token, "progress": 1, "total": 2}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "not yours"}]}}),
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
                   "params": {"progressToken": token, "progress": 2, "total": 2, "message": "nearly"}}),
            result(json!({"content": [{"type": "text", "text": "scripted"}]})),
        ]),
        _ => return None,
    })
}

/// Records calls and cancellations; answers the scripted tools.
async fn front(seen: Arc<Seen>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    if let Ok(message) = serde_json::from_slice::<Value>(&body) {
        match message["method"].as_str() {
            Some("notifications/cancelled") => {
                seen.cancelled
                    .lock()
                    .unwrap()
                    .push(message["params"].clone());
            }
            Some("tools/call") => {
                seen.calls
                    .lock()
                    .unwrap()
                    .push((parts.headers.clone(), message.clone()));
                let name = message["params"]["name"].as_str().unwrap_or_default();
                if let Some(response) = scripted(name, &message) {
                    return response;
                }
            }
            _ => {}
        }
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

struct Setup {
    seen: Arc<Seen>,
    adapter: Arc<dyn Adapter>,
    stop: CancellationToken,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The upstream on a free port and an `mcp` instance of it, connected.
async fn setup() -> Setup {
    let stop = CancellationToken::new();
    let seen = Arc::new(Seen::default());
    let upstream = Upstream(seen.clone());
    let service = StreamableHttpService::new(
        move || Ok(upstream.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
    );
    let recorder = seen.clone();
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn(move |request, next| {
            front(recorder.clone(), request, next)
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(serving.cancelled_owned())
            .await
            .unwrap();
    });
    let settings = json!({"max_response_bytes": CAP});
    let adapter = McpKind
        .build(InstanceSettings {
            name: "up".into(),
            base_url: format!("http://{addr}/mcp").parse().unwrap(),
            client: UpstreamClient::new(UpstreamConfig::default())
                .unwrap()
                .for_instance("up", 8),
            settings: settings.as_object().unwrap().clone(),
            credentials: [("token".to_owned(), Secret::new("up-secret"))].into(),
        })
        .unwrap();
    adapter.start(stop.child_token());
    let deadline = Instant::now() + Duration::from_secs(20);
    while adapter.health() != Some(Health::Up) || adapter.tools().current().is_empty() {
        assert!(
            Instant::now() < deadline,
            "never up: {:?}",
            adapter.health()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Setup {
        seen,
        adapter,
        stop,
    }
}

fn arguments(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

impl Setup {
    async fn call(&self, tool: &str, ctx: &CallContext) -> Result<CallToolResult, ToolError> {
        match self
            .adapter
            .answer(tool, arguments(json!({"text": "hi"})), ctx)
            .await?
        {
            ToolAnswer::Mcp(result) => Ok(*result),
            _ => panic!("not an MCP answer"),
        }
    }

    /// The last `tools/call` the upstream saw.
    fn last_call(&self) -> (HeaderMap, Value) {
        self.seen.calls.lock().unwrap().last().unwrap().clone()
    }
}

fn text(result: &CallToolResult) -> &str {
    &result.content[0].as_text().unwrap().text
}

#[tokio::test]
async fn a_call_is_one_post_with_the_headers_and_meta_rmcp_would_send() {
    let setup = setup().await;
    let ctx = CallContext {
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        ..CallContext::default()
    };
    let answer = setup.call("echo", &ctx).await.unwrap();
    assert_eq!(text(&answer), "hi");
    let (headers, body) = setup.last_call();
    assert!(
        body["id"].as_i64().unwrap() >= FIRST_DIRECT_ID,
        "not sent by the direct path: {body}"
    );
    assert_eq!(headers["mcp-method"], "tools/call");
    assert_eq!(headers["mcp-name"], "echo");
    assert_eq!(headers["mcp-protocol-version"], "2026-07-28");
    assert_eq!(headers["authorization"], "Bearer up-secret");
    assert!(headers.get("mcp-session-id").is_none());
    let accept = headers["accept"].to_str().unwrap();
    assert!(
        accept.contains("application/json") && accept.contains("text/event-stream"),
        "{accept}"
    );
    let meta = &body["params"]["_meta"];
    assert_eq!(
        meta["io.modelcontextprotocol/protocolVersion"],
        "2026-07-28"
    );
    assert_eq!(
        meta["io.modelcontextprotocol/clientInfo"]["name"],
        "manifold"
    );
    assert!(meta["io.modelcontextprotocol/clientCapabilities"].is_object());
    assert_eq!(meta["traceparent"], ctx.traceparent.unwrap().as_str());
    assert!(!meta["progressToken"].is_null(), "{meta}");
    // Two calls, two ids and two progress tokens.
    setup.call("echo", &CallContext::default()).await.unwrap();
    let (_, second) = setup.last_call();
    assert_ne!(second["id"], body["id"]);
    assert_ne!(
        second["params"]["_meta"]["progressToken"],
        meta["progressToken"]
    );
}

/// Progress as a call's sink heard it: progress, total, message.
type Heard = Arc<Mutex<Vec<(f64, Option<f64>, Option<String>)>>>;

/// A context whose progress is collected.
fn with_progress() -> (CallContext, Heard) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    let ctx = CallContext {
        progress: Some(Arc::new(move |progress, total, message| {
            sink.lock().unwrap().push((progress, total, message));
        })),
        ..CallContext::default()
    };
    (ctx, heard)
}

#[tokio::test]
async fn progress_under_the_calls_own_token_reaches_the_call_and_the_answer_ends_the_stream() {
    let setup = setup().await;
    // rmcp's server: three steps on the answer's event stream.
    let (ctx, heard) = with_progress();
    let answer = setup.call("progress", &ctx).await.unwrap();
    assert_eq!(text(&answer), "done");
    let steps: Vec<f64> = heard.lock().unwrap().iter().map(|step| step.0).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0]);
    // Scripted: another call's progress and answer are not this call's.
    let (ctx, heard) = with_progress();
    let answer = setup.call("progress_sse", &ctx).await.unwrap();
    assert_eq!(text(&answer), "scripted");
    assert_eq!(
        *heard.lock().unwrap(),
        [
            (1.0, Some(2.0), None),
            (2.0, Some(2.0), Some("nearly".to_owned()))
        ]
    );
}

#[tokio::test]
async fn an_answer_over_max_response_bytes_is_refused_as_json_and_as_an_event() {
    let setup = setup().await;
    for tool in ["big_json", "big_sse"] {
        match setup.call(tool, &CallContext::default()).await {
            Err(ToolError::BadResponse(message)) => assert!(
                message.contains(&CAP.to_string()) && message.contains("larger than"),
                "{tool}: {message}"
            ),
            other => panic!("{tool}: {other:?}"),
        }
    }
    // The connection is unharmed.
    let answer = setup.call("echo", &CallContext::default()).await.unwrap();
    assert_eq!(text(&answer), "hi");
    assert_eq!(setup.adapter.health(), Some(Health::Up));
}

#[tokio::test]
async fn a_json_rpc_error_is_mapped_as_rmcps_path_maps_it() {
    let setup = setup().await;
    match setup.call("invalid_params", &CallContext::default()).await {
        Err(ToolError::InvalidArguments(message)) => {
            assert_eq!(message, "`text` must be a string")
        }
        other => panic!("{other:?}"),
    }
    match setup.call("not_found", &CallContext::default()).await {
        Err(ToolError::Upstream { status, message }) => {
            assert_eq!(status, 502);
            assert_eq!(message, "MCP error -32000: the thing is gone");
        }
        other => panic!("{other:?}"),
    }
    // rmcp's own server refusing a tool it does not know: its error, not a transport failure.
    match setup.call("no_such_tool", &CallContext::default()).await {
        Err(ToolError::InvalidArguments(message)) => {
            assert!(message.contains("no tool"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_401_is_unauthorized_and_names_no_secret() {
    let setup = setup().await;
    match setup.call("unauthorized", &CallContext::default()).await {
        Err(ToolError::Unauthorized(message)) => {
            assert!(message.contains("401"), "{message}");
            assert!(!message.contains("up-secret"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_input_required_answer_is_not_taken_for_a_tool_result() {
    let setup = setup().await;
    // The direct path hands it over as `ServerResult::InputRequiredResult` (unit test in
    // `direct.rs`); the adapter's answer today refuses anything but a tool result.
    match setup.call("input", &CallContext::default()).await {
        Err(ToolError::BadResponse(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_garbage_answer_is_a_clear_error_and_no_panic() {
    let setup = setup().await;
    for tool in ["garbage", "garbage_sse"] {
        match setup.call(tool, &CallContext::default()).await {
            Err(ToolError::BadResponse(message)) => {
                assert!(message.contains("not a tool result"), "{tool}: {message}");
                assert!(
                    !message.contains("html"),
                    "{tool}: echoes the body: {message}"
                );
            }
            other => panic!("{tool}: {other:?}"),
        }
    }
    let answer = setup.call("echo", &CallContext::default()).await.unwrap();
    assert_eq!(text(&answer), "hi");
}

/// Waits until the upstream has seen `count` cancellations of `slow`, each naming a call it saw.
async fn until_cancelled(seen: &Seen, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.slow_cancelled.load(Ordering::SeqCst) < count {
        assert!(
            Instant::now() < deadline,
            "the upstream call was never cancelled: {:?}",
            seen.cancelled.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls: Vec<Value> = seen
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| body["id"].clone())
        .collect();
    let cancelled = seen.cancelled.lock().unwrap();
    assert_eq!(cancelled.len(), count, "{cancelled:?}");
    for params in cancelled.iter() {
        assert!(
            calls.contains(&params["requestId"]),
            "{params} names no call"
        );
    }
}

#[tokio::test]
async fn a_cancelled_or_dropped_call_is_cancelled_upstream() {
    let setup = setup().await;
    // The client cancels.
    let ctx = CallContext::default();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    assert!(matches!(
        setup.call("slow", &ctx).await,
        Err(ToolError::Cancelled)
    ));
    assert!(started.elapsed() < Duration::from_secs(10));
    until_cancelled(&setup.seen, 1).await;
    // The call's future is dropped (the gateway's call timeout).
    let ctx = CallContext::default();
    let dropped = tokio::time::timeout(Duration::from_millis(300), setup.call("slow", &ctx)).await;
    assert!(dropped.is_err(), "slow answered: {dropped:?}");
    until_cancelled(&setup.seen, 2).await;
    // A call that was answered is not cancelled afterwards.
    setup.call("echo", &CallContext::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(setup.seen.cancelled.lock().unwrap().len(), 2);
}
