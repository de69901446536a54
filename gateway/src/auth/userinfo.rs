//! The OpenID Connect UserInfo endpoint (`GET`/`POST /userinfo`, advertised in the metadata):
//! the signed-in user of an access token this gateway issued, as `sub`, `email` and
//! `email_verified`. ChatGPT reads it for workspace domain restrictions, which trust only an
//! address the company's identity provider vouched for: `email_verified` is true only when it
//! did (its own `email_verified` claim), never assumed.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{AuthState, resource};

/// `GET /userinfo` and `POST /userinfo` with `Authorization: Bearer <access token>`.
pub async fn userinfo(State(state): State<Arc<AuthState>>, headers: HeaderMap) -> Response {
    let Some(token) = resource::bearer(&headers) else {
        return refused(None);
    };
    let claims = match resource::verified_claims(&state, token).await {
        Ok(claims) => claims,
        Err(error) => {
            tracing::debug!(%error, "userinfo: bearer token refused");
            return refused(Some("invalid_token"));
        }
    };
    let mut body = json!({ "sub": claims.sub, "email_verified": false });
    if let Some(email) = claims.email {
        body["email"] = email.into();
        body["email_verified"] = claims.email_verified.into();
    }
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response()
}

/// 401 with the RFC 6750 challenge; the reason stays in the debug log.
fn refused(error: Option<&str>) -> Response {
    let challenge = match error {
        Some(error) => format!("Bearer error=\"{error}\""),
        None => "Bearer".to_owned(),
    };
    let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
