//! The audit stage: every call and every denial appended to a keyed, hash-chained JSONL file
//! before the answer leaves, so no acknowledged call goes unrecorded (`manifold audit verify`
//! checks it).
//!
//! The chain is MACed with the keyring's audit keys, so a copy rewritten without them fails
//! verification. At start the stage verifies the log's tail and checks it against the last
//! checkpoint in the database (record count and last hash, written every
//! `[policy] audit_checkpoint_interval` and at start): a forged or broken tail, or a log shorter
//! than its checkpoint, stops the gateway from starting — it never appends after tampering. The
//! error says so; the operator keeps the file for investigation and points
//! `[policy] audit_file` at a new one (checkpoints are kept per file).

use std::{path::Path, sync::Arc, time::Duration};

use manifold_policy::audit::{AuditEvent, AuditLog, AuditOptions, Checkpoint};
use tokio_util::sync::CancellationToken;

use crate::storage::{Storage, StorageError};

/// The audit log could not be opened, or must not be appended to.
#[derive(Debug, thiserror::Error)]
pub enum AuditStageError {
    #[error("audit log {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: manifold_policy::audit::AuditError,
    },
    #[error("audit checkpoints: {0}")]
    Checkpoint(#[from] StorageError),
}

/// Schema steps of the audit checkpoints, run by [`crate::storage`]. One row per log file (its
/// absolute path): how many records it had and the last one's hash, never moving backwards.
pub const MIGRATIONS: &[(i64, &str)] = &[(
    30,
    "CREATE TABLE IF NOT EXISTS audit_checkpoints (
        log TEXT PRIMARY KEY,
        records BIGINT NOT NULL,
        last_hash TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
)];

/// Where records go; `None` when the audit log is switched off.
#[derive(Default)]
pub struct AuditStage {
    log: Option<Arc<AuditLog>>,
    /// Stops the checkpoint task (after a last checkpoint) when the stage goes.
    _checkpoints: Option<tokio_util::sync::DropGuard>,
}

impl std::fmt::Debug for AuditStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStage")
            .field("enabled", &self.log.is_some())
            .finish()
    }
}

/// The checkpoints of audit logs in the database.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    storage: Storage,
}

// === impl Checkpoints ===

impl Checkpoints {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// The key a log's checkpoint is kept under: its absolute path.
    pub fn key(path: &Path) -> String {
        std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string()
    }

    pub async fn get(&self, log: &str) -> Result<Option<Checkpoint>, StorageError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT records, last_hash FROM audit_checkpoints WHERE log = $1")
                .bind(log)
                .fetch_optional(self.storage.pool())
                .await?;
        Ok(row.map(|(records, last_hash)| Checkpoint {
            records: u64::try_from(records).unwrap_or(0),
            last_hash,
        }))
    }

    /// Records `checkpoint` unless the stored one is further along.
    pub async fn put(&self, log: &str, checkpoint: &Checkpoint) -> Result<(), StorageError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        sqlx::query(
            "INSERT INTO audit_checkpoints (log, records, last_hash, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (log) DO UPDATE SET records = excluded.records,
                 last_hash = excluded.last_hash, updated_at = excluded.updated_at
             WHERE audit_checkpoints.records <= excluded.records",
        )
        .bind(log)
        .bind(i64::try_from(checkpoint.records).unwrap_or(i64::MAX))
        .bind(&checkpoint.last_hash)
        .bind(i64::try_from(now).unwrap_or(i64::MAX))
        .execute(self.storage.pool())
        .await?;
        Ok(())
    }
}

// === impl AuditStage ===

impl AuditStage {
    /// Opens the log at `path`: with `checkpoints`, refuses a log shorter than its last
    /// checkpoint, records a new one at once and every `interval` while the stage lives.
    pub async fn open(
        path: &Path,
        options: AuditOptions,
        checkpoints: Option<(Checkpoints, Duration)>,
    ) -> Result<Self, AuditStageError> {
        let log_error = |source| AuditStageError::Log {
            path: path.display().to_string(),
            source,
        };
        // Created first, so the checkpoint key (the absolute path) exists to be looked up.
        if !path.exists() {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| {
                    log_error(manifold_policy::audit::AuditError::Io {
                        path: path.to_path_buf(),
                        source,
                    })
                })?;
        }
        let key = Checkpoints::key(path);
        let last = match &checkpoints {
            Some((store, ..)) => store.get(&key).await?,
            None => None,
        };
        let opened = AuditLog::open_checked(path, options, last.as_ref());
        let (log, report) = opened.map_err(|error| {
            tracing::error!(
                alert = "audit_log_tampered",
                path = %path.display(),
                %error,
                "the audit log failed verification at start; refusing to append to it"
            );
            log_error(error)
        })?;
        if report.truncated_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                bytes = report.truncated_bytes,
                "audit log ended in a torn record (the process was killed mid-write); truncated it"
            );
        }
        let log = Arc::new(log);
        let mut guard = None;
        if let Some((store, interval)) = checkpoints {
            store.put(&key, &log.head()).await?;
            let stop = CancellationToken::new();
            tokio::spawn(keep_checkpoints(
                store,
                key,
                log.clone(),
                interval,
                stop.clone(),
            ));
            guard = Some(stop.drop_guard());
        }
        Ok(Self {
            log: Some(log),
            _checkpoints: guard,
        })
    }

    /// Appends one record. A failure is logged loudly but does not fail the call: the answer has
    /// already been decided, and refusing it would hide the outage from the user.
    pub fn record(&self, event: &AuditEvent) {
        if let Some(log) = &self.log
            && let Err(error) = log.append(event)
        {
            tracing::error!(%error, tool = %event.tool, "cannot write the audit log");
        }
    }
}

/// Writes the log's head as its checkpoint every `interval` while it moves, and once more at
/// shutdown.
async fn keep_checkpoints(
    store: Checkpoints,
    key: String,
    log: Arc<AuditLog>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut written = log.head();
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(100)));
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            () = shutdown.cancelled() => true,
        };
        let head = log.head();
        if head != written {
            match store.put(&key, &head).await {
                Ok(()) => written = head,
                Err(error) => tracing::error!(%error, "cannot write the audit checkpoint"),
            }
        }
        if stopping {
            return;
        }
    }
}
