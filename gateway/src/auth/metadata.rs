//! Discovery documents: Protected Resource Metadata (RFC 9728) naming the authorization server,
//! Authorization Server Metadata (RFC 8414, also served as `openid-configuration`), and the JWKS.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::AuthState;

/// `/.well-known/oauth-protected-resource[/mcp]`.
pub async fn protected_resource(State(state): State<Arc<AuthState>>) -> Response {
    let servers = match &state.external {
        Some(external) => vec![external.issuer.clone()],
        None => vec![state.issuer.clone()],
    };
    let body = json!({
        "resource": state.resource,
        "authorization_servers": servers,
        "scopes_supported": state.scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "Manifold MCP gateway",
    });
    cacheable(Json(body))
}

/// `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub async fn authorization_server(State(state): State<Arc<AuthState>>) -> Response {
    let issuer = &state.issuer;
    let registration = state
        .builtin()
        .is_some_and(|b| b.registration.enabled)
        .then(|| format!("{issuer}/register"));
    let mut body = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": state.scopes,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "subject_types_supported": ["public"],
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "claims_supported": ["sub", "email", "email_verified"],
    });
    if let (Some(url), Some(map)) = (registration, body.as_object_mut()) {
        map.insert("registration_endpoint".into(), url.into());
    }
    cacheable(Json(body))
}

/// `/jwks.json`: the public halves of the current and previous signing keys.
pub async fn jwks(State(state): State<Arc<AuthState>>) -> Response {
    let Some(builtin) = state.builtin() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match builtin.keys.jwks().await {
        Ok(jwks) => cacheable(Json(jwks)),
        Err(error) => {
            tracing::error!(%error, "cannot load the signing keys");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

fn cacheable(body: impl IntoResponse) -> Response {
    ([(header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}
