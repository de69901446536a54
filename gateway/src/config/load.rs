//! Reading a config file: TOML syntax and types, then environment overrides, then validation.
//! Every problem is reported with the file, line and column it comes from.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use manifold_adapters::Registry;

use super::{Config, apply_env_overrides, validate};

/// One thing wrong with a config, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render(.path, .problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn render(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (index, problem) in problems.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{}:{problem}", path.display()));
    }
    out
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl Problem {
    /// Locates a byte offset of `source` as 1-based line and column (in characters).
    pub fn at(source: &str, offset: usize, message: impl Into<String>) -> Self {
        let offset = offset.min(source.len());
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Self {
            line,
            column,
            message: message.into(),
        }
    }
}

/// Loads and validates the config at `path`, with `MANIFOLD_*` overrides from the process
/// environment.
pub fn load_file(path: &Path, registry: &Registry) -> Result<Config, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let vars: Vec<(String, String)> = std::env::vars().collect();
    load_str(&source, path, registry, &vars)
}

/// Loads and validates config text; `path` only names the source in errors.
pub fn load_str(
    source: &str,
    path: &Path,
    registry: &Registry,
    env: &[(String, String)],
) -> Result<Config, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let mut config: Config = toml::from_str(source).map_err(|error| {
        let offset = error.span().map_or(0, |span| span.start);
        invalid(vec![Problem::at(source, offset, error.message().trim())])
    })?;
    apply_env_overrides(&mut config, env).map_err(|message| {
        invalid(vec![Problem {
            line: 0,
            column: 0,
            message,
        }])
    })?;
    let problems = validate(&config, source, registry);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(invalid(problems))
    }
}
