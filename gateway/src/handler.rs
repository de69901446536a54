//! The MCP server handler: `tools/list` (filtered by policy, paged) and `tools/call` (route →
//! validate arguments → policy → credential → adapter), and the resources, prompts and
//! completions of MCP servers behind the gateway (`offers.rs`, `subscriptions.rs`); written by
//! hand because what is offered comes from config and from live upstreams.

use std::sync::Arc;

use manifold_adapters::{Answers, ClientLink};
use manifold_policy::{Action, Principal};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
        PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
};
use serde_json::Value;
use tokio::sync::watch;

use crate::{
    audit::AuditStage,
    broker::CredentialBroker,
    policy::{PolicyStage, tool_ref},
    redact::RedactStage,
    router::Catalog,
    telemetry::CallMetrics,
};

mod call;
mod credential;
mod cursor;
mod facts;
mod input_state;
mod logging;
mod notifier;
mod offers;
mod subscriptions;

pub use call::{CallScope, CancelledElsewhere};
pub use input_state::{InputState, Retry};
pub use logging::{ClientLog, SessionLogs};
pub use notifier::{Collected, Notifier, PeerAsker, PeerNotifier};
pub use offers::{ItemError, Resolved};

/// Settings the handler needs from `[server]`.
#[derive(Debug, Clone)]
pub struct HandlerSettings {
    pub tools_page_size: usize,
    pub call_timeout: std::time::Duration,
}

/// State shared by every session of one gateway process.
pub struct Gateway {
    catalog: watch::Receiver<Arc<Catalog>>,
    stages: Stages,
    broker: Arc<dyn CredentialBroker>,
    settings: HandlerSettings,
    session_logs: SessionLogs,
    metrics: CallMetrics,
    /// Seals and opens the `requestState` of calls that need the client's input.
    input_state: InputState,
}

/// The stages around the adapter call: decide before it, mask and record after it.
#[derive(Debug, Default)]
pub struct Stages {
    pub policy: PolicyStage,
    pub redact: RedactStage,
    pub audit: AuditStage,
}

impl Default for PolicyStage {
    fn default() -> Self {
        PolicyStage::allow_all()
    }
}

/// The handler one MCP session (or one stateless request) talks to.
#[derive(Clone)]
pub struct McpHandler {
    gateway: Arc<Gateway>,
    /// This session's `resources/subscribe` subscriptions, by exposed URI; each guard ends its
    /// forwarding (and releases the upstream subscription) when dropped.
    subscriptions: subscriptions::SessionSubscriptions,
    /// The log threshold of a session without a Streamable HTTP session id (stdio, legacy
    /// SSE); sessions with one keep theirs in [`Gateway::session_logs`].
    log: ClientLog,
}

// === impl Gateway ===

impl Gateway {
    pub fn new(
        catalog: watch::Receiver<Arc<Catalog>>,
        stages: Stages,
        broker: Arc<dyn CredentialBroker>,
        settings: HandlerSettings,
        input_state: InputState,
    ) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            stages,
            broker,
            settings,
            session_logs: SessionLogs::default(),
            metrics: CallMetrics::default(),
            input_state,
        })
    }

    /// Calls per tool and outcome, with their latency.
    pub fn call_metrics(&self) -> &CallMetrics {
        &self.metrics
    }

    /// Log thresholds of Streamable HTTP sessions, by session id.
    pub fn session_logs(&self) -> &SessionLogs {
        &self.session_logs
    }

    /// The policy stage in force (for admin views and tests).
    pub fn policy(&self) -> &PolicyStage {
        &self.stages.policy
    }

    /// The audit stage, for whether its log can be written (`/metrics`).
    pub fn audit(&self) -> &AuditStage {
        &self.stages.audit
    }

    /// A fresh handler for a new session.
    pub fn handler(self: &Arc<Self>) -> McpHandler {
        McpHandler {
            gateway: self.clone(),
            subscriptions: Default::default(),
            log: ClientLog::default(),
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// The state of every instance that keeps a connection (upstream MCP servers), by name.
    pub fn instance_health(&self) -> Vec<(Arc<str>, manifold_adapters::Health)> {
        self.catalog()
            .instances()
            .iter()
            .filter_map(|instance| Some((instance.name.clone(), instance.adapter.health()?)))
            .collect()
    }

    /// Carries the retries of 2026-07-28 clients to the replica holding their call
    /// (`session::relay`).
    pub fn relay_retries_through(&self, relay: Arc<dyn manifold_adapters::RelayRetry>) {
        self.input_state.relay_through(relay);
    }

    /// Fires each time a new catalog goes into force.
    pub fn catalog_changes(&self) -> watch::Receiver<Arc<Catalog>> {
        let mut changes = self.catalog.clone();
        changes.mark_unchanged();
        changes
    }
}

/// How often a session's list-change watcher looks whether its client is still there, when no
/// change comes to tell.
const WATCH_RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Tells one session's client what changed each time the catalog changes (tools, resources,
/// prompts), until the session ends.
async fn announce_changes(
    mut changes: watch::Receiver<Arc<Catalog>>,
    peer: rmcp::Peer<RoleServer>,
) {
    let mut last = changes.borrow_and_update().clone();
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(WATCH_RECHECK) => {
                if peer.is_transport_closed() {
                    return;
                }
                continue;
            }
        }
        let current = changes.borrow_and_update().clone();
        for notification in catalog_notifications(&last, &current) {
            if peer.is_transport_closed() || peer.send_notification(notification).await.is_err() {
                return;
            }
        }
        last = current;
    }
}

/// The list-change notifications a move from `old` to `new` calls for.
fn catalog_notifications(old: &Catalog, new: &Catalog) -> Vec<rmcp::model::ServerNotification> {
    use rmcp::model::{
        PromptListChangedNotification, ResourceListChangedNotification, ServerNotification,
        ToolListChangedNotification,
    };
    let mut out = Vec::new();
    if old.tools_differ(new) {
        out.push(ServerNotification::ToolListChangedNotification(
            ToolListChangedNotification::default(),
        ));
    }
    let (resources, prompts) = new.offers().changed_from(old.offers());
    if resources {
        out.push(ServerNotification::ResourceListChangedNotification(
            ResourceListChangedNotification::default(),
        ));
    }
    if prompts {
        out.push(ServerNotification::PromptListChangedNotification(
            PromptListChangedNotification::default(),
        ));
    }
    out
}

/// The caller, as the authentication stage left it in the request's extensions.
fn principal(context: &RequestContext<RoleServer>) -> Principal {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>())
        .cloned()
        .unwrap_or_default()
}

/// The client declared `capabilities.elicitation.url`.
fn supports_url_elicitation(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .and_then(|capabilities| capabilities.elicitation)
        .is_some_and(|elicitation| elicitation.url.is_some())
}

/// How an upstream's questions reach this request's client: a 2026-07-28 request answers them
/// between rounds (the call ends with them, the client retries); a session of the earlier eras
/// is asked on the request's stream.
fn client_link(context: &RequestContext<RoleServer>) -> ClientLink {
    let answers = if context.protocol_version() == Some(ProtocolVersion::V_2026_07_28) {
        Answers::Rounds
    } else {
        Answers::Asked(Arc::new(PeerAsker {
            peer: context.peer.clone(),
            origin: context.id.clone(),
        }))
    };
    ClientLink {
        declared: context.client_capabilities().unwrap_or_default(),
        answers,
        resume: Default::default(),
    }
}

/// The Streamable HTTP session the request belongs to.
fn session_id(context: &RequestContext<RoleServer>) -> Option<&str> {
    context
        .extensions
        .get::<http::request::Parts>()?
        .headers
        .get("mcp-session-id")?
        .to_str()
        .ok()
}

fn traceparent(context: &RequestContext<RoleServer>) -> Option<String> {
    let from_meta = context
        .meta
        .get("traceparent")
        .and_then(Value::as_str)
        .map(str::to_owned);
    from_meta.or_else(|| {
        context
            .extensions
            .get::<http::request::Parts>()?
            .headers
            .get("traceparent")?
            .to_str()
            .ok()
            .map(str::to_owned)
    })
}

// === impl McpHandler ===

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = logging::with_logging(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        );
        // Resources, prompts and completions when an instance can offer them (an MCP server
        // behind the gateway), even before it connected: its lists arrive later.
        let catalog = self.gateway.catalog();
        let instances = catalog.instances();
        if instances.iter().any(|i| i.adapter.resources().is_some()) {
            let mut resources = rmcp::model::ResourcesCapability::default();
            resources.subscribe = Some(true);
            resources.list_changed = Some(true);
            capabilities.resources = Some(resources);
            capabilities.completions = Some(serde_json::Map::new());
        }
        if instances.iter().any(|i| i.adapter.prompts().is_some()) {
            let mut prompts = rmcp::model::PromptsCapability::default();
            prompts.list_changed = Some(true);
            capabilities.prompts = Some(prompts);
            capabilities.completions = Some(serde_json::Map::new());
        }
        let mut info = ServerConfig::new(capabilities);
        let mut implementation = Implementation::new("manifold", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("Manifold MCP gateway".into());
        info.server_info = implementation;
        info.instructions = Some(
            "Manifold connects your company's tools (Linear and more) behind one endpoint. \
             Tool names are `<service>_<action>`, e.g. `linear_search_issues`. List and search \
             tools are read-only and page with an opaque `cursor`; pass the `next_cursor` you got \
             back to continue."
                .into(),
        );
        info
    }

    // No `get_tool`: rmcp asks it only for a tool's schema to check `Mcp-Param-*` headers, and
    // the fast path's check (`transport::param_headers`) runs first on every such call, knows
    // the caller, and compares numbers by value; with rmcp's default (`None`) nothing answers
    // differently through rmcp.

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = principal(&context);
        let catalog = self.gateway.catalog();
        // Filtering happens inside the listing so pages hold only callable tools and cursors stay
        // valid for this principal.
        let engine = self.gateway.stages.policy.engine();
        let visible = catalog.routes().iter().filter(|route| {
            !route.blocked_by_read_only
                && engine
                    .decide(&principal, Action::List, &tool_ref(route), None)
                    .is_allowed()
        });
        let cursor = request.and_then(|r| r.cursor);
        let (tools, next) = cursor::page(
            visible.map(|route| route.tool.clone()),
            cursor.as_deref(),
            self.gateway.settings.tools_page_size,
        )?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let elsewhere = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CancelledElsewhere>())
            .map(|elsewhere| elsewhere.either(&context.ct));
        let cancel = match &elsewhere {
            Some((either, _)) => either.clone(),
            None => context.ct.clone(),
        };
        let scope = self.scope(&context, cancel);
        self.gateway.call_tool(request, &scope).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, McpError> {
        let cursor = request.and_then(|r| r.cursor);
        self.gateway
            .list_resources(&principal(&context), cursor.as_deref())
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, McpError> {
        let cursor = request.and_then(|r| r.cursor);
        self.gateway
            .list_resource_templates(&principal(&context), cursor.as_deref())
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, McpError> {
        let scope = self.scope(&context, context.ct.clone());
        let retry = Retry {
            input_responses: request.input_responses,
            request_state: request.request_state,
        };
        self.gateway
            .read_resource(&request.uri, retry, &scope)
            .await
    }

    #[allow(deprecated)] // resources/subscribe: how every 2025-era client subscribes
    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let scope = self.scope(&context, context.ct.clone());
        let sink = subscriptions::UpdateSink::Peer(context.peer.clone());
        self.subscriptions
            .subscribe(&self.gateway, request.uri, &scope, sink)
            .await
    }

    #[allow(deprecated)] // resources/unsubscribe: how every 2025-era client ends one
    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.subscriptions.unsubscribe(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, McpError> {
        let cursor = request.and_then(|r| r.cursor);
        self.gateway
            .list_prompts(&principal(&context), cursor.as_deref())
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, McpError> {
        let scope = self.scope(&context, context.ct.clone());
        let retry = Retry {
            input_responses: request.input_responses,
            request_state: request.request_state,
        };
        self.gateway
            .get_prompt(&request.name, request.arguments, retry, &scope)
            .await
    }

    async fn complete(
        &self,
        request: rmcp::model::CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CompleteResult, McpError> {
        let scope = self.scope(&context, context.ct.clone());
        self.gateway.complete(request, &scope).await
    }

    /// A session of the 2024-11-05 … 2025-11-25 eras: its client hears of every catalog change
    /// (`notifications/tools/list_changed`) on its stream.
    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        tokio::spawn(announce_changes(
            self.gateway.catalog_changes(),
            context.peer,
        ));
    }

    /// 2026-07-28: list changes and resource updates are heard on a `subscriptions/listen`
    /// stream. rmcp keeps only what `get_info` advertises.
    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        let mut accepted = rmcp::model::SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.resources_list_changed = requested.resources_list_changed;
        accepted.prompts_list_changed = requested.prompts_list_changed;
        accepted.resource_subscriptions = requested.resource_subscriptions.clone();
        Some(accepted)
    }

    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let scope = self.scope(
            context.request_context(),
            context.request_context().ct.clone(),
        );
        // Each resource the caller may read is forwarded while the stream lasts; the others
        // stay silent, as if they never changed.
        let requested = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let stream = subscriptions::SessionSubscriptions::default();
        for uri in requested.into_iter().take(subscriptions::MAX_PER_SESSION) {
            let sink = subscriptions::UpdateSink::Listen(context.sink().clone());
            if let Err(error) = stream.subscribe(&self.gateway, uri, &scope, sink).await {
                tracing::debug!(%error, "resource subscription on a listen stream refused");
            }
        }
        let mut changes = self.gateway.catalog_changes();
        let mut last = self.gateway.catalog();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
            }
            let current = changes.borrow_and_update().clone();
            for notification in catalog_notifications(&last, &current) {
                if context.sink().send(notification).await.is_err() {
                    return Ok(());
                }
            }
            last = current;
        }
    }

    #[allow(deprecated)] // logging/setLevel: still part of every protocol version we serve
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        match session_id(&context) {
            Some(session) => self.gateway.session_logs.set(session, request.level),
            None => self.log.set_level(request.level),
        }
        Ok(())
    }
}

impl McpHandler {
    /// What the gateway's stages need of a request, built one way for every method.
    fn scope(
        &self,
        context: &RequestContext<RoleServer>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> CallScope {
        CallScope {
            principal: principal(context),
            traceparent: traceparent(context),
            cancel,
            url_elicitation: supports_url_elicitation(context),
            notify: Arc::new(PeerNotifier {
                progress_token: context.meta.get_progress_token(),
                peer: context.peer.clone(),
                log: self.log_of(context),
            }),
            client: client_link(context),
        }
    }

    fn log_of(&self, context: &RequestContext<RoleServer>) -> ClientLog {
        match session_id(context) {
            Some(session) => self.gateway.session_logs.get(session),
            None => self.log.clone(),
        }
    }
}
