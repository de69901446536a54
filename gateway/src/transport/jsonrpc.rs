//! Checks every `POST /mcp` body before the MCP server sees it, so malformed input gets a proper
//! JSON-RPC error (-32700 parse error, -32600 invalid request, -32602 invalid params) with HTTP
//! 400 instead of a transport-level failure, oversized bodies get 413 and a `Content-Type` other
//! than JSON gets 415. A body with a key repeated in one object is a parse error: the stages
//! after this one could otherwise read different values of it (see [`unique_keys`]).
//!
//! Two rules of protocol 2026-07-28 live here too, since this is the first stage that knows the
//! method: a method that era removed (`initialize`, `ping`, `logging/setLevel`, …) gets 404 with
//! -32601 when the request is of that era, and the MCP headers that stages after this one
//! compare with the body (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`, `MCP-Protocol-Version`) lose
//! their surrounding whitespace first, as RFC 9110 §5.5 says a field value is read: HTTP/1.1's
//! parser already drops it, HTTP/2's does not, and rmcp compares values as they come.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rmcp::model::{
    CallToolRequestParams, CancelledNotificationParam, ClientJsonRpcMessage, ClientRequest,
    InitializeRequestParams, PaginatedRequestParams, RequestId,
};
use serde_json::{Value, json};

use super::unique_keys::{self, UniqueKeysError};

/// Methods this server knows; a known method whose params do not deserialize is -32602, an
/// unknown one is left to the handler, which answers -32601.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// Methods protocol 2026-07-28 removed: a request of that era naming one is answered as an
/// unknown method (HTTP 404, -32601), while sessions of earlier eras keep them.
const REMOVED_IN_2026: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// The protocol version without sessions, `initialize` or the methods above.
const STATELESS_VERSION: &str = "2026-07-28";

/// What the headers tell of a request's protocol era, before the body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Era {
    /// In a session, or declaring a version that has them: 2024-11-05 … 2025-11-25.
    Sessions,
    /// No session, `MCP-Protocol-Version: 2026-07-28`.
    Stateless,
    /// Neither a session nor a version header: the body's `_meta` tells.
    Undeclared,
}

impl Era {
    pub(super) fn of(headers: &HeaderMap) -> Self {
        if headers.contains_key("mcp-session-id") {
            return Self::Sessions;
        }
        let mut versions = headers.get_all("mcp-protocol-version").iter();
        match (versions.next(), versions.next()) {
            (None, _) => Self::Undeclared,
            (Some(version), None) if version == STATELESS_VERSION => Self::Stateless,
            _ => Self::Sessions,
        }
    }

    /// Whether a request with these `params` is of the stateless era.
    fn is_stateless(self, params: Option<&serde_json::value::RawValue>) -> bool {
        #[derive(serde::Deserialize)]
        struct Params<'a> {
            #[serde(rename = "_meta", borrow)]
            meta: Option<Meta<'a>>,
        }
        #[derive(serde::Deserialize)]
        struct Meta<'a> {
            #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow)]
            version: Option<std::borrow::Cow<'a, str>>,
        }
        match self {
            Self::Sessions => false,
            Self::Stateless => true,
            Self::Undeclared => params
                .and_then(|params| serde_json::from_str::<Params<'_>>(params.get()).ok())
                .and_then(|params| params.meta?.version)
                .is_some_and(|version| version == STATELESS_VERSION),
        }
    }
}

/// A well-formed `tools/call` as the guard parsed it, left in the request's extensions so the
/// fast paths need not parse the body again.
#[derive(Debug, Clone)]
pub(super) struct CheckedCall {
    pub id: RequestId,
    pub params: CallToolRequestParams,
}

/// A well-formed `notifications/cancelled` naming a request, left in the request's extensions
/// so the session fast path can cancel a call it is serving.
#[derive(Debug, Clone)]
pub(super) struct CheckedCancel {
    pub request_id: RequestId,
}

/// A well-formed JSON-RPC response or error of the client, answering a question of the server
/// (its `id` is the server's), left in the request's extensions so the session fast path can
/// relay it to the replica that asked.
#[derive(Debug, Clone)]
pub(super) struct CheckedAnswer {
    pub request_id: RequestId,
    pub body: Bytes,
}

/// What the guard learnt of a body it let through.
#[derive(Debug)]
// Built once per request and moved straight into the extensions: boxing the call would only add
// an allocation to every `tools/call`.
#[allow(clippy::large_enum_variant)]
pub(super) enum Checked {
    Call(CheckedCall),
    Cancel(CheckedCancel),
    /// A client's answer to the server's request with this id.
    Answer(RequestId),
    /// A well-formed `initialize`: it opens a session, which the per-user cap counts.
    Initialize,
}

/// Marks a request whose body is a well-formed `initialize`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Initialize;

/// The body limit, shared with the MCP server's own.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A body refused with a JSON-RPC error: HTTP 400, or 404 for a method its era removed.
#[derive(Debug, PartialEq)]
pub(super) struct Rejection {
    status: StatusCode,
    id: Value,
    code: i64,
    message: String,
}

fn error(id: Value, code: i64, message: String) -> Rejection {
    Rejection {
        status: StatusCode::BAD_REQUEST,
        id,
        code,
        message,
    }
}

/// The answer to a method protocol 2026-07-28 removed, as rmcp answers an unknown one then.
fn removed(id: Value, method: &str) -> Rejection {
    Rejection {
        status: StatusCode::NOT_FOUND,
        id,
        code: -32601,
        message: format!(
            "Method not found: {method} does not exist in protocol {STATELESS_VERSION}"
        ),
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = json!({"jsonrpc": "2.0", "id": self.id,
                          "error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

/// A valid JSON-RPC id: string or integer. Anything else is answered with `id: null`.
fn usable_id(message: &Value) -> Value {
    match message.get("id") {
        Some(id @ Value::String(_)) => id.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Value::Number(n.clone()),
        _ => Value::Null,
    }
}

/// The envelope of a JSON-RPC message, borrowed from the body: parsing it validates the JSON
/// without building a tree.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a serde_json::value::RawValue>,
}

/// Why a body cannot be handed to the MCP server. The common case — a well-formed `tools/call`
/// or a method this server does not know — costs one borrowed parse; everything else gets the
/// full typed check, and a body that fails is taken apart to say what is wrong.
pub(super) fn check(body: &[u8], era: Era) -> Result<Option<Checked>, Rejection> {
    unique(body)?;
    let envelope = serde_json::from_slice::<Envelope<'_>>(body)
        .ok()
        .filter(|envelope| envelope.jsonrpc.as_deref() == Some("2.0"));
    if let Some(envelope) = &envelope
        && envelope.id.is_none()
        && envelope.method.as_deref() == Some("notifications/cancelled")
        && let Some(params) = envelope.params
        && let Ok(params) = serde_json::from_str::<CancelledNotificationParam>(params.get())
        && let Some(request_id) = params.request_id
    {
        return Ok(Some(Checked::Cancel(CheckedCancel { request_id })));
    }
    if let Some(envelope) = envelope
        && let Some(id) = envelope.id.filter(|id| is_valid_id(id.get()))
    {
        if let Some(method) = envelope.method.as_deref()
            && REMOVED_IN_2026.contains(&method)
            && era.is_stateless(envelope.params)
        {
            let id = serde_json::from_str(id.get()).unwrap_or(Value::Null);
            return Err(removed(id, method));
        }
        match envelope.method.as_deref() {
            Some("tools/call") => {
                let params = envelope.params.map_or("null", |p| p.get());
                if let Ok(params) = serde_json::from_str::<CallToolRequestParams>(params) {
                    let id = serde_json::from_str::<RequestId>(id.get()).ok();
                    return Ok(id.map(|id| Checked::Call(CheckedCall { id, params })));
                }
            }
            Some(method) if !KNOWN_METHODS.contains(&method) => return Ok(None),
            _ => {}
        }
    }
    match serde_json::from_slice::<ClientJsonRpcMessage>(body) {
        Ok(ClientJsonRpcMessage::Request(request))
            if matches!(request.request, ClientRequest::CustomRequest(_)) => {}
        Ok(ClientJsonRpcMessage::Request(request))
            if matches!(request.request, ClientRequest::InitializeRequest(_)) =>
        {
            return Ok(Some(Checked::Initialize));
        }
        Ok(ClientJsonRpcMessage::Response(response)) => {
            return Ok(Some(Checked::Answer(response.id)));
        }
        Ok(ClientJsonRpcMessage::Error(error)) => return Ok(error.id.map(Checked::Answer)),
        Ok(_) => return Ok(None),
        Err(_) => {}
    }
    diagnose(body).map(|()| None)
}

/// The body is JSON in which no object repeats a key; else a parse error that says which key.
pub(super) fn unique(body: &[u8]) -> Result<(), Rejection> {
    unique_keys::check(body).map_err(|error| match error {
        UniqueKeysError::Duplicate { .. } => error_of(-32700, format!("Parse error: {error}")),
        UniqueKeysError::Syntax(e) => error_of(-32700, format!("Parse error: {e}")),
    })
}

fn error_of(code: i64, message: String) -> Rejection {
    error(Value::Null, code, message)
}

/// `Content-Type` is `application/json` (once, any case, `charset=utf-8` at most): JSON-RPC
/// bodies are UTF-8 JSON, and a body declared as anything else is not read as one.
pub(super) fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let mut values = headers.get_all(axum::http::header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        && parts.all(|parameter| {
            let parameter = parameter.trim();
            parameter.is_empty()
                || parameter.split_once('=').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("charset")
                        && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
                })
        })
}

/// The 415 for a body that is not declared as JSON, with a JSON-RPC error body.
pub(super) fn unsupported_media_type() -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
        "message": "Unsupported Media Type: Content-Type must be application/json"}});
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response()
}

/// A JSON-RPC id this server accepts: a string or an integer.
fn is_valid_id(raw: &str) -> bool {
    let raw = raw.trim();
    if raw.starts_with('"') {
        return true;
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    !digits.is_empty() && digits.len() <= 19 && digits.bytes().all(|b| b.is_ascii_digit())
}

fn diagnose(body: &[u8]) -> Result<(), Rejection> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| error(Value::Null, -32700, format!("Parse error: {e}")))?;
    let bad = |id: Value, message: String| Err(error(id, -32600, message));
    let object = match &value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return bad(
                Value::Null,
                "Invalid Request: JSON-RPC batches are not supported; send one message per request"
                    .into(),
            );
        }
        _ => {
            return bad(
                Value::Null,
                "Invalid Request: a JSON-RPC message must be an object".into(),
            );
        }
    };
    let id = usable_id(&value);
    if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return bad(id, "Invalid Request: `jsonrpc` must be \"2.0\"".into());
    }
    if let Some(raw_id) = object.get("id")
        && usable_id(&value).is_null()
    {
        let kind = match raw_id {
            Value::Number(_) => "a number that is not an integer in the 64-bit range",
            Value::Null => "null",
            _ => "neither a string nor an integer",
        };
        return bad(Value::Null, format!("Invalid Request: `id` is {kind}"));
    }
    let method = match object.get("method") {
        Some(Value::String(method)) => Some(method.as_str()),
        Some(_) => return bad(id, "Invalid Request: `method` must be a string".into()),
        None if object.contains_key("result") || object.contains_key("error") => None,
        None => return bad(id, "Invalid Request: no `method`".into()),
    };
    if let Some(params) = object.get("params")
        && !params.is_object()
    {
        return Err(error(
            id,
            -32602,
            "Invalid params: `params` must be an object".into(),
        ));
    }
    let known = method.filter(|m| KNOWN_METHODS.contains(m));
    let invalid_params = |detail: String| {
        let method = known.unwrap_or_default();
        Err(error(
            id.clone(),
            -32602,
            format!("Invalid params for {method}: {detail}"),
        ))
    };
    match serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
        Err(e) if known.is_some() => return invalid_params(e.to_string()),
        Err(e) => return bad(id, format!("Invalid Request: {e}")),
        // rmcp keeps a message whose params do not fit its method as a custom request; for a
        // method we know, that means the params are wrong.
        Ok(ClientJsonRpcMessage::Request(request))
            if known.is_some() && matches!(request.request, ClientRequest::CustomRequest(_)) =>
        {
            return invalid_params(params_error(
                known.unwrap_or_default(),
                object.get("params"),
            ));
        }
        Ok(_) => {}
    }
    Ok(())
}

/// What is wrong with `params` for `method`, in serde's words.
fn params_error(method: &str, params: Option<&Value>) -> String {
    let params = params.cloned().unwrap_or(Value::Null);
    let outcome = match method {
        "tools/call" => serde_json::from_value::<CallToolRequestParams>(params).map(drop),
        "initialize" => serde_json::from_value::<InitializeRequestParams>(params).map(drop),
        "tools/list" => serde_json::from_value::<Option<PaginatedRequestParams>>(params).map(drop),
        _ => Ok(()),
    };
    match outcome {
        Err(e) => e.to_string(),
        Ok(()) => "the params do not match the method's schema".into(),
    }
}

/// The whole body within `limit` bytes; 413 when larger, 408 (with a JSON-RPC error body) when
/// it does not arrive within `server.body_read_timeout`.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    let error = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => return Ok(bytes),
        Err(error) => error,
    };
    if super::server::timed_out(&error) {
        let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
            "message": "Request Timeout: the body did not arrive within the time allowed"}});
        return Err((StatusCode::REQUEST_TIMEOUT, Json(body)).into_response());
    }
    // Anything else is the length limit (or a connection gone, whose answer nobody reads).
    Err((
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Payload Too Large: the limit is {limit} bytes"),
    )
        .into_response())
}

/// Whether `name` is one of the MCP headers compared with the body.
fn compared_with_body(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(name, "mcp-method" | "mcp-name" | "mcp-protocol-version")
        || name.starts_with(super::param_headers::PREFIX)
}

/// A field value without the optional whitespace (SP, HTAB) around it.
fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |last| last + 1);
    &value[start..end]
}

/// Drops the whitespace around the values of the headers compared with the body, keeping every
/// value (a repeated header stays repeated, for the checks that refuse that).
pub(super) fn trim_compared_headers(headers: &mut HeaderMap) {
    let padded: Vec<HeaderName> = headers
        .iter()
        .filter(|(name, value)| {
            compared_with_body(name) && trim_ows(value.as_bytes()).len() != value.len()
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in padded {
        let values: Vec<HeaderValue> = headers
            .get_all(&name)
            .iter()
            .filter_map(|value| HeaderValue::from_bytes(trim_ows(value.as_bytes())).ok())
            .collect();
        headers.remove(&name);
        for value in values {
            headers.append(name.clone(), value);
        }
    }
}

/// axum middleware for the `/mcp` route.
pub async fn enforce(State(limit): State<BodyLimit>, mut request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    if !is_json(request.headers()) {
        return unsupported_media_type();
    }
    trim_compared_headers(request.headers_mut());
    let era = Era::of(request.headers());
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match read_body(body, limit.0).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    let checked = match check(&bytes, era) {
        Ok(checked) => checked,
        Err(rejection) => return rejection.into_response(),
    };
    let answer_body = matches!(checked, Some(Checked::Answer(_))).then(|| bytes.clone());
    let mut request = Request::from_parts(parts, Body::from(bytes));
    match checked {
        Some(Checked::Call(call)) => {
            request.extensions_mut().insert(call);
        }
        Some(Checked::Cancel(cancel)) => {
            request.extensions_mut().insert(cancel);
        }
        Some(Checked::Initialize) => {
            request.extensions_mut().insert(Initialize);
        }
        Some(Checked::Answer(request_id)) => {
            request.extensions_mut().insert(CheckedAnswer {
                request_id,
                body: answer_body.unwrap_or_default(),
            });
        }
        None => {}
    }
    next.run(request).await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The status and JSON-RPC error code `check` answers `body` with.
    async fn rejection(body: &str) -> Option<(StatusCode, i64)> {
        rejection_in(body, Era::Sessions)
            .await
            .map(|(status, code, _)| (status, code))
    }

    /// The status, JSON-RPC error code and id `check` answers `body` of `era` with.
    async fn rejection_in(body: &str, era: Era) -> Option<(StatusCode, i64, Value)> {
        let response = check(body.as_bytes(), era).err()?.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .ok()?;
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        Some((
            status,
            value["error"]["code"].as_i64()?,
            value["id"].clone(),
        ))
    }

    /// Request headers from `(name, value)` pairs, repeated names kept.
    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    const META_2026: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

    #[test]
    fn the_era_is_read_from_the_session_and_version_headers() {
        let stateless = [("mcp-protocol-version", "2026-07-28")];
        assert_eq!(Era::of(&headers(&stateless)), Era::Stateless);
        assert_eq!(Era::of(&headers(&[])), Era::Undeclared);
        for sessions in [
            vec![("mcp-protocol-version", "2025-11-25")],
            vec![
                ("mcp-session-id", "s"),
                ("mcp-protocol-version", "2026-07-28"),
            ],
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-protocol-version", "2026-07-28"),
            ],
        ] {
            assert_eq!(Era::of(&headers(&sessions)), Era::Sessions, "{sessions:?}");
        }
    }

    #[tokio::test]
    async fn methods_removed_in_2026_07_28_are_not_found_in_that_era_only() {
        for (index, method) in REMOVED_IN_2026.iter().enumerate() {
            let with_meta = format!(
                r#"{{"jsonrpc":"2.0","id":{index},"method":"{method}","params":{{"_meta":{META_2026}}}}}"#
            );
            let not_found = Some((StatusCode::NOT_FOUND, -32601, json!(index)));
            assert_eq!(rejection_in(&with_meta, Era::Stateless).await, not_found);
            assert_eq!(rejection_in(&with_meta, Era::Undeclared).await, not_found);
            let named = with_meta.replace(&format!(r#""id":{index}"#), r#""id":"r-1""#);
            assert_eq!(
                rejection_in(&named, Era::Stateless).await,
                Some((StatusCode::NOT_FOUND, -32601, json!("r-1")))
            );
            // Sessions keep them (params checked as before, never 404).
            let kept = rejection_in(&with_meta, Era::Sessions).await;
            assert!(
                kept.is_none_or(|(status, ..)| status == StatusCode::BAD_REQUEST),
                "{method}"
            );
        }
        // Without `_meta` or a version header, an `initialize` is the start of a session.
        let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        assert!(matches!(
            check(initialize.as_bytes(), Era::Undeclared),
            Ok(Some(Checked::Initialize))
        ));
        let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        assert!(matches!(check(ping.as_bytes(), Era::Undeclared), Ok(None)));
        assert!(matches!(check(ping.as_bytes(), Era::Sessions), Ok(None)));
        // Methods the era kept pass.
        let list = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{META_2026}}}}}"#
        );
        assert!(matches!(check(list.as_bytes(), Era::Stateless), Ok(None)));
    }

    #[test]
    fn a_clients_answer_to_the_servers_question_is_marked_with_its_id() {
        let answers = [
            (
                r#"{"jsonrpc":"2.0","id":"mf:00ff:3","result":{"action":"accept"}}"#,
                Some("mf:00ff:3"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"no"}}"#,
                Some("7"),
            ),
            // An error without an id answers nothing in particular.
            (
                r#"{"jsonrpc":"2.0","error":{"code":-1,"message":"no"}}"#,
                None,
            ),
        ];
        for (body, id) in answers {
            let checked = check(body.as_bytes(), Era::Sessions).expect("an answer passes");
            let marked = match checked {
                Some(Checked::Answer(RequestId::String(id))) => Some(id.to_string()),
                Some(Checked::Answer(RequestId::Number(id))) => Some(id.to_string()),
                _ => None,
            };
            assert_eq!(marked.as_deref(), id, "{body}");
        }
    }

    #[test]
    fn whitespace_inside_a_value_or_in_other_headers_stays() {
        let mut padded = headers(&[
            ("mcp-name", "\t a b \t"),
            ("mcp-method", "tools/call"),
            ("mcp-method", " tools/list"),
            ("x-other", "  kept  "),
        ]);
        trim_compared_headers(&mut padded);
        assert_eq!(padded["mcp-name"], "a b");
        let methods: Vec<_> = padded.get_all("mcp-method").iter().collect();
        assert_eq!(methods, ["tools/call", "tools/list"]);
        assert_eq!(padded["x-other"], "  kept  ");
    }

    proptest::proptest! {
        #[test]
        fn compared_headers_read_the_same_with_any_surrounding_whitespace(
            name in "(mcp-method|Mcp-Name|MCP-PROTOCOL-VERSION|Mcp-Param-[A-Za-z]{1,8})",
            value in "[!-~]([ -~]{0,20}[!-~])?",
            before in "[ \t]{0,4}",
            after in "[ \t]{0,4}",
        ) {
            let mut padded = headers(&[(&name, &format!("{before}{value}{after}"))]);
            trim_compared_headers(&mut padded);
            proptest::prop_assert_eq!(padded, headers(&[(&name, &value)]));
        }
    }

    #[tokio::test]
    async fn classifies_bodies() {
        assert_eq!(
            rejection(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).await,
            None
        );
        assert_eq!(
            rejection(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await,
            None
        );
        assert_eq!(
            rejection(r#"{"jsonrpc":"2.0","id":"x","method":"no/such"}"#).await,
            None
        );
        let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let cases: &[(&str, i64)] = &[
            (r#"{"jsonrpc":"2.0","id":1,"meth"#, -32700),
            ("", -32700),
            (&nested, -32700),
            ("[]", -32600),
            (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, -32600),
            ("5", -32600),
            (r#"{"id":1,"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, -32600),
            (
                r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#,
                -32600,
            ),
            (r#"{"jsonrpc":"2.0","id":1,"method":7}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":1}"#, -32600),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#,
                -32602,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
                -32602,
            ),
        ];
        for (body, code) in cases {
            let got = rejection(body).await;
            let shown = body.get(..60).unwrap_or(body);
            assert_eq!(got, Some((StatusCode::BAD_REQUEST, *code)), "{shown}");
        }
    }
}
