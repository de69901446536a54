//! Withdrawing a request sent to an MCP peer when the side waiting for its answer goes away:
//! the gateway's call upstream when its client cancelled, or the gateway's question to a client
//! when the call that asked ended. Either way the peer hears `notifications/cancelled`.

use rmcp::{
    model::{CancelledNotification, CancelledNotificationParam, RequestId},
    service::{Peer, ServiceRole},
};

/// Tells `peer` that request `id` is withdrawn when dropped before [`Withdraw::answered`].
pub struct Withdraw<R: ServiceRole> {
    peer: Peer<R>,
    id: Option<RequestId>,
    reason: &'static str,
}

impl<R: ServiceRole> Withdraw<R> {
    pub fn new(peer: Peer<R>, id: RequestId, reason: &'static str) -> Self {
        Self {
            peer,
            id: Some(id),
            reason,
        }
    }

    /// The answer came: nothing to withdraw.
    pub fn answered(&mut self) {
        self.id = None;
    }
}

impl<R: ServiceRole> Drop for Withdraw<R> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let peer = self.peer.clone();
        let param = CancelledNotificationParam::new(Some(id), Some(self.reason.to_owned()));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let notification = CancelledNotification::new(param);
                let _ = peer.send_notification(notification.into()).await;
            });
        }
    }
}
