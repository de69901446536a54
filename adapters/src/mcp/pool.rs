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
//! yet") and offers nothing. Resource subscriptions and the upstream's list-change
//! notifications need a long-lived connection and are not relayed for such instances.
//!
//! What an upstream sends during a call on a user's connection — progress, logs, questions for
//! the client — reaches that user's calls only: each connection has its own calls in flight
//! (`calls.rs`), since the ids and tokens the upstream names them by are numbered per connection.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::{RoleClient, service::Peer};

use super::{
    McpAdapter,
    calls::Calls,
    connection::{Shared, UpstreamHandler},
};
use crate::{BuildError, CallContext, Health, Secret, ToolError};

/// Users whose connections are kept at once.
const MAX_CONNECTIONS: usize = 256;
/// A connection unused this long is closed.
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
    /// Dropping it closes the connection.
    service: Service,
    used: Instant,
}

/// The per-user connections of one instance.
#[derive(Default)]
pub(super) struct Pool {
    entries: Mutex<HashMap<String, Entry>>,
    /// When the instance's lists were last fetched (on any user's connection).
    listed: Mutex<Option<Instant>>,
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

// === impl Pool ===

impl Pool {
    /// The connection carrying the caller's token, made (and the instance's lists fetched on
    /// it, when due) if there is none.
    async fn peer(&self, shared: &Arc<Shared>, ctx: &CallContext) -> Result<Connection, ToolError> {
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
        if let Some(connection) = self.reuse(&user, token) {
            return Ok(connection);
        }
        let service = shared.connect_as(Some(token)).await.map_err(|failure| {
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
        let mut retired = Vec::new();
        let connection = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let stale: Vec<String> = entries
                .iter()
                .filter(|(_, entry)| {
                    now.duration_since(entry.used) >= IDLE || entry.service.is_closed()
                })
                .map(|(key, _)| key.clone())
                .collect();
            retired.extend(stale.iter().filter_map(|key| entries.remove(key)));
            if entries.len() >= MAX_CONNECTIONS && !entries.contains_key(&user) {
                let oldest = entries
                    .iter()
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
                    let existing = connection(&entry.service);
                    retired.push(Entry {
                        token: token.clone(),
                        service,
                        used: now,
                    });
                    existing
                }
                _ => {
                    let replaced = entries.insert(
                        user,
                        Entry {
                            token: token.clone(),
                            service,
                            used: now,
                        },
                    );
                    retired.extend(replaced);
                    made
                }
            }
        };
        retire(retired);
        Ok(connection)
    }

    /// The user's open connection when it carries `token`.
    fn reuse(&self, user: &str, token: &Secret) -> Option<Connection> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(user)?;
        if entry.token.expose() != token.expose() || entry.service.is_closed() {
            // A refreshed token or a lost connection: the caller makes a new one, which
            // replaces this (closed once calls still on it are over, `retire`).
            return None;
        }
        entry.used = Instant::now();
        Some(connection(&entry.service))
    }

    /// Fetches the instance's lists on `peer` when they were never fetched or are older than
    /// the instance's refresh interval.
    async fn list_if_due(&self, shared: &Arc<Shared>, peer: &Peer<RoleClient>) {
        let due = self
            .listed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|at| at.elapsed() >= shared.settings.refresh_interval);
        if !due {
            return;
        }
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
