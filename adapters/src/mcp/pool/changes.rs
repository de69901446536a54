//! List changes announced on users' connections of a per-user instance: any user's
//! connection may say the upstream's tools, resources or prompts changed, and the instance's
//! lists are fetched again on that connection, as the instance's own connection does for a
//! shared instance. However many notifications arrive, on however many users' connections,
//! they fold into one refresh per gap (`REFRESH_GAP`): a hostile upstream, or many users'
//! connections announcing one change together, cannot make the gateway list without end.

use std::sync::{Arc, Mutex};

use rmcp::{RoleClient, service::Peer};
use tokio_util::sync::CancellationToken;

use super::Pool;
use crate::mcp::connection::{REFRESH_GAP, Shared};

/// Changes heard and not yet refreshed.
#[derive(Default)]
pub(super) struct Changes {
    /// Holds one permit however often it is notified: many notifications, one refresh.
    notify: tokio::sync::Notify,
    /// The connection that announced last, which the refresh lists on (its user sees what
    /// changed for them; the instance's lists are one user's anyway, `pool.rs`).
    announcer: Mutex<Option<Peer<RoleClient>>>,
}

// === impl Changes ===

impl Changes {
    /// A connection announced a change.
    pub(super) fn heard(&self, peer: &Peer<RoleClient>) {
        *self.announcer.lock().unwrap_or_else(|p| p.into_inner()) = Some(peer.clone());
        self.notify.notify_one();
    }

    fn take(&self) -> Option<Peer<RoleClient>> {
        self.announcer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

// === impl Pool ===

impl Pool {
    /// Refreshes the instance's lists whenever a user's connection announces a change, at most
    /// once per gap, until `shutdown`. Published lists reach the gateway's catalog, which tells
    /// its sessions (`notifications/*/list_changed`).
    pub(in crate::mcp) async fn refresh_on_changes(
        self: Arc<Self>,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = self.changes.notify.notified() => {}
                () = shutdown.cancelled() => return,
            }
            // A connection closed since it announced has nothing to list with; the next
            // connection made lists when due.
            if let Some(peer) = self
                .changes
                .take()
                .filter(|peer| !peer.is_transport_closed())
            {
                self.list(&shared, &peer).await;
            }
            // Notifications meanwhile fold into the next refresh (`Notify` keeps one permit).
            tokio::select! {
                () = tokio::time::sleep(REFRESH_GAP) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}
