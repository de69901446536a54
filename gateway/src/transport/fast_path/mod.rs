//! The fast paths: a plain `tools/call` — of protocol 2026-07-28 ([`stateless`]) or inside a
//! 2024-11-05 … 2025-11-25 session ([`session`]) — is served straight from the HTTP request,
//! without rmcp's per-request machinery (a serve loop with spawned tasks per stateless request;
//! a hop through the session's worker and its channels per session request), which cost more
//! than the rest of the gateway together. Any request these paths are not sure about goes on to
//! rmcp unchanged, so the protocol's rules and their error answers stay rmcp's; answers are built
//! from rmcp's own message types, so both ways send the same JSON-RPC messages.

mod session;
mod stateless;

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use manifold_policy::{Action, Principal};
use rmcp::model::{
    CallToolRequestParams, ErrorCode, ErrorData, JsonRpcMessage, ServerJsonRpcMessage,
};
use tokio_util::sync::CancellationToken;

use super::{
    jsonrpc::{CheckedAnswer, CheckedCall, CheckedCancel},
    param_headers,
};
use crate::{
    handler::Gateway,
    policy::tool_ref,
    session::{Questions, SignalRelay, SqlSessionStore},
};

/// What the fast paths need: the handler, the session store, the session calls in flight here
/// (with the relay of signals between replicas), whose questions this replica's are, and the
/// gateway's shutdown signal.
#[derive(Clone)]
pub struct FastPath {
    pub gateway: Arc<Gateway>,
    pub sessions: Arc<SqlSessionStore>,
    pub relay: Arc<SignalRelay>,
    pub questions: Questions,
    pub shutdown: CancellationToken,
}

/// axum middleware for `/mcp`, after the body guard: answers what it can, passes on the rest.
pub async fn serve(State(fast): State<FastPath>, mut request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    if let Some(refusal) = param_headers_refusal(&fast, &request) {
        return refusal;
    }
    if !common_headers_fit(request.headers()) {
        return next.run(request).await;
    }
    if let Some(answer) = request.extensions_mut().remove::<CheckedAnswer>() {
        return match session::relay_answer(&fast, &answer, request.headers()).await {
            Some(answered) => answered,
            None => next.run(request).await,
        };
    }
    if let Some(cancel) = request.extensions_mut().remove::<CheckedCancel>() {
        return match session::cancel(&fast, &cancel, request.headers()).await {
            Some(answer) => answer,
            None => next.run(request).await,
        };
    }
    // The body guard parsed a well-formed `tools/call` and left it here.
    let Some(call) = request.extensions_mut().remove::<CheckedCall>() else {
        return next.run(request).await;
    };
    let headers = request.headers();
    if stateless::fits(&call, headers) {
        let principal = principal(&request);
        return stateless::answer(&fast, call, principal, request.headers()).await;
    }
    if let Some(session) = session::fits(&fast, &call, headers).await {
        let principal = principal(&request);
        return session::answer(&fast, session, call, principal, request.headers()).await;
    }
    if let Some(elsewhere) = session::register_for_rmcp(&fast, &call, headers) {
        request.extensions_mut().insert(elsewhere);
    }
    next.run(request).await
}

/// The refusal of a `tools/call` whose `Mcp-Param-*` headers disagree with its body (protocol
/// 2026-07-28 on), whichever path would serve it. This is the only check of those headers: it
/// has the tool's schema from the catalog and the caller, and the handler gives rmcp no schemas
/// (see `McpHandler`), so rmcp's own check does not run.
fn param_headers_refusal(fast: &FastPath, request: &Request) -> Option<Response> {
    let call = request.extensions().get::<CheckedCall>()?;
    let headers = request.headers();
    if !param_headers::version_has_param_headers(headers) {
        return None;
    }
    // An unknown tool declares nothing; the call's own answer says it is unknown.
    let catalog = fast.gateway.catalog();
    let route = catalog.get(&call.params.name)?;
    let error = param_headers::check(
        headers,
        &call.params.name,
        &route.spec.input_schema,
        call.params.arguments.as_ref(),
    )
    .err()?;
    // Refusing a call of a tool the caller may not list would tell what its schema declares:
    // such a call goes on, and its answer says the name is unknown. Decided only here, so a
    // call whose headers agree costs no second policy decision.
    let visible = !route.blocked_by_read_only
        && fast
            .gateway
            .policy()
            .engine()
            .decide(&principal(request), Action::List, &tool_ref(route), None)
            .is_allowed();
    if !visible {
        return None;
    }
    let error = ErrorData::new(ErrorCode::HEADER_MISMATCH, error.to_string(), None);
    let message: ServerJsonRpcMessage = JsonRpcMessage::error(error, Some(call.id.clone()));
    Some(json_answer(StatusCode::BAD_REQUEST, &message))
}

/// What every request these paths serve has: a JSON body and both answer forms accepted
/// (`Mcp-Param-*` headers, if any, were checked by [`param_headers_refusal`]).
fn common_headers_fit(headers: &HeaderMap) -> bool {
    accepts_json_and_sse(headers)
        && single(headers, header::CONTENT_TYPE.as_str()).is_some_and(|v| {
            v.as_bytes()
                .split(|b| *b == b';')
                .next()
                .is_some_and(|essence| {
                    essence
                        .trim_ascii()
                        .eq_ignore_ascii_case(b"application/json")
                })
        })
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

/// The caller, as the authentication stage left it.
fn principal(request: &Request) -> Principal {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_default()
}

/// W3C trace context to continue upstream: `_meta.traceparent`, else the HTTP header.
fn traceparent(params: &CallToolRequestParams, headers: &HeaderMap) -> Option<String> {
    params
        .meta
        .as_ref()
        .and_then(|meta| meta.get_traceparent().map(str::to_owned))
        .or_else(|| {
            headers
                .get("traceparent")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        })
}

/// One JSON-RPC message as a JSON answer.
fn json_answer(status: StatusCode, message: &ServerJsonRpcMessage) -> Response {
    match serde_json::to_vec(message) {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from(body),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
