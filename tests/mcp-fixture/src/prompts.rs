//! Prompts: simple, with arguments, with an embedded resource, with an image, and the
//! `input_required` prompt of input-required-result-non-tool-request.

use rmcp::{
    ErrorData as McpError,
    model::{GetPromptRequestParams, GetPromptResponse, GetPromptResult, Prompt, PromptMessage},
};
use serde_json::{Value, json};

use crate::{mrtr, tools::TEST_IMAGE_BASE64};

pub fn all() -> Vec<Prompt> {
    serde_json::from_value(json!([
        {
            "name": "test_simple_prompt",
            "title": "Simple Test Prompt",
            "description": "A simple prompt without arguments"
        },
        {
            "name": "test_prompt_with_arguments",
            "title": "Prompt With Arguments",
            "description": "A prompt with required arguments",
            "arguments": [
                { "name": "arg1", "description": "First test argument", "required": true },
                { "name": "arg2", "description": "Second test argument", "required": true }
            ]
        },
        {
            "name": "test_prompt_with_embedded_resource",
            "title": "Prompt With Embedded Resource",
            "description": "A prompt that includes an embedded resource",
            "arguments": [
                { "name": "resourceUri", "description": "URI of the resource to embed", "required": true }
            ]
        },
        {
            "name": "test_prompt_with_image",
            "title": "Prompt With Image",
            "description": "A prompt that includes image content"
        },
        {
            "name": "test_input_required_result_prompt",
            "title": "Prompt Requiring Input",
            "description": "A prompt that asks the client for context first (SEP-2322)"
        }
    ]))
    .expect("static prompt definitions are valid")
}

fn messages(messages: Value) -> Result<GetPromptResponse, McpError> {
    // Built with `new`, not deserialized: `new` sets the 2026 `resultType`, which rmcp strips
    // again for older protocol versions.
    let messages: Vec<PromptMessage> = serde_json::from_value(messages)
        .map_err(|e| McpError::internal_error(format!("prompt messages: {e}"), None))?;
    Ok(GetPromptResult::new(messages).into())
}

fn argument<'a>(request: &'a GetPromptRequestParams, name: &str) -> Result<&'a str, McpError> {
    request
        .arguments
        .as_ref()
        .and_then(|arguments| arguments.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| McpError::invalid_params(format!("missing required argument {name}"), None))
}

pub fn get(request: GetPromptRequestParams) -> Result<GetPromptResponse, McpError> {
    match request.name.as_str() {
        "test_simple_prompt" => messages(json!([
            { "role": "user", "content": { "type": "text", "text": "This is a simple prompt for testing." } }
        ])),
        "test_prompt_with_arguments" => {
            let (arg1, arg2) = (argument(&request, "arg1")?, argument(&request, "arg2")?);
            messages(json!([
                { "role": "user", "content": {
                    "type": "text",
                    "text": format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")
                } }
            ]))
        }
        "test_prompt_with_embedded_resource" => {
            let uri = argument(&request, "resourceUri")?;
            messages(json!([
                { "role": "user", "content": {
                    "type": "resource",
                    "resource": { "uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing." }
                } },
                { "role": "user", "content": { "type": "text", "text": "Please process the embedded resource above." } }
            ]))
        }
        "test_prompt_with_image" => messages(json!([
            { "role": "user", "content": { "type": "image", "data": TEST_IMAGE_BASE64, "mimeType": "image/png" } },
            { "role": "user", "content": { "type": "text", "text": "Please analyze the image above." } }
        ])),
        "test_input_required_result_prompt" => match mrtr::prompt_context(&request)? {
            Ok(context) => messages(json!([
                { "role": "user", "content": { "type": "text", "text": format!("Use this context: {context}") } }
            ])),
            Err(input_required) => Ok(input_required.into()),
        },
        name => Err(McpError::invalid_params(
            format!("Unknown prompt: {name}"),
            None,
        )),
    }
}
