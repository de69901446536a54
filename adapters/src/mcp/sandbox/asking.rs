//! The notes server's tools that ask the calling client something, so the demo shows an
//! upstream's questions reaching the user through the gateway: `pick_note` asks the user which
//! of the matching notes they mean (elicitation), `suggest_title` asks the client's model for a
//! title (sampling). A client of protocol 2026-07-28 (the gateway, which speaks it upstream) is
//! asked in `input_required` rounds; a session of an earlier era on its request's stream.

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InputRequest,
        InputRequiredResult, JsonObject, ProtocolVersion, ServerRequest, Tool, ToolAnnotations,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use super::store::Store;

/// The key of the one question each tool asks.
const QUESTION: &str = "question";

fn object(value: Value) -> std::sync::Arc<JsonObject> {
    match value {
        Value::Object(map) => std::sync::Arc::new(map),
        _ => std::sync::Arc::new(JsonObject::new()),
    }
}

fn read_only() -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}

/// The tools of this module.
pub(crate) fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "pick_note",
            "Find one note when the words match several: the user is asked which one they mean. \
             Returns the chosen note whole.",
            object(json!({
                "type": "object",
                "properties": {"query": {"type": "string", "maxLength": 200, "description": "Words to look for"}},
                "required": ["query"],
                "additionalProperties": false
            })),
        )
        .with_title("Pick a note")
        .with_annotations(read_only())
        .with_raw_output_schema(object(json!({
            "type": "object",
            "properties": {
                "picked": {"type": ["string", "null"], "description": "The chosen note's id"},
                "message": {"type": "string"}
            },
            "required": ["picked", "message"]
        }))),
        Tool::new(
            "suggest_title",
            "Suggest a title for a draft note: the client's model is asked for one.",
            object(json!({
                "type": "object",
                "properties": {"body": {"type": "string", "maxLength": 4000, "description": "The draft's text"}},
                "required": ["body"],
                "additionalProperties": false
            })),
        )
        .with_title("Suggest a title")
        .with_annotations(read_only())
        .with_raw_output_schema(object(json!({
            "type": "object",
            "properties": {
                "title": {"type": ["string", "null"]},
                "message": {"type": "string"}
            },
            "required": ["title", "message"]
        }))),
    ]
}

/// What a tool makes of the client's answer.
type UseAnswer = dyn Fn(&Value) -> CallToolResult + Send;

/// Whether `name` is one of this module's tools.
pub(crate) fn asks(name: &str) -> bool {
    matches!(name, "pick_note" | "suggest_title")
}

/// Runs `pick_note` or `suggest_title`: the question first, then the answer's use.
pub(crate) async fn call(
    matches: Vec<(String, String)>,
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let argument = |key: &str| {
        request
            .arguments
            .as_ref()
            .and_then(|arguments| arguments.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (question, use_answer): (Value, Box<UseAnswer>) = match request.name.as_ref() {
        "pick_note" => {
            if matches.is_empty() {
                let message = format!("No note matches `{}`.", argument("query"));
                return Ok(reply("picked", None, message).into());
            }
            let ids: Vec<&String> = matches.iter().map(|(id, _)| id).collect();
            let titles: Vec<&String> = matches.iter().map(|(_, title)| title).collect();
            let question = json!({"method": "elicitation/create", "params": {
                "mode": "form",
                "message": format!("Which note do you mean? {} match.", matches.len()),
                "requestedSchema": {"type": "object", "properties": {
                    "note": {"type": "string", "title": "Note", "enum": ids, "enumNames": titles}
                }, "required": ["note"]}
            }});
            let choose = move |answer: &Value| match (
                answer["action"].as_str(),
                answer["content"]["note"].as_str(),
            ) {
                (Some("accept"), Some(id)) => {
                    reply("picked", Some(id), format!("The user picked {id}."))
                }
                _ => reply("picked", None, "The user did not pick a note.".to_owned()),
            };
            (question, Box::new(choose))
        }
        _ => {
            let question = json!({"method": "sampling/createMessage", "params": {
                "messages": [{"role": "user", "content": {"type": "text", "text":
                    format!("Suggest a short title for this note:\n\n{}", argument("body"))}}],
                "maxTokens": 30
            }});
            let suggest = |answer: &Value| match answer["content"]["text"].as_str() {
                Some(title) => reply("title", Some(title), format!("Suggested title: {title}")),
                None => reply("title", None, "The model suggested no title.".to_owned()),
            };
            (question, Box::new(suggest))
        }
    };
    let answer = match ask(&question, request, context).await? {
        Asked::Answer(answer) => answer,
        Asked::Round(round) => return Ok(round.into()),
    };
    Ok(use_answer(&answer).into())
}

/// The matches of `pick_note`'s query: id and title of each.
pub(crate) fn matches(store: &Store, query: &str) -> Vec<(String, String)> {
    store
        .search(query, None, 10)
        .into_iter()
        .filter_map(|hit| {
            Some((
                hit["id"].as_str()?.to_owned(),
                hit["title"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// A result with `message` as its text and `{key: value, message}` as its structured content.
fn reply(key: &str, value: Option<&str>, message: String) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(message.clone())]);
    result.structured_content = Some(json!({ key: value, "message": message }));
    result
}

enum Asked {
    Answer(Value),
    Round(InputRequiredResult),
}

/// The client's answer to `question`: from its retry (2026-07-28; the round to send when it
/// has not answered yet), or asked on the request's stream (earlier eras).
async fn ask(
    question: &Value,
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<Asked, McpError> {
    if context.protocol_version() == Some(ProtocolVersion::V_2026_07_28) {
        if let Some(answer) = request
            .input_responses
            .as_ref()
            .and_then(|answers| answers.get(QUESTION))
        {
            return Ok(Asked::Answer(answer.clone()));
        }
        let question: InputRequest = serde_json::from_value(question.clone())
            .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        let round = InputRequiredResult::new(Some([(QUESTION.to_owned(), question)].into()), None);
        return Ok(Asked::Round(round));
    }
    let question: ServerRequest = serde_json::from_value(question.clone())
        .map_err(|error| McpError::internal_error(error.to_string(), None))?;
    let answer = context.peer.send_request(question).await.map_err(|error| {
        McpError::internal_error(format!("the client did not answer: {error}"), None)
    })?;
    serde_json::to_value(answer)
        .map(Asked::Answer)
        .map_err(|error| McpError::internal_error(error.to_string(), None))
}
