//! The fixture over stdio, driven by rmcp's own client: the conformance suite only speaks HTTP,
//! so this is what shows `mcp-fixture --stdio` answers the same catalogue.

use rmcp::{
    RoleClient, ServiceExt as _,
    model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams},
    service::RunningService,
    transport::TokioChildProcess,
};

async fn start() -> RunningService<RoleClient, ()> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-fixture"));
    command.arg("--stdio");
    let transport = TokioChildProcess::new(command).expect("spawn mcp-fixture --stdio");
    ().serve(transport)
        .await
        .expect("handshake with the stdio fixture")
}

#[tokio::test]
async fn the_stdio_fixture_lists_its_tools_and_answers_test_simple_text() {
    let client = start().await;

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    for expected in [
        "test_simple_text",
        "test_image_content",
        "test_tool_with_progress",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    let result = client
        .call_tool(CallToolRequestParams::new("test_simple_text"))
        .await
        .expect("tools/call test_simple_text");
    let text = result
        .content
        .first()
        .and_then(|content| content.as_text())
        .map(|text| text.text.as_str());
    assert_eq!(text, Some("This is a simple text response for testing."));
    assert_ne!(result.is_error, Some(true));

    client.cancel().await.expect("close the stdio session");
}

#[tokio::test]
async fn the_stdio_fixture_serves_the_static_resource_and_the_simple_prompt() {
    let client = start().await;

    let resource = client
        .read_resource(ReadResourceRequestParams::new("test://static-text"))
        .await
        .expect("resources/read test://static-text");
    let body = serde_json::to_value(&resource.contents).expect("contents serialize");
    assert_eq!(
        body[0]["text"],
        "This is the content of the static text resource."
    );

    let prompt = client
        .get_prompt(GetPromptRequestParams::new("test_simple_prompt"))
        .await
        .expect("prompts/get test_simple_prompt");
    let messages = serde_json::to_value(&prompt.messages).expect("messages serialize");
    assert_eq!(
        messages[0]["content"]["text"],
        "This is a simple prompt for testing."
    );

    client.cancel().await.expect("close the stdio session");
}
