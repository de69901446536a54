//! The upstream's resources and prompts through the adapter contract ([`Resources`],
//! [`Prompts`]): the lists come live from the connection (`connection.rs`), reads, gets and
//! completions go upstream like tool calls (one request path, `McpAdapter::send`), and
//! subscriptions are counted so that many downstream sessions share one upstream subscription
//! (per user, on that user's own connection, for an instance whose upstream authenticates each
//! user: `pool/subscriptions.rs`).

use rmcp::{
    RoleClient,
    model::{
        ClientRequest, CompleteRequest, CompleteRequestParams, CompletionInfo, GetPromptRequest,
        GetPromptRequestParams, GetPromptResult, Prompt, PromptReference, ReadResourceRequest,
        ReadResourceRequestParams, ReadResourceResult, Reference, Resource, ResourceTemplate,
        ResourceTemplateReference, ServerResult, SubscribeRequestParams, SubscriptionFilter,
        UnsubscribeRequestParams,
    },
    service::Peer,
};
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{McpAdapter, request_meta, service_error};
use crate::{CallContext, Completion, LiveList, Prompts, ResourceUpdate, Resources, ToolError};

/// One upstream subscription, shared by every downstream subscriber of its URI.
#[derive(Default)]
pub struct Subscription {
    pub count: usize,
    /// The `subscriptions/listen` stream carrying a 2026-07-28 upstream's updates; `None` for
    /// an earlier upstream, which sends them on the session after `resources/subscribe`.
    pub stream: Option<DropGuard>,
}

#[async_trait::async_trait]
impl Resources for McpAdapter {
    fn resources(&self) -> LiveList<Resource> {
        self.shared.resources.subscribe()
    }

    fn templates(&self) -> LiveList<ResourceTemplate> {
        self.shared.templates.subscribe()
    }

    async fn read(&self, uri: &str, ctx: &CallContext) -> Result<ReadResourceResult, ToolError> {
        let answer = self
            .rounds(ctx, |input_responses, request_state| {
                let mut params = ReadResourceRequestParams::new(uri);
                params.meta = request_meta(ctx);
                params.input_responses = input_responses;
                params.request_state = request_state;
                ClientRequest::ReadResourceRequest(ReadResourceRequest::new(params))
            })
            .await?;
        match answer {
            ServerResult::ReadResourceResult(result) => Ok(result),
            _ => Err(ToolError::BadResponse(
                "the server answered resources/read with something other than contents".into(),
            )),
        }
    }

    async fn subscribe(&self, uri: &str, ctx: &CallContext) -> Result<(), ToolError> {
        if let Some(pool) = &self.pool {
            return pool.subscribe(&self.shared, uri, ctx).await;
        }
        let first = {
            let mut subscriptions = self.shared.subscriptions();
            let entry = subscriptions.entry(uri.to_owned()).or_default();
            entry.count += 1;
            entry.count == 1
        };
        if !first {
            return Ok(());
        }
        let shared = std::sync::Arc::downgrade(&self.shared);
        let relay = move |uri| {
            if let Some(shared) = shared.upgrade() {
                shared.relay_update(uri);
            }
        };
        let subscribed = match self.peer() {
            Ok(peer) => subscribe_upstream(&peer, uri, relay).await,
            Err(error) => Err(error),
        };
        let mut subscriptions = self.shared.subscriptions();
        match subscribed {
            Ok(stream) => {
                if let Some(entry) = subscriptions.get_mut(uri) {
                    entry.stream = stream;
                }
                Ok(())
            }
            Err(error) => {
                release(&mut subscriptions, uri);
                Err(error)
            }
        }
    }

    async fn unsubscribe(&self, uri: &str, ctx: &CallContext) -> Result<(), ToolError> {
        if let Some(pool) = &self.pool {
            return pool.unsubscribe(uri, ctx).await;
        }
        let last = release(&mut self.shared.subscriptions(), uri);
        if !last {
            return Ok(());
        }
        // A 2026-07-28 stream ended when its guard dropped; an earlier upstream is told.
        let Ok(peer) = self.peer() else {
            return Ok(());
        };
        if modern(&peer) {
            return Ok(());
        }
        let mut params = UnsubscribeRequestParams::new(uri);
        params.meta = request_meta(ctx);
        #[allow(deprecated)] // resources/unsubscribe: how every 2025-era server is told
        let request =
            ClientRequest::UnsubscribeRequest(rmcp::model::UnsubscribeRequest::new(params));
        self.send(request, ctx).await.map(drop)
    }

    fn updates(&self, user: Option<&str>) -> broadcast::Receiver<ResourceUpdate> {
        match &self.pool {
            Some(pool) => pool.updates(user),
            None => self.shared.updates.subscribe(),
        }
    }

    async fn complete(
        &self,
        template: &str,
        request: Completion,
        ctx: &CallContext,
    ) -> Result<CompletionInfo, ToolError> {
        let reference = Reference::Resource(ResourceTemplateReference::new(template));
        self.complete_upstream(reference, request, ctx).await
    }
}

#[async_trait::async_trait]
impl Prompts for McpAdapter {
    fn prompts(&self) -> LiveList<Prompt> {
        self.shared.prompts.subscribe()
    }

    async fn get(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        ctx: &CallContext,
    ) -> Result<GetPromptResult, ToolError> {
        let answer = self
            .rounds(ctx, |input_responses, request_state| {
                let mut params = GetPromptRequestParams::new(name);
                params.arguments = arguments.clone();
                params.meta = request_meta(ctx);
                params.input_responses = input_responses;
                params.request_state = request_state;
                ClientRequest::GetPromptRequest(GetPromptRequest::new(params))
            })
            .await?;
        match answer {
            ServerResult::GetPromptResult(result) => Ok(result),
            _ => Err(ToolError::BadResponse(
                "the server answered prompts/get with something other than a prompt".into(),
            )),
        }
    }

    async fn complete(
        &self,
        name: &str,
        request: Completion,
        ctx: &CallContext,
    ) -> Result<CompletionInfo, ToolError> {
        let reference = Reference::Prompt(PromptReference::new(name));
        self.complete_upstream(reference, request, ctx).await
    }
}

impl McpAdapter {
    async fn complete_upstream(
        &self,
        reference: Reference,
        request: Completion,
        ctx: &CallContext,
    ) -> Result<CompletionInfo, ToolError> {
        let mut params = CompleteRequestParams::new(reference, request.argument);
        params.context = request.context;
        params.meta = request_meta(ctx);
        let request = ClientRequest::CompleteRequest(CompleteRequest::new(params));
        match self.send(request, ctx).await? {
            ServerResult::CompleteResult(result) => Ok(result.completion),
            _ => Err(ToolError::BadResponse(
                "the server answered completion/complete with something else".into(),
            )),
        }
    }
}

/// Drops one subscriber of `uri`; `true` when it was the last.
pub(super) fn release(
    subscriptions: &mut std::collections::HashMap<String, Subscription>,
    uri: &str,
) -> bool {
    let Some(entry) = subscriptions.get_mut(uri) else {
        return false;
    };
    entry.count = entry.count.saturating_sub(1);
    if entry.count > 0 {
        return false;
    }
    subscriptions.remove(uri);
    true
}

/// The connection speaks 2026-07-28, where resource updates come on `subscriptions/listen`.
pub(super) fn modern(peer: &Peer<RoleClient>) -> bool {
    peer.peer_info()
        .is_some_and(|info| info.protocol_version == rmcp::model::ProtocolVersion::V_2026_07_28)
}

/// Subscribes the connection to `uri`: `resources/subscribe` on an earlier upstream, a
/// `subscriptions/listen` stream of its own on a 2026-07-28 one (whose guard ends it), whose
/// updates go to `relay` (an earlier upstream's come to the connection's handler). Also used
/// after a reconnection, for every URI still subscribed.
pub async fn subscribe_upstream(
    peer: &Peer<RoleClient>,
    uri: &str,
    relay: impl Fn(String) + Send + 'static,
) -> Result<Option<DropGuard>, ToolError> {
    if !modern(peer) {
        #[allow(deprecated)] // resources/subscribe: how every 2025-era server is asked
        let request = ClientRequest::SubscribeRequest(rmcp::model::SubscribeRequest::new(
            SubscribeRequestParams::new(uri),
        ));
        peer.send_request(request).await.map_err(service_error)?;
        return Ok(None);
    }
    let mut filter = SubscriptionFilter::new();
    filter.resource_subscriptions = Some(vec![uri.to_owned()]);
    let mut subscription = peer.listen(filter).await.map_err(service_error)?;
    let stop = CancellationToken::new();
    let guard = stop.clone().drop_guard();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                next = subscription.next() => match next {
                    Ok(Some(rmcp::model::ServerNotification::ResourceUpdatedNotification(update))) => {
                        relay(update.params.uri);
                    }
                    Ok(Some(_)) => {}
                    _ => return,
                },
                () = stop.cancelled() => return,
            }
        }
    });
    Ok(Some(guard))
}
