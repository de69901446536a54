//! `POST /revoke` (RFC 7009): revoking a refresh token or an access token revokes the grant's
//! whole token family. Always 200, whether or not the token was known.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use super::AuthState;

/// `POST /revoke`.
pub async fn revoke(State(state): State<Arc<AuthState>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        let body = axum::Json(serde_json::json!({"error": "invalid_request"}));
        return (StatusCode::BAD_REQUEST, body).into_response();
    };
    let family = match state.store.refresh_family(token).await {
        Ok(Some(family)) => Some(family),
        Ok(None) => match state.builtin() {
            // An access token of ours: its signature proves it, whatever its audience.
            Some(builtin) => builtin
                .keys
                .verify(token, &state.issuer, &state.audiences)
                .await
                .ok()
                .and_then(|claims| claims.fid),
            None => None,
        },
        Err(error) => {
            tracing::error!(%error, "revocation lookup failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    if let Some(family) = family {
        if let Err(error) = state.store.revoke_family(&family).await {
            tracing::error!(%error, "revocation failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        tracing::info!(%family, "grant revoked");
    }
    ([(header::CACHE_CONTROL, "no-store")], StatusCode::OK).into_response()
}
