//! SEP-2322 multi-round-trip tools (2026-07-28): instead of asking the client mid-call, a tool
//! answers `input_required` with the requests it needs, and the client retries the call with
//! `inputResponses` and the echoed `requestState`. Rounds are derived only from those two
//! fields, so the tools work statelessly. `requestState` is sealed with the process key, which
//! is what lets input-required-result-tampered-state see a modified value refused.

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
        GetPromptRequestParams, InputRequiredResult, InputResponses, Tool,
    },
    service::RequestContext,
};
use serde_json::{Map, Value, json};

use crate::server::Fixture;

const TOOLS: [(&str, &str); 8] = [
    (
        "test_input_required_result_elicitation",
        "Asks the client for a name, then greets it",
    ),
    (
        "test_input_required_result_sampling",
        "Asks the client's model a question",
    ),
    (
        "test_input_required_result_list_roots",
        "Asks the client for its roots",
    ),
    (
        "test_input_required_result_request_state",
        "Round-trips a sealed requestState",
    ),
    (
        "test_input_required_result_multiple_inputs",
        "Asks for elicitation, sampling and roots at once",
    ),
    (
        "test_input_required_result_multi_round",
        "Asks for input over two rounds",
    ),
    (
        "test_input_required_result_tampered_state",
        "Refuses a requestState that was modified",
    ),
    (
        "test_input_required_result_capabilities",
        "Asks only for what the client declared it supports",
    ),
];

pub fn tools() -> Vec<Tool> {
    TOOLS
        .iter()
        .map(|(name, description)| {
            serde_json::from_value(json!({
                "name": name,
                "description": description,
                "inputSchema": { "type": "object", "properties": {} }
            }))
            .expect("static tool definitions are valid")
        })
        .collect()
}

fn elicitation(message: &str, property: &str, kind: &str) -> Value {
    json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": { property: { "type": kind } },
                "required": [property]
            }
        }
    })
}

fn sampling(text: &str, max_tokens: u32) -> Value {
    json!({
        "method": "sampling/createMessage",
        "params": {
            "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
            "maxTokens": max_tokens
        }
    })
}

fn roots() -> Value {
    json!({ "method": "roots/list", "params": {} })
}

/// An `input_required` result asking for `requests` (key → request), with an optional state.
fn input_required(
    requests: Map<String, Value>,
    state: Option<String>,
) -> Result<InputRequiredResult, McpError> {
    let mut result = json!({ "resultType": "input_required", "inputRequests": requests });
    if let Some(state) = state {
        result["requestState"] = Value::String(state);
    }
    serde_json::from_value(result)
        .map_err(|e| McpError::internal_error(format!("input_required result: {e}"), None))
}

fn requests(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Map<String, Value> {
    entries
        .into_iter()
        .map(|(key, request)| (key.to_owned(), request))
        .collect()
}

fn done(text: impl Into<String>) -> Result<CallToolResponse, McpError> {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
}

/// The accepted elicitation content of `key`, if the client answered it with a usable object.
fn accepted_content<'a>(
    responses: Option<&'a InputResponses>,
    key: &str,
) -> Option<&'a Map<String, Value>> {
    let response = responses?.get(key)?.as_object()?;
    if response.get("action").and_then(Value::as_str) != Some("accept") {
        return None;
    }
    response.get("content")?.as_object()
}

/// Whether the client answered `key` with any JSON object (sampling and roots results).
fn answered(responses: Option<&InputResponses>, key: &str) -> bool {
    responses
        .and_then(|r| r.get(key))
        .is_some_and(Value::is_object)
}

/// The sealed state of `tool` at `round`.
fn seal(fixture: &Fixture, tool: &str, round: u32) -> Result<String, McpError> {
    fixture
        .shared
        .codec
        .seal_json(&json!({ "tool": tool, "round": round }))
        .map_err(|e| McpError::internal_error(format!("sealing requestState: {e}"), None))
}

/// The round a sealed state was issued for; a state that does not open, or belongs to another
/// tool, is refused with -32602 (integrity check failure).
fn open(fixture: &Fixture, tool: &str, state: &str) -> Result<u64, McpError> {
    let refused = || McpError::invalid_params("requestState failed its integrity check", None);
    let value: Value = fixture
        .shared
        .codec
        .open_json(state)
        .map_err(|_| refused())?;
    if value.get("tool").and_then(Value::as_str) != Some(tool) {
        return Err(refused());
    }
    value
        .get("round")
        .and_then(Value::as_u64)
        .ok_or_else(refused)
}

pub fn call(
    fixture: &Fixture,
    request: CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let name = request.name.as_ref();
    let responses = request.input_responses.as_ref();
    let state = request.request_state.as_deref();
    match name {
        "test_input_required_result_elicitation" => {
            // Wrong, missing or malformed responses re-request the input rather than fail.
            match accepted_content(responses, "user_name").and_then(|c| c.get("name")?.as_str()) {
                Some(user) => done(format!("Hello, {user}!")),
                None => Ok(input_required(
                    requests([(
                        "user_name",
                        elicitation("What is your name?", "name", "string"),
                    )]),
                    None,
                )?
                .into()),
            }
        }
        "test_input_required_result_sampling" => {
            let Some(response) = responses
                .and_then(|r| r.get("capital_question"))
                .filter(|v| v.is_object())
            else {
                return Ok(input_required(
                    requests([(
                        "capital_question",
                        sampling("What is the capital of France?", 100),
                    )]),
                    None,
                )?
                .into());
            };
            let reply = response["content"]["text"].as_str().unwrap_or("(no text)");
            done(format!("Sampling response: {reply}"))
        }
        "test_input_required_result_list_roots" => {
            let Some(response) = responses
                .and_then(|r| r.get("client_roots"))
                .filter(|v| v.is_object())
            else {
                return Ok(input_required(requests([("client_roots", roots())]), None)?.into());
            };
            let uris: Vec<&str> = response["roots"]
                .as_array()
                .map(|roots| {
                    roots
                        .iter()
                        .filter_map(|root| root["uri"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            done(format!("Client roots: {}", uris.join(", ")))
        }
        "test_input_required_result_request_state" => {
            let ask = || -> Result<CallToolResponse, McpError> {
                Ok(input_required(
                    requests([("confirm", elicitation("Please confirm", "ok", "boolean"))]),
                    Some(seal(fixture, name, 1)?),
                )?
                .into())
            };
            match (state, accepted_content(responses, "confirm")) {
                (Some(state), Some(content)) => {
                    open(fixture, name, state)?;
                    done(format!(
                        "state-ok: confirmed={}",
                        content.get("ok").unwrap_or(&Value::Null)
                    ))
                }
                _ => ask(),
            }
        }
        "test_input_required_result_multiple_inputs" => {
            let all = [
                (
                    "user_name",
                    elicitation("What is your name?", "name", "string"),
                ),
                ("greeting", sampling("Generate a greeting", 50)),
                ("client_roots", roots()),
            ];
            if let Some(state) = state {
                open(fixture, name, state)?;
            }
            let missing: Vec<_> = all
                .into_iter()
                .filter(|(key, _)| !answered(responses, key))
                .collect();
            if missing.is_empty() && state.is_some() {
                return done("Received all inputs: user_name, greeting, client_roots");
            }
            Ok(input_required(requests(missing), Some(seal(fixture, name, 1)?))?.into())
        }
        "test_input_required_result_multi_round" => {
            let round = state.map(|state| open(fixture, name, state)).transpose()?;
            let step1 = || elicitation("Step 1: What is your name?", "name", "string");
            let step2 = || elicitation("Step 2: What is your favorite color?", "color", "string");
            match round {
                Some(1) if accepted_content(responses, "step1").is_some() => Ok(input_required(
                    requests([("step2", step2())]),
                    Some(seal(fixture, name, 2)?),
                )?
                .into()),
                Some(2) => {
                    match accepted_content(responses, "step2").and_then(|c| c.get("color")) {
                        Some(color) => {
                            done(format!("Completed both rounds; favorite color {color}"))
                        }
                        None => Ok(input_required(
                            requests([("step2", step2())]),
                            Some(seal(fixture, name, 2)?),
                        )?
                        .into()),
                    }
                }
                _ => Ok(input_required(
                    requests([("step1", step1())]),
                    Some(seal(fixture, name, 1)?),
                )?
                .into()),
            }
        }
        "test_input_required_result_tampered_state" => match state {
            Some(state) => {
                open(fixture, name, state)?;
                done("requestState verified")
            }
            None => Ok(input_required(
                requests([("confirm", elicitation("Please confirm", "ok", "boolean"))]),
                Some(seal(fixture, name, 1)?),
            )?
            .into()),
        },
        "test_input_required_result_capabilities" => {
            if responses.is_some() {
                return done("Received the inputs the client could provide");
            }
            // Only what the client declared in this request's _meta (or its session).
            let declared = context
                .client_capabilities()
                .map(|c| serde_json::to_value(c).unwrap_or_default())
                .unwrap_or_default();
            let mut wanted = Vec::new();
            if declared.get("elicitation").is_some() {
                wanted.push((
                    "user_name",
                    elicitation("What is your name?", "name", "string"),
                ));
            }
            if declared.get("sampling").is_some() {
                wanted.push((
                    "capital_question",
                    sampling("What is the capital of France?", 100),
                ));
            }
            if declared.get("roots").is_some() {
                wanted.push(("client_roots", roots()));
            }
            if wanted.is_empty() {
                return done("The client declared no capability this tool could ask through");
            }
            Ok(input_required(requests(wanted), None)?.into())
        }
        other => Err(McpError::invalid_params(
            format!("Unknown tool: {other}"),
            None,
        )),
    }
}

/// test_streaming_elicitation: the 2026 way to ask for input mid-call is a result, never a
/// server-to-client request on the response stream.
pub fn streaming_elicitation() -> InputRequiredResult {
    input_required(
        requests([(
            "user_name",
            elicitation("What is your name?", "name", "string"),
        )]),
        None,
    )
    .expect("static input request is valid")
}

/// The context the `input_required` prompt was given, or the result asking for it.
pub fn prompt_context(
    request: &GetPromptRequestParams,
) -> Result<Result<String, InputRequiredResult>, McpError> {
    let responses = request.input_responses.as_ref();
    match accepted_content(responses, "user_context").and_then(|c| c.get("context")?.as_str()) {
        Some(context) => Ok(Ok(context.to_owned())),
        None => Ok(Err(input_required(
            requests([(
                "user_context",
                elicitation("What context should the prompt use?", "context", "string"),
            )]),
            None,
        )?)),
    }
}
