//! The Drive tools as the model sees them: names, descriptions, schemas, annotations and the
//! OAuth scopes each needs.
//!
//! Scopes, least privilege per tool (the broker asks for the union of the tools a deployment
//! exposes, and steps up when a tool needs more):
//! - `get_file`, `list_folder`: `drive.metadata.readonly`. They read names, sizes, dates and
//!   folders, never content, and that scope covers exactly that.
//! - `search_files`, `read_file`: `drive.readonly`. Full-text search matches inside content and
//!   reading downloads or exports content; metadata scopes allow neither.
//! - `upload_file`, `create_folder`: `drive.file`. It lets the app create files anywhere in My
//!   Drive's root and in folders the app created; it does not let it add to a folder the user
//!   made elsewhere (Drive answers 403 `appNotAuthorizedToFile`, which the tool explains). That
//!   is the point of the scope, and asking for full `drive` just to write new files would grant
//!   changing and deleting every existing file.
//! - `move_file`, `delete_file`, `share_file`: `drive`. They act on files the user already has,
//!   which `drive.file` cannot reach, and no narrower scope allows changing parents, trashing or
//!   sharing arbitrary files.

use serde_json::{Value, json};

use crate::{ToolAnnotations, ToolSpec};

pub(crate) const SCOPE_FULL: &str = "https://www.googleapis.com/auth/drive";
pub(crate) const SCOPE_READONLY: &str = "https://www.googleapis.com/auth/drive.readonly";
pub(crate) const SCOPE_METADATA_READONLY: &str =
    "https://www.googleapis.com/auth/drive.metadata.readonly";
pub(crate) const SCOPE_FILE: &str = "https://www.googleapis.com/auth/drive.file";

/// Most results per page a tool asks Drive for.
pub(crate) const MAX_PAGE: u64 = 100;
/// Most characters one `read_file` call returns.
pub(crate) const MAX_READ_CHARS: u64 = 100_000;
/// Largest upload: Drive's limit for a multipart upload.
pub(crate) const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// Largest file `read_file` downloads.
pub(crate) const MAX_DOWNLOAD_BYTES: u64 = 25 * 1024 * 1024;

/// Removes a file: not read-only, destroys (trash or for good), repeating it changes nothing more.
const DELETE: ToolAnnotations = ToolAnnotations {
    read_only: false,
    destructive: true,
    idempotent: true,
    open_world: false,
};

const FILE_REF: &str = "A file id (from search_files, list_folder or a Drive link) or a path \
from My Drive's root such as `/Projects/plan.docx`.";
const FOLDER_REF: &str = "A folder id, `root`, or a path from My Drive's root such as \
`/Projects/2026`.";

fn file_ref(description: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 2048, "description": description })
}

fn page_size(default: u64) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": default,
            "description": "Results per page (1-100)." })
}

fn cursor() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 4096,
            "description": "`next_cursor` from the previous call with the same other arguments; omit for the first page." })
}

fn next_cursor() -> Value {
    json!({ "type": ["string", "null"], "description": "Pass as `cursor` to get the next page; null when this is the last page." })
}

fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}

/// A file or folder as every tool returns it.
pub(crate) fn file_schema() -> Value {
    object(
        json!({
            "id": { "type": "string" },
            "name": { "type": "string" },
            "mime_type": { "type": "string" },
            "kind": { "type": "string", "enum": ["folder", "google_doc", "google_sheet", "google_slides", "google_other", "file"],
                      "description": "folder, a Google Docs/Sheets/Slides file, another Google-native type, or an ordinary file." },
            "size_bytes": { "type": ["integer", "null"], "description": "Null for folders and Google-native files." },
            "created_time": nullable("string"),
            "modified_time": nullable("string"),
            "parents": { "type": "array", "items": { "type": "string" } },
            "web_view_link": nullable("string"),
            "owners": { "type": "array", "items": object(
                json!({ "name": nullable("string"), "email": nullable("string") }), &["name", "email"]) },
            "shared": { "type": "boolean" },
            "trashed": { "type": "boolean" },
            "drive_id": { "type": ["string", "null"], "description": "The shared drive holding it; null in My Drive." },
            "description": nullable("string"),
        }),
        &[
            "id",
            "name",
            "mime_type",
            "kind",
            "size_bytes",
            "created_time",
            "modified_time",
            "parents",
            "web_view_link",
            "owners",
            "shared",
            "trashed",
            "drive_id",
            "description",
        ],
    )
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

fn file_page(extra: Value, extra_required: &[&str]) -> Value {
    let mut properties = json!({ "files": { "type": "array", "items": file_schema() }, "next_cursor": next_cursor() });
    let mut required = vec!["files", "next_cursor"];
    if let (Some(target), Some(more)) = (properties.as_object_mut(), extra.as_object()) {
        target.extend(more.clone());
    }
    required.extend_from_slice(extra_required);
    object(properties, &required)
}

/// Every tool acts within folders the policy may name (`context.containers`, `facts.rs`): the
/// item's, the folder listed, searched or written to, and for a move the destination's too.
pub(crate) fn all() -> Vec<ToolSpec> {
    vec![
        search_files(),
        list_folder(),
        get_file(),
        read_file(),
        upload_file(),
        create_folder(),
        move_file(),
        delete_file(),
        share_file(),
    ]
    .into_iter()
    .map(ToolSpec::resolving_facts)
    .collect()
}

fn search_files() -> ToolSpec {
    ToolSpec::new(
        "search_files",
        "Search Google Drive",
        "Finds Google Drive files by words in their content and name (full text, ranked by \
         relevance) or by name only, across My Drive, files shared with the user and shared \
         drives; trashed files are left out. Optionally narrow to one kind of file or one folder. \
         Returns file metadata (id, name, kind, size, modified time, link), not content: call \
         read_file with an id to read one. Paged: pass `next_cursor` back as `cursor` for more.",
        ToolAnnotations::READ,
        object(
            json!({
                "query": { "type": "string", "minLength": 1, "maxLength": 500, "description": "Words to look for." },
                "match": { "type": "string", "enum": ["full_text", "name"], "default": "full_text",
                           "description": "full_text: content, name and description; name: the file name only." },
                "kind": { "type": "string", "enum": ["any", "folder", "document", "spreadsheet", "presentation", "pdf"], "default": "any",
                          "description": "document: Google Docs and Word; spreadsheet: Google Sheets, Excel and CSV; presentation: Google Slides and PowerPoint." },
                "folder": file_ref(&format!("Only direct children of this folder. {FOLDER_REF}")),
                "page_size": page_size(25),
                "cursor": cursor(),
            }),
            &["query"],
        ),
        file_page(
            json!({ "incomplete": { "type": "boolean", "description": "True when Drive could not search every drive; narrowing the search may find more." } }),
            &["incomplete"],
        ),
    )
    .with_scopes(&[SCOPE_READONLY])
}

fn list_folder() -> ToolSpec {
    ToolSpec::new(
        "list_folder",
        "List a Google Drive folder",
        "Lists what a Google Drive folder holds (not trashed), folders first, then by name. Give \
         the folder by id or by path from My Drive's root; without one, lists My Drive's root. \
         Returns the folder and its children's metadata; use read_file to read a file. Paged: \
         pass `next_cursor` back as `cursor` (with the same folder) for more.",
        ToolAnnotations::READ,
        object(
            json!({
                "folder": file_ref(&format!("{FOLDER_REF} Default: root.")),
                "page_size": page_size(50),
                "cursor": cursor(),
            }),
            &[],
        ),
        file_page(json!({ "folder": file_schema() }), &["folder"]),
    )
    .with_scopes(&[SCOPE_METADATA_READONLY])
}

fn get_file() -> ToolSpec {
    ToolSpec::new(
        "get_file",
        "Get Google Drive file details",
        "Returns one Google Drive file's or folder's metadata: name, kind, MIME type, size, \
         created and modified times, owners, parents, sharing, link. Does not return content \
         (use read_file).",
        ToolAnnotations::READ,
        object(json!({ "file": file_ref(FILE_REF) }), &["file"]),
        object(json!({ "file": file_schema() }), &["file"]),
    )
    .with_scopes(&[SCOPE_METADATA_READONLY])
}

fn read_file() -> ToolSpec {
    ToolSpec::new(
        "read_file",
        "Read a Google Drive file as text",
        "Returns a file's content as text: Google Docs as Markdown, Google Sheets as CSV per \
         sheet, Google Slides as plain text; Word, Excel, PowerPoint, PDF, HTML, CSV, Markdown \
         and plain-text files are downloaded (up to 25 MB) and converted. Long text comes in \
         windows of `max_chars`: when `next_offset` is not null, call again with \
         `offset: next_offset` to continue. Images and other binary files cannot be read.",
        ToolAnnotations::READ,
        object(
            json!({
                "file": file_ref(FILE_REF),
                "offset": { "type": "integer", "minimum": 0, "default": 0, "description": "Character to start at (from `next_offset`)." },
                "max_chars": { "type": "integer", "minimum": 100, "maximum": MAX_READ_CHARS, "default": 20000,
                               "description": "Most characters to return." },
            }),
            &["file"],
        ),
        object(
            json!({
                "file": file_schema(),
                "format": { "type": "string", "description": "How the text was obtained: text, markdown, csv, html, docx, xlsx, pptx or pdf." },
                "text": { "type": "string" },
                "offset": { "type": "integer", "minimum": 0 },
                "total_chars": { "type": "integer", "minimum": 0 },
                "next_offset": { "type": ["integer", "null"], "minimum": 0,
                                 "description": "Pass as `offset` to read on; null at the end." },
            }),
            &["file", "format", "text", "offset", "total_chars", "next_offset"],
        ),
    )
    .with_scopes(&[SCOPE_READONLY])
}

fn upload_file() -> ToolSpec {
    ToolSpec::new(
        "upload_file",
        "Upload a file to Google Drive",
        "Creates a new file in Google Drive with the given content (text, or base64 for binary), \
         up to 5 MB. Without `folder` it goes to My Drive's root. Unless full Drive access was \
         granted, Drive lets this connection add files only to My Drive's root and to folders it \
         created (create_folder), and says so when refused. Drive allows several files with one \
         name: calling this twice makes two files. Returns the new file's metadata and link.",
        ToolAnnotations::CREATE,
        object(
            json!({
                "name": { "type": "string", "minLength": 1, "maxLength": 255, "description": "File name with extension, e.g. notes.md." },
                "content": { "type": "string", "maxLength": MAX_UPLOAD_BYTES, "description": "The content as text (UTF-8). Give this or content_base64." },
                "content_base64": { "type": "string", "maxLength": MAX_UPLOAD_BYTES / 3 * 4 + 4, "description": "The content as base64, for binary files." },
                "mime_type": { "type": "string", "minLength": 3, "maxLength": 255,
                               "description": "Content type; guessed from the name's extension when omitted." },
                "folder": file_ref(&format!("Where to put it. {FOLDER_REF} Default: root.")),
                "description": { "type": "string", "maxLength": 4000 },
            }),
            &["name"],
        ),
        object(json!({ "file": file_schema() }), &["file"]),
    )
    .with_scopes(&[SCOPE_FILE])
}

fn create_folder() -> ToolSpec {
    ToolSpec::new(
        "create_folder",
        "Create a Google Drive folder",
        "Creates a new folder in Google Drive, in My Drive's root or inside `parent`. Unless full \
         Drive access was granted, `parent` must be a folder this connection created. Drive \
         allows several folders with one name: calling this twice makes two. Returns the new \
         folder's metadata.",
        ToolAnnotations::CREATE,
        object(
            json!({
                "name": { "type": "string", "minLength": 1, "maxLength": 255 },
                "parent": file_ref(&format!("{FOLDER_REF} Default: root.")),
            }),
            &["name"],
        ),
        object(json!({ "folder": file_schema() }), &["folder"]),
    )
    .with_scopes(&[SCOPE_FILE])
}

fn move_file() -> ToolSpec {
    ToolSpec::new(
        "move_file",
        "Move or rename a Google Drive file",
        "Moves a file or folder to another folder, renames it, or both. The item leaves its \
         current folder. Returns its updated metadata.",
        ToolAnnotations::UPDATE,
        object(
            json!({
                "file": file_ref(FILE_REF),
                "new_parent": file_ref(&format!("The folder to move it into. {FOLDER_REF}")),
                "new_name": { "type": "string", "minLength": 1, "maxLength": 255 },
            }),
            &["file"],
        ),
        object(json!({ "file": file_schema() }), &["file"]),
    )
    .with_scopes(&[SCOPE_FULL])
}

fn delete_file() -> ToolSpec {
    ToolSpec::new(
        "delete_file",
        "Delete a Google Drive file",
        "Deletes a file or folder (with everything in it). By default it moves to the trash, \
         where the owner can restore it for 30 days; with `permanently: true` it is deleted at \
         once and cannot be recovered. Only the owner (or a shared drive organizer) can delete. \
         Confirm with the user before deleting.",
        DELETE,
        object(
            json!({
                "file": file_ref(FILE_REF),
                "permanently": { "type": "boolean", "default": false,
                                 "description": "Skip the trash and delete for good." },
            }),
            &["file"],
        ),
        object(
            json!({
                "id": { "type": "string" },
                "name": { "type": "string" },
                "outcome": { "type": "string", "enum": ["trashed", "deleted"] },
            }),
            &["id", "name", "outcome"],
        ),
    )
    .with_scopes(&[SCOPE_FULL])
}

fn share_file() -> ToolSpec {
    ToolSpec::new(
        "share_file",
        "Share a Google Drive file with someone",
        "Gives a person (by email address) access to a file or folder: reader (view), commenter \
         or writer (edit). By default Google emails them a notification, with `message` \
         included. Returns the permission created.",
        // Anyone with an email address, inside the company or not.
        ToolAnnotations::CREATE.reaching_outside(),
        object(
            json!({
                "file": file_ref(FILE_REF),
                "email": { "type": "string", "format": "email", "x-manifold-role": "grantee", "minLength": 3, "maxLength": 320 },
                "role": { "type": "string", "enum": ["reader", "commenter", "writer"] },
                "notify": { "type": "boolean", "default": true, "description": "Send Google's notification email." },
                "message": { "type": "string", "maxLength": 2000, "description": "Text for the notification email." },
            }),
            &["file", "email", "role"],
        ),
        object(
            json!({
                "file_id": { "type": "string" },
                "permission": object(json!({
                    "id": { "type": "string" },
                    "type": { "type": "string" },
                    "role": { "type": "string" },
                    "email": nullable("string"),
                    "display_name": nullable("string"),
                }), &["id", "type", "role", "email", "display_name"]),
            }),
            &["file_id", "permission"],
        ),
    )
    .with_scopes(&[SCOPE_FULL])
}
