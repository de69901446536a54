//! The Box 2.0 endpoints the emulator serves, over the store.

use axum::{
    Json,
    body::Bytes,
    extract::{OriginalUri, Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::{
    BoxSandbox, Params, base_of, client_error, json_body, multipart, not_found, store::Store,
};
use crate::dropbox::sandbox::store::now;

macro_rules! admit {
    ($sandbox:expr, $method:expr, $uri:expr, $headers:expr, $body:expr) => {
        if let Err(response) = $sandbox
            .admit(json!({ "method": $method, "path": $uri.path(), "query": $uri.query(), "body": $body }), &$headers)
            .await
        {
            return response;
        }
    };
}

macro_rules! store {
    ($sandbox:expr) => {
        match $sandbox.store() {
            Ok(store) => store,
            Err(response) => return *response,
        }
    };
}

fn limit(params: &Params, default: usize, max: usize) -> usize {
    params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

fn conflict(existing: &Value) -> Response {
    let body = json!({ "type": "error", "status": 409, "code": "item_name_in_use",
        "message": "Item with the same name already exists", "request_id": "sbx0123456789",
        "context_info": { "conflicts": [existing] } });
    (StatusCode::CONFLICT, Json(body)).into_response()
}

pub(super) async fn search(
    State(sandbox): State<BoxSandbox>,
    uri: OriginalUri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    admit!(sandbox, "GET", uri, headers, Value::Null);
    let Some(query) = params.get("query").filter(|q| !q.trim().is_empty()) else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Missing query parameter `query`",
        );
    };
    let words: Vec<String> = query
        .to_lowercase()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let names_only = params
        .get("content_types")
        .is_some_and(|t| t.split(',').all(|t| t == "name"));
    let kind = params.get("type").map(String::as_str);
    let ancestor = params.get("ancestor_folder_ids").map(String::as_str);
    let store = store!(sandbox);
    let base = base_of(&headers, &uri, "/2.0/");
    let within = |item: &super::store::Item| {
        let mut parent = item.parent.clone();
        while let Some(id) = parent {
            if Some(id.as_str()) == ancestor {
                return true;
            }
            parent = store.items.get(&id).and_then(|p| p.parent.clone());
        }
        ancestor.is_none()
    };
    let hits: Vec<Value> = store
        .items
        .values()
        .filter(|i| i.id != "0" && kind.is_none_or(|k| (k == "folder") == i.folder) && within(i))
        .filter(|i| {
            let name = i.name.to_lowercase();
            let body = if names_only || i.folder {
                String::new()
            } else {
                String::from_utf8_lossy(&i.content).to_lowercase()
            };
            words
                .iter()
                .all(|w| name.contains(w.as_str()) || body.contains(w.as_str()))
        })
        .map(|i| store.with_fields(i, &base, params.get("fields").map(String::as_str)))
        .collect();
    let offset: usize = params
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let limit = limit(&params, 30, 200);
    let page: Vec<Value> = hits.iter().skip(offset).take(limit).cloned().collect();
    Json(json!({ "type": "search_results_items", "total_count": hits.len(), "limit": limit, "offset": offset, "entries": page }))
        .into_response()
}

pub(super) async fn folder_items(
    State(sandbox): State<BoxSandbox>,
    Path(id): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    admit!(sandbox, "GET", uri, headers, Value::Null);
    let store = store!(sandbox);
    if !store.items.get(&id).is_some_and(|i| i.folder) {
        return not_found();
    }
    let base = base_of(&headers, &uri, "/2.0/");
    let children = store.children(&id);
    let limit = limit(&params, 100, 1000);
    let start: usize = match params.get("marker") {
        None => 0,
        Some(marker) => match URL_SAFE_NO_PAD
            .decode(marker)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
        {
            Some(start) => start,
            None => return client_error(StatusCode::BAD_REQUEST, "bad_request", "Invalid marker"),
        },
    };
    let fields = params.get("fields").map(String::as_str);
    let entries: Vec<Value> = children
        .iter()
        .skip(start)
        .take(limit)
        .map(|i| store.with_fields(i, &base, fields))
        .collect();
    let end = start + entries.len();
    let next = (end < children.len()).then(|| URL_SAFE_NO_PAD.encode(end.to_string()));
    let mut body = json!({ "limit": limit, "next_marker": next, "prev_marker": null, "entries": entries,
                           "order": [{ "by": "type", "direction": "ASC" }, { "by": "name", "direction": "ASC" }] });
    if params.get("usemarker").map(String::as_str) != Some("true") {
        body["total_count"] = json!(children.len());
    }
    Json(body).into_response()
}

fn get_item(store: &Store, id: &str, folder: bool, base: &str, params: &Params) -> Response {
    match store.items.get(id).filter(|i| i.folder == folder) {
        Some(item) => Json(store.with_fields(item, base, params.get("fields").map(String::as_str)))
            .into_response(),
        None => not_found(),
    }
}

pub(super) async fn get_file(
    State(sandbox): State<BoxSandbox>,
    Path(id): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    admit!(sandbox, "GET", uri, headers, Value::Null);
    let store = store!(sandbox);
    get_item(
        &store,
        &id,
        false,
        &base_of(&headers, &uri, "/2.0/"),
        &params,
    )
}

pub(super) async fn get_folder(
    State(sandbox): State<BoxSandbox>,
    Path(id): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    admit!(sandbox, "GET", uri, headers, Value::Null);
    let store = store!(sandbox);
    get_item(
        &store,
        &id,
        true,
        &base_of(&headers, &uri, "/2.0/"),
        &params,
    )
}

pub(super) async fn create_folder(
    State(sandbox): State<BoxSandbox>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    admit!(sandbox, "POST", uri, headers, body);
    let (Some(name), Some(parent)) = (
        body["name"].as_str(),
        body.pointer("/parent/id").and_then(Value::as_str),
    ) else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "`name` and `parent.id` are required",
        );
    };
    let mut store = store!(sandbox);
    if !store.items.get(parent).is_some_and(|i| i.folder) {
        return not_found();
    }
    let base = base_of(&headers, &uri, "/2.0/");
    if let Some(existing) = store.name_taken(parent, name, "") {
        return conflict(&store.with_fields(existing, &base, Some("name")));
    }
    let id = store.add(parent, name, None, &now());
    let item = store.items[&id].clone();
    (StatusCode::CREATED, Json(store.full(&item, &base))).into_response()
}

pub(super) async fn update_file(
    State(sandbox): State<BoxSandbox>,
    Path(id): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    params: Params,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    admit!(sandbox, "PUT", uri, headers, body);
    let mut store = store!(sandbox);
    let Some(mut item) = store.items.get(&id).filter(|i| !i.folder).cloned() else {
        return not_found();
    };
    let base = base_of(&headers, &uri, "/2.0/");
    if let Some(parent) = body.pointer("/parent/id").and_then(Value::as_str) {
        if !store.items.get(parent).is_some_and(|i| i.folder) {
            return not_found();
        }
        item.parent = Some(parent.to_owned());
    }
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        item.name = name.to_owned();
    }
    if let Some(access) = body.pointer("/shared_link/access").and_then(Value::as_str) {
        if !matches!(access, "open" | "company" | "collaborators") {
            return client_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Invalid shared link access",
            );
        }
        item.shared_access = Some(access.to_owned());
    }
    let folder = item.parent.clone().unwrap_or_default();
    if let Some(existing) = store.name_taken(&folder, &item.name, &id) {
        return conflict(&store.with_fields(existing, &base, Some("name")));
    }
    store.items.insert(id.clone(), item.clone());
    store.touch(&id);
    let item = store.items[&id].clone();
    Json(store.with_fields(&item, &base, params.get("fields").map(String::as_str))).into_response()
}

pub(super) async fn delete_file(
    State(sandbox): State<BoxSandbox>,
    Path(id): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    admit!(sandbox, "DELETE", uri, headers, Value::Null);
    let mut store = store!(sandbox);
    match store.items.get(&id).filter(|i| !i.folder) {
        Some(_) => {
            store.items.remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(),
    }
}

pub(super) async fn upload(
    State(sandbox): State<BoxSandbox>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parts = multipart::parse(&content_type, &body);
    let names: Vec<String> = parts.iter().flatten().map(|p| p.name.clone()).collect();
    admit!(
        sandbox,
        "POST",
        uri,
        headers,
        json!({ "content_type": content_type, "parts": names })
    );
    let Some(parts) = parts else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Expected multipart/form-data",
        );
    };
    // Box requires the attributes part before the file part.
    let (Some(attributes), Some(file)) = (
        parts.first().filter(|p| p.name == "attributes"),
        parts.get(1).filter(|p| p.name == "file"),
    ) else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Expected an `attributes` part followed by a `file` part",
        );
    };
    let attributes: Value = serde_json::from_slice(&attributes.body).unwrap_or(Value::Null);
    let (Some(name), Some(parent)) = (
        attributes["name"].as_str(),
        attributes.pointer("/parent/id").and_then(Value::as_str),
    ) else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "attributes need `name` and `parent.id`",
        );
    };
    let mut store = store!(sandbox);
    if !store.items.get(parent).is_some_and(|i| i.folder) {
        return not_found();
    }
    let base = base_of(&headers, &uri, "/upload/");
    if let Some(existing) = store.name_taken(parent, name, "") {
        return conflict(&store.with_fields(existing, &base, Some("name")));
    }
    let id = store.add(parent, name, Some(file.body.clone()), &now());
    let item = store.items[&id].clone();
    (
        StatusCode::CREATED,
        Json(json!({ "total_count": 1, "entries": [store.full(&item, &base)] })),
    )
        .into_response()
}
