//! The stateless fast path: a plain `tools/call` of protocol 2026-07-28 (no session, no progress
//! token, nothing but its answer expected) is served straight from the HTTP request, without
//! rmcp's per-request service — whose serve loop, four spawned tasks and channels cost more than
//! the rest of the gateway together. Any request this path is not sure about goes on to rmcp
//! unchanged, so the protocol's rules and their error answers stay rmcp's; answers are built from
//! rmcp's own message types, so both paths send the same bytes.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use manifold_policy::Principal;
use rmcp::model::{ErrorCode, JsonRpcMessage, ProtocolVersion, ServerResult};
use tokio_util::sync::CancellationToken;

use super::jsonrpc::CheckedCall;
use crate::handler::{CallScope, Gateway};

/// The one protocol version served here: the stateless era's.
const VERSION: &str = "2026-07-28";

/// What the fast path needs: the handler and the gateway's shutdown signal.
#[derive(Clone)]
pub struct FastPath {
    pub gateway: Arc<Gateway>,
    pub shutdown: CancellationToken,
}

/// axum middleware for `/mcp`, after the body guard: answers what it can, passes on the rest.
pub async fn serve(State(fast): State<FastPath>, mut request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !headers_fit(request.headers()) {
        return next.run(request).await;
    }
    // The body guard parsed a well-formed `tools/call` and left it here.
    let Some(call) = request.extensions_mut().remove::<CheckedCall>() else {
        return next.run(request).await;
    };
    if !call_fits(&call, request.headers()) {
        return next.run(request).await;
    }
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_default();
    answer(&fast, call, principal, request.headers()).await
}

/// The headers of a request this path may serve; see [`call_request`] for the body.
fn headers_fit(headers: &HeaderMap) -> bool {
    single(headers, "mcp-protocol-version").is_some_and(|v| v == VERSION)
        && !headers.contains_key("mcp-session-id")
        && single(headers, "mcp-method").is_some_and(|v| v == "tools/call")
        && single(headers, "mcp-name").is_some()
        && accepts_json_and_sse(headers)
        && single(headers, header::CONTENT_TYPE.as_str()).is_some_and(|v| {
            v.as_bytes()
                .split(|b| *b == b';')
                .next()
                .is_some_and(|essence| essence.trim_ascii().eq_ignore_ascii_case(b"application/json"))
        })
        // Tool parameters mirrored into headers (SEP-2243) are rmcp's to check.
        && !headers.keys().any(|name| name.as_str().starts_with("mcp-param-"))
}

/// The header's value when it is present exactly once.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// Streamable HTTP requires clients to accept both answer forms.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for range in value.split(',') {
            let essence = range.split(';').next().unwrap_or_default().trim();
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// A `tools/call` this path serves: the era's required `_meta` keys present and agreeing with
/// the headers, and nothing that needs more than one answer (progress, input requests).
fn call_fits(call: &CheckedCall, headers: &HeaderMap) -> bool {
    let params = &call.params;
    let Some(meta) = params.meta.as_ref() else {
        return false;
    };
    single(headers, "mcp-name").is_some_and(|name| name.as_bytes() == params.name.as_bytes())
        && meta
            .protocol_version()
            .is_some_and(|version| version.as_str() == VERSION)
        && meta
            .missing_required_keys(&ProtocolVersion::V_2026_07_28)
            .is_empty()
        && meta.get_progress_token().is_none()
        && params.input_responses.is_none()
        && params.request_state.is_none()
}

async fn answer(
    fast: &FastPath,
    call: CheckedCall,
    principal: Principal,
    headers: &HeaderMap,
) -> Response {
    let meta = call.params.meta.as_ref();
    let traceparent = meta
        .and_then(|meta| meta.get_traceparent().map(str::to_owned))
        .or_else(|| {
            headers
                .get("traceparent")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        });
    let url_elicitation = meta
        .and_then(|meta| meta.client_capabilities())
        .and_then(|capabilities| capabilities.elicitation)
        .is_some_and(|elicitation| elicitation.url.is_some());
    let scope = CallScope {
        principal,
        traceparent,
        cancel: fast.shutdown.child_token(),
        url_elicitation,
        notify: None,
    };
    let id = call.id;
    let (message, status) = match fast.gateway.call_tool(call.params, &scope).await {
        Ok(result) => (
            JsonRpcMessage::response(ServerResult::from(result), id),
            StatusCode::OK,
        ),
        Err(error) => {
            let status = error_status(error.code);
            (JsonRpcMessage::error(error, Some(id)), status)
        }
    };
    let message: rmcp::model::ServerJsonRpcMessage = message;
    match serde_json::to_vec(&message) {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from(body),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The HTTP status of a JSON-RPC error on the stateless path, as rmcp maps it.
fn error_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
        | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}"#;

    fn headers(extra: &[(&str, &str)], without: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let base = [
            ("mcp-protocol-version", VERSION),
            ("mcp-method", "tools/call"),
            ("mcp-name", "x_echo"),
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json; charset=utf-8"),
        ];
        for (name, value) in base.iter().chain(extra) {
            if !without.contains(name) {
                headers.append(
                    header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                    HeaderValue::from_str(value).expect("header value"),
                );
            }
        }
        headers
    }

    /// The body guard parsed `body` as a `tools/call` and it fits this path.
    fn fits(body: &str) -> bool {
        match super::super::jsonrpc::check(body.as_bytes()) {
            Ok(Some(call)) => call_fits(&call, &headers(&[], &[])),
            _ => false,
        }
    }

    fn body(meta: &str, extra_params: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"_meta":{meta},"name":"x_echo","arguments":{{}}{extra_params}}}}}"#
        )
    }

    #[test]
    fn serves_only_plain_stateless_calls() {
        let plain = body(META, "");
        assert!(headers_fit(&headers(&[], &[])));
        assert!(fits(&plain));

        // Headers that send a request on to rmcp.
        for (extra, without) in [
            (vec![("mcp-session-id", "s")], vec![]),
            (vec![], vec!["mcp-protocol-version"]),
            (vec![("mcp-protocol-version", "2026-07-28")], vec![]),
            (vec![], vec!["mcp-method"]),
            (vec![], vec!["mcp-name"]),
            (vec![("mcp-param-region", "eu")], vec![]),
        ] {
            assert!(
                !headers_fit(&headers(&extra, &without)),
                "{extra:?} {without:?}"
            );
        }
        let mut wrong = headers(&[], &["mcp-protocol-version", "accept"]);
        wrong.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2025-11-25"),
        );
        wrong.insert("accept", HeaderValue::from_static("application/json"));
        assert!(!headers_fit(&wrong));

        // Bodies that send a request on to rmcp.
        let older = META.replace("2026-07-28", "2025-11-25");
        let no_capabilities = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}"#;
        let with_progress = META.replacen('{', r#"{"progressToken":1,"#, 1);
        for refused in [
            body(&older, ""),
            body(no_capabilities, ""),
            body(&with_progress, ""),
            body(META, r#","requestState":"s""#),
            plain.replace("tools/call", "tools/list"),
            plain.replace("\"2.0\"", "\"1.0\""),
            plain.replace("\"id\":7", "\"id\":7.5"),
            plain.replace("x_echo", "x_other"),
        ] {
            assert!(!fits(&refused), "{refused}");
        }
    }
}
