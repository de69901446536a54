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
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    drive::tools::{SCOPE_FILE, SCOPE_FULL, SCOPE_METADATA_READONLY, SCOPE_READONLY},
    extract::fixtures::{self, DocxBlock, PptxSlide, XlsxCell},
    sandbox::{
        oauth::{OAuthConfig, OAuthServer, TokenStatus},
        throttle::{Throttle, too_many_requests},
    },
};

mod fields;
mod multipart;
pub mod query;
pub mod store;

use store::{Content, FOLDER, Item, Permission, Role, Store};

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

/// The formats each Google-native type exports to.
pub(crate) fn export_formats(mime_type: &str) -> &'static [&'static str] {
    match mime_type {
        store::DOC => &[
            "text/plain",
            "text/markdown",
            "text/html",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/pdf",
        ],
        store::SHEET => &[
            "text/csv",
            "text/tab-separated-values",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/pdf",
        ],
        store::SLIDES => &[
            "text/plain",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/pdf",
        ],
        _ => &[],
    }
}

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
            .route("/drive/v3/files", get(list).post(create))
            .route(
                "/drive/v3/files/{file_id}",
                get(get_file).patch(update).delete(delete),
            )
            .route("/drive/v3/files/{file_id}/export", get(export))
            .route(
                "/drive/v3/files/{file_id}/permissions",
                post(create_permission),
            )
            .route("/upload/drive/v3/files", post(upload))
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

// === fields ===

/// File fields the emulator knows (a subset of Drive's File schema).
const FILE_FIELDS: [&str; 40] = [
    "kind",
    "id",
    "name",
    "mimeType",
    "description",
    "starred",
    "trashed",
    "explicitlyTrashed",
    "parents",
    "spaces",
    "version",
    "webViewLink",
    "webContentLink",
    "iconLink",
    "viewedByMe",
    "createdTime",
    "modifiedTime",
    "shared",
    "writersCanShare",
    "capabilities",
    "ownedByMe",
    "owners",
    "driveId",
    "size",
    "quotaBytesUsed",
    "md5Checksum",
    "headRevisionId",
    "fileExtension",
    "fullFileExtension",
    "originalFilename",
    "exportLinks",
    "teamDriveId",
    "hasThumbnail",
    "thumbnailLink",
    "lastModifyingUser",
    "permissions",
    "permissionIds",
    "resourceKey",
    "properties",
    "appProperties",
];
const USER_FIELDS: [&str; 6] = [
    "kind",
    "displayName",
    "emailAddress",
    "me",
    "permissionId",
    "photoLink",
];
const PERMISSION_FIELDS: [&str; 10] = [
    "kind",
    "id",
    "type",
    "role",
    "emailAddress",
    "displayName",
    "domain",
    "deleted",
    "pendingOwner",
    "allowFileDiscovery",
];

fn known_file_path(path: &[&str]) -> bool {
    match path {
        [field] => FILE_FIELDS.contains(field),
        ["owners" | "lastModifyingUser", field] => USER_FIELDS.contains(field),
        [
            "capabilities" | "exportLinks" | "properties" | "appProperties",
            _,
        ] => true,
        ["permissions", field] => PERMISSION_FIELDS.contains(field),
        _ => false,
    }
}

/// The `fields` selection for a File answer, or Drive's 400 for an unknown name.
fn file_selection(params: &Params) -> Result<fields::Selection, Response> {
    selection(params, "kind,id,name,mimeType", &known_file_path)
}

fn selection(
    params: &Params,
    default: &str,
    known: &dyn Fn(&[&str]) -> bool,
) -> Result<fields::Selection, Response> {
    let text = params
        .get("fields")
        .filter(|f| !f.trim().is_empty())
        .unwrap_or(default);
    let selection = fields::parse(text).map_err(|why| {
        bad_request(
            "invalidParameter",
            &format!("Invalid field selection: {why}"),
            "fields",
        )
    })?;
    if let Some(bad) = selection.unknown(known) {
        return Err(bad_request(
            "invalidParameter",
            &format!("Invalid field selection {bad}"),
            "fields",
        ));
    }
    Ok(selection)
}

// === lookups ===

/// The item `id` names for `caller`, or the 404 Drive gives for anything it may not see.
fn find<'s>(
    store: &'s Store,
    caller: &Caller,
    id: &str,
    supports_all_drives: bool,
) -> Result<&'s Item, Response> {
    let resolved = Store::resolve_alias(&caller.login, id);
    let item = store.items.get(&resolved).ok_or_else(|| not_found(id))?;
    let visible = store.role(&caller.login, &item.id).is_some()
        && caller.sees(item)
        && (item.drive_id.is_none() || supports_all_drives);
    if visible {
        Ok(item)
    } else {
        Err(not_found(id))
    }
}

/// Where a new or moved item goes, `(parent id, shared drive id)`: a folder (or shared drive)
/// the caller may add to, with a token that may write there.
fn parent_target(
    store: &Store,
    caller: &Caller,
    id: &str,
    supports_all_drives: bool,
) -> Result<(String, Option<String>), Response> {
    let resolved = Store::resolve_alias(&caller.login, id);
    if let Some((_, members)) = store.drives.get(&resolved) {
        // A shared drive's root: its members may add to it.
        let role = members
            .iter()
            .find(|(member, _)| *member == caller.login)
            .map(|(_, role)| *role);
        if !supports_all_drives || role.is_none() {
            return Err(not_found(id));
        }
        if role < Some(Role::Writer) {
            return Err(insufficient_file_permissions());
        }
        if !caller.has(SCOPE_FULL) {
            return Err(app_not_authorized(id));
        }
        return Ok((resolved.clone(), Some(resolved)));
    }
    let parent = find(store, caller, id, supports_all_drives)?;
    if parent.mime_type != FOLDER {
        return Err(bad_request(
            "invalid",
            &format!("The specified parent is not a folder: {id}"),
            "parents",
        ));
    }
    if store.role(&caller.login, &parent.id) < Some(Role::Writer) {
        return Err(insufficient_file_permissions());
    }
    if !caller.writes(parent) {
        return Err(app_not_authorized(id));
    }
    Ok((parent.id.clone(), parent.drive_id.clone()))
}

// === files.list ===

#[derive(serde::Serialize, Deserialize)]
struct PageToken {
    o: usize,
    f: String,
}

async fn list(
    State(sandbox): State<DriveSandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let params = Params { pairs };
    let caller = match sandbox.prelude(&method, &uri, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match list_files(&sandbox, &caller, &params) {
        Ok(response) | Err(response) => response,
    }
}

fn list_files(
    sandbox: &DriveSandbox,
    caller: &Caller,
    params: &Params,
) -> Result<Response, Response> {
    params.check(&[
        "corpora",
        "corpus",
        "driveId",
        "includeItemsFromAllDrives",
        "includeLabels",
        "includePermissionsForView",
        "includeTeamDriveItems",
        "orderBy",
        "pageSize",
        "pageToken",
        "q",
        "spaces",
        "supportsAllDrives",
        "supportsTeamDrives",
        "teamDriveId",
    ])?;
    if params.get("alt") == Some("media") {
        return Err(bad_request(
            "invalid",
            "alt=media is not supported for files.list",
            "alt",
        ));
    }
    let page_size = match params.get("pageSize") {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            // Drive coerces larger values to its maximum.
            .map(|n| n.min(1000))
            .ok_or_else(|| {
                bad_request(
                    "invalid",
                    &format!("Invalid value '{text}'. Values must be within the range: [1, 1000]"),
                    "pageSize",
                )
            })?,
    };
    let supports_all = params.flag("supportsAllDrives")?;
    let include_all = params.flag("includeItemsFromAllDrives")?;
    let corpora = params.get("corpora").unwrap_or("user");
    let drive_id = params.get("driveId");
    match corpora {
        "user" | "domain" => {}
        "drive" if drive_id.is_none() => {
            return Err(bad_request(
                "invalid",
                "The driveId parameter must be specified when corpora is drive.",
                "driveId",
            ));
        }
        "drive" | "allDrives" if !include_all => {
            return Err(bad_request(
                "invalid",
                "The includeItemsFromAllDrives parameter must be set to true when corpora is drive or allDrives.",
                "includeItemsFromAllDrives",
            ));
        }
        "drive" | "allDrives" => {}
        other => {
            return Err(bad_request(
                "invalid",
                &format!("Invalid value '{other}' for corpora"),
                "corpora",
            ));
        }
    }
    if include_all && !supports_all {
        return Err(bad_request(
            "invalid",
            "The includeItemsFromAllDrives parameter is only supported when supportsAllDrives is true.",
            "includeItemsFromAllDrives",
        ));
    }
    let expr = match params.get("q").filter(|q| !q.trim().is_empty()) {
        Some(q) => Some(
            query::parse(q)
                .map_err(|why| bad_request("invalid", &format!("Invalid Value ({why})"), "q"))?,
        ),
        None => None,
    };
    let full_text = expr.as_ref().is_some_and(query::has_full_text);
    let order = match params.get("orderBy") {
        Some(_) if full_text => {
            return Err(bad_request(
                "invalid",
                "Sorting is not supported for queries with fullText terms. Results are always in descending relevance order.",
                "orderBy",
            ));
        }
        Some(text) => parse_order(text).map_err(|why| bad_request("invalid", &why, "orderBy"))?,
        None => Vec::new(),
    };
    let selection = selection(
        params,
        "kind,incompleteSearch,nextPageToken,files(kind,id,name,mimeType)",
        &|path: &[&str]| match path {
            ["kind" | "nextPageToken" | "incompleteSearch" | "files"] => true,
            ["files", rest @ ..] => known_file_path(rest),
            _ => false,
        },
    )?;
    if !caller.reads_all_metadata() && !caller.has(SCOPE_FILE) {
        return Err(insufficient_scopes());
    }

    let Ok(store) = sandbox.store.lock() else {
        return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
    };
    let mut matched: Vec<&Item> = store
        .order
        .iter()
        .filter_map(|id| store.items.get(id))
        .filter(|item| !item.parents.is_empty())
        .filter(|item| caller.sees(item) && store.role(&caller.login, &item.id).is_some())
        .filter(|item| match (corpora, &item.drive_id) {
            ("drive", Some(d)) => Some(d.as_str()) == drive_id,
            ("drive", None) => false,
            ("allDrives", Some(_)) => include_all,
            (_, Some(_)) => false,
            (_, None) => true,
        })
        .filter(|item| {
            expr.as_ref()
                .is_none_or(|e| query::matches(e, item, &store, &caller.login))
        })
        .collect();
    if full_text {
        let mut terms = Vec::new();
        if let Some(expr) = &expr {
            query::full_text_terms(expr, &mut terms);
        }
        let score = |item: &Item| {
            let name = item.name.to_lowercase();
            terms
                .iter()
                .map(|t| {
                    3 * usize::from(name.contains(t.as_str()))
                        + item.index.matches(t.as_str()).count()
                })
                .sum::<usize>()
        };
        matched.sort_by(|a, b| score(b).cmp(&score(a)).then(b.modified.cmp(&a.modified)));
    } else if !order.is_empty() {
        matched.sort_by(|a, b| {
            for (key, descending) in &order {
                let ordering = match key.as_str() {
                    "folder" => (b.mime_type == FOLDER).cmp(&(a.mime_type == FOLDER)),
                    "name" | "name_natural" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                    "modifiedTime" | "recency" | "modifiedByMeTime" => a.modified.cmp(&b.modified),
                    "createdTime" => a.created.cmp(&b.created),
                    _ => std::cmp::Ordering::Equal,
                };
                let ordering = if *descending {
                    ordering.reverse()
                } else {
                    ordering
                };
                if ordering != std::cmp::Ordering::Equal {
                    return ordering;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let fingerprint = {
        let mut hasher = Sha256::new();
        for part in [
            caller.login.as_str(),
            params.get("q").unwrap_or(""),
            params.get("orderBy").unwrap_or(""),
            corpora,
            drive_id.unwrap_or(""),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        URL_SAFE_NO_PAD.encode(&hasher.finalize()[..12])
    };
    let offset = match params.get("pageToken") {
        None => 0,
        Some(token) => URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<PageToken>(&bytes).ok())
            .filter(|t| t.f == fingerprint)
            .map(|t| t.o)
            .ok_or_else(|| bad_request("invalid", "Invalid Value", "pageToken"))?,
    };
    let end = (offset + page_size).min(matched.len());
    let files: Vec<Value> = matched
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|item| store.resource(item, &caller.login))
        .collect();
    let mut body = json!({ "kind": "drive#fileList", "incompleteSearch": false, "files": files });
    if end < matched.len() {
        let token = PageToken {
            o: end,
            f: fingerprint,
        };
        body["nextPageToken"] =
            json!(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default()));
    }
    Ok(Json(selection.apply(&body)).into_response())
}

fn parse_order(text: &str) -> Result<Vec<(String, bool)>, String> {
    const KEYS: [&str; 11] = [
        "createdTime",
        "folder",
        "modifiedByMeTime",
        "modifiedTime",
        "name",
        "name_natural",
        "quotaBytesUsed",
        "recency",
        "sharedWithMeTime",
        "starred",
        "viewedByMeTime",
    ];
    text.split(',')
        .map(|part| {
            let mut words = part.split_whitespace();
            let key = words.next().unwrap_or_default();
            let descending = match words.next() {
                None => false,
                Some("desc") => true,
                Some("asc") => false,
                Some(other) => return Err(format!("Invalid sort direction '{other}'")),
            };
            if KEYS.contains(&key) {
                Ok((key.to_owned(), descending))
            } else {
                Err(format!("Invalid orderBy key '{key}'"))
            }
        })
        .collect()
}

// === files.get (metadata and alt=media) ===

async fn get_file(
    State(sandbox): State<DriveSandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(file_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let params = Params { pairs };
    let caller = match sandbox.prelude(&method, &uri, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let answer = (|| -> Result<Response, Response> {
        params.check(&[
            "acknowledgeAbuse",
            "includeLabels",
            "includePermissionsForView",
            "supportsAllDrives",
            "supportsTeamDrives",
        ])?;
        let media = params.get("alt") == Some("media");
        let selection = if media {
            None
        } else {
            Some(file_selection(&params)?)
        };
        let store = sandbox
            .store
            .lock()
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let item = find(&store, &caller, &file_id, params.flag("supportsAllDrives")?)?;
        let Some(selection) = selection else {
            if !caller.reads_content(item) {
                return Err(insufficient_scopes());
            }
            let Content::Bytes(bytes) = &item.content else {
                return Err(google_error(
                    StatusCode::FORBIDDEN,
                    "fileNotDownloadable",
                    "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
                    Some(("alt", "parameter")),
                ));
            };
            let mut response = bytes.clone().into_response();
            if let Ok(value) = HeaderValue::from_str(&item.mime_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            return Ok(response);
        };
        Ok(Json(selection.apply(&store.resource(item, &caller.login))).into_response())
    })();
    match answer {
        Ok(response) | Err(response) => response,
    }
}

// === files.export ===

async fn export(
    State(sandbox): State<DriveSandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(file_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let params = Params { pairs };
    let caller = match sandbox.prelude(&method, &uri, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let answer = (|| -> Result<Response, Response> {
        params.check(&["mimeType"])?;
        let target = params
            .get("mimeType")
            .ok_or_else(|| bad_request("required", "Required parameter: mimeType", "mimeType"))?
            .to_owned();
        let store = sandbox
            .store
            .lock()
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        // files.export has no supportsAllDrives: shared drive items are reachable by id.
        let item = find(&store, &caller, &file_id, true)?;
        if !caller.reads_content(item) {
            return Err(insufficient_scopes());
        }
        if !export_formats(&item.mime_type).contains(&target.as_str()) {
            if export_formats(&item.mime_type).is_empty() {
                return Err(google_error(
                    StatusCode::FORBIDDEN,
                    "fileNotExportable",
                    "Export only supports Docs Editors files.",
                    None,
                ));
            }
            return Err(bad_request(
                "badRequest",
                "The requested conversion is not supported.",
                "mimeType",
            ));
        }
        let bytes = exported(&item.content, &target);
        let mut response = bytes.into_response();
        if let Ok(value) = HeaderValue::from_str(&target) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        Ok(response)
    })();
    match answer {
        Ok(response) | Err(response) => response,
    }
}

/// A Google-native file's content in an export format.
fn exported(content: &Content, target: &str) -> Vec<u8> {
    match content {
        Content::Doc(markdown) => match target {
            "text/markdown" => markdown.clone().into_bytes(),
            "text/plain" => plain_of_markdown(markdown).into_bytes(),
            "text/html" => {
                let body: String = markdown
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|line| match line.split_once(' ') {
                        Some((hashes, text))
                            if !hashes.is_empty() && hashes.chars().all(|c| c == '#') =>
                        {
                            format!("<h{0}>{text}</h{0}>", hashes.len())
                        }
                        _ => format!("<p>{}</p>", line.trim_start_matches("- ")),
                    })
                    .collect();
                format!("<html><body>{body}</body></html>").into_bytes()
            }
            "application/pdf" => {
                let plain = plain_of_markdown(markdown);
                let lines: Vec<&str> = plain.lines().filter(|l| !l.is_empty()).collect();
                fixtures::pdf(&[&lines])
            }
            _ => {
                let blocks: Vec<DocxBlock<'_>> = markdown
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|line| {
                        if let Some((hashes, text)) = line.split_once(' ')
                            && !hashes.is_empty()
                            && hashes.chars().all(|c| c == '#')
                        {
                            return DocxBlock::Heading(hashes.len() as u8, text);
                        }
                        match line.strip_prefix("- ") {
                            Some(item) => DocxBlock::Bullet(item),
                            None => DocxBlock::Paragraph(line),
                        }
                    })
                    .collect();
                fixtures::docx(&blocks)
            }
        },
        Content::Sheet(sheets) => match target {
            "text/csv" => sheets
                .first()
                .map(|(_, rows)| store::csv(rows))
                .unwrap_or_default()
                .into_bytes(),
            "text/tab-separated-values" => sheets
                .first()
                .map(|(_, rows)| {
                    rows.iter()
                        .map(|r| r.join("\t"))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default()
                .into_bytes(),
            "application/pdf" => {
                let lines: Vec<String> = sheets
                    .first()
                    .map(|(_, rows)| rows.iter().map(|r| r.join("  ")).collect())
                    .unwrap_or_default();
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                fixtures::pdf(&[&lines])
            }
            _ => {
                let cells: Vec<(String, Vec<Vec<XlsxCell<'_>>>)> = sheets
                    .iter()
                    .map(|(name, rows)| {
                        let rows = rows
                            .iter()
                            .map(|row| {
                                row.iter()
                                    .map(|cell| match cell.parse::<f64>() {
                                        Ok(number) => XlsxCell::Number(number),
                                        Err(_) => XlsxCell::Text(cell),
                                    })
                                    .collect()
                            })
                            .collect();
                        (name.clone(), rows)
                    })
                    .collect();
                let rows: Vec<Vec<&[XlsxCell<'_>]>> = cells
                    .iter()
                    .map(|(_, rows)| rows.iter().map(Vec::as_slice).collect())
                    .collect();
                let sheets: Vec<(&str, &[&[XlsxCell<'_>]])> = cells
                    .iter()
                    .zip(&rows)
                    .map(|((name, _), rows)| (name.as_str(), rows.as_slice()))
                    .collect();
                fixtures::xlsx(&sheets)
            }
        },
        Content::Slides(slides) => match target {
            "text/plain" => store::slides_text(slides).into_bytes(),
            "application/pdf" => {
                let pages: Vec<Vec<&str>> = slides
                    .iter()
                    .map(|(title, body, _)| {
                        std::iter::once(title.as_str())
                            .chain(body.iter().map(String::as_str))
                            .collect()
                    })
                    .collect();
                let pages: Vec<&[&str]> = pages.iter().map(Vec::as_slice).collect();
                fixtures::pdf(&pages)
            }
            _ => {
                let bodies: Vec<Vec<&str>> = slides
                    .iter()
                    .map(|(_, body, _)| body.iter().map(String::as_str).collect())
                    .collect();
                let deck: Vec<PptxSlide<'_>> = slides
                    .iter()
                    .zip(&bodies)
                    .map(|((title, _, notes), body)| PptxSlide { title, body, notes })
                    .collect();
                fixtures::pptx(&deck)
            }
        },
        Content::None | Content::Bytes(_) => Vec::new(),
    }
}

/// Markdown as Google's plain-text export reads: no heading marks, bullets as `* `.
fn plain_of_markdown(markdown: &str) -> String {
    markdown
        .lines()
        .map(|line| {
            let trimmed = line.trim_start_matches('#').trim_start();
            match trimmed.strip_prefix("- ") {
                Some(item) => format!("* {item}"),
                None => trimmed.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// === files.create (metadata, and multipart upload) ===

async fn create(
    State(sandbox): State<DriveSandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let params = Params { pairs };
    let caller = match sandbox.prelude(&method, &uri, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let answer = (|| -> Result<Response, Response> {
        check_create_params(&params)?;
        let metadata: Value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&body).map_err(|error| {
                google_error(
                    StatusCode::BAD_REQUEST,
                    "parseError",
                    &format!("Parse Error: {error}"),
                    None,
                )
            })?
        };
        insert_file(&sandbox, &caller, &params, &metadata, None)
    })();
    match answer {
        Ok(response) | Err(response) => response,
    }
}

fn check_create_params(params: &Params) -> Result<(), Response> {
    params.check(&[
        "enforceSingleParent",
        "ignoreDefaultVisibility",
        "includeLabels",
        "includePermissionsForView",
        "keepRevisionForever",
        "ocrLanguage",
        "supportsAllDrives",
        "supportsTeamDrives",
        "useContentAsIndexableText",
    ])
}

async fn upload(
    State(sandbox): State<DriveSandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let params = Params { pairs };
    let caller = match sandbox.prelude(&method, &uri, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let answer = (|| -> Result<Response, Response> {
        check_create_params(&params)?;
        match params.get("uploadType") {
            Some("multipart") => {}
            Some(other) => {
                return Err(bad_request(
                    "invalid",
                    &format!("The emulator supports uploadType=multipart only, not {other}"),
                    "uploadType",
                ));
            }
            None => {
                return Err(bad_request(
                    "required",
                    "Required parameter: uploadType",
                    "uploadType",
                ));
            }
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let parts = multipart::parse_related(content_type, &body).map_err(|why| {
            google_error(
                StatusCode::BAD_REQUEST,
                "badContent",
                &format!("Bad multipart body: {why}"),
                None,
            )
        })?;
        let [meta, media] = parts.as_slice() else {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "badContent",
                "A multipart upload has two parts: metadata, then media.",
                None,
            ));
        };
        let metadata: Value = serde_json::from_slice(&meta.body).map_err(|error| {
            google_error(
                StatusCode::BAD_REQUEST,
                "parseError",
                &format!("Parse Error: {error}"),
                None,
            )
        })?;
        if media.body.len() > MAX_MULTIPART_BYTES {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "badRequest",
                "Media larger than 5 MB must be uploaded with uploadType=resumable.",
                None,
            ));
        }
        insert_file(
            &sandbox,
            &caller,
            &params,
            &metadata,
            Some((media.content_type.clone(), media.body.clone())),
        )
    })();
    match answer {
        Ok(response) | Err(response) => response,
    }
}

fn insert_file(
    sandbox: &DriveSandbox,
    caller: &Caller,
    params: &Params,
    metadata: &Value,
    media: Option<(Option<String>, Vec<u8>)>,
) -> Result<Response, Response> {
    let selection = file_selection(params)?;
    if !caller.may_write_at_all() {
        return Err(insufficient_scopes());
    }
    let supports_all = params.flag("supportsAllDrives")?;
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("Untitled")
        .to_owned();
    let parents: Vec<String> = match metadata.get("parents") {
        None => vec!["root".into()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "parents must be a list of ids",
                None,
            ));
        }
    };
    if parents.len() > 1 {
        return Err(google_error(
            StatusCode::FORBIDDEN,
            "cannotAddParent",
            "Increasing the number of parents is not allowed.",
            None,
        ));
    }
    let mime_type = metadata
        .get("mimeType")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| media.as_ref().and_then(|(t, _)| t.clone()))
        .unwrap_or_else(|| "application/octet-stream".into());
    let Ok(mut store) = sandbox.store.lock() else {
        return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
    };
    let parent_ref = parents.first().cloned().unwrap_or_else(|| "root".into());
    let (parent, drive_id) = parent_target(&store, caller, &parent_ref, supports_all)?;
    let content = match (&media, mime_type.as_str()) {
        (_, FOLDER) => Content::None,
        (Some((_, bytes)), _) => Content::Bytes(bytes.clone()),
        (None, store::DOC) => Content::Doc(String::new()),
        (None, store::SHEET) => Content::Sheet(vec![("Sheet1".into(), Vec::new())]),
        (None, store::SLIDES) => Content::Slides(Vec::new()),
        (None, _) => Content::Bytes(Vec::new()),
    };
    let id = store.new_id();
    let now = store.now();
    let id = store.insert(Item {
        id,
        name,
        mime_type,
        parents: vec![parent],
        owner: drive_id.is_none().then(|| caller.login.clone()),
        drive_id,
        created: now.clone(),
        modified: now,
        description: metadata
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        trashed: false,
        content,
        app_created: true,
        permissions: Vec::new(),
        version: 1,
        index: String::new(),
    });
    let item = store
        .items
        .get(&id)
        .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
    Ok(Json(selection.apply(&store.resource(item, &caller.login))).into_response())
}

// === files.update ===

async fn update(
    State(sandbox): State<DriveSandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(file_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let params = Params { pairs };
    let caller = match sandbox.prelude(&method, &uri, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let answer = (|| -> Result<Response, Response> {
        params.check(&[
            "addParents",
            "enforceSingleParent",
            "includeLabels",
            "includePermissionsForView",
            "keepRevisionForever",
            "ocrLanguage",
            "removeParents",
            "supportsAllDrives",
            "supportsTeamDrives",
            "useContentAsIndexableText",
        ])?;
        let selection = file_selection(&params)?;
        let changes: Value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&body).map_err(|error| {
                google_error(
                    StatusCode::BAD_REQUEST,
                    "parseError",
                    &format!("Parse Error: {error}"),
                    None,
                )
            })?
        };
        let supports_all = params.flag("supportsAllDrives")?;
        let mut store = sandbox
            .store
            .lock()
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let item = find(&store, &caller, &file_id, supports_all)?.clone();
        if !caller.writes(&item) {
            return Err(if caller.has(SCOPE_FILE) {
                app_not_authorized(&item.id)
            } else {
                insufficient_scopes()
            });
        }
        let role = store.role(&caller.login, &item.id);
        if role < Some(Role::Writer) {
            return Err(insufficient_file_permissions());
        }
        let split = |name: &str| -> Vec<String> {
            params
                .get(name)
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| Store::resolve_alias(&caller.login, s))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (add, remove) = (split("addParents"), split("removeParents"));
        let mut parents = item.parents.clone();
        for id in &remove {
            if !parents.contains(id) {
                return Err(bad_request(
                    "invalid",
                    &format!("The parent {id} is not a parent of the file."),
                    "removeParents",
                ));
            }
            parents.retain(|p| p != id);
        }
        let mut drive_id = item.drive_id.clone();
        for id in &add {
            let (parent, drive) = parent_target(&store, &caller, id, supports_all)?;
            if store.descendants(&item.id).contains(&parent) {
                return Err(bad_request(
                    "invalid",
                    "A folder cannot be moved into itself or a folder inside it.",
                    "addParents",
                ));
            }
            if !parents.contains(&parent) {
                parents.push(parent);
            }
            drive_id = drive;
        }
        if parents.len() > 1 {
            return Err(google_error(
                StatusCode::FORBIDDEN,
                "cannotAddParent",
                "Increasing the number of parents is not allowed.",
                None,
            ));
        }
        let trash = changes.get("trashed").and_then(Value::as_bool);
        if trash.is_some() && item.drive_id.is_none() && role != Some(Role::Owner) {
            return Err(insufficient_file_permissions());
        }
        let now = store.now();
        let updated = store
            .items
            .get_mut(&item.id)
            .ok_or_else(|| not_found(&file_id))?;
        if let Some(name) = changes.get("name").and_then(Value::as_str) {
            updated.name = name.to_owned();
        }
        if let Some(description) = changes.get("description").and_then(Value::as_str) {
            updated.description = Some(description.to_owned());
        }
        if let Some(trashed) = trash {
            updated.trashed = trashed;
        }
        if drive_id != updated.drive_id {
            updated.owner = if drive_id.is_some() {
                None
            } else {
                Some(caller.login.clone())
            };
            updated.drive_id = drive_id;
        }
        updated.parents = parents;
        updated.version += 1;
        updated.modified = now;
        let item = store
            .items
            .get(&item.id)
            .ok_or_else(|| not_found(&file_id))?;
        Ok(Json(selection.apply(&store.resource(item, &caller.login))).into_response())
    })();
    match answer {
        Ok(response) | Err(response) => response,
    }
}

// === files.delete ===

async fn delete(
    State(sandbox): State<DriveSandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(file_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let params = Params { pairs };
    let caller = match sandbox.prelude(&method, &uri, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let answer = (|| -> Result<Response, Response> {
        params.check(&[
            "enforceSingleParent",
            "supportsAllDrives",
            "supportsTeamDrives",
        ])?;
        let mut store = sandbox
            .store
            .lock()
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let item = find(&store, &caller, &file_id, params.flag("supportsAllDrives")?)?;
        if !caller.writes(item) {
            return Err(if caller.has(SCOPE_FILE) {
                app_not_authorized(&item.id)
            } else {
                insufficient_scopes()
            });
        }
        if store.role(&caller.login, &item.id) != Some(Role::Owner) || item.parents.is_empty() {
            return Err(insufficient_file_permissions());
        }
        for id in store.descendants(&item.id.clone()) {
            store.items.remove(&id);
            store.order.retain(|o| *o != id);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })();
    match answer {
        Ok(response) | Err(response) => response,
    }
}

// === permissions.create ===

async fn create_permission(
    State(sandbox): State<DriveSandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(file_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let params = Params { pairs };
    let caller = match sandbox.prelude(&method, &uri, &headers, &params).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let answer = (|| -> Result<Response, Response> {
        params.check(&[
            "emailMessage",
            "enforceExpansiveAccess",
            "enforceSingleParent",
            "moveToNewOwnersRoot",
            "sendNotificationEmail",
            "supportsAllDrives",
            "supportsTeamDrives",
            "transferOwnership",
            "useDomainAdminAccess",
        ])?;
        let selection = selection(
            &params,
            "kind,id,type,role",
            &|path: &[&str]| matches!(path, [field] if PERMISSION_FIELDS.contains(field)),
        )?;
        params.flag("sendNotificationEmail")?;
        let request: Value = serde_json::from_slice(&body).map_err(|error| {
            google_error(
                StatusCode::BAD_REQUEST,
                "parseError",
                &format!("Parse Error: {error}"),
                None,
            )
        })?;
        let kind = request
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let role = request
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !matches!(kind.as_str(), "user" | "group" | "domain" | "anyone") {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "required",
                "Permission type is required and must be user, group, domain or anyone.",
                Some(("permission.type", "other")),
            ));
        }
        if Role::parse(&role).is_none() {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("The permission role '{role}' is not valid."),
                Some(("permission.role", "other")),
            ));
        }
        if role == "owner" && !params.flag("transferOwnership")? {
            return Err(google_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "The transferOwnership parameter must be enabled when the permission role is 'owner'.",
                Some(("transferOwnership", "parameter")),
            ));
        }
        let email = request
            .get("emailAddress")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if matches!(kind.as_str(), "user" | "group")
            && email.as_deref().is_none_or(|e| !e.contains('@'))
        {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "invalidSharingRequest",
                "Bad Request. User message: \"A valid email address is required.\"",
                Some(("permission.emailAddress", "other")),
            ));
        }
        let mut store = sandbox
            .store
            .lock()
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let item = find(&store, &caller, &file_id, params.flag("supportsAllDrives")?)?;
        if !caller.writes(item) {
            return Err(if caller.has(SCOPE_FILE) {
                app_not_authorized(&item.id)
            } else {
                insufficient_scopes()
            });
        }
        if store.role(&caller.login, &item.id) < Some(Role::Writer) {
            return Err(insufficient_file_permissions());
        }
        let id = item.id.clone();
        let permission_id = format!(
            "{:020}",
            u64::from_str_radix(
                &format!("{:x}", Sha256::digest(format!("{id}{email:?}").as_bytes()))[..12],
                16
            )
            .unwrap_or(7)
        );
        let display_name = email
            .as_deref()
            .and_then(store::login_of_email)
            .and_then(store::user_name)
            .map(str::to_owned);
        let now = store.now();
        let item = store
            .items
            .get_mut(&id)
            .ok_or_else(|| not_found(&file_id))?;
        let existing = item
            .permissions
            .iter_mut()
            .find(|p| p.email.is_some() && p.email == email);
        let permission = match existing {
            Some(permission) => {
                permission.role = role;
                permission.clone()
            }
            None => {
                let permission = Permission {
                    id: permission_id,
                    kind,
                    role,
                    email,
                    display_name,
                };
                item.permissions.push(permission.clone());
                permission
            }
        };
        item.modified = now;
        let mut answer = json!({ "kind": "drive#permission", "id": permission.id, "type": permission.kind,
                                 "role": permission.role, "deleted": false, "pendingOwner": false });
        if let Some(email) = &permission.email {
            answer["emailAddress"] = json!(email);
        }
        if let Some(name) = &permission.display_name {
            answer["displayName"] = json!(name);
        }
        Ok(Json(selection.apply(&answer)).into_response())
    })();
    match answer {
        Ok(response) | Err(response) => response,
    }
}
