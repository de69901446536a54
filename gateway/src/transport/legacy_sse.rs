//! The 2024-11-05 HTTP+SSE transport, for clients that only speak it: `GET /sse` opens a stream
//! whose first event names the `POST /messages?sessionId=…` endpoint; answers flow back on the
//! stream. A legacy session lives in the process holding its stream, as that transport requires.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Body,
    extract::{Query, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use dashmap::DashMap;
use futures::{SinkExt, Stream, StreamExt, channel::mpsc};
use rmcp::{
    ServiceExt,
    model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::handler::Gateway;
use manifold_policy::Principal;

/// Each legacy session's inbox and the user who opened it (`None` without auth).
type Inboxes = Arc<DashMap<String, (mpsc::Sender<ClientJsonRpcMessage>, Option<Principal>)>>;

#[derive(Clone)]
struct LegacyState {
    gateway: Arc<Gateway>,
    inboxes: Inboxes,
    keep_alive: Duration,
    /// Streams one signed-in user may hold open here (`server.max_sessions_per_user`).
    max_sessions_per_user: usize,
    max_body_bytes: usize,
    shutdown: CancellationToken,
}

pub(super) fn routes(
    gateway: Arc<Gateway>,
    settings: &super::http::HttpSettings,
    shutdown: CancellationToken,
) -> Router {
    let state = LegacyState {
        gateway,
        inboxes: Arc::default(),
        keep_alive: settings.sse_keep_alive,
        max_sessions_per_user: settings.max_sessions_per_user,
        max_body_bytes: settings.max_body_bytes,
        shutdown,
    };
    Router::new()
        .route("/sse", get(open_stream))
        .route("/messages", post(post_message))
        .with_state(state)
}

/// Removes the session's inbox when its stream is dropped (client gone).
struct InboxGuard {
    inboxes: Inboxes,
    id: String,
}

impl Drop for InboxGuard {
    fn drop(&mut self) {
        self.inboxes.remove(&self.id);
    }
}

async fn open_stream(
    State(state): State<LegacyState>,
    principal: Option<axum::Extension<Principal>>,
) -> Response {
    let principal = principal.map(|axum::Extension(p)| p);
    // A legacy session lives in this process with its stream: count this replica's.
    if let Some(user) = principal.as_ref().and_then(|p| p.user.as_ref()) {
        let open = state
            .inboxes
            .iter()
            .filter(|entry| entry.value().1.as_ref().and_then(|p| p.user.as_ref()) == Some(user))
            .count();
        if open >= state.max_sessions_per_user {
            return super::limits::too_many(format!(
                "Too many sessions: this user has {open} legacy SSE streams open and the limit \
                 is {}; close one first",
                state.max_sessions_per_user
            ));
        }
    }
    stream(state, principal).into_response()
}

fn stream(
    state: LegacyState,
    principal: Option<Principal>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (inbox, to_server) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let (from_server, outbox) = mpsc::channel::<ServerJsonRpcMessage>(64);
    state.inboxes.insert(id.clone(), (inbox, principal));
    let handler = state.gateway.handler();
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let running = tokio::select! {
            running = handler.serve((from_server, to_server)) => running,
            () = shutdown.cancelled() => return,
        };
        match running {
            Ok(service) => {
                let _ = service.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "legacy SSE session ended before initialize"),
        }
    });
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={id}"));
    let guard = InboxGuard {
        inboxes: state.inboxes.clone(),
        id,
    };
    let messages = outbox.map(move |message| {
        let _keep = &guard;
        let data = serde_json::to_string(&message).unwrap_or_default();
        Ok(Event::default().event("message").data(data))
    });
    let stream = futures::stream::once(async { Ok(endpoint) }).chain(messages);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(state.keep_alive))
}

#[derive(serde::Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

async fn post_message(
    State(state): State<LegacyState>,
    caller: Option<axum::Extension<Principal>>,
    query: Result<Query<SessionQuery>, axum::extract::rejection::QueryRejection>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    // The same body rules as `POST /mcp`, before anything else looks at the message.
    if !super::jsonrpc::is_json(&headers) {
        return super::jsonrpc::unsupported_media_type();
    }
    let body = match super::jsonrpc::read_body(body, state.max_body_bytes).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    if let Err(rejection) = super::jsonrpc::unique(&body) {
        return rejection.into_response();
    }
    let Ok(Query(query)) = query else {
        return (
            StatusCode::BAD_REQUEST,
            "Bad Request: sessionId query parameter required",
        )
            .into_response();
    };
    let Some((mut inbox, owner)) = state
        .inboxes
        .get(&query.session_id)
        .map(|entry| entry.clone())
    else {
        return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
    };
    let caller = caller.map(|axum::Extension(p)| p);
    // A session is bound to the user who opened it (MCP: sessions are not authentication).
    if let Some(owner) = &owner
        && caller.as_ref().map(|c| &c.user) != Some(&owner.user)
    {
        return (
            StatusCode::FORBIDDEN,
            "Forbidden: session belongs to another user",
        )
            .into_response();
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(_) => return jsonrpc_error(StatusCode::BAD_REQUEST, -32700, "Parse error"),
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_value(value) {
        Ok(message) => message,
        Err(_) => return jsonrpc_error(StatusCode::BAD_REQUEST, -32600, "Invalid Request"),
    };
    // The handler reads the caller from the request parts, as on /mcp.
    if let (ClientJsonRpcMessage::Request(request), Some(principal)) = (&mut message, caller) {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.extensions.insert(principal);
        request.request.extensions_mut().insert(parts);
    }
    match inbox.send(message).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "Not Found: Session ended").into_response(),
    }
}
