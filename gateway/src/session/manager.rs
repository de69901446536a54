//! rmcp's in-memory session manager, made to agree with the shared store.
//!
//! rmcp keeps a worker per session it serves and ends it after five idle minutes. Calls served
//! by the session fast path do not wake it, so a session used only for plain tool calls loses
//! its worker here; the next request that needs one restores it from the store, exactly as on a
//! replica that never saw the session.

use std::sync::Arc;

use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::streamable_http_server::session::{
        RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
        local::{LocalSessionManager, LocalSessionManagerError},
    },
};

use super::store::{LookupError, SqlSessionStore};

/// rmcp's in-memory session manager, made to agree with the shared store: a session ended on
/// another replica (deleted from the store) ends here too once this replica looks again (within
/// `server.session_recheck`), so it answers 404 everywhere.
pub struct SharedSessionManager {
    local: LocalSessionManager,
    store: Arc<SqlSessionStore>,
}

impl SharedSessionManager {
    pub fn new(store: Arc<SqlSessionStore>) -> Self {
        Self {
            local: LocalSessionManager::default(),
            store,
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
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        Ok(self.local.create_session().await?)
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
        Ok(self.local.restore_session(id).await?)
    }
}
