//! The Drive v3 endpoints: `files.list`, `files.get` (metadata and `alt=media`),
//! `files.export`, `files.create` (metadata and multipart upload), `files.update`,
//! `files.delete` and `permissions.create`, with Drive's checks of parameters, `fields`,
//! ACLs and OAuth scopes.

use axum::{
    Json,
    body::Bytes,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{
    Caller, DriveCall, DriveSandbox, MAX_MULTIPART_BYTES, Params, app_not_authorized, bad_request,
    export, fields, google_error, insufficient_file_permissions, insufficient_scopes, multipart,
    not_found, query,
    store::{self, Content, FOLDER, Item, Permission, Role, Store},
};
use crate::drive::tools::{SCOPE_FILE, SCOPE_FULL};

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

pub(super) async fn list(
    DriveCall {
        sandbox,
        caller,
        params,
    }: DriveCall,
) -> Response {
    list_files(&sandbox, &caller, &params).unwrap_or_else(|refused| refused)
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

pub(super) async fn get_file(
    DriveCall {
        sandbox,
        caller,
        params,
    }: DriveCall,
    Path(file_id): Path<String>,
) -> Response {
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
    answer.unwrap_or_else(|refused| refused)
}

// === files.export ===

pub(super) async fn export(
    DriveCall {
        sandbox,
        caller,
        params,
    }: DriveCall,
    Path(file_id): Path<String>,
) -> Response {
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
        if !export::formats(&item.mime_type).contains(&target.as_str()) {
            if export::formats(&item.mime_type).is_empty() {
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
        let bytes = export::exported(&item.content, &target);
        let mut response = bytes.into_response();
        if let Ok(value) = HeaderValue::from_str(&target) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        Ok(response)
    })();
    answer.unwrap_or_else(|refused| refused)
}

// === files.create (metadata, and multipart upload) ===

pub(super) async fn create(
    DriveCall {
        sandbox,
        caller,
        params,
    }: DriveCall,
    body: Bytes,
) -> Response {
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
    answer.unwrap_or_else(|refused| refused)
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

pub(super) async fn upload(
    DriveCall {
        sandbox,
        caller,
        params,
    }: DriveCall,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    answer.unwrap_or_else(|refused| refused)
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

pub(super) async fn update(
    DriveCall {
        sandbox,
        caller,
        params,
    }: DriveCall,
    Path(file_id): Path<String>,
    body: Bytes,
) -> Response {
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
    answer.unwrap_or_else(|refused| refused)
}

// === files.delete ===

pub(super) async fn delete(
    DriveCall {
        sandbox,
        caller,
        params,
    }: DriveCall,
    Path(file_id): Path<String>,
) -> Response {
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
    answer.unwrap_or_else(|refused| refused)
}

// === permissions.create ===

pub(super) async fn create_permission(
    DriveCall {
        sandbox,
        caller,
        params,
    }: DriveCall,
    Path(file_id): Path<String>,
    body: Bytes,
) -> Response {
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
    answer.unwrap_or_else(|refused| refused)
}
