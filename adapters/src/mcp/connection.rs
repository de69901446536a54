//! The gateway's connection to one upstream MCP server: opened at start and kept open (stdio
//! children restarted, HTTP sessions re-made) with backoff; the tool list refreshed on the
//! upstream's change notification and on an interval. Any replica keeps its own connection:
//! upstream sessions are never a reason for sticky routing.

use std::{
    collections::HashMap,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

// Sampling, roots and logging are deprecated by SEP-2577, and still used by servers of every era.
#[allow(deprecated)]
use rmcp::model::{
    CreateMessageRequest, CreateMessageRequestParams, CreateMessageResult, ListRootsRequest,
    ListRootsResult, LoggingLevel, SetLevelRequestParams,
};
use rmcp::{
    ClientHandler, ErrorData as McpError, RoleClient,
    model::{
        ClientCapabilities, ClientConfig, ElicitRequest, ElicitRequestParams, ElicitResult,
        Implementation, InputRequest, ProgressNotificationParam, Prompt, ProtocolVersion, Resource,
        ResourceTemplate, ResourceUpdatedNotificationParam,
    },
    service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, Peer, RequestContext},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::{io::AsyncBufReadExt, sync::watch};
use tokio_util::sync::CancellationToken;

use super::{
    calls::Calls,
    convert,
    direct::Direct,
    offers::{Subscription, subscribe_upstream},
    pool::UserLink,
    settings::{Endpoint, McpSettings},
};
use crate::{Health, ResourceUpdate, Secret, ToolSpec};

/// How long a stderr line of a stdio upstream may be in the gateway's log.
const MAX_STDERR_LINE: usize = 2048;
/// The most resources kept of one upstream's list; the rest are left out with a warning (a
/// file server may list far more than any client pages through).
const MAX_RESOURCES: usize = 10_000;
/// The least time between two refreshes of an upstream's lists, however often it says they
/// changed.
pub(super) const REFRESH_GAP: Duration = Duration::from_millis(500);
/// How long one list request upstream may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// The first and the longest wait between reconnection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));

/// State shared by the adapter (calls), the connection task and the upstream's notifications.
pub struct Shared {
    pub name: String,
    pub settings: McpSettings,
    /// `Authorization` and other headers for an HTTP upstream, from the instance credentials.
    pub headers: Vec<(String, Secret)>,
    pub peer: watch::Sender<Option<Peer<RoleClient>>>,
    pub tools: watch::Sender<Arc<[ToolSpec]>>,
    pub resources: watch::Sender<Arc<[Resource]>>,
    pub templates: watch::Sender<Arc<[ResourceTemplate]>>,
    pub prompts: watch::Sender<Arc<[Prompt]>>,
    /// Instance-local URIs the upstream said changed (`notifications/resources/updated`) on
    /// the instance's own connection, for every subscriber (per-user connections have their
    /// own, `pool/subscriptions.rs`).
    pub updates: tokio::sync::broadcast::Sender<ResourceUpdate>,
    /// Resource subscriptions, counted per URI across downstream sessions; renewed on every
    /// new connection.
    pub subscriptions: Mutex<HashMap<String, Subscription>>,
    pub health: Mutex<Health>,
    /// Set when the upstream says its tools changed.
    pub refresh: tokio::sync::Notify,
    /// The calls in flight on the instance's own connection (`calls.rs`); each per-user
    /// connection has its own.
    pub calls: Arc<Calls>,
    /// The direct `tools/call` route of the connection in force, when it has one
    /// (`direct.rs`: Streamable HTTP at 2026-07-28).
    pub direct: watch::Sender<Option<Arc<Direct>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

// === impl Shared ===

impl Shared {
    pub fn subscriptions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscription>> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn set_health(&self, health: Health) {
        let mut current = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if *current != health {
            match &health {
                Health::Up => {
                    tracing::info!(instance = %self.name, "upstream MCP server connected")
                }
                Health::Degraded { reason } => {
                    tracing::warn!(instance = %self.name, %reason, "upstream MCP server unavailable");
                }
            }
            *current = health;
        }
    }

    /// Keeps the connection until `shutdown`: connect, serve, and on loss connect again.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = BACKOFF.0;
        loop {
            let connected = tokio::select! {
                connected = self.connect() => connected,
                () = shutdown.cancelled() => return,
            };
            match connected {
                Ok(service) => {
                    backoff = BACKOFF.0;
                    self.serve(service, &shutdown).await;
                    self.peer.send_replace(None);
                    self.direct.send_replace(None);
                    if shutdown.is_cancelled() {
                        return;
                    }
                    self.set_health(Health::Degraded {
                        reason: "the connection to the upstream was lost; reconnecting".into(),
                    });
                }
                Err(reason) => self.set_health(Health::Degraded { reason }),
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    async fn connect(
        self: &Arc<Self>,
    ) -> Result<rmcp::service::RunningService<RoleClient, UpstreamHandler>, String> {
        self.connect_as(None, Owner::Instance)
            .await
            .map_err(|failure| failure.reason)
    }

    /// A connection whose requests carry `bearer` (one user's token, see `pool.rs`) instead of
    /// the instance's own `Authorization`; `None` for the instance's own connection. `owner`
    /// says where what the upstream announces on it goes.
    pub(super) async fn connect_as(
        self: &Arc<Self>,
        bearer: Option<&Secret>,
        owner: Owner,
    ) -> Result<rmcp::service::RunningService<RoleClient, UpstreamHandler>, ConnectFailure> {
        let handler = self.handler(owner.clone());
        // The newest era first (`server/discover`), else `initialize` with the newest version
        // the server accepts, whatever era the downstream clients speak.
        let lifecycle = ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        };
        let service: Result<_, ConnectFailure> = match &self.settings.endpoint {
            Endpoint::Http(url) => {
                let failure = |error: rmcp::service::ClientInitializeError| ConnectFailure {
                    unauthorized: error.auth_challenge().is_some(),
                    reason: format!("cannot connect to {}: {error}", shown(url)),
                };
                // One client for rmcp's transport and the direct calls: one connection pool.
                let client = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| ConnectFailure::from(e.to_string()))?;
                let transport = self.http_transport(url, client.clone(), bearer)?;
                let service = match handler.serve_with_lifecycle(transport, lifecycle).await {
                    // A server that answers `server/discover` but offers only earlier versions
                    // still speaks them over `initialize`.
                    Err(rmcp::service::ClientInitializeError::NoCompatibleProtocolVersion {
                        ..
                    }) => {
                        let handler = self.handler(owner);
                        let transport = self.http_transport(url, client.clone(), bearer)?;
                        handler
                            .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
                            .await
                            .map_err(&failure)?
                    }
                    other => other.map_err(&failure)?,
                };
                // Direct calls carry the instance's own credentials: only its own connection
                // (no user's bearer) gets the route.
                if bearer.is_none() {
                    self.direct
                        .send_replace(Direct::for_peer(self, service.peer(), client, url)?);
                }
                Ok(service)
            }
            Endpoint::Sse(url) => {
                // Same bound as Streamable HTTP above. The legacy era has no `server/discover`:
                // straight to `initialize`.
                let bound = self.settings.max_response_bytes.saturating_mul(4);
                let headers = super::sse::credential_headers(&self.headers)?;
                let transport = super::sse::SseTransport::connect(&self.name, url, headers, bound)
                    .await
                    .map_err(|error| format!("cannot connect to {}: {error}", shown(url)))?;
                handler
                    .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
                    .await
                    .map_err(|error| format!("cannot connect to {}: {error}", shown(url)).into())
            }
            Endpoint::Stdio { command, env, cwd } => {
                let (program, args) = command.split_first().ok_or("empty command")?;
                let mut process = tokio::process::Command::new(program);
                process.args(args);
                // The child gets only what the config gives it: never the gateway's secrets.
                process.env_clear();
                for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
                    if let Ok(value) = std::env::var(key) {
                        process.env(key, value);
                    }
                }
                process.envs(env);
                if let Some(cwd) = cwd {
                    process.current_dir(cwd);
                }
                let (transport, stderr) = TokioChildProcess::builder(process)
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|error| format!("cannot start `{program}`: {error}"))?;
                if let Some(stderr) = stderr {
                    let name = self.name.clone();
                    tokio::spawn(async move {
                        let mut lines = tokio::io::BufReader::new(stderr).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let line: String = line.chars().take(MAX_STDERR_LINE).collect();
                            tracing::info!(instance = %name, stderr = %line, "upstream MCP server");
                        }
                    });
                }
                handler
                    .serve_with_lifecycle(transport, lifecycle)
                    .await
                    .map_err(|error| {
                        format!("`{program}` did not start as an MCP server: {error}").into()
                    })
            }
        };
        let service = service?;
        // Asked on the side: the connection's tools need not wait for the upstream's answer.
        let (name, peer) = (self.name.clone(), service.peer().clone());
        tokio::spawn(async move { Self::ask_for_logs(&name, &peer).await });
        Ok(service)
    }

    /// The handler of a new connection: a user's own one gets calls of its own.
    fn handler(self: &Arc<Self>, owner: Owner) -> UpstreamHandler {
        UpstreamHandler {
            shared: Arc::downgrade(self),
            calls: match owner {
                Owner::User(_) => Arc::default(),
                Owner::Instance => self.calls.clone(),
            },
            owner,
        }
    }

    /// Passes on an update of `uri` heard on the instance's own connection, to every
    /// subscriber. Only URIs this gateway subscribed to are passed on: an upstream cannot make
    /// sessions hear of resources nobody asked about.
    pub(super) fn relay_update(&self, uri: String) {
        if self.subscriptions().contains_key(&uri) {
            let _ = self.updates.send(ResourceUpdate { uri, user: None });
        }
    }

    /// Asks a 2025-era upstream that logs for every level (`logging/setLevel debug`). Its level
    /// is one per connection, and the connection serves many clients, each with its own
    /// threshold; only the lowest serves them all, so the gateway drops per call what the
    /// caller did not ask for (`LogSink`). A 2026-07-28 upstream hears each call's own level
    /// in the request's `_meta` instead (`client_meta`, `direct.rs`).
    #[allow(deprecated)] // MCP logging (SEP-2577)
    async fn ask_for_logs(name: &str, peer: &Peer<RoleClient>) {
        let logs = peer.peer_info().is_some_and(|info| {
            info.capabilities.logging.is_some()
                && info.protocol_version != ProtocolVersion::V_2026_07_28
        });
        if !logs {
            return;
        }
        let level = SetLevelRequestParams::new(LoggingLevel::Debug);
        match tokio::time::timeout(LIST_TIMEOUT, peer.set_level(level)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::info!(instance = %name, %error, "upstream refused logging/setLevel; its logs come at its own level");
            }
            Err(_) => {
                tracing::info!(instance = %name, "upstream did not answer logging/setLevel in time");
            }
        }
    }

    /// A Streamable HTTP transport to `url` with the instance's credentials, its
    /// `Authorization` replaced by `bearer` (one user's token) when given.
    fn http_transport(
        &self,
        url: &url::Url,
        client: reqwest::Client,
        bearer: Option<&Secret>,
    ) -> Result<StreamableHttpClientTransport<reqwest::Client>, String> {
        // The transport's bound keeps memory in check; answers up to it are read so that one
        // over `max_response_bytes` gets a clear error (`mod.rs`) and the connection stays.
        let bound = self.settings.max_response_bytes.saturating_mul(4);
        let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
            .max_json_response_size(bound)
            .max_sse_event_size(bound)
            .reinit_on_expired_session(true);
        if let Some(bearer) = bearer {
            config = config.auth_header(bearer.expose().trim().to_owned());
        }
        let mut custom = HashMap::new();
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("authorization") {
                if bearer.is_none() {
                    config = config.auth_header(value.expose().trim().to_owned());
                }
                continue;
            }
            let name = http::HeaderName::try_from(name.as_str())
                .map_err(|_| format!("credential header `{name}` is not a header name"))?;
            let value = http::HeaderValue::try_from(value.expose().trim())
                .map_err(|_| format!("credential header `{name}` has an invalid value"))?;
            custom.insert(name, value);
        }
        config = config.custom_headers(custom);
        Ok(StreamableHttpClientTransport::with_client(client, config))
    }

    /// Serves one connection until it ends or the gateway shuts down.
    async fn serve(
        self: &Arc<Self>,
        service: rmcp::service::RunningService<RoleClient, UpstreamHandler>,
        shutdown: &CancellationToken,
    ) {
        let peer = service.peer().clone();
        let stop = service.cancellation_token();
        let mut ended = tokio::spawn(service.waiting());
        // Calls may go out as soon as the tools they name are listed: the connection is in
        // force before the first list is published.
        self.peer.send_replace(Some(peer.clone()));
        if let Err(reason) = self.refresh_tools(&peer).await {
            self.set_health(Health::Degraded { reason });
            stop.cancel();
            let _ = ended.await;
            return;
        }
        self.refresh_offers(&peer).await;
        self.resubscribe(&peer).await;
        self.set_health(Health::Up);
        // 2026-07-28 servers announce list changes only on a `subscriptions/listen` stream;
        // earlier ones send them on the session (`on_tool_list_changed`). Either way the
        // interval refresh remains, for servers that announce nothing.
        let shared = self.clone();
        let _listening = self
            .listen_for_changes(&peer, move || shared.refresh.notify_one())
            .await;
        let mut interval = tokio::time::interval(self.settings.refresh_interval);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = &mut ended => return,
                () = shutdown.cancelled() => {
                    stop.cancel();
                    let _ = ended.await;
                    return;
                }
                () = self.refresh.notified() => {}
                _ = interval.tick() => {}
            }
            if let Err(reason) = self.refresh_tools(&peer).await {
                tracing::warn!(instance = %self.name, %reason, "tool list refresh failed");
            }
            self.refresh_offers(&peer).await;
            // A flood of change notifications makes one refresh per gap, not one each: the
            // notifications meanwhile fold into the next (`Notify` keeps one permit).
            tokio::select! {
                _ = &mut ended => return,
                () = shutdown.cancelled() => {
                    stop.cancel();
                    let _ = ended.await;
                    return;
                }
                () = tokio::time::sleep(REFRESH_GAP) => {}
            }
        }
    }

    /// Fetches the resource, template and prompt lists the server's capabilities announce,
    /// publishing each that differs. A list that fails keeps its last value: tools still work.
    pub(super) async fn refresh_offers(&self, peer: &Peer<RoleClient>) {
        let capabilities = peer
            .peer_info()
            .map(|info| info.capabilities.clone())
            .unwrap_or_default();
        if capabilities.resources.is_some() {
            let listed = tokio::time::timeout(LIST_TIMEOUT, peer.list_all_resources()).await;
            if let Some(resources) = self.listed("resources", listed, MAX_RESOURCES) {
                publish(&self.resources, resources);
            }
            let listed =
                tokio::time::timeout(LIST_TIMEOUT, peer.list_all_resource_templates()).await;
            if let Some(templates) =
                self.listed("resource templates", listed, self.settings.max_tools)
            {
                publish(&self.templates, templates);
            }
        }
        if capabilities.prompts.is_some() {
            let listed = tokio::time::timeout(LIST_TIMEOUT, peer.list_all_prompts()).await;
            if let Some(prompts) = self.listed("prompts", listed, self.settings.max_tools) {
                publish(&self.prompts, prompts);
            }
        }
    }

    /// A list as fetched, cut at `cap`; `None` (logged) when it could not be fetched.
    fn listed<T>(
        &self,
        what: &str,
        listed: Result<Result<Vec<T>, rmcp::service::ServiceError>, tokio::time::error::Elapsed>,
        cap: usize,
    ) -> Option<Vec<T>> {
        let mut items = match listed {
            Ok(Ok(items)) => items,
            Ok(Err(error)) => {
                tracing::warn!(instance = %self.name, %error, "upstream {what} could not be listed");
                return None;
            }
            Err(_) => {
                tracing::warn!(instance = %self.name, "upstream did not list its {what} in time");
                return None;
            }
        };
        if items.len() > cap {
            tracing::warn!(instance = %self.name, listed = items.len(), kept = cap, "upstream listed more {what} than the gateway keeps");
            items.truncate(cap);
        }
        Some(items)
    }

    /// Renews every counted subscription on a new connection (the old one's are gone).
    async fn resubscribe(self: &Arc<Self>, peer: &Peer<RoleClient>) {
        let uris: Vec<String> = self.subscriptions().keys().cloned().collect();
        for uri in uris {
            let shared = Arc::downgrade(self);
            let relay = move |uri| {
                if let Some(shared) = shared.upgrade() {
                    shared.relay_update(uri);
                }
            };
            match subscribe_upstream(peer, &uri, relay).await {
                Ok(stream) => {
                    if let Some(entry) = self.subscriptions().get_mut(&uri) {
                        entry.stream = stream;
                    }
                }
                Err(error) => {
                    tracing::warn!(instance = %self.name, %uri, %error, "resource subscription not renewed");
                }
            }
        }
    }

    /// Opens a list-change subscription on a 2026-07-28 connection; the task it returns turns
    /// each notification into `changed` (which asks for a refresh) and ends with the
    /// connection (dropped: cancelled).
    pub(super) async fn listen_for_changes(
        &self,
        peer: &Peer<RoleClient>,
        changed: impl Fn() + Send + 'static,
    ) -> Option<tokio_util::sync::DropGuard> {
        let modern = peer
            .peer_info()
            .is_some_and(|info| info.protocol_version == ProtocolVersion::V_2026_07_28);
        if !modern {
            return None;
        }
        let filter = rmcp::model::SubscriptionFilter::builder()
            .tools_list_changed()
            .resources_list_changed()
            .prompts_list_changed()
            .build();
        let mut subscription = match peer.listen(filter).await {
            Ok(subscription) => subscription,
            Err(error) => {
                tracing::info!(instance = %self.name, %error, "upstream offers no list-change subscription; refreshing on the interval");
                return None;
            }
        };
        let stop = CancellationToken::new();
        let guard = stop.clone().drop_guard();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    next = subscription.next() => match next {
                        Ok(Some(_)) => changed(),
                        _ => return,
                    },
                    () = stop.cancelled() => return,
                }
            }
        });
        Some(guard)
    }

    /// Fetches the tool list and publishes it when it differs.
    pub(super) async fn refresh_tools(&self, peer: &Peer<RoleClient>) -> Result<(), String> {
        let listed = tokio::time::timeout(Duration::from_secs(30), peer.list_all_tools())
            .await
            .map_err(|_| "the upstream did not list its tools in time".to_owned())?
            .map_err(|error| format!("tools/list failed: {error}"))?;
        let (specs, refused) = convert::specs(
            listed,
            self.settings.trust_annotations,
            self.settings.max_tools,
        );
        for reason in refused {
            tracing::warn!(instance = %self.name, %reason, "upstream tool refused");
        }
        let changed = {
            let current = self.tools.borrow();
            current.len() != specs.len()
                || current
                    .iter()
                    .zip(&specs)
                    .any(|(a, b)| a.upstream != b.upstream)
        };
        if changed {
            tracing::info!(instance = %self.name, tools = specs.len(), "upstream tool list changed");
            self.tools.send_replace(specs.into());
        }
        Ok(())
    }
}

/// Why a connection could not be made; `unauthorized` when the upstream refused its credential
/// (401), which a per-user connection answers by renewing the user's token.
#[derive(Debug)]
pub struct ConnectFailure {
    pub reason: String,
    pub unauthorized: bool,
}

impl From<String> for ConnectFailure {
    fn from(reason: String) -> Self {
        Self {
            reason,
            unauthorized: false,
        }
    }
}

impl From<&str> for ConnectFailure {
    fn from(reason: &str) -> Self {
        reason.to_owned().into()
    }
}

/// Publishes `items` when they differ from what is in force.
fn publish<T: PartialEq>(sender: &watch::Sender<Arc<[T]>>, items: Vec<T>) {
    sender.send_if_modified(|current| {
        if current[..] == items[..] {
            return false;
        }
        *current = items.into();
        true
    });
}

/// The gateway as the upstream's client: takes its notifications.
pub struct UpstreamHandler {
    shared: std::sync::Weak<Shared>,
    /// The calls in flight on this connection, which alone its upstream may reach: request
    /// ids and progress tokens are numbered per connection, so one user's connection (`pool.rs`)
    /// must never look them up among another's.
    pub(super) calls: Arc<Calls>,
    /// Whose connection it is: where its list changes and resource updates go.
    owner: Owner,
}

/// Whose a connection is.
#[derive(Clone)]
pub(super) enum Owner {
    /// The instance's own, shared by every user: its list changes refresh the instance's
    /// lists, its resource updates reach every subscriber.
    Instance,
    /// One user's (`pool.rs`): its list changes refresh the instance's lists too (bounded
    /// across every user's connection), its resource updates reach that user's subscribers
    /// only.
    User(UserLink),
}

/// Who the gateway says it is to upstreams, and what it offers them: rmcp's handshake and the
/// direct calls' `_meta` send the same. A 2025-era upstream hears of sampling, elicitation (both
/// modes) and roots: it may ask, and each request goes to the client of the call it came with,
/// which may not be able to answer (`asking.rs`). A 2026-07-28 upstream hears per request what
/// the calling client declared (`client_meta`); this declaration is replaced there.
#[allow(deprecated)] // sampling and roots (SEP-2577), relayed while servers still ask
pub fn client_config() -> ClientConfig {
    let capabilities = ClientCapabilities::builder()
        .enable_sampling()
        .enable_elicitation()
        .enable_roots()
        .build();
    let mut info = ClientConfig::new(
        capabilities,
        Implementation::new("manifold", env!("CARGO_PKG_VERSION")),
    );
    info.protocol_version = ProtocolVersion::V_2025_11_25;
    info
}

#[allow(deprecated)] // sampling and roots (SEP-2577), relayed while servers still ask
impl ClientHandler for UpstreamHandler {
    fn get_info(&self) -> ClientConfig {
        client_config()
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let request = InputRequest::CreateMessage(CreateMessageRequest::new(params));
        self.relay(request, &context).await
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let request = InputRequest::Elicitation(ElicitRequest::new(params));
        self.relay(request, &context).await
    }

    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        let request = InputRequest::ListRoots(ListRootsRequest::default());
        self.relay(request, &context).await
    }

    async fn on_tool_list_changed(&self, context: NotificationContext<RoleClient>) {
        self.list_changed(&context.peer);
    }

    async fn on_resource_list_changed(&self, context: NotificationContext<RoleClient>) {
        self.list_changed(&context.peer);
    }

    async fn on_prompt_list_changed(&self, context: NotificationContext<RoleClient>) {
        self.list_changed(&context.peer);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        match &self.owner {
            Owner::Instance => {
                if let Some(shared) = self.shared.upgrade() {
                    shared.relay_update(params.uri);
                }
            }
            Owner::User(link) => link.resource_updated(params.uri),
        }
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.calls.on_progress(params);
    }

    #[allow(deprecated)] // upstream logs are still sent by every 2025-era server
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let data: String = params
            .data
            .to_string()
            .chars()
            .take(MAX_STDERR_LINE)
            .collect();
        tracing::debug!(instance = %shared.name, level = ?params.level, %data, "upstream log");
        // No notification comes with the stream it arrived on (`Calls::on_log`).
        if !self.calls.on_log(params, None) {
            tracing::debug!(instance = %shared.name, "upstream log outside any single call not passed on");
        }
    }
}

// === impl UpstreamHandler ===

impl UpstreamHandler {
    /// The upstream says a list changed (a 2025-era session's notification): the instance's
    /// lists are fetched again, on the connection it came on.
    fn list_changed(&self, peer: &Peer<RoleClient>) {
        match &self.owner {
            Owner::Instance => {
                if let Some(shared) = self.shared.upgrade() {
                    shared.refresh.notify_one();
                }
            }
            Owner::User(link) => link.list_changed(peer),
        }
    }

    /// Relays one request of the upstream to the client of its call and reads the client's
    /// result as the type the upstream expects.
    async fn relay<T: serde::de::DeserializeOwned>(
        &self,
        request: InputRequest,
        context: &RequestContext<RoleClient>,
    ) -> Result<T, McpError> {
        let shared = self
            .shared
            .upgrade()
            .ok_or_else(|| McpError::internal_error("the gateway is shutting down", None))?;
        let answer = self.calls.relay(&shared.name, request, context).await?;
        serde_json::from_value(answer).map_err(|error| {
            McpError::internal_error(
                format!("the client's answer could not be read: {error}"),
                None,
            )
        })
    }
}

/// A URL as logs and `/healthz` may show it: no user info, query or fragment, where a
/// credential might hide.
fn shown(url: &url::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port()
            .map(|port| format!(":{port}"))
            .unwrap_or_default()
    ) + url.path()
}
