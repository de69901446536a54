//! rmcp's in-memory session manager, made to agree with the shared store.
//!
//! rmcp keeps a worker per session it serves and ends it after five idle minutes. Calls served
//! by the session fast path do not wake it, so a session used only for plain tool calls loses
//! its worker here; the next request that needs one restores it from the store, exactly as on a
//! replica that never saw the session.
//!
//! The questions the gateway asks a session's client during a call (elicitation, sampling,
//! roots) carry ids that name this replica and the session's worker here ([`Questions`]): rmcp
//! numbers them from 0 in every worker serving the session, so without those names two
//! replicas — or a worker and the one restored after it on the same replica — would ask under
//! one id, and a late answer could reach a later question.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use rmcp::{
    RoleServer,
    model::{
        ClientJsonRpcMessage, JsonRpcMessage, RequestId, ServerJsonRpcMessage, ServerNotification,
    },
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{
        Transport,
        streamable_http_server::session::{
            RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
            local::{LocalSessionManager, LocalSessionManagerError},
        },
    },
};

use super::store::{LookupError, SqlSessionStore};

/// rmcp's in-memory session manager, made to agree with the shared store: a session ended on
/// another replica (deleted from the store) ends here too once this replica looks again (within
/// `server.session_recheck`), so it answers 404 everywhere.
pub struct SharedSessionManager {
    local: LocalSessionManager,
    store: Arc<SqlSessionStore>,
    questions: Questions,
}

/// This replica's questions to session clients: the name their ids carry, and how many wait
/// for an answer (while any do, the relay looks for answers posted on other replicas).
#[derive(Debug, Clone)]
pub struct Questions {
    /// `mf:<16 hex digits>:`, random per process.
    prefix: Arc<str>,
    waiting: Arc<AtomicUsize>,
}

/// A session's transport to rmcp's worker, renaming the ids of the questions rmcp sends.
pub struct Renumbered<T> {
    inner: T,
    questions: Questions,
    /// `<replica prefix><8 hex digits>:`, random per worker.
    prefix: String,
    /// The ids (as rmcp numbered them) of this session's questions still waiting here.
    waiting: HashSet<RequestId>,
}

// === impl SharedSessionManager ===

impl SharedSessionManager {
    pub fn new(store: Arc<SqlSessionStore>) -> Self {
        Self {
            local: LocalSessionManager::default(),
            store,
            questions: Questions::new(),
        }
    }

    /// This replica's questions to session clients.
    pub fn questions(&self) -> &Questions {
        &self.questions
    }

    fn renumbered<T>(&self, inner: T) -> Renumbered<T> {
        Renumbered {
            inner,
            prefix: format!("{}{:08x}:", self.questions.prefix, rand::random::<u32>()),
            questions: self.questions.clone(),
            waiting: HashSet::new(),
        }
    }
}

/// Errors of the shared session manager.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    #[error(transparent)]
    Store(#[from] LookupError),
}

impl SessionManager for SharedSessionManager {
    type Error = SessionError;
    type Transport = Renumbered<<LocalSessionManager as SessionManager>::Transport>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.local.create_session().await?;
        Ok((id, self.renumbered(transport)))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.local.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        if !self.local.has_session(id).await? {
            return Ok(false);
        }
        if self.store.live(id).await?.is_some() {
            return Ok(true);
        }
        // Ended elsewhere (or swept as idle): drop the local copy so it cannot be used again.
        self.local.close_session(id).await?;
        Ok(false)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.store.forget(id);
        Ok(self.local.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl futures::Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>
    {
        Ok(self.local.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.local.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl futures::Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>
    {
        Ok(self.local.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl futures::Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>
    {
        Ok(self.local.resume(id, last_event_id).await?)
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        Ok(match self.local.restore_session(id).await? {
            RestoreOutcome::Restored(transport) => {
                RestoreOutcome::Restored(self.renumbered(transport))
            }
            RestoreOutcome::AlreadyPresent => RestoreOutcome::AlreadyPresent,
            // `NotSupported`, and whatever later rmcp versions add: rmcp answers 404.
            _ => RestoreOutcome::NotSupported,
        })
    }
}

// === impl Questions ===

impl Questions {
    pub(super) fn new() -> Self {
        Self {
            prefix: format!("mf:{:016x}:", rand::random::<u64>()).into(),
            waiting: Arc::default(),
        }
    }

    /// Whether any question of this replica waits for its answer.
    pub fn any_waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Whether `id` names a question of this replica.
    pub fn is_ours(&self, id: &RequestId) -> bool {
        matches!(id, RequestId::String(id) if id.starts_with(&*self.prefix))
    }

    /// Whether `id` names a question of another replica: a relay delivers its answer there.
    pub fn is_another_replicas(&self, id: &RequestId) -> bool {
        matches!(id, RequestId::String(id) if id.starts_with("mf:")) && !self.is_ours(id)
    }

    /// The prefix of this replica's question ids as their stored key (JSON text) begins.
    pub fn stored_prefix(&self) -> String {
        format!("\"{}", self.prefix)
    }

    /// An id of this replica's, as a worker with `prefix` would send it (for tests).
    #[cfg(test)]
    pub(super) fn outward(&self, id: &RequestId) -> RequestId {
        outward(&format!("{}00000000:", self.prefix), id)
    }
}

/// The id the client sees for rmcp's `id`, sent by the worker whose ids begin with `prefix`.
fn outward(prefix: &str, id: &RequestId) -> RequestId {
    RequestId::String(format!("{prefix}{id}").into())
}

/// rmcp's id for an answer's `id`, when it names a question of the worker whose ids begin with
/// `prefix`.
fn inward(prefix: &str, id: &RequestId) -> Option<RequestId> {
    let RequestId::String(id) = id else {
        return None;
    };
    let rest = id.strip_prefix(prefix)?;
    Some(match rest.parse::<i64>() {
        Ok(number) => RequestId::Number(number),
        Err(_) => RequestId::String(rest.into()),
    })
}

// === impl Renumbered ===

impl<T: Transport<RoleServer>> Transport<RoleServer> for Renumbered<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        mut item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        match &mut item {
            JsonRpcMessage::Request(request) => {
                if self.waiting.insert(request.id.clone()) {
                    self.questions.waiting.fetch_add(1, Ordering::Relaxed);
                }
                request.id = outward(&self.prefix, &request.id);
            }
            // A question the gateway gave up on (its call ended): named as the client knows
            // it, and no longer waited for.
            JsonRpcMessage::Notification(notification) => {
                if let ServerNotification::CancelledNotification(cancelled) =
                    &mut notification.notification
                    && let Some(id) = cancelled.params.request_id.as_mut()
                    && self.waiting.remove(id)
                {
                    self.questions.waiting.fetch_sub(1, Ordering::Relaxed);
                    *id = outward(&self.prefix, id);
                }
            }
            _ => {}
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let mut message = self.inner.receive().await?;
        let id = match &mut message {
            JsonRpcMessage::Response(response) => Some(&mut response.id),
            JsonRpcMessage::Error(error) => error.id.as_mut(),
            _ => None,
        };
        // An answer naming no question of this worker keeps its id, which rmcp knows of no
        // request.
        if let Some(id) = id
            && let Some(inward) = inward(&self.prefix, id)
        {
            if self.waiting.remove(&inward) {
                self.questions.waiting.fetch_sub(1, Ordering::Relaxed);
            }
            *id = inward;
        }
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

impl<T> Drop for Renumbered<T> {
    /// A session that ends with questions unanswered stops counting them.
    fn drop(&mut self) {
        self.questions
            .waiting
            .fetch_sub(self.waiting.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rmcp::model::NumberOrString;

    use super::*;

    proptest! {
        /// Whatever id a client sends back, it reaches rmcp as a question's id only when it
        /// names this worker, and then as exactly the id rmcp sent.
        #[test]
        fn only_a_workers_own_ids_map_back_to_its_questions(
            n in any::<i64>(),
            text in "[a-z0-9:]{0,12}",
            forged in "(mf:)?[0-9a-f:]{0,30}",
            claim in any::<bool>(),
        ) {
            let questions = Questions::new();
            let worker = format!("{}0000abcd:", questions.prefix);
            let other = format!("{}0000abce:", questions.prefix);
            for sent in [RequestId::Number(n), RequestId::String(text.clone().into())] {
                let out = outward(&worker, &sent);
                prop_assert!(questions.is_ours(&out));
                prop_assert!(!questions.is_another_replicas(&out));
                // A string that reads as a number comes back as the number rmcp would have sent.
                let back = inward(&worker, &out).expect("its own id");
                match (&sent, &back) {
                    (RequestId::String(s), RequestId::Number(m)) => {
                        prop_assert_eq!(s.parse::<i64>().ok(), Some(*m));
                    }
                    _ => prop_assert_eq!(&back, &sent),
                }
                prop_assert_eq!(inward(&other, &out), None, "another worker's question");
            }
            // Forged ids, some claiming this worker's prefix.
            let forged = if claim { format!("{worker}{forged}") } else { forged };
            let forged = RequestId::String(forged.into());
            let claims_worker = matches!(&forged, NumberOrString::String(s) if s.starts_with(&worker));
            prop_assert_eq!(inward(&worker, &forged).is_some(), claims_worker);
            prop_assert!(!(questions.is_ours(&forged) && questions.is_another_replicas(&forged)));
            prop_assert_eq!(inward(&worker, &RequestId::Number(n)), None, "a bare number");
            prop_assert!(!questions.is_ours(&RequestId::Number(n)));
            prop_assert!(!questions.is_another_replicas(&RequestId::Number(n)));
        }
    }
}
