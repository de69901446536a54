//! What each Outlook tool sends to Graph and how the answer is rendered. Every read names the
//! fields it returns with `$select`, so Graph sends no more than the tool shows.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use super::super::{
    args::{self, Args},
    client::GraphClient,
    schema::{body_text, field, render_people, render_person, text_field},
};
use crate::{CallContext, ToolError, ToolOutput, extract, upstream::PathSegment};

const SUMMARY_FIELDS: &str = "id,subject,from,toRecipients,receivedDateTime,isRead,hasAttachments,bodyPreview,parentFolderId,webLink";
/// Longest body returned by get_message; a mail body is not a document to page through.
const MAX_BODY_CHARS: usize = 50_000;

fn summary(message: &Value) -> Value {
    json!({
        "id": text_field(message, "id"),
        "subject": field(message, "subject"),
        "from": render_person(message.get("from")),
        "to": render_people(message.get("toRecipients")),
        "received_at": field(message, "receivedDateTime"),
        "is_read": message.get("isRead").and_then(Value::as_bool).unwrap_or(false),
        "has_attachments": message.get("hasAttachments").and_then(Value::as_bool).unwrap_or(false),
        "preview": preview(&text_field(message, "bodyPreview")),
        "folder_id": field(message, "parentFolderId"),
        "web_link": field(message, "webLink"),
    })
}

/// Graph's `bodyPreview`: the first 255 characters of the body, cut where the gateway cannot
/// redact across the cut, so a full-length one loses its last token (see
/// [`extract::trim_cut_edges`]).
fn preview(text: &str) -> String {
    let cut = text.chars().count() >= BODY_PREVIEW_CHARS;
    extract::trim_cut_edges(text, false, cut)
}

const BODY_PREVIEW_CHARS: usize = 255;

/// Dates go into `$filter` verbatim, so only a strict ISO 8601 shape is let through.
fn date(args: &Args, key: &str) -> Result<Option<String>, ToolError> {
    let Some(text) = args::opt_string(args, key)? else {
        return Ok(None);
    };
    let ok = text.len() <= 40
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+'))
        && text.as_bytes().get(4) == Some(&b'-');
    if !ok {
        return Err(ToolError::InvalidArguments(format!(
            "`{key}` must be an ISO 8601 date-time like 2026-11-01T00:00:00Z"
        )));
    }
    Ok(Some(text.to_owned()))
}

pub(super) async fn list(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let top = args::int(args, "limit", 25, 1, 50)?.to_string();
    let mut query = vec![("$select", SUMMARY_FIELDS.to_owned()), ("$top", top)];
    let url = if tool == "search_messages" {
        // $search takes a quoted KQL string; inner quotes would end it early.
        let words = args::string(args, "query")?.replace('"', "");
        query.push(("$search", format!("\"{words}\"")));
        graph.url(&["me".into(), "messages".into()], &query)?
    } else {
        let folder = args::opt_string(args, "folder")?.unwrap_or("inbox");
        let mut filters = Vec::new();
        if args::boolean(args, "unread_only")? {
            filters.push("isRead eq false".to_owned());
        }
        if let Some(after) = date(args, "received_after")? {
            filters.push(format!("receivedDateTime ge {after}"));
        }
        if let Some(before) = date(args, "received_before")? {
            filters.push(format!("receivedDateTime lt {before}"));
        }
        if !filters.is_empty() {
            query.push(("$filter", filters.join(" and ")));
        }
        query.push(("$orderby", "receivedDateTime desc".to_owned()));
        graph.url(
            &[
                "me".into(),
                "mailFolders".into(),
                PathSegment::encode("folder", folder)?,
                "messages".into(),
            ],
            &query,
        )?
    };
    let page = graph.page(tool, args, url, ctx).await?;
    let messages: Vec<Value> = page.items.iter().map(summary).collect();
    Ok(ToolOutput::from_structured(
        json!({ "messages": messages, "next_cursor": page.next_cursor }),
    ))
}

pub(super) async fn get(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let id = args::string(args, "message_id")?;
    let select = format!("{SUMMARY_FIELDS},ccRecipients,body");
    let message = graph
        .get(
            graph.url(
                &[
                    "me".into(),
                    "messages".into(),
                    PathSegment::encode("message_id", id)?,
                ],
                &[("$select", select)],
            )?,
            ctx,
        )
        .await?;
    let attachments = if message.get("hasAttachments").and_then(Value::as_bool) == Some(true) {
        let url = graph.url(
            &[
                "me".into(),
                "messages".into(),
                PathSegment::encode("message_id", id)?,
                "attachments".into(),
            ],
            &[("$select", "id,name,contentType,size".to_owned())],
        )?;
        let listed = graph.get(url, ctx).await?;
        listed
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut body = body_text(message.get("body"));
    let truncated = body.chars().count() > MAX_BODY_CHARS;
    if truncated {
        body = body.chars().take(MAX_BODY_CHARS).collect();
    }
    let mut rendered = summary(&message);
    rendered["cc"] = Value::Array(render_people(message.get("ccRecipients")));
    rendered["body"] = Value::String(body);
    rendered["body_truncated"] = Value::Bool(truncated);
    rendered["attachments"] = attachments
        .iter()
        .map(|a| {
            json!({ "id": text_field(a, "id"), "name": field(a, "name"),
                         "content_type": field(a, "contentType"),
                         "size": a.get("size").and_then(Value::as_i64).unwrap_or(0) })
        })
        .collect();
    Ok(ToolOutput::from_structured(json!({ "message": rendered })))
}

pub(crate) fn window(args: &Args) -> Result<extract::Window, ToolError> {
    let offset = args::int(args, "offset", 0, 0, u64::from(u32::MAX))?;
    let max_chars = args::int(args, "max_chars", 20_000, 100, 50_000)?;
    Ok(extract::Window {
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        max_chars: usize::try_from(max_chars).unwrap_or(20_000),
    })
}

/// The text window of a document as tools return it.
pub(crate) fn extracted_window(
    name: Option<&str>,
    bytes: &[u8],
    content_type: Option<&str>,
    window: extract::Window,
    filter: &crate::TextFilter,
) -> Result<Value, ToolError> {
    let text = extract::extract(bytes, content_type, name, window, filter)
        .map_err(|error| ToolError::InvalidArguments(error.to_string()))?;
    Ok(json!({
        "name": name, "format": text.format.to_string(), "text": text.text,
        "offset": text.offset, "total_chars": text.total_chars, "next_offset": text.next_offset,
    }))
}

pub(super) async fn attachment(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let id = args::string(args, "message_id")?;
    let attachment_id = args::string(args, "attachment_id")?;
    let window = window(args)?;
    let attachment = graph
        .get(
            graph.url(
                &[
                    "me".into(),
                    "messages".into(),
                    PathSegment::encode("message_id", id)?,
                    "attachments".into(),
                    PathSegment::encode("attachment_id", attachment_id)?,
                ],
                &[],
            )?,
            ctx,
        )
        .await?;
    let kind = text_field(&attachment, "@odata.type");
    if !kind.is_empty() && kind != "#microsoft.graph.fileAttachment" {
        return Err(ToolError::InvalidArguments(format!(
            "the attachment is a {kind}, not a file; only file attachments can be read as text"
        )));
    }
    let bytes = STANDARD
        .decode(text_field(&attachment, "contentBytes"))
        .map_err(|_| {
            ToolError::BadResponse("the attachment's contentBytes are not base64".into())
        })?;
    let name = attachment.get("name").and_then(Value::as_str);
    let content_type = attachment.get("contentType").and_then(Value::as_str);
    Ok(ToolOutput::from_structured(extracted_window(
        name,
        &bytes,
        content_type,
        window,
        &ctx.text_filter,
    )?))
}

pub(super) async fn folders(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let top = args::int(args, "limit", 25, 1, 50)?.to_string();
    let url = graph.url(
        &["me".into(), "mailFolders".into()],
        &[
            (
                "$select",
                "id,displayName,unreadItemCount,totalItemCount".to_owned(),
            ),
            ("$top", top),
        ],
    )?;
    let page = graph.page("list_folders", args, url, ctx).await?;
    let folders: Vec<Value> = page
        .items
        .iter()
        .map(|f| {
            json!({ "id": text_field(f, "id"), "name": text_field(f, "displayName"),
                         "unread": f.get("unreadItemCount").and_then(Value::as_i64).unwrap_or(0),
                         "total": f.get("totalItemCount").and_then(Value::as_i64).unwrap_or(0) })
        })
        .collect();
    Ok(ToolOutput::from_structured(
        json!({ "folders": folders, "next_cursor": page.next_cursor }),
    ))
}

/// A Graph `message` resource from the compose arguments.
fn compose(args: &Args) -> Result<Value, ToolError> {
    let mut message = json!({});
    if let Some(subject) = args::opt_string(args, "subject")? {
        message["subject"] = json!(subject);
    }
    if let Some(Value::String(body)) = args.get("body") {
        let html = args::opt_string(args, "body_type")? == Some("html");
        message["body"] =
            json!({ "contentType": if html { "HTML" } else { "Text" }, "content": body });
    }
    for (key, graph_key) in [
        ("to", "toRecipients"),
        ("cc", "ccRecipients"),
        ("bcc", "bccRecipients"),
    ] {
        let list = args::recipients(args, key)?;
        if !list.is_empty() {
            message[graph_key] = Value::Array(list);
        }
    }
    Ok(message)
}

pub(super) async fn send(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let message = compose(args)?;
    if message.get("toRecipients").is_none() {
        return Err(ToolError::InvalidArguments(
            "`to` needs at least one address".into(),
        ));
    }
    let body = json!({ "message": message, "saveToSentItems": true });
    graph
        .post(
            graph.url(&["me".into(), "sendMail".into()], &[])?,
            &body,
            ctx,
            false,
        )
        .await?;
    Ok(ToolOutput::from_structured(
        json!({ "status": "sent", "message_id": null }),
    ))
}

pub(super) async fn respond(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let id = args::string(args, "message_id")?;
    let comment = args::opt_string(args, "comment")?.unwrap_or_default();
    let (action, body, status) = if tool == "forward_message" {
        let to = args::recipients(args, "to")?;
        if to.is_empty() {
            return Err(ToolError::InvalidArguments(
                "`to` needs at least one address".into(),
            ));
        }
        (
            "forward",
            json!({ "comment": comment, "toRecipients": to }),
            "forwarded",
        )
    } else if args::boolean(args, "reply_all")? {
        ("replyAll", json!({ "comment": comment }), "replied to all")
    } else {
        ("reply", json!({ "comment": comment }), "replied")
    };
    graph
        .post(
            graph.url(
                &[
                    "me".into(),
                    "messages".into(),
                    PathSegment::encode("message_id", id)?,
                    action.into(),
                ],
                &[],
            )?,
            &body,
            ctx,
            false,
        )
        .await?;
    Ok(ToolOutput::from_structured(
        json!({ "status": status, "message_id": id }),
    ))
}

pub(super) async fn draft(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let message = compose(args)?;
    let created = graph
        .post(
            graph.url(&["me".into(), "messages".into()], &[])?,
            &message,
            ctx,
            false,
        )
        .await?;
    Ok(ToolOutput::from_structured(
        json!({ "message": summary(&created) }),
    ))
}

pub(super) async fn send_draft(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let id = args::segment(args, "message_id")?;
    graph
        .post(
            graph.url(&["me".into(), "messages".into(), id, "send".into()], &[])?,
            &json!({}),
            ctx,
            false,
        )
        .await?;
    Ok(ToolOutput::from_structured(
        json!({ "status": "sent", "message_id": args::string(args, "message_id")? }),
    ))
}

pub(super) async fn move_to(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let id = args::string(args, "message_id")?;
    let destination = args::string(args, "destination")?;
    let body = json!({ "destinationId": destination });
    let moved = graph
        .post(
            graph.url(
                &[
                    "me".into(),
                    "messages".into(),
                    PathSegment::encode("message_id", id)?,
                    "move".into(),
                ],
                &[],
            )?,
            &body,
            ctx,
            false,
        )
        .await?;
    Ok(ToolOutput::from_structured(
        json!({ "message": summary(&moved) }),
    ))
}
