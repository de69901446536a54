//! An OAuth 2.0 authorization server for emulators: authorization code with PKCE (S256 only),
//! refresh tokens (rotating or reusable), expiring access tokens, RFC 6749 error bodies.
//! It auto-approves every authorization request: it is a sandbox, there is no user to ask.
//! Test controls: `POST /_sandbox/expire_tokens`, `POST /_sandbox/revoke_tokens`,
//! `POST /_sandbox/token_lifetime {"seconds": N}`, `POST /_sandbox/token_delay {"millis": N}`
//! and `GET /_sandbox/oauth_log` (see [`controls`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::Rng as _;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use url::Url;

mod controls;

pub use controls::OAuthLog;

/// How an emulated provider issues tokens.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub access_token_ttl: Duration,
    /// Single-use refresh tokens (Box, Graph, Linear): each refresh returns a new one and the old
    /// one stops working. When false the same refresh token keeps working (Drive, Dropbox).
    pub rotate_refresh_tokens: bool,
    /// Prefix of issued access tokens, to make them recognisable in logs of the emulator.
    pub token_prefix: &'static str,
    /// The user an authorization is granted for when the request names none (`login_hint`).
    pub default_user: String,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(3600),
            rotate_refresh_tokens: true,
            token_prefix: "sandbox_at_",
            default_user: "alice".into(),
        }
    }
}

/// What a bearer token is worth to the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStatus {
    Valid { user: String, scope: String },
    Expired,
    Unknown,
}

/// The emulated authorization server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OAuthServer {
    config: Arc<OAuthConfig>,
    state: Arc<Mutex<Grants>>,
}

#[derive(Debug, Default)]
struct Grants {
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, Grant>,
    /// Set by `POST /_sandbox/token_lifetime`: replaces the configured access-token lifetime.
    access_ttl: Option<Duration>,
    /// Set by `POST /_sandbox/token_delay`: how long the token endpoint takes to answer.
    token_delay: Duration,
    /// What tests assert on: every token request and every bearer token checked.
    log: OAuthLog,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    user: String,
    scope: String,
}

#[derive(Debug)]
struct CodeGrant {
    grant: Grant,
    redirect_uri: String,
    challenge: String,
    expires_at: Instant,
}

#[derive(Debug)]
struct AccessGrant {
    grant: Grant,
    expires_at: Instant,
}

#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scope: Option<String>,
    login_hint: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenParams {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

const CODE_TTL: Duration = Duration::from_secs(600);

// === impl OAuthServer ===

impl OAuthServer {
    pub fn new(config: OAuthConfig) -> Self {
        Self {
            config: Arc::new(config),
            state: Arc::default(),
        }
    }

    /// `GET /oauth/authorize`, `POST /oauth/token` and the `/_sandbox/` test controls.
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/oauth/authorize", get(authorize))
            .route("/oauth/token", post(token))
            .route("/oauth/revoke", post(revoke))
            .merge(controls::routes())
            .with_state(self.clone())
    }

    /// Looks a bearer token up.
    pub fn check(&self, token: &str) -> TokenStatus {
        let Ok(mut grants) = self.state.lock() else {
            return TokenStatus::Unknown;
        };
        let status = match grants.access.get(token) {
            Some(access) if access.expires_at > Instant::now() => TokenStatus::Valid {
                user: access.grant.user.clone(),
                scope: access.grant.scope.clone(),
            },
            Some(_) => TokenStatus::Expired,
            None => TokenStatus::Unknown,
        };
        match &status {
            TokenStatus::Valid { user, .. } => grants.log.bearer_users.push(user.clone()),
            TokenStatus::Expired => grants.log.bearer_rejections.push("expired".into()),
            TokenStatus::Unknown => grants.log.bearer_rejections.push("unknown".into()),
        }
        status
    }

    fn random_token(prefix: &str) -> String {
        let bytes: [u8; 24] = rand::rng().random();
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    fn issue(&self, grants: &mut Grants, grant: Grant, refresh: Option<String>) -> Response {
        let access_token = Self::random_token(self.config.token_prefix);
        let refresh_token = refresh.unwrap_or_else(|| Self::random_token("sandbox_rt_"));
        let ttl = grants.access_ttl.unwrap_or(self.config.access_token_ttl);
        grants.access.insert(
            access_token.clone(),
            AccessGrant {
                grant: grant.clone(),
                expires_at: Instant::now() + ttl,
            },
        );
        let scope = grant.scope.clone();
        grants.refresh.insert(refresh_token.clone(), grant);
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl.as_secs(),
            "refresh_token": refresh_token,
            "scope": scope,
        }))
        .into_response()
    }
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

async fn authorize(
    State(server): State<OAuthServer>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    // Without a usable redirect URI the error cannot go back to the client (RFC 6749 §4.1.2.1).
    let Some(mut redirect) = params
        .redirect_uri
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is missing or not a URL",
        );
    };
    let redirect_uri = redirect.to_string();
    let problem = match (&params.client_id, &params.code_challenge) {
        (None, _) => Some(("invalid_request", "client_id is required")),
        _ if params.response_type.as_deref() != Some("code") => {
            Some(("unsupported_response_type", "response_type must be code"))
        }
        (_, None) => Some(("invalid_request", "code_challenge is required (PKCE)")),
        _ if params.code_challenge_method.as_deref() != Some("S256") => {
            Some(("invalid_request", "code_challenge_method must be S256"))
        }
        _ => None,
    };
    {
        let mut query = redirect.query_pairs_mut();
        match problem {
            Some((error, description)) => {
                query
                    .append_pair("error", error)
                    .append_pair("error_description", description);
            }
            None => {
                let code = OAuthServer::random_token("sandbox_code_");
                let grant = Grant {
                    client_id: params.client_id.clone().unwrap_or_default(),
                    user: params
                        .login_hint
                        .clone()
                        .unwrap_or_else(|| server.config.default_user.clone()),
                    scope: params.scope.clone().unwrap_or_else(|| "read".into()),
                };
                if let Ok(mut grants) = server.state.lock() {
                    grants.codes.insert(
                        code.clone(),
                        CodeGrant {
                            grant,
                            redirect_uri,
                            challenge: params.code_challenge.clone().unwrap_or_default(),
                            expires_at: Instant::now() + CODE_TTL,
                        },
                    );
                }
                query.append_pair("code", &code);
            }
        }
        if let Some(state) = &params.state {
            query.append_pair("state", state);
        }
    }
    Redirect::to(redirect.as_str()).into_response()
}

#[derive(Debug, Deserialize)]
struct RevokeParams {
    token: Option<String>,
}

/// RFC 7009 revocation: the access or refresh token stops working. Always 200, as the RFC
/// requires even for unknown tokens; the log says whether it matched.
async fn revoke(State(server): State<OAuthServer>, Form(params): Form<RevokeParams>) -> StatusCode {
    if let (Ok(mut grants), Some(token)) = (server.state.lock(), params.token) {
        let user = match grants.access.remove(&token) {
            Some(access) => Some(access.grant.user),
            None => grants.refresh.remove(&token).map(|grant| grant.user),
        };
        let outcome = if user.is_some() { "ok" } else { "unknown" };
        grants
            .log
            .token_requests
            .push(json!({ "grant_type": "revoke", "user": user, "outcome": outcome }));
    }
    StatusCode::OK
}

async fn token(State(server): State<OAuthServer>, Form(params): Form<TokenParams>) -> Response {
    let delay = server
        .state
        .lock()
        .map(|grants| grants.token_delay)
        .unwrap_or_default();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let grant_type = params.grant_type.clone().unwrap_or_default();
    let response = issue_token(&server, params);
    let outcome = if response.status().is_success() {
        "ok".to_owned()
    } else {
        format!("error {}", response.status().as_u16())
    };
    if let Ok(mut grants) = server.state.lock() {
        grants
            .log
            .token_requests
            .push(json!({ "grant_type": grant_type, "outcome": outcome }));
    }
    response
}

fn issue_token(server: &OAuthServer, params: TokenParams) -> Response {
    let Ok(mut grants) = server.state.lock() else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "poisoned",
        );
    };
    match params.grant_type.as_deref() {
        Some("authorization_code") => {
            let (Some(code), Some(verifier)) = (&params.code, &params.code_verifier) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code and code_verifier are required",
                );
            };
            // A code is single-use even when the exchange fails (RFC 6749 §4.1.2).
            let Some(pending) = grants.codes.remove(code) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used code",
                );
            };
            let invalid = if pending.expires_at <= Instant::now() {
                Some("the code expired")
            } else if params.client_id.as_deref() != Some(pending.grant.client_id.as_str()) {
                Some("client_id does not match the authorization request")
            } else if params.redirect_uri.as_deref() != Some(pending.redirect_uri.as_str()) {
                Some("redirect_uri does not match the authorization request")
            } else if !pkce_matches(verifier, &pending.challenge) {
                Some("code_verifier does not match the code_challenge")
            } else {
                None
            };
            match invalid {
                Some(reason) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", reason),
                None => server.issue(&mut grants, pending.grant, None),
            }
        }
        Some("refresh_token") => {
            let Some(refresh) = &params.refresh_token else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            let grant = if server.config.rotate_refresh_tokens {
                grants.refresh.remove(refresh)
            } else {
                grants.refresh.get(refresh).cloned()
            };
            let Some(grant) = grant else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown, revoked or already used refresh token",
                );
            };
            if params
                .client_id
                .as_deref()
                .is_some_and(|client| client != grant.client_id)
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token was issued to another client",
                );
            }
            let keep = (!server.config.rotate_refresh_tokens).then(|| refresh.clone());
            server.issue(&mut grants, grant, keep)
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}
