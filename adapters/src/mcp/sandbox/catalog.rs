//! What the notes server offers: its three tools, its resources (`notes://index` and one
//! `notes://note/{id}` per note, with the template) and its `summarize_note` prompt. Each is
//! described the way a real company server would, with honest annotations, because the demo's
//! instance trusts them for policy.

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError,
    model::{
        CallToolResult, ContentBlock, GetPromptResult, JsonObject, Prompt, PromptArgument,
        PromptMessage, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role,
        Tool, ToolAnnotations,
    },
};
use serde_json::{Map, Value, json};

use super::store::{CreateError, MAX_BODY, MAX_TAGS, MAX_TITLE, Store};

pub const INDEX_URI: &str = "notes://index";
pub const NOTE_TEMPLATE: &str = "notes://note/{id}";
pub(crate) const SUMMARIZE: &str = "summarize_note";

fn object(value: Value) -> Arc<JsonObject> {
    Arc::new(match value {
        Value::Object(map) => map,
        _ => Map::new(),
    })
}

fn note_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "body": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "author": {"type": "string"},
            "updated": {"type": "string", "description": "YYYY-MM-DD"},
            "uri": {"type": "string"}
        },
        "required": ["id", "title", "body", "tags", "author", "updated", "uri"]
    })
}

/// The tools, in a stable order.
pub(crate) fn tools() -> Vec<Tool> {
    let search = Tool::new(
        "search_notes",
        "Search the company's notes. Every word of `query` must appear in a note's title, body or \
         tags (any case); `tag` narrows to one tag. Newest first. Use get_note for a note's full \
         text.",
        object(json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "maxLength": 200, "description": "Words to look for; empty lists every note"},
                "tag": {"type": "string", "maxLength": 40, "description": "Only notes with this tag"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20, "default": 10}
            },
            "required": ["query"],
            "additionalProperties": false
        })),
    )
    .with_title("Search notes")
    .with_annotations(
        ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    )
    .with_raw_output_schema(object(json!({
        "type": "object",
        "properties": {
            "notes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "snippet": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "updated": {"type": "string"},
                        "uri": {"type": "string"}
                    },
                    "required": ["id", "title", "snippet", "tags", "updated", "uri"]
                }
            }
        },
        "required": ["notes"]
    })));
    let get = Tool::new(
        "get_note",
        "Read one note whole by its id (`note-0001`, from search_notes).",
        object(json!({
            "type": "object",
            "properties": {"id": {"type": "string", "maxLength": 64, "description": "The note's id"}},
            "required": ["id"],
            "additionalProperties": false
        })),
    )
    .with_title("Get note")
    .with_annotations(
        ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    )
    .with_raw_output_schema(object(note_schema()));
    let create = Tool::new(
        "create_note",
        "Create a new note visible to everyone in the company. Adds a note; never changes or \
         deletes one.",
        object(json!({
            "type": "object",
            "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
                "body": {"type": "string", "maxLength": MAX_BODY, "description": "Markdown text"},
                "tags": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": 40},
                    "maxItems": MAX_TAGS,
                    "default": []
                }
            },
            "required": ["title", "body"],
            "additionalProperties": false
        })),
    )
    .with_title("Create note")
    .with_annotations(
        // Additive and inside the company: not destructive, not open-world. Not idempotent:
        // each call adds one more note.
        ToolAnnotations::new()
            .read_only(false)
            .destructive(false)
            .idempotent(false)
            .open_world(false),
    )
    .with_raw_output_schema(object(note_schema()));
    vec![search, get, create]
}

/// A tool's string argument; `None` when absent, an error when of another type.
fn string<'a>(arguments: &'a JsonObject, name: &str) -> Result<Option<&'a str>, McpError> {
    match arguments.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(McpError::invalid_params(
            format!("`{name}` must be a string"),
            None,
        )),
    }
}

fn required<'a>(arguments: &'a JsonObject, name: &str) -> Result<&'a str, McpError> {
    string(arguments, name)?
        .ok_or_else(|| McpError::invalid_params(format!("`{name}` is required"), None))
}

/// What a tool call changed, for the server to tell subscribers.
#[derive(Debug, Default)]
pub(crate) struct Changed {
    /// Resource URIs whose contents changed.
    pub(crate) uris: Vec<String>,
    /// The resource list changed (a note was added).
    pub(crate) list: bool,
}

/// Runs tool `name`. Bad arguments are -32602 (the gateway checks the schema first, so only a
/// direct client sees them); a note that is not there is a tool error the model can read.
pub(crate) fn call(
    store: &mut Store,
    name: &str,
    arguments: &JsonObject,
) -> Result<(CallToolResult, Changed), McpError> {
    let unchanged = Changed::default();
    match name {
        "search_notes" => {
            let query = required(arguments, "query")?;
            let tag = string(arguments, "tag")?;
            let limit = match arguments.get("limit") {
                None | Some(Value::Null) => 10,
                Some(value) => {
                    value
                        .as_u64()
                        .filter(|n| (1..=20).contains(n))
                        .ok_or_else(|| {
                            McpError::invalid_params(
                                "`limit` must be an integer from 1 to 20",
                                None,
                            )
                        })?
                }
            };
            let limit = usize::try_from(limit).unwrap_or(20);
            let notes = store.search(query, tag, limit);
            Ok((
                CallToolResult::structured(json!({"notes": notes})),
                unchanged,
            ))
        }
        "get_note" => {
            let id = required(arguments, "id")?;
            Ok(match store.get(id) {
                Some(note) => (CallToolResult::structured(note.to_json()), unchanged),
                None => (
                    CallToolResult::error(vec![ContentBlock::text(format!(
                        "no note has the id `{}`; search_notes lists the ids",
                        id.chars().take(64).collect::<String>()
                    ))]),
                    unchanged,
                ),
            })
        }
        "create_note" => {
            let title = required(arguments, "title")?;
            let body = required(arguments, "body")?;
            let tags = match arguments.get("tags") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| McpError::invalid_params("`tags` must be strings", None))?,
                Some(_) => {
                    return Err(McpError::invalid_params(
                        "`tags` must be an array of strings",
                        None,
                    ));
                }
            };
            match store.create(title, body, tags) {
                Ok(note) => {
                    let changed = Changed {
                        uris: vec![INDEX_URI.to_owned(), note.uri()],
                        list: true,
                    };
                    Ok((CallToolResult::structured(note.to_json()), changed))
                }
                Err(error @ CreateError::Full) => Ok((
                    CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
                    unchanged,
                )),
                Err(error) => Err(McpError::invalid_params(error.to_string(), None)),
            }
        }
        other => Err(McpError::invalid_params(
            format!(
                "unknown tool `{}`",
                other.chars().take(64).collect::<String>()
            ),
            None,
        )),
    }
}

/// `resources/list`: the index, then every note.
pub(crate) fn resources(store: &Store) -> Vec<Resource> {
    let index = Resource::new(INDEX_URI, "index")
        .with_title("All notes")
        .with_description("Every note's id, title and tags, newest first")
        .with_mime_type("application/json");
    std::iter::once(index)
        .chain(store.all().iter().map(|note| {
            Resource::new(note.uri(), note.id.clone())
                .with_title(note.title.clone())
                .with_mime_type("text/markdown")
        }))
        .collect()
}

pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(NOTE_TEMPLATE, "note")
            .with_title("A note")
            .with_description("One note as Markdown, by its id (`note-0001`)")
            .with_mime_type("text/markdown"),
    ]
}

/// `resources/read`. A URI that names nothing is -32602 with the URI in `data` (SEP-2164).
pub(crate) fn read(store: &Store, uri: &str) -> Result<ReadResourceResult, McpError> {
    let contents = if uri == INDEX_URI {
        let notes = store.search("", None, usize::MAX);
        ResourceContents::text(json!({"notes": notes}).to_string(), uri)
            .with_mime_type("application/json")
    } else if let Some(note) = store.by_uri(uri) {
        ResourceContents::text(note.to_markdown(), uri).with_mime_type("text/markdown")
    } else {
        return Err(not_found(uri));
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

pub(crate) fn not_found(uri: &str) -> McpError {
    let uri: String = uri.chars().take(200).collect();
    McpError::invalid_params("Resource not found", Some(json!({ "uri": uri })))
}

/// A URI this server has (the index or an existing note): only those can be subscribed to.
pub(crate) fn exists(store: &Store, uri: &str) -> bool {
    uri == INDEX_URI || store.by_uri(uri).is_some()
}

pub(crate) fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            SUMMARIZE,
            Some("Summarize one note in three bullet points with its action items"),
            Some(vec![
                PromptArgument::new("note_id")
                    .with_title("Note id")
                    .with_description("The note to summarize (`note-0001`)")
                    .with_required(true),
            ]),
        )
        .with_title("Summarize a note"),
    ]
}

/// `prompts/get`: the instruction, with the note embedded as a resource.
pub(crate) fn prompt(
    store: &Store,
    name: &str,
    arguments: Option<&JsonObject>,
) -> Result<GetPromptResult, McpError> {
    if name != SUMMARIZE {
        return Err(McpError::invalid_params(
            format!(
                "unknown prompt `{}`",
                name.chars().take(64).collect::<String>()
            ),
            None,
        ));
    }
    let empty = JsonObject::new();
    let id = required(arguments.unwrap_or(&empty), "note_id")?;
    let note = store.get(id).ok_or_else(|| {
        McpError::invalid_params(
            format!(
                "no note has the id `{}`",
                id.chars().take(64).collect::<String>()
            ),
            None,
        )
    })?;
    let embedded = ContentBlock::resource(
        ResourceContents::text(note.to_markdown(), note.uri()).with_mime_type("text/markdown"),
    );
    Ok(GetPromptResult::new(vec![
        PromptMessage::new_text(
            Role::User,
            format!(
                "Summarize the note \"{}\" below in three bullet points, then list its action \
                 items with their owners.",
                note.title
            ),
        ),
        PromptMessage::new(Role::User, embedded),
    ])
    .with_description(format!("Summary of {}", note.id)))
}
