//! The emulated routes' logic over the store, in Dropbox's argument and result shapes.

use serde_json::{Value, json};

use super::{
    ApiError, bad_input, decode_cursor, encode_cursor, route_error,
    store::{Link, Store, now, parent_of},
};

fn text<'a>(arg: &'a Value, key: &str) -> Option<&'a str> {
    arg.get(key).and_then(Value::as_str)
}

fn path_arg<'a>(arg: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    let path = text(arg, key).ok_or_else(|| bad_input(&format!("missing `{key}`")))?;
    let valid = path.is_empty() || path.starts_with('/') || path.starts_with("id:");
    if !valid || path.ends_with('/') {
        return Err(route_error(&["path", "malformed_path"]));
    }
    Ok(path)
}

/// Page `items` from `offset`; `state` is echoed in the cursor with the new offset.
fn page(items: Vec<Value>, offset: usize, limit: usize, mut state: Value, key: &str) -> Value {
    let end = (offset + limit).min(items.len());
    let slice = items.get(offset..end).unwrap_or_default().to_vec();
    state["offset"] = json!(end);
    json!({ key: slice, "cursor": encode_cursor(&state), "has_more": end < items.len() })
}

pub(super) fn rpc(store: &mut Store, route: &str, arg: &Value) -> Result<Value, ApiError> {
    match route {
        "files/list_folder" => {
            let path = path_arg(arg, "path")?;
            let limit = arg
                .get("limit")
                .and_then(Value::as_u64)
                .unwrap_or(2000)
                .clamp(1, 2000);
            list_folder(store, json!({ "path": path, "limit": limit, "offset": 0 }))
        }
        "files/list_folder/continue" => list_folder(store, decode_cursor(text(arg, "cursor"))?),
        "files/search_v2" => {
            let query = text(arg, "query")
                .filter(|q| !q.trim().is_empty())
                .ok_or_else(|| bad_input("`query` must not be empty"))?;
            let options = arg.get("options").cloned().unwrap_or(json!({}));
            let state = json!({
                "query": query, "path": options.get("path").and_then(Value::as_str).unwrap_or(""),
                "filename_only": options.get("filename_only").and_then(Value::as_bool).unwrap_or(false),
                "limit": options.get("max_results").and_then(Value::as_u64).unwrap_or(100).clamp(1, 1000),
                "offset": 0,
            });
            search(store, state)
        }
        "files/search/continue_v2" => search(store, decode_cursor(text(arg, "cursor"))?),
        "files/get_metadata" => {
            let path = path_arg(arg, "path")?;
            if path.is_empty() {
                return Err(bad_input("the root folder is unsupported"));
            }
            let key = store
                .resolve(path)
                .ok_or_else(|| route_error(&["path", "not_found"]))?;
            Ok(store.nodes[&key].metadata(true))
        }
        "files/create_folder_v2" => {
            let mut path = path_arg(arg, "path")?.to_owned();
            if store.resolve(&path).is_some() {
                if arg.get("autorename").and_then(Value::as_bool) != Some(true) {
                    return Err(route_error(&["path", "conflict", "folder"]));
                }
                path = store.free_name(&path);
            }
            let key = store.mkdir(&path, &now());
            Ok(json!({ "metadata": store.nodes[&key].metadata(false) }))
        }
        "files/move_v2" => {
            let from = store
                .resolve(path_arg(arg, "from_path")?)
                .ok_or_else(|| route_error(&["from_lookup", "not_found"]))?;
            let mut to = path_arg(arg, "to_path")?.to_owned();
            let to_parent = parent_of(&to.to_lowercase()).to_owned();
            if to.to_lowercase().starts_with(&format!("{from}/")) {
                return Err(route_error(&["cant_move_folder_into_itself"]));
            }
            if store.resolve(&to).is_some_and(|existing| existing != from) {
                if arg.get("autorename").and_then(Value::as_bool) != Some(true) {
                    return Err(route_error(&["to", "conflict", "file"]));
                }
                to = store.free_name(&to);
            }
            if !to_parent.is_empty() && !store.nodes.get(&to_parent).is_some_and(|n| n.folder) {
                store.mkdir(&to, "");
                store.nodes.remove(&to.to_lowercase());
            }
            store.relocate(&from, &to);
            Ok(json!({ "metadata": store.nodes[&to.to_lowercase()].metadata(true) }))
        }
        "files/delete_v2" => {
            let key = store
                .resolve(path_arg(arg, "path")?)
                .ok_or_else(|| route_error(&["path_lookup", "not_found"]))?;
            let node = store
                .remove(&key)
                .ok_or_else(|| route_error(&["path_lookup", "not_found"]))?;
            Ok(json!({ "metadata": node.metadata(true) }))
        }
        "sharing/create_shared_link_with_settings" => share(store, arg),
        "sharing/list_shared_links" => list_links(store, arg),
        _ => Err(ApiError(
            axum::http::StatusCode::NOT_FOUND,
            json!({ "error_summary": "unknown route" }),
        )),
    }
}

fn list_folder(store: &Store, state: Value) -> Result<Value, ApiError> {
    let path = state["path"].as_str().unwrap_or_default();
    let folder = if path.is_empty() {
        String::new()
    } else {
        let key = store
            .resolve(path)
            .ok_or_else(|| route_error(&["path", "not_found"]))?;
        if !store.nodes[&key].folder {
            return Err(route_error(&["path", "not_folder"]));
        }
        key
    };
    let entries: Vec<Value> = store
        .children(&folder)
        .iter()
        .map(|n| n.metadata(true))
        .collect();
    let (offset, limit) = (as_usize(&state["offset"]), as_usize(&state["limit"]).max(1));
    Ok(page(entries, offset, limit, state, "entries"))
}

fn as_usize(value: &Value) -> usize {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

/// Every word of the query must occur in the name (or, unless `filename_only`, in the text of a
/// text file), case-insensitively.
fn search(store: &Store, state: Value) -> Result<Value, ApiError> {
    let words: Vec<String> = state["query"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let scope = state["path"].as_str().unwrap_or_default().to_lowercase();
    let names_only = state["filename_only"].as_bool().unwrap_or(false);
    let matches: Vec<Value> = store
        .nodes
        .iter()
        .filter(|(key, _)| scope.is_empty() || key.starts_with(&format!("{scope}/")))
        .filter(|(_, node)| {
            let name = node.name().to_lowercase();
            let body = if names_only || node.folder {
                String::new()
            } else {
                String::from_utf8_lossy(&node.content).to_lowercase()
            };
            words.iter().all(|w| name.contains(w.as_str()) || body.contains(w.as_str()))
        })
        .map(|(_, node)| json!({ "match_type": { ".tag": "filename" },
                                 "metadata": { ".tag": "metadata", "metadata": node.metadata(true) } }))
        .collect();
    let (offset, limit) = (as_usize(&state["offset"]), as_usize(&state["limit"]).max(1));
    Ok(page(matches, offset, limit, state, "matches"))
}

/// `SharedLinkMetadata` of the link to the node at `key`.
fn link_metadata(store: &Store, key: &str, link: &Link) -> Value {
    let node = &store.nodes[key];
    let tag = if node.folder { "folder" } else { "file" };
    let visibility = match link.audience.as_str() {
        "public" => "public",
        "no_one" => "no_one",
        _ => "team_only",
    };
    let mut metadata = json!({
        ".tag": tag, "url": link.url, "name": node.name(), "id": node.id,
        "path_lower": key, "link_permissions": {
            "can_revoke": true, "resolved_visibility": { ".tag": visibility },
            "effective_audience": { ".tag": link.audience },
            "visibility_policies": [
                { "policy": { ".tag": "public" }, "resolved_policy": { ".tag": "public" }, "allowed": true },
                { "policy": { ".tag": "password" }, "resolved_policy": { ".tag": "password" }, "allowed": false,
                  "disallowed_reason": { ".tag": "user_account_type" } },
            ],
            "can_set_expiry": false, "can_remove_expiry": false, "allow_download": true,
            "can_allow_download": true, "can_disallow_download": false, "allow_comments": true,
            "team_restricts_comments": false,
        },
    });
    if !node.folder {
        metadata["client_modified"] = json!(node.modified);
        metadata["server_modified"] = json!(node.modified);
        metadata["rev"] = json!(format!("{:012x}", node.rev));
        metadata["size"] = json!(node.content.len());
    }
    metadata
}

/// A path's existing link is handed back as it is (409 `shared_link_already_exists` with its
/// metadata), whatever audience the request asked for: Dropbox does not change it.
fn share(store: &mut Store, arg: &Value) -> Result<Value, ApiError> {
    let key = store
        .resolve(path_arg(arg, "path")?)
        .ok_or_else(|| route_error(&["path", "not_found"]))?;
    if let Some(existing) = store.links.get(&key) {
        let link = link_metadata(store, &key, existing);
        return Err(ApiError(
            axum::http::StatusCode::CONFLICT,
            json!({
            "error_summary": "shared_link_already_exists/metadata/...",
            "error": { ".tag": "shared_link_already_exists",
                       "shared_link_already_exists": { ".tag": "metadata", "metadata": link } } }),
        ));
    }
    let audience = arg
        .pointer("/settings/audience")
        .and_then(Value::as_str)
        .unwrap_or("public");
    if !matches!(audience, "public" | "team" | "no_one") {
        return Err(bad_input("unknown `settings.audience`"));
    }
    let link = Link {
        url: store.link_url(&key),
        audience: audience.to_owned(),
    };
    let metadata = link_metadata(store, &key, &link);
    store.links.insert(key, link);
    Ok(metadata)
}

/// `sharing/list_shared_links`: with a path, its own link and (unless `direct_only`) the links
/// of the folders above it; without one, every link (then with a cursor, as Dropbox does).
fn list_links(store: &Store, arg: &Value) -> Result<Value, ApiError> {
    let Some(path) = text(arg, "path") else {
        let links: Vec<Value> = store
            .links
            .iter()
            .map(|(key, link)| link_metadata(store, key, link))
            .collect();
        return Ok(
            json!({ "links": links, "has_more": false, "cursor": encode_cursor(&json!({})) }),
        );
    };
    let key = store
        .resolve(path_arg(arg, "path").map(|_| path)?)
        .ok_or_else(|| route_error(&["path", "not_found"]))?;
    let direct_only = arg.get("direct_only").and_then(Value::as_bool) == Some(true);
    let links: Vec<Value> = store
        .links
        .iter()
        .filter(|(at, _)| **at == key || (!direct_only && key.starts_with(&format!("{at}/"))))
        .map(|(at, link)| link_metadata(store, at, link))
        .collect();
    Ok(json!({ "links": links, "has_more": false }))
}

pub(super) fn download(store: &Store, arg: &Value) -> Result<(Value, Vec<u8>), ApiError> {
    let key = store
        .resolve(path_arg(arg, "path")?)
        .ok_or_else(|| route_error(&["path", "not_found"]))?;
    let node = &store.nodes[&key];
    if node.folder {
        return Err(route_error(&["path", "not_file"]));
    }
    Ok((node.metadata(false), node.content.clone()))
}

/// An upload's `UploadError.path`: it holds the struct `UploadWriteFailed`, whose fields Stone
/// inlines next to the tag, `{".tag": "path", "reason": <WriteError>, "upload_session_id": ..}`.
fn upload_write_failed(reason: &[&str]) -> ApiError {
    let ApiError(status, inner) = route_error(reason);
    let summary = format!(
        "path/{}",
        inner["error_summary"].as_str().unwrap_or_default()
    );
    ApiError(
        status,
        json!({ "error_summary": summary, "error": { ".tag": "path", "reason": inner["error"],
                "upload_session_id": "sbx_upload_session_0" } }),
    )
}

pub(super) fn upload(store: &mut Store, arg: &Value, body: Vec<u8>) -> Result<Value, ApiError> {
    let mut path = path_arg(arg, "path")?.to_owned();
    if path.is_empty() || path.starts_with("id:") {
        return Err(upload_write_failed(&["malformed_path"]));
    }
    let mode = arg
        .get("mode")
        .and_then(|m| m.as_str().or_else(|| m.get(".tag").and_then(Value::as_str)));
    if let Some(existing) = store.resolve(&path) {
        let folder = store.nodes[&existing].folder;
        if folder || mode != Some("overwrite") {
            if arg.get("autorename").and_then(Value::as_bool) != Some(true) {
                let what = if folder { "folder" } else { "file" };
                return Err(upload_write_failed(&["conflict", what]));
            }
            path = store.free_name(&path);
        }
    }
    let key = store.put(&path, body, &now());
    Ok(store.nodes[&key].metadata(false))
}
