//! Where a call's notifications go. Each transport brings its own [`Notifier`]: rmcp's session
//! service sends them on the request's stream ([`PeerNotifier`]), the session fast path keeps
//! them to send ahead of its answer ([`Collected`]), and a stateless answer has room for none
//! (`()`). The call path only asks a notifier; it knows no transport.
//!
//! An upstream's log notifications during a call come through [`Notifier::log`]: the sink drops
//! what is under the client's threshold at the time it arrives; the call path masks the rest
//! and names the instance (`call.rs`).

use std::sync::{Arc, Mutex};

use manifold_adapters::{
    AskClient, LogSink, ProgressSink, ToolError, Withdraw, client_input::InputRequest,
};
#[allow(deprecated)] // MCP logging (SEP-2577): still heard by clients of the 2025 eras
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::{
    Peer, RoleServer,
    model::{
        ErrorCode, GetExtensions, ProgressNotificationParam, ProgressToken, RequestId,
        ServerJsonRpcMessage, ServerRequest,
    },
    service::{OriginatingRequestId, PeerRequestOptions, ServiceError},
};
use serde_json::Value;
use tokio::{sync::mpsc, task::JoinHandle};

use super::logging::{ClientLog, LogTarget};

/// Progress notifications of one call waiting for its client.
const PROGRESS_BUFFER: usize = 64;
/// Log notifications of one call waiting for its client (rmcp's session service), and the most
/// one call keeps for a transport that sends them ahead of its answer.
const LOG_BUFFER: usize = 64;

/// The way back to the client for notifications during a call.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// A sink for the call's progress and the task that forwards it, when the client asked
    /// for progress and the transport can deliver it.
    fn progress(&self) -> Option<(ProgressSink, JoinHandle<()>)> {
        None
    }

    /// A sink for the upstream's log notifications during the call, and the task that
    /// forwards them when there is one, when the transport can deliver them.
    fn log(&self) -> Option<(LogSink, Option<JoinHandle<()>>)> {
        None
    }

    /// A warning for the client's log, under its threshold.
    async fn warning(&self, _data: Value) {}
}

/// A stateless answer carries the result alone.
impl Notifier for () {}

// === impl PeerNotifier ===

/// Out on the request's stream as they happen (rmcp's session service).
pub struct PeerNotifier {
    pub peer: Peer<RoleServer>,
    pub progress_token: Option<ProgressToken>,
    pub log: ClientLog,
}

#[async_trait::async_trait]
impl Notifier for PeerNotifier {
    /// Forwards adapter progress in order. Bounded: an upstream that floods progress faster
    /// than the client reads loses the excess (progress is advisory; the next one says more)
    /// instead of growing the gateway's memory.
    fn progress(&self) -> Option<(ProgressSink, JoinHandle<()>)> {
        let token = self.progress_token.clone()?;
        let peer = self.peer.clone();
        let (sender, mut receiver) =
            mpsc::channel::<(f64, Option<f64>, Option<String>)>(PROGRESS_BUFFER);
        let forward = tokio::spawn(async move {
            while let Some((progress, total, message)) = receiver.recv().await {
                let mut param = ProgressNotificationParam::new(token.clone(), progress);
                param.total = total;
                param.message = message;
                if peer.notify_progress(param).await.is_err() {
                    break;
                }
            }
        });
        let sink: ProgressSink = Arc::new(move |progress, total, message| {
            let _ = sender.try_send((progress, total, message));
        });
        Some((sink, forward))
    }

    /// Forwards the call's logs in order (rmcp sends them on the session's standalone stream,
    /// not the request's). Bounded like progress: an upstream that logs faster than the client
    /// reads loses the excess rather than growing the gateway's memory.
    #[allow(deprecated)] // MCP logging (SEP-2577)
    fn log(&self) -> Option<(LogSink, Option<JoinHandle<()>>)> {
        let peer = self.peer.clone();
        let (sender, mut receiver) = mpsc::channel::<LoggingMessageNotificationParam>(LOG_BUFFER);
        let forward = tokio::spawn(async move {
            while let Some(message) = receiver.recv().await {
                if peer.notify_logging_message(message).await.is_err() {
                    break;
                }
            }
        });
        let log = self.log.clone();
        let sink = LogSink::new(log.level(), move |message| {
            if log.admits(message.level) {
                let _ = sender.try_send(message);
            }
        });
        Some((sink, Some(forward)))
    }

    async fn warning(&self, data: Value) {
        self.log.warning(LogTarget::Peer(&self.peer), data).await;
    }
}

// === impl Collected ===

/// Log notifications kept for the transport to send ahead of the answer (the session fast
/// path, which serves no progress).
pub struct Collected {
    log: ClientLog,
    messages: Arc<Mutex<Vec<ServerJsonRpcMessage>>>,
}

impl Collected {
    /// Collects log notifications under the session's threshold `log`.
    pub fn new(log: ClientLog) -> Self {
        Self {
            log,
            messages: Arc::default(),
        }
    }

    /// The notifications collected so far, in order.
    pub fn take(&self) -> Vec<ServerJsonRpcMessage> {
        self.messages
            .lock()
            .map(|mut messages| std::mem::take(&mut *messages))
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Notifier for Collected {
    /// Keeps the call's logs for the answer, at most [`LOG_BUFFER`] of them.
    #[allow(deprecated)] // MCP logging (SEP-2577)
    fn log(&self) -> Option<(LogSink, Option<JoinHandle<()>>)> {
        let log = self.log.clone();
        let messages = self.messages.clone();
        let sink = LogSink::new(log.level(), move |message| {
            if log.admits(message.level) {
                ClientLog::collect(&messages, message, LOG_BUFFER);
            }
        });
        Some((sink, None))
    }

    async fn warning(&self, data: Value) {
        self.log
            .warning(LogTarget::Collect(&self.messages), data)
            .await;
    }
}

// === impl PeerAsker ===

/// Asks a session's client during a call, on the stream of the request that made the call
/// (rmcp's session service). The request is marked with that request's id, since the question
/// may be asked from the upstream connection's task rather than the handler's. rmcp marks a
/// request itself when it is sent from a task serving a request, and in the upstream
/// connection's task that is the upstream's request (a number of that connection's, which names
/// no request of this session): sent from there, the question would go out on the session's
/// standalone stream, which many clients never open. So it is sent from a task of its own.
pub struct PeerAsker {
    pub peer: Peer<RoleServer>,
    pub origin: RequestId,
}

#[async_trait::async_trait]
impl AskClient for PeerAsker {
    async fn ask(&self, request: InputRequest) -> Result<Value, ToolError> {
        let mut request = match request {
            InputRequest::CreateMessage(request) => ServerRequest::CreateMessageRequest(request),
            InputRequest::Elicitation(request) => ServerRequest::ElicitRequest(request),
            InputRequest::ListRoots(request) => ServerRequest::ListRootsRequest(request),
            _ => {
                return Err(ToolError::MissingClientCapability {
                    capability: "unknown".into(),
                });
            }
        };
        request
            .extensions_mut()
            .insert(OriginatingRequestId(self.origin.clone()));
        let peer = self.peer.clone();
        let sent = tokio::spawn(async move {
            peer.send_cancellable_request(request, PeerRequestOptions::no_options())
                .await
        })
        .await
        .map_err(|error| ToolError::Unreachable(format!("the client could not be asked: {error}")))
        .and_then(|sent| sent.map_err(client_error))?;
        // A call that ends before the answer comes (cancelled, timed out) withdraws its
        // question, so the client stops and the session stops waiting for it.
        let mut withdraw = Withdraw::new(
            self.peer.clone(),
            sent.id.clone(),
            "the call that asked this ended",
        );
        let answer = sent.await_response().await;
        withdraw.answered();
        let answer = answer.map_err(client_error)?;
        serde_json::to_value(answer)
            .map_err(|error| ToolError::BadResponse(format!("the client's answer: {error}")))
    }
}

/// What a client's failure to answer means for the call.
fn client_error(error: ServiceError) -> ToolError {
    match error {
        ServiceError::McpError(error) if error.code == ErrorCode::METHOD_NOT_FOUND => {
            ToolError::MissingClientCapability {
                capability: "unknown".into(),
            }
        }
        ServiceError::McpError(error) => ToolError::Upstream {
            status: 502,
            message: format!("the client refused the server's request: {}", error.message),
        },
        ServiceError::Cancelled { .. } => ToolError::Cancelled,
        ServiceError::Timeout { .. } => ToolError::Timeout,
        other => ToolError::Unreachable(format!("the client could not be asked: {other}")),
    }
}
