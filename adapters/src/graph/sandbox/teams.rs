//! Emulated Teams: joined teams, a team and a channel by id (matched ignoring case, as Graph
//! does), channels, channel posts with replies (`$expand=replies`), chats, their members
//! (`conversationMember`s, paged) and chat messages. Non-members get Graph's 403.

use axum::{
    http::{Method, StatusCode},
    response::Response,
};
use serde_json::{Value, json};

use super::{
    Caller, Req, error, not_found,
    store::{self, ChannelPost, Store},
};

fn new_message(store: &mut Store, caller: &Caller, req: &Req<'_>) -> Result<Value, Response> {
    let body = req.json()?;
    let content = body
        .pointer("/body/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if content.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Message body cannot be empty.",
        ));
    }
    let user = store.user(&caller.user);
    let id = store.id("1700000");
    Ok(
        json!({ "id": id, "messageType": "message", "createdDateTime": "2026-11-20T12:00:00Z",
        "subject": body.get("subject").cloned().unwrap_or(Value::Null), "body": body["body"],
        "from": { "user": { "id": user["id"], "displayName": user["displayName"] } },
        "webUrl": format!("https://teams.microsoft.com/l/message/{id}") }),
    )
}

/// The team, when the caller is a member. Graph matches team (and channel) ids ignoring case,
/// so a policy can only trust the id Graph hands back, not the one asked for.
fn team_of<'s>(store: &'s Store, caller: &Caller, team: &str) -> Result<&'s Value, Response> {
    match store.teams.iter().find(|(t, _)| same_id(&t["id"], team)) {
        None => Err(not_found("team")),
        Some((_, members)) if !members.contains(&caller.user) => Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Forbidden: the user is not a member of this team.",
        )),
        Some((t, _)) => Ok(t),
    }
}

/// The channel of `team` (a stored id) as stored, matched like Graph: ignoring ASCII case.
fn channel_of<'s>(store: &'s Store, team: &str, channel: &str) -> Result<&'s Value, Response> {
    store
        .channels
        .iter()
        .find(|(t, c)| t == team && same_id(&c["id"], channel))
        .map(|(_, c)| c)
        .ok_or_else(|| not_found("channel"))
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap_or_default().to_owned()
}

fn same_id(stored: &Value, asked: &str) -> bool {
    stored
        .as_str()
        .is_some_and(|id| id.eq_ignore_ascii_case(asked))
}

/// Refuses a chat that does not exist or that the caller is not in.
fn chat_member(store: &Store, caller: &Caller, chat: &str) -> Result<(), Response> {
    match store.chats.iter().find(|(c, _)| c["id"] == chat) {
        None => Err(not_found("chat")),
        Some((_, members)) if !members.contains(&caller.user) => Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Forbidden: the user is not a member of this chat.",
        )),
        Some(_) => Ok(()),
    }
}

/// The chat's `conversationMember`s: its users as `aadUserConversationMember`s (address from
/// their directory entry), then its other members as stored (guests, phone participants).
fn chat_members(store: &Store, chat: &str) -> Vec<Value> {
    let users = store
        .chats
        .iter()
        .filter(|(c, _)| c["id"] == chat)
        .flat_map(|(_, logins)| logins.iter())
        .map(|login| {
            let user = store.user(login);
            json!({ "@odata.type": "#microsoft.graph.aadUserConversationMember",
                "id": format!("MCMjMjRmY2-{chat}-{login}"), "roles": ["owner"],
                "displayName": user["displayName"], "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
                "userId": user["id"], "email": user["mail"], "tenantId": super::seed::TENANT_ID })
        });
    let others = store
        .chat_others
        .iter()
        .filter(|(c, _)| c == chat)
        .map(|(_, member)| member.clone());
    users.chain(others).collect()
}

/// `POST /_sandbox/chats` (test control, not Graph): adds a chat of the emulator's `users`
/// (logins) and other `members` stored verbatim as `conversationMember`s, so a test can build the
/// chats it needs (outside members, members without an address) without a seed for each.
pub(crate) fn add_chat(store: &mut Store, body: &Value) -> Result<Value, Response> {
    let bad = |what: &str| error(StatusCode::BAD_REQUEST, "BadRequest", what);
    let id = body["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad("`id` is required."))?;
    if store.chats.iter().any(|(c, _)| c["id"] == id) {
        return Err(bad("A chat with this id exists."));
    }
    let logins: Vec<String> = body["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let chat = json!({ "id": id, "topic": body.get("topic").cloned().unwrap_or(Value::Null),
        "chatType": "group", "createdDateTime": "2026-11-20T08:00:00Z", "lastUpdatedDateTime": "2026-11-20T08:00:00Z" });
    store.chats.push((chat.clone(), logins));
    for member in body["members"].as_array().into_iter().flatten() {
        store.chat_others.push((id.to_owned(), member.clone()));
    }
    Ok(chat)
}

pub(crate) fn handle(
    store: &mut Store,
    caller: &Caller,
    req: &Req<'_>,
    at: usize,
) -> Result<Response, Response> {
    let rest: Vec<&str> = req.segments[at..].iter().map(String::as_str).collect();
    let expand = req.param("$expand") == Some("replies");
    match (req.method, rest.as_slice()) {
        (&Method::GET, ["joinedTeams"]) => {
            let teams: Vec<Value> = store
                .teams
                .iter()
                .filter(|(_, m)| m.contains(&caller.user))
                .map(|(t, _)| t.clone())
                .collect();
            store::collection(req, &teams, 20)
        }
        (&Method::GET, ["chats"]) => {
            let chats: Vec<Value> = store
                .chats
                .iter()
                .filter(|(_, m)| m.contains(&caller.user))
                .map(|(c, _)| c.clone())
                .collect();
            store::collection(req, &chats, 20)
        }
        (&Method::GET, ["teams", team]) => store::one(req, team_of(store, caller, team)?),
        (&Method::GET, ["teams", team, "channels"]) => {
            let team = id_of(team_of(store, caller, team)?);
            let channels: Vec<Value> = store
                .channels
                .iter()
                .filter(|(t, _)| *t == team)
                .map(|(_, c)| c.clone())
                .collect();
            store::collection(req, &channels, 100)
        }
        (&Method::GET, ["teams", team, "channels", channel]) => {
            let team = id_of(team_of(store, caller, team)?);
            store::one(req, channel_of(store, &team, channel)?)
        }
        (method, ["teams", team, "channels", channel, "messages", tail @ ..]) => {
            // Stored under the ids as Graph keeps them, however the request spelt them.
            let team = id_of(team_of(store, caller, team)?);
            let channel = id_of(channel_of(store, &team, channel)?);
            let (team, channel) = (team.as_str(), channel.as_str());
            let at = |store: &Store, id: &str| {
                store
                    .posts
                    .iter()
                    .position(|p| p.team == team && p.channel == channel && p.message["id"] == id)
            };
            match (method, tail) {
                (&Method::GET, []) => {
                    let posts: Vec<Value> = store
                        .posts
                        .iter()
                        .rev()
                        .filter(|p| p.team == team && p.channel == channel)
                        .map(|p| {
                            let mut m = p.message.clone();
                            if expand {
                                m["replies"] = Value::Array(p.replies.clone());
                            }
                            m
                        })
                        .collect();
                    store::collection(req, &posts, 20)
                }
                (&Method::POST, []) => {
                    let message = new_message(store, caller, req)?;
                    store.posts.push(ChannelPost {
                        team: team.to_owned(),
                        channel: channel.to_owned(),
                        message: message.clone(),
                        replies: Vec::new(),
                    });
                    store::created(&message)
                }
                (&Method::GET, [id]) => at(store, id).map_or_else(
                    || Err(not_found("message")),
                    |i| store::one(req, &store.posts[i].message),
                ),
                (&Method::GET, [id, "replies"]) => {
                    let i = at(store, id).ok_or_else(|| not_found("message"))?;
                    store::collection(req, &store.posts[i].replies.clone(), 20)
                }
                (&Method::POST, [id, "replies"]) => {
                    let i = at(store, id).ok_or_else(|| not_found("message"))?;
                    let mut message = new_message(store, caller, req)?;
                    message["replyToId"] = json!(id);
                    store.posts[i].replies.push(message.clone());
                    store::created(&message)
                }
                _ => Err(error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Unsupported channel request.",
                )),
            }
        }
        (&Method::GET, ["chats", chat, "members"]) => {
            chat_member(store, caller, chat)?;
            store::collection(req, &chat_members(store, chat), 20)
        }
        (method, ["chats", chat, "messages"]) => {
            chat_member(store, caller, chat)?;
            if method == Method::POST {
                let mut message = new_message(store, caller, req)?;
                message["chatId"] = json!(chat);
                store
                    .chat_messages
                    .push(((*chat).to_owned(), message.clone()));
                return store::created(&message);
            }
            let messages: Vec<Value> = store
                .chat_messages
                .iter()
                .rev()
                .filter(|(c, _)| c == chat)
                .map(|(_, m)| m.clone())
                .collect();
            store::collection(req, &messages, 20)
        }
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Unsupported request {} {}", req.method, req.path),
        )),
    }
}
