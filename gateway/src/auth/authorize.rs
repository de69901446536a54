//! `GET /authorize`: checks the client, its exact redirect URI, PKCE S256 and the RFC 8707
//! `resource`, then sends the browser to the upstream login (when not signed in) and to the
//! consent page (first time for this client), and finally back with a single-use code and the
//! RFC 9207 `iss`.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{AuthState, UserInfo, cimd, consent, cookie, login, store};

/// How long an authorization code lives.
const CODE_SECS: i64 = 60;

/// A checked authorization request, carried (sealed) through login and consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
}

/// A request that cannot be sent back to the client (unknown client or redirect URI): shown to
/// the user instead, as OAuth requires.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><title>Authorization error</title><h1>Authorization error</h1><p>{}</p>",
        consent::escape(message)
    );
    (status, Html(body)).into_response()
}

/// Sends an error to the client's redirect URI.
pub(crate) fn redirect_error(
    state: &AuthState,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    redirect_with(
        redirect_uri,
        &[
            ("error", error),
            ("error_description", description),
            ("iss", &state.issuer),
        ],
        client_state,
    )
}

fn redirect_with(
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    client_state: Option<&str>,
) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page(StatusCode::BAD_REQUEST, "invalid redirect URI");
    };
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in pairs {
            query.append_pair(key, value);
        }
        if let Some(value) = client_state {
            query.append_pair("state", value);
        }
    }
    see_other(url.as_str())
}

pub(crate) fn see_other(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<Arc<AuthState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(builtin) = state.builtin() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let param = |key: &str| query.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = param("client_id") else {
        return error_page(StatusCode::BAD_REQUEST, "client_id is missing");
    };
    let client = if cimd::is_url(client_id) {
        match cimd::fetch(&state.outbound, client_id, builtin.allow_insecure_cimd).await {
            Ok(client) => Some(client),
            Err(error) => return error_page(StatusCode::BAD_REQUEST, &error.to_string()),
        }
    } else {
        match state.store.client(client_id).await {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "cannot read a client");
                return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server error");
            }
        }
    };
    let Some(client) = client else {
        return error_page(StatusCode::BAD_REQUEST, "unknown client_id");
    };
    // Exact string match only: no prefix or pattern matching of redirect URIs.
    let redirect_uri = match param("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        Some(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "redirect_uri does not match a registered redirect URI",
            );
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return error_page(StatusCode::BAD_REQUEST, "redirect_uri is missing"),
    };
    let client_state = param("state");
    let fail = |error: &str, description: &str| {
        redirect_error(&state, &redirect_uri, client_state, error, description)
    };
    if param("response_type") != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let Some(challenge) = param("code_challenge") else {
        return fail("invalid_request", "PKCE code_challenge is required");
    };
    if param("code_challenge_method") != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    if challenge.len() != 43 {
        return fail(
            "invalid_request",
            "code_challenge must be a base64url SHA-256",
        );
    }
    let resource = param("resource").unwrap_or(&state.resource).to_owned();
    if !state.audiences.contains(&resource) {
        return fail("invalid_target", "resource is not served by this gateway");
    }
    let scope = match param("scope") {
        None => state.scopes.join(" "),
        Some(scope) => {
            let requested: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
            if requested
                .iter()
                .any(|s| !state.scopes.iter().any(|k| k == s))
            {
                return fail("invalid_scope", "a requested scope is not offered");
            }
            requested.join(" ")
        }
    };
    let pending = Pending {
        client_id: client.client_id,
        client_name: client.client_name,
        redirect_uri,
        state: client_state.map(str::to_owned),
        code_challenge: challenge.to_owned(),
        resource,
        scope,
    };
    match cookie::session(&state, &headers) {
        Some(session) => continue_signed_in(&state, &session.user, &session.sid, pending).await,
        None => login::begin(&state, login::Next::Authorize(pending)).await,
    }
}

/// With a signed-in user: the consent page the first time, else straight back with a code.
pub(crate) async fn continue_signed_in(
    state: &AuthState,
    user: &UserInfo,
    sid: &str,
    pending: Pending,
) -> Response {
    match state.store.has_consent(&user.sub, &pending.client_id).await {
        Ok(true) => issue_code(state, user, pending).await,
        Ok(false) => consent::page(state, user, sid, &pending),
        Err(error) => {
            tracing::error!(%error, "cannot read consent");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, "server error")
        }
    }
}

/// Stores a new code (hashed, in a new token family) and redirects to the client with it.
pub(crate) async fn issue_code(state: &AuthState, user: &UserInfo, pending: Pending) -> Response {
    let code = super::random_token();
    let grant = store::Grant {
        client_id: pending.client_id.clone(),
        sub: user.sub.clone(),
        email: user.email.clone(),
        email_verified: user.email_verified,
        groups: user.groups.clone(),
        resource: pending.resource.clone(),
        scope: pending.scope.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
    };
    let stored = async {
        let family = state
            .store
            .new_family(&pending.client_id, &user.sub)
            .await?;
        state
            .store
            .insert_code(&code, &grant, &family, store::now() + CODE_SECS)
            .await
    };
    if let Err(error) = stored.await {
        tracing::error!(%error, "cannot store an authorization code");
        return redirect_error(
            state,
            &pending.redirect_uri,
            pending.state.as_deref(),
            "server_error",
            "cannot issue a code",
        );
    }
    redirect_with(
        &pending.redirect_uri,
        &[("code", &code), ("iss", &state.issuer)],
        pending.state.as_deref(),
    )
}
