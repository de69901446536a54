//! A small upstream MCP server (rmcp, Streamable HTTP) for tests of the `mcp` adapter kind: tools
//! of every content type, a secret to redact, a slow tool, tools an attacker would offer, and a
//! switch that adds a tool and announces it.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::{NotificationContext, RequestContext},
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// What the server saw and how it behaves.
#[derive(Default)]
pub struct Upstream {
    /// Offer the `added` tool too.
    pub extra: AtomicBool,
    /// Sessions to tell when the list changes.
    peers: Mutex<Vec<Peer<RoleServer>>>,
    /// Bumped when the list changes, for 2026-07-28 `subscriptions/listen` streams.
    changes: tokio::sync::watch::Sender<u64>,
    /// `Authorization` headers of the requests, to check what reached the upstream.
    pub authorizations: Mutex<Vec<String>>,
    /// Calls served.
    pub calls: AtomicUsize,
    /// Calls of `slow` that ended because the gateway cancelled them.
    pub cancelled: AtomicUsize,
    /// Answer every HTTP request with this status instead of serving it (a broken upstream).
    pub http_status: std::sync::atomic::AtomicU16,
}

fn schema(value: Value) -> Arc<Map<String, Value>> {
    Arc::new(value.as_object().unwrap().clone())
}

fn tool(name: &str, description: &str) -> Tool {
    Tool::new(
        name.to_owned(),
        description.to_owned(),
        schema(json!({"type": "object", "properties": {"text": {"type": "string"}}})),
    )
}

// === impl Upstream ===

impl Upstream {
    fn tools(&self) -> Vec<Tool> {
        let mut echo = tool("echo", "Echoes text");
        echo.output_schema = Some(schema(json!({
            "type": "object",
            "properties": {"echo": {"type": "string"}},
            "required": ["echo"]
        })));
        echo.meta = Some(rmcp::model::MetaObject(
            json!({"vendor/x": "kept"}).as_object().unwrap().clone(),
        ));
        let mut media = tool("media", "Every content type");
        media.annotations = Some(
            rmcp::model::ToolAnnotations::default()
                .read_only(true)
                .destructive(false),
        );
        let mut tools = vec![
            echo,
            media,
            tool("leak", "Answers with a secret"),
            tool("slow", "Takes a minute"),
            tool("fails", "Always a tool error"),
            tool("has.dot", "A name clients refuse"),
            tool("huge", "Answers with 200 kB of text"),
        ];
        if self.extra.load(Ordering::SeqCst) {
            tools.push(tool("added", "Arrived later"));
        }
        tools
    }

    /// Adds the `added` tool and tells every session.
    pub async fn add_tool(&self) {
        self.extra.store(true, Ordering::SeqCst);
        self.changes.send_modify(|n| *n += 1);
        let peers = self.peers.lock().unwrap().clone();
        for peer in peers {
            let _ = peer.notify_tool_list_changed().await;
        }
    }

    /// Serves on a free loopback port; returns the `/mcp` URL.
    pub async fn serve(self: &Arc<Self>, stop: CancellationToken) -> String {
        self.serve_at("127.0.0.1:0".parse().unwrap(), stop).await
    }

    /// Serves on `addr`; returns the `/mcp` URL.
    pub async fn serve_at(
        self: &Arc<Self>,
        addr: std::net::SocketAddr,
        stop: CancellationToken,
    ) -> String {
        let upstream = self.clone();
        let service = StreamableHttpService::new(
            move || Ok(Handler(upstream.clone())),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
        );
        let broken = self.clone();
        let router =
            axum::Router::new()
                .nest_service("/mcp", service)
                .layer(axum::middleware::from_fn(
                    move |request: axum::extract::Request, next: axum::middleware::Next| {
                        let status = broken.http_status.load(Ordering::SeqCst);
                        async move {
                            match axum::http::StatusCode::from_u16(status) {
                                Ok(status) if status.as_u16() >= 400 => {
                                    axum::response::IntoResponse::into_response((status, "broken"))
                                }
                                _ => next.run(request).await,
                            }
                        }
                    },
                ));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .unwrap();
        });
        format!("http://{addr}/mcp")
    }
}

#[derive(Clone)]
struct Handler(Arc<Upstream>);

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
    }

    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        let mut accepted = rmcp::model::SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        Some(accepted)
    }

    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.0.changes.subscribe();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed() => if changed.is_err() { return Ok(()) },
            }
            let notification = rmcp::model::ServerNotification::ToolListChangedNotification(
                rmcp::model::ToolListChangedNotification::default(),
            );
            if context.sink().send(notification).await.is_err() {
                return Ok(());
            }
        }
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.0.peers.lock().unwrap().push(context.peer);
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.note_authorization(&context);
        Ok(ListToolsResult::with_all_items(self.0.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.note_authorization(&context);
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let text = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("text"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let result = match request.name.as_ref() {
            "echo" => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(text.clone())]);
                result.structured_content = Some(json!({"echo": text}));
                result
            }
            "media" => {
                let blocks: Vec<ContentBlock> = serde_json::from_value(json!([
                    {"type": "text", "text": "all kinds"},
                    {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"},
                    {"type": "audio", "data": "UklGRg==", "mimeType": "audio/wav"},
                    {"type": "resource_link", "uri": "test://doc/1", "name": "doc-1"},
                    {"type": "resource", "resource": {"uri": "test://doc/2", "mimeType": "text/plain", "text": "embedded"}}
                ]))
                .unwrap();
                CallToolResult::success(blocks)
            }
            "leak" => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(
                    "the key is AKIAIOSFODNN7EXAMPLE, keep it safe",
                )]);
                result.structured_content = Some(json!({"key": "AKIAIOSFODNN7EXAMPLE"}));
                result
            }
            "slow" => {
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                    () = context.ct.cancelled() => {
                        self.0.cancelled.fetch_add(1, Ordering::SeqCst);
                    }
                }
                CallToolResult::success(vec![ContentBlock::text("done")])
            }
            "fails" => CallToolResult::error(vec![ContentBlock::text("it broke")]),
            "added" => CallToolResult::success(vec![ContentBlock::text("new")]),
            "huge" => CallToolResult::success(vec![ContentBlock::text("x".repeat(200_000))]),
            other => return Err(McpError::invalid_params(format!("no tool {other}"), None)),
        };
        Ok(result.into())
    }
}

impl Handler {
    fn note_authorization(&self, context: &RequestContext<RoleServer>) {
        let value = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("authorization"))
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.0.authorizations.lock().unwrap().push(value);
    }
}
