//! The stateless fast path: a plain `tools/call` of protocol 2026-07-28 — no session, no
//! progress token, nothing but its answer expected — answered with one JSON message.

use axum::{
    http::{HeaderMap, StatusCode},
    response::Response,
};
use manifold_policy::Principal;
use rmcp::model::{ErrorCode, JsonRpcMessage, ProtocolVersion, ServerJsonRpcMessage, ServerResult};

use super::{FastPath, json_answer, single, traceparent};
use crate::{handler::CallScope, transport::jsonrpc::CheckedCall};

/// The one protocol version served here: the stateless era's.
const VERSION: &str = "2026-07-28";

/// A request this path serves: see [`headers_fit`] and [`call_fits`].
pub(super) fn fits(call: &CheckedCall, headers: &HeaderMap) -> bool {
    headers_fit(headers) && call_fits(call, headers)
}

/// The headers of a request this path may serve, besides [`super::common_headers_fit`].
fn headers_fit(headers: &HeaderMap) -> bool {
    single(headers, "mcp-protocol-version").is_some_and(|v| v == VERSION)
        && !headers.contains_key("mcp-session-id")
        && single(headers, "mcp-method").is_some_and(|v| v == "tools/call")
        && single(headers, "mcp-name").is_some()
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

pub(super) async fn answer(
    fast: &FastPath,
    call: CheckedCall,
    principal: Principal,
    headers: &HeaderMap,
) -> Response {
    let declared = call
        .params
        .meta
        .as_ref()
        .and_then(|meta| meta.client_capabilities())
        .unwrap_or_default();
    let url_elicitation = declared
        .elicitation
        .as_ref()
        .is_some_and(|elicitation| elicitation.url.is_some());
    let scope = CallScope {
        principal,
        traceparent: traceparent(&call.params, headers),
        cancel: fast.shutdown.child_token(),
        url_elicitation,
        notify: std::sync::Arc::new(()),
        // The era answers between rounds: an upstream's questions end the call, the client
        // retries with its answers (through rmcp's path, see `call_fits`).
        client: manifold_adapters::ClientLink {
            declared,
            answers: manifold_adapters::Answers::Rounds,
            resume: Default::default(),
        },
    };
    let id = call.id;
    let (message, status): (ServerJsonRpcMessage, _) =
        match fast.gateway.call_tool(call.params, &scope).await {
            Ok(result) => {
                // As rmcp's handler does for this era.
                let mut result = ServerResult::from(result);
                result.fill_missing_cache_hints();
                (JsonRpcMessage::response(result, id), StatusCode::OK)
            }
            Err(error) => {
                let status = error_status(error.code);
                (JsonRpcMessage::error(error, Some(id)), status)
            }
        };
    json_answer(status, &message)
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
    use axum::http::{HeaderValue, header};

    use super::*;
    use crate::transport::jsonrpc::{Checked, Era, check};

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
        match check(body.as_bytes(), Era::Stateless) {
            Ok(Some(Checked::Call(call))) => call_fits(&call, &headers(&[], &[])),
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
        let headers_fit = |h: &HeaderMap| super::super::common_headers_fit(h) && headers_fit(h);
        assert!(headers_fit(&headers(&[], &[])));
        assert!(fits(&plain));

        // Headers that send a request on to rmcp.
        for (extra, without) in [
            (vec![("mcp-session-id", "s")], vec![]),
            (vec![], vec!["mcp-protocol-version"]),
            (vec![("mcp-protocol-version", "2026-07-28")], vec![]),
            (vec![], vec!["mcp-method"]),
            (vec![], vec!["mcp-name"]),
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
