//! Caps on what one caller can hold open: sessions per signed-in user (counted in the shared
//! database, so every replica sees the same number) and requests in progress per session on this
//! replica (GET streams and POSTs whose answer is still being sent). A request over a cap gets
//! 429 with a JSON-RPC error saying which cap and how to get under it. Initializes in progress
//! on this replica count as sessions until theirs is bound to the user, so a burst of them cannot
//! all pass one count; bursts spread over several replicas at once can still pass it by the
//! number of replicas.

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use dashmap::DashMap;
use manifold_policy::Principal;
use serde_json::json;

use super::{jsonrpc::Initialize, server::Guarded};
use crate::session::SqlSessionStore;

/// The 429 of a cap, with a JSON-RPC error body (code -32000, server error).
pub(super) fn too_many(message: String) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null,
                      "error": {"code": -32000, "message": message}});
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

/// Sessions per user: checked on every `initialize`, which is what opens one.
#[derive(Clone)]
pub struct SessionCap {
    sessions: Arc<SqlSessionStore>,
    max: usize,
    /// Initializes in progress here per user, not yet in the database: counted too, so
    /// concurrent initializes on one replica cannot all pass the same count.
    pending: Arc<DashMap<String, usize>>,
}

impl SessionCap {
    pub fn new(sessions: Arc<SqlSessionStore>, max: usize) -> Self {
        Self {
            sessions,
            max,
            pending: Arc::default(),
        }
    }
}

/// An initialize in progress, until its answer (by then the session is bound to its user) has
/// been sent.
struct PendingSession {
    pending: Arc<DashMap<String, usize>>,
    user: String,
}

impl Drop for PendingSession {
    fn drop(&mut self) {
        self.pending.remove_if_mut(&self.user, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
    }
}

/// axum middleware for `/mcp`, after the body guard (which marks an `initialize`) and the
/// authentication (which names the user). Without sign-in there is no user to count for.
pub async fn sessions_per_user(
    State(cap): State<SessionCap>,
    request: Request,
    next: Next,
) -> Response {
    let user = request
        .extensions()
        .get::<Initialize>()
        .and_then(|_| request.extensions().get::<Principal>())
        .and_then(|principal| principal.user.clone());
    let Some(user) = user else {
        return next.run(request).await;
    };
    let stored = match cap.sessions.open_sessions_of(&user).await {
        Ok(stored) => stored,
        Err(error) => {
            // Cannot count: refuse rather than let the cap go unchecked.
            tracing::error!(%error, "cannot count the user's sessions");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let slot = {
        let mut pending = cap.pending.entry(user.clone()).or_insert(0);
        let open = stored + *pending;
        if open >= cap.max {
            None
        } else {
            *pending += 1;
            Some(PendingSession {
                pending: cap.pending.clone(),
                user: user.clone(),
            })
        }
    };
    let Some(slot) = slot else {
        // The entry may have been made just now: leave nothing behind for a refused user.
        cap.pending.remove_if(&user, |_, count| *count == 0);
        return too_many(format!(
            "Too many sessions: this user has {stored} open and the limit is {}; end one \
             (DELETE /mcp with its Mcp-Session-Id) or let it expire",
            cap.max
        ));
    };
    next.run(request)
        .await
        .map(|body| Body::new(Guarded::new(body, slot)))
}

/// Requests in progress per session id on this replica.
#[derive(Clone)]
pub struct StreamCap {
    open: Arc<DashMap<String, usize>>,
    max: usize,
}

impl StreamCap {
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::default(),
            max,
        }
    }

    /// Takes a slot of `session`, or `None` when all are taken.
    fn acquire(&self, session: &str) -> Option<StreamSlot> {
        let mut count = self.open.entry(session.to_owned()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            open: self.open.clone(),
            session: session.to_owned(),
        })
    }
}

/// One request in progress on a session, until its answer's body is dropped.
struct StreamSlot {
    open: Arc<DashMap<String, usize>>,
    session: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        // The entry goes with its last slot, so ids never used again leave nothing behind.
        self.open.remove_if_mut(&self.session, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
    }
}

/// axum middleware for `/mcp`, after authentication: a session id only counts once its caller
/// is known.
pub async fn streams_per_session(
    State(cap): State<StreamCap>,
    request: Request,
    next: Next,
) -> Response {
    let Some(session) = request
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
    else {
        return next.run(request).await;
    };
    let Some(slot) = cap.acquire(session) else {
        return too_many(format!(
            "Too many open streams on this session: the limit is {}; close a stream or wait for \
             an answer before sending more",
            cap.max
        ));
    };
    next.run(request)
        .await
        .map(|body| Body::new(Guarded::new(body, slot)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn slots_are_capped_per_session_and_given_back() {
        let cap = StreamCap::new(2);
        let a1 = cap.acquire("a").unwrap();
        let _a2 = cap.acquire("a").unwrap();
        assert!(cap.acquire("a").is_none());
        let b = cap.acquire("b").unwrap();
        drop(a1);
        let _a3 = cap.acquire("a").unwrap();
        drop(b);
        assert!(
            !cap.open.contains_key("b"),
            "a session with nothing open leaves no entry"
        );
    }
}
