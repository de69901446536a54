//! MCP logging to the client (`logging/setLevel`, `notifications/message`).
//!
//! SEP-2577 deprecates MCP logging, but clients on 2024-11-05 … 2025-11-25 still use it, so the
//! deprecation warnings are allowed here and nowhere else.
#![allow(deprecated)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use dashmap::DashMap;
use rmcp::{
    Peer, RoleServer,
    model::{
        LoggingLevel, LoggingMessageNotification, LoggingMessageNotificationParam,
        ServerCapabilities, ServerJsonRpcMessage, ServerNotification,
    },
};
use serde_json::Value;

/// One session's client log threshold (`warning` until the client sets another).
#[derive(Debug, Clone)]
pub struct ClientLog {
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

/// Where a call's log notifications go.
pub(super) enum LogTarget<'a> {
    /// Out on the request's stream as they happen.
    Peer(&'a Peer<RoleServer>),
    /// Kept for the transport to send ahead of the answer.
    Collect(&'a Mutex<Vec<ServerJsonRpcMessage>>),
}

// === impl ClientLog ===

impl ClientLog {
    pub(crate) fn set_level(&self, level: LoggingLevel) {
        self.threshold.store(rank(level), Ordering::Relaxed);
    }

    /// The least severe level the client wants now.
    pub(crate) fn level(&self) -> LoggingLevel {
        const LEVELS: [LoggingLevel; 8] = [
            LoggingLevel::Debug,
            LoggingLevel::Info,
            LoggingLevel::Notice,
            LoggingLevel::Warning,
            LoggingLevel::Error,
            LoggingLevel::Critical,
            LoggingLevel::Alert,
            LoggingLevel::Emergency,
        ];
        let threshold = usize::from(self.threshold.load(Ordering::Relaxed));
        LEVELS
            .get(threshold)
            .copied()
            .unwrap_or(LoggingLevel::Emergency)
    }

    /// Whether the client wants a message at `level` now.
    pub(crate) fn admits(&self, level: LoggingLevel) -> bool {
        rank(level) >= self.threshold.load(Ordering::Relaxed)
    }

    /// Keeps `message` to send ahead of the answer, unless `max` are kept already (the rest
    /// are dropped, as a client that reads slowly loses them on a stream).
    pub(super) fn collect(
        messages: &Mutex<Vec<ServerJsonRpcMessage>>,
        message: LoggingMessageNotificationParam,
        max: usize,
    ) {
        let notification = ServerNotification::LoggingMessageNotification(
            LoggingMessageNotification::new(message),
        );
        if let Ok(mut messages) = messages.lock()
            && messages.len() < max
        {
            messages.push(ServerJsonRpcMessage::notification(notification));
        }
    }

    pub(super) async fn warning(&self, target: LogTarget<'_>, data: Value) {
        self.send(target, LoggingLevel::Warning, data).await;
    }

    async fn send(&self, target: LogTarget<'_>, level: LoggingLevel, data: Value) {
        if !self.admits(level) {
            return;
        }
        let mut message = LoggingMessageNotificationParam::new(level, data);
        message.logger = Some("manifold".into());
        match target {
            // A client that went away cannot be told; the call's own answer carries the outcome.
            LogTarget::Peer(peer) => {
                let _ = peer.notify_logging_message(message).await;
            }
            // The gateway's own warnings are few (one per failed call): never cut.
            LogTarget::Collect(messages) => Self::collect(messages, message, usize::MAX),
        }
    }
}

/// The log thresholds of Streamable HTTP sessions that set one, by session id: rmcp's service
/// and the session fast path both serve a session's calls, so both read its threshold here.
/// Only sessions that sent `logging/setLevel` have an entry; entries unused for the idle
/// timeout are dropped by the session sweep.
#[derive(Debug, Default)]
pub struct SessionLogs {
    levels: DashMap<String, (ClientLog, Instant)>,
}

// === impl SessionLogs ===

impl SessionLogs {
    /// The session's threshold (the default one when it never set a level).
    pub fn get(&self, session: &str) -> ClientLog {
        match self.levels.get_mut(session) {
            Some(mut entry) => {
                entry.1 = Instant::now();
                entry.0.clone()
            }
            None => ClientLog::default(),
        }
    }

    pub(super) fn set(&self, session: &str, level: LoggingLevel) {
        let entry = self
            .levels
            .entry(session.to_owned())
            .or_insert_with(|| (ClientLog::default(), Instant::now()));
        entry.0.set_level(level);
    }

    /// The session ended.
    pub fn forget(&self, session: &str) {
        self.levels.remove(session);
    }

    /// Drops the thresholds of sessions unused for `idle` (swept, or ended on another replica).
    pub fn prune(&self, idle: Duration) {
        let now = Instant::now();
        self.levels
            .retain(|_, (_, used)| now.duration_since(*used) < idle);
    }
}

/// Advertises the logging capability.
pub(super) fn with_logging(mut capabilities: ServerCapabilities) -> ServerCapabilities {
    capabilities.logging = Some(serde_json::Map::new());
    capabilities
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collected(log: &ClientLog) -> usize {
        let messages = Mutex::new(Vec::new());
        futures::executor::block_on(log.warning(LogTarget::Collect(&messages), Value::Null));
        messages.lock().map(|m| m.len()).unwrap_or_default()
    }

    #[test]
    fn a_session_threshold_is_shared_and_forgotten() {
        let logs = SessionLogs::default();
        assert_eq!(collected(&logs.get("s1")), 1, "warnings go out by default");
        logs.set("s1", LoggingLevel::Error);
        assert_eq!(
            collected(&logs.get("s1")),
            0,
            "error threshold hides warnings"
        );
        assert_eq!(
            collected(&logs.get("s2")),
            1,
            "other sessions keep the default"
        );
        logs.prune(Duration::from_secs(3600));
        assert_eq!(collected(&logs.get("s1")), 0, "recently used entries stay");
        logs.prune(Duration::ZERO);
        assert_eq!(
            collected(&logs.get("s1")),
            1,
            "pruned entries fall back to the default"
        );
        logs.set("s1", LoggingLevel::Error);
        logs.forget("s1");
        assert_eq!(collected(&logs.get("s1")), 1);
    }
}
