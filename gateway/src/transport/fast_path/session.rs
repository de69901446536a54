//! The session fast path: a plain `tools/call` inside a 2024-11-05 … 2025-11-25 session (no
//! progress token, no per-request protocol version) is served without rmcp's per-session worker.
//! The session is looked up in the shared store as rmcp's own path does (an unknown or ended
//! one goes on to rmcp, which answers 404); the call is registered so that the
//! `notifications/cancelled` naming it, which arrives on another POST, drops it; and the answer
//! is one JSON message, or an SSE stream when log notifications go ahead of it.
//!
//! Two messages about a session's calls are relayed here to the replica they concern: a
//! cancellation naming no call of this replica, and the client's answer to a question another
//! replica asked.

use axum::{
    body::Bytes,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use manifold_policy::Principal;
use rmcp::model::{ErrorCode, ErrorData, JsonRpcMessage, ServerJsonRpcMessage, ServerResult};
use tokio_util::sync::CancellationToken;

use super::{FastPath, json_answer, single, traceparent};
use crate::{
    handler::{CallScope, CancelledElsewhere, Collected},
    session::{LiveSession, MAX_ANSWER_BYTES, Posted, Served},
    transport::jsonrpc::{CheckedAnswer, CheckedCall, CheckedCancel},
};

/// The protocol versions that have sessions. A request without the version header is of
/// 2025-03-26, as the specification says (and rmcp assumes).
const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// A request this path serves, and its session.
pub(super) struct Fit {
    session_id: String,
    session: LiveSession,
}

/// The session when this path serves the request: headers and `_meta` as a session request
/// has them, nothing that needs more than one answer, and a session the store has.
pub(super) async fn fits(fast: &FastPath, call: &CheckedCall, headers: &HeaderMap) -> Option<Fit> {
    let session_id = single(headers, "mcp-session-id")?.to_str().ok()?;
    let version_fits = match headers.get_all("mcp-protocol-version").iter().count() {
        0 => true,
        1 => single(headers, "mcp-protocol-version")
            .is_some_and(|v| SESSION_VERSIONS.iter().any(|known| v == known)),
        _ => false,
    };
    // SEP-2243 headers are optional here; when sent, they must agree with the body.
    let method_fits = match headers.get_all("mcp-method").iter().count() {
        0 => true,
        1 => single(headers, "mcp-method").is_some_and(|v| v == "tools/call"),
        _ => false,
    };
    let name_fits = match headers.get_all("mcp-name").iter().count() {
        0 => true,
        1 => {
            single(headers, "mcp-name").is_some_and(|v| v.as_bytes() == call.params.name.as_bytes())
        }
        _ => false,
    };
    let params = &call.params;
    let body_fits = params.meta.as_ref().is_none_or(|meta| {
        meta.protocol_version().is_none() && meta.get_progress_token().is_none()
    }) && params.input_responses.is_none()
        && params.request_state.is_none();
    if !(version_fits && method_fits && name_fits && body_fits) {
        return None;
    }
    // Unknown, ended, or a store that cannot answer: rmcp says so (404, 500).
    let session = fast.sessions.live(session_id).await.ok()??;
    // This path cannot ask the client anything: a call whose upstream may ask, of a client
    // that can answer, goes to rmcp's service, which asks on the request's stream.
    if session.answers_questions
        && fast
            .gateway
            .catalog()
            .get(&call.params.name)
            .is_some_and(|route| route.adapter.asks_client())
    {
        return None;
    }
    Some(Fit {
        session_id: session_id.to_owned(),
        session,
    })
}

pub(super) async fn answer(
    fast: &FastPath,
    fit: Fit,
    call: CheckedCall,
    principal: Principal,
    headers: &HeaderMap,
) -> Response {
    let id = call.id;
    let cancel = fast.shutdown.child_token();
    let registration = fast.relay.in_flight().register(
        &fit.session_id,
        id.clone(),
        cancel.clone(),
        Served::FastPath,
    );
    let Some(registration) = registration else {
        let error = ErrorData::new(
            ErrorCode::INVALID_REQUEST,
            "a request with this id is already in progress in this session",
            None,
        );
        return json_answer(StatusCode::OK, &JsonRpcMessage::error(error, Some(id)));
    };
    let collected = std::sync::Arc::new(Collected::new(
        fast.gateway.session_logs().get(registration.session_id()),
    ));
    let scope = CallScope {
        principal,
        traceparent: traceparent(&call.params, headers),
        cancel,
        url_elicitation: fit.session.url_elicitation,
        notify: collected.clone(),
        // Never asked here (see `fits`): an upstream hears of no capability.
        client: Default::default(),
    };
    let message: ServerJsonRpcMessage = match fast.gateway.call_tool(call.params, &scope).await {
        Ok(result) => {
            // The shape older peers know, as rmcp's handler sends it to them.
            let mut result = ServerResult::from(result);
            result.strip_result_type_for_legacy_peer();
            result.strip_non_object_output_for_legacy_peer();
            JsonRpcMessage::response(result, id)
        }
        Err(error) => JsonRpcMessage::error(error, Some(id)),
    };
    let notes = collected.take();
    if notes.is_empty() {
        json_answer(StatusCode::OK, &message)
    } else {
        sse_answer(&notes, &message)
    }
}

/// Registers a session call rmcp is about to serve, so that a cancellation posted on another
/// replica reaches it too: the handler also stops the call when the returned token fires.
pub(super) fn register_for_rmcp(
    fast: &FastPath,
    call: &CheckedCall,
    headers: &HeaderMap,
) -> Option<CancelledElsewhere> {
    let session_id = single(headers, "mcp-session-id")?.to_str().ok()?;
    let token = CancellationToken::new();
    // A second call with an id already in flight here stays unregistered: rmcp runs it
    // anyway, and only the first is reachable from other replicas.
    let registration = fast.relay.in_flight().register(
        session_id,
        call.id.clone(),
        token.clone(),
        Served::Rmcp,
    )?;
    Some(CancelledElsewhere::new(token, registration))
}

/// Cancels a call this replica serves on the fast path; `None` for any other request, which
/// rmcp's session handles (it may be one of rmcp's own, or already finished). A cancellation
/// naming no call here, in a session the store has, is posted for the replica that runs it.
pub(super) async fn cancel(
    fast: &FastPath,
    cancel: &CheckedCancel,
    headers: &HeaderMap,
) -> Option<Response> {
    let session_id = single(headers, "mcp-session-id")?.to_str().ok()?;
    match fast
        .relay
        .in_flight()
        .cancel(session_id, &cancel.request_id)
    {
        Some(Served::FastPath) => return Some(StatusCode::ACCEPTED.into_response()),
        // rmcp cancels its own copy too.
        Some(Served::Rmcp) => return None,
        None => {}
    }
    match fast.sessions.live(session_id).await {
        Ok(Some(_)) => {
            if let Err(error) = fast.relay.post_cancel(session_id, &cancel.request_id).await {
                tracing::warn!(%error, "cannot post a cancellation for the other replicas");
            }
        }
        // rmcp answers 404.
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "cannot post a cancellation for the other replicas"),
    }
    None
}

/// Relays the client's answer to a question another replica asked (its id names that replica),
/// in a session the store has: 202 as rmcp answers a response (an answer larger than
/// [`MAX_ANSWER_BYTES`] is relayed as an error for its question), 429 when the session has too
/// many answers waiting already, 503 when the database cannot take it. `None` for any other
/// answer, which rmcp's session takes (a question of this replica's, or an id of nobody's).
/// An answer for another replica never goes on to rmcp, whose session here would drop it: it
/// is relayed or refused (400 without one session id, 404 for a session the store does not
/// have, 503 when the store cannot say).
pub(super) async fn relay_answer(
    fast: &FastPath,
    answer: &CheckedAnswer,
    headers: &HeaderMap,
) -> Option<Response> {
    if !fast.questions.is_another_replicas(&answer.request_id) {
        return None;
    }
    let Some(session_id) = single(headers, "mcp-session-id").and_then(|v| v.to_str().ok()) else {
        return Some(StatusCode::BAD_REQUEST.into_response());
    };
    match fast.sessions.live(session_id).await {
        Ok(Some(session)) if session.answers_questions => {}
        // No questions were asked in a session whose client answers none.
        Ok(Some(_)) => return Some(StatusCode::BAD_REQUEST.into_response()),
        Ok(None) => return Some(StatusCode::NOT_FOUND.into_response()),
        Err(error) => {
            tracing::warn!(%error, "cannot look up the session of an answer to relay");
            return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    }
    // Too large to relay: the question is answered with an error instead, so its call ends
    // at once rather than at its timeout.
    let refused;
    let body = if answer.body.len() > MAX_ANSWER_BYTES {
        refused = serde_json::json!({"jsonrpc": "2.0", "id": answer.request_id,
            "error": {"code": -32600, "message": format!(
                "the answer is larger than the {MAX_ANSWER_BYTES} bytes relayed between replicas")}})
        .to_string();
        refused.as_str()
    } else {
        // The guard parsed the body as a client message, so it is UTF-8 JSON.
        std::str::from_utf8(&answer.body).unwrap_or_default()
    };
    Some(
        match fast
            .relay
            .post_answer(session_id, &answer.request_id, body)
            .await
        {
            Ok(Posted::Posted) => StatusCode::ACCEPTED.into_response(),
            Ok(Posted::Full) => {
                tracing::warn!("a session posted more answers than it has questions waiting");
                StatusCode::TOO_MANY_REQUESTS.into_response()
            }
            Err(error) => {
                tracing::warn!(%error, "cannot post an answer for the replica that asked");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
        },
    )
}

/// Notifications, then the answer, as one SSE stream. Events carry no ids: the stream is
/// complete when sent, so there is nothing to resume.
fn sse_answer(notes: &[ServerJsonRpcMessage], message: &ServerJsonRpcMessage) -> Response {
    let mut body = Vec::with_capacity(512);
    for item in notes.iter().chain(std::iter::once(message)) {
        body.extend_from_slice(b"event: message\ndata: ");
        if serde_json::to_writer(&mut body, item).is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        body.extend_from_slice(b"\n\n");
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Bytes::from(body),
    )
        .into_response()
}
