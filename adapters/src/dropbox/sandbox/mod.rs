//! The Dropbox emulator: exactly the API v2 routes the adapter uses, RPC routes under `/2/...`
//! and content routes under `/content/2/...` (the adapter's host convention), answering with
//! Dropbox's JSON shapes and errors (409 route errors, 401 `expired_access_token`, 429
//! `too_many_requests`), plus the shared OAuth server and test switches.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::sandbox::{
    oauth::{OAuthConfig, OAuthServer, TokenStatus},
    throttle::{Throttle, too_many_requests},
};

mod routes;
pub(crate) mod store;

/// The fixed access token the demo config uses for alice (Dropbox tokens start with `sl.`).
pub const DEMO_TOKEN: &str = "sl.sandbox_dropbox_alice";

/// One emulated Dropbox account. Cheap to clone.
#[derive(Clone)]
pub struct DropboxSandbox {
    store: Arc<Mutex<store::Store>>,
    pub throttle: Throttle,
    pub oauth: OAuthServer,
}

impl std::fmt::Debug for DropboxSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxSandbox").finish_non_exhaustive()
    }
}

impl Default for DropboxSandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// A Dropbox error answer: status and the `{error_summary, error}` body.
pub(crate) struct ApiError(StatusCode, Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

/// A 409 route error from a tag path such as `["path", "not_found"]`, shaped as nested unions.
pub(crate) fn route_error(tags: &[&str]) -> ApiError {
    let mut error = json!({});
    for tag in tags.iter().rev() {
        error = if error == json!({}) {
            json!({ ".tag": tag })
        } else {
            json!({ ".tag": tag, *tag: error })
        };
    }
    let summary = format!("{}/...", tags.join("/"));
    ApiError(
        StatusCode::CONFLICT,
        json!({ "error_summary": summary, "error": error }),
    )
}

/// A 400 answer: Dropbox sends bad-input errors as plain text.
pub(crate) fn bad_input(message: &str) -> ApiError {
    ApiError(
        StatusCode::BAD_REQUEST,
        Value::String(format!("Error in call: {message}")),
    )
}

/// Opaque paging cursors of the emulator: base64 of the paging state.
pub(crate) fn encode_cursor(state: &Value) -> String {
    URL_SAFE_NO_PAD.encode(state.to_string())
}

pub(crate) fn decode_cursor(cursor: Option<&str>) -> Result<Value, ApiError> {
    cursor
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| route_error(&["reset"]))
}

impl DropboxSandbox {
    pub fn new() -> Self {
        Self {
            store: Arc::new(Mutex::new(store::Store::seeded())),
            throttle: Throttle::new(),
            // Dropbox access tokens last four hours; refresh tokens do not rotate.
            oauth: OAuthServer::new(OAuthConfig {
                access_token_ttl: std::time::Duration::from_secs(4 * 3600),
                rotate_refresh_tokens: false,
                token_prefix: "sl.sandbox_oauth_",
                default_user: "alice".into(),
            }),
        }
    }

    pub fn router(self) -> Router {
        let controls = self.throttle.routes().merge(self.oauth.routes());
        Router::new()
            .route("/2/{*route}", post(rpc))
            .route("/content/2/files/{op}", post(content))
            .with_state(self)
            .merge(controls)
    }

    /// Checks the bearer token; Dropbox answers 401 with an `AuthError` union.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .trim();
        let tag = if token == DEMO_TOKEN {
            return Ok(());
        } else {
            match self.oauth.check(token) {
                TokenStatus::Valid { .. } => return Ok(()),
                TokenStatus::Expired => "expired_access_token",
                TokenStatus::Unknown => "invalid_access_token",
            }
        };
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            json!({ "error_summary": format!("{tag}/..."), "error": { ".tag": tag } }),
        ))
    }

    /// What every route does first: record, throttle, delay, authenticate.
    async fn admit(&self, route: &str, headers: &HeaderMap, arg: &Value) -> Result<(), Response> {
        self.throttle.record(json!({ "route": route, "arg": arg,
            "content_type": headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            "api_arg_header": headers.get("dropbox-api-arg").and_then(|v| v.to_str().ok()) }));
        if let Some(retry_after) = self.throttle.take_failure() {
            return Err(too_many_requests(
                retry_after,
                json!({ "error_summary": "too_many_requests/...",
                        "error": { "reason": { ".tag": "too_many_requests" }, "retry_after": retry_after } }),
            ));
        }
        self.throttle.delay().await;
        self.authenticate(headers)
            .map_err(IntoResponse::into_response)
    }
}

async fn rpc(
    State(sandbox): State<DropboxSandbox>,
    Path(route): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Err(response) = sandbox.admit(&route, &headers, &arg).await {
        return response;
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json || !arg.is_object() {
        return bad_input("expected a JSON object body with Content-Type application/json")
            .into_response();
    }
    let Ok(mut store) = sandbox.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match routes::rpc(&mut store, &route, &arg) {
        Ok(result) => Json(result).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn content(
    State(sandbox): State<DropboxSandbox>,
    Path(op): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = headers.get("dropbox-api-arg").and_then(|v| v.to_str().ok());
    let arg: Value = raw
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or(Value::Null);
    if let Err(response) = sandbox.admit(&format!("files/{op}"), &headers, &arg).await {
        return response;
    }
    if !arg.is_object() {
        return bad_input("missing or invalid Dropbox-API-Arg header").into_response();
    }
    let Ok(mut store) = sandbox.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match op.as_str() {
        "download" => match routes::download(&store, &arg) {
            Ok((meta, bytes)) => {
                let mut response = bytes.into_response();
                // The header is ASCII: serde_json escapes nothing, so escape as Dropbox does.
                let result = crate::dropbox::escape_non_ascii(&meta.to_string());
                if let Ok(value) = HeaderValue::from_str(&result) {
                    response.headers_mut().insert("dropbox-api-result", value);
                }
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                response
            }
            Err(error) => error.into_response(),
        },
        "upload" => {
            let is_octet = headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
            if !is_octet {
                return bad_input("upload bodies must be application/octet-stream").into_response();
            }
            match routes::upload(&mut store, &arg, body.to_vec()) {
                Ok(meta) => Json(meta).into_response(),
                Err(error) => error.into_response(),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
