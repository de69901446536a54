//! What each Teams tool sends to Graph and how chat messages are rendered.

use serde_json::{Value, json};

use super::super::{
    args::{self, Args},
    client::GraphClient,
    cursor,
    schema::{body_text, field, hit_summary, render_person, text_field},
};
use crate::{CallContext, ToolError, ToolOutput, upstream::PathSegment};

pub(crate) fn message(m: &Value) -> Value {
    json!({
        "id": text_field(m, "id"), "from": render_person(m.get("from")),
        "created_at": field(m, "createdDateTime"), "subject": field(m, "subject"),
        "text": body_text(m.get("body")), "web_url": field(m, "webUrl"),
    })
}

fn with_replies(m: &Value, replies: &[Value]) -> Value {
    let mut rendered = message(m);
    rendered["replies"] = replies.iter().map(message).collect();
    rendered
}

pub(super) async fn list_simple(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let top = args::int(args, "limit", 25, 1, 50)?.to_string();
    let (segment, select) = if tool == "list_teams" {
        ("joinedTeams", "id,displayName,description")
    } else {
        ("chats", "id,topic,chatType,lastUpdatedDateTime")
    };
    let url = graph.url(
        &["me".into(), segment.into()],
        &[("$select", select.to_owned()), ("$top", top)],
    )?;
    let page = graph.page(tool, args, url, ctx).await?;
    let (key, items): (&str, Vec<Value>) = if tool == "list_teams" {
        ("teams", page.items.iter().map(|t| json!({ "id": text_field(t, "id"), "name": text_field(t, "displayName"), "description": field(t, "description") })).collect())
    } else {
        ("chats", page.items.iter().map(|c| json!({ "id": text_field(c, "id"), "topic": field(c, "topic"), "chat_type": field(c, "chatType"), "updated_at": field(c, "lastUpdatedDateTime") })).collect())
    };
    Ok(ToolOutput::from_structured(crate::tool::object([
        (key, Value::Array(items)),
        ("next_cursor", page.next_cursor.into()),
    ])))
}

pub(super) async fn channels(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let team = args::string(args, "team_id")?;
    let url = graph.url(
        &[
            "teams".into(),
            PathSegment::encode("team_id", team)?,
            "channels".into(),
        ],
        &[("$select", "id,displayName,description".to_owned())],
    )?;
    let body = graph.get(url, ctx).await?;
    let channels: Vec<Value> = body.get("value").and_then(Value::as_array).into_iter().flatten()
        .map(|c| json!({ "id": text_field(c, "id"), "name": text_field(c, "displayName"), "description": field(c, "description") }))
        .collect();
    Ok(ToolOutput::from_structured(json!({ "channels": channels })))
}

pub(super) async fn messages(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let top = args::int(
        args,
        "limit",
        if tool == "list_chat_messages" { 25 } else { 20 },
        1,
        50,
    )?
    .to_string();
    let url = if tool == "list_channel_messages" {
        graph.url(
            &channel_messages(args, &[])?,
            &[("$top", top), ("$expand", "replies".to_owned())],
        )?
    } else {
        let chat = args::string(args, "chat_id")?;
        graph.url(
            &[
                "chats".into(),
                PathSegment::encode("chat_id", chat)?,
                "messages".into(),
            ],
            &[("$top", top)],
        )?
    };
    let page = graph.page(tool, args, url, ctx).await?;
    let messages: Vec<Value> = page
        .items
        .iter()
        .map(|m| {
            if tool == "list_channel_messages" {
                let replies = m
                    .get("replies")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                with_replies(m, &replies)
            } else {
                message(m)
            }
        })
        .collect();
    Ok(ToolOutput::from_structured(
        json!({ "messages": messages, "next_cursor": page.next_cursor }),
    ))
}

/// Most replies one get_thread call collects, across reply pages.
const MAX_REPLIES: usize = 200;

/// `teams/{team_id}/channels/{channel_id}/messages`, then `rest`: the path of every
/// channel-message request, both ids from the arguments.
fn channel_messages(args: &Args, rest: &[PathSegment]) -> Result<Vec<PathSegment>, ToolError> {
    let mut path = vec![
        "teams".into(),
        args::segment(args, "team_id")?,
        "channels".into(),
        args::segment(args, "channel_id")?,
        "messages".into(),
    ];
    path.extend_from_slice(rest);
    Ok(path)
}

pub(super) async fn thread(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let id = args::segment(args, "message_id")?;
    let root = graph
        .get(
            graph.url(&channel_messages(args, std::slice::from_ref(&id))?, &[])?,
            ctx,
        )
        .await?;
    let mut replies = Vec::new();
    let mut url = Some(graph.url(
        &channel_messages(args, &[id, "replies".into()])?,
        &[("$top", "50".to_owned())],
    )?);
    let no_cursor = Args::new();
    while let Some(next) = url.take() {
        let page = graph.page("get_thread", &no_cursor, next, ctx).await?;
        replies.extend(page.items);
        if replies.len() >= MAX_REPLIES {
            replies.truncate(MAX_REPLIES);
            break;
        }
        // The page's cursor wraps the nextLink; unwrap it to fetch on within this one call.
        if let Some(token) = page.next_cursor {
            let mut carry = Args::new();
            carry.insert("cursor".into(), Value::String(token));
            // Checked like a caller's cursor: a nextLink off Graph would carry the user's token.
            url = cursor::decode("get_thread", &carry)?
                .map(|link| graph.next_link(&link))
                .transpose()?;
        }
    }
    Ok(ToolOutput::from_structured(
        json!({ "thread": with_replies(&root, &replies) }),
    ))
}

pub(super) async fn post(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let text = args::string(args, "text")?;
    let mut body = json!({ "body": { "contentType": "text", "content": text } });
    let url = match tool {
        "send_chat_message" => graph.url(
            &[
                "chats".into(),
                args::segment(args, "chat_id")?,
                "messages".into(),
            ],
            &[],
        )?,
        _ => {
            if tool == "reply_to_channel_message" {
                let reply_to = args::segment(args, "message_id")?;
                graph.url(&channel_messages(args, &[reply_to, "replies".into()])?, &[])?
            } else {
                if let Some(subject) = args::opt_string(args, "subject")? {
                    body["subject"] = json!(subject);
                }
                graph.url(&channel_messages(args, &[])?, &[])?
            }
        }
    };
    let created = graph.post(url, &body, ctx, false).await?;
    Ok(ToolOutput::from_structured(
        json!({ "message": message(&created) }),
    ))
}

/// `POST /search/query` for `entity`, paged by offset (`from`) behind the opaque cursor.
pub(crate) async fn search_query(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    entities: &[&str],
    size: u64,
    ctx: &CallContext,
) -> Result<(Vec<Value>, Option<String>), ToolError> {
    let query = args::string(args, "query")?;
    let from: u64 = match cursor::decode(tool, args)? {
        Some(offset) => offset
            .parse()
            .map_err(|_| ToolError::InvalidArguments("`cursor` is not valid".into()))?,
        None => 0,
    };
    let body = json!({ "requests": [{ "entityTypes": entities, "query": { "queryString": query }, "from": from, "size": size }] });
    // A search changes nothing, so it may be resent after a 5xx like a GET.
    let answer = graph
        .post(
            graph.url(&["search".into(), "query".into()], &[])?,
            &body,
            ctx,
            true,
        )
        .await?;
    let container = answer
        .pointer("/value/0/hitsContainers/0")
        .cloned()
        .unwrap_or(Value::Null);
    let hits = container
        .get("hits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let more = container
        .get("moreResultsAvailable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let next = (more && !hits.is_empty())
        .then(|| cursor::encode(tool, args, &(from + hits.len() as u64).to_string()));
    Ok((hits, next))
}

pub(super) async fn search(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    let size = args::int(args, "limit", 25, 1, 25)?;
    let (hits, next) =
        search_query(graph, "search_messages", args, &["chatMessage"], size, ctx).await?;
    let hits: Vec<Value> = hits
        .iter()
        .map(|hit| {
            let r = hit.get("resource").cloned().unwrap_or(Value::Null);
            json!({
                "id": text_field(&r, "id"), "summary": hit_summary(hit),
                "from": render_person(r.get("from")), "created_at": field(&r, "createdDateTime"),
                "chat_id": field(&r, "chatId"),
                "channel_id": r.pointer("/channelIdentity/channelId").and_then(Value::as_str).map_or(Value::Null, |s| json!(s)),
                "team_id": r.pointer("/channelIdentity/teamId").and_then(Value::as_str).map_or(Value::Null, |s| json!(s)),
                "web_url": field(&r, "webUrl"),
            })
        })
        .collect();
    Ok(ToolOutput::from_structured(
        json!({ "hits": hits, "next_cursor": next }),
    ))
}
