//! The redaction stage: secrets and personal data masked before they reach the model
//! (`redaction.toml` next to the policies). It works at three points of a call:
//!
//! - before the adapter cuts a document into windows or snippets: [`RedactStage::text_filter`]
//!   goes into the call's `CallContext`, and the shared extraction code filters the whole text,
//!   so no window or offset reads a secret in pieces;
//! - on the result: [`RedactStage::apply`] masks every string of it;
//! - on text that is not a result but reaches the model or the audit log (a tool's error
//!   message, an audit reason): [`RedactStage::redact_text`], with every detector.

use std::{
    path::Path,
    sync::{Arc, LazyLock},
};

use manifold_adapters::TextFilter;
use manifold_policy::redact::{RedactionConfig, Redactor, Target};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use crate::router::Route;

/// `redaction.toml` could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RedactStageError {
    path: String,
    message: String,
}

/// Masks results. Without a `redaction.toml` every built-in detector is on for every tool
/// (fail closed: a gateway nobody configured still masks secrets); an admin who wants results
/// unmasked says so (`[default] enabled = false`).
#[derive(Clone)]
pub struct RedactStage {
    redactor: Arc<Redactor>,
}

impl std::fmt::Debug for RedactStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactStage").finish_non_exhaustive()
    }
}

/// Every built-in detector on every tool: the rules when no `redaction.toml` is configured.
static BUILTINS: LazyLock<Arc<Redactor>> = LazyLock::new(|| {
    Arc::new(
        Redactor::new(&RedactionConfig::default())
            .expect("the built-in detectors compile (checked by the unit tests)"),
    )
});

impl Default for RedactStage {
    fn default() -> Self {
        Self {
            redactor: BUILTINS.clone(),
        }
    }
}

fn target(route: &Route) -> Target<'_> {
    Target {
        instance: &route.instance,
        kind: &route.kind,
        // Rules name tools as policies do, by their original identity (`router/virtualize.rs`).
        tool: &route.view.policy_name,
        tags: &route.tags,
    }
}

// === impl RedactStage ===

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
        Ok(Self::new(
            Redactor::new(&config).map_err(|e| error(e.to_string()))?,
        ))
    }

    pub fn new(redactor: Redactor) -> Self {
        Self {
            redactor: Arc::new(redactor),
        }
    }

    /// Masks `structured` and `text` in place; returns how many spans were masked.
    pub fn apply(&self, route: &Route, structured: &mut Value, text: &mut String) -> usize {
        let selected = self.redactor.select(&target(route));
        let mut masked = selected.redact_value(structured);
        let (clean, hits) = selected.redact_text(text);
        if hits > 0 {
            *text = clean.into_owned();
            masked += hits;
        }
        masked
    }

    /// Masks every text-bearing part of an upstream MCP server's answer in place (text
    /// blocks, embedded resources' text, links' names and descriptions, `structuredContent`,
    /// `_meta`); binary payloads (`data`, `blob`) pass untouched. Returns how many spans were
    /// masked. An answer that cannot be walked is replaced by an error result, never passed
    /// through unmasked.
    pub fn apply_to_result(&self, route: &Route, result: &mut CallToolResult) -> usize {
        let selected = self.redactor.select(&target(route));
        // No rule for this tool: nothing to mask, and no copy of the answer to make.
        if selected.is_empty() {
            return 0;
        }
        let Ok(mut value) = serde_json::to_value(&*result) else {
            *result = unreadable();
            return 0;
        };
        let masked = mask_except_binary(&mut value, &|v: &mut Value| selected.redact_value(v));
        // Every string was looked at and none masked: the answer stays as it came, without
        // decoding the copy back (its content blocks go through serde's buffered tagged decoding).
        if masked == 0 {
            return 0;
        }
        match serde_json::from_value(value) {
            Ok(masked_result) => {
                *result = masked_result;
                masked
            }
            Err(_) => {
                *result = unreadable();
                masked
            }
        }
    }

    /// Masks every text-bearing part of a resource read or a prompt (`instance`'s item named
    /// `exposed`, which rules name as they name tools) like [`RedactStage::apply_to_result`];
    /// `None` for an answer that cannot be walked, which must then be withheld.
    pub fn apply_to_item<T>(
        &self,
        instance: &str,
        kind: &str,
        exposed: &str,
        item: &mut T,
    ) -> Option<usize>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let selected = self.redactor.select(&Target {
            instance,
            kind,
            tool: exposed,
            tags: &[],
        });
        if selected.is_empty() {
            return Some(0);
        }
        let mut value = serde_json::to_value(&*item).ok()?;
        let masked = mask_except_binary(&mut value, &|v: &mut Value| selected.redact_value(v));
        *item = serde_json::from_value(value).ok()?;
        Some(masked)
    }

    /// The route's redaction as a filter for the adapter, applied to whole texts before they
    /// are cut (see the module docs). Changes nothing when the route's rules mask nothing.
    pub fn text_filter(&self, route: &Route) -> TextFilter {
        let selected = self.redactor.select(&target(route));
        if selected.is_empty() {
            return TextFilter::default();
        }
        let id = selected.fingerprint();
        let redactor = self.redactor.clone();
        let (instance, kind, tool, tags) = (
            route.instance.clone(),
            route.kind.clone(),
            route.view.policy_name.clone(),
            route.tags.clone(),
        );
        TextFilter::new(id, move |text: &str| {
            let target = Target {
                instance: &instance,
                kind: &kind,
                tool: &tool,
                tags: &tags,
            };
            match redactor.redact_text(&target, text) {
                (masked, n) if n > 0 => Some(masked.into_owned()),
                _ => None,
            }
        })
    }

    /// `text` with everything any detector would mask masked: for error messages shown to the
    /// model and reasons written to the audit log.
    pub fn redact_text(&self, text: &str) -> String {
        self.redactor.strict().redact_text(text).0.into_owned()
    }
}

/// Binary payloads of content blocks: base64 that detectors must not rewrite.
const BINARY_KEYS: [&str; 2] = ["data", "blob"];

/// Applies `mask` to `value` with the binary payloads of any object in it set aside.
fn mask_except_binary(value: &mut Value, mask: &dyn Fn(&mut Value) -> usize) -> usize {
    match value {
        Value::Object(map) => {
            let binary: Vec<(String, Value)> = BINARY_KEYS
                .iter()
                .filter_map(|key| map.remove(*key).map(|v| ((*key).to_owned(), v)))
                .collect();
            let masked = map
                .values_mut()
                .map(|field| mask_except_binary(field, mask))
                .sum();
            map.extend(binary);
            masked
        }
        Value::Array(items) => items
            .iter_mut()
            .map(|item| mask_except_binary(item, mask))
            .sum(),
        Value::String(_) => mask(value),
        _ => 0,
    }
}

fn unreadable() -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(
        "the server's answer could not be checked for redaction, so it is withheld",
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_are_redacted_with_every_detector_whatever_the_rules() {
        let text = "no file /4111 1111 1111 1111.txt (Bearer abcdef0123456789abcdef) EMP-123456";
        assert_eq!(
            RedactStage::default().redact_text(text),
            "no file /[REDACTED:credit_card].txt (Bearer [REDACTED:bearer]) EMP-123456",
            "without a redaction.toml: the built-ins"
        );
        let config = RedactionConfig::from_toml(
            "[default]\nenabled = false\n[[adapter.hr.patterns]]\nname = \"emp\"\nregex = 'EMP-\\d{6}'",
        )
        .expect("config");
        let stage = RedactStage::new(Redactor::new(&config).expect("redactor"));
        assert_eq!(
            stage.redact_text(text),
            "no file /[REDACTED:credit_card].txt (Bearer [REDACTED:bearer]) [REDACTED:emp]",
            "rules that turn detectors off do not apply to error texts"
        );
    }

    mod upstream_answers {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::*;
        use crate::router::{route_of, test_tool};

        /// A text with an AWS key id at a random place, between words.
        fn with_secret() -> impl Strategy<Value = (String, String)> {
            ("[a-z ]{0,20}", "[A-Z0-9]{16}", "[a-z ]{0,20}").prop_map(|(head, key, tail)| {
                let secret = format!("AKIA{key}");
                (format!("{head} {secret} {tail}"), secret)
            })
        }

        /// One content block of any kind, the secret in every text-bearing field it has.
        fn block(text: String) -> impl Strategy<Value = Value> {
            let data = "[A-Za-z0-9+/]{4,40}";
            prop_oneof![
                Just(json!({"type": "text", "text": text.clone()})),
                data.prop_map(|data| json!({"type": "image", "data": data, "mimeType": "image/png"})),
                data.prop_map(|data| json!({"type": "audio", "data": data, "mimeType": "audio/wav"})),
                Just(json!({"type": "resource_link", "uri": "test://doc", "name": text.clone(),
                            "description": text.clone(), "title": text.clone()})),
                Just(json!({"type": "resource", "resource": {"uri": "test://d", "text": text.clone()}})),
                data.prop_map(|blob| json!({"type": "resource", "resource": {"uri": "test://b", "blob": blob}})),
            ]
        }

        fn answer() -> impl Strategy<Value = (CallToolResult, String)> {
            with_secret().prop_flat_map(|(text, secret)| {
                (
                    prop::collection::vec(block(text.clone()), 1..6),
                    any::<bool>(),
                    any::<bool>(),
                )
                    .prop_map(move |(content, structured, meta)| {
                        let mut value = json!({"content": content});
                        if structured {
                            value["structuredContent"] =
                                json!({"nested": [{"note": text.clone()}]});
                        }
                        if meta {
                            value["_meta"] = json!({"vendor/note": text.clone()});
                        }
                        let result: CallToolResult =
                            serde_json::from_value(value).expect("a valid result");
                        (result, secret.clone())
                    })
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]
            /// Wherever an upstream puts a secret in its answer, it is masked; binary payloads
            /// and the answer's shape stay as they were.
            #[test]
            fn no_text_bearing_part_of_an_upstream_answer_keeps_a_secret((result, secret) in answer()) {
                let route = route_of(test_tool("t", json!({"type": "object"})));
                let before = serde_json::to_value(&result).expect("json");
                let mut masked = result;
                let count = RedactStage::default().apply_to_result(&route, &mut masked);
                let after = serde_json::to_value(&masked).expect("json");
                prop_assert!(!after.to_string().contains(&secret), "{after}");
                prop_assert!(count > 0 || !before.to_string().contains(&secret));
                let blocks = |v: &Value| v["content"].as_array().map_or(0, Vec::len);
                prop_assert_eq!(blocks(&before), blocks(&after));
                for (b, a) in before["content"].as_array().into_iter().flatten()
                    .zip(after["content"].as_array().into_iter().flatten())
                {
                    prop_assert_eq!(&b["type"], &a["type"]);
                    prop_assert_eq!(&b["data"], &a["data"]);
                    prop_assert_eq!(&b["resource"]["blob"], &a["resource"]["blob"]);
                }
            }
        }
    }
}
