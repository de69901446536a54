//! Opaque page cursors handed to the model, shared by every adapter: the provider's own page
//! token (Linear's `endCursor`, Graph's `@odata.nextLink`, Drive's `nextPageToken`, …) wrapped with the tool name and a
//! fingerprint of the other arguments, so a cursor cannot be replayed on another tool or query.
//!
//! The checksum catches edited or made-up cursors; it is not a secret-keyed MAC, because cursors
//! must stay valid across gateway replicas and restarts and carry nothing the provider does not already
//! authorize per request.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::ToolError;

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Tool name.
    t: String,
    /// The provider's page token.
    c: String,
    /// Fingerprint of the query arguments and the tool.
    f: String,
}

/// The arguments that define a query: everything but the paging ones.
fn fingerprint(tool: &str, arguments: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = arguments
        .keys()
        // The page size may change between pages; everything else must stay the same.
        .filter(|key| !matches!(key.as_str(), "cursor" | "first" | "limit" | "page_size"))
        .collect();
    keys.sort();
    let mut hasher = Sha256::new();
    hasher.update(tool.as_bytes());
    for key in keys {
        hasher.update([0]);
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(arguments[key].to_string().as_bytes());
    }
    URL_SAFE_NO_PAD.encode(&hasher.finalize()[..9])
}

/// Wraps the provider's page token for `tool` called with `arguments`.
pub(crate) fn encode(tool: &str, arguments: &Map<String, Value>, end_cursor: &str) -> String {
    let payload = Payload {
        t: tool.to_owned(),
        c: end_cursor.to_owned(),
        f: fingerprint(tool, arguments),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default())
}

/// The provider's page token from the `cursor` argument, if any.
pub(crate) fn decode(
    tool: &str,
    arguments: &Map<String, Value>,
) -> Result<Option<String>, ToolError> {
    let Some(cursor) = arguments.get("cursor").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let invalid = |why: &str| {
        ToolError::InvalidArguments(format!(
            "`cursor` {why}; pass back `next_cursor` exactly as the previous `{tool}` call \
             returned it, with the same other arguments, or omit it to start from the first page"
        ))
    };
    let text = cursor.as_str().ok_or_else(|| invalid("must be a string"))?;
    let payload: Payload = URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| invalid("is not a cursor this tool issued"))?;
    if payload.t != tool {
        return Err(invalid(&format!("was issued by `{}`", payload.t)));
    }
    if payload.f != fingerprint(tool, arguments) {
        return Err(invalid(
            "was issued for different arguments or has been altered",
        ));
    }
    Ok(Some(payload.c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn round_trips_and_rejects_foreign_or_altered_cursors() {
        let query = args(json!({ "team": "ENG" }));
        let cursor = encode("list_issues", &query, "abc");
        let mut next = query.clone();
        next.insert("cursor".into(), json!(cursor));
        next.insert("first".into(), json!(10));
        assert_eq!(
            decode("list_issues", &next).ok().flatten().as_deref(),
            Some("abc")
        );
        assert!(decode("search_issues", &next).is_err());
        next.insert("team".into(), json!("DES"));
        assert!(decode("list_issues", &next).is_err());
        let garbage = args(json!({ "cursor": "not-a-cursor" }));
        assert!(matches!(
            decode("list_issues", &garbage),
            Err(ToolError::InvalidArguments(_))
        ));
    }
}
