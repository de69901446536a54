//! Upstream connections per user, for an `mcp` instance whose upstream authenticates each user
//! (`settings.auth = "oauth"` or `"token_exchange"`). Each user's calls ride on a connection
//! carrying that user's own token (from the broker, [`CallContext::credential`]), so the
//! upstream sees every user as themselves and never the MCP client's token to the gateway. A
//! call with another token than the connection's (the broker refreshed it) makes a new
//! connection, and the old one closes once the calls still on it are over; idle connections are
//! dropped, and the pool is bounded (the least recently used goes first).
//!
//! The instance has no connection of its own, so its tools, resources and prompts are listed on
//! a user's connection: the first one made, and again whenever one is made after
//! `refresh_interval`. Until a user has connected, the instance is degraded ("no user connected
//! yet") and offers nothing.
//!
//! Every user's connection also carries what the shared connection does (`changes.rs`,
//! `subscriptions.rs`): the upstream's list-change notifications (on a 2025-era session, or a
//! 2026-07-28 `subscriptions/listen` stream of each connection) refresh the instance's lists,
//! on the connection that announced it, at most once per gap however many users' connections
//! announce at once; and `resources/subscribe` subscribes on the subscribing user's own
//! connection, whose updates reach only that user's sessions. A connection carrying
//! subscriptions is neither dropped as idle nor evicted; one replaced by a new token's gets its
//! subscriptions renewed, as does one made after the old one was lost (at the user's next
//! request).
//!
//! What an upstream sends during a call on a user's connection — progress, logs, questions for
//! the client — reaches that user's calls only: each connection has its own calls in flight
//! (`calls.rs`), since the ids and tokens the upstream names them by are numbered per connection.

/// List changes heard on any user's connection, folded into bounded refreshes.
mod changes;
/// Resource subscriptions of each user, on that user's connection.
mod subscriptions;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rmcp::{RoleClient, service::Peer};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    McpAdapter,
    calls::Calls,
    connection::{Owner, Shared, UpstreamHandler},
};
use crate::{BuildError, CallContext, Health, Secret, ToolError};

/// Users whose connections are kept at once, besides those carrying subscriptions.
const MAX_CONNECTIONS: usize = 256;
/// A connection unused this long is closed, unless it carries subscriptions.
const IDLE: Duration = Duration::from_secs(600);
/// How long a replaced connection stays open for the calls still on it.
const RETIRE_AFTER: Duration = Duration::from_secs(300);

type Service = rmcp::service::RunningService<RoleClient, UpstreamHandler>;

/// A connection's peer, and its calls in flight (`calls.rs`), which a call on it joins.
pub(super) type Connection = (Peer<RoleClient>, Arc<Calls>);

fn connection(service: &Service) -> Connection {
    (service.peer().clone(), service.service().calls.clone())
}

/// One user's connection.
struct Entry {
    /// The token the connection's requests carry.
    token: Secret,
    /// Which connection of the pool it is: what its handler names itself by ([`UserLink`]).
    serial: u64,
    /// Dropping it closes the connection.
    service: Service,
    /// Ends the connection's list-change stream (2026-07-28).
    _listening: DropGuard,
    used: Instant,
}

/// The per-user connections of one instance.
#[derive(Default)]
pub(super) struct Pool {
    entries: Mutex<HashMap<String, Entry>>,
    /// When the instance's lists were last fetched (on any user's connection).
    listed: Mutex<Option<Instant>>,
    /// The number the next connection gets ([`Entry::serial`]).
    serial: AtomicU64,
    /// Each user's resource subscriptions (`subscriptions.rs`).
    subscribed: Mutex<HashMap<String, subscriptions::UserSubscriptions>>,
    /// List changes heard on any connection, waiting for a refresh (`changes.rs`).
    changes: changes::Changes,
}

/// What a user's connection tells the pool: its list changes and resource updates, named by
/// the connection (its user and serial) so that an update reaches that user's subscribers only,
/// and only while the connection is the user's current one.
#[derive(Clone)]
pub(super) struct UserLink {
    pool: Weak<Pool>,
    user: String,
    serial: u64,
}

/// The credentials an instance with per-user auth may have: only a pre-registered OAuth
/// client's secret, which is the broker's; a shared token would defeat the per-user identity.
pub(super) fn check_credentials(
    credentials: &std::collections::BTreeMap<String, Secret>,
) -> Result<(), BuildError> {
    match credentials.keys().find(|key| *key != "client_secret") {
        Some(key) => Err(BuildError::Setting {
            key: format!("credentials.{key}"),
            reason: "an mcp instance with per-user auth (oauth, token_exchange) takes only \
                     credentials.client_secret (each user's own token is sent upstream)"
                .into(),
        }),
        None => Ok(()),
    }
}

// === impl UserLink ===

impl UserLink {
    pub(super) fn list_changed(&self, peer: &Peer<RoleClient>) {
        if let Some(pool) = self.pool.upgrade() {
            pool.changes.heard(peer);
        }
    }

    pub(super) fn resource_updated(&self, uri: String) {
        if let Some(pool) = self.pool.upgrade() {
            pool.relay(&self.user, self.serial, uri);
        }
    }
}

// === impl Pool ===

impl Pool {
    /// The connection carrying the caller's token, made (and the instance's lists fetched on
    /// it, when due) if there is none.
    async fn peer(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        ctx: &CallContext,
    ) -> Result<Connection, ToolError> {
        self.peer_serial(shared, ctx)
            .await
            .map(|(connection, _)| connection)
    }

    /// [`Self::peer`], and which connection it is ([`Entry::serial`]).
    async fn peer_serial(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        ctx: &CallContext,
    ) -> Result<(Connection, u64), ToolError> {
        let token = ctx
            .credential
            .as_ref()
            .filter(|token| !token.expose().trim().is_empty())
            .ok_or_else(|| {
                ToolError::Unauthorized(format!(
                    "`{}` needs your own connection to the server, and this call has none",
                    shared.name
                ))
            })?;
        let user = ctx.user.clone().unwrap_or_default();
        if let Some(reused) = self.reuse(&user, token) {
            return Ok(reused);
        }
        let link = UserLink {
            pool: Arc::downgrade(self),
            user: user.clone(),
            serial: self.serial.fetch_add(1, Ordering::Relaxed),
        };
        let service = shared
            .connect_as(Some(token), Owner::User(link.clone()))
            .await
            .map_err(|failure| {
                if failure.unauthorized {
                    // The gateway renews the token once and calls again (a new connection).
                    ToolError::Unauthorized(format!(
                        "the MCP server `{}` refused your connection's token",
                        shared.name
                    ))
                } else {
                    ToolError::Unreachable(failure.reason)
                }
            })?;
        let made = connection(&service);
        self.list_if_due(shared, &made.0).await;
        let listening = listen_for_changes(shared, &made.0, &link);
        let mut retired = Vec::new();
        let (connection, installed) = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let pinned = self.subscribed();
            let now = Instant::now();
            let stale: Vec<String> = entries
                .iter()
                .filter(|(key, entry)| {
                    entry.service.is_closed()
                        || (now.duration_since(entry.used) >= IDLE && !pinned.contains_key(*key))
                })
                .map(|(key, _)| key.clone())
                .collect();
            for key in stale {
                if pinned.contains_key(&key) {
                    tracing::info!(instance = %shared.name, "a user's connection carrying resource subscriptions was lost; they are renewed at the user's next request");
                }
                retired.extend(entries.remove(&key));
            }
            let unpinned = entries
                .keys()
                .filter(|key| !pinned.contains_key(*key))
                .count();
            if unpinned >= MAX_CONNECTIONS && !entries.contains_key(&user) {
                // Only a connection without subscriptions is evicted: one with them is bounded
                // by the users who may subscribe (`subscriptions.rs`).
                let oldest = entries
                    .iter()
                    .filter(|(key, _)| !pinned.contains_key(*key))
                    .min_by_key(|(_, entry)| entry.used)
                    .map(|(key, _)| key.clone());
                retired.extend(oldest.and_then(|key| entries.remove(&key)));
            }
            match entries.get_mut(&user) {
                // Another call of this user connected with the same token meanwhile: use that
                // one, and close this unused one.
                Some(entry)
                    if entry.token.expose() == token.expose() && !entry.service.is_closed() =>
                {
                    entry.used = now;
                    let existing = (connection(&entry.service), entry.serial);
                    retired.push(Entry {
                        token: token.clone(),
                        serial: link.serial,
                        service,
                        _listening: listening,
                        used: now,
                    });
                    (existing, false)
                }
                _ => {
                    let replaced = entries.insert(
                        user.clone(),
                        Entry {
                            token: token.clone(),
                            serial: link.serial,
                            service,
                            _listening: listening,
                            used: now,
                        },
                    );
                    retired.extend(replaced);
                    ((made, link.serial), true)
                }
            }
        };
        retire(retired);
        if installed {
            // The user's subscriptions were on the connection this one replaces, or on none.
            self.resubscribe(shared, &link, &connection.0.0);
        }
        Ok(connection)
    }

    /// The user's open connection when it carries `token`.
    fn reuse(&self, user: &str, token: &Secret) -> Option<(Connection, u64)> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(user)?;
        if entry.token.expose() != token.expose() || entry.service.is_closed() {
            // A refreshed token or a lost connection: the caller makes a new one, which
            // replaces this (closed once calls still on it are over, `retire`).
            return None;
        }
        entry.used = Instant::now();
        Some((connection(&entry.service), entry.serial))
    }

    /// The user's connection in force, if it is open, and its serial: never a new one.
    fn current(&self, user: &str) -> Option<(Peer<RoleClient>, u64)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries
            .get(user)
            .filter(|entry| !entry.service.is_closed())?;
        Some((entry.service.peer().clone(), entry.serial))
    }

    /// Whether `serial` is `user`'s connection in force.
    fn is_current(&self, user: &str, serial: u64) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(user)
            .is_some_and(|entry| entry.serial == serial)
    }

    /// Fetches the instance's lists on `peer` when they were never fetched or are older than
    /// the instance's refresh interval.
    async fn list_if_due(&self, shared: &Arc<Shared>, peer: &Peer<RoleClient>) {
        let due = self
            .listed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|at| at.elapsed() >= shared.settings.refresh_interval);
        if due {
            self.list(shared, peer).await;
        }
    }

    /// Fetches the instance's lists on `peer`, publishing what changed.
    async fn list(&self, shared: &Arc<Shared>, peer: &Peer<RoleClient>) {
        match shared.refresh_tools(peer).await {
            Ok(()) => {
                shared.refresh_offers(peer).await;
                *self.listed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                shared.set_health(Health::Up);
            }
            Err(reason) => shared.set_health(Health::Degraded { reason }),
        }
    }
}

/// Opens a 2026-07-28 connection's list-change stream on the side (the call that made the
/// connection need not wait for it); it lasts until the guard drops with the connection's
/// entry. A 2025-era connection's changes come to its handler instead.
fn listen_for_changes(shared: &Arc<Shared>, peer: &Peer<RoleClient>, link: &UserLink) -> DropGuard {
    let stop = CancellationToken::new();
    let guard = stop.clone().drop_guard();
    let (shared, peer, link) = (shared.clone(), peer.clone(), link.clone());
    tokio::spawn(async move {
        let announcer = peer.clone();
        let listening = tokio::select! {
            listening = shared.listen_for_changes(&peer, move || link.list_changed(&announcer)) => listening,
            () = stop.cancelled() => return,
        };
        stop.cancelled().await;
        drop(listening);
    });
    guard
}

/// Closes replaced connections once the calls that may still be in flight on them are over
/// (a call ends within the gateway's call timeout, which is well under this).
fn retire(entries: Vec<Entry>) {
    if entries.is_empty() {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            tokio::time::sleep(RETIRE_AFTER).await;
            drop(entries);
        });
    }
}

// === impl McpAdapter ===

impl McpAdapter {
    /// The connection a request on behalf of `ctx` goes out on: the caller's own for an
    /// instance with per-user auth, the instance's otherwise.
    pub(super) async fn peer_for(&self, ctx: &CallContext) -> Result<Connection, ToolError> {
        match &self.pool {
            Some(pool) => pool.peer(&self.shared, ctx).await,
            None => Ok((self.peer()?, self.shared.calls.clone())),
        }
    }

    /// [`crate::Adapter::list_as`]: a connection as `ctx`'s user, which lists the instance's
    /// offers when they are due.
    pub(super) async fn list_with(&self, ctx: &CallContext) -> Result<(), ToolError> {
        if let Some(pool) = &self.pool {
            *pool.listed.lock().unwrap_or_else(|p| p.into_inner()) = None;
            pool.peer(&self.shared, ctx).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn only_a_client_secret_is_accepted_as_an_instance_credential() {
        let secret = |key: &str| BTreeMap::from([(key.to_owned(), Secret::new("s".to_owned()))]);
        assert!(check_credentials(&secret("client_secret")).is_ok());
        assert!(check_credentials(&BTreeMap::new()).is_ok());
        for refused in ["token", "header_x_api_key"] {
            assert!(matches!(
                check_credentials(&secret(refused)),
                Err(BuildError::Setting { key, .. }) if key == format!("credentials.{refused}")
            ));
        }
    }
}
