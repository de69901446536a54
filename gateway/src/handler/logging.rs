//! MCP logging to the client (`logging/setLevel`, `notifications/message`).
//!
//! SEP-2577 deprecates MCP logging, but clients on 2024-11-05 … 2025-11-25 still use it, so the
//! deprecation warnings are allowed here and nowhere else.
#![allow(deprecated)]

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

use rmcp::{
    Peer, RoleServer,
    model::{LoggingLevel, LoggingMessageNotificationParam, ServerCapabilities},
};
use serde_json::Value;

/// One session's client log threshold (`warning` until the client sets another).
#[derive(Debug, Clone)]
pub(super) struct ClientLog {
    threshold: Arc<AtomicU8>,
}

impl Default for ClientLog {
    fn default() -> Self {
        Self {
            threshold: Arc::new(AtomicU8::new(rank(LoggingLevel::Warning))),
        }
    }
}

fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl ClientLog {
    pub(super) fn set_level(&self, level: LoggingLevel) {
        self.threshold.store(rank(level), Ordering::Relaxed);
    }

    pub(super) async fn warning(&self, peer: &Peer<RoleServer>, data: Value) {
        self.send(peer, LoggingLevel::Warning, data).await;
    }

    async fn send(&self, peer: &Peer<RoleServer>, level: LoggingLevel, data: Value) {
        if rank(level) < self.threshold.load(Ordering::Relaxed) {
            return;
        }
        let mut message = LoggingMessageNotificationParam::new(level, data);
        message.logger = Some("manifold".into());
        // A client that went away cannot be told; the call's own answer carries the outcome.
        let _ = peer.notify_logging_message(message).await;
    }
}

/// Advertises the logging capability.
pub(super) fn with_logging(mut capabilities: ServerCapabilities) -> ServerCapabilities {
    capabilities.logging = Some(serde_json::Map::new());
    capabilities
}
