//! The `mcp` kind's sandbox: a small company "notes" MCP server (rmcp's server side over
//! Streamable HTTP), so `manifold demo` has an upstream MCP server behind the gateway with no
//! process of its own to start. It has tools (`search_notes`, `get_note`, `create_note`, and
//! `pick_note` and `suggest_title`, which ask the calling client: `asking.rs`),
//! resources (`notes://index`, `notes://note/{id}` and its template), resource subscriptions
//! and one prompt (`summarize_note`). State is in memory and seeded the same on every start.
//!
//! A new note tells whoever subscribed to the index (or to the note) with
//! `notifications/resources/updated`, and that the list changed: legacy sessions after
//! `resources/subscribe`, 2026-07-28 clients on `subscriptions/listen`.

/// The tools that ask the calling client something.
mod asking;
mod catalog;
mod store;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, MutexGuard},
};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
        Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams,
        SubscriptionFilter, Tool, UnsubscribeRequestParams,
    },
    service::{NotificationContext, Peer, RequestContext, SubscriptionContext},
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio::sync::broadcast;

pub use catalog::{INDEX_URI, NOTE_TEMPLATE};

use self::{catalog::Changed, store::Store};

/// Most URIs one session may subscribe to: a client cannot grow the server's memory at will.
const MAX_SUBSCRIPTIONS: usize = 100;

/// A change subscribers hear about.
#[derive(Debug, Clone)]
struct Change {
    uris: Arc<[String]>,
    list: bool,
}

/// State shared by every session's handler: the notes and the change broadcast.
#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    changes: broadcast::Sender<Change>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        // A handler that panicked mid-update leaves whole notes behind: keep serving.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The router the sandbox server mounts under the `mcp` kind's sandbox mount: the notes
/// server's Streamable HTTP endpoint at the mount itself.
pub fn router() -> axum::Router {
    let shared = Arc::new(Shared {
        store: Mutex::new(Store::seeded()),
        changes: broadcast::channel(64).0,
    });
    let service = StreamableHttpService::new(
        move || Ok(Notes::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    axum::Router::new().route_service("/", service)
}

/// One session's handler (or one stateless request's): its subscriptions, and the shared state.
#[derive(Clone)]
struct Notes {
    shared: Arc<Shared>,
    subscribed: Arc<Mutex<HashSet<String>>>,
}

impl Notes {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            subscribed: Arc::default(),
        }
    }

    fn subscribed(&self) -> MutexGuard<'_, HashSet<String>> {
        self.subscribed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, changed: Changed) {
        if changed.uris.is_empty() && !changed.list {
            return;
        }
        // No receiver is not an error: nobody listens.
        let _ = self.shared.changes.send(Change {
            uris: changed.uris.into(),
            list: changed.list,
        });
    }

    /// Tells a legacy session about changes until its transport closes. Started once per
    /// session, when it is initialized.
    async fn forward(
        peer: Peer<RoleServer>,
        subscribed: Arc<Mutex<HashSet<String>>>,
        mut changes: broadcast::Receiver<Change>,
    ) {
        loop {
            let change = match changes.recv().await {
                Ok(change) => change,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if peer.is_transport_closed() {
                return;
            }
            let uris: Vec<String> = {
                let subscribed = subscribed.lock().unwrap_or_else(|p| p.into_inner());
                change
                    .uris
                    .iter()
                    .filter(|uri| subscribed.contains(*uri))
                    .cloned()
                    .collect()
            };
            for uri in uris {
                let param = ResourceUpdatedNotificationParam::new(uri);
                if peer.notify_resource_updated(param).await.is_err() {
                    return;
                }
            }
            if change.list && peer.notify_resource_list_changed().await.is_err() {
                return;
            }
        }
    }
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities::builder()
        .enable_prompts()
        .enable_resources()
        .enable_tools()
        .enable_resources_list_changed()
        .enable_resources_subscribe()
        .build()
}

impl ServerHandler for Notes {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(capabilities())
            .with_server_info(Implementation::new(
                "manifold-sandbox-notes",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "The company's notes: search_notes to find notes, get_note to read one, \
                 create_note to add one. Notes are also resources (notes://note/{id}).",
            )
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        tokio::spawn(Self::forward(
            context.peer,
            self.subscribed.clone(),
            self.shared.changes.subscribe(),
        ));
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut tools = catalog::tools();
        tools.extend(asking::tools());
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        catalog::tools()
            .into_iter()
            .chain(asking::tools())
            .find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if asking::asks(&request.name) {
            let query = request
                .arguments
                .as_ref()
                .and_then(|arguments| arguments.get("query"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let matches = asking::matches(&self.shared.store(), &query);
            return asking::call(matches, &request, &context).await;
        }
        let arguments = request.arguments.unwrap_or_default();
        let (result, changed) = catalog::call(&mut self.shared.store(), &request.name, &arguments)?;
        self.publish(changed);
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(catalog::resources(
            &self.shared.store(),
        )))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            catalog::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        catalog::read(&self.shared.store(), &request.uri).map(Into::into)
    }

    // `resources/subscribe` is how sessions before 2026-07-28 ask for updates.
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if !catalog::exists(&self.shared.store(), &request.uri) {
            return Err(catalog::not_found(&request.uri));
        }
        let mut subscribed = self.subscribed();
        if subscribed.len() >= MAX_SUBSCRIPTIONS && !subscribed.contains(&request.uri) {
            return Err(McpError::invalid_params(
                format!("at most {MAX_SUBSCRIPTIONS} subscriptions per session"),
                None,
            ));
        }
        subscribed.insert(request.uri);
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.subscribed().remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Resource updates only for URIs that exist, and no more than a session may hold;
        // rmcp intersects the rest with the request and the capabilities.
        let mut accepted = requested.clone();
        if let Some(uris) = &mut accepted.resource_subscriptions {
            let store = self.shared.store();
            uris.retain(|uri| catalog::exists(&store, uri));
            uris.truncate(MAX_SUBSCRIPTIONS);
        }
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.shared.changes.subscribe();
        let accepted = context.accepted().clone();
        let watched = accepted.resource_subscriptions.unwrap_or_default();
        loop {
            let change = tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = changes.recv() => change,
            };
            let change = match change {
                Ok(change) => change,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            };
            for uri in change.uris.iter().filter(|uri| watched.contains(*uri)) {
                if context
                    .sink()
                    .notify_resource_updated(uri.clone())
                    .await
                    .is_err()
                {
                    // The stream is gone; nothing left to deliver to.
                    return Ok(());
                }
            }
            if change.list
                && accepted.resources_list_changed == Some(true)
                && context.sink().notify_resource_list_changed().await.is_err()
            {
                return Ok(());
            }
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(catalog::prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        catalog::prompt(
            &self.shared.store(),
            &request.name,
            request.arguments.as_ref(),
        )
        .map(Into::into)
    }
}
