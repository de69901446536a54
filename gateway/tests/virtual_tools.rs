//! Tool virtualization through the whole gateway, over MCP against the Linear emulator: an
//! instance renames `create_issue` to `file_bug` and pins its team. Clients list and call the new
//! name without a team argument; the issue lands in the pinned team; a caller naming a team is
//! refused; Cedar decides on the original name with the pinned team in `context.args`; and the
//! audit record names both tools and holds the pinned arguments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use manifold::app;
use manifold_adapters::Registry;
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::{RoleClient, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};

/// ENG's team id in the Linear emulator.
const ENG: &str = "00000002-0000-4000-8000-000000000000";
/// OPS's.
const OPS: &str = "00000002-0000-4000-8000-000000000002";

/// Policies written for the tool's original name: any team but the pinned one is refused (so a
/// call passes only if the policy sees the pin), and draft titles are refused.
const POLICIES: &str = r#"
@id("open")
@reason("test")
permit (principal, action, resource);

@id("eng-only")
@reason("bugs go to ENG")
forbid (principal, action == Action::"call", resource == Tool::"linear_create_issue")
unless { context.args has team_id && context.args.team_id == "00000002-0000-4000-8000-000000000000" };

@id("no-drafts")
@reason("no draft issues")
forbid (principal, action == Action::"call", resource == Tool::"linear_create_issue")
when { context.args has title && context.args.title == "draft" };
"#;

fn config(data_dir: &Path, policies: &Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[storage]
data_dir = "{}"

[policy]
dir = "{}"
watch = false
audit_include_args = true

[adapters.linear]
kind = "linear"
sandbox = true
tools = ["create_issue", "list_teams"]
[adapters.linear.credentials]
token = "lin_api_sandbox_alice"

[adapters.linear.overrides.create_issue]
name = "file_bug"
title = "File a bug"
description = "Files a bug for the Engineering team."
pin = {{ team_id = "{ENG}" }}
"#,
        data_dir.display(),
        policies.display(),
    )
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    name: &str,
    arguments: Value,
) -> CallToolResult {
    let params = CallToolRequestParams::new(name.to_owned())
        .with_arguments(arguments.as_object().unwrap().clone());
    client.call_tool(params).await.unwrap()
}

fn text(result: &CallToolResult) -> String {
    result.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_renamed_linear_tool_files_into_its_pinned_team_and_policies_see_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("rules.cedar"), POLICIES).unwrap();
    let registry = Registry::builtin();
    let source = config(dir.path(), policies.path());
    let path = Path::new("virtual.toml");
    let config = manifold::config::load_str(&source, path, &registry, &[]).unwrap();
    let running = app::start(config, &source, path, &registry).await.unwrap();
    let url = format!("http://{}/mcp", running.addr);
    let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"linear_file_bug"), "{names:?}");
    assert!(!names.contains(&"linear_create_issue"), "{names:?}");
    let file_bug = tools.iter().find(|t| t.name == "linear_file_bug").unwrap();
    assert_eq!(file_bug.title.as_deref(), Some("File a bug"));
    assert!(file_bug.input_schema["properties"].get("team_id").is_none());
    assert_eq!(file_bug.input_schema["required"], json!(["title"]));

    // The pinned team reaches the provider, and the policy allowed it only because it saw it.
    let filed = call(
        &client,
        "linear_file_bug",
        json!({"title": "Crash on start"}),
    )
    .await;
    assert_ne!(filed.is_error, Some(true), "{filed:?}");
    let issue = &filed.structured_content.as_ref().unwrap()["issue"];
    assert_eq!(issue["team"]["id"], ENG, "{issue}");
    assert!(issue["identifier"].as_str().unwrap().starts_with("ENG-"));

    // A caller naming a team is refused, before any policy or provider, under the name it called.
    let refused = call(
        &client,
        "linear_file_bug",
        json!({"title": "Elsewhere", "team_id": OPS}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true), "{refused:?}");
    let refused = text(&refused);
    assert!(
        refused.contains("invalid arguments for linear_file_bug")
            && refused.contains("team_id: this argument is fixed"),
        "{refused}"
    );

    // A rule on the original name applies to the renamed tool.
    let draft = call(&client, "linear_file_bug", json!({"title": "draft"})).await;
    assert_eq!(draft.is_error, Some(true));
    assert!(text(&draft).contains("no draft issues"), "{draft:?}");

    client.cancel().await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let records: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|record: &Value| record["action"] == "call")
        .collect();
    assert_eq!(records.len(), 3, "{log}");
    for record in &records {
        assert_eq!(record["tool"], "linear_create_issue", "{record}");
        assert_eq!(record["tool_exposed"], "linear_file_bug", "{record}");
    }
    assert_eq!(records[0]["outcome"], "ok");
    assert_eq!(records[0]["args"]["team_id"], ENG, "{}", records[0]);
    assert_eq!(records[1]["outcome"], "invalid_arguments");
    assert_eq!(records[2]["outcome"], "denied");
    assert_eq!(records[2]["policies"], json!(["no-drafts"]));
    assert_eq!(records[2]["args"]["team_id"], ENG, "{}", records[2]);
    // Records with the new field still verify.
    let bin =
        std::env::var("MANIFOLD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_manifold").to_owned());
    let verify = std::process::Command::new(bin)
        .args(["audit", "verify"])
        .arg(dir.path().join("audit.jsonl"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
