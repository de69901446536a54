//! A legacy HTTP+SSE upstream behind the gateway (`kind = "mcp"`, `settings.transport = "sse"`),
//! reached by rmcp's client through the gateway: its tools appear under the instance prefix,
//! calls reach it with the instance credential and come back redacted, and an upstream that goes
//! away degrades only itself and is served again once back; another gateway's own legacy SSE
//! transport serves as an SSE upstream too.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "../../tests/mcp-fixture/src/legacy_sse.rs"]
mod legacy_sse;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::Request,
    middleware::{self, Next},
};
use rmcp::{
    ErrorData as McpError, RoleClient, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
        ContentBlock, Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
        ServerConfig, Tool,
    },
    service::{RequestContext, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// `echo` returns its `text` (also as `structuredContent`); `leak` returns a secret to redact.
#[derive(Clone)]
struct Legacy;

impl ServerHandler for Legacy {
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
            Tool::new("leak", "Answers with a key", schema),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let result = match request.name.as_ref() {
            "echo" => {
                let text = request.arguments.unwrap_or_default()["text"].clone();
                let mut result = CallToolResult::success(vec![ContentBlock::text(
                    text.as_str().unwrap_or_default(),
                )]);
                result.structured_content = Some(json!({"echo": text}));
                result
            }
            "leak" => CallToolResult::success(vec![ContentBlock::text(
                "the key is AKIAIOSFODNN7EXAMPLE, keep it safe",
            )]),
            other => return Err(McpError::invalid_params(format!("no tool {other}"), None)),
        };
        Ok(result.into())
    }
}

/// The `Authorization` header of every request the upstream received.
type Seen = Arc<Mutex<Vec<String>>>;

/// Serves the SSE upstream on `addr` until `stop`; returns its `/sse` URL once it listens.
async fn serve(addr: SocketAddr, stop: CancellationToken, seen: Seen) -> String {
    let app = legacy_sse::router(|| Legacy, stop.clone()).layer(middleware::from_fn(
        move |request: Request, next: Next| {
            let authorization = request
                .headers()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            seen.lock().unwrap().push(authorization);
            async move { next.run(request).await }
        },
    ));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    });
    format!("http://{addr}/sse")
}

fn instance(url: &str) -> String {
    format!(
        "\n[adapters.up]\nkind = \"mcp\"\nbase_url = \"{url}\"\nsettings.transport = \"sse\"\n[adapters.up.credentials]\ntoken = \"upstream-secret\"\n"
    )
}

async fn connect(url: &str) -> RunningService<RoleClient, ClientConfig> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("downstream", "1"),
    )
    .serve(transport)
    .await
    .unwrap()
}

fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = arguments.as_object().cloned();
    params
}

/// Calls `up_echo` until it is served (the upstream is coming up: the tool is unknown, then
/// answered with a tool error, until it connects); returns the answer.
async fn until_served(client: &RunningService<RoleClient, ClientConfig>) -> CallToolResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = client
            .call_tool(call("up_echo", json!({"text": "hi"})))
            .await;
        match answer {
            Ok(answer) if answer.is_error != Some(true) => return answer,
            other => assert!(Instant::now() < deadline, "never served: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The gateway's `/healthz` text.
async fn healthz(gateway: &support::TestGateway) -> String {
    reqwest::get(format!("{}/healthz", gateway.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_legacy_sse_upstream_is_proxied_with_its_credential_redacted_and_served_again_after_a_restart()
 {
    let stop = CancellationToken::new();
    let seen = Seen::default();
    let url = serve("127.0.0.1:0".parse().unwrap(), stop.clone(), seen.clone()).await;
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/sse")
        .parse()
        .unwrap();
    let gateway = support::start(&instance(&url)).await;
    let client = connect(&gateway.url()).await;

    let echoed = until_served(&client).await;
    assert_eq!(echoed.structured_content, Some(json!({"echo": "hi"})));
    assert_eq!(echoed.content[0].as_text().unwrap().text, "hi");
    let leak = client.call_tool(call("up_leak", json!({}))).await.unwrap();
    let text = serde_json::to_string(&leak).unwrap();
    assert!(
        !text.contains("AKIAIOSFODNN7EXAMPLE"),
        "secret passed: {text}"
    );
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    assert!(names.contains(&"up_leak".to_owned()), "{names:?}");
    let authorizations = seen.lock().unwrap().clone();
    assert!(authorizations.len() >= 4, "{authorizations:?}");
    assert!(
        authorizations.iter().all(|a| a == "Bearer upstream-secret"),
        "{authorizations:?}"
    );
    assert_eq!(healthz(&gateway).await, "ok");

    // The upstream goes away: only it is degraded, with no secret in the reason.
    stop.cancel();
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        let health = healthz(&gateway).await;
        if health.contains("degraded: up") {
            break health;
        }
        assert!(Instant::now() < deadline, "never degraded: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!health.contains("upstream-secret"), "{health}");
    let down = client
        .call_tool(call("up_echo", json!({"text": "hi"})))
        .await;
    assert!(
        down.map(|answer| answer.is_error == Some(true))
            .unwrap_or(true),
        "a call was served by an upstream that is down"
    );

    // Back on the same address: served again.
    let again = CancellationToken::new();
    serve(addr, again.clone(), Seen::default()).await;
    until_served(&client).await;
    assert_eq!(healthz(&gateway).await, "ok");

    client.cancel().await.unwrap();
    gateway.running.shutdown.cancel();
    again.cancel();
}

#[tokio::test]
async fn another_gateways_own_legacy_sse_transport_serves_as_an_sse_upstream() {
    // The gateway's server side of the legacy transport was written apart from the fixture's:
    // the client must work with both.
    let upstream = support::start("").await;
    let gateway = support::start(&format!(
        "\n[adapters.up]\nkind = \"mcp\"\nbase_url = \"{}/sse\"\nsettings.transport = \"sse\"\n",
        upstream.base()
    ))
    .await;
    let client = connect(&gateway.url()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let echoed = loop {
        match client
            .call_tool(call("up_t_echo", json!({"text": "relayed"})))
            .await
        {
            Ok(answer) if answer.is_error != Some(true) => break answer,
            other => assert!(Instant::now() < deadline, "never served: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(echoed.structured_content, Some(json!({"echo": "relayed"})));
    assert_eq!(healthz(&gateway).await, "ok");
    client.cancel().await.unwrap();
    gateway.running.shutdown.cancel();
    upstream.running.shutdown.cancel();
}
