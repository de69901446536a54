//! The whole gateway with the Dropbox and Box adapters against their sandbox emulators, over
//! MCP with rmcp's client: every tool listed with its prefix, annotations and output schema;
//! a read and a write tool of each kind called, `structuredContent` checked against the
//! tool's `outputSchema`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, path::Path};

use manifold::app;
use manifold_adapters::Registry;
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, Tool},
    service::{RoleClient, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};

fn config(data_dir: &Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
tools_page_size = 5

[storage]
data_dir = "{}"

[adapters.dropbox]
kind = "dropbox"
sandbox = true
[adapters.dropbox.credentials]
token = "{}"

[adapters.box]
kind = "box"
sandbox = true
[adapters.box.credentials]
token = "{}"
"#,
        data_dir.display(),
        manifold_adapters::dropbox::sandbox::DEMO_TOKEN,
        manifold_adapters::boxcom::sandbox::DEMO_TOKEN,
    )
}

/// Calls `name`; the call must succeed and its `structuredContent` match the `outputSchema`.
async fn call(
    client: &RunningService<RoleClient, ()>,
    tools: &HashMap<String, Tool>,
    name: &str,
    arguments: Value,
) -> Value {
    let params = CallToolRequestParams::new(name.to_owned())
        .with_arguments(arguments.as_object().unwrap().clone());
    let result = client.call_tool(params).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{name}: {result:?}");
    let structured = result.structured_content.expect("structuredContent");
    let schema = Value::Object(
        tools[name]
            .output_schema
            .as_deref()
            .expect("outputSchema")
            .clone(),
    );
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&structured)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{structured}");
    structured
}

#[tokio::test]
async fn dropbox_and_box_through_the_gateway_over_mcp() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::builtin();
    let source = config(dir.path());
    let path = Path::new("files.toml");
    let config = manifold::config::load_str(&source, path, &registry, &[]).unwrap();
    let running = app::start(config, &source, path, &registry).await.unwrap();
    let url = format!("http://{}/mcp", running.addr);
    let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();

    let listed = client.list_all_tools().await.unwrap();
    let tools: HashMap<String, Tool> = listed
        .into_iter()
        .map(|t| (t.name.to_string(), t))
        .collect();
    let count = |prefix: &str| tools.keys().filter(|n| n.starts_with(prefix)).count();
    assert_eq!(
        (count("dropbox_"), count("box_"), tools.len()),
        (9, 9, 18),
        "{:?}",
        tools.keys()
    );
    for (name, tool) in &tools {
        let a = tool.annotations.as_ref().expect("annotations");
        assert!(
            a.read_only_hint.is_some()
                && a.destructive_hint.is_some()
                && a.idempotent_hint.is_some()
                && a.open_world_hint.is_some(),
            "{name}: {a:?}"
        );
        assert!(tool.output_schema.is_some(), "{name}: no outputSchema");
    }
    for read in ["dropbox_list_folder", "dropbox_read_file", "box_read_file"] {
        assert_eq!(
            tools[read].annotations.as_ref().unwrap().read_only_hint,
            Some(true)
        );
    }
    assert_eq!(
        tools["box_upload_file"]
            .annotations
            .as_ref()
            .unwrap()
            .read_only_hint,
        Some(false)
    );

    // Dropbox: list, read, upload, read back.
    let root = call(&client, &tools, "dropbox_list_folder", json!({})).await;
    assert!(
        root["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "Reports")
    );
    let csv = call(
        &client,
        &tools,
        "dropbox_read_file",
        json!({ "path": "/Reports/sales.csv" }),
    )
    .await;
    assert!(csv["text"].as_str().unwrap().contains("north,1200"));
    call(
        &client,
        &tools,
        "dropbox_upload_file",
        json!({ "path": "/gateway/hello.txt", "content": "hello from the gateway" }),
    )
    .await;
    let back = call(
        &client,
        &tools,
        "dropbox_read_file",
        json!({ "path": "/gateway/hello.txt" }),
    )
    .await;
    assert_eq!(back["text"], "hello from the gateway");

    // Box: list the root, upload, read back.
    let root = call(
        &client,
        &tools,
        "box_list_folder",
        json!({ "folder_id": "0" }),
    )
    .await;
    assert!(!root["entries"].as_array().unwrap().is_empty());
    let up = call(
        &client,
        &tools,
        "box_upload_file",
        json!({ "folder_id": "0", "name": "gateway.txt", "content": "hello from the gateway" }),
    )
    .await;
    let id = up["entry"]["id"].as_str().unwrap().to_owned();
    let back = call(&client, &tools, "box_read_file", json!({ "file_id": id })).await;
    assert_eq!(back["text"], "hello from the gateway");

    client.cancel().await.unwrap();
    running.shutdown.cancel();
}
