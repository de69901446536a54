//! A small upstream MCP server (rmcp, Streamable HTTP) for tests of the `mcp` adapter kind: tools
//! of every content type, a secret to redact, a slow tool, tools an attacker would offer, and a
//! switch that adds a tool and announces it; resources (one holding a secret, a template with
//! completions, subscriptions and updates) and a prompt with an argument.
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
    /// URIs of `resources/subscribe` requests, and of `resources/unsubscribe` ones.
    pub subscribed: Mutex<Vec<String>>,
    pub unsubscribed: Mutex<Vec<String>>,
    /// URIs read.
    pub reads: Mutex<Vec<String>>,
    /// Offer the `test://doc/new` resource too.
    pub extra_resource: AtomicBool,
    /// `tools/list` requests served.
    pub tool_lists: AtomicUsize,
    /// One list-change notification per message, each sent on its own (no coalescing).
    flood: std::sync::OnceLock<tokio::sync::broadcast::Sender<()>>,
    /// Resource updates for 2026-07-28 `subscriptions/listen` streams.
    updates: std::sync::OnceLock<tokio::sync::broadcast::Sender<String>>,
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

    fn updates(&self) -> &tokio::sync::broadcast::Sender<String> {
        self.updates
            .get_or_init(|| tokio::sync::broadcast::channel(16).0)
    }

    /// Says `uri` changed: on every session (2025 era) and every listen stream.
    pub async fn touch(&self, uri: &str) {
        let _ = self.updates().send(uri.to_owned());
        let peers = self.peers.lock().unwrap().clone();
        for peer in peers {
            let _ = peer
                .notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(uri))
                .await;
        }
    }

    /// Adds the `test://doc/new` resource and tells every session.
    pub async fn add_resource(&self) {
        self.extra_resource.store(true, Ordering::SeqCst);
        // A listen stream hears it as a change of lists; the gateway refetches them all.
        self.changes.send_modify(|n| *n += 1);
        let peers = self.peers.lock().unwrap().clone();
        for peer in peers {
            let _ = peer.notify_resource_list_changed().await;
        }
    }

    fn flood(&self) -> &tokio::sync::broadcast::Sender<()> {
        self.flood
            .get_or_init(|| tokio::sync::broadcast::channel(8192).0)
    }

    /// Says `count` times, as fast as it can, that its tools changed (a hostile upstream): on
    /// every session and every listen stream, each notification sent on its own.
    pub async fn flood_list_changes(&self, count: usize) {
        let peers = self.peers.lock().unwrap().clone();
        for _ in 0..count {
            let _ = self.flood().send(());
            for peer in &peers {
                let _ = peer.notify_tool_list_changed().await;
            }
            tokio::task::yield_now().await;
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
                .enable_resources()
                .enable_resources_subscribe()
                .enable_prompts()
                .enable_completions()
                .build(),
        )
    }

    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        let mut accepted = rmcp::model::SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.resource_subscriptions = requested.resource_subscriptions.clone();
        Some(accepted)
    }

    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.0.changes.subscribe();
        let mut updates = self.0.updates().subscribe();
        let mut flood = self.0.flood().subscribe();
        let watched = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        self.0
            .subscribed
            .lock()
            .unwrap()
            .extend(watched.iter().cloned());
        loop {
            let notification = tokio::select! {
                () = context.cancelled() => {
                    // The stream ending is how a 2026-07-28 client unsubscribes.
                    self.0.unsubscribed.lock().unwrap().extend(watched.iter().cloned());
                    return Ok(());
                }
                changed = changes.changed() => {
                    if changed.is_err() { return Ok(()) }
                    rmcp::model::ServerNotification::ToolListChangedNotification(
                        rmcp::model::ToolListChangedNotification::default(),
                    )
                }
                flooded = flood.recv() => match flooded {
                    Ok(()) => rmcp::model::ServerNotification::ToolListChangedNotification(
                        rmcp::model::ToolListChangedNotification::default(),
                    ),
                    Err(_) => continue,
                },
                update = updates.recv() => match update {
                    Ok(uri) if watched.contains(&uri) => {
                        rmcp::model::ServerNotification::ResourceUpdatedNotification(
                            rmcp::model::ResourceUpdatedNotification::new(
                                rmcp::model::ResourceUpdatedNotificationParam::new(uri),
                            ),
                        )
                    }
                    _ => continue,
                },
            };
            if context.sink().send(notification).await.is_err() {
                return Ok(());
            }
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, McpError> {
        use rmcp::model::Resource;
        let mut resources = vec![
            Resource::new("test://doc/1", "doc-1"),
            Resource::new("test://secret/key", "key"),
            Resource::new("test://blob/1", "blob-1"),
        ];
        if self.0.extra_resource.load(Ordering::SeqCst) {
            resources.push(Resource::new("test://doc/new", "doc-new"));
        }
        Ok(rmcp::model::ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, McpError> {
        Ok(rmcp::model::ListResourceTemplatesResult::with_all_items(
            vec![rmcp::model::ResourceTemplate::new("test://doc/{id}", "doc")],
        ))
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, McpError> {
        use rmcp::model::ResourceContents;
        let uri = request.uri;
        self.0.reads.lock().unwrap().push(uri.clone());
        let contents = if let Some(id) = uri.strip_prefix("test://doc/") {
            ResourceContents::text(format!("doc {id}"), uri.clone())
        } else if uri == "test://secret/key" {
            ResourceContents::text("the key is AKIAIOSFODNN7EXAMPLE", uri.clone())
        } else if uri == "test://blob/1" {
            ResourceContents::BlobResourceContents {
                uri: uri.clone(),
                mime_type: Some("application/octet-stream".into()),
                blob: "AKIAIOSFODNN7EXAMPLE".into(),
                meta: None,
            }
        } else {
            return Err(McpError::invalid_params(
                "Resource not found",
                Some(json!({ "uri": uri })),
            ));
        };
        Ok(rmcp::model::ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.0.subscribed.lock().unwrap().push(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.0.unsubscribed.lock().unwrap().push(request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, McpError> {
        let argument = rmcp::model::PromptArgument::new("name").with_description("Who to greet");
        Ok(rmcp::model::ListPromptsResult::with_all_items(vec![
            rmcp::model::Prompt::new("greet", Some("Greets someone"), Some(vec![argument])),
        ]))
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, McpError> {
        if request.name != "greet" {
            return Err(McpError::invalid_params("no such prompt", None));
        }
        let name = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("nobody")
            .to_owned();
        let message = rmcp::model::PromptMessage::new_text(
            rmcp::model::Role::User,
            format!("Hello {name}, your key is AKIAIOSFODNN7EXAMPLE"),
        );
        Ok(rmcp::model::GetPromptResult::new(vec![message]).into())
    }

    async fn complete(
        &self,
        request: rmcp::model::CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CompleteResult, McpError> {
        let (candidates, expected) = match &request.r#ref {
            rmcp::model::Reference::Prompt(prompt) => {
                (vec!["alice", "albert", "bob"], prompt.name == "greet")
            }
            rmcp::model::Reference::Resource(template) => {
                (vec!["1", "12", "2"], template.uri == "test://doc/{id}")
            }
            _ => (vec![], false),
        };
        if !expected {
            return Err(McpError::invalid_params("unknown reference", None));
        }
        let values = candidates
            .into_iter()
            .filter(|value| value.starts_with(&request.argument.value))
            .map(str::to_owned)
            .collect();
        Ok(rmcp::model::CompleteResult::new(
            rmcp::model::CompletionInfo::new(values).unwrap(),
        ))
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
        self.0.tool_lists.fetch_add(1, Ordering::SeqCst);
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
