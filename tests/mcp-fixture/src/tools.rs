//! The test tools: the content, logging, progress, error, sampling and elicitation tools of the
//! 2025 scenarios, the diagnostic hooks of `server-stateless` (2026-07-28), and the custom-header
//! tool of `http-custom-header-server-validation`. The `input_required` tools live in `mrtr.rs`;
//! the sampling and elicitation tools ask a 2026-07-28 client in rounds too (as the gateway in
//! front of this server is such a client), and a session of the 2025 eras on its stream.
//! Names, schemas and payloads are the ones the suite checks, so they are written out as JSON.

use std::time::Duration;

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock,
        CreateMessageRequest, CreateMessageRequestParams, ElicitRequest, ElicitRequestParams,
        ElicitResult, InputRequest, InputRequiredResult, LoggingLevel, ProgressNotificationParam,
        ProtocolVersion, ResourceContents, SamplingMessage, Tool,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use crate::{
    mrtr,
    server::{Change, Fixture, log},
};

/// 1x1 red PNG.
pub const TEST_IMAGE_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// Minimal WAV file.
pub const TEST_AUDIO_BASE64: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

fn tool(name: &str, description: &str, input_schema: Value) -> Tool {
    serde_json::from_value(json!({
        "name": name,
        "description": description,
        "inputSchema": input_schema,
    }))
    .expect("static tool definitions are valid")
}

fn no_arguments() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn one_string(name: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": { name: { "type": "string", "description": description } },
        "required": [name]
    })
}

/// Every tool, in a stable order.
pub fn all() -> Vec<Tool> {
    let mut tools = vec![
        tool(
            "test_simple_text",
            "Tests simple text content response",
            no_arguments(),
        ),
        tool(
            "test_image_content",
            "Tests image content response",
            no_arguments(),
        ),
        tool(
            "test_audio_content",
            "Tests audio content response",
            no_arguments(),
        ),
        tool(
            "test_embedded_resource",
            "Tests embedded resource content response",
            no_arguments(),
        ),
        tool(
            "test_multiple_content_types",
            "Tests response with multiple content types (text, image, resource)",
            no_arguments(),
        ),
        tool(
            "test_tool_with_logging",
            "Tests tool that emits log messages during execution",
            no_arguments(),
        ),
        tool(
            "test_tool_with_progress",
            "Tests tool that reports progress notifications",
            no_arguments(),
        ),
        tool(
            "test_error_handling",
            "Tests error response handling",
            no_arguments(),
        ),
        tool(
            "test_reconnection",
            "Tests SSE stream disconnection and client reconnection (SEP-1699)",
            no_arguments(),
        ),
        tool(
            "test_sampling",
            "Tests server-initiated sampling (LLM completion request)",
            one_string("prompt", "The prompt to send to the LLM"),
        ),
        tool(
            "test_elicitation",
            "Tests server-initiated elicitation (user input request)",
            one_string("message", "The message to show the user"),
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Tests elicitation with default values per SEP-1034",
            no_arguments(),
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Tests elicitation with enum schema improvements per SEP-1330",
            no_arguments(),
        ),
        // json-schema-2020-12: the keywords SEP-1613 and SEP-2106 require to survive listing.
        tool(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "$anchor": "addressDef",
                        "type": "object",
                        "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
                    }
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                    "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                    "phone": { "type": "string" },
                    "email": { "type": "string" }
                },
                "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
                "if": {
                    "properties": { "contactMethod": { "const": "phone" } },
                    "required": ["contactMethod"]
                },
                "then": { "required": ["phone"] },
                "else": { "required": ["email"] },
                "additionalProperties": false
            }),
        ),
        // server-stateless (2026-07-28) diagnostic hooks.
        tool(
            "test_missing_capability",
            "Requires the sampling client capability; refused with -32021 without it",
            no_arguments(),
        ),
        tool(
            "test_streaming_elicitation",
            "Asks for input through an input_required result, never a request on the stream",
            no_arguments(),
        ),
        tool(
            "test_logging_tool",
            "Logs only when the request carries a log level",
            no_arguments(),
        ),
        tool(
            "test_trigger_tool_change",
            "Notifies listeners that the tool list changed",
            no_arguments(),
        ),
        tool(
            "test_trigger_prompt_change",
            "Notifies listeners that the prompt list changed",
            no_arguments(),
        ),
        // http-custom-header-server-validation: a string argument mirrored into Mcp-Param-Region.
        tool(
            "test_custom_headers",
            "Echoes an argument that is mirrored into the Mcp-Param-Region header (SEP-2243)",
            json!({
                "type": "object",
                "properties": {
                    "region": { "type": "string", "description": "Region", "x-mcp-header": "Region" }
                },
                "required": ["region"]
            }),
        ),
    ];
    tools.extend(mrtr::tools());
    tools
}

fn text(text: impl Into<String>) -> Result<CallToolResponse, McpError> {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
}

fn string_argument(request: &CallToolRequestParams, name: &str) -> String {
    request
        .arguments
        .as_ref()
        .and_then(|arguments| arguments.get(name))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

pub async fn call(
    fixture: &Fixture,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    match request.name.as_ref() {
        "test_simple_text" => text("This is a simple text response for testing."),
        "test_image_content" => Ok(CallToolResult::success(vec![ContentBlock::image(
            TEST_IMAGE_BASE64,
            "image/png",
        )])
        .into()),
        "test_audio_content" => Ok(CallToolResult::success(vec![ContentBlock::audio(
            TEST_AUDIO_BASE64,
            "audio/wav",
        )])
        .into()),
        "test_embedded_resource" => Ok(CallToolResult::success(vec![ContentBlock::resource(
            ResourceContents::text(
                "This is an embedded resource content.",
                "test://embedded-resource",
            )
            .with_mime_type("text/plain"),
        )])
        .into()),
        "test_multiple_content_types" => Ok(CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
            ContentBlock::resource(
                ResourceContents::text(
                    json!({ "test": "data", "value": 123 }).to_string(),
                    "test://mixed-content-resource",
                )
                .with_mime_type("application/json"),
            ),
        ])
        .into()),
        "test_tool_with_logging" => {
            for (i, message) in [
                "Tool execution started",
                "Tool processing data",
                "Tool execution completed",
            ]
            .into_iter()
            .enumerate()
            {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                log(&context, LoggingLevel::Info, json!(message)).await;
            }
            text("Tool with logging executed successfully")
        }
        "test_tool_with_progress" => progress(&context).await,
        "test_error_handling" => Ok(CallToolResult::error(vec![ContentBlock::text(
            "This tool intentionally returns an error for testing",
        )])
        .into()),
        "test_reconnection" => {
            // Over HTTP sessions, reconnect.rs has already cut this call's POST stream; answering
            // after a pause puts the result in the replay cache the client resumes from.
            tokio::time::sleep(Duration::from_millis(100)).await;
            text(
                "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.",
            )
        }
        "test_sampling" => sampling(&context, &request, string_argument(&request, "prompt")).await,
        "test_elicitation" => {
            let message = string_argument(&request, "message");
            elicit(
                &context,
                &request,
                "User response",
                elicitation_params(&message),
            )
            .await
        }
        "test_elicitation_sep1034_defaults" => {
            elicit(
                &context,
                &request,
                "Elicitation completed",
                sep1034_params(),
            )
            .await
        }
        "test_elicitation_sep1330_enums" => {
            elicit(
                &context,
                &request,
                "Elicitation completed",
                sep1330_params(),
            )
            .await
        }
        "json_schema_2020_12_tool" => {
            let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
            text(format!("JSON Schema 2020-12 tool called with: {arguments}"))
        }
        "test_missing_capability" => {
            let declared = context
                .client_capabilities()
                .and_then(|c| c.sampling)
                .is_some();
            if !declared {
                let required: ClientCapabilities =
                    serde_json::from_value(json!({ "sampling": {} })).expect("valid capabilities");
                return Err(McpError::missing_required_client_capability(required));
            }
            text("The client declared the sampling capability.")
        }
        "test_streaming_elicitation" => Ok(mrtr::streaming_elicitation().into()),
        "test_logging_tool" => {
            // 2026-07-28: log only when the request asked for a level (SEP-2575).
            if context.meta.log_level().is_some() {
                log(&context, LoggingLevel::Info, json!("test_logging_tool ran")).await;
            }
            text("Logging tool executed")
        }
        "test_trigger_tool_change" => {
            let _ = fixture.shared.changes.send(Change::Tools);
            text("Tool list change notified")
        }
        "test_trigger_prompt_change" => {
            let _ = fixture.shared.changes.send(Change::Prompts);
            text("Prompt list change notified")
        }
        "test_custom_headers" => text(format!("region={}", string_argument(&request, "region"))),
        name if name.starts_with("test_input_required_result_") => {
            mrtr::call(fixture, request, &context)
        }
        name => Err(McpError::invalid_params(
            format!("Unknown tool: {name}"),
            None,
        )),
    }
}

async fn progress(context: &RequestContext<RoleServer>) -> Result<CallToolResponse, McpError> {
    let token = context.meta.get_progress_token();
    for (i, step) in [0u32, 50, 100].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(token) = &token {
            let param: ProgressNotificationParam = serde_json::from_value(json!({
                "progressToken": token,
                "progress": step,
                "total": 100,
                "message": format!("Completed step {step} of 100"),
            }))
            .expect("valid progress notification");
            let _ = context.peer.notify_progress(param).await;
        }
    }
    let token = token.map(|t| serde_json::to_value(t).unwrap_or_default());
    text(match token {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => "0".to_owned(),
    })
}

/// On protocol 2026-07-28 a server may not send requests during a call: it asks by ending the
/// call with its request (`input_required`, under `key`) and reads the client's answer from the
/// retry. `Ok(answer)` once answered, `Err(round)` to send.
fn asked_in_rounds(
    request: &CallToolRequestParams,
    key: &str,
    question: InputRequest,
) -> Result<Value, Box<CallToolResponse>> {
    match request
        .input_responses
        .as_ref()
        .and_then(|answers| answers.get(key))
    {
        Some(answer) => Ok(answer.clone()),
        None => {
            let round = InputRequiredResult::new(Some([(key.to_owned(), question)].into()), None);
            Err(Box::new(round.into()))
        }
    }
}

fn modern(context: &RequestContext<RoleServer>) -> bool {
    context.protocol_version() == Some(ProtocolVersion::V_2026_07_28)
}

async fn sampling(
    context: &RequestContext<RoleServer>,
    request: &CallToolRequestParams,
    prompt: String,
) -> Result<CallToolResponse, McpError> {
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
    let answer = if modern(context) {
        let question = InputRequest::CreateMessage(CreateMessageRequest::new(params));
        match asked_in_rounds(request, "sampling", question) {
            Ok(answer) => serde_json::from_value(answer).map_err(|e| e.to_string()),
            Err(round) => return Ok(*round),
        }
    } else {
        context
            .peer
            .create_message(params)
            .await
            .map_err(|e| e.to_string())
    };
    match answer {
        Ok(result) => {
            let reply = serde_json::to_value(&result.message.content).unwrap_or_default();
            let reply = reply
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| "No response".to_owned());
            text(format!("LLM response: {reply}"))
        }
        Err(e) => text(format!("Sampling not supported or error: {e}")),
    }
}

fn elicitation_params(message: &str) -> Value {
    json!({
        "mode": "form",
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": { "response": { "type": "string", "description": "User's response" } },
            "required": ["response"]
        }
    })
}

fn sep1034_params() -> Value {
    json!({
        "mode": "form",
        "message": "Please review and update the form fields with defaults",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "name": { "type": "string", "description": "User name", "default": "John Doe" },
                "age": { "type": "integer", "description": "User age", "default": 30 },
                "score": { "type": "number", "description": "User score", "default": 95.5 },
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active"
                },
                "verified": { "type": "boolean", "description": "Verification status", "default": true }
            },
            "required": []
        }
    })
}

fn sep1330_params() -> Value {
    json!({
        "mode": "form",
        "message": "Please select options from the enum fields",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"]
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": [
                        { "const": "value1", "title": "First Option" },
                        { "const": "value2", "title": "Second Option" },
                        { "const": "value3", "title": "Third Option" }
                    ]
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {
                        "anyOf": [
                            { "const": "value1", "title": "First Choice" },
                            { "const": "value2", "title": "Second Choice" },
                            { "const": "value3", "title": "Third Choice" }
                        ]
                    }
                }
            },
            "required": []
        }
    })
}

async fn elicit(
    context: &RequestContext<RoleServer>,
    request: &CallToolRequestParams,
    label: &str,
    params: Value,
) -> Result<CallToolResponse, McpError> {
    let params: ElicitRequestParams = serde_json::from_value(params)
        .map_err(|e| McpError::internal_error(format!("elicitation parameters: {e}"), None))?;
    let answer = if modern(context) {
        let question = InputRequest::Elicitation(ElicitRequest::new(params));
        match asked_in_rounds(request, "elicitation", question) {
            Ok(answer) => serde_json::from_value::<ElicitResult>(answer).map_err(|e| e.to_string()),
            Err(round) => return Ok(*round),
        }
    } else {
        context
            .peer
            .create_elicitation(params)
            .await
            .map_err(|e| e.to_string())
    };
    match answer {
        Ok(result) => {
            let action = serde_json::to_value(&result.action).unwrap_or_default();
            let action = action.as_str().unwrap_or_default().to_owned();
            let content = result.content.unwrap_or_else(|| json!({}));
            text(format!("{label}: action={action}, content={content}"))
        }
        Err(e) => text(format!("Elicitation not supported or error: {e}")),
    }
}
