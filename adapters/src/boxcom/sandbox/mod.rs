//! The Box emulator: exactly the 2.0 endpoints the adapter uses (search, folder items with
//! marker paging, file and folder details, download via 302 or 202 + `Retry-After`, multipart
//! upload on the upload host layout `/upload/api/2.0/files/content`, folder creation, file
//! update, delete, shared links), Box `ClientError` answers, 401 with `WWW-Authenticate`,
//! switchable 429s, and the shared OAuth server with single-use refresh tokens.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU32, Ordering},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{OriginalUri, Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::sandbox::{
    oauth::{OAuthConfig, OAuthServer, TokenStatus},
    throttle::{Throttle, too_many_requests},
};

mod handlers;
mod multipart;
pub(crate) mod store;

/// The fixed access token the demo config uses for alice.
pub const DEMO_TOKEN: &str = "box_sandbox_alice_token";

/// One emulated Box account. Cheap to clone.
#[derive(Clone)]
pub struct BoxSandbox {
    store: Arc<Mutex<store::Store>>,
    pub throttle: Throttle,
    pub oauth: OAuthServer,
    /// How many download requests still answer 202 (file not ready).
    not_ready: Arc<AtomicU32>,
}

impl std::fmt::Debug for BoxSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxSandbox").finish_non_exhaustive()
    }
}

impl Default for BoxSandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// A Box `ClientError` answer.
pub(crate) fn client_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "type": "error", "status": status.as_u16(), "code": code, "message": message,
                       "help_url": "http://developers.box.com/docs/#errors", "request_id": "sbx0123456789" });
    (status, Json(body)).into_response()
}

pub(crate) fn not_found() -> Response {
    client_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "Could not find the specified resource",
    )
}

impl BoxSandbox {
    pub fn new() -> Self {
        Self {
            store: Arc::new(Mutex::new(store::Store::seeded())),
            throttle: Throttle::new(),
            // Box access tokens last 60 minutes; refresh tokens are single-use.
            oauth: OAuthServer::new(OAuthConfig {
                access_token_ttl: std::time::Duration::from_secs(3600),
                rotate_refresh_tokens: true,
                token_prefix: "box_sandbox_oauth_",
                default_user: "alice".into(),
            }),
            not_ready: Arc::default(),
        }
    }

    pub fn router(self) -> Router {
        let controls = self.throttle.routes().merge(self.oauth.routes());
        Router::new()
            .route("/2.0/search", get(handlers::search))
            .route("/2.0/folders", post(handlers::create_folder))
            .route("/2.0/folders/{id}", get(handlers::get_folder))
            .route("/2.0/folders/{id}/items", get(handlers::folder_items))
            .route(
                "/2.0/files/{id}",
                get(handlers::get_file)
                    .put(handlers::update_file)
                    .delete(handlers::delete_file),
            )
            .route("/2.0/files/{id}/content", get(download))
            .route("/upload/api/2.0/files/content", post(handlers::upload))
            .route("/dl/{id}", get(download_url))
            .route("/_sandbox/content_not_ready", post(set_not_ready))
            .with_state(self)
            .merge(controls)
    }

    /// Record, throttle, delay and authenticate one request. Box answers a bad or expired token
    /// with 401, an empty body and a `WWW-Authenticate` challenge.
    pub(crate) async fn admit(&self, what: Value, headers: &HeaderMap) -> Result<(), Response> {
        self.throttle.record(what);
        if let Some(retry_after) = self.throttle.take_failure() {
            return Err(too_many_requests(
                retry_after,
                json!({ "type": "error", "status": 429,
                "code": "too_many_requests", "message": "Request rate limit exceeded, please try again later",
                "request_id": "sbx0123456789" }),
            ));
        }
        self.throttle.delay().await;
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .trim();
        if token == DEMO_TOKEN || matches!(self.oauth.check(token), TokenStatus::Valid { .. }) {
            return Ok(());
        }
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(
            "Bearer realm=\"Service\", error=\"invalid_token\", error_description=\"The access token provided is invalid.\""));
        Err(response)
    }

    pub(crate) fn store(&self) -> Result<std::sync::MutexGuard<'_, store::Store>, Box<Response>> {
        self.store
            .lock()
            .map_err(|_| Box::new(StatusCode::INTERNAL_SERVER_ERROR.into_response()))
    }
}

/// The emulator's own base URL (`http://host/box`), from the request, for links it hands out.
pub(crate) fn base_of(headers: &HeaderMap, uri: &OriginalUri, marker: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let path = uri.path();
    let mount = path.find(marker).map_or("", |i| &path[..i]);
    format!("http://{host}{mount}")
}

async fn download(
    State(sandbox): State<BoxSandbox>,
    Path(id): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = sandbox
        .admit(json!({ "method": "GET", "path": uri.path() }), &headers)
        .await
    {
        return response;
    }
    let exists = sandbox
        .store()
        .is_ok_and(|s| s.items.get(&id).is_some_and(|i| !i.folder));
    if !exists {
        return not_found();
    }
    let pending = sandbox
        .not_ready
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if pending.is_ok() {
        let mut response = StatusCode::ACCEPTED.into_response();
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("0"));
        return response;
    }
    let location = format!("{}/dl/{id}", base_of(&headers, &uri, "/2.0/"));
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The pre-signed download URL (Box's `dl.boxcloud.com`): no bearer token needed.
async fn download_url(State(sandbox): State<BoxSandbox>, Path(id): Path<String>) -> Response {
    let Ok(store) = sandbox.store() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match store.items.get(&id).filter(|i| !i.folder) {
        Some(item) => item.content.clone().into_response(),
        None => not_found(),
    }
}

#[derive(serde::Deserialize)]
struct NotReady {
    count: u32,
}

async fn set_not_ready(
    State(sandbox): State<BoxSandbox>,
    Json(body): Json<NotReady>,
) -> StatusCode {
    sandbox.not_ready.store(body.count, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

pub(crate) type Params = Query<std::collections::HashMap<String, String>>;

pub(crate) fn json_body(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            Box::new(client_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Invalid JSON body",
            ))
        })
}
