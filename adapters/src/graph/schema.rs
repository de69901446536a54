//! JSON Schema pieces shared by the three kinds' tool definitions, and the few renderers of Graph
//! values they share (people, bodies, page envelopes).

use serde_json::{Map, Value, json};

use crate::extract;

/// A closed object schema.
pub(crate) fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

pub(crate) fn string() -> Value {
    json!({ "type": "string" })
}

pub(crate) fn nullable_string() -> Value {
    json!({ "type": ["string", "null"] })
}

pub(crate) fn id(description: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 512, "description": description })
}

pub(crate) fn limit(default: u64, max: u64) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": max, "default": default,
            "description": "Page size." })
}

pub(crate) fn cursor() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 4096,
            "description": "`next_cursor` from the previous call with the same other arguments." })
}

pub(crate) fn next_cursor() -> Value {
    json!({ "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page." })
}

/// `{ <key>: [item…], next_cursor }`.
pub(crate) fn page(key: &str, item: Value) -> Value {
    object(
        json!({ key: { "type": "array", "items": item }, "next_cursor": next_cursor() }),
        &[key, "next_cursor"],
    )
}

/// A person as tools return it.
pub(crate) fn person() -> Value {
    json!({ "anyOf": [object(json!({ "name": nullable_string(), "address": nullable_string() }), &["name", "address"]), { "type": "null" }] })
}

/// Recipient addresses: declared `format: email`, so the gateway reads each as exactly one
/// address (a display name is fine) and passes the adapter the canonical `local@domain`.
pub(crate) fn addresses() -> Value {
    json!({ "type": "array", "maxItems": 100, "items": { "type": "string", "format": "email", "minLength": 3, "maxLength": 320,
            "description": "One e-mail address, e.g. `bob@example.com` or `Bob <bob@example.com>`." } })
}

/// A text window of a longer document: where it starts, how long the whole is, where to go on.
pub(crate) fn window_properties() -> Value {
    json!({
        "format": string(), "text": string(),
        "offset": { "type": "integer", "minimum": 0 },
        "total_chars": { "type": "integer", "minimum": 0 },
        "next_offset": { "type": ["integer", "null"], "description": "Pass as `offset` to read on; null at the end." },
    })
}

pub(crate) fn window_args() -> Map<String, Value> {
    let value = json!({
        "offset": { "type": "integer", "minimum": 0, "default": 0, "description": "Character offset to start reading at (from `next_offset`)." },
        "max_chars": { "type": "integer", "minimum": 100, "maximum": 50000, "default": 20000, "description": "At most this many characters." },
    });
    value.as_object().cloned().unwrap_or_default()
}

/// Graph's `emailAddress` wrapper (`{ "emailAddress": { "name", "address" } }`) or a chat
/// message's `from.user` (`{ "user": { "displayName", "id" } }`).
pub(crate) fn render_person(value: Option<&Value>) -> Value {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    if let Some(email) = value.get("emailAddress") {
        return json!({ "name": email.get("name").cloned().unwrap_or(Value::Null),
                       "address": email.get("address").cloned().unwrap_or(Value::Null) });
    }
    if let Some(user) = value.get("user").filter(|u| !u.is_null()) {
        return json!({ "name": user.get("displayName").cloned().unwrap_or(Value::Null),
                       "address": Value::Null });
    }
    Value::Null
}

pub(crate) fn render_people(value: Option<&Value>) -> Vec<Value> {
    value
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|p| render_person(Some(p)))
                .filter(|p| !p.is_null())
                .collect()
        })
        .unwrap_or_default()
}

/// An `itemBody` as readable text: HTML bodies go through the shared HTML-to-text converter.
pub(crate) fn body_text(body: Option<&Value>) -> String {
    let content = body
        .and_then(|b| b.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let is_html = body
        .and_then(|b| b.get("contentType"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("html"));
    if is_html {
        extract::html_to_text(content)
    } else {
        content.trim().to_owned()
    }
}

/// A search hit's `summary` as readable text. Summaries are excerpts of a text the gateway does
/// not see, so their end, and their start when it is marked as a cut (`...`), lose the token at
/// the cut (see [`extract::trim_cut_edges`]).
pub(crate) fn hit_summary(hit: &Value) -> String {
    let html = hit
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text = body_text(Some(&json!({ "contentType": "html", "content": html })));
    let cut_start = text.starts_with("...") || text.starts_with('…');
    extract::trim_cut_edges(&text, cut_start, true)
}

/// A string field of a Graph object, or null.
pub(crate) fn field(value: &Value, key: &str) -> Value {
    match value.get(key) {
        Some(Value::String(text)) => Value::String(text.clone()),
        _ => Value::Null,
    }
}

pub(crate) fn text_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
