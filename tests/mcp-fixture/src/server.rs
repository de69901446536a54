//! The fixture's `ServerHandler`: one instance per session (or per stateless request), all of
//! them sharing the state that must outlive a request: resource subscriptions, the list-change
//! broadcast that `subscriptions/listen` streams follow, and the key sealing `requestState`.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        CompletionInfo, GetPromptRequestParams, GetPromptResponse, Implementation,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, RequestStateCodec, ServerCapabilities,
        ServerConfig, SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter, Tool,
        UnsubscribeRequestParams,
    },
    service::{RequestContext, SubscriptionContext},
};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::{prompts, resources, tools};

/// How long list and read results may be cached: the fixture's catalogue never changes in a way
/// a client must see sooner (the list-change hooks only notify).
pub const TTL_MS: u64 = 60_000;

/// A change that open `subscriptions/listen` streams are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Tools,
    Prompts,
}

/// State shared by every handler instance of one fixture process.
pub struct Shared {
    pub subscriptions: Mutex<HashSet<String>>,
    pub changes: broadcast::Sender<Change>,
    /// Seals `requestState` so a tampered value is refused (input-required-result-tampered-state).
    pub codec: RequestStateCodec,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        let key: [u8; 32] = rand::random();
        Arc::new(Self {
            subscriptions: Mutex::new(HashSet::new()),
            changes: broadcast::channel(64).0,
            codec: RequestStateCodec::new(key.to_vec()),
        })
    }
}

#[derive(Clone)]
pub struct Fixture {
    pub shared: Arc<Shared>,
}

impl Fixture {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// Sends a `notifications/message` to the caller; a client that has gone away is not an error
/// for a fixture.
pub async fn log(context: &RequestContext<RoleServer>, level: LoggingLevel, data: Value) {
    let param =
        LoggingMessageNotificationParam::new(level, data).with_logger("conformance-test-server");
    let _ = context.peer.notify_logging_message(param).await;
}

fn capabilities() -> ServerCapabilities {
    // Everything the suite probes: list-change notifications for tools and prompts (server-stateless
    // triggers them), resource subscriptions, logging and completions.
    serde_json::from_value(json!({
        "tools": { "listChanged": true },
        "resources": { "subscribe": true, "listChanged": true },
        "prompts": { "listChanged": true },
        "logging": {},
        "completions": {}
    }))
    .expect("static capabilities are valid")
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(capabilities())
            .with_server_info(Implementation::new(
                "manifold-mcp-fixture",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("MCP conformance fixture: test tools, resources and prompts.")
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        // The wire name ("debug", "info", …), not the Rust variant name.
        let level = serde_json::to_value(request.level).unwrap_or_default();
        let level = level.as_str().unwrap_or_default();
        log(
            &context,
            LoggingLevel::Info,
            json!(format!("Log level set to: {level}")),
        )
        .await;
        Ok(())
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        // The suite only needs a well-formed answer; an empty list is one.
        let info =
            CompletionInfo::new(Vec::new()).map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::all())
            .with_ttl_ms(TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::all().into_iter().find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        tools::call(self, request, context).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(resources::all())
            .with_ttl_ms(TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(
            ListResourceTemplatesResult::with_all_items(resources::templates())
                .with_ttl_ms(TTL_MS)
                .with_cache_scope(CacheScope::Public),
        )
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        resources::read(&request.uri).map(Into::into)
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let uri = request.uri;
        self.shared
            .subscriptions
            .lock()
            .expect("not poisoned")
            .insert(uri.clone());
        log(
            &context,
            LoggingLevel::Info,
            json!(format!("Subscribed to resource: {uri}")),
        )
        .await;
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let uri = request.uri;
        self.shared
            .subscriptions
            .lock()
            .expect("not poisoned")
            .remove(&uri);
        log(
            &context,
            LoggingLevel::Info,
            json!(format!("Unsubscribed from resource: {uri}")),
        )
        .await;
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // rmcp intersects this with the request and the advertised capabilities.
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.shared.changes.subscribe();
        let accepted = context.accepted().clone();
        loop {
            let change = tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = changes.recv() => change,
            };
            let sent = match change {
                Ok(Change::Tools) if accepted.tools_list_changed == Some(true) => {
                    context.sink().notify_tool_list_changed().await
                }
                Ok(Change::Prompts) if accepted.prompts_list_changed == Some(true) => {
                    context.sink().notify_prompt_list_changed().await
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => Ok(()),
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            };
            if sent.is_err() {
                // The stream is gone; nothing left to deliver to.
                return Ok(());
            }
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::all())
            .with_ttl_ms(TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        prompts::get(request)
    }
}
