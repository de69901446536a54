//! Resource subscriptions of one session: `resources/subscribe` (2025 era, updates on the
//! session's stream) or the `resourceSubscriptions` of a 2026-07-28 `subscriptions/listen`
//! stream. Each is decided like a read, subscribed upstream through the adapter (which counts
//! subscribers, so sessions share one upstream subscription), and forwarded by a task that
//! passes on only updates of that resource, under its exposed URI, until the session ends or
//! unsubscribes. An update says whom it is for ([`manifold_adapters::ResourceUpdate`]): one
//! heard on a user's own upstream connection (an instance whose upstream authenticates each
//! user) reaches only that user's sessions, and a session without a user hears none of those.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use manifold_adapters::CallContext;
use rmcp::{
    ErrorData as McpError, Peer, RoleServer,
    model::{ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerNotification},
    service::SubscriptionSink,
};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{CallScope, Gateway, Resolved};

/// Most resources one session may subscribe to: each holds a task and an upstream interest.
pub const MAX_PER_SESSION: usize = 256;

/// How long releasing an upstream subscription may take once its session is gone.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a forwarder with nothing to forward checks that its session is still there.
const RECHECK: Duration = Duration::from_secs(30);

/// Where a session hears of updates.
#[derive(Clone)]
pub enum UpdateSink {
    /// `notifications/resources/updated` on the session (2025 era).
    Peer(Peer<RoleServer>),
    /// On a 2026-07-28 `subscriptions/listen` stream.
    Listen(SubscriptionSink),
}

impl UpdateSink {
    /// Sends one update; `false` once the session or stream is gone.
    async fn send(&self, uri: &str) -> bool {
        let notification = ServerNotification::ResourceUpdatedNotification(
            ResourceUpdatedNotification::new(ResourceUpdatedNotificationParam::new(uri)),
        );
        match self {
            UpdateSink::Peer(peer) => peer.send_notification(notification).await.is_ok(),
            UpdateSink::Listen(sink) => sink.send(notification).await.is_ok(),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            UpdateSink::Peer(peer) => peer.is_transport_closed(),
            UpdateSink::Listen(_) => false,
        }
    }
}

/// A session's subscriptions by exposed URI; dropping one (or the set) ends its forwarding.
#[derive(Clone, Default)]
pub struct SessionSubscriptions(Arc<Mutex<HashMap<String, DropGuard>>>);

impl SessionSubscriptions {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, DropGuard>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes the session to `uri` if the caller may read it. Subscribing twice is one
    /// subscription.
    pub async fn subscribe(
        &self,
        gateway: &Gateway,
        uri: String,
        scope: &CallScope,
        sink: UpdateSink,
    ) -> Result<(), McpError> {
        let redact = |text: &str| gateway.stages.redact.redact_text(text);
        let resolved = gateway
            .resolve_resource(&uri)
            .and_then(|resolved| {
                gateway.decide_read(&scope.principal, &resolved)?;
                Ok(resolved)
            })
            .map_err(|error| error.rescue(&uri, redact))?;
        {
            let held = self.held();
            if held.contains_key(&uri) {
                return Ok(());
            }
            if held.len() >= MAX_PER_SESSION {
                return Err(McpError::invalid_request(
                    format!("A session may subscribe to at most {MAX_PER_SESSION} resources."),
                    None,
                ));
            }
        }
        let Some(resources) = resolved.adapter.resources() else {
            return Err(McpError::invalid_params(
                "Resource not found",
                Some(serde_json::json!({ "uri": uri })),
            ));
        };
        // As the caller: an upstream that authenticates each user is subscribed on the caller's
        // own connection, and tells only the caller of its updates.
        // Bounded like a read: an upstream that never answers cannot hold the client; a token
        // the upstream refuses is renewed once, as for reads.
        let original = &resolved.original;
        gateway
            .credentialed(
                scope,
                &resolved,
                manifold_adapters::ClientLink::default(),
                |ctx| async move { resources.subscribe(original, &ctx).await },
            )
            .await
            .map_err(|error| error.rescue(&uri, redact))?;
        let guard = forward(resolved, sink, scope.principal.user.clone());
        self.held().insert(uri, guard);
        Ok(())
    }

    pub fn unsubscribe(&self, uri: &str) {
        self.held().remove(uri);
    }
}

/// Passes updates of `resolved` for `user` on to `sink` until the guard drops or the session
/// ends, then releases the upstream subscription.
fn forward(resolved: Resolved, sink: UpdateSink, user: Option<String>) -> DropGuard {
    let stop = CancellationToken::new();
    let guard = stop.clone().drop_guard();
    tokio::spawn(async move {
        let adapter = resolved.adapter.clone();
        let Some(resources) = adapter.resources() else {
            return;
        };
        let mut updates = resources.updates(user.as_deref());
        loop {
            let forward = tokio::select! {
                () = stop.cancelled() => break,
                update = updates.recv() => match update {
                    // Fail closed: another resource's, or another user's, goes nowhere.
                    Ok(update) => {
                        update.uri == resolved.original && update.reaches(user.as_deref())
                    }
                    // Missed some: this resource may be among them, and "read it again" is
                    // all an update says. The stream is this user's or everyone's, never
                    // another user's alone.
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => break,
                },
                () = tokio::time::sleep(RECHECK) => {
                    if sink.is_closed() {
                        break;
                    }
                    false
                }
            };
            if forward && !sink.send(&resolved.exposed).await {
                break;
            }
        }
        // Nobody waits for it; bounded so a hung upstream does not keep the task forever.
        let ctx = CallContext {
            user,
            ..CallContext::default()
        };
        let release = resources.unsubscribe(&resolved.original, &ctx);
        let _ = tokio::time::timeout(RELEASE_TIMEOUT, release).await;
    });
    guard
}
