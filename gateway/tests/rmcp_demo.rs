//! rmcp's own client against a running `manifold demo`: on each protocol version it connects,
//! pages through every tool, calls Linear tools, cancels a slow call and meets the errors.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use rmcp::{
    ServiceExt,
    model::{
        CallToolRequest, CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest,
        ErrorCode, Implementation, PaginatedRequestParams, ProtocolVersion,
    },
    service::{PeerRequestOptions, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use support::demo::Demo;

/// A transport to the demo signed in as alice (the demo requires OAuth tokens).
fn transport(demo: &Demo) -> StreamableHttpClientTransport<reqwest::Client> {
    let config = StreamableHttpClientTransportConfig::with_uri(demo.mcp_url.clone())
        .auth_header(demo.token("alice"));
    StreamableHttpClientTransport::from_config(config)
}

fn arguments(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

async fn exercise(demo: &Demo, version: ProtocolVersion) {
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("rmcp-test", "1"),
    )
    .with_protocol_version(version.clone());
    let client = info.serve(transport(demo)).await.unwrap();

    // Page by hand to see the pages: the demo runs with 4 tools a page.
    let mut names = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor)))
            .await
            .unwrap();
        pages += 1;
        assert!(
            page.tools.len() <= 4,
            "{version}: page over the configured size"
        );
        names.extend(page.tools.iter().map(|t| t.name.to_string()));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert!(pages >= 3, "{version}: {pages} pages");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "{version}: a tool appeared twice"
    );
    assert!(names.iter().any(|n| n == "linear_search_issues"));

    let teams = client
        .call_tool(CallToolRequestParams::new("linear_list_teams"))
        .await
        .unwrap();
    assert_eq!(teams.is_error, Some(false));
    let teams = teams.structured_content.unwrap();
    let team_id = teams["teams"][0]["id"].as_str().unwrap().to_owned();

    let title = format!("rmcp {version} smoke");
    let created = client
        .call_tool(
            CallToolRequestParams::new("linear_create_issue")
                .with_arguments(arguments(json!({"team_id": team_id, "title": title}))),
        )
        .await
        .unwrap();
    assert_eq!(created.is_error, Some(false), "{created:?}");
    let identifier = created.structured_content.unwrap()["issue"]["identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    let fetched = client
        .call_tool(
            CallToolRequestParams::new("linear_get_issue")
                .with_arguments(arguments(json!({"id": identifier}))),
        )
        .await
        .unwrap();
    assert_eq!(fetched.structured_content.unwrap()["issue"]["title"], title);

    let unknown = client
        .call_tool(CallToolRequestParams::new("linear_no_such_tool"))
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, ServiceError::McpError(e) if e.code == ErrorCode::INVALID_PARAMS),
        "{unknown:?}"
    );
    // Arguments failing the schema: a tool execution error the model reads (MCP 2025-11-25).
    let invalid = client
        .call_tool(
            CallToolRequestParams::new("linear_get_issue")
                .with_arguments(arguments(json!({"id": 7}))),
        )
        .await
        .unwrap();
    assert_eq!(invalid.is_error, Some(true), "{invalid:?}");
    let text = invalid.content[0].as_text().unwrap().text.clone();
    assert!(
        text.starts_with("invalid arguments for linear_get_issue: "),
        "{text}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rmcp_client_on_every_version_against_the_demo() {
    let demo = Demo::start(&["--tools-page-size", "4"]);
    for version in [
        ProtocolVersion::V_2024_11_05,
        ProtocolVersion::V_2025_03_26,
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_11_25,
        ProtocolVersion::V_2026_07_28,
    ] {
        exercise(&demo, version).await;
    }
}

#[tokio::test]
async fn rmcp_client_cancels_a_slow_linear_call_before_it_reaches_the_provider() {
    let demo = Demo::start(&[]);
    let http = reqwest::Client::new();
    let delay = format!("{}/linear/_sandbox/delay", demo.sandbox_url);
    let client = ().serve(transport(&demo)).await.unwrap();
    let teams = client
        .call_tool(CallToolRequestParams::new("linear_list_teams"))
        .await
        .unwrap();
    let team_id = teams.structured_content.unwrap()["teams"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The emulator holds every answer for 1.5 s before applying it; cancelling inside that
    // window must drop the upstream request, so the issue is never created.
    http.post(&delay)
        .json(&json!({"millis": 1500}))
        .send()
        .await
        .unwrap();
    let marker = format!("cancelled-{}", std::process::id());
    let create = CallToolRequestParams::new("linear_create_issue")
        .with_arguments(arguments(json!({"team_id": team_id, "title": marker})));
    let handle = client
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(create)),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    handle.cancel(Some("stop".into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    http.post(&delay)
        .json(&json!({"millis": 0}))
        .send()
        .await
        .unwrap();

    let search = client
        .call_tool(
            CallToolRequestParams::new("linear_search_issues")
                .with_arguments(arguments(json!({"query": marker}))),
        )
        .await
        .unwrap();
    let found = search.structured_content.unwrap()["issues"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(found, 0, "the cancelled create_issue reached the provider");
    client.cancel().await.unwrap();
}
