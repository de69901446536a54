//! The Dropbox tools as the model sees them: names, descriptions, schemas, annotations and the
//! Dropbox OAuth scope each needs (least privilege).

use serde_json::{Value, json};

use crate::{ToolAnnotations, ToolSpec};

/// Dropbox allows up to 2000 list entries and 1000 search matches per page; 100 keeps one
/// answer small enough for a model's context.
pub(crate) const MAX_PAGE: u64 = 100;
/// Largest text window `read_file` returns at once.
pub(crate) const MAX_CHARS: u64 = 50_000;
/// Largest text `upload_file` accepts (Dropbox's single-request upload limit is 150 MB; a
/// model has no business sending more than this in one argument).
pub(crate) const MAX_UPLOAD_CHARS: u64 = 1_000_000;

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

fn path(description: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 4096, "description": description })
}

const PATH_DOC: &str = "A Dropbox path such as `/Reports/q3.docx`, or an id such as `id:a4ayc_80_OEAAAAAAAAAXw` from a previous result.";

fn limit(default: u64) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": default, "description": "Page size (1-100)." })
}

fn cursor() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 8192,
            "description": "`next_cursor` from the previous call with the same other arguments; omit for the first page." })
}

/// One file or folder as every tool returns it.
pub(crate) fn entry() -> Value {
    object(
        json!({
            "type": { "type": "string", "enum": ["file", "folder"] },
            "id": { "type": "string", "description": "Stable id; usable wherever a path is asked for." },
            "name": { "type": "string" },
            "path": { "type": ["string", "null"], "description": "Display path; null for items not mounted in the user's Dropbox." },
            "size": { "type": ["integer", "null"], "description": "Bytes; null for folders." },
            "modified": { "type": ["string", "null"], "description": "Server modification time (ISO 8601); null for folders." },
        }),
        &["type", "id", "name", "path", "size", "modified"],
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

fn search_files() -> ToolSpec {
    ToolSpec::new(
        "search_files",
        "Search Dropbox",
        "Searches the user's Dropbox for files and folders whose name or (for documents) text \
         matches the words, best matches first. Set `filename_only` to match names only and \
         `path` to search one folder. Returns entries with their ids and paths; use read_file to \
         read one. Paged: pass `next_cursor` back as `cursor`.",
        ToolAnnotations::READ,
        object(
            json!({
                "query": { "type": "string", "minLength": 1, "maxLength": 1000, "description": "Words to search for." },
                "path": path("Only search under this folder path (default: the whole Dropbox)."),
                "filename_only": { "type": "boolean", "default": false, "description": "Match file and folder names only, not file contents." },
                "limit": limit(25), "cursor": cursor(),
            }),
            &["query"],
        ),
        page("matches"),
    )
}

fn list_folder() -> ToolSpec {
    ToolSpec::new(
        "list_folder",
        "List a Dropbox folder",
        "Lists the files and folders directly inside a Dropbox folder, given by path (`` or `/` \
         for the root) or id. Paged: pass `next_cursor` back as `cursor` (with the same path).",
        ToolAnnotations::READ,
        object(
            json!({
                "path": { "type": "string", "maxLength": 4096, "default": "",
                          "description": format!("Folder to list; empty or `/` for the root. {PATH_DOC}") },
                "limit": limit(50), "cursor": cursor(),
            }),
            &[],
        ),
        page("entries"),
    )
}

fn get_metadata() -> ToolSpec {
    ToolSpec::new(
        "get_metadata",
        "Get Dropbox file or folder details",
        "Returns the metadata of one Dropbox file or folder (type, id, name, path, size, \
         modification time). Use it to check that a path exists or to turn an id into a path.",
        ToolAnnotations::READ,
        object(json!({ "path": path(PATH_DOC) }), &["path"]),
        single(),
    )
}

fn read_file() -> ToolSpec {
    ToolSpec::new(
        "read_file",
        "Read a Dropbox file as text",
        "Downloads a Dropbox file and returns its readable text: plain text, Markdown, CSV and \
         HTML, and Word, Excel, PowerPoint and PDF documents where supported. Long texts come in \
         windows of `max_chars` characters; when `next_offset` is not null, call again with \
         `offset` set to it to continue.",
        ToolAnnotations::READ,
        object(
            json!({
                "path": path(PATH_DOC),
                "offset": { "type": "integer", "minimum": 0, "default": 0, "description": "Character offset to start at (`next_offset` of the previous call)." },
                "max_chars": { "type": "integer", "minimum": 1, "maximum": MAX_CHARS, "default": 20000, "description": "Most characters to return." },
            }),
            &["path"],
        ),
        object(
            json!({
                "entry": entry(),
                "format": { "type": "string", "description": "Detected document format (text, markdown, csv, html, docx, xlsx, pptx, pdf)." },
                "text": { "type": "string" },
                "offset": { "type": "integer", "minimum": 0 },
                "total_chars": { "type": "integer", "minimum": 0 },
                "next_offset": { "type": ["integer", "null"], "minimum": 0, "description": "Pass as `offset` to read on; null when the text ends here." },
            }),
            &[
                "entry",
                "format",
                "text",
                "offset",
                "total_chars",
                "next_offset",
            ],
        ),
    )
}

fn upload_file() -> ToolSpec {
    // `overwrite` replaces an existing file's content, so the tool is honestly destructive; each
    // call in `add` mode with autorename may create another copy, so it is not idempotent.
    ToolSpec::new(
        "upload_file",
        "Upload a text file to Dropbox",
        "Creates a file in Dropbox with the given text content (UTF-8). By default it fails when \
         the path is taken; set `autorename` to get a free name such as `notes (1).txt`, or \
         `mode: overwrite` to replace the existing file. Returns the new file's metadata.",
        ToolAnnotations {
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: false,
        },
        object(
            json!({
                "path": path("Full path of the new file, e.g. `/Notes/meeting.md`."),
                "content": { "type": "string", "maxLength": MAX_UPLOAD_CHARS, "description": "The file's text." },
                "mode": { "type": "string", "enum": ["add", "overwrite"], "default": "add" },
                "autorename": { "type": "boolean", "default": false },
            }),
            &["path", "content"],
        ),
        single(),
    )
}

fn create_folder() -> ToolSpec {
    ToolSpec::new(
        "create_folder",
        "Create a Dropbox folder",
        "Creates a folder (and any missing parents) at a Dropbox path. Fails when the path is \
         taken unless `autorename` is set. Returns the folder's metadata.",
        ToolAnnotations::CREATE,
        object(
            json!({ "path": path("Path of the new folder, e.g. `/Projects/2026`."),
                    "autorename": { "type": "boolean", "default": false } }),
            &["path"],
        ),
        single(),
    )
}

fn move_item() -> ToolSpec {
    // Nothing is lost (Dropbox refuses to overwrite on a move), but a repeated call finds the
    // source gone: not destructive, not idempotent.
    ToolSpec::new(
        "move_item",
        "Move or rename in Dropbox",
        "Moves or renames a Dropbox file or folder (a folder moves with its contents). Give the \
         full new path; the same folder with another name renames. Fails when the destination is \
         taken unless `autorename` is set. Returns the item's new metadata.",
        ToolAnnotations {
            read_only: false,
            destructive: false,
            idempotent: false,
            open_world: false,
        },
        object(
            json!({ "from_path": path(PATH_DOC), "to_path": path("Full destination path including the name."),
                    "autorename": { "type": "boolean", "default": false } }),
            &["from_path", "to_path"],
        ),
        single(),
    )
}

fn delete_item() -> ToolSpec {
    ToolSpec::new(
        "delete_item",
        "Delete from Dropbox",
        "Deletes a Dropbox file, or a folder with everything in it. Deleted items can be restored \
         from Dropbox's web interface for a limited time only. Returns the deleted item's metadata.",
        ToolAnnotations {
            read_only: false,
            destructive: true,
            idempotent: true,
            open_world: false,
        },
        object(json!({ "path": path(PATH_DOC) }), &["path"]),
        single(),
    )
}

fn create_share_link() -> ToolSpec {
    // Asking again for a path that has a link returns the existing link: idempotent. The link
    // handed back may work for more people than asked for, so its audience is a fact (`facts.rs`).
    ToolSpec::new(
        "create_share_link",
        "Share a Dropbox file or folder by link",
        "Creates a shared link to a Dropbox file or folder and returns its URL. `audience` is \
         `public` (anyone with the link), `team` (members of the user's team) or `no_one` (only \
         people already given access). If a link already exists, it is returned instead.",
        // A `public` link reaches anyone who has it.
        ToolAnnotations {
            read_only: false,
            destructive: false,
            idempotent: true,
            open_world: true,
        },
        object(
            json!({ "path": path(PATH_DOC),
                    "audience": { "type": "string", "enum": ["public", "team", "no_one"], "default": "public" } }),
            &["path"],
        ),
        object(
            json!({ "url": { "type": "string" }, "name": { "type": "string" },
                    "path": { "type": ["string", "null"] },
                    "audience": { "type": ["string", "null"], "description": "Who the link works for, as Dropbox reports it." },
                    "existing": { "type": "boolean", "description": "True when the link existed before this call." } }),
            &["url", "name", "path", "audience", "existing"],
        ),
    )
}

/// Every tool, in tools/list order, with the Dropbox scope each needs.
pub(crate) fn all() -> Vec<ToolSpec> {
    vec![
        search_files().with_scopes(&["files.metadata.read"]),
        list_folder().with_scopes(&["files.metadata.read"]),
        get_metadata().with_scopes(&["files.metadata.read"]),
        read_file().with_scopes(&["files.content.read"]),
        upload_file().with_scopes(&["files.content.write"]),
        create_folder().with_scopes(&["files.content.write"]),
        move_item().with_scopes(&["files.content.write"]),
        delete_item().with_scopes(&["files.content.write"]),
        // `sharing.read`: its facts list the path's existing links (`facts.rs`).
        create_share_link()
            .with_scopes(&["sharing.write", "sharing.read"])
            .resolving_facts(),
    ]
}
