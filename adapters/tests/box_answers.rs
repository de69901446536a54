//! Contract tests of the Box emulator's answers: every JSON body it gave while the adapter ran
//! each tool (and hit the usual errors) must match the response schema Box's OpenAPI document
//! declares for that operation and status (`File--Full`, `Folder--Full`, `Items`,
//! `SearchResultsResponse`, `Files`, `ClientError`).
#![allow(clippy::expect_used)]

mod files;

use std::sync::Arc;

use manifold_adapters::boxcom::{BoxKind, sandbox::DEMO_TOKEN};
use serde_json::{Map, Value, json};

const OPENAPI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/contracts/box/openapi.json"
);

/// OpenAPI 3.0 `nullable: true` as JSON Schema: `type: [T, "null"]` (and `null` in an `enum`),
/// or `anyOf [schema, null]` when there is no `type`. `nullable: false` is dropped. Box marks
/// nullable references as `allOf: [<schema>, {}, {nullable: true}]`: that makes the whole
/// `allOf` nullable.
fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let mut nullable_member = false;
            if let Some(Value::Array(members)) = map.get_mut("allOf") {
                for member in members.iter_mut().filter_map(Value::as_object_mut) {
                    if member.get("nullable") == Some(&Value::Bool(true))
                        && !member.contains_key("type")
                    {
                        member.remove("nullable");
                        nullable_member = true;
                    }
                }
            }
            if nullable_member {
                map.insert("nullable".into(), Value::Bool(true));
            }
            for child in map.values_mut() {
                rewrite_nullable(child);
            }
            if map.remove("nullable") != Some(Value::Bool(true)) {
                return;
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.push(Value::Null);
            }
            match map.get("type").cloned() {
                Some(Value::String(t)) => {
                    map.insert("type".into(), json!([t, "null"]));
                }
                _ => {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), json!([inner, { "type": "null" }]));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}

/// Box's shared-link schema requires `accessed`, a property it never defines (its properties
/// have `access`; real shared links carry no `accessed`). Drops that one name from `required`
/// where the schema has no such property; returns how many places were patched.
fn drop_undefined_accessed(value: &mut Value) -> usize {
    match value {
        Value::Object(map) => {
            let mut patched = 0;
            let undefined = map
                .get("properties")
                .is_some_and(|p| p.get("accessed").is_none() && p.get("access").is_some());
            if let (true, Some(Value::Array(required))) = (undefined, map.get_mut("required")) {
                let before = required.len();
                required.retain(|name| name != "accessed");
                patched += before - required.len();
            }
            patched + map.values_mut().map(drop_undefined_accessed).sum::<usize>()
        }
        Value::Array(items) => items.iter_mut().map(drop_undefined_accessed).sum(),
        _ => 0,
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

/// The schema name the document declares for `method path` answering `status`.
fn declared_schema(doc: &Value, method: &str, path: &str, status: u16) -> Option<String> {
    let api_path = path
        .strip_prefix("/upload/api/2.0")
        .or_else(|| path.strip_prefix("/2.0"))
        .expect("a 2.0 API path");
    let method = method.to_lowercase();
    let operation = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(key, _)| matches_template(key.split('#').next().unwrap_or_default(), api_path))
        .find_map(|(_, item)| item.get(&method))
        .unwrap_or_else(|| panic!("{method} {api_path} is not in Box's OpenAPI"));
    let responses = &operation["responses"];
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| panic!("{method} {api_path}: no response declared for {status}"));
    response
        .pointer("/content/application~1json/schema/$ref")
        .and_then(Value::as_str)
        .map(|r| r.rsplit('/').next().unwrap_or_default().to_owned())
}

fn validator(components: &Value, name: &str) -> jsonschema::Validator {
    let schema =
        json!({ "$ref": format!("#/components/schemas/{name}"), "components": components });
    jsonschema::draft4::new(&schema).expect("schema compiles")
}

/// Runs every tool once, plus not-found, conflict and bad-input errors.
async fn exercise(env: &files::Env) {
    let call = |tool: &'static str, args: Value| async move {
        env.call(tool, args).await.expect(tool).structured
    };
    call("search_files", json!({ "query": "note", "limit": 2 })).await;
    let root = call("list_folder", json!({ "folder_id": "0", "limit": 1 })).await;
    let cursor = root["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    call(
        "list_folder",
        json!({ "folder_id": "0", "limit": 1, "cursor": cursor }),
    )
    .await;
    call("get_item", json!({ "id": "0", "type": "folder" })).await;
    let folder = call(
        "create_folder",
        json!({ "parent_id": "0", "name": "answers" }),
    )
    .await;
    let folder_id = folder["entry"]["id"]
        .as_str()
        .expect("folder id")
        .to_owned();
    let up = call(
        "upload_file",
        json!({ "folder_id": folder_id, "name": "a.txt", "content": "hello" }),
    )
    .await;
    let id = up["entry"]["id"].as_str().expect("file id").to_owned();
    call("get_item", json!({ "id": id, "type": "file" })).await;
    call("read_file", json!({ "file_id": id })).await;
    call("move_file", json!({ "file_id": id, "name": "b.txt" })).await;
    call("create_share_link", json!({ "file_id": id })).await;
    // Errors: a name already in use (409), a missing item (404).
    let conflict = env
        .call(
            "create_folder",
            json!({ "parent_id": "0", "name": "answers" }),
        )
        .await;
    assert!(conflict.is_err());
    call("delete_file", json!({ "file_id": id })).await;
    assert!(
        env.call("read_file", json!({ "file_id": id }))
            .await
            .is_err()
    );
    assert!(
        env.call("get_item", json!({ "id": "999999", "type": "folder" }))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn box_answers_match_openapi_response_schemas() {
    let env = files::start_recording(Arc::new(BoxKind), DEMO_TOKEN).await;
    exercise(&env).await;
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(OPENAPI).expect("openapi")).expect("json");
    rewrite_nullable(&mut doc["components"]);
    assert!(
        drop_undefined_accessed(&mut doc["components"]) > 0,
        "the spec defect is gone"
    );
    // The 409 of `POST /folders` documents `item_name_in_use`, which `ClientError.code`'s enum
    // lacks: allow the code the operation itself documents.
    let described = doc["paths"]["/folders"]["post"]["responses"]["409"]["description"]
        .as_str()
        .expect("409 description");
    assert!(described.contains("`item_name_in_use`"));
    doc["components"]["schemas"]["ClientError"]["properties"]["code"]["enum"]
        .as_array_mut()
        .expect("code enum")
        .push(json!("item_name_in_use"));
    let answers = env.answers.lock().expect("answers").clone();
    let mut checked: Map<String, Value> = Map::new();
    for answer in &answers {
        if answer.path.starts_with("/dl/") {
            continue; // the pre-signed download URL answers raw bytes
        }
        let declared = declared_schema(&doc, &answer.method, &answer.path, answer.status);
        let Some(name) = declared else {
            assert!(
                answer.body.is_null(),
                "{} {} {}: body where none is declared",
                answer.method,
                answer.path,
                answer.status
            );
            continue;
        };
        assert!(
            !answer.body.is_null(),
            "{} {} {}: {name} declared, no JSON body",
            answer.method,
            answer.path,
            answer.status
        );
        let errors: Vec<String> = validator(&doc["components"], &name)
            .iter_errors(&answer.body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} {} {}: not a {name}: {errors:#?}\n{}",
            answer.method,
            answer.path,
            answer.status,
            answer.body
        );
        let count = checked.get(&name).and_then(Value::as_u64).unwrap_or(0);
        checked.insert(name, json!(count + 1));
    }
    for name in [
        "SearchResultsResponse",
        "Items",
        "Folder--Full",
        "File--Full",
        "Files",
        "ClientError",
    ] {
        assert!(
            checked.contains_key(name),
            "no {name} answer checked: {checked:?}"
        );
    }
    // The shared-link variant of a file: `shared_link` set, with a URL.
    let shared = answers
        .iter()
        .find(|a| a.method == "PUT" && a.body["shared_link"].is_object())
        .expect("a shared-link answer");
    assert!(shared.body["shared_link"]["url"].is_string());
}
