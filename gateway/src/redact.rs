//! The redaction stage: secrets and personal data masked in tool results before they reach the
//! model (`redaction.toml` next to the policies).

use std::path::Path;

use manifold_policy::redact::{RedactionConfig, Redactor};
use serde_json::Value;

/// `redaction.toml` could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RedactStageError {
    path: String,
    message: String,
}

/// Masks results; without a `redaction.toml` it masks nothing.
#[derive(Default)]
pub struct RedactStage {
    redactor: Option<Redactor>,
}

impl std::fmt::Debug for RedactStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactStage")
            .field("enabled", &self.redactor.is_some())
            .finish()
    }
}

impl RedactStage {
    /// Reads `<dir>/redaction.toml` when it exists.
    pub fn load(dir: &Path) -> Result<Self, RedactStageError> {
        let path = dir.join("redaction.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(Self::default());
        };
        let error = |message: String| RedactStageError {
            path: path.display().to_string(),
            message,
        };
        let config = RedactionConfig::from_toml(&text).map_err(|e| error(e.to_string()))?;
        let redactor = Redactor::new(&config).map_err(|e| error(e.to_string()))?;
        Ok(Self {
            redactor: Some(redactor),
        })
    }

    /// Masks `structured` and `text` in place; returns how many spans were masked.
    pub fn apply(
        &self,
        instance: &str,
        tool: &str,
        structured: &mut Value,
        text: &mut String,
    ) -> usize {
        let Some(redactor) = &self.redactor else {
            return 0;
        };
        let mut masked = redactor.redact_value(instance, tool, structured);
        let (clean, hits) = redactor.redact_text(instance, tool, text);
        if hits > 0 {
            *text = clean.into_owned();
            masked += hits;
        }
        masked
    }
}
