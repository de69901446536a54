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
//!
//! Fail closed: an answer must not leave unaudited, so when a record cannot be written (a full
//! disk, an I/O error) the stage is marked unwritable and calls are refused
//! ([`AuditUnavailable`]) until a record is written again. There is no timer: each refused call
//! still appends its own record, and the first one that lands is the proof that the log takes
//! records again, so service resumes by itself once space is freed. The outage is alerted once
//! (`alert = "audit_write_failed"`), its end logged once, and both show in `/metrics`
//! (`manifold_audit_writable`, `manifold_audit_write_failures_total`). A failed write leaves no
//! part of its record behind (`AuditLog::append` cuts it back), so the chain goes on unbroken.

use std::{
    fmt::Write as _,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

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

/// A record could not be written: the call it belongs to must not be served, and calls are
/// refused until a record is written again. The text is what the client is told.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the audit log cannot be written; calls are refused until it can")]
pub struct AuditUnavailable;

/// Where records go (`None` when the audit log is switched off), and whether they can.
#[derive(Default)]
pub struct AuditStage {
    log: Option<Arc<AuditLog>>,
    health: Health,
    /// Stops the checkpoint task (after a last checkpoint) when the stage goes.
    _checkpoints: Option<tokio_util::sync::DropGuard>,
}

impl std::fmt::Debug for AuditStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStage")
            .field("enabled", &self.log.is_some())
            .field("writable", &self.is_writable())
            .finish()
    }
}

/// Whether the last record written went in, and how many have failed since the start. Calls
/// read it before they reach the adapter; `/metrics` shows it.
#[derive(Debug)]
struct Health {
    writable: AtomicBool,
    failures: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            writable: AtomicBool::new(true),
            failures: AtomicU64::new(0),
        }
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
        Ok(Self::with_log(log, guard))
    }

    /// A stage writing to `log`, writable until a record fails to go in.
    pub(crate) fn with_log(
        log: Arc<AuditLog>,
        checkpoints: Option<tokio_util::sync::DropGuard>,
    ) -> Self {
        Self {
            log: Some(log),
            health: Health::default(),
            _checkpoints: checkpoints,
        }
    }

    /// Whether calls may reach their adapter: the last record written went in (always, with
    /// the audit log switched off).
    pub fn is_writable(&self) -> bool {
        self.health.writable.load(Ordering::SeqCst)
    }

    /// Appends one record. `Err` means it is not in the log: the caller must not let the answer
    /// it records leave, and the stage refuses calls until a record goes in again. The first
    /// failure of an outage raises the alert and the first success after it ends the outage;
    /// the failures between only count.
    pub fn record(&self, event: &AuditEvent) -> Result<(), AuditUnavailable> {
        let Some(log) = &self.log else {
            return Ok(());
        };
        match log.append(event) {
            Ok(_) => {
                if !self.health.writable.swap(true, Ordering::SeqCst) {
                    tracing::warn!(
                        alert = "audit_write_recovered",
                        path = %log.path().display(),
                        "the audit log can be written again; calls are served"
                    );
                }
                Ok(())
            }
            Err(error) => {
                self.health.failures.fetch_add(1, Ordering::Relaxed);
                if self.health.writable.swap(false, Ordering::SeqCst) {
                    tracing::error!(
                        alert = "audit_write_failed",
                        %error,
                        tool = %event.tool,
                        "cannot write the audit log; tools/call is refused until a record can be written"
                    );
                } else {
                    tracing::debug!(%error, tool = %event.tool, "the audit log still cannot be written");
                }
                Err(AuditUnavailable)
            }
        }
    }

    /// The stage's lines of `/metrics`; none with the audit log switched off.
    pub fn render_metrics(&self, out: &mut String) {
        if self.log.is_none() {
            return;
        }
        let writable = u8::from(self.is_writable());
        let failures = self.health.failures.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP manifold_audit_writable 1 while audit records can be written; at 0 tools/call is refused.\n\
             # TYPE manifold_audit_writable gauge\n\
             manifold_audit_writable {writable}\n\
             # HELP manifold_audit_write_failures_total Audit records that could not be written.\n\
             # TYPE manifold_audit_write_failures_total counter\n\
             manifold_audit_write_failures_total {failures}\n"
        );
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use manifold_policy::audit::{faults::Faults, verify};
    use tracing::field::{Field, Visit};
    use tracing_subscriber::{Layer, layer::SubscriberExt};

    use super::*;

    /// A stage over a log in `dir` whose writes fail when the returned faults say so.
    fn faulty_stage(dir: &Path) -> (AuditStage, Faults) {
        let faults = Faults::default();
        let (log, _) =
            AuditLog::open_with_faults(dir.join("audit.jsonl"), AuditOptions::default(), &faults)
                .expect("open");
        (AuditStage::with_log(Arc::new(log), None), faults)
    }

    fn event(outcome: &str) -> AuditEvent {
        AuditEvent {
            tool: "t_echo".into(),
            outcome: outcome.into(),
            ..AuditEvent::default()
        }
    }

    fn metrics(stage: &AuditStage) -> String {
        let mut text = String::new();
        stage.render_metrics(&mut text);
        text
    }

    #[test]
    fn a_failed_write_refuses_calls_until_a_refusals_own_record_goes_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stage, faults) = faulty_stage(dir.path());
        stage.record(&event("ok")).expect("written");
        assert!(stage.is_writable());
        assert!(metrics(&stage).contains("manifold_audit_writable 1\n"));

        faults.set_full(Some(12));
        stage.record(&event("ok")).expect_err("the disk is full");
        assert!(!stage.is_writable(), "calls are refused from here");
        // A refusal's record is the probe; while the disk stays full it fails too.
        stage
            .record(&event("audit_unavailable"))
            .expect_err("still full");
        assert!(!stage.is_writable());
        let text = metrics(&stage);
        assert!(text.contains("manifold_audit_writable 0\n"), "{text}");
        assert!(
            text.contains("manifold_audit_write_failures_total 2\n"),
            "{text}"
        );

        faults.set_full(None);
        stage
            .record(&event("audit_unavailable"))
            .expect("the probe goes in");
        assert!(stage.is_writable(), "served again, no restart");
        stage.record(&event("ok")).expect("written");
        let report = verify(&dir.path().join("audit.jsonl")).expect("the chain is whole");
        assert_eq!((report.records, report.torn_tail), (3, false));
        assert!(metrics(&stage).contains("manifold_audit_writable 1\n"));
    }

    #[test]
    fn a_stage_without_a_log_is_always_writable_and_shows_no_metrics() {
        let stage = AuditStage::default();
        stage.record(&event("ok")).expect("nothing to write");
        assert!(stage.is_writable());
        assert_eq!(metrics(&stage), "");
    }

    /// The `alert` field of every event logged.
    #[derive(Clone, Default)]
    struct Alerts(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> Layer<S> for Alerts {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Alert(Option<String>);
            impl Visit for Alert {
                fn record_str(&mut self, field: &Field, value: &str) {
                    if field.name() == "alert" {
                        self.0 = Some(value.to_owned());
                    }
                }
                fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
            }
            let mut alert = Alert(None);
            event.record(&mut alert);
            if let Some(alert) = alert.0 {
                self.0.lock().expect("alerts").push(alert);
            }
        }
    }

    #[test]
    fn an_outage_raises_one_alert_however_many_calls_it_refuses_and_logs_its_end_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stage, faults) = faulty_stage(dir.path());
        let alerts = Alerts::default();
        let subscriber = tracing_subscriber::registry().with(alerts.clone());
        tracing::subscriber::with_default(subscriber, || {
            for outage in 0..2 {
                faults.set_full(Some(0));
                for _ in 0..5 {
                    let _ = stage.record(&event("audit_unavailable"));
                }
                faults.set_full(None);
                for _ in 0..3 {
                    stage.record(&event("ok")).expect("written");
                }
                assert!(stage.is_writable(), "outage {outage} ended");
            }
        });
        let alerts = alerts.0.lock().expect("alerts").clone();
        assert_eq!(
            alerts,
            [
                "audit_write_failed",
                "audit_write_recovered",
                "audit_write_failed",
                "audit_write_recovered"
            ]
        );
    }
}
