//! The Google Drive emulator: the Drive v3 endpoints the adapter uses, at Drive's paths with
//! Drive's query parameters, over an in-memory Drive ([`store`]); Google's OAuth endpoints
//! (authorization code with PKCE, non-rotating refresh tokens); and the shared test switches
//! (forced 429s, delays, a request log) plus `POST /_sandbox/rate_limit_403` for Drive's 403
//! `userRateLimitExceeded`.
//!
//! Fidelity kept where the adapter could get it wrong: partial responses (`fields`, unknown
//! names rejected), `q` parsing (bad queries rejected), `orderBy` refused with `fullText`,
//! shared-drive items hidden without `supportsAllDrives`, `corpora=allDrives` needing
//! `includeItemsFromAllDrives`, unknown query parameters rejected, single parents, ACLs
//! inherited down folders, and OAuth scopes enforced as Drive does (`drive.file` tokens reach
//! only files the app created; metadata scopes never reach content).

// Handlers fail with the finished HTTP answer; its size does not matter in an emulator.
#![allow(clippy::result_large_err)]

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU32, Ordering},
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    drive::tools::{SCOPE_FILE, SCOPE_FULL, SCOPE_METADATA_READONLY, SCOPE_READONLY},
    sandbox::{
        oauth::{OAuthConfig, OAuthServer, TokenStatus},
        throttle::{Throttle, too_many_requests},
    },
};

mod export;
mod fields;
mod files;
mod multipart;
pub mod query;
pub mod store;

use store::{Item, Store};

/// Access tokens the emulator always accepts, with full `drive` scope: one per seeded user.
pub const DEMO_TOKENS: [(&str, &str); 3] = [
    ("ya29.sandbox-alice", "alice"),
    ("ya29.sandbox-bob", "bob"),
    ("ya29.sandbox-carol", "carol"),
];

/// Largest multipart upload Drive takes.
const MAX_MULTIPART_BYTES: usize = 5 * 1024 * 1024;
const DRIVE_METADATA: &str = "https://www.googleapis.com/auth/drive.metadata";

/// Query parameters every Google API takes.
const GLOBAL_PARAMS: [&str; 11] = [
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "uploadType",
    "upload_protocol",
];

/// One emulated Drive. Cheap to clone.
#[derive(Clone)]
pub struct DriveSandbox {
    store: Arc<Mutex<Store>>,
    pub throttle: Throttle,
    pub oauth: OAuthServer,
    rate_limit_403: Arc<AtomicU32>,
}

impl std::fmt::Debug for DriveSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriveSandbox").finish_non_exhaustive()
    }
}

impl Default for DriveSandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl DriveSandbox {
    pub fn new() -> Self {
        Self {
            store: Arc::new(Mutex::new(Store::seeded())),
            throttle: Throttle::new(),
            // Google's access tokens last an hour; refresh tokens are reusable.
            oauth: OAuthServer::new(OAuthConfig {
                access_token_ttl: std::time::Duration::from_secs(3600),
                rotate_refresh_tokens: false,
                token_prefix: "ya29.sandbox_",
                default_user: "alice".into(),
            }),
            rate_limit_403: Arc::default(),
        }
    }

    /// Makes the next `count` Drive requests answer 403 `userRateLimitExceeded`.
    pub fn fail_next_with_403(&self, count: u32) {
        self.rate_limit_403.store(count, Ordering::SeqCst);
    }

    pub fn router(self) -> Router {
        let controls = self.throttle.routes().merge(self.oauth.routes());
        Router::new()
            .route("/drive/v3/files", get(files::list).post(files::create))
            .route(
                "/drive/v3/files/{file_id}",
                get(files::get_file)
                    .patch(files::update)
                    .delete(files::delete),
            )
            .route("/drive/v3/files/{file_id}/export", get(files::export))
            .route(
                "/drive/v3/files/{file_id}/permissions",
                post(files::create_permission),
            )
            .route("/upload/drive/v3/files", post(files::upload))
            .route("/_sandbox/rate_limit_403", post(set_rate_limit_403))
            .fallback(not_found_route)
            .with_state(self)
            .merge(controls)
    }

    /// Records the request, applies the test switches, and finds the caller.
    async fn prelude(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<Caller, Response> {
        let query: serde_json::Map<String, Value> = params
            .pairs
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        self.throttle.record(json!({
            "method": method.as_str(),
            "path": uri.path(),
            "query": query,
            "content_type": headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        }));
        if let Some(retry_after) = self.throttle.take_failure() {
            return Err(too_many_requests(
                retry_after,
                error_body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rateLimitExceeded",
                    "Rate Limit Exceeded",
                    None,
                    "usageLimits",
                ),
            ));
        }
        if self
            .rate_limit_403
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err((
                StatusCode::FORBIDDEN,
                Json(error_body(
                    StatusCode::FORBIDDEN,
                    "userRateLimitExceeded",
                    "User Rate Limit Exceeded",
                    None,
                    "usageLimits",
                )),
            )
                .into_response());
        }
        self.throttle.delay().await;
        self.authenticate(headers)
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Response> {
        let raw = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim();
        let Some(token) = raw.strip_prefix("Bearer ").map(str::trim) else {
            return Err(unauthorized(
                "required",
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            ));
        };
        if let Some((_, login)) = DEMO_TOKENS.iter().find(|(t, _)| *t == token) {
            return Ok(Caller {
                login: (*login).to_owned(),
                scopes: vec![SCOPE_FULL.to_owned()],
            });
        }
        match self.oauth.check(token) {
            TokenStatus::Valid { user, scope } => Ok(Caller {
                login: user,
                scopes: scope
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }),
            TokenStatus::Expired | TokenStatus::Unknown => Err(unauthorized(
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )),
        }
    }
}

/// Who is calling, with which scopes.
/// A Drive API request past the emulator's common gate — recorded, not throttled, its token
/// checked — with its query parameters. Every endpoint handler starts from one.
struct DriveCall {
    sandbox: DriveSandbox,
    caller: Caller,
    params: Params,
}

impl axum::extract::FromRequestParts<DriveSandbox> for DriveCall {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        sandbox: &DriveSandbox,
    ) -> Result<Self, Response> {
        let axum::extract::Query(pairs) =
            axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, sandbox)
                .await
                .map_err(IntoResponse::into_response)?;
        let params = Params { pairs };
        let caller = sandbox
            .prelude(&parts.method, &parts.uri, &parts.headers, &params)
            .await?;
        Ok(Self {
            sandbox: sandbox.clone(),
            caller,
            params,
        })
    }
}

#[derive(Debug)]
struct Caller {
    login: String,
    scopes: Vec<String>,
}

impl Caller {
    fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// May read every file's metadata (not only the app's).
    fn reads_all_metadata(&self) -> bool {
        self.has(SCOPE_FULL)
            || self.has(SCOPE_READONLY)
            || self.has(SCOPE_METADATA_READONLY)
            || self.has(DRIVE_METADATA)
    }

    fn reads_all_content(&self) -> bool {
        self.has(SCOPE_FULL) || self.has(SCOPE_READONLY)
    }

    fn sees(&self, item: &Item) -> bool {
        self.reads_all_metadata()
            || (self.has(SCOPE_FILE)
                && (item.app_created || item.id == store::root_id(&self.login)))
    }

    fn reads_content(&self, item: &Item) -> bool {
        self.reads_all_content() || (self.has(SCOPE_FILE) && item.app_created)
    }

    /// May change `item` (or add to it, for a folder); My Drive's root counts as the app's
    /// for `drive.file`.
    fn writes(&self, item: &Item) -> bool {
        self.has(SCOPE_FULL)
            || (self.has(SCOPE_FILE)
                && (item.app_created || item.id == store::root_id(&self.login)))
    }

    fn may_write_at_all(&self) -> bool {
        self.has(SCOPE_FULL) || self.has(SCOPE_FILE)
    }
}

/// The query string, checked against the parameters an endpoint takes.
#[derive(Debug)]
struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn check(&self, allowed: &[&str]) -> Result<(), Response> {
        for (name, _) in &self.pairs {
            if !allowed.contains(&name.as_str()) && !GLOBAL_PARAMS.contains(&name.as_str()) {
                return Err(bad_request(
                    "invalidParameter",
                    &format!("Invalid parameter: {name}"),
                    name,
                ));
            }
        }
        if let Some(alt) = self
            .get("alt")
            .filter(|alt| !matches!(*alt, "json" | "media"))
        {
            return Err(bad_request(
                "invalid",
                &format!(
                    "Invalid value '{alt}'. Values must match the following regular expression: '(json|media|proto)'"
                ),
                "alt",
            ));
        }
        Ok(())
    }

    fn flag(&self, name: &str) -> Result<bool, Response> {
        match self.get(name) {
            None => Ok(false),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(bad_request(
                "invalid",
                &format!("Invalid value '{other}'. Values must be true or false."),
                name,
            )),
        }
    }
}

fn error_body(
    status: StatusCode,
    reason: &str,
    message: &str,
    location: Option<(&str, &str)>,
    domain: &str,
) -> Value {
    let mut detail = json!({ "message": message, "domain": domain, "reason": reason });
    if let Some((location, kind)) = location {
        detail["location"] = json!(location);
        detail["locationType"] = json!(kind);
    }
    let rpc_status = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        _ => "UNKNOWN",
    };
    json!({ "error": { "code": status.as_u16(), "message": message, "errors": [detail], "status": rpc_status } })
}

fn google_error(
    status: StatusCode,
    reason: &str,
    message: &str,
    location: Option<(&str, &str)>,
) -> Response {
    (
        status,
        Json(error_body(status, reason, message, location, "global")),
    )
        .into_response()
}

fn bad_request(reason: &str, message: &str, parameter: &str) -> Response {
    google_error(
        StatusCode::BAD_REQUEST,
        reason,
        message,
        Some((parameter, "parameter")),
    )
}

fn not_found(id: &str) -> Response {
    google_error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("File not found: {id}."),
        Some(("fileId", "parameter")),
    )
}

fn unauthorized(reason: &str, message: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(error_body(
            StatusCode::UNAUTHORIZED,
            reason,
            if reason == "required" {
                "Login Required."
            } else {
                message
            },
            Some(("Authorization", "header")),
            "global",
        )),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        ),
    );
    response
}

fn insufficient_scopes() -> Response {
    let mut body = error_body(
        StatusCode::FORBIDDEN,
        "insufficientPermissions",
        "Request had insufficient authentication scopes.",
        None,
        "global",
    );
    body["error"]["details"] = json!([{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "domain": "googleapis.com",
        "metadata": { "service": "drive.googleapis.com", "method": "google.apps.drive.v3.DriveFiles" },
    }]);
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

fn insufficient_file_permissions() -> Response {
    google_error(
        StatusCode::FORBIDDEN,
        "insufficientFilePermissions",
        "The user does not have sufficient permissions for this file.",
        None,
    )
}

fn app_not_authorized(id: &str) -> Response {
    google_error(
        StatusCode::FORBIDDEN,
        "appNotAuthorizedToFile",
        &format!("The user has not granted the app write access to the file {id}."),
        None,
    )
}

async fn not_found_route(uri: Uri) -> Response {
    google_error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("Not Found: {}", uri.path()),
        None,
    )
}

#[derive(Deserialize)]
struct RateLimitBody {
    fail_next: u32,
}

async fn set_rate_limit_403(
    State(sandbox): State<DriveSandbox>,
    Json(body): Json<RateLimitBody>,
) -> Json<Value> {
    sandbox.fail_next_with_403(body.fail_next);
    Json(json!({ "fail_next": body.fail_next }))
}
