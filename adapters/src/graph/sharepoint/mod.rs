//! SharePoint and OneDrive files through Graph: search (`POST /search/query`), sites, drives,
//! folders by id or path (`root:/a/b:`), reading files as text, uploads and new folders.

mod ops;

use serde_json::{Map, Value, json};

use super::{
    client::GraphClient,
    schema::{
        cursor, id, limit, nullable_string, object, page, string, window_args, window_properties,
    },
};
use crate::{CallContext, ToolAnnotations, ToolError, ToolOutput, ToolSpec};

pub(crate) fn item_schema() -> Value {
    object(
        json!({
            "id": string(), "name": string(), "is_folder": { "type": "boolean" },
            "size": { "type": "integer" }, "mime_type": nullable_string(), "web_url": nullable_string(),
            "modified_at": nullable_string(), "parent_path": nullable_string(), "drive_id": nullable_string(),
        }),
        &[
            "id",
            "name",
            "is_folder",
            "size",
            "mime_type",
            "web_url",
            "modified_at",
            "parent_path",
            "drive_id",
        ],
    )
}

fn site_schema() -> Value {
    object(
        json!({ "id": string(), "name": nullable_string(), "display_name": nullable_string(),
                   "web_url": nullable_string(), "description": nullable_string() }),
        &["id", "name", "display_name", "web_url", "description"],
    )
}

/// `drive_id` plus an item addressed by `item_id` or by `path` (neither: the drive's root).
fn locate(extra: Value) -> Value {
    let mut properties = json!({
        "drive_id": id("Drive id (list_drives)."),
        "item_id": id("Item id. Give this or `path`; neither means the drive's root folder."),
        "path": { "type": "string", "minLength": 1, "maxLength": 400, "description": "Path from the drive root, e.g. `Reports/2026/q3.docx`." },
    });
    if let (Some(target), Some(more)) = (properties.as_object_mut(), extra.as_object()) {
        target.extend(more.clone());
    }
    properties
}

pub(crate) fn tools() -> Vec<ToolSpec> {
    let hit = object(
        json!({ "kind": string(), "id": string(), "name": nullable_string(), "summary": string(),
        "web_url": nullable_string(), "drive_id": nullable_string(), "site_id": nullable_string() }),
        &[
            "kind", "id", "name", "summary", "web_url", "drive_id", "site_id",
        ],
    );
    let read_args = {
        let mut properties = locate(json!({}));
        if let Some(target) = properties.as_object_mut() {
            target.extend(window_args());
        }
        properties
    };
    let read_out = {
        let mut properties = window_properties();
        properties["name"] = nullable_string();
        object(
            properties,
            &[
                "name",
                "format",
                "text",
                "offset",
                "total_chars",
                "next_offset",
            ],
        )
    };
    vec![
        ToolSpec::new("search", "Search SharePoint and OneDrive",
            "Searches files, list items and sites across SharePoint and OneDrive (Microsoft Search, \
             KQL). Choose the kinds with `kinds`. Returns hits with ids to pass to get_item or \
             read_file. Paged with `cursor`/`next_cursor`.",
            ToolAnnotations::READ,
            object(json!({ "query": { "type": "string", "minLength": 1, "maxLength": 500 },
                "kinds": { "type": "array", "minItems": 1, "uniqueItems": true, "items": { "enum": ["driveItem", "listItem", "site"] }, "default": ["driveItem"] },
                "limit": limit(25, 25), "cursor": cursor() }), &["query"]),
            page("hits", hit))
        .with_scopes(&["Files.Read.All", "Sites.Read.All"]),
        ToolSpec::new("list_sites", "Find SharePoint sites", "Finds SharePoint sites by keyword (`*` for all the user can see).",
            ToolAnnotations::READ,
            object(json!({ "query": { "type": "string", "minLength": 1, "maxLength": 200, "default": "*" }, "limit": limit(25, 50), "cursor": cursor() }), &[]),
            page("sites", site_schema()))
        .with_scopes(&["Sites.Read.All"]),
        ToolSpec::new("get_site", "Get a SharePoint site", "Fetches one site by id (or `hostname:/sites/path`).",
            ToolAnnotations::READ, object(json!({ "site_id": id("Site id.") }), &["site_id"]),
            object(json!({ "site": site_schema() }), &["site"]))
        .with_scopes(&["Sites.Read.All"]),
        ToolSpec::new("list_drives", "List a site's document libraries", "Lists the drives (document libraries) of a site, with ids for list_items.",
            ToolAnnotations::READ, object(json!({ "site_id": id("Site id.") }), &["site_id"]),
            object(json!({ "drives": { "type": "array", "items": object(json!({ "id": string(), "name": string(), "web_url": nullable_string(), "drive_type": nullable_string() }), &["id", "name", "web_url", "drive_type"]) } }), &["drives"]))
        .with_scopes(&["Files.Read.All"]),
        ToolSpec::new("list_items", "List a folder's files", "Lists the files and folders in a folder, by item id or path (the root by default). Paged with `cursor`.",
            ToolAnnotations::READ,
            object({ let mut p = locate(json!({})); p["limit"] = limit(50, 200); p["cursor"] = cursor(); p }, &["drive_id"]),
            page("items", item_schema()))
        .with_scopes(&["Files.Read.All"]),
        ToolSpec::new("get_item", "Get file or folder details", "Fetches one file's or folder's metadata by id or path.",
            ToolAnnotations::READ, object(locate(json!({})), &["drive_id"]),
            object(json!({ "item": item_schema() }), &["item"]))
        .with_scopes(&["Files.Read.All"]),
        ToolSpec::new("read_file", "Read a file as text",
            "Returns the text of a file (txt, md, csv, html, docx, xlsx, pptx, pdf) a window at a \
             time: continue with `offset` = `next_offset`. Files over 20 MB are refused.",
            ToolAnnotations::READ, object(read_args, &["drive_id"]), read_out)
        .with_scopes(&["Files.Read.All"]),
        ToolSpec::new("upload_file", "Upload a file",
            "Uploads a file into a folder (by `folder_item_id`, or the root). Give text in `content` \
             or bytes in `content_base64`. With conflict `replace` an existing file of that name is \
             overwritten; `fail` (default) refuses; `rename` picks a new name. Large files go \
             through an upload session in pieces.",
            // It can overwrite an existing file (conflict `replace`), so it is honestly destructive.
            ToolAnnotations { read_only: false, destructive: true, idempotent: false, open_world: false },
            object(json!({ "drive_id": id("Drive id."), "folder_item_id": id("Folder item id; omit for the root."),
                "name": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/\\\\:*?\"<>|]+$" },
                "content": { "type": "string", "maxLength": 10000000 },
                "content_base64": { "type": "string", "maxLength": 70000000 },
                "conflict": { "enum": ["fail", "replace", "rename"], "default": "fail" } }), &["drive_id", "name"]),
            object(json!({ "item": item_schema(), "upload": { "enum": ["simple", "session"] } }), &["item", "upload"]))
        .with_scopes(&["Files.ReadWrite.All"]),
        ToolSpec::new("create_folder", "Create a folder", "Creates a folder inside another folder (or the root). Fails if the name is taken.",
            ToolAnnotations::CREATE,
            object(json!({ "drive_id": id("Drive id."), "parent_item_id": id("Parent folder id; omit for the root."),
                "name": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/\\\\:*?\"<>|]+$" } }), &["drive_id", "name"]),
            object(json!({ "item": item_schema() }), &["item"]))
        .with_scopes(&["Files.ReadWrite.All"]),
    ]
}

pub(crate) async fn call(
    graph: &GraphClient,
    tool: &str,
    args: &Map<String, Value>,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    match tool {
        "search" => ops::search(graph, args, ctx).await,
        "list_sites" | "get_site" | "list_drives" => ops::sites(graph, tool, args, ctx).await,
        "list_items" | "get_item" => ops::items(graph, tool, args, ctx).await,
        "read_file" => ops::read(graph, args, ctx).await,
        "upload_file" => ops::upload(graph, args, ctx).await,
        "create_folder" => ops::create_folder(graph, args, ctx).await,
        other => Err(ToolError::UnknownTool(other.to_owned())),
    }
}
