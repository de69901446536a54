//! Dynamic client registration (RFC 7591) for public clients: redirect URIs must be https or
//! loopback http, counts and lengths are bounded, registrations are rate-limited per client
//! address under a global ceiling ([`super::register_limit`]), and every
//! client authenticates with PKCE only (`token_endpoint_auth_method = "none"`).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{Extensions, HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::{AuthState, store::Client};

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{0}")]
    InvalidRedirect(String),
    #[error("{0}")]
    InvalidMetadata(String),
    #[error("too many registrations; try again later")]
    RateLimited,
    #[error("registration is disabled")]
    Disabled,
    #[error("registration failed")]
    Store,
}

impl IntoResponse for RegisterError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::InvalidRedirect(_) => (StatusCode::BAD_REQUEST, "invalid_redirect_uri"),
            Self::InvalidMetadata(_) => (StatusCode::BAD_REQUEST, "invalid_client_metadata"),
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable"),
            Self::Disabled => (StatusCode::NOT_FOUND, "invalid_request"),
            Self::Store => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        let body = json!({"error": code, "error_description": self.to_string()});
        (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
    }
}

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
}

/// Allowed: https anywhere; http only to loopback (native apps); no fragments, no userinfo.
pub fn check_redirect_uri(uri: &str, max_len: usize) -> Result<(), RegisterError> {
    if uri.len() > max_len {
        return Err(RegisterError::InvalidRedirect(format!(
            "redirect URIs may have at most {max_len} characters"
        )));
    }
    let bad = |why: &str| Err(RegisterError::InvalidRedirect(why.to_owned()));
    let Ok(url) = url::Url::parse(uri) else {
        return bad("a redirect URI is not an absolute URL");
    };
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return bad("redirect URIs may not carry a fragment or credentials");
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => bad("redirect URIs must be https, or http on a loopback address"),
    }
}

/// `POST /register`.
pub async fn register(
    State(state): State<Arc<AuthState>>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The TCP peer, when the server recorded it (absent: one shared "unknown" bucket).
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    match register_inner(&state, &body, peer, &headers).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn register_inner(
    state: &AuthState,
    body: &[u8],
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<Response, RegisterError> {
    let builtin = state.builtin().ok_or(RegisterError::Disabled)?;
    let limits = &builtin.registration;
    if !limits.enabled {
        return Err(RegisterError::Disabled);
    }
    let request: Request = serde_json::from_slice(body)
        .map_err(|_| RegisterError::InvalidMetadata("the body must be a JSON object".into()))?;
    if request.redirect_uris.is_empty() {
        return Err(RegisterError::InvalidRedirect(
            "redirect_uris must not be empty".into(),
        ));
    }
    if request.redirect_uris.len() > limits.max_redirect_uris {
        return Err(RegisterError::InvalidRedirect(format!(
            "at most {} redirect URIs",
            limits.max_redirect_uris
        )));
    }
    for uri in &request.redirect_uris {
        check_redirect_uri(uri, limits.max_redirect_uri_length)?;
    }
    let name = request.client_name.unwrap_or_default();
    if name.chars().count() > limits.max_client_name_length || name.chars().any(char::is_control) {
        return Err(RegisterError::InvalidMetadata(format!(
            "client_name must be at most {} printable characters",
            limits.max_client_name_length
        )));
    }
    let grants = request
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if grants
        .iter()
        .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err(RegisterError::InvalidMetadata(
            "grant_types may be authorization_code and refresh_token".into(),
        ));
    }
    if request
        .response_types
        .is_some_and(|types| types.iter().any(|t| t != "code"))
    {
        return Err(RegisterError::InvalidMetadata(
            "response_types may only be code".into(),
        ));
    }
    builtin
        .registration_limits
        .take(peer, headers)
        .map_err(|limited| {
            tracing::warn!(%limited, "registration refused by its rate limit");
            RegisterError::RateLimited
        })?;
    let client = Client {
        client_id: uuid::Uuid::new_v4().to_string(),
        client_name: if name.is_empty() {
            "Unnamed client".into()
        } else {
            name
        },
        redirect_uris: request.redirect_uris,
    };
    state.store.insert_client(&client).await.map_err(|error| {
        tracing::error!(%error, "cannot store a registered client");
        RegisterError::Store
    })?;
    tracing::info!(client_id = %client.client_id, "registered a client");
    // Refresh is always offered; the client's own grant list only narrows what it will use.
    let body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": super::store::now(),
        "client_name": client.client_name,
        "redirect_uris": client.redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}
