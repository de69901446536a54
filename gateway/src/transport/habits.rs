//! What real MCP clients send that Streamable HTTP's rules would refuse, served anyway. ChatGPT's
//! connector is the reason (REFERENCE.md, "ChatGPT as a client"): it may drop `Mcp-Session-Id`
//! after `initialize`, and clients differ in what they put in `Accept`.
//!
//! - `Accept` with only `application/json`, with `*/*`, or absent: served. A client that accepts
//!   JSON but not an event stream gets the request's one JSON-RPC answer as a JSON body, never a
//!   stream (notifications sent before the answer, such as progress, are left out: it asked for
//!   none of them in a form it can read).
//! - A request of a session era (2024-11-05 … 2025-11-25, or no version at all) without
//!   `Mcp-Session-Id`: served without a session, as the same request of protocol 2026-07-28,
//!   the era built for that. The `_meta` keys and MCP headers that era requires are added here;
//!   the client's own are kept. A `ping` is answered here, a notification accepted (202).
//!
//! Runs after the body guard (`jsonrpc::enforce`): the body is one well-formed JSON-RPC message
//! within the limit, without repeated keys, and its headers are trimmed. Every rule that applies
//! to a stateless request (policy, `Mcp-Param-*` headers, capabilities) applies to these too.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::jsonrpc::CheckedCall;
use crate::handler::Gateway;

/// The era a sessionless request is carried into.
const STATELESS_VERSION: &str = "2026-07-28";

/// What `Accept` asked for, as far as the transport cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accept {
    /// Both answer forms, named one by one: nothing to do.
    Both,
    /// Anything (`*/*`, wildcards, or no `Accept` at all): told to the server as both forms.
    Any,
    /// JSON but no event stream: told as both, and a stream answer is turned into JSON.
    JsonOnly,
    /// Something else: left as it is, for the server's own 406.
    Other,
}

// === impl Accept ===

impl Accept {
    fn of(headers: &HeaderMap) -> Self {
        let (mut json, mut sse, mut json_any, mut sse_any, mut seen) =
            (false, false, false, false, false);
        for value in headers.get_all(header::ACCEPT) {
            let Ok(value) = value.to_str() else {
                return Self::Other;
            };
            for range in value.split(',') {
                let mut parts = range.split(';');
                let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
                if essence.is_empty() {
                    continue;
                }
                seen = true;
                // `q=0` means "not this one".
                let refused = parts.any(|parameter| {
                    parameter.split_once('=').is_some_and(|(name, value)| {
                        name.trim().eq_ignore_ascii_case("q")
                            && value.trim().parse::<f32>().is_ok_and(|q| q == 0.0)
                    })
                });
                if refused {
                    continue;
                }
                match essence.as_str() {
                    "application/json" => json = true,
                    "text/event-stream" => sse = true,
                    "application/*" => json_any = true,
                    "text/*" => sse_any = true,
                    "*/*" => (json_any, sse_any) = (true, true),
                    _ => {}
                }
            }
        }
        match (json || json_any, sse || sse_any) {
            _ if !seen => Self::Any,
            (true, true) if json && sse => Self::Both,
            (true, true) => Self::Any,
            (true, false) => Self::JsonOnly,
            _ => Self::Other,
        }
    }
}

/// axum middleware for `/mcp`, after the body guard.
pub async fn tolerate(
    State(gateway): State<Arc<Gateway>>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let accept = Accept::of(request.headers());
    if matches!(accept, Accept::Any | Accept::JsonOnly) {
        request.headers_mut().insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
    }
    let request = match sessionless(&gateway, request).await {
        Ok(request) => request,
        Err(answered) => return answered,
    };
    let response = next.run(request).await;
    if accept == Accept::JsonOnly {
        return stream_to_json(response).await;
    }
    response
}

/// Whether a request must be carried into the stateless era: no session, and nothing that says
/// it is of that era already.
fn needs_carrying(headers: &HeaderMap, message: &Map<String, Value>) -> bool {
    if headers.contains_key("mcp-session-id") {
        return false;
    }
    let mut versions = headers.get_all("mcp-protocol-version").iter();
    if let (Some(version), None) = (versions.next(), versions.next())
        && version == STATELESS_VERSION
    {
        return false;
    }
    let declared = message
        .get("params")
        .and_then(|params| params.get("_meta"))
        .and_then(|meta| meta.get("io.modelcontextprotocol/protocolVersion"));
    if declared.is_some() {
        return false;
    }
    // `initialize` opens a session; `server/discover` is the stateless era's own.
    !matches!(
        message.get("method").and_then(Value::as_str),
        None | Some("initialize" | "server/discover")
    )
}

/// The request unchanged, carried into the stateless era, or answered here (`Err`).
async fn sessionless(gateway: &Gateway, request: Request) -> Result<Request, Response> {
    if request.headers().contains_key("mcp-session-id") {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    // Already read and checked by the body guard: in memory, within the limit.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Err(StatusCode::BAD_REQUEST.into_response());
    };
    let rebuilt = |parts, bytes: Bytes| Request::from_parts(parts, Body::from(bytes));
    let Ok(Value::Object(mut message)) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(rebuilt(parts, bytes));
    };
    if !needs_carrying(&parts.headers, &message) {
        return Ok(rebuilt(parts, bytes));
    }
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(id) = message.get("id").cloned() else {
        // A notification (`notifications/initialized` of a session it no longer names): nothing
        // of it outlives the request.
        return Err(StatusCode::ACCEPTED.into_response());
    };
    if method == "ping" {
        let body = json!({"jsonrpc": "2.0", "id": id, "result": {}});
        return Err(axum::Json(body).into_response());
    }
    let params = message
        .entry("params")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(params) = params else {
        return Ok(rebuilt(parts, bytes));
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else {
        return Ok(rebuilt(parts, bytes));
    };
    meta.insert(
        "io.modelcontextprotocol/protocolVersion".into(),
        STATELESS_VERSION.into(),
    );
    // The client declared what it can answer in an `initialize` whose session it dropped:
    // nothing is assumed, so a call needing more is refused (-32021), not left waiting.
    meta.entry("io.modelcontextprotocol/clientCapabilities")
        .or_insert_with(|| json!({}));
    meta.entry("io.modelcontextprotocol/clientInfo")
        .or_insert_with(|| json!({"name": "sessionless", "version": "0"}));
    let name = match method.as_str() {
        "tools/call" | "prompts/get" => params.get("name").and_then(Value::as_str),
        "resources/read" => params.get("uri").and_then(Value::as_str),
        _ => None,
    };
    let headers = &mut parts.headers;
    let (Ok(version), Ok(method_value)) = (
        HeaderValue::try_from(STATELESS_VERSION),
        HeaderValue::try_from(method.as_str()),
    ) else {
        return Ok(rebuilt(parts, bytes));
    };
    headers.insert("mcp-protocol-version", version);
    headers.insert("mcp-method", method_value);
    headers.remove("mcp-name");
    if let Some(name) = name {
        // A name that cannot be a plain field value is left to the era's own refusal.
        let Ok(value) = HeaderValue::try_from(name) else {
            return Ok(rebuilt(parts, bytes));
        };
        headers.insert("mcp-name", value);
    }
    if method == "tools/call" {
        mirror_param_headers(gateway, headers, params);
        // The fast path reads the call the guard parsed: give it the carried one.
        if let Some(call) = parts.extensions.remove::<CheckedCall>()
            && let Ok(carried) = serde_json::from_value(Value::Object(params.clone()))
        {
            parts.extensions.insert(CheckedCall {
                id: call.id,
                params: carried,
            });
        }
    }
    let Ok(body) = serde_json::to_vec(&message) else {
        return Ok(rebuilt(parts, bytes));
    };
    tracing::debug!(%method, "a request without a session is served statelessly");
    Ok(rebuilt(parts, Bytes::from(body)))
}

/// The `Mcp-Param-*` headers the called tool declares, from its arguments; the client's own are
/// dropped first, since its era had none.
fn mirror_param_headers(gateway: &Gateway, headers: &mut HeaderMap, params: &Map<String, Value>) {
    let stale: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(super::param_headers::PREFIX))
        .cloned()
        .collect();
    for name in stale {
        headers.remove(name);
    }
    let Some(tool) = params.get("name").and_then(Value::as_str) else {
        return;
    };
    let catalog = gateway.catalog();
    let Some(route) = catalog.get(tool) else {
        return;
    };
    let arguments = params.get("arguments").and_then(Value::as_object);
    for (name, value) in super::param_headers::mirrored(&route.spec.input_schema, arguments) {
        headers.insert(name, value);
    }
}

/// The largest event stream turned into one JSON answer.
const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;

/// An event-stream answer as the one JSON-RPC response or error it carries, for a client that
/// accepts only JSON. Anything else passes as it is.
async fn stream_to_json(response: Response) -> Response {
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_stream {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::new();
    let mut answer = None;
    // The stream of a POST ends after its answer; stop at the answer anyway.
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        buffer.extend_from_slice(&chunk);
        if buffer.len() > MAX_STREAM_BYTES {
            break;
        }
        if let Some(found) = first_answer(&buffer) {
            answer = Some(found);
            break;
        }
    }
    let Some(answer) = answer else {
        let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32603,
            "message": "the answer could not be given as JSON; accept text/event-stream"}});
        return (StatusCode::NOT_ACCEPTABLE, axum::Json(body)).into_response();
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(answer))
}

/// The data of the first complete event in `buffer` that is a JSON-RPC response or error.
fn first_answer(buffer: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(buffer).replace("\r\n", "\n");
    // Only complete events: those followed by a blank line.
    let complete = &text[..text.rfind("\n\n")?];
    complete.split("\n\n").find_map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| data.strip_prefix(' ').unwrap_or(data))
            .collect();
        let data = data.join("\n");
        let message: Value = serde_json::from_str(&data).ok()?;
        let answer = message.get("id").is_some()
            && (message.get("result").is_some() || message.get("error").is_some());
        answer.then(|| data.into_bytes())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn accept(values: &[&str]) -> Accept {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        Accept::of(&headers)
    }

    #[test]
    fn accept_headers_read_as_clients_mean_them() {
        assert_eq!(accept(&[]), Accept::Any);
        assert_eq!(accept(&[""]), Accept::Any);
        assert_eq!(accept(&["*/*"]), Accept::Any);
        assert_eq!(accept(&["application/json"]), Accept::JsonOnly);
        assert_eq!(
            accept(&["Application/JSON; charset=utf-8"]),
            Accept::JsonOnly
        );
        assert_eq!(
            accept(&["application/json, text/event-stream"]),
            Accept::Both
        );
        assert_eq!(
            accept(&["application/json", "text/event-stream"]),
            Accept::Both
        );
        assert_eq!(accept(&["application/json, text/*"]), Accept::Any);
        assert_eq!(
            accept(&["application/json, text/event-stream;q=0"]),
            Accept::JsonOnly
        );
        assert_eq!(accept(&["text/html"]), Accept::Other);
        assert_eq!(accept(&["text/event-stream"]), Accept::Other);
    }

    fn media_range() -> impl Strategy<Value = String> {
        let essence = prop::sample::select(vec![
            "application/json",
            "text/event-stream",
            "application/*",
            "text/*",
            "*/*",
            "text/html",
            "APPLICATION/JSON",
            "",
        ]);
        let q = prop::sample::select(vec![
            "", ";q=0", ";q=0.0", ";q=0.5", ";q=1", ";q=x", ";level=1",
        ]);
        (essence, q).prop_map(|(essence, q)| format!("{essence}{q}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Whatever a client writes, the reading is the one the rules give: `Both` only when
        /// both forms are named without `q=0`, `JsonOnly` never when a stream is acceptable.
        #[test]
        fn accept_is_read_by_the_rules(ranges in prop::collection::vec(media_range(), 0..5)) {
            let value = ranges.join(", ");
            let read = accept(&[value.as_str()]);
            let accepted = |name: &str| ranges.iter().any(|range| {
                let lower = range.to_ascii_lowercase();
                lower.split(';').next() == Some(name)
                    && !(lower.ends_with(";q=0") || lower.ends_with(";q=0.0"))
            });
            let json = accepted("application/json");
            let sse = accepted("text/event-stream");
            let json_any = json || accepted("application/*") || accepted("*/*");
            let sse_any = sse || accepted("text/*") || accepted("*/*");
            let named = ranges.iter().any(|range| !range.split(';').next().unwrap_or_default().is_empty());
            let expected = if !named {
                Accept::Any
            } else if json && sse {
                Accept::Both
            } else if json_any && sse_any {
                Accept::Any
            } else if json_any {
                Accept::JsonOnly
            } else {
                Accept::Other
            };
            prop_assert_eq!(read, expected, "{}", value);
        }

        /// Arbitrary bytes in a stream never panic the search for its answer.
        #[test]
        fn any_stream_text_is_searched_safely(text in "\\PC{0,200}") {
            let _ = first_answer(text.as_bytes());
        }
    }

    #[test]
    fn the_answer_is_found_among_events_and_only_once_complete() {
        let stream = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n\
                      : keep-alive\n\n\
                      id: 3\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"ok\":true}}\r\n\r\n";
        let answer = first_answer(stream.as_bytes()).unwrap();
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["id"], 7);
        let cut = &stream[..stream.len() - 4];
        assert!(first_answer(cut.as_bytes()).is_none(), "incomplete event");
    }
}
