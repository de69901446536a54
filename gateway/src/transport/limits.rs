//! Caps on what one caller can hold open: sessions per signed-in user and requests in progress
//! per session. A request over a cap gets 429 with a JSON-RPC error saying which cap and how to
//! get under it.
//!
//! Sessions are counted in the shared database, and an `initialize` reserves its slot there in
//! the same transaction as the count ([`SessionSlots`]), so no burst spread over any number of
//! replicas gets past the cap. Requests in progress are counted in Redis when
//! `storage.redis_url` is set ([`SharedStreams`]), so the cap holds for a session whatever
//! replicas serve it; without Redis (or while it fails) each replica counts its own, and a
//! session served by N replicas may have N times the cap in progress.

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

use super::{
    jsonrpc::Initialize,
    server::Guarded,
    shared_streams::{SharedSlot, SharedStreams},
};
use crate::session::{Reserved, SessionSlots};

/// The 429 of a cap, with a JSON-RPC error body (code -32000, server error).
pub(super) fn too_many(message: String) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null,
                      "error": {"code": -32000, "message": message}});
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

/// axum middleware for `/mcp`, after the body guard (which marks an `initialize`) and the
/// authentication (which names the user). Without sign-in there is no user to count for.
pub async fn sessions_per_user(
    State(slots): State<SessionSlots>,
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
    let reservation = match slots.reserve(&user).await {
        Ok(Reserved::Slot(reservation)) => reservation,
        Ok(Reserved::Full { open }) => {
            return too_many(format!(
                "Too many sessions: this user has {open} open and the limit is {}; end one \
                 (DELETE /mcp with its Mcp-Session-Id) or let it expire",
                slots.max()
            ));
        }
        Err(error) => {
            // Cannot count: refuse rather than let the cap go unchecked.
            tracing::error!(%error, "cannot reserve a session slot for the user");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let response = next.run(request).await;
    let created = response
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    // No session (a refused or failed initialize): the reservation gives its slot back as it
    // drops.
    let Some(created) = created else {
        return response;
    };
    if let Err(error) = slots.confirm(reservation, &created).await {
        // The client never learns the id; the unowned session is swept as idle.
        tracing::error!(%error, "cannot bind the new session to its user");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    response
}

/// Requests in progress per session: in Redis when configured, else (or while Redis fails) on
/// this replica.
#[derive(Clone)]
pub struct StreamCap {
    /// Every slot taken here, whichever way it was counted: the fallback count when Redis
    /// fails then includes what this replica already holds.
    open: Arc<DashMap<String, usize>>,
    max: usize,
    shared: Option<SharedStreams>,
}

// === impl StreamCap ===

impl StreamCap {
    pub fn new(max: usize, shared: Option<SharedStreams>) -> Self {
        Self {
            open: Arc::default(),
            max,
            shared,
        }
    }

    /// Takes a slot of `session`, or `None` when all are taken.
    async fn acquire(&self, session: &str) -> Option<StreamSlot> {
        if let Some(shared) = &self.shared {
            match shared.acquire(session, self.max).await {
                Ok(Some(shared)) => {
                    return Some(StreamSlot {
                        _local: self.take_local(session),
                        _shared: Some(shared),
                    });
                }
                Ok(None) => return None,
                // Logged by `SharedStreams`; counted here alone meanwhile.
                Err(_) => {}
            }
        }
        self.acquire_local(session).map(|local| StreamSlot {
            _local: local,
            _shared: None,
        })
    }

    /// Takes a slot of `session` counted on this replica only, if one is free here.
    fn acquire_local(&self, session: &str) -> Option<LocalSlot> {
        let mut count = self.open.entry(session.to_owned()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        drop(count);
        Some(LocalSlot {
            open: self.open.clone(),
            session: session.to_owned(),
        })
    }

    /// Records a slot Redis granted, whatever this replica's own count says.
    fn take_local(&self, session: &str) -> LocalSlot {
        *self.open.entry(session.to_owned()).or_insert(0) += 1;
        LocalSlot {
            open: self.open.clone(),
            session: session.to_owned(),
        }
    }
}

/// One request in progress on a session, until its answer's body is dropped (sent, or the
/// request dropped with it).
struct StreamSlot {
    _local: LocalSlot,
    _shared: Option<SharedSlot>,
}

/// The slot in this replica's count.
struct LocalSlot {
    open: Arc<DashMap<String, usize>>,
    session: String,
}

impl Drop for LocalSlot {
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
    let Some(slot) = cap.acquire(session).await else {
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
        let cap = StreamCap::new(2, None);
        let a1 = cap.acquire_local("a").unwrap();
        let _a2 = cap.acquire_local("a").unwrap();
        assert!(cap.acquire_local("a").is_none());
        let b = cap.acquire_local("b").unwrap();
        drop(a1);
        let _a3 = cap.acquire_local("a").unwrap();
        drop(b);
        assert!(
            !cap.open.contains_key("b"),
            "a session with nothing open leaves no entry"
        );
    }
}
