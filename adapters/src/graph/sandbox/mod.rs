//! The Microsoft Graph emulator shared by the Outlook, Teams and SharePoint kinds: one seeded
//! tenant (users alice and bob), `@odata.nextLink` paging, `$select`/`$top`/`$filter`/`$search`
//! as far as the adapters use them, Graph error bodies, switchable throttling (429, and 503 through
//! `POST /_sandbox/unavailable`), 401 on expired tokens, a request log with JSON bodies, and the
//! identity platform's authorize/token endpoints (PKCE, rotating refresh tokens).

// Handlers return Graph's error answer as the `Err` of a `Result<Response, Response>`, so `?`
// reads naturally; a test emulator does not care about the size of the error variant.
#![allow(clippy::result_large_err)]

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU32, AtomicU64, Ordering},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{OriginalUri, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

use crate::sandbox::{
    oauth::{OAuthConfig, OAuthServer, TokenStatus},
    throttle::{Throttle, too_many_requests},
};

mod files;
mod mail;
mod seed;
mod store;
mod teams;

/// Fixed demo tokens (for the config and tests): user, and whether writes are allowed.
pub const DEMO_TOKENS: [(&str, &str, bool); 3] = [
    ("graph_sandbox_alice", "alice", true),
    ("graph_sandbox_bob", "bob", true),
    ("graph_sandbox_alice_readonly", "alice", false),
];

/// One emulated tenant. Cheap to clone.
#[derive(Clone)]
pub struct GraphSandbox {
    store: Arc<Mutex<store::Store>>,
    pub throttle: Throttle,
    unavailable: Arc<Unavailable>,
    pub oauth: OAuthServer,
}

impl std::fmt::Debug for GraphSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSandbox").finish_non_exhaustive()
    }
}

impl Default for GraphSandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// Graph's other throttling answer: `503 Service Unavailable` with `Retry-After`, which a client
/// may only resend for requests that cannot have taken effect twice.
#[derive(Debug, Default)]
struct Unavailable {
    fail_next: AtomicU32,
    retry_after_secs: AtomicU64,
}

#[derive(serde::Deserialize)]
struct UnavailableBody {
    fail_next: u32,
    #[serde(default)]
    retry_after_secs: u64,
}

/// `POST /_sandbox/unavailable {"fail_next": n, "retry_after_secs": s}`: the next `n` Graph
/// requests are answered 503 with `Retry-After: s`.
async fn set_unavailable(
    State(sandbox): State<GraphSandbox>,
    Json(body): Json<UnavailableBody>,
) -> Json<Value> {
    sandbox
        .unavailable
        .retry_after_secs
        .store(body.retry_after_secs, Ordering::SeqCst);
    sandbox
        .unavailable
        .fail_next
        .store(body.fail_next, Ordering::SeqCst);
    Json(json!({ "fail_next": body.fail_next, "retry_after_secs": body.retry_after_secs }))
}

/// `POST /_sandbox/chats`: a chat for a test, see [`teams::add_chat`].
async fn add_chat(State(sandbox): State<GraphSandbox>, Json(body): Json<Value>) -> Response {
    let Ok(mut store) = sandbox.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    teams::add_chat(&mut store, &body)
        .and_then(|chat| store::created(&chat))
        .unwrap_or_else(|response| response)
}

/// Who is calling, as the handlers see it.
pub(crate) struct Caller {
    pub user: String,
    pub writable: bool,
}

/// One parsed request, for the handlers.
pub(crate) struct Req<'a> {
    pub method: &'a Method,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: &'a Bytes,
    /// Scheme, host and mount, for absolute `@odata.nextLink`s and upload URLs.
    pub base: String,
    pub path: String,
}

impl Req<'_> {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Result<Value, Response> {
        serde_json::from_slice(self.body).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The request body is not valid JSON.",
            )
        })
    }
}

impl GraphSandbox {
    pub fn new() -> Self {
        Self {
            store: Arc::new(Mutex::new(seed::tenant())),
            throttle: Throttle::new(),
            unavailable: Arc::default(),
            // Graph access tokens last about an hour; refresh tokens rotate.
            oauth: OAuthServer::new(OAuthConfig {
                access_token_ttl: std::time::Duration::from_secs(3600),
                rotate_refresh_tokens: true,
                token_prefix: "graph_oauth_sandbox_",
                default_user: "alice".into(),
            }),
        }
    }

    pub fn router(self) -> Router {
        let controls = self.throttle.routes().merge(self.oauth.routes());
        Router::new()
            .route("/_sandbox/unavailable", post(set_unavailable))
            .route("/_sandbox/chats", post(add_chat))
            .fallback(dispatch)
            .with_state(self)
            .merge(controls)
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if let Some((_, user, writable)) = DEMO_TOKENS.iter().find(|(t, _, _)| *t == token) {
            return Ok(Caller {
                user: (*user).to_owned(),
                writable: *writable,
            });
        }
        match self.oauth.check(token) {
            TokenStatus::Valid { user, scope } => Ok(Caller {
                user,
                writable: scope.contains("ReadWrite") || scope.contains("Send"),
            }),
            TokenStatus::Expired => Err(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )),
            TokenStatus::Unknown => Err(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty or invalid.",
            )),
        }
    }
}

/// A Graph error answer.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = format!("sandbox-{:08x}", rand::random::<u32>());
    (status, Json(json!({ "error": { "code": code, "message": message,
        "innerError": { "request-id": request_id, "client-request-id": request_id, "date": "2026-11-20T12:00:00Z" } } })))
        .into_response()
}

pub(crate) fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        &format!("The {what} was not found."),
    )
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn dispatch(
    State(sandbox): State<GraphSandbox>,
    OriginalUri(original): OriginalUri,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: axum::body::Body,
) -> Response {
    // Read here rather than through the `Bytes` extractor, whose 2 MB default would refuse
    // Graph-sized uploads (simple uploads up to 4 MB, session pieces larger).
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "requestTooLarge",
            "The request body is too large.",
        );
    };
    sandbox.throttle.delay().await;
    let path = uri.path().to_owned();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    // JSON bodies are logged too, so contract tests can check (and replay) what was sent.
    let logged_body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    sandbox
        .throttle
        .record(json!({ "method": method.as_str(), "path": path,
        "query": uri.query().unwrap_or_default(), "body": logged_body }));
    let unavailable =
        sandbox
            .unavailable
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if unavailable.is_ok() {
        let retry_after = sandbox.unavailable.retry_after_secs.load(Ordering::SeqCst);
        let mut response = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry after the indicated time.",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after.into());
        return response;
    }
    if let Some(retry_after) = sandbox.throttle.take_failure() {
        let mut response = too_many_requests(
            retry_after,
            json!({ "error": { "code": "TooManyRequests",
            "message": "Please retry again later.", "innerError": { "request-id": "sandbox-throttled" } } }),
        );
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return response;
    }
    let mount = original
        .path()
        .strip_suffix(path.as_str())
        .unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let req = Req {
        method: &method,
        segments: path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect(),
        query,
        body: &body,
        base: format!("http://{host}{mount}"),
        path: path.clone(),
    };
    let Ok(mut store) = sandbox.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // Upload-session URLs are pre-authorized, like Graph's: no bearer token.
    if req.segments.first().map(String::as_str) == Some("_upload") {
        return files::upload_chunk(&mut store, &req, &headers);
    }
    let caller = match sandbox.authenticate(&headers) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let write = method != Method::GET && req.segments != ["search", "query"];
    if write && !caller.writable {
        return error(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        );
    }
    let first = req.segments.first().map(String::as_str).unwrap_or_default();
    let result = match first {
        "me" | "users" if req.segments.get(1).map(String::as_str) == Some("drive") => {
            Err(not_found("drive"))
        }
        "me" | "users" => {
            let rest_at = if first == "me" { 1 } else { 2 };
            match req.segments.get(rest_at).map(String::as_str) {
                Some("messages" | "mailFolders" | "sendMail") => {
                    mail::handle(&mut store, &caller, &req, rest_at)
                }
                Some("joinedTeams" | "chats") => teams::handle(&mut store, &caller, &req, rest_at),
                _ => Err(error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Resource not found for the segment '{}'.", path),
                )),
            }
        }
        "teams" | "chats" => teams::handle(&mut store, &caller, &req, 0),
        "sites" | "drives" => files::handle(&mut store, &caller, &req),
        "search" => store::search(&store, &caller, &req),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment '{first}'."),
        )),
    };
    result.unwrap_or_else(|response| response)
}
