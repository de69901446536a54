//! Diagnostics with a file, line and column, so an admin who breaks a policy file sees where —
//! both the reload path and `manifold policy check` report these.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One problem in one policy file. `line` and `column` are 1-based; 0 when Cedar gave no span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit_once('\n')
        .map_or(before, |(_, tail)| tail)
        .chars()
        .count()
        + 1;
    (line, col)
}

/// Turns a miette diagnostic from Cedar into ours: the message with its help, positioned at the
/// first label (Cedar's spans are offsets into the text it parsed, here one whole file).
pub(crate) fn from_miette(file: &Path, src: &str, err: &dyn miette::Diagnostic) -> Diagnostic {
    let mut message = err.to_string();
    if let Some(help) = err.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    let (line, column) = err
        .labels()
        .and_then(|mut l| l.next())
        .map_or((0, 0), |l| line_col(src, l.offset()));
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let src = "ab\ncdé\nf";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 3), (2, 1));
        assert_eq!(line_col(src, 7), (2, 4));
        assert_eq!(line_col(src, 8), (3, 1));
    }
}
