//! The Box tools as the model sees them, with the Box scope each needs (`root_readonly` to read,
//! `root_readwrite` to change anything).

use serde_json::{Value, json};

use crate::{ToolAnnotations, ToolSpec};

/// Box allows 200 search results and 1000 folder items per page; 100 keeps answers small.
pub(crate) const MAX_PAGE: u64 = 100;
pub(crate) const MAX_CHARS: u64 = 50_000;
pub(crate) const MAX_UPLOAD_CHARS: u64 = 1_000_000;

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

fn id(description: &str) -> Value {
    json!({ "type": "string", "pattern": "^[0-9]{1,20}$", "description": description })
}

fn limit(default: u64) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": default, "description": "Page size (1-100)." })
}

fn cursor() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 4096,
            "description": "`next_cursor` from the previous call with the same other arguments; omit for the first page." })
}

fn name() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/\\\\]+$",
            "description": "Item name, without slashes." })
}

pub(crate) fn entry() -> Value {
    object(
        json!({
            "type": { "type": "string", "enum": ["file", "folder", "web_link"] },
            "id": { "type": "string" }, "name": { "type": "string" },
            "size": { "type": ["integer", "null"], "description": "Bytes (folders: total of contents); null when Box did not say." },
            "modified": { "type": ["string", "null"] },
            "parent_id": { "type": ["string", "null"], "description": "Id of the containing folder; null for the root." },
        }),
        &["type", "id", "name", "size", "modified", "parent_id"],
    )
}

fn page(key: &str) -> Value {
    object(
        json!({ key: { "type": "array", "items": entry() },
                "next_cursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page." } }),
        &[key, "next_cursor"],
    )
}

fn single() -> Value {
    object(json!({ "entry": entry() }), &["entry"])
}

const FILE_ID: &str = "File id (from search_files or list_folder).";

fn spec(
    name: &str,
    title: &str,
    description: &str,
    annotations: ToolAnnotations,
    input: Value,
    output: Value,
) -> ToolSpec {
    ToolSpec::new(name, title, description, annotations, input, output)
}

pub(crate) fn all() -> Vec<ToolSpec> {
    const READ: &[&str] = &["root_readonly"];
    const WRITE: &[&str] = &["root_readwrite"];
    vec![
        spec("search_files", "Search Box",
            "Searches the user's Box for files and folders whose name, description or file text \
             matches the query, most relevant first. Set `names_only` to match names only, `type` \
             to get only files or folders, and `folder_id` to search inside one folder. Paged: \
             pass `next_cursor` back as `cursor`.",
            ToolAnnotations::READ,
            object(json!({
                "query": { "type": "string", "minLength": 1, "maxLength": 1000 },
                "type": { "type": "string", "enum": ["file", "folder"] },
                "folder_id": id("Only search inside this folder."),
                "names_only": { "type": "boolean", "default": false },
                "limit": limit(25), "cursor": cursor(),
            }), &["query"]),
            page("matches")).with_scopes(READ),
        spec("list_folder", "List a Box folder",
            "Lists the files, folders and web links directly inside a Box folder (`0` is the \
             root, All Files). Paged: pass `next_cursor` back as `cursor`.",
            ToolAnnotations::READ,
            object(json!({ "folder_id": { "type": "string", "pattern": "^[0-9]{1,20}$", "default": "0", "description": "Folder id; 0 for the root." },
                           "limit": limit(50), "cursor": cursor() }), &[]),
            page("entries")).with_scopes(READ),
        spec("get_item", "Get Box file or folder details",
            "Returns the details of one Box file or folder by id: name, size, modification \
             time and parent folder.",
            ToolAnnotations::READ,
            object(json!({ "id": id("File or folder id."),
                           "type": { "type": "string", "enum": ["file", "folder"], "default": "file" } }), &["id"]),
            single()).with_scopes(READ),
        spec("read_file", "Read a Box file as text",
            "Downloads a Box file and returns its readable text: plain text, Markdown, CSV, HTML, \
             and Word, Excel, PowerPoint and PDF documents where supported. Long texts come in \
             windows; when `next_offset` is not null, call again with `offset` set to it.",
            ToolAnnotations::READ,
            object(json!({
                "file_id": id(FILE_ID),
                "offset": { "type": "integer", "minimum": 0, "default": 0 },
                "max_chars": { "type": "integer", "minimum": 1, "maximum": MAX_CHARS, "default": 20000 },
            }), &["file_id"]),
            object(json!({
                "entry": entry(), "format": { "type": "string" }, "text": { "type": "string" },
                "offset": { "type": "integer", "minimum": 0 }, "total_chars": { "type": "integer", "minimum": 0 },
                "next_offset": { "type": ["integer", "null"], "minimum": 0 },
            }), &["entry", "format", "text", "offset", "total_chars", "next_offset"])).with_scopes(READ),
        spec("upload_file", "Upload a text file to Box",
            "Creates a new file with the given text (UTF-8) in a Box folder. Fails when the folder \
             already has an item with that name. Returns the new file.",
            ToolAnnotations::CREATE,
            object(json!({ "folder_id": id("Folder to upload into; 0 for the root."), "name": name(),
                           "content": { "type": "string", "maxLength": MAX_UPLOAD_CHARS } }),
                   &["folder_id", "name", "content"]),
            single()).with_scopes(WRITE),
        spec("create_folder", "Create a Box folder",
            "Creates a folder inside a Box folder. Fails when the name is taken there. Returns \
             the new folder.",
            ToolAnnotations::CREATE,
            object(json!({ "parent_id": id("Parent folder id; 0 for the root."), "name": name() }), &["parent_id", "name"]),
            single()).with_scopes(WRITE),
        // Setting the parent and name to given values is idempotent; nothing is overwritten
        // (Box refuses a name that is taken), so it is not destructive.
        spec("move_file", "Move or rename a Box file",
            "Moves a Box file to another folder and/or renames it. Give `parent_id`, `name` or \
             both. Returns the file's new details.",
            ToolAnnotations { read_only: false, destructive: false, idempotent: true, open_world: false },
            json!({ "type": "object", "additionalProperties": false, "required": ["file_id"], "minProperties": 2,
                    "properties": { "file_id": id(FILE_ID), "parent_id": id("Destination folder id."), "name": name() } }),
            single()).with_scopes(WRITE),
        spec("delete_file", "Delete a Box file",
            "Moves a Box file to the trash, from where it is purged after the enterprise's \
             retention period. Returns the deleted file's details as they were.",
            ToolAnnotations { read_only: false, destructive: true, idempotent: true, open_world: false },
            object(json!({ "file_id": id(FILE_ID) }), &["file_id"]),
            single()).with_scopes(WRITE),
        // It sets the file's one shared link to the given access: repeating changes nothing, but
        // it replaces the access level of a link that already existed (possibly locking people
        // out), so it is honestly marked destructive.
        spec("create_share_link", "Share a Box file by link",
            "Creates (or updates) the shared link of a Box file and returns its URL. `access` is \
             `open` (anyone with the link), `company` (people in the enterprise) or \
             `collaborators` (only people already invited). A file has one shared link: calling \
             this again changes that link's access.",
            // An `open` link reaches anyone who has it.
            ToolAnnotations::UPDATE.reaching_outside(),
            object(json!({ "file_id": id(FILE_ID),
                           "access": { "type": "string", "enum": ["open", "company", "collaborators"], "default": "open" } }),
                   &["file_id"]),
            object(json!({ "url": { "type": "string" }, "download_url": { "type": ["string", "null"] },
                           "access": { "type": "string" }, "file_id": { "type": "string" } }),
                   &["url", "download_url", "access", "file_id"])).with_scopes(WRITE)
            // Whom the link works for is a fact for the policy (`facts.rs`).
            .resolving_facts(),
    ]
}
