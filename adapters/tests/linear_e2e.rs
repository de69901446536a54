//! End-to-end: each Linear tool through the adapter against the running emulator.
#![allow(clippy::expect_used)]

mod common;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use manifold_adapters::ToolError;
use serde_json::{Value, json};

fn ids(output: &Value, key: &str) -> Vec<String> {
    output[key]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn tool_schemas_are_object_schemas() {
    let env = common::start().await;
    let tools = env.adapter.tools().current();
    assert_eq!(tools.len(), 9);
    for tool in tools {
        for schema in [&tool.input_schema, &tool.output_schema] {
            assert_eq!(schema["type"], "object", "{}", tool.name);
            jsonschema::validator_for(&Value::Object(schema.clone())).expect("schema compiles");
        }
        assert_eq!(
            tool.input_schema["additionalProperties"], false,
            "{}",
            tool.name
        );
        assert!(
            tool.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
        );
        assert_eq!(
            tool.annotations.read_only,
            tool.name.starts_with("list_")
                || tool.name.ends_with("_issues") && !tool.name.starts_with("create")
                || tool.name == "get_issue"
        );
    }
}

#[tokio::test]
async fn pages_through_all_issues_without_duplicates() {
    let env = common::start().await;
    let mut seen = HashSet::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let mut args = json!({ "first": 20 });
        if !cursor.is_null() {
            args["cursor"] = cursor.clone();
        }
        let out = env
            .call("list_issues", args)
            .await
            .expect("page")
            .structured;
        pages += 1;
        for id in ids(&out, "issues") {
            assert!(seen.insert(id), "duplicate issue across pages");
        }
        cursor = out["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), 75);
}

#[tokio::test]
async fn list_issues_filters_by_names() {
    let env = common::start().await;
    let out = env
        .call("list_issues", json!({ "team": "eng", "first": 100 }))
        .await
        .expect("eng")
        .structured;
    let issues = out["issues"].as_array().expect("issues");
    assert_eq!(issues.len(), 45);
    assert!(issues.iter().all(|i| i["team"]["key"] == "ENG"));
    let mine = env
        .call(
            "list_issues",
            json!({ "assignee": "me", "state": "started", "first": 100 }),
        )
        .await
        .expect("mine")
        .structured;
    for issue in mine["issues"].as_array().expect("issues") {
        assert_eq!(issue["assignee"]["name"], "Alice Anderson");
        assert!(
            ["In Progress", "In Review"].contains(&issue["state"]["name"].as_str().expect("state"))
        );
    }
    let bugs = env
        .call(
            "list_issues",
            json!({ "label": "Bug", "project": "Mobile App" }),
        )
        .await
        .expect("bugs")
        .structured;
    for issue in bugs["issues"].as_array().expect("issues") {
        assert!(
            issue["labels"]
                .as_array()
                .expect("labels")
                .iter()
                .any(|l| l["name"] == "Bug")
        );
        assert_eq!(issue["project"]["name"], "Mobile App");
    }
}

#[tokio::test]
async fn search_get_create_update_comment() {
    let env = common::start().await;
    let found = env
        .call("search_issues", json!({ "query": "billing export" }))
        .await
        .expect("search");
    let hits = found.structured["issues"].as_array().expect("hits").clone();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| {
        h["title"]
            .as_str()
            .expect("title")
            .contains("billing export")
    }));
    let identifier = hits[0]["identifier"]
        .as_str()
        .expect("identifier")
        .to_owned();

    let issue = env
        .call("get_issue", json!({ "id": identifier }))
        .await
        .expect("get");
    assert_eq!(issue.structured["issue"]["identifier"], identifier);
    assert!(issue.text.contains(&identifier));

    let teams = env
        .call("list_teams", json!({}))
        .await
        .expect("teams")
        .structured;
    let eng = teams["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .find(|t| t["key"] == "ENG")
        .expect("ENG")
        .clone();
    let states = env
        .call("list_workflow_states", json!({ "team": "ENG" }))
        .await
        .expect("states")
        .structured;
    assert_eq!(states["states"].as_array().expect("states").len(), 6);
    let done = states["states"]
        .as_array()
        .expect("states")
        .iter()
        .find(|s| s["name"] == "Done")
        .expect("Done")["id"]
        .clone();
    let projects = env
        .call("list_projects", json!({ "team": "DES" }))
        .await
        .expect("projects")
        .structured;
    assert_eq!(projects["projects"].as_array().expect("projects").len(), 2);

    let created = env.call("create_issue", json!({
        "team_id": eng["id"], "title": "Sandbox created issue", "description": "From the test", "priority": 2,
        "label_ids": [eng["labels"][0]["id"]], "assignee_id": eng["members"][0]["id"],
    })).await.expect("create").structured;
    let new = &created["issue"];
    assert_eq!(new["identifier"], "ENG-46");
    assert_eq!(new["state"]["name"], "Todo");
    assert_eq!(new["priority_label"], "High");

    let updated = env
        .call(
            "update_issue",
            json!({ "id": "ENG-46", "state_id": done, "title": "Renamed", "assignee_id": null }),
        )
        .await
        .expect("update")
        .structured;
    assert_eq!(updated["issue"]["title"], "Renamed");
    assert_eq!(updated["issue"]["state"]["name"], "Done");
    assert!(updated["issue"]["assignee"].is_null());

    let comment = env
        .call(
            "add_comment",
            json!({ "issue_id": "ENG-46", "body": "Looks good" }),
        )
        .await
        .expect("comment")
        .structured;
    assert_eq!(comment["comment"]["issue"]["identifier"], "ENG-46");
    assert_eq!(comment["comment"]["author"]["name"], "Alice Anderson");
    let again = env
        .call("get_issue", json!({ "id": "ENG-46" }))
        .await
        .expect("get")
        .structured;
    assert_eq!(again["issue"]["comments"][0]["body"], "Looks good");
}

#[tokio::test]
async fn errors_map_to_tool_errors() {
    let env = common::start().await;
    assert!(matches!(
        env.call("get_issue", json!({ "id": "ENG-9999" })).await,
        Err(ToolError::NotFound(_))
    ));
    assert!(matches!(
        env.call("list_issues", json!({ "cursor": "bogus" })).await,
        Err(ToolError::InvalidArguments(_))
    ));
    let page = env
        .call("list_teams", json!({ "first": 1 }))
        .await
        .expect("teams")
        .structured;
    let foreign = page["next_cursor"].clone();
    assert!(matches!(
        env.call("list_issues", json!({ "cursor": foreign })).await,
        Err(ToolError::InvalidArguments(_))
    ));
    assert!(matches!(
        env.call_with("list_teams", json!({}), &common::ctx(None))
            .await,
        Err(ToolError::Unauthorized(_))
    ));
    let bad = common::ctx(Some("lin_api_wrong"));
    assert!(
        matches!(env.call_with("list_teams", json!({}), &bad).await, Err(ToolError::Unauthorized(m)) if !m.contains("lin_api_wrong"))
    );
    assert!(matches!(
        env.call("create_issue", json!({ "team_id": "nope", "title": "x" }))
            .await,
        Err(ToolError::NotFound(_))
    ));
    assert!(matches!(
        env.call("nope", json!({})).await,
        Err(ToolError::UnknownTool(_))
    ));
}

#[tokio::test]
async fn retries_after_rate_limit() {
    let env = common::start().await;
    env.control(
        "/_sandbox/throttle",
        json!({ "fail_next": 2, "retry_after_secs": 0 }),
    )
    .await;
    let out = env
        .call("list_teams", json!({}))
        .await
        .expect("succeeds after retries");
    assert_eq!(out.structured["teams"].as_array().expect("teams").len(), 3);
    env.control(
        "/_sandbox/throttle",
        json!({ "fail_next": 10, "retry_after_secs": 0 }),
    )
    .await;
    assert!(matches!(
        env.call("list_teams", json!({})).await,
        Err(ToolError::RateLimited { .. })
    ));
}

#[tokio::test]
async fn cancellation_is_prompt() {
    let env = common::start().await;
    env.control("/_sandbox/delay", json!({ "millis": 5000 }))
        .await;
    let ctx = common::ctx(Some(common::ALICE));
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let result = env.call_with("list_teams", json!({}), &ctx).await;
    assert!(matches!(result, Err(ToolError::Cancelled)));
    assert!(started.elapsed() < Duration::from_secs(2));
}
