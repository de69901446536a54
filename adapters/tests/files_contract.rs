//! Contract tests: the requests the Dropbox and Box adapters send, as the emulators recorded
//! them, checked against the providers' official descriptions in `shared/contracts`.
#![allow(clippy::expect_used)]

mod files;

use std::{collections::HashMap, sync::Arc};

use manifold_adapters::{boxcom::BoxKind, dropbox::DropboxKind};
use serde_json::{Value, json};

const CONTRACTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/contracts");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{CONTRACTS}/{path}")).expect("contract file")
}

/// Field names of every Stone struct (own fields plus those of the struct it extends).
fn stone_structs() -> HashMap<String, Vec<String>> {
    let mut own: HashMap<String, (Option<String>, Vec<String>)> = HashMap::new();
    for file in ["files.stone", "sharing.stone"] {
        let mut current: Option<String> = None;
        for line in read(&format!("dropbox/{file}")).lines() {
            if let Some(rest) = line.strip_prefix("struct ") {
                let mut words = rest.split_whitespace();
                let name = words.next().expect("name").to_owned();
                let parent = (words.next() == Some("extends"))
                    .then(|| words.next().expect("parent").to_owned());
                own.insert(name.clone(), (parent, Vec::new()));
                current = Some(name);
            } else if !line.starts_with(' ') && !line.trim().is_empty() {
                current = None;
            } else if let (Some(name), Some(field)) = (&current, line.strip_prefix("    ")) {
                let first = field.split_whitespace().next().unwrap_or_default();
                let is_field = !field.starts_with(' ')
                    && field.split_whitespace().count() >= 2
                    && first
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                    && !["example", "doc"].contains(&first);
                if is_field {
                    own.get_mut(name).expect("struct").1.push(first.to_owned());
                }
            }
        }
    }
    own.keys()
        .map(|name| {
            let mut fields = Vec::new();
            let mut next = Some(name.clone());
            while let Some(n) = next {
                let Some((parent, own_fields)) = own.get(&n) else {
                    break;
                };
                fields.extend(own_fields.iter().cloned());
                next = parent
                    .clone()
                    .map(|p| p.rsplit('.').next().unwrap_or_default().to_owned());
            }
            (name.clone(), fields)
        })
        .collect()
}

#[tokio::test]
async fn dropbox_requests_match_routes_and_stone_arg_types() {
    let env = files::start(
        Arc::new(DropboxKind),
        manifold_adapters::dropbox::sandbox::DEMO_TOKEN,
    )
    .await;
    for (tool, args) in [
        (
            "search_files",
            json!({ "query": "note", "path": "/Archive", "limit": 2 }),
        ),
        ("list_folder", json!({ "path": "/Archive", "limit": 2 })),
        ("get_metadata", json!({ "path": "/Reports" })),
        ("read_file", json!({ "path": "/Reports/sales.csv" })),
        ("upload_file", json!({ "path": "/c/a.txt", "content": "x" })),
        ("create_folder", json!({ "path": "/c/d" })),
        (
            "move_item",
            json!({ "from_path": "/c/a.txt", "to_path": "/c/b.txt" }),
        ),
        ("create_share_link", json!({ "path": "/c/b.txt" })),
        ("delete_item", json!({ "path": "/c/b.txt" })),
    ] {
        let out = env.call(tool, args).await.expect(tool).structured;
        if let Some(cursor) = out.get("next_cursor").and_then(Value::as_str) {
            let mut next = json!({ "cursor": cursor, "limit": 2 });
            if tool == "search_files" {
                next["query"] = json!("note");
                next["path"] = json!("/Archive");
            } else {
                next["path"] = json!("/Archive");
            }
            env.call(tool, next).await.expect("continue");
        }
    }
    let routes: Value = serde_json::from_str(&read("dropbox/routes.json")).expect("routes");
    let structs = stone_structs();
    let declared: std::collections::HashSet<String> = env
        .adapter
        .tools()
        .current()
        .into_iter()
        .flat_map(|t| t.scopes)
        .collect();
    let log = env.recorded().await;
    assert!(log.len() >= 11, "{log:?}");
    for request in &log {
        let route = request["route"].as_str().expect("route");
        let spec = routes["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .find(|r| {
                r["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&format!("/2/{route}")))
            })
            .unwrap_or_else(|| panic!("{route} is not a Dropbox route"));
        assert_eq!(spec["deprecated"], false, "{route}");
        let style = spec["style"].as_str().expect("style");
        let host_is_content = spec["url"]
            .as_str()
            .expect("url")
            .starts_with("https://content.");
        assert_eq!(host_is_content, style != "rpc", "{route}");
        match style {
            "rpc" => assert_eq!(request["content_type"], "application/json", "{route}"),
            "upload" => {
                assert_eq!(
                    request["content_type"], "application/octet-stream",
                    "{route}"
                );
                assert!(request["api_arg_header"].is_string());
            }
            _ => assert!(request["api_arg_header"].is_string(), "{route}"),
        }
        assert!(
            declared.contains(spec["scope"].as_str().expect("scope")),
            "{route}: scope not declared by any tool"
        );
        let arg_type = spec["arg"].as_str().expect("arg");
        let fields = structs
            .get(arg_type)
            .unwrap_or_else(|| panic!("no struct {arg_type}"));
        for (key, value) in request["arg"].as_object().expect("arg object") {
            assert!(
                fields.contains(key),
                "{route}: `{key}` is not a field of {arg_type} ({fields:?})"
            );
            if key == "options" {
                for option in value.as_object().expect("options").keys() {
                    assert!(
                        structs["SearchOptions"].contains(option),
                        "SearchOptions has no `{option}`"
                    );
                }
            }
            if key == "settings" {
                for setting in value.as_object().expect("settings").keys() {
                    assert!(
                        structs["SharedLinkSettings"].contains(setting),
                        "SharedLinkSettings has no `{setting}`"
                    );
                }
            }
        }
    }
}

/// `/files/123/content` matches `/files/{file_id}/content`.
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

#[tokio::test]
async fn box_requests_match_openapi_paths_and_operations() {
    let env = files::start(
        Arc::new(BoxKind),
        manifold_adapters::boxcom::sandbox::DEMO_TOKEN,
    )
    .await;
    for (tool, args) in [
        ("search_files", json!({ "query": "note", "limit": 2 })),
        ("list_folder", json!({ "folder_id": "0", "limit": 2 })),
        ("get_item", json!({ "id": "0", "type": "folder" })),
        ("create_folder", json!({ "parent_id": "0", "name": "c" })),
    ] {
        env.call(tool, args).await.expect(tool);
    }
    let up = env
        .call(
            "upload_file",
            json!({ "folder_id": "0", "name": "a.txt", "content": "x" }),
        )
        .await
        .expect("upload")
        .structured;
    let id = up["entry"]["id"].as_str().expect("id").to_owned();
    for (tool, args) in [
        ("read_file", json!({ "file_id": id })),
        ("move_file", json!({ "file_id": id, "name": "b.txt" })),
        ("create_share_link", json!({ "file_id": id })),
        ("delete_file", json!({ "file_id": id })),
    ] {
        env.call(tool, args).await.expect(tool);
    }
    let doc: Value = serde_json::from_str(&read("box/openapi.json")).expect("openapi");
    let paths = doc["paths"].as_object().expect("paths");
    let mount = env.base.path().to_owned();
    let log = env.recorded().await;
    assert!(log.len() >= 10);
    for request in &log {
        let method = request["method"].as_str().expect("method").to_lowercase();
        let full = request["path"].as_str().expect("path");
        let local = full.strip_prefix(&mount).expect("under the mount");
        let (api_path, upload) = match local.strip_prefix("/upload/api/2.0") {
            Some(rest) => (rest, true),
            None => (local.strip_prefix("/2.0").expect("2.0 path"), false),
        };
        let operation = paths
            .iter()
            .filter(|(key, _)| {
                matches_template(key.split('#').next().unwrap_or_default(), api_path)
            })
            // The most specific path wins (`/files/content` over `/files/{file_id}`), whatever
            // order the document's map iterates in.
            .filter_map(|(key, item)| item.get(&method).map(|op| (key.matches('{').count(), op)))
            .min_by_key(|(templated, _)| *templated)
            .map(|(_, op)| op)
            .unwrap_or_else(|| panic!("{method} {api_path} is not in Box's OpenAPI"));
        let servers = operation["servers"].as_array();
        let on_upload_host = servers.is_some_and(|s| {
            s.iter()
                .any(|s| s["url"] == "https://upload.box.com/api/2.0")
        });
        assert_eq!(on_upload_host, upload, "{method} {api_path}: wrong host");
        if let Some(query) = request["query"].as_str() {
            let params: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    p.get("$ref")
                        .and_then(Value::as_str)
                        .map(|r| r.rsplit('/').next().unwrap_or_default().to_owned())
                        .and_then(|name| {
                            doc["components"]["parameters"][name]["name"]
                                .as_str()
                                .map(str::to_owned)
                        })
                        .or_else(|| p["name"].as_str().map(str::to_owned))
                })
                .collect();
            for (key, _) in url::form_urlencoded::parse(query.as_bytes()) {
                assert!(
                    params.contains(&key.to_string()),
                    "{method} {api_path}: unknown query parameter `{key}` ({params:?})"
                );
            }
        }
    }
}
