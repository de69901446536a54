//! What each tool does: arguments to Drive requests, and Drive's answers to [`ToolOutput`]s.
//! `resolve` turns what the arguments name (an id, a link or a path) into a Drive item, the one
//! rule both a call and its policy facts (`../facts.rs`) follow; `read` holds the tools that only
//! read, `write` those that change Drive.

use serde_json::{Map, Value, json};

use super::{cursor, render};
use crate::ToolError;

mod read;
pub(super) mod resolve;
mod write;

type Args = Map<String, Value>;

fn opt_str<'a>(args: &'a Args, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn req_str<'a>(args: &'a Args, key: &str) -> Result<&'a str, ToolError> {
    opt_str(args, key).ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` is required")))
}

fn opt_u64(args: &Args, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "`{key}` must be an integer from {min} to {max}"
                ))
            }),
    }
}

fn opt_bool(args: &Args, key: &str, default: bool) -> bool {
    args.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// A string literal of Drive's query language: single quotes, with `\` and `'` escaped.
pub(crate) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

const FOLDER_MIME: &str = render::FOLDER;

fn next_cursor(tool: &str, args: &Args, token: Option<&str>) -> Value {
    token.map_or(Value::Null, |token| {
        json!(cursor::encode(tool, args, token))
    })
}

fn more(text: &mut String, next: &Value) {
    if !next.is_null() {
        text.push_str("More results: call again with `cursor` set to `next_cursor`.\n");
    }
}

/// A content type from a file name's extension.
pub(crate) fn guess_mime(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "txt" | "log" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_query_strings() {
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
    }

    #[test]
    fn guesses_types_from_extensions() {
        assert_eq!(guess_mime("notes.MD"), "text/markdown");
        assert_eq!(guess_mime("noext"), "application/octet-stream");
    }
}
