//! The gateway's calls in flight on one upstream connection, by the names the upstream knows
//! them by (the request id, the progress token), so that what the upstream sends during a call
//! (progress, log notifications, questions for the client: `asking.rs`) reaches that call.
//!
//! Each connection has its own [`Calls`]: request ids and progress tokens are numbered per
//! connection, so two users' connections (`pool.rs`) name different calls alike, and one map
//! for the instance would let one user's upstream reach another user's call. The instance's own
//! connection keeps one [`Calls`] across reconnections (`Shared::calls`); a call outlives no
//! connection, so an id of a lost one is never reused while its entry stands.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

#[allow(deprecated)] // MCP logging (SEP-2577): still sent by every 2025-era server
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::model::{ProgressNotificationParam, ProgressToken, RequestId};

use crate::{CallContext, ClientLink, LogSink, ProgressSink};

/// One call in flight: what may reach its client.
struct InFlight {
    /// The client the upstream may ask, as far as it can be asked on the call's path.
    client: ClientLink,
    log: Option<LogSink>,
}

/// The calls in flight on one connection.
#[derive(Default)]
pub struct Calls {
    by_id: Mutex<HashMap<RequestId, InFlight>>,
    /// Where progress goes, by the token the gateway sent with the call's request.
    progress: Mutex<HashMap<ProgressToken, ProgressSink>>,
}

/// Removes a call's entries when the call ends, however it ends.
pub struct Entered {
    calls: Arc<Calls>,
    id: RequestId,
    token: ProgressToken,
}

impl Entered {
    /// Sends the call's progress and logs to the client of `ctx` from now on: a held call
    /// (`held.rs`) resumed by a later round of its client.
    pub fn follow(&self, ctx: &CallContext) {
        if let Some(call) = self.calls.by_id().get_mut(&self.id) {
            call.log = ctx.log.clone();
        }
        let mut progress = self.calls.progress();
        match &ctx.progress {
            Some(sink) => {
                progress.insert(self.token.clone(), sink.clone());
            }
            None => {
                progress.remove(&self.token);
            }
        }
    }
}

impl Entered {
    /// Sends the call's progress and logs nowhere until [`Entered::follow`]: the round of its
    /// client ended, and that client's transport waits for its sinks to be dropped.
    pub fn detach(&self) {
        if let Some(call) = self.calls.by_id().get_mut(&self.id) {
            call.log = None;
        }
        self.calls.progress().remove(&self.token);
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.calls.by_id().remove(&self.id);
        self.calls.progress().remove(&self.token);
    }
}

// === impl Calls ===

impl Calls {
    fn by_id(&self) -> MutexGuard<'_, HashMap<RequestId, InFlight>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn progress(&self) -> MutexGuard<'_, HashMap<ProgressToken, ProgressSink>> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the call `ctx` just sent as request `id` with progress token `token`, until
    /// the returned guard is dropped.
    pub fn enter(
        self: &Arc<Self>,
        id: RequestId,
        token: ProgressToken,
        ctx: &CallContext,
    ) -> Entered {
        self.enter_as(id, token, ctx.client.clone(), ctx)
    }

    /// [`Calls::enter`], the call's questions going to `client` (`held.rs`).
    pub fn enter_as(
        self: &Arc<Self>,
        id: RequestId,
        token: ProgressToken,
        client: ClientLink,
        ctx: &CallContext,
    ) -> Entered {
        self.by_id().insert(
            id.clone(),
            InFlight {
                client,
                log: ctx.log.clone(),
            },
        );
        if let Some(sink) = &ctx.progress {
            self.progress().insert(token.clone(), sink.clone());
        }
        Entered {
            calls: self.clone(),
            id,
            token,
        }
    }

    /// Passes progress on to the call it names. Only tokens of calls in flight on this
    /// connection are known: an upstream cannot reach a call it was not given.
    pub fn on_progress(&self, params: ProgressNotificationParam) {
        let sink = self.progress().get(&params.progress_token).cloned();
        if let Some(sink) = sink {
            sink(params.progress, params.total, params.message);
        }
    }

    /// Passes a log notification on to the call it came with: the call of `origin` (the
    /// request whose answer stream carried it) when known, else the one call in flight when
    /// there is exactly one. rmcp (3.11) marks only the upstream's requests with the stream
    /// they came on, not its notifications, and stdio and legacy SSE have no stream per call,
    /// so most logs come without an origin; with several calls in flight such a log could be
    /// anyone's and is only traced. `false` when no call took it.
    #[allow(deprecated)] // MCP logging (SEP-2577)
    pub fn on_log(
        &self,
        message: LoggingMessageNotificationParam,
        origin: Option<&RequestId>,
    ) -> bool {
        let sink = {
            let calls = self.by_id();
            match origin {
                Some(id) => calls.get(id).map(|call| call.log.clone()),
                None if calls.len() == 1 => calls.values().next().map(|call| call.log.clone()),
                None => None,
            }
        };
        match sink {
            Some(Some(sink)) => {
                sink.send(message);
                true
            }
            // The call's client hears no logs: taken, and dropped.
            Some(None) => true,
            None => false,
        }
    }

    /// The client a request from the upstream goes to: the call whose stream carried it, or the
    /// only call in flight that can be asked.
    pub fn link_for(&self, origin: Option<&RequestId>) -> Option<ClientLink> {
        let calls = self.by_id();
        match origin {
            Some(id) => calls.get(id).map(|call| call.client.clone()),
            None => {
                let mut askable = calls
                    .values()
                    .map(|call| &call.client)
                    .filter(|link| link.can_be_asked());
                match (askable.next(), askable.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, deprecated)]
mod tests {
    use rmcp::model::LoggingLevel;
    use serde_json::json;

    use super::*;

    fn logging_ctx(heard: &Arc<Mutex<Vec<String>>>, who: &'static str) -> CallContext {
        let heard = heard.clone();
        CallContext {
            log: Some(LogSink::new(LoggingLevel::Debug, move |_| {
                heard.lock().unwrap().push(who.to_owned());
            })),
            ..CallContext::default()
        }
    }

    fn log() -> LoggingMessageNotificationParam {
        LoggingMessageNotificationParam::new(LoggingLevel::Info, json!("x"))
    }

    #[test]
    fn a_log_reaches_its_own_call_or_the_only_one() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(Calls::default());
        let token = |n| ProgressToken(RequestId::Number(n));
        let a = calls.enter(RequestId::Number(1), token(1), &logging_ctx(&heard, "a"));
        assert!(calls.on_log(log(), None), "the only call takes it");
        let b = calls.enter(RequestId::Number(2), token(2), &logging_ctx(&heard, "b"));
        assert!(!calls.on_log(log(), None), "two calls: nobody's");
        assert!(calls.on_log(log(), Some(&RequestId::Number(2))));
        assert!(!calls.on_log(log(), Some(&RequestId::Number(3))));
        drop(a);
        assert!(calls.on_log(log(), None));
        drop(b);
        assert!(!calls.on_log(log(), None));
        assert_eq!(*heard.lock().unwrap(), ["a", "b", "b"]);
    }

    #[test]
    fn two_connections_do_not_hear_each_others_calls() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (mine, theirs) = (Arc::new(Calls::default()), Arc::new(Calls::default()));
        let _a = mine.enter(
            RequestId::Number(1),
            ProgressToken(RequestId::Number(1)),
            &logging_ctx(&heard, "a"),
        );
        assert!(!theirs.on_log(log(), Some(&RequestId::Number(1))));
        assert!(!theirs.on_log(log(), None));
        assert!(theirs.link_for(Some(&RequestId::Number(1))).is_none());
        assert!(heard.lock().unwrap().is_empty());
    }
}
