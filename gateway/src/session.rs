//! The session stage: MCP sessions (protocol versions up to 2025-11-25) live in the shared
//! database, so any replica serves any request; each replica keeps a live copy in memory and
//! restores one from the database when a session it has not seen arrives.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use dashmap::DashMap;

use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::streamable_http_server::session::{
        RestoreOutcome, ServerSseMessage, SessionId, SessionManager, SessionState, SessionStore,
        SessionStoreError,
        local::{LocalSessionManager, LocalSessionManagerError},
    },
};

use crate::storage::Storage;

/// Session state rows in the `mcp_sessions` table.
#[derive(Debug, Clone)]
pub struct SqlSessionStore {
    storage: Storage,
}

impl SqlSessionStore {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// Marks a session as used now, so the idle sweep keeps it.
    async fn touch(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE mcp_sessions SET updated_at = $1 WHERE id = $2")
            .bind(now_secs())
            .bind(id)
            .execute(self.storage.pool())
            .await?;
        Ok(())
    }

    /// Deletes sessions unused for longer than `idle`; returns how many.
    pub async fn sweep(&self, idle: Duration) -> Result<u64, sqlx::Error> {
        let cutoff = now_secs().saturating_sub(i64::try_from(idle.as_secs()).unwrap_or(i64::MAX));
        let done = sqlx::query("DELETE FROM mcp_sessions WHERE updated_at <= $1")
            .bind(cutoff)
            .execute(self.storage.pool())
            .await?;
        Ok(done.rows_affected())
    }

    async fn exists(&self, id: &str) -> Result<bool, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM mcp_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.storage.pool())
            .await?;
        Ok(row.is_some())
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[async_trait::async_trait]
impl SessionStore for SqlSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT state FROM mcp_sessions WHERE id = $1")
            .bind(session_id)
            .fetch_optional(self.storage.pool())
            .await?;
        match row {
            Some((state,)) => Ok(Some(serde_json::from_str(&state)?)),
            None => Ok(None),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let state = serde_json::to_string(state)?;
        sqlx::query(
            "INSERT INTO mcp_sessions (id, state, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(session_id)
        .bind(state)
        .bind(now_secs())
        .execute(self.storage.pool())
        .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        sqlx::query("DELETE FROM mcp_sessions WHERE id = $1")
            .bind(session_id)
            .execute(self.storage.pool())
            .await?;
        Ok(())
    }
}

/// rmcp's in-memory session manager, made to agree with the shared store: a session ended on
/// another replica (deleted from the store) ends here too, so it answers 404 everywhere.
pub struct SharedSessionManager {
    local: LocalSessionManager,
    store: Arc<SqlSessionStore>,
    /// When this replica last recorded activity of each session in the store; activity is
    /// written at most every `touch_every` per session so requests do not each cost a write.
    touched: DashMap<SessionId, Instant>,
    touch_every: Duration,
}

impl SharedSessionManager {
    /// `idle_timeout` is the sweep's; activity is recorded often enough that a session in use
    /// is never swept.
    pub fn new(store: Arc<SqlSessionStore>, idle_timeout: Duration) -> Self {
        Self {
            local: LocalSessionManager::default(),
            store,
            touched: DashMap::new(),
            touch_every: (idle_timeout / 4).min(Duration::from_secs(60)),
        }
    }

    async fn note_activity(&self, id: &SessionId) -> Result<(), sqlx::Error> {
        let now = Instant::now();
        let due = self
            .touched
            .get(id)
            .is_none_or(|last| now.duration_since(*last) >= self.touch_every);
        if due {
            self.touched.insert(id.clone(), now);
            self.store.touch(id).await?;
        }
        Ok(())
    }
}

/// Errors of the shared session manager.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    #[error("session store: {0}")]
    Store(#[from] sqlx::Error),
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
        if self.store.exists(id).await? {
            self.note_activity(id).await?;
            return Ok(true);
        }
        // Ended elsewhere (or swept as idle): drop the local copy so it cannot be used again.
        self.touched.remove(id);
        self.local.close_session(id).await?;
        Ok(false)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.touched.remove(id);
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
