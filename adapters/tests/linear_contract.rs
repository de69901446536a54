//! Contract tests against Linear's published schema (shared/contracts/linear/schema.graphql):
//! every document the adapter can send validates, the emulator's schema is a faithful subset,
//! and the emulator's answers have the types the real schema declares.
#![allow(clippy::expect_used)]

mod common;

use apollo_compiler::{
    ExecutableDocument, Schema, ast::Type, schema::ExtendedType, validation::Valid,
};
use manifold_adapters::linear::{queries, sandbox};
use serde_json::{Value, json};

fn linear_schema() -> Valid<Schema> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/contracts/linear/schema.graphql"
    );
    let sdl =
        std::fs::read_to_string(path).expect("Linear's schema is checked out next to the repo");
    Schema::parse_and_validate(sdl, path).expect("Linear's schema is valid")
}

#[test]
fn every_adapter_document_validates_against_linear_schema() {
    let schema = linear_schema();
    assert_eq!(queries::ALL.len(), 9);
    for (name, document) in queries::ALL {
        let doc =
            ExecutableDocument::parse_and_validate(&schema, *document, format!("{name}.graphql"))
                .unwrap_or_else(|e| panic!("{name} does not validate:\n{}", e.errors));
        assert!(
            doc.operations.get(Some(name)).is_ok(),
            "{name} names its operation {name}"
        );
    }
}

#[test]
fn emulator_schema_is_a_subset_of_linear_schema() {
    let real = linear_schema();
    let subset =
        Schema::parse_and_validate(sandbox::SCHEMA, "subset.graphql").expect("subset valid");
    for (name, ty) in &subset.types {
        if ty.is_built_in() {
            continue;
        }
        let real_ty = real
            .types
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in Linear's schema"));
        match (ty, real_ty) {
            (ExtendedType::Object(o), ExtendedType::Object(r)) => {
                for (field, def) in &o.fields {
                    let real_def = r
                        .fields
                        .get(field)
                        .unwrap_or_else(|| panic!("{name}.{field} not in Linear"));
                    assert_eq!(def.ty, real_def.ty, "{name}.{field}");
                }
            }
            (ExtendedType::InputObject(o), ExtendedType::InputObject(r)) => {
                for (field, def) in &o.fields {
                    let real_def = r
                        .fields
                        .get(field)
                        .unwrap_or_else(|| panic!("{name}.{field} not in Linear"));
                    assert_eq!(def.ty, real_def.ty, "{name}.{field}");
                }
            }
            (a, b) => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "{name} kind"
            ),
        }
    }
}

/// Checks `value` against the type `ty` of Linear's schema, recursing into objects and lists.
fn check(schema: &Schema, ty: &Type, value: &Value, path: &str) {
    if value.is_null() {
        assert!(!ty.is_non_null(), "{path}: null for non-null {ty}");
        return;
    }
    if ty.is_list() {
        let items = value
            .as_array()
            .unwrap_or_else(|| panic!("{path}: expected a list for {ty}"));
        for (i, item) in items.iter().enumerate() {
            check(schema, ty.item_type(), item, &format!("{path}[{i}]"));
        }
        return;
    }
    let name = ty.inner_named_type();
    match schema
        .types
        .get(name)
        .unwrap_or_else(|| panic!("{path}: unknown type {name}"))
    {
        ExtendedType::Object(object) => {
            let map = value
                .as_object()
                .unwrap_or_else(|| panic!("{path}: expected an object {name}"));
            for (key, field_value) in map {
                let def = object
                    .fields
                    .get(key.as_str())
                    .unwrap_or_else(|| panic!("{path}.{key} is not a field of {name}"));
                check(schema, &def.ty, field_value, &format!("{path}.{key}"));
            }
        }
        ExtendedType::Enum(e) => {
            let v = value.as_str().unwrap_or_default();
            assert!(e.values.contains_key(v), "{path}: {v} is not a {name}");
        }
        ExtendedType::Scalar(_) => {
            let ok = match name.as_str() {
                "Int" => value.is_i64() || value.is_u64(),
                "Float" => value.is_number(),
                "Boolean" => value.is_boolean(),
                "String" | "ID" | "DateTime" | "TimelessDate" => value.is_string(),
                _ => true,
            };
            assert!(ok, "{path}: {value} is not a {name}");
        }
        _ => panic!("{path}: unexpected type kind of {name}"),
    }
}

#[tokio::test]
async fn emulator_answers_match_linear_types() {
    let env = common::start().await;
    env.call("list_issues", json!({ "first": 5 }))
        .await
        .expect("list");
    env.call("search_issues", json!({ "query": "fix", "first": 3 }))
        .await
        .expect("search");
    env.call("get_issue", json!({ "id": "ENG-3" }))
        .await
        .expect("get");
    env.call("list_teams", json!({})).await.expect("teams");
    env.call("list_projects", json!({}))
        .await
        .expect("projects");
    env.call("list_workflow_states", json!({ "team": "OPS" }))
        .await
        .expect("states");
    let team = env
        .call("list_teams", json!({}))
        .await
        .expect("teams")
        .structured["teams"][0]["id"]
        .clone();
    env.call(
        "create_issue",
        json!({ "team_id": team, "title": "Contract" }),
    )
    .await
    .expect("create");
    env.call("update_issue", json!({ "id": "ENG-3", "priority": 1 }))
        .await
        .expect("update");
    env.call("add_comment", json!({ "issue_id": "ENG-3", "body": "hi" }))
        .await
        .expect("comment");

    let schema = linear_schema();
    let recorded: Vec<Value> = env
        .http
        .get(env.url("/_sandbox/requests"))
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    let mut operations = std::collections::BTreeSet::new();
    for request in recorded {
        let name = request["operationName"]
            .as_str()
            .expect("named operation")
            .to_owned();
        let document = request["query"].as_str().expect("query");
        assert!(
            queries::ALL
                .iter()
                .any(|(n, d)| *n == name && *d == document),
            "unknown document {name}"
        );
        // Replaying a mutation would change the store again, which is fine for a shape check.
        let answer: Value = env
            .http
            .post(env.url("/graphql"))
            .header("authorization", common::ALICE)
            .json(&request)
            .send()
            .await
            .expect("replay")
            .json()
            .await
            .expect("json");
        assert!(answer.get("errors").is_none(), "{name}: {answer}");
        let root = if document.trim_start().starts_with("mutation") {
            "Mutation"
        } else {
            "Query"
        };
        let object = schema.get_object(root).expect("root type");
        for (field, value) in answer["data"].as_object().expect("data") {
            let def = object.fields.get(field.as_str()).expect("root field");
            check(&schema, &def.ty, value, &format!("{name}.{field}"));
        }
        operations.insert(name);
    }
    assert_eq!(
        operations.len(),
        queries::ALL.len(),
        "every operation was exercised: {operations:?}"
    );
}

#[tokio::test]
async fn emulator_rejects_unknown_fields_like_linear() {
    let env = common::start().await;
    let answer: Value = env
        .http
        .post(env.url("/graphql"))
        .header("authorization", common::ALICE)
        .json(&json!({ "query": "{ teams { nodes { id nonsense } } }" }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert!(answer["data"].is_null());
    let error = &answer["errors"][0];
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("nonsense"),
        "{answer}"
    );
    assert_eq!(error["extensions"]["type"], "graphql error");
    // Aliases and inline fragments go through the generic resolver too.
    let answer: Value = env.http.post(env.url("/graphql")).header("authorization", common::ALICE)
        .json(&json!({ "query": "{ first: teams(first: 1) { nodes { ... on Team { k: key } } pageInfo { hasNextPage } } }" }))
        .send().await.expect("post").json().await.expect("json");
    assert_eq!(
        answer["data"]["first"]["pageInfo"]["hasNextPage"], true,
        "{answer}"
    );
    assert!(
        answer["data"]["first"]["nodes"][0]["k"].is_string(),
        "{answer}"
    );
}
