//! The OAuth emulator's test controls, under `/_sandbox/`: `POST expire_tokens` (every access
//! token issued so far expires), `POST revoke_tokens` (every grant is forgotten: the next refresh
//! gets `invalid_grant`), `POST token_lifetime {"seconds": N}` (access tokens issued from now on
//! last N seconds), `POST token_delay {"millis": N}` (the token endpoint answers N ms late) and
//! `GET oauth_log` (token requests, the users behind checked bearer tokens, refused bearers).

use std::time::{Duration, Instant};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::Deserialize;

use super::OAuthServer;

/// The emulator's record of token requests and of whom each checked bearer token stood for,
/// served at `GET /_sandbox/oauth_log` so tests can count refreshes and see whose token a call
/// carried. Holds no token values.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct OAuthLog {
    /// `{grant_type, user, outcome}` per `POST /oauth/token`, in order.
    pub token_requests: Vec<serde_json::Value>,
    /// The user of every valid bearer token checked, in order.
    pub bearer_users: Vec<String>,
    /// `"expired"` or `"unknown"` for every bearer token refused (the provider's 401), in order.
    pub bearer_rejections: Vec<String>,
}

// === test controls of OAuthServer ===

impl OAuthServer {
    /// Forgets every refresh and access token, as when a user revokes the app at the provider:
    /// the next refresh gets `invalid_grant`.
    pub fn revoke_all(&self) {
        if let Ok(mut grants) = self.state.lock() {
            grants.access.clear();
            grants.refresh.clear();
        }
    }

    /// Access tokens issued from now on last `ttl` (tests: a lifetime inside a client's refresh
    /// skew).
    pub fn set_access_ttl(&self, ttl: Duration) {
        if let Ok(mut grants) = self.state.lock() {
            grants.access_ttl = Some(ttl);
        }
    }

    /// The token endpoint answers only after `delay` (tests: a slow provider).
    pub fn set_token_delay(&self, delay: Duration) {
        if let Ok(mut grants) = self.state.lock() {
            grants.token_delay = delay;
        }
    }

    /// A copy of the request log.
    pub fn log(&self) -> OAuthLog {
        self.state
            .lock()
            .map(|grants| grants.log.clone())
            .unwrap_or_default()
    }

    /// Makes every access token issued so far expired (refresh tokens keep working).
    pub fn expire_all(&self) {
        if let Ok(mut grants) = self.state.lock() {
            let now = Instant::now();
            for access in grants.access.values_mut() {
                access.expires_at = now;
            }
        }
    }
}

pub(super) fn routes() -> Router<OAuthServer> {
    Router::new()
        .route("/_sandbox/expire_tokens", post(expire_tokens))
        .route("/_sandbox/revoke_tokens", post(revoke_tokens))
        .route("/_sandbox/token_lifetime", post(token_lifetime))
        .route("/_sandbox/token_delay", post(token_delay))
        .route("/_sandbox/oauth_log", get(oauth_log))
}

#[derive(Debug, Deserialize)]
struct Lifetime {
    seconds: u64,
}

#[derive(Debug, Deserialize)]
struct Delay {
    millis: u64,
}

async fn expire_tokens(State(server): State<OAuthServer>) -> StatusCode {
    server.expire_all();
    StatusCode::NO_CONTENT
}

async fn revoke_tokens(State(server): State<OAuthServer>) -> StatusCode {
    server.revoke_all();
    StatusCode::NO_CONTENT
}

async fn token_lifetime(
    State(server): State<OAuthServer>,
    Json(lifetime): Json<Lifetime>,
) -> StatusCode {
    server.set_access_ttl(Duration::from_secs(lifetime.seconds));
    StatusCode::NO_CONTENT
}

async fn token_delay(State(server): State<OAuthServer>, Json(delay): Json<Delay>) -> StatusCode {
    server.set_token_delay(Duration::from_millis(delay.millis));
    StatusCode::NO_CONTENT
}

async fn oauth_log(State(server): State<OAuthServer>) -> Json<OAuthLog> {
    Json(server.log())
}
