//! The whole gateway with the three Microsoft 365 kinds on the sandbox Graph emulator, seen by
//! rmcp's client over streamable HTTP: every tool listed with its prefix, annotations and output
//! schema, and reads and writes of each kind answering structured content that fits its schema.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use manifold::app;
use manifold_adapters::Registry;
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, Tool},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};

const KINDS: [&str; 3] = ["outlook", "teams", "sharepoint"];

fn config(data_dir: &Path) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\ndata_dir = \"{}\"\n",
        data_dir.display()
    );
    for kind in KINDS {
        text.push_str(&format!(
            "\n[adapters.{kind}]\nkind = \"{kind}\"\nsandbox = true\n\
             [adapters.{kind}.credentials]\ntoken = \"graph_sandbox_alice\"\n"
        ));
    }
    text
}

/// Calls `name` and checks its structured content against the tool's output schema.
async fn call(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tools: &[Tool],
    name: &str,
    arguments: Value,
) -> Value {
    let params = CallToolRequestParams::new(name.to_owned())
        .with_arguments(arguments.as_object().unwrap().clone());
    let result = client.call_tool(params).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{name}: {result:?}");
    let structured = result
        .structured_content
        .unwrap_or_else(|| panic!("{name}: no structuredContent"));
    let tool = tools.iter().find(|t| t.name == name).unwrap();
    let schema = Value::Object(tool.output_schema.as_deref().unwrap().clone());
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&structured)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{structured}");
    structured
}

#[tokio::test]
async fn outlook_teams_and_sharepoint_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::builtin();
    let source = config(dir.path());
    let path = Path::new("graph.toml");
    let config = manifold::config::load_str(&source, path, &registry, &[]).unwrap();
    let running = app::start(config, &source, path, &registry).await.unwrap();
    let url = format!("http://{}/mcp", running.addr);
    let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();

    let tools = client.list_all_tools().await.unwrap();
    for kind in KINDS {
        let count = tools
            .iter()
            .filter(|t| t.name.starts_with(&format!("{kind}_")))
            .count();
        assert!(count >= 9, "{kind}: {count} tools");
    }
    assert_eq!(tools.len(), 11 + 10 + 9, "only the three kinds' tools");
    for tool in &tools {
        let annotations = tool
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{}", tool.name));
        assert!(
            annotations.read_only_hint.is_some()
                && annotations.destructive_hint.is_some()
                && annotations.idempotent_hint.is_some()
                && annotations.open_world_hint.is_some(),
            "{}: {annotations:?}",
            tool.name
        );
        let schema = tool
            .output_schema
            .as_deref()
            .unwrap_or_else(|| panic!("{}", tool.name));
        assert_eq!(schema.get("type"), Some(&json!("object")), "{}", tool.name);
    }
    let read_only = |name: &str| {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        tool.annotations.as_ref().unwrap().read_only_hint
    };

    // Outlook: a read and a write.
    assert_eq!(read_only("outlook_list_folders"), Some(true));
    let folders = call(&client, &tools, "outlook_list_folders", json!({})).await;
    assert_eq!(folders["folders"].as_array().unwrap().len(), 5);
    assert_eq!(read_only("outlook_create_draft"), Some(false));
    let draft = call(
        &client,
        &tools,
        "outlook_create_draft",
        json!({ "subject": "From MCP", "body": "draft" }),
    )
    .await;
    assert!(draft["message"]["id"].is_string());

    // Teams.
    assert_eq!(read_only("teams_list_chats"), Some(true));
    let chats = call(&client, &tools, "teams_list_chats", json!({})).await;
    let chat = chats["chats"][0]["id"].clone();
    assert_eq!(read_only("teams_send_chat_message"), Some(false));
    call(
        &client,
        &tools,
        "teams_send_chat_message",
        json!({ "chat_id": chat, "text": "via MCP" }),
    )
    .await;
    let lines = call(
        &client,
        &tools,
        "teams_list_chat_messages",
        json!({ "chat_id": chat, "limit": 3 }),
    )
    .await;
    assert_eq!(lines["messages"][0]["text"], "via MCP");

    // SharePoint.
    assert_eq!(read_only("sharepoint_list_sites"), Some(true));
    let sites = call(&client, &tools, "sharepoint_list_sites", json!({})).await;
    let site = sites["sites"][0]["id"].clone();
    let drives = call(
        &client,
        &tools,
        "sharepoint_list_drives",
        json!({ "site_id": site }),
    )
    .await;
    let drive = drives["drives"][0]["id"].clone();
    assert_eq!(read_only("sharepoint_create_folder"), Some(false));
    let folder = call(
        &client,
        &tools,
        "sharepoint_create_folder",
        json!({ "drive_id": drive, "name": "From MCP" }),
    )
    .await;
    assert_eq!(folder["item"]["is_folder"], true);

    client.cancel().await.unwrap();
    running.shutdown.cancel();
}

/// Spellings of `..` a client or Graph may normalise to a dot segment, each padded with what a
/// server may strip: every one is refused by the adapter's path encoder, answered as a tool error
/// that says why, and no request reaches Graph.
fn dot_segment_ids() -> Vec<String> {
    const DOTS: [&str; 6] = [
        "..",
        "%2e%2E",
        "%252e.",
        "\u{FF0E}\u{FF0E}",
        "\u{2025}",
        ".\u{3002}",
    ];
    const PADDING: [&str; 5] = ["", " ", "\u{200B}", "\u{FEFF}", "%20"];
    const TAILS: [&str; 3] = ["", ";x", "/"];
    let mut ids = Vec::new();
    for dot in DOTS {
        for pad in PADDING {
            for tail in TAILS {
                ids.push(format!("{pad}{dot}{pad}{tail}"));
            }
        }
    }
    ids
}

#[tokio::test]
async fn dot_segment_ids_are_refused_before_graph_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::builtin();
    let source = config(dir.path());
    let path = Path::new("graph.toml");
    let config = manifold::config::load_str(&source, path, &registry, &[]).unwrap();
    let running = app::start(config, &source, path, &registry).await.unwrap();
    let log = format!(
        "{}/_sandbox/requests",
        running.sandbox.as_ref().unwrap().base_url("graph")
    );
    let http = reqwest::Client::new();
    let logged = || async {
        let log: Value = http.get(&log).send().await.unwrap().json().await.unwrap();
        log.as_array().unwrap().len()
    };
    let url = format!("http://{}/mcp", running.addr);
    let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();

    // The log does record what the adapters send, so an unchanged count below means something.
    let before = logged().await;
    call(&client, &tools, "teams_list_teams", json!({})).await;
    assert!(logged().await > before, "the emulator logs requests");

    let before = logged().await;
    let ids = dot_segment_ids();
    let cases = [
        ("outlook_get_message", "message_id"),
        ("teams_list_channels", "team_id"),
        ("sharepoint_get_site", "site_id"),
    ];
    for (tool, argument) in cases {
        for id in &ids {
            let params = CallToolRequestParams::new(tool.to_owned())
                .with_arguments(json!({ argument: id }).as_object().unwrap().clone());
            let result = client.call_tool(params).await.unwrap();
            assert_eq!(result.is_error, Some(true), "{tool} {id:?}: {result:?}");
            let text = serde_json::to_string(&result.content).unwrap();
            assert!(
                text.contains("dot segment") || text.contains("must not be empty"),
                "{tool} {id:?}: {text}"
            );
        }
    }
    assert_eq!(
        logged().await,
        before,
        "{} refused calls sent nothing to Graph",
        ids.len() * cases.len()
    );

    client.cancel().await.unwrap();
    running.shutdown.cancel();
}
