//! `POST /token`: the authorization_code grant (PKCE S256 verified, codes single-use: a replayed
//! code revokes every token issued from it) and the refresh_token grant (rotation on every use;
//! a reused refresh token revokes its whole family, except one retry within
//! `[auth] refresh_retry_grace`, which gets the same answer again). Public clients only (PKCE,
//! no secret).

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    AuthState, Builtin,
    keys::{AccessClaims, KeyError},
    store::{Grant, Redeemed, RetryClaim, StoreError, now},
};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("unsupported grant_type")]
    UnsupportedGrant,
    #[error("the client is unknown")]
    InvalidClient,
    #[error("{0}")]
    InvalidTarget(&'static str),
    #[error("the gateway is not an authorization server")]
    NotBuiltin,
    #[error("server error")]
    Store(#[from] StoreError),
    #[error("server error")]
    Keys(KeyError),
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::InvalidGrant(_) => (StatusCode::BAD_REQUEST, "invalid_grant"),
            Self::UnsupportedGrant => (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            Self::InvalidClient => (StatusCode::UNAUTHORIZED, "invalid_client"),
            Self::InvalidTarget(_) => (StatusCode::BAD_REQUEST, "invalid_target"),
            Self::NotBuiltin => (StatusCode::NOT_FOUND, "invalid_request"),
            Self::Store(error) => {
                tracing::error!(%error, "token endpoint storage error");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
            Self::Keys(error) => {
                tracing::error!(%error, "token endpoint signing error");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
        };
        let body = json!({"error": code, "error_description": self.to_string()});
        no_store(status, Json(body))
    }
}

fn no_store(status: StatusCode, body: impl IntoResponse) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Form fields; a repeated field is an error (RFC 6749 §3.2).
fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, TokenError> {
    let mut fields = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if fields
            .insert(key.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(TokenError::InvalidRequest("a parameter is repeated"));
        }
    }
    Ok(fields)
}

/// `POST /token`.
pub async fn token(State(state): State<Arc<AuthState>>, body: Bytes) -> Response {
    match grant(&state, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn grant(state: &AuthState, body: &[u8]) -> Result<Response, TokenError> {
    let builtin = state.builtin().ok_or(TokenError::NotBuiltin)?;
    let form = parse_form(body)?;
    let field = |key: &str| form.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = field("client_id").ok_or(TokenError::InvalidClient)?;
    match field("grant_type") {
        Some("authorization_code") => {
            let code = field("code").ok_or(TokenError::InvalidRequest("code is missing"))?;
            let (grant, family) = match state.store.redeem_code(code).await? {
                Redeemed::Fresh { grant, family } => (grant, family),
                Redeemed::Replayed { family } => {
                    tracing::warn!(%family, "authorization code replayed; revoking its tokens");
                    state.store.revoke_family(&family).await?;
                    return Err(TokenError::InvalidGrant("the code was already used"));
                }
                Redeemed::Unknown => {
                    return Err(TokenError::InvalidGrant("the code is invalid or expired"));
                }
            };
            if grant.client_id != client_id {
                return Err(TokenError::InvalidGrant(
                    "the code was issued to another client",
                ));
            }
            if field("redirect_uri").is_some_and(|uri| uri != grant.redirect_uri)
                || (field("redirect_uri").is_none() && !grant.redirect_uri.is_empty())
            {
                return Err(TokenError::InvalidGrant("redirect_uri does not match"));
            }
            let verifier = field("code_verifier")
                .ok_or(TokenError::InvalidGrant("code_verifier is missing"))?;
            let valid_verifier = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !valid_verifier || super::s256(verifier) != grant.code_challenge {
                return Err(TokenError::InvalidGrant("PKCE verification failed"));
            }
            if field("resource").is_some_and(|r| r != grant.resource) {
                return Err(TokenError::InvalidTarget(
                    "resource differs from the authorization",
                ));
            }
            Ok(answer(&issue(state, builtin, &grant, &family).await?))
        }
        Some("refresh_token") => {
            let token = field("refresh_token")
                .ok_or(TokenError::InvalidRequest("refresh_token is missing"))?;
            let (grant, family) = match state.store.redeem_refresh(token).await? {
                Redeemed::Fresh { grant, family } => (grant, family),
                Redeemed::Replayed { family } => {
                    return retried(state, builtin, token, &family, client_id).await;
                }
                Redeemed::Unknown => {
                    return Err(TokenError::InvalidGrant("the refresh token is invalid"));
                }
            };
            if state.store.family_revoked(&family).await? {
                return Err(TokenError::InvalidGrant("the grant was revoked"));
            }
            if grant.client_id != client_id {
                return Err(TokenError::InvalidGrant(
                    "the token was issued to another client",
                ));
            }
            if field("resource").is_some_and(|r| r != grant.resource) {
                return Err(TokenError::InvalidTarget(
                    "resource differs from the authorization",
                ));
            }
            let mut grant = grant;
            if let Some(scope) = field("scope") {
                // Narrowing only.
                let held: Vec<&str> = grant.scope.split(' ').collect();
                if scope.split(' ').any(|s| !held.contains(&s)) {
                    return Err(TokenError::InvalidGrant("scope exceeds the grant"));
                }
                grant.scope = scope.to_owned();
            }
            let pair = issue(state, builtin, &grant, &family).await?;
            remember_successor(state, builtin, token, &pair).await;
            Ok(answer(&pair))
        }
        _ => Err(TokenError::UnsupportedGrant),
    }
}

/// How often, and how long apart, a retry looks for the answer its first use has not stored yet.
const PENDING_POLLS: u32 = 20;
const PENDING_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// A refresh token used again. Within `refresh_retry_grace` of its first use, once, and for
/// the same client, the answer is the pair the first use got (a client that lost that answer
/// to the network retries; returning the same pair keeps one live chain of tokens). Anything
/// else is a replay: the whole family is revoked.
async fn retried(
    state: &AuthState,
    builtin: &Builtin,
    token: &str,
    family: &str,
    client_id: &str,
) -> Result<Response, TokenError> {
    let grace = i64::try_from(builtin.refresh_retry_grace.as_secs()).unwrap_or(i64::MAX / 4);
    if !builtin.refresh_retry_grace.is_zero() {
        let used_since = now().saturating_sub(grace);
        for _ in 0..PENDING_POLLS {
            match state.store.claim_retry(token, used_since).await? {
                RetryClaim::Claimed(sealed) => {
                    if let Some(pair) = reopen(builtin, token, &sealed, client_id)
                        && !state.store.family_revoked(family).await?
                    {
                        tracing::info!(%family, "refresh token retried within the grace window");
                        return Ok(answer(&pair));
                    }
                    break;
                }
                // The first use is still issuing: its answer is on its way to this client.
                RetryClaim::Pending => tokio::time::sleep(PENDING_POLL).await,
                RetryClaim::Refused => break,
            }
        }
    }
    tracing::warn!(%family, "refresh token reused; revoking its family");
    state.store.revoke_family(family).await?;
    Err(TokenError::InvalidGrant(
        "the refresh token was already used",
    ))
}

/// What a refresh answered with, kept (sealed) for its one retry.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pair {
    client_id: String,
    body: serde_json::Value,
}

/// The keyring context of the pair stored for refresh token `token`: a sealed pair opens only
/// on the row it was stored for.
fn successor_context(token: &str) -> String {
    format!("auth-refresh-successor:{}", super::store::hash(token))
}

/// Stores the pair for a retry; without it a retry is refused like any replay, so a failure
/// here costs the client a sign-in at worst and is only logged.
async fn remember_successor(state: &AuthState, builtin: &Builtin, token: &str, pair: &Pair) {
    if builtin.refresh_retry_grace.is_zero() {
        return;
    }
    let Ok(plain) = serde_json::to_vec(pair) else {
        return;
    };
    let sealed = builtin.keyring.seal(&plain, &successor_context(token));
    if let Err(error) = state.store.set_successor(token, &sealed).await {
        tracing::error!(%error, "cannot keep a refresh answer for its retry");
    }
}

/// The stored pair, when it opens and was issued to `client_id`.
fn reopen(builtin: &Builtin, token: &str, sealed: &str, client_id: &str) -> Option<Pair> {
    let plain = builtin
        .keyring
        .open(sealed, &successor_context(token))
        .ok()?;
    let pair: Pair = serde_json::from_slice(&plain).ok()?;
    (pair.client_id == client_id).then_some(pair)
}

fn answer(pair: &Pair) -> Response {
    no_store(StatusCode::OK, Json(pair.body.clone()))
}

/// A new access token and a new refresh token in `family`.
async fn issue(
    state: &AuthState,
    builtin: &Builtin,
    grant: &Grant,
    family: &str,
) -> Result<Pair, TokenError> {
    let now = now();
    let ttl = i64::try_from(builtin.access_ttl.as_secs()).unwrap_or(600);
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: grant.sub.clone(),
        aud: grant.resource.clone(),
        exp: now + ttl,
        iat: now,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        client_id: grant.client_id.clone(),
        scope: grant.scope.clone(),
        email: grant.email.clone(),
        email_verified: grant.email_verified && grant.email.is_some(),
        groups: grant.groups.clone(),
        fid: Some(family.to_owned()),
    };
    let access = builtin.keys.sign(&claims).await.map_err(TokenError::Keys)?;
    let refresh = super::random_token();
    let refresh_ttl = i64::try_from(builtin.refresh_ttl.as_secs()).unwrap_or(i64::MAX / 4);
    let stored = Grant {
        redirect_uri: String::new(),
        code_challenge: String::new(),
        ..grant.clone()
    };
    state
        .store
        .insert_refresh(&refresh, &stored, family, now.saturating_add(refresh_ttl))
        .await?;
    let body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": refresh,
        "scope": grant.scope,
    });
    Ok(Pair {
        client_id: grant.client_id.clone(),
        body,
    })
}
