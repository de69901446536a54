//! The database: SQLite (one file, the embedded default) or PostgreSQL (several replicas), with
//! the same SQL for both and schema migrations applied at start.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
};

/// Storage that cannot be opened or used. Messages never include the database URL, which may
/// hold a password.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Connect(sqlx::Error),
    #[error("database migration {version} failed: {source}")]
    Migrate { version: i64, source: sqlx::Error },
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// Ordered schema steps; a step never changes once shipped. Numbers are reserved per module:
/// 1-19 sessions and core, 20-29 the token broker, 30-39 audit checkpoints (`audit.rs`).
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS mcp_sessions (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
    ),
    // Cancellations posted for the replica running the call; replaced by `mcp_signals` (6-7),
    // and kept while replicas of the release before may still use it.
    (
        2,
        "CREATE TABLE IF NOT EXISTS mcp_cancellations (
        session_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        posted_ms BIGINT NOT NULL,
        PRIMARY KEY (session_id, request_id)
    )",
    ),
    (
        3,
        "CREATE INDEX IF NOT EXISTS mcp_cancellations_posted ON mcp_cancellations (posted_ms)",
    ),
    // Signals for the replica holding a session's call or question (`session::relay`): a
    // cancellation of a call (`kind = 'cancel'`, no body), or the client's answer to a question
    // the gateway asked (`kind = 'answer'`, the JSON-RPC message in `body`). The request id is
    // the client's for a cancellation and the gateway's for an answer, so `kind` keeps them
    // apart. Pruned once two minutes old; answers are taken out when delivered.
    (
        6,
        "CREATE TABLE IF NOT EXISTS mcp_signals (
        session_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        request_id TEXT NOT NULL,
        body TEXT,
        posted_ms BIGINT NOT NULL,
        PRIMARY KEY (session_id, kind, request_id)
    )",
    ),
    (
        7,
        "CREATE INDEX IF NOT EXISTS mcp_signals_posted ON mcp_signals (posted_ms)",
    ),
    // Session slots being opened (`session::slots`): counted against the user's cap until the
    // session exists and has its owner row, or until `expires_at` (Unix seconds).
    (
        4,
        "CREATE TABLE IF NOT EXISTS mcp_session_reservations (
        id TEXT PRIMARY KEY,
        sub TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    ),
    (
        5,
        "CREATE INDEX IF NOT EXISTS mcp_session_reservations_sub ON mcp_session_reservations (sub)",
    ),
    // One row per (user, provider connection); `sealed` holds the access and refresh tokens
    // sealed by the keyring with key `kid`, bound to the user and connection.
    (
        20,
        "CREATE TABLE IF NOT EXISTS broker_tokens (
        user_sub TEXT NOT NULL,
        connection TEXT NOT NULL,
        sealed TEXT NOT NULL,
        kid TEXT NOT NULL,
        scopes TEXT NOT NULL,
        account TEXT,
        expires_at BIGINT,
        status TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (user_sub, connection)
    )",
    ),
    // Connect attempts in flight: a `state` is accepted once, by the user who started it.
    (
        21,
        "CREATE TABLE IF NOT EXISTS broker_oauth_states (
        nonce TEXT PRIMARY KEY,
        user_sub TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    ),
    // Refreshes in progress: the replica holding `lease` until `held_until` (Unix seconds) is the
    // only one spending the connection's refresh token.
    (
        22,
        "CREATE TABLE IF NOT EXISTS broker_refresh_leases (
        user_sub TEXT NOT NULL,
        connection TEXT NOT NULL,
        lease TEXT NOT NULL,
        held_until BIGINT NOT NULL,
        PRIMARY KEY (user_sub, connection)
    )",
    ),
];

/// A connection pool to the configured database.
#[derive(Debug, Clone)]
pub struct Storage {
    pool: AnyPool,
    sqlite: bool,
}

// === impl Storage ===

impl Storage {
    /// Opens `url`, or the SQLite file `manifold.db` under `data_dir` when `url` is `None`.
    pub async fn open(url: Option<&str>, data_dir: &Path) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let url = match url {
            Some(url) => url.to_owned(),
            None => {
                std::fs::create_dir_all(data_dir).map_err(|source| StorageError::DataDir {
                    path: data_dir.display().to_string(),
                    source,
                })?;
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("manifold.db").display()
                )
            }
        };
        let is_sqlite = url.starts_with("sqlite:");
        let options = AnyConnectOptions::from_str(&url).map_err(StorageError::Connect)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if is_sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            // A SQLite connection is a handle on a local file and cannot drop like a socket; the
            // liveness ping sqlx sends before each use would cost a round trip to the
            // connection's worker thread on every query (a session lookup per MCP request).
            // PostgreSQL connections keep it, to notice a restarted server.
            .test_before_acquire(!is_sqlite)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if is_sqlite {
                        // WAL lets several processes share the file; the timeout waits out their
                        // write locks instead of failing.
                        conn.execute("PRAGMA journal_mode=WAL").await?;
                        conn.execute("PRAGMA busy_timeout=5000").await?;
                        conn.execute("PRAGMA synchronous=NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StorageError::Connect)?;
        let storage = Self {
            pool,
            sqlite: is_sqlite,
        };
        storage.migrate().await?;
        Ok(storage)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// SQLite rather than PostgreSQL: the few statements that differ (row locks) branch on it.
    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    async fn migrate(&self) -> Result<(), StorageError> {
        self.pool
            .execute("CREATE TABLE IF NOT EXISTS manifold_schema (version BIGINT PRIMARY KEY)")
            .await
            .map_err(|source| StorageError::Migrate { version: 0, source })?;
        // Each module owns a range of versions (auth: 10..=19), so branches do not collide.
        for (version, sql) in MIGRATIONS
            .iter()
            .chain(crate::auth::store::MIGRATIONS)
            .chain(crate::audit::MIGRATIONS)
        {
            let applied: Option<(i64,)> =
                sqlx::query_as("SELECT version FROM manifold_schema WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?;
            if applied.is_some() {
                continue;
            }
            let migrate = |source| StorageError::Migrate {
                version: *version,
                source,
            };
            let mut tx = self.pool.begin().await.map_err(migrate)?;
            tx.execute(*sql).await.map_err(migrate)?;
            // Two replicas starting together may both run a step; the primary key makes the
            // second insert fail and its transaction roll back harmlessly.
            let recorded = sqlx::query("INSERT INTO manifold_schema (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await;
            match recorded {
                Ok(_) => tx.commit().await.map_err(migrate)?,
                Err(_) => tx.rollback().await.map_err(migrate)?,
            }
        }
        Ok(())
    }
}
