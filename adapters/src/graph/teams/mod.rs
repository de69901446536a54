//! Microsoft Teams through Graph: joined teams, channels, channel threads, chats, message search
//! (`POST /search/query`, entity `chatMessage`) and posting.

mod facts;
mod ops;

pub(crate) use facts::resolve as resolve_facts;
pub(crate) use ops::search_query;

use serde_json::{Map, Value, json};

use super::{
    client::GraphClient,
    schema::{cursor, id, limit, nullable_string, object, page, person, string},
};
use crate::{CallContext, ToolAnnotations, ToolError, ToolOutput, ToolSpec};

pub(crate) fn message_schema(with_replies: bool) -> Value {
    let mut properties = json!({
        "id": string(), "from": person(), "created_at": nullable_string(),
        "subject": nullable_string(), "text": string(), "web_url": nullable_string(),
    });
    let mut required = vec!["id", "from", "created_at", "subject", "text", "web_url"];
    if with_replies {
        properties["replies"] = json!({ "type": "array", "items": message_schema(false) });
        required.push("replies");
    }
    object(properties, &required)
}

fn paged(mut more: Value, default: u64, max: u64) -> Value {
    more["limit"] = limit(default, max);
    more["cursor"] = cursor();
    more
}

fn text_arg() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 28000, "description": "Message text." })
}

fn posted() -> Value {
    object(json!({ "message": message_schema(false) }), &["message"])
}

fn team_channel() -> Value {
    json!({ "team_id": id("Team id (list_teams)."), "channel_id": id("Channel id (list_channels).") })
}

pub(crate) fn tools() -> Vec<ToolSpec> {
    let named = object(
        json!({ "id": string(), "name": string(), "description": nullable_string() }),
        &["id", "name", "description"],
    );
    let with = |base: Value, extra: Value| {
        let mut merged = base;
        if let (Some(target), Some(more)) = (merged.as_object_mut(), extra.as_object()) {
            target.extend(more.clone());
        }
        merged
    };
    vec![
        ToolSpec::new("list_teams", "List my Teams teams", "Lists the teams the user is a member of, with their ids for list_channels.",
            ToolAnnotations::READ, object(paged(json!({}), 25, 50), &[]), page("teams", named.clone()))
        .with_scopes(&["Team.ReadBasic.All"]),
        ToolSpec::new("list_channels", "List a team's channels", "Lists the channels of one team with their ids.",
            ToolAnnotations::READ, object(json!({ "team_id": id("Team id (list_teams).") }), &["team_id"]),
            object(json!({ "channels": { "type": "array", "items": named } }), &["channels"]))
        .with_scopes(&["Channel.ReadBasic.All"]),
        ToolSpec::new("list_channel_messages", "List channel threads",
            "Lists the newest threads of a channel: each top-level post with its replies (HTML as \
             plain text). Paged with `cursor`/`next_cursor`.",
            ToolAnnotations::READ, object(paged(team_channel(), 20, 50), &["team_id", "channel_id"]),
            page("messages", message_schema(true)))
        .with_scopes(&["ChannelMessage.Read.All"]),
        ToolSpec::new("get_thread", "Read a channel thread",
            "Fetches one channel post and all of its replies (up to 200).",
            ToolAnnotations::READ,
            object(with(team_channel(), json!({ "message_id": id("The thread's top-level message id.") })), &["team_id", "channel_id", "message_id"]),
            object(json!({ "thread": message_schema(true) }), &["thread"]))
        .with_scopes(&["ChannelMessage.Read.All"]),
        ToolSpec::new("post_channel_message", "Post to a Teams channel",
            "Starts a new thread in a channel as the user. Each call posts another message.",
            ToolAnnotations::CREATE,
            object(with(team_channel(), json!({ "text": text_arg(), "subject": { "type": "string", "maxLength": 255 } })), &["team_id", "channel_id", "text"]),
            posted())
        // Reading the team and the channel (their canonical ids, for the policy) needs the two
        // read-basic permissions.
        .with_scopes(&["ChannelMessage.Send", "Team.ReadBasic.All", "Channel.ReadBasic.All"])
        .resolving_facts(),
        ToolSpec::new("reply_to_channel_message", "Reply in a Teams thread",
            "Replies to a channel thread as the user. Each call posts another reply.",
            ToolAnnotations::CREATE,
            object(with(team_channel(), json!({ "message_id": id("The thread's top-level message id."), "text": text_arg() })), &["team_id", "channel_id", "message_id", "text"]),
            posted())
        .with_scopes(&["ChannelMessage.Send", "Team.ReadBasic.All", "Channel.ReadBasic.All"])
        .resolving_facts(),
        ToolSpec::new("list_chats", "List my Teams chats",
            "Lists the user's one-on-one, group and meeting chats with their ids and topics.",
            ToolAnnotations::READ, object(paged(json!({}), 25, 50), &[]),
            page("chats", object(json!({ "id": string(), "topic": nullable_string(), "chat_type": nullable_string(), "updated_at": nullable_string() }),
                &["id", "topic", "chat_type", "updated_at"])))
        .with_scopes(&["Chat.ReadBasic"]),
        ToolSpec::new("list_chat_messages", "List a chat's messages",
            "Lists the messages of one chat, newest first. Paged with `cursor`/`next_cursor`.",
            ToolAnnotations::READ, object(paged(json!({ "chat_id": id("Chat id (list_chats).") }), 25, 50), &["chat_id"]),
            page("messages", message_schema(false)))
        .with_scopes(&["Chat.Read"]),
        ToolSpec::new("send_chat_message", "Send a Teams chat message",
            "Sends a message in an existing chat as the user. Each call sends another message.",
            // A chat may include people of other organizations (federation); a channel does not.
            ToolAnnotations::CREATE.reaching_outside(),
            object(json!({ "chat_id": id("Chat id (list_chats)."), "text": text_arg() }), &["chat_id", "text"]),
            posted())
        // The chat's members are whom the message reaches; reading them needs ChatMember.Read.
        .with_scopes(&["ChatMessage.Send", "ChatMember.Read"])
        .resolving_facts(),
        ToolSpec::new("search_messages", "Search Teams messages",
            "Searches the chat and channel messages the user can see (Microsoft Search, KQL), most \
             relevant first. Returns the matching messages' summaries. Paged with `cursor`.",
            ToolAnnotations::READ,
            object(paged(json!({ "query": { "type": "string", "minLength": 1, "maxLength": 500 } }), 25, 25), &["query"]),
            page("hits", object(json!({ "id": string(), "summary": string(), "from": person(),
                "created_at": nullable_string(), "chat_id": nullable_string(), "channel_id": nullable_string(),
                "team_id": nullable_string(), "web_url": nullable_string() }),
                &["id", "summary", "from", "created_at", "chat_id", "channel_id", "team_id", "web_url"])))
        // Search of chatMessage needs both the chat and the channel read permission.
        .with_scopes(&["Chat.Read", "ChannelMessage.Read.All"]),
    ]
}

pub(crate) async fn call(
    graph: &GraphClient,
    tool: &str,
    args: &Map<String, Value>,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    match tool {
        "list_teams" | "list_chats" => ops::list_simple(graph, tool, args, ctx).await,
        "list_channels" => ops::channels(graph, args, ctx).await,
        "list_channel_messages" | "list_chat_messages" => {
            ops::messages(graph, tool, args, ctx).await
        }
        "get_thread" => ops::thread(graph, args, ctx).await,
        "post_channel_message" | "reply_to_channel_message" | "send_chat_message" => {
            ops::post(graph, tool, args, ctx).await
        }
        "search_messages" => ops::search(graph, args, ctx).await,
        other => Err(ToolError::UnknownTool(other.to_owned())),
    }
}
