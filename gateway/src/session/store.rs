//! The `mcp_sessions` table, and this replica's short-lived view of it.
//!
//! Asking the database on every request would put a round trip (a network hop to PostgreSQL, a
//! hand-off to sqlx's worker thread for SQLite) in front of every MCP call. A session found in
//! the table is therefore trusted for `recheck`: a session ended on this replica is gone here at
//! once, one ended on another replica (or swept as idle) within `recheck`. `recheck = 0` asks the
//! table on every request. The session id is not a credential — every request still carries its
//! own bearer token — so the window only decides how soon a deliberately ended session stops
//! being served elsewhere.

use std::time::{Duration, Instant, SystemTime};

use dashmap::DashMap;
use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};

use crate::storage::Storage;

/// A session the table has, as this replica last saw it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The client declared `capabilities.elicitation.url` at initialize.
    pub url_elicitation: bool,
    /// The client declared it answers a server's questions (sampling, elicitation or roots):
    /// its calls of tools whose upstream may ask go where it can be asked (rmcp's service).
    pub answers_questions: bool,
}

/// How long lookups are trusted and how often activity is written.
#[derive(Debug, Clone, Copy)]
pub struct SessionTiming {
    /// A session unused this long is swept.
    pub idle_timeout: Duration,
    /// How long a lookup in the table is trusted before the next request asks again.
    pub recheck: Duration,
}

/// A session lookup that failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("session store: {0}")]
    Query(#[from] sqlx::Error),
    #[error("session store: unreadable session state: {0}")]
    State(#[from] serde_json::Error),
}

/// Session rows in the `mcp_sessions` table, with this replica's recent lookups.
#[derive(Debug)]
pub struct SqlSessionStore {
    storage: Storage,
    seen: DashMap<String, Seen>,
    recheck: Duration,
    /// Activity is written at most this often per session, so requests do not each cost a
    /// write, yet often enough that a session in use is never swept.
    touch_every: Duration,
}

#[derive(Debug)]
struct Seen {
    session: LiveSession,
    checked: Instant,
    touched: Instant,
}

// === impl SqlSessionStore ===

impl SqlSessionStore {
    pub fn new(storage: Storage, timing: SessionTiming) -> Self {
        Self {
            storage,
            seen: DashMap::new(),
            recheck: timing.recheck,
            touch_every: (timing.idle_timeout / 4).min(Duration::from_secs(60)),
        }
    }

    /// The session `id` when the table has it (or had it within `recheck`); records activity.
    pub async fn live(&self, id: &str) -> Result<Option<LiveSession>, LookupError> {
        let now = Instant::now();
        let touched = match self.seen.get(id) {
            Some(seen)
                if now.duration_since(seen.checked) < self.recheck
                    && now.duration_since(seen.touched) < self.touch_every =>
            {
                return Ok(Some(seen.session.clone()));
            }
            Some(seen) => Some(seen.touched),
            None => None,
        };
        let Some(state) = self.load_state(id).await? else {
            self.seen.remove(id);
            return Ok(None);
        };
        let capabilities = &state.initialize_params.capabilities;
        let session = LiveSession {
            url_elicitation: capabilities
                .elicitation
                .as_ref()
                .is_some_and(|elicitation| elicitation.url.is_some()),
            answers_questions: capabilities.sampling.is_some()
                || capabilities.elicitation.is_some()
                || capabilities.roots.is_some(),
        };
        let touched = match touched {
            Some(at) if now.duration_since(at) < self.touch_every => at,
            _ => {
                self.touch(id).await?;
                now
            }
        };
        self.seen.insert(
            id.to_owned(),
            Seen {
                session: session.clone(),
                checked: now,
                touched,
            },
        );
        Ok(Some(session))
    }

    /// Stops trusting the last lookup of `id` (the session ended here).
    pub fn forget(&self, id: &str) {
        self.seen.remove(id);
    }

    /// Deletes sessions unused for longer than `idle`, returns how many, and drops lookups too
    /// old to be trusted.
    pub async fn sweep(&self, idle: Duration) -> Result<u64, sqlx::Error> {
        let now = Instant::now();
        self.seen
            .retain(|_, seen| now.duration_since(seen.checked) < self.recheck);
        let cutoff = now_secs().saturating_sub(i64::try_from(idle.as_secs()).unwrap_or(i64::MAX));
        let done = sqlx::query("DELETE FROM mcp_sessions WHERE updated_at <= $1")
            .bind(cutoff)
            .execute(self.storage.pool())
            .await?;
        Ok(done.rows_affected())
    }

    async fn load_state(&self, id: &str) -> Result<Option<SessionState>, LookupError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT state FROM mcp_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.storage.pool())
            .await?;
        Ok(match row {
            Some((state,)) => Some(serde_json::from_str(&state)?),
            None => None,
        })
    }

    /// The per-user session cap on this store's database.
    pub fn slots(&self, max_per_user: usize) -> super::SessionSlots {
        super::SessionSlots::new(self.storage.clone(), max_per_user)
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
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// rmcp persists a session here after its `initialize` and restores it from here on a replica
/// that has not seen it.
#[async_trait::async_trait]
impl SessionStore for SqlSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        Ok(self.load_state(session_id).await?)
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
        self.forget(session_id);
        sqlx::query("DELETE FROM mcp_sessions WHERE id = $1")
            .bind(session_id)
            .execute(self.storage.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rmcp::model::{ClientCapabilities, Implementation, InitializeRequestParams};

    use super::*;

    fn state(url_elicitation: bool) -> SessionState {
        let mut capabilities = ClientCapabilities::default();
        if url_elicitation {
            capabilities =
                serde_json::from_value(serde_json::json!({"elicitation": {"url": {}}})).unwrap();
        }
        SessionState::new(InitializeRequestParams::new(
            capabilities,
            Implementation::new("t", "1"),
        ))
    }

    /// Two stores on one database, as two replicas have.
    async fn replicas(recheck: Duration) -> (tempfile::TempDir, SqlSessionStore, SqlSessionStore) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path()).await.unwrap();
        let timing = SessionTiming {
            idle_timeout: Duration::from_secs(3600),
            recheck,
        };
        let a = SqlSessionStore::new(storage.clone(), timing);
        let b = SqlSessionStore::new(storage, timing);
        (dir, a, b)
    }

    #[tokio::test]
    async fn a_session_ended_here_is_gone_at_once_and_elsewhere_after_recheck() {
        let (_dir, a, b) = replicas(Duration::from_secs(3600)).await;
        assert!(a.live("s1").await.unwrap().is_none(), "unknown session");
        a.store("s1", &state(true)).await.unwrap();
        assert!(a.live("s1").await.unwrap().unwrap().url_elicitation);
        assert!(b.live("s1").await.unwrap().unwrap().url_elicitation);
        b.delete("s1").await.unwrap();
        assert!(b.live("s1").await.unwrap().is_none(), "ended here: gone");
        assert!(
            a.live("s1").await.unwrap().is_some(),
            "the other replica trusts its lookup until recheck"
        );
        a.forget("s1");
        assert!(a.live("s1").await.unwrap().is_none(), "asked again: gone");
    }

    #[tokio::test]
    async fn recheck_zero_asks_the_database_every_time() {
        let (_dir, a, b) = replicas(Duration::ZERO).await;
        a.store("s2", &state(false)).await.unwrap();
        let seen = a.live("s2").await.unwrap().unwrap();
        assert!(!seen.url_elicitation);
        b.delete("s2").await.unwrap();
        assert!(a.live("s2").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn lookups_record_activity_so_the_sweep_keeps_sessions_in_use() {
        let (_dir, a, _b) = replicas(Duration::from_secs(3600)).await;
        a.store("s3", &state(false)).await.unwrap();
        sqlx::query("UPDATE mcp_sessions SET updated_at = 0 WHERE id = 's3'")
            .execute(a.storage.pool())
            .await
            .unwrap();
        a.live("s3").await.unwrap().unwrap();
        assert_eq!(a.sweep(Duration::from_secs(60)).await.unwrap(), 0);
        assert!(a.live("s3").await.unwrap().is_some());
        sqlx::query("UPDATE mcp_sessions SET updated_at = 0 WHERE id = 's3'")
            .execute(a.storage.pool())
            .await
            .unwrap();
        assert_eq!(a.sweep(Duration::from_secs(60)).await.unwrap(), 1);
    }
}
