//! The audit stage: every call and every denial appended to a hash-chained JSONL file before the
//! answer leaves, so no acknowledged call goes unrecorded (`manifold audit verify` checks it).

use std::path::Path;

use manifold_policy::audit::{AuditEvent, AuditLog, AuditOptions};

/// The audit log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {message}")]
pub struct AuditStageError {
    path: String,
    message: String,
}

/// Where records go; `None` when the audit log is switched off.
#[derive(Default)]
pub struct AuditStage {
    log: Option<AuditLog>,
}

impl std::fmt::Debug for AuditStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStage")
            .field("enabled", &self.log.is_some())
            .finish()
    }
}

impl AuditStage {
    pub fn open(path: &Path, options: AuditOptions) -> Result<Self, AuditStageError> {
        let (log, report) = AuditLog::open(path, options).map_err(|error| AuditStageError {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
        if report.truncated_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                bytes = report.truncated_bytes,
                "audit log ended in a torn record (the process was killed mid-write); truncated it"
            );
        }
        Ok(Self { log: Some(log) })
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
