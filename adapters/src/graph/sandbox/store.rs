//! The emulated tenant's data and the collection answer every list shares: `$select`, `$top`,
//! `$skiptoken` paging with absolute `@odata.nextLink`s, and `POST /search/query`.

use std::collections::HashMap;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{Caller, Req, error};

pub(crate) struct Mail {
    pub owner: String,
    pub message: Value,
    pub attachments: Vec<Value>,
}

pub(crate) struct ChannelPost {
    pub team: String,
    pub channel: String,
    pub message: Value,
    pub replies: Vec<Value>,
}

pub(crate) struct Item {
    pub drive: String,
    pub parent: Option<String>,
    pub value: Value,
    pub content: Vec<u8>,
}

pub(crate) struct Upload {
    pub drive: String,
    pub parent: String,
    pub name: String,
    pub data: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct Store {
    pub users: Vec<Value>,
    pub folders: Vec<(String, Value)>,
    pub mail: Vec<Mail>,
    pub teams: Vec<(Value, Vec<String>)>,
    pub channels: Vec<(String, Value)>,
    pub posts: Vec<ChannelPost>,
    pub chats: Vec<(Value, Vec<String>)>,
    /// Chat members that are not the emulator's users (guests, phone participants), by chat id,
    /// as the `conversationMember`s Graph lists.
    pub chat_others: Vec<(String, Value)>,
    pub chat_messages: Vec<(String, Value)>,
    pub sites: Vec<Value>,
    pub drives: Vec<(String, Value)>,
    pub items: Vec<Item>,
    pub uploads: HashMap<String, Upload>,
    pub next_id: u64,
}

impl Store {
    pub fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:06}", self.next_id)
    }

    pub fn user(&self, login: &str) -> Value {
        self.users
            .iter()
            .find(|u| u["id"] == format!("u-{login}"))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// Keeps only the `$select`ed properties (plus `id` and `@odata.type`, as Graph does).
pub(crate) fn select(req: &Req<'_>, value: &Value) -> Value {
    let Some(fields) = req.param("$select") else {
        return value.clone();
    };
    let keep: Vec<&str> = fields.split(',').map(str::trim).collect();
    let Some(object) = value.as_object() else {
        return value.clone();
    };
    let kept: Map<String, Value> = object
        .iter()
        .filter(|(k, _)| keep.contains(&k.as_str()) || *k == "id" || k.starts_with("@odata"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

/// A collection answer: one page by `$top` (default `default_top`) and `$skiptoken`, and a
/// nextLink repeating the request's query with the next skip token.
pub(crate) fn collection(
    req: &Req<'_>,
    items: &[Value],
    default_top: usize,
) -> Result<Response, Response> {
    let top = match req.param("$top") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=999).contains(n))
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Invalid value for $top.",
                )
            })?,
        None => default_top,
    };
    let skip = match req.param("$skiptoken") {
        Some(text) => text
            .strip_prefix("skip-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid $skiptoken."))?,
        None => 0,
    };
    let page: Vec<Value> = items
        .iter()
        .skip(skip)
        .take(top)
        .map(|v| select(req, v))
        .collect();
    let mut body = json!({ "@odata.context": format!("{}/$metadata", req.base), "value": page });
    if skip + top < items.len() {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in req.query.iter().filter(|(k, _)| k != "$skiptoken") {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("$skiptoken", &format!("skip-{}", skip + top));
        body["@odata.nextLink"] = json!(format!("{}{}?{}", req.base, req.path, pairs.finish()));
    }
    Ok(Json(body).into_response())
}

pub(crate) fn one(req: &Req<'_>, value: &Value) -> Result<Response, Response> {
    Ok(Json(select(req, value)).into_response())
}

pub(crate) fn created(value: &Value) -> Result<Response, Response> {
    Ok((StatusCode::CREATED, Json(value.clone())).into_response())
}

fn matches(value: &Value, words: &[String]) -> bool {
    let text = value.to_string().to_lowercase();
    words.iter().all(|w| text.contains(w.as_str()))
}

pub(crate) fn words(query: &str) -> Vec<String> {
    query
        .replace('"', " ")
        .split_whitespace()
        .map(str::to_lowercase)
        .filter(|w| w != "*")
        .collect()
}

/// `POST /search/query`: one request, entity types chatMessage, driveItem, listItem or site.
pub(crate) fn search(store: &Store, caller: &Caller, req: &Req<'_>) -> Result<Response, Response> {
    let body = req.json()?;
    let request = body.pointer("/requests/0").cloned().unwrap_or(Value::Null);
    let entities: Vec<String> = request["entityTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let query = request
        .pointer("/query/queryString")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if entities.is_empty() || query.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "entityTypes and query.queryString are required.",
        ));
    }
    let mixed = entities.iter().any(|e| e == "chatMessage") && entities.len() > 1;
    if mixed {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "chatMessage cannot be combined with other entity types.",
        ));
    }
    let words = words(query);
    let mut hits: Vec<Value> = Vec::new();
    for entity in &entities {
        match entity.as_str() {
            "chatMessage" => {
                let member_teams: Vec<String> = store
                    .teams
                    .iter()
                    .filter(|(_, m)| m.contains(&caller.user))
                    .map(|(t, _)| t["id"].as_str().unwrap_or_default().to_owned())
                    .collect();
                let member_chats: Vec<String> = store
                    .chats
                    .iter()
                    .filter(|(_, m)| m.contains(&caller.user))
                    .map(|(c, _)| c["id"].as_str().unwrap_or_default().to_owned())
                    .collect();
                let channel = store
                    .posts
                    .iter()
                    .filter(|p| member_teams.contains(&p.team))
                    .flat_map(|p| std::iter::once(&p.message).chain(p.replies.iter()));
                let chat = store
                    .chat_messages
                    .iter()
                    .filter(|(c, _)| member_chats.contains(c))
                    .map(|(_, m)| m);
                hits.extend(
                    channel
                        .chain(chat)
                        .filter(|m| matches(&m["body"], &words))
                        .cloned()
                        .map(|mut m| {
                            m["@odata.type"] = json!("#microsoft.graph.chatMessage");
                            m
                        }),
                );
            }
            "driveItem" => hits.extend(
                store
                    .items
                    .iter()
                    .filter(|i| {
                        matches(&i.value["name"], &words)
                            || matches(
                                &Value::String(String::from_utf8_lossy(&i.content).into_owned()),
                                &words,
                            )
                    })
                    .map(|i| {
                        let mut v = i.value.clone();
                        v["@odata.type"] = json!("#microsoft.graph.driveItem");
                        v
                    }),
            ),
            "site" => hits.extend(store.sites.iter().filter(|s| matches(s, &words)).map(|s| {
                let mut v = s.clone();
                v["@odata.type"] = json!("#microsoft.graph.site");
                v
            })),
            "listItem" => {}
            other => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Unsupported entity type {other}."),
                ));
            }
        }
    }
    let from = request["from"].as_u64().unwrap_or(0) as usize;
    let size = request["size"].as_u64().unwrap_or(25).clamp(1, 500) as usize;
    let page: Vec<Value> = hits.iter().skip(from).take(size).enumerate().map(|(rank, r)| {
        let summary = r.pointer("/body/content").or_else(|| r.get("name")).or_else(|| r.get("displayName")).and_then(Value::as_str).unwrap_or_default();
        json!({ "hitId": r["id"], "rank": from + rank + 1, "summary": summary.chars().take(200).collect::<String>(), "resource": r })
    }).collect();
    Ok(Json(json!({ "value": [{ "searchTerms": words, "hitsContainers": [{
        "hits": page, "total": hits.len(), "moreResultsAvailable": from + size < hits.len() }] }] })).into_response())
}
