//! The resource-server middleware for `/mcp` and the legacy SSE routes: a valid bearer token
//! (signature, issuer, audience = this resource, expiry, grant not revoked) becomes the request's
//! [`Principal`]; anything else gets 401 with the RFC 9728 `WWW-Authenticate` challenge. MCP
//! sessions are bound to the user who created them: another user's token on it gets 403.
//! The token itself goes no further than this middleware.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use manifold_policy::Principal;

use super::{
    AuthState,
    keys::{AccessClaims, VerifyError},
};

/// The bearer token of an `Authorization` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The 401 with the challenge pointing at the protected resource metadata.
pub fn challenge(state: &AuthState, error: Option<&str>) -> Response {
    let mut value = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"{}\"",
        state.issuer,
        state.scopes.join(" ")
    );
    if let Some(error) = error {
        value.push_str(&format!(", error=\"{error}\""));
    }
    let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    // The request body is left unread, so the server may drop the connection afterwards; say so,
    // or a client reusing it for the authorized retry meets a closed socket.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The caller of `token`, or why it is refused.
pub async fn authenticate(state: &AuthState, token: &str) -> Result<Principal, VerifyError> {
    if let Some(external) = &state.external {
        return external.verify(&state.outbound, token).await;
    }
    let claims = verified_claims(state, token).await?;
    Ok(Principal {
        user: Some(claims.sub),
        email: claims.email,
        groups: claims.groups,
        client_id: Some(claims.client_id),
    })
}

/// The claims of an access token this gateway issued (mode builtin): signature, issuer, one of
/// its audiences, expiry, and a grant not revoked.
pub(crate) async fn verified_claims(
    state: &AuthState,
    token: &str,
) -> Result<AccessClaims, VerifyError> {
    let builtin = state
        .builtin()
        .ok_or_else(|| VerifyError::Invalid("no authorization server".into()))?;
    let claims = builtin
        .keys
        .verify(token, &state.issuer, &state.audiences)
        .await?;
    if let Some(family) = &claims.fid {
        let revoked = state
            .store
            .family_revoked(family)
            .await
            .map_err(|_| VerifyError::Invalid("cannot check revocation".into()))?;
        if revoked {
            return Err(VerifyError::Invalid("the grant was revoked".into()));
        }
    }
    Ok(claims)
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn require(
    State(state): State<Arc<AuthState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(request.headers()) else {
        return challenge(&state, None);
    };
    let principal = match authenticate(&state, token).await {
        Ok(principal) => principal,
        Err(error) => {
            tracing::debug!(%error, "bearer token refused");
            return challenge(&state, Some("invalid_token"));
        }
    };
    // The token is not needed past this point; keep it out of later stages.
    let sub = principal.user.clone().unwrap_or_default();
    // The token is exchanged, never forwarded: only an authorization server sees it.
    if let Some(sign_ins) = state.sign_ins.get() {
        sign_ins.remember(&sub, token);
    }
    request.headers_mut().remove(header::AUTHORIZATION);
    let session = request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session {
        match state.store.session_owner(id).await {
            Ok(Some(owner)) if owner != sub => {
                tracing::warn!("a session was used with another user's token");
                return (
                    StatusCode::FORBIDDEN,
                    "Forbidden: session belongs to another user",
                )
                    .into_response();
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "cannot read the session owner");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
    }
    request.extensions_mut().insert(principal);
    let response = next.run(request).await;
    if session.is_none()
        && let Some(created) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        && let Err(error) = state.store.bind_session(created, &sub).await
    {
        tracing::error!(%error, "cannot bind the session to its user");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    response
}
