//! Emulated Teams: joined teams, channels, channel posts with replies (`$expand=replies`),
//! chats and chat messages. Non-members get Graph's 403.

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

fn team_member(store: &Store, caller: &Caller, team: &str) -> Result<(), Response> {
    match store.teams.iter().find(|(t, _)| t["id"] == team) {
        None => Err(not_found("team")),
        Some((_, members)) if !members.contains(&caller.user) => Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Forbidden: the user is not a member of this team.",
        )),
        Some(_) => Ok(()),
    }
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
        (&Method::GET, ["teams", team, "channels"]) => {
            team_member(store, caller, team)?;
            let channels: Vec<Value> = store
                .channels
                .iter()
                .filter(|(t, _)| t == team)
                .map(|(_, c)| c.clone())
                .collect();
            store::collection(req, &channels, 100)
        }
        (method, ["teams", team, "channels", channel, "messages", tail @ ..]) => {
            team_member(store, caller, team)?;
            if !store
                .channels
                .iter()
                .any(|(t, c)| t == team && c["id"] == *channel)
            {
                return Err(not_found("channel"));
            }
            let at = |store: &Store, id: &str| {
                store
                    .posts
                    .iter()
                    .position(|p| p.team == *team && p.channel == *channel && p.message["id"] == id)
            };
            match (method, tail) {
                (&Method::GET, []) => {
                    let posts: Vec<Value> = store
                        .posts
                        .iter()
                        .rev()
                        .filter(|p| p.team == *team && p.channel == *channel)
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
                        team: (*team).to_owned(),
                        channel: (*channel).to_owned(),
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
        (method, ["chats", chat, "messages"]) => {
            match store.chats.iter().find(|(c, _)| c["id"] == *chat) {
                None => return Err(not_found("chat")),
                Some((_, members)) if !members.contains(&caller.user) => {
                    return Err(error(
                        StatusCode::FORBIDDEN,
                        "Forbidden",
                        "Forbidden: the user is not a member of this chat.",
                    ));
                }
                Some(_) => {}
            }
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
