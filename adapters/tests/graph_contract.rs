//! Contract tests against Microsoft's OpenAPI description of Graph v1.0
//! (shared/contracts/microsoft-graph/graph-v1.0-connector-subset.openapi.json): every request the
//! Outlook, Teams and SharePoint tools send is a (method, path) Graph defines, and the emulator's
//! JSON answers to them match the operation's `2XX` response schema.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod graph_support;

use std::collections::HashMap;

use graph_support::{ALICE, paths};
use serde_json::{Map, Value, json};

/// Graph components made checkable by a plain JSON Schema validator (see the contracts README):
/// `additionalProperties` is dropped (Graph puts `{type: object}` on `allOf` base types, which
/// would reject every property of the sibling branch), OpenAPI's `nullable: true` becomes a
/// `null` alternative, and `oneOf` becomes `anyOf` (Graph's numeric unions `number | string |
/// ReferenceNumeric` all admit `null` once nullable is honoured, so they are not exclusive).
fn prepare(value: &mut Value, in_properties: bool) {
    match value {
        Value::Object(map) if in_properties => {
            for child in map.values_mut() {
                prepare(child, false);
            }
        }
        Value::Object(map) => {
            map.remove("additionalProperties");
            if let Some(one_of) = map.remove("oneOf") {
                map.insert("anyOf".into(), one_of);
            }
            for (key, child) in map.iter_mut() {
                prepare(child, key == "properties");
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                nullable(map);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| prepare(item, false)),
        _ => {}
    }
}

fn nullable(map: &mut Map<String, Value>) {
    if let Some(Value::Array(options)) = map.get_mut("enum") {
        options.push(Value::Null);
    }
    match map.get("type").cloned() {
        Some(Value::String(ty)) => {
            map.insert("type".into(), json!([ty, "null"]));
        }
        Some(_) => {}
        None => {
            let inner = std::mem::take(map);
            map.insert("anyOf".into(), json!([inner, { "type": "null" }]));
        }
    }
}

struct Contract {
    spec: Value,
    components: Value,
}

impl Contract {
    fn load() -> Self {
        let spec = paths::contract("graph-v1.0-connector-subset.openapi.json");
        let mut components = spec["components"].clone();
        prepare(&mut components, false);
        Self { spec, components }
    }

    fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let key = paths::template(&self.spec, path)?;
        let op = self.spec["paths"][&key].get(method.to_ascii_lowercase())?;
        Some((key, op))
    }

    /// The JSON schema of the operation's `2XX` answer, or `None` when it has no JSON body
    /// (file content, 202/204 actions).
    fn response_schema(&self, op: &Value) -> Option<Value> {
        let mut response = op["responses"].get("2XX")?;
        if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
            let name = reference.strip_prefix("#/components/responses/")?;
            response = &self.spec["components"]["responses"][name];
        }
        let mut schema = response
            .pointer("/content/application~1json/schema")?
            .clone();
        prepare(&mut schema, false);
        Some(json!({ "allOf": [schema], "components": self.components }))
    }
}

#[test]
fn prepared_schemas_accept_null_and_still_reject_wrong_types() {
    let contract = Contract::load();
    let (_, op) = contract
        .operation("GET", "/me/messages")
        .expect("GET messages is in the subset");
    let schema = contract.response_schema(op).expect("JSON answer");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let good = json!({ "value": [{ "id": "m1", "isRead": false, "subject": null,
        "from": { "emailAddress": { "address": "a@b.example", "name": null } } }] });
    assert!(
        validator.is_valid(&good),
        "{:?}",
        validator.validate(&good).err()
    );
    assert!(!validator.is_valid(&json!({ "value": [{ "id": "m1", "isRead": "no" }] })));
    assert!(!validator.is_valid(&json!({ "value": [{ "id": 7 }] })));
    assert!(!validator.is_valid(&json!({ "value": {} })));
}

#[tokio::test]
async fn every_request_is_a_graph_operation_and_every_answer_matches_its_schema() {
    let contract = Contract::load();
    let env = graph_support::start().await;
    let recorded = env.run_every_tool().await;
    let mut validators: HashMap<String, jsonschema::Validator> = HashMap::new();
    let (mut checked, mut validated, mut chunks) = (0, 0, 0);
    for call in &recorded {
        for request in &call.requests {
            let method = request["method"].as_str().unwrap();
            let path = request["path"].as_str().unwrap();
            let query = request["query"].as_str().unwrap_or_default();
            let what = format!("{}.{}: {method} {path}", call.kind, call.tool);
            if paths::is_upload_chunk(path) {
                assert_eq!(
                    (call.tool.as_str(), method),
                    ("upload_file", "PUT"),
                    "{what}"
                );
                chunks += 1;
                continue;
            }
            let (key, op) = contract
                .operation(method, path)
                .unwrap_or_else(|| panic!("{what} is not an operation of Graph v1.0"));
            checked += 1;
            // Replay the reads (GET, and the read-only POST /search/query) to see the answer.
            let read = method == "GET" || key == "/search/query";
            let Some(schema) = contract.response_schema(op).filter(|_| read) else {
                continue;
            };
            let url = format!("{}{path}?{query}", env.base);
            let builder = if method == "GET" {
                env.http.get(url)
            } else {
                env.http.post(url).json(&request["body"])
            };
            let answer = builder.bearer_auth(ALICE).send().await.unwrap();
            assert!(answer.status().is_success(), "{what}: {}", answer.status());
            let body: Value = answer.json().await.unwrap();
            let validator = validators
                .entry(format!("{method} {key}"))
                .or_insert_with(|| jsonschema::validator_for(&schema).expect("schema compiles"));
            let errors: Vec<String> = validator
                .iter_errors(&body)
                .take(5)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{what} ({key}): {errors:?}");
            validated += 1;
        }
    }
    assert!(chunks >= 2, "the 5 MB upload went through a session");
    assert!(
        checked >= 40 && validated >= 20,
        "{checked} checked, {validated} validated"
    );
    eprintln!("{checked} checked, {validated} validated, {chunks} chunks");
}
