//! What each SharePoint tool sends to Graph. Items are addressed by id
//! (`/drives/{d}/items/{id}`) or by path (`/drives/{d}/root:/a/b:`), built segment by segment so
//! no argument can escape its segment.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use bytes::Bytes;
use serde_json::{Value, json};
use url::Url;

use super::super::{
    args::{self, Args},
    client::GraphClient,
    outlook::extracted_window,
    schema::{field, hit_summary, text_field},
    teams::search_query,
};
use crate::{CallContext, ToolError, ToolOutput, upstream::PathSegment};

const ITEM_FIELDS: &str = "id,name,size,file,folder,webUrl,lastModifiedDateTime,parentReference";
/// Largest file read as text: bigger ones would cost minutes and memory for one window.
const MAX_READ_BYTES: u64 = 20 * 1024 * 1024;
/// Graph's simple upload takes up to 4 MB; bigger files need an upload session.
pub const SIMPLE_UPLOAD_LIMIT: usize = 4 * 1024 * 1024;
/// Session pieces must be multiples of 320 KiB.
const CHUNK: usize = 320 * 1024 * 10;

pub(crate) fn item(i: &Value) -> Value {
    json!({
        "id": text_field(i, "id"), "name": text_field(i, "name"),
        "is_folder": i.get("folder").is_some_and(|f| !f.is_null()),
        "size": i.get("size").and_then(Value::as_i64).unwrap_or(0),
        "mime_type": i.pointer("/file/mimeType").and_then(Value::as_str).map_or(Value::Null, |s| json!(s)),
        "web_url": field(i, "webUrl"), "modified_at": field(i, "lastModifiedDateTime"),
        "parent_path": i.pointer("/parentReference/path").and_then(Value::as_str).map_or(Value::Null, |s| json!(s)),
        "drive_id": i.pointer("/parentReference/driveId").and_then(Value::as_str).map_or(Value::Null, |s| json!(s)),
    })
}

/// Path segments of the addressed item: `drives/{d}/items/{id}`, `drives/{d}/root:/a/b:` or
/// `drives/{d}/root`.
fn address(args: &Args) -> Result<Vec<PathSegment>, ToolError> {
    let mut segments = vec!["drives".into(), args::segment(args, "drive_id")?];
    match (
        args::opt_string(args, "item_id")?,
        args::opt_string(args, "path")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(ToolError::InvalidArguments(
                "give `item_id` or `path`, not both".into(),
            ));
        }
        (Some(id), None) => {
            segments.extend(["items".into(), PathSegment::encode("item_id", id)?]);
        }
        (None, Some(path)) => {
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            if parts.is_empty() {
                segments.push("root".into());
            } else {
                // `:` ends Graph's path addressing, so a name holding one would end it early;
                // dot segments are refused by the encoder, whatever their spelling.
                if parts.iter().any(|p| p.contains(':')) {
                    return Err(ToolError::InvalidArguments(
                        "`path` must not contain `:`".into(),
                    ));
                }
                segments.push("root:".into());
                let last = parts.len() - 1;
                for (index, part) in parts.iter().enumerate() {
                    let segment = PathSegment::encode("path", part)?;
                    segments.push(if index == last {
                        segment.with_suffix(":")
                    } else {
                        segment
                    });
                }
            }
        }
        (None, None) => segments.push("root".into()),
    }
    Ok(segments)
}

fn url_of(
    graph: &GraphClient,
    segments: &[PathSegment],
    tail: &[&'static str],
    query: &[(&str, String)],
) -> Result<Url, ToolError> {
    let mut all = segments.to_vec();
    all.extend(tail.iter().copied().map(PathSegment::fixed));
    graph.url(&all, query)
}

pub(super) async fn search(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let kinds: Vec<&str> = match args.get("kinds").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| matches!(*k, "driveItem" | "listItem" | "site"))
            .collect(),
        None => vec!["driveItem"],
    };
    if kinds.is_empty() {
        return Err(ToolError::InvalidArguments(
            "`kinds` must name driveItem, listItem or site".into(),
        ));
    }
    let size = args::int(args, "limit", 25, 1, 25)?;
    let (hits, next) = search_query(graph, "search", args, &kinds, size, ctx).await?;
    let hits: Vec<Value> = hits.iter().map(|hit| {
        let r = hit.get("resource").cloned().unwrap_or(Value::Null);
        let kind = text_field(&r, "@odata.type").trim_start_matches("#microsoft.graph.").to_owned();
        json!({ "kind": kind, "id": text_field(&r, "id"),
            "name": r.get("name").or_else(|| r.get("displayName")).and_then(Value::as_str).map_or(Value::Null, |s| json!(s)),
            "summary": hit_summary(hit),
            "web_url": field(&r, "webUrl"),
            "drive_id": r.pointer("/parentReference/driveId").and_then(Value::as_str).map_or(Value::Null, |s| json!(s)),
            "site_id": r.pointer("/parentReference/siteId").and_then(Value::as_str).map_or(Value::Null, |s| json!(s)) })
    }).collect();
    Ok(ToolOutput::from_structured(
        json!({ "hits": hits, "next_cursor": next }),
    ))
}

fn site(s: &Value) -> Value {
    json!({ "id": text_field(s, "id"), "name": field(s, "name"), "display_name": field(s, "displayName"),
            "web_url": field(s, "webUrl"), "description": field(s, "description") })
}

pub(super) async fn sites(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let select = (
        "$select",
        "id,name,displayName,webUrl,description".to_owned(),
    );
    let structured = match tool {
        "list_sites" => {
            let query = args::opt_string(args, "query")?.unwrap_or("*").to_owned();
            let top = args::int(args, "limit", 25, 1, 50)?.to_string();
            let url = graph.url(
                &["sites".into()],
                &[("search", query), select, ("$top", top)],
            )?;
            let page = graph.page(tool, args, url, ctx).await?;
            json!({ "sites": page.items.iter().map(site).collect::<Vec<_>>(), "next_cursor": page.next_cursor })
        }
        "get_site" => {
            let id = args::string(args, "site_id")?;
            json!({ "site": site(&graph.get(graph.url(&["sites".into(), PathSegment::encode("site_id", id)?], &[select])?, ctx).await?) })
        }
        _ => {
            let id = args::string(args, "site_id")?;
            let url = graph.url(
                &[
                    "sites".into(),
                    PathSegment::encode("site_id", id)?,
                    "drives".into(),
                ],
                &[("$select", "id,name,webUrl,driveType".to_owned())],
            )?;
            let body = graph.get(url, ctx).await?;
            let drives: Vec<Value> = body.get("value").and_then(Value::as_array).into_iter().flatten()
                .map(|d| json!({ "id": text_field(d, "id"), "name": text_field(d, "name"), "web_url": field(d, "webUrl"), "drive_type": field(d, "driveType") }))
                .collect();
            json!({ "drives": drives })
        }
    };
    Ok(ToolOutput::from_structured(structured))
}

pub(super) async fn items(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let segments = address(args)?;
    let select = ("$select", ITEM_FIELDS.to_owned());
    if tool == "get_item" {
        let found = graph
            .get(url_of(graph, &segments, &[], &[select])?, ctx)
            .await?;
        return Ok(ToolOutput::from_structured(json!({ "item": item(&found) })));
    }
    let top = args::int(args, "limit", 50, 1, 200)?.to_string();
    let url = url_of(graph, &segments, &["children"], &[select, ("$top", top)])?;
    let page = graph.page(tool, args, url, ctx).await?;
    Ok(ToolOutput::from_structured(
        json!({ "items": page.items.iter().map(item).collect::<Vec<_>>(), "next_cursor": page.next_cursor }),
    ))
}

pub(super) async fn read(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let segments = address(args)?;
    let window = super::super::outlook::window(args)?;
    let meta = graph
        .get(
            url_of(
                graph,
                &segments,
                &[],
                &[("$select", "id,name,size,file,folder".to_owned())],
            )?,
            ctx,
        )
        .await?;
    if meta.get("folder").is_some_and(|f| !f.is_null()) {
        return Err(ToolError::InvalidArguments(
            "that item is a folder; use list_items".into(),
        ));
    }
    let size = meta.get("size").and_then(Value::as_u64).unwrap_or(0);
    if size > MAX_READ_BYTES {
        return Err(ToolError::InvalidArguments(format!(
            "the file is {size} bytes; at most {MAX_READ_BYTES} bytes are read as text"
        )));
    }
    // Content by id once known, so a path cannot resolve to a different file between the calls.
    // The id is Graph's, and is encoded like any argument.
    let id = PathSegment::encode("id", &text_field(&meta, "id")).map_err(|error| {
        ToolError::BadResponse(format!("Graph answered an item id that {error}"))
    })?;
    let url = graph.url(
        &[
            "drives".into(),
            args::segment(args, "drive_id")?,
            "items".into(),
            id,
            "content".into(),
        ],
        &[],
    )?;
    let (bytes, content_type) = graph.get_bytes(url, ctx).await?;
    let mime = meta
        .pointer("/file/mimeType")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(content_type);
    let name = meta.get("name").and_then(Value::as_str);
    Ok(ToolOutput::from_structured(extracted_window(
        name,
        &bytes,
        mime.as_deref(),
        window,
        &ctx.text_filter,
    )?))
}

fn content(args: &Args) -> Result<Bytes, ToolError> {
    match (
        args.get("content").and_then(Value::as_str),
        args.get("content_base64").and_then(Value::as_str),
    ) {
        (Some(_), Some(_)) => Err(ToolError::InvalidArguments(
            "give `content` or `content_base64`, not both".into(),
        )),
        (Some(text), None) => Ok(Bytes::from(text.to_owned())),
        (None, Some(encoded)) => STANDARD
            .decode(encoded.trim())
            .map(Bytes::from)
            .map_err(|_| {
                ToolError::InvalidArguments("`content_base64` is not valid base64".into())
            }),
        (None, None) => Ok(Bytes::new()),
    }
}

pub(super) async fn upload(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let drive = args::segment(args, "drive_id")?;
    let name = args::string(args, "name")?;
    if name.contains(['/', '\\', ':']) {
        return Err(ToolError::InvalidArguments(
            "`name` must be a plain file name".into(),
        ));
    }
    let conflict = args::opt_string(args, "conflict")?.unwrap_or("fail");
    if !matches!(conflict, "fail" | "replace" | "rename") {
        return Err(ToolError::InvalidArguments(
            "`conflict` must be fail, replace or rename".into(),
        ));
    }
    let bytes = content(args)?;
    let parent = args::opt_string(args, "folder_item_id")?;
    let name_segment = PathSegment::encode("name", name)?.with_suffix(":");
    let target: Vec<PathSegment> = match parent {
        Some(id) => vec![
            "drives".into(),
            drive,
            "items".into(),
            PathSegment::encode("folder_item_id", id)?.with_suffix(":"),
            name_segment,
        ],
        None => vec!["drives".into(), drive, "root:".into(), name_segment],
    };
    let behavior = ("@microsoft.graph.conflictBehavior", conflict.to_owned());
    if bytes.len() <= SIMPLE_UPLOAD_LIMIT {
        let url = url_of(graph, &target, &["content"], &[behavior])?;
        let created = graph.put_bytes(url, bytes, None, true, ctx).await?;
        return Ok(ToolOutput::from_structured(
            json!({ "item": item(&created), "upload": "simple" }),
        ));
    }
    let body = json!({ "item": { "@microsoft.graph.conflictBehavior": conflict, "name": name } });
    let session = graph
        .post(
            url_of(graph, &target, &["createUploadSession"], &[])?,
            &body,
            ctx,
            false,
        )
        .await?;
    let upload_url = session
        .get("uploadUrl")
        .and_then(Value::as_str)
        .and_then(|u| Url::parse(u).ok())
        .ok_or_else(|| ToolError::BadResponse("the upload session has no uploadUrl".into()))?;
    let total = bytes.len();
    let mut last = Value::Null;
    let mut start = 0;
    while start < total {
        let end = (start + CHUNK).min(total);
        let range = format!("bytes {start}-{}/{total}", end - 1);
        // The upload URL is pre-authorized: Graph documents that sending the bearer token to it
        // can make the upload fail, and it may point at another host.
        last = graph
            .put_bytes(
                upload_url.clone(),
                bytes.slice(start..end),
                Some(range),
                false,
                ctx,
            )
            .await?;
        ctx.report_progress(
            end as f64,
            Some(total as f64),
            Some(format!("uploaded {end} of {total} bytes")),
        );
        start = end;
    }
    Ok(ToolOutput::from_structured(
        json!({ "item": item(&last), "upload": "session" }),
    ))
}

pub(super) async fn create_folder(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let drive = args::segment(args, "drive_id")?;
    let name = args::string(args, "name")?;
    let url = match args::opt_string(args, "parent_item_id")? {
        Some(id) => graph.url(
            &[
                "drives".into(),
                drive,
                "items".into(),
                PathSegment::encode("parent_item_id", id)?,
                "children".into(),
            ],
            &[],
        )?,
        None => graph.url(
            &["drives".into(), drive, "root".into(), "children".into()],
            &[],
        )?,
    };
    let body = json!({ "name": name, "folder": {}, "@microsoft.graph.conflictBehavior": "fail" });
    let created = graph.post(url, &body, ctx, false).await?;
    Ok(ToolOutput::from_structured(
        json!({ "item": item(&created) }),
    ))
}
