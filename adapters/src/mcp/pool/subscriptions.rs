//! Resource subscriptions on a per-user instance: each user's are counted across that user's
//! sessions and held on that user's own connection, so the upstream tells each user of the
//! resources as that user sees them. An update heard on a user's connection reaches only that
//! user's subscribers, on a stream of that user's own ([`crate::Resources::updates`]), and only
//! for a URI that user subscribed to, while the connection is the user's current one: anything
//! else goes nowhere. When a user's connection is replaced (a refreshed token, a lost
//! connection) their subscriptions are made again on the new one.

use std::{
    collections::HashMap,
    sync::{Arc, MutexGuard},
};

use rmcp::{
    RoleClient,
    model::{ClientRequest, UnsubscribeRequestParams},
    service::Peer,
};
use tokio::sync::broadcast;

use super::{Pool, UserLink};
use crate::{
    CallContext, ResourceUpdate, ToolError,
    mcp::{
        UPDATES_BUFFER,
        connection::Shared,
        offers::{Subscription, modern, release, subscribe_upstream},
        service_error,
    },
};

/// Resources one user may subscribe to on one instance, across all of their sessions.
pub(super) const MAX_PER_USER: usize = 256;
/// Users who may hold subscriptions on one instance at once: each keeps a connection open
/// that is never evicted while they do.
pub(super) const MAX_USERS: usize = 256;

/// Why a subscription is refused before it reaches the upstream.
#[derive(Debug, thiserror::Error)]
pub(super) enum SubscribeError {
    #[error("a resource subscription on `{0}` needs a signed-in user")]
    NoUser(String),
    #[error("one user may subscribe to at most {MAX_PER_USER} resources of `{0}`")]
    TooManyResources(String),
    #[error("at most {MAX_USERS} users may hold resource subscriptions on `{0}` at once")]
    TooManyUsers(String),
}

impl From<SubscribeError> for ToolError {
    fn from(error: SubscribeError) -> Self {
        match error {
            SubscribeError::NoUser(_) => ToolError::Unauthorized(error.to_string()),
            _ => ToolError::InvalidArguments(error.to_string()),
        }
    }
}

/// One user's subscriptions on one instance.
pub(super) struct UserSubscriptions {
    /// By instance-local URI, counted across the user's sessions.
    uris: HashMap<String, Subscription>,
    /// The user's updates; every forwarder of the user's sessions listens here.
    updates: broadcast::Sender<ResourceUpdate>,
    /// The connection (serial) each URI is subscribed on upstream, or being subscribed on: a
    /// first subscriber and the renewal on a connection it made itself subscribe once.
    on: HashMap<String, u64>,
}

impl Default for UserSubscriptions {
    fn default() -> Self {
        Self {
            uris: HashMap::new(),
            updates: broadcast::channel(UPDATES_BUFFER).0,
            on: HashMap::new(),
        }
    }
}

// === impl Pool ===

impl Pool {
    pub(super) fn subscribed(&self) -> MutexGuard<'_, HashMap<String, UserSubscriptions>> {
        self.subscribed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes `ctx`'s user to `uri` on their own connection (made if need be): the first
    /// of that user's subscribers of `uri` subscribes upstream, the others count.
    pub(in crate::mcp) async fn subscribe(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        uri: &str,
        ctx: &CallContext,
    ) -> Result<(), ToolError> {
        let user = signed_in(shared, ctx)?.to_owned();
        let first = {
            let mut subscribed = self.subscribed();
            if !subscribed.contains_key(&user) && subscribed.len() >= MAX_USERS {
                return Err(SubscribeError::TooManyUsers(shared.name.clone()).into());
            }
            let mine = subscribed.entry(user.clone()).or_default();
            if !mine.uris.contains_key(uri) && mine.uris.len() >= MAX_PER_USER {
                let refused = SubscribeError::TooManyResources(shared.name.clone());
                forget_if_empty(&mut subscribed, &user);
                return Err(refused.into());
            }
            let entry = mine.uris.entry(uri.to_owned()).or_default();
            entry.count += 1;
            entry.count == 1
        };
        if !first {
            return Ok(());
        }
        let subscribed = async {
            let ((peer, _), serial) = self.peer_serial(shared, ctx).await?;
            if !self.claim(&user, uri, serial) {
                // Renewed on this connection already, by the request that made it.
                return Ok((serial, None));
            }
            let link = self.link(&user, serial);
            let relay = move |uri| link.resource_updated(uri);
            let stream = subscribe_upstream(&peer, uri, relay).await?;
            Ok::<_, ToolError>((serial, stream))
        }
        .await;
        match subscribed {
            Ok((_, None)) => Ok(()),
            Ok((serial, stream)) => {
                self.keep_stream(&user, serial, uri, stream);
                Ok(())
            }
            Err(error) => {
                let mut subscribed = self.subscribed();
                if let Some(mine) = subscribed.get_mut(&user)
                    && release(&mut mine.uris, uri)
                {
                    mine.on.remove(uri);
                }
                forget_if_empty(&mut subscribed, &user);
                Err(error)
            }
        }
    }

    /// Drops one of `ctx`'s user's subscribers of `uri`; the last one ends the upstream
    /// subscription, on the user's connection in force (never a new one: a lost connection's
    /// subscriptions went with it).
    pub(in crate::mcp) async fn unsubscribe(
        &self,
        uri: &str,
        ctx: &CallContext,
    ) -> Result<(), ToolError> {
        let Some(user) = ctx.user.as_deref().filter(|user| !user.is_empty()) else {
            return Ok(());
        };
        let last = {
            let mut subscribed = self.subscribed();
            let last = subscribed.get_mut(user).is_some_and(|mine| {
                let last = release(&mut mine.uris, uri);
                if last {
                    mine.on.remove(uri);
                }
                last
            });
            forget_if_empty(&mut subscribed, user);
            last
        };
        // A 2026-07-28 stream ended when its guard dropped; an earlier upstream is told.
        let Some((peer, _)) = self.current(user).filter(|_| last) else {
            return Ok(());
        };
        if modern(&peer) {
            return Ok(());
        }
        #[allow(deprecated)] // resources/unsubscribe: how every 2025-era server is told
        let request = ClientRequest::UnsubscribeRequest(rmcp::model::UnsubscribeRequest::new(
            UnsubscribeRequestParams::new(uri),
        ));
        peer.send_request(request)
            .await
            .map(drop)
            .map_err(service_error)
    }

    /// The updates `user` may hear: their own stream, or for no user (or one who subscribed
    /// to nothing here) a stream that has ended.
    pub(in crate::mcp) fn updates(
        &self,
        user: Option<&str>,
    ) -> broadcast::Receiver<ResourceUpdate> {
        let subscribed = self.subscribed();
        match user.and_then(|user| subscribed.get(user)) {
            Some(mine) => mine.updates.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// Passes on an update heard on `user`'s connection `serial`: to that user's subscribers
    /// only, when that connection is the user's current one (a replaced one's subscriptions
    /// were renewed on its successor) and the user subscribed to `uri`.
    pub(super) fn relay(&self, user: &str, serial: u64, uri: String) {
        if !self.is_current(user, serial) {
            return;
        }
        let subscribed = self.subscribed();
        if let Some(mine) = subscribed.get(user)
            && mine.uris.contains_key(&uri)
        {
            let update = ResourceUpdate {
                uri,
                user: Some(user.to_owned()),
            };
            let _ = mine.updates.send(update);
        }
    }

    /// Renews, on the user's new connection `link`, every subscription the user holds (made
    /// on the side: the request that made the connection does not wait).
    pub(super) fn resubscribe(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        link: &UserLink,
        peer: &Peer<RoleClient>,
    ) {
        let uris: Vec<String> = match self.subscribed().get(&link.user) {
            Some(mine) => mine.uris.keys().cloned().collect(),
            None => return,
        };
        let (pool, name, link, peer) = (
            self.clone(),
            shared.name.clone(),
            link.clone(),
            peer.clone(),
        );
        tokio::spawn(async move {
            for uri in uris {
                if !pool.claim(&link.user, &uri, link.serial) {
                    continue;
                }
                let relay = {
                    let link = link.clone();
                    move |uri| link.resource_updated(uri)
                };
                match subscribe_upstream(&peer, &uri, relay).await {
                    Ok(stream) => pool.keep_stream(&link.user, link.serial, &uri, stream),
                    Err(error) => {
                        tracing::warn!(instance = %name, %uri, %error, "a user's resource subscription was not renewed");
                    }
                }
            }
        });
    }

    /// Marks `user`'s subscription to `uri` as made on connection `serial`; `false` when it is
    /// already (or no longer wanted), so it is not made twice.
    fn claim(&self, user: &str, uri: &str, serial: u64) -> bool {
        let mut subscribed = self.subscribed();
        let Some(mine) = subscribed.get_mut(user) else {
            return false;
        };
        if !mine.uris.contains_key(uri) || mine.on.get(uri) == Some(&serial) {
            return false;
        }
        mine.on.insert(uri.to_owned(), serial);
        true
    }

    /// Keeps the 2026-07-28 stream of `user`'s subscription to `uri` made on connection
    /// `serial`, while that connection is current and the subscription still wanted; dropped
    /// (ended) otherwise.
    fn keep_stream(
        &self,
        user: &str,
        serial: u64,
        uri: &str,
        stream: Option<tokio_util::sync::DropGuard>,
    ) {
        if !self.is_current(user, serial) {
            return;
        }
        if let Some(subscription) = self
            .subscribed()
            .get_mut(user)
            .and_then(|mine| mine.uris.get_mut(uri))
        {
            subscription.stream = stream;
        }
    }

    /// What connection `serial` of `user` tells the pool.
    fn link(self: &Arc<Self>, user: &str, serial: u64) -> UserLink {
        UserLink {
            pool: Arc::downgrade(self),
            user: user.to_owned(),
            serial,
        }
    }
}

/// The caller's user, without whom a per-user subscription has no connection to be on.
fn signed_in<'c>(shared: &Shared, ctx: &'c CallContext) -> Result<&'c str, SubscribeError> {
    ctx.user
        .as_deref()
        .filter(|user| !user.is_empty())
        .ok_or_else(|| SubscribeError::NoUser(shared.name.clone()))
}

/// Forgets a user who subscribes to nothing any more: their connection may be evicted again.
fn forget_if_empty(subscribed: &mut HashMap<String, UserSubscriptions>, user: &str) {
    if subscribed
        .get(user)
        .is_some_and(|mine| mine.uris.is_empty())
    {
        subscribed.remove(user);
    }
}
