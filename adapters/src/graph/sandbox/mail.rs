//! Emulated Outlook mail: messages, folders (by id or well-known name), attachments,
//! `$search`, the `$filter` clauses the adapter sends, sendMail, reply/replyAll/forward, move.

use axum::{
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    Caller, Req, error, not_found,
    store::{self, Mail, Store},
};

const WELL_KNOWN: [&str; 6] = [
    "inbox",
    "sentitems",
    "drafts",
    "archive",
    "deleteditems",
    "junkemail",
];

fn folder_id(store: &Store, user: &str, name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    store
        .folders
        .iter()
        .filter(|(owner, _)| owner == user)
        .find(|(_, f)| {
            f["id"] == name
                || (WELL_KNOWN.contains(&lower.as_str()) && f["wellKnownName"] == lower.as_str())
        })
        .and_then(|(_, f)| f["id"].as_str().map(str::to_owned))
}

fn filter(message: &Value, clause: &str) -> Result<bool, Response> {
    let parts: Vec<&str> = clause.splitn(3, ' ').collect();
    let bad = || {
        error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Invalid filter clause: {clause}"),
        )
    };
    match parts.as_slice() {
        ["isRead", "eq", value] => Ok(message["isRead"]
            .as_bool()
            .map(|b| b.to_string())
            .as_deref()
            == Some(*value)),
        ["receivedDateTime", op, value] => {
            let received = message["receivedDateTime"].as_str().unwrap_or_default();
            if value.len() < 10 {
                return Err(bad());
            }
            match *op {
                "ge" => Ok(received >= *value),
                "lt" => Ok(received < *value),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

fn recipients(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.pointer("/emailAddress/address").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

fn deliver(store: &mut Store, from: &str, message: &Value, folder_name: &str) -> Value {
    let user = store.user(from);
    let mut stored = message.clone();
    let id = store.id("AAMkmsg");
    stored["id"] = json!(id);
    stored["from"] =
        json!({ "emailAddress": { "name": user["displayName"], "address": user["mail"] } });
    stored["receivedDateTime"] = json!("2026-11-20T12:00:00Z");
    stored["isRead"] = json!(true);
    stored["isDraft"] = json!(folder_name == "drafts");
    stored["hasAttachments"] = json!(false);
    let preview: String = stored
        .pointer("/body/content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(255)
        .collect();
    stored["bodyPreview"] = json!(preview);
    stored["parentFolderId"] = json!(folder_id(store, from, folder_name));
    stored["webLink"] = json!(format!("https://outlook.office.com/mail/id/{id}"));
    for key in ["toRecipients", "ccRecipients", "bccRecipients"] {
        if stored.get(key).is_none() {
            stored[key] = json!([]);
        }
    }
    store.mail.push(Mail {
        owner: from.to_owned(),
        message: stored.clone(),
        attachments: Vec::new(),
    });
    stored
}

pub(crate) fn handle(
    store: &mut Store,
    caller: &Caller,
    req: &Req<'_>,
    at: usize,
) -> Result<Response, Response> {
    let rest: Vec<&str> = req.segments[at..].iter().map(String::as_str).collect();
    let user = caller.user.as_str();
    let owned = |store: &Store, id: &str| {
        store
            .mail
            .iter()
            .position(|m| m.owner == user && m.message["id"] == id)
    };
    match (req.method, rest.as_slice()) {
        (&Method::GET, ["messages"]) => {
            let mut list: Vec<&Mail> = store.mail.iter().filter(|m| m.owner == user).collect();
            if let Some(search) = req.param("$search") {
                let words = store::words(search);
                list.retain(|m| {
                    let text = format!(
                        "{} {} {}",
                        m.message["subject"], m.message["body"]["content"], m.message["from"]
                    )
                    .to_lowercase();
                    words.iter().all(|w| text.contains(w.as_str()))
                });
            }
            let values: Vec<Value> = list.iter().map(|m| m.message.clone()).collect();
            store::collection(req, &values, 10)
        }
        (&Method::POST, ["messages"]) => {
            let draft = req.json()?;
            let stored = deliver(store, user, &draft, "drafts");
            store::created(&stored)
        }
        (&Method::GET, ["messages", id]) => owned(store, id).map_or_else(
            || Err(not_found("message")),
            |i| store::one(req, &store.mail[i].message),
        ),
        (&Method::GET, ["messages", id, "attachments"]) => {
            let i = owned(store, id).ok_or_else(|| not_found("message"))?;
            store::collection(req, &store.mail[i].attachments.clone(), 50)
        }
        (&Method::GET, ["messages", id, "attachments", attachment]) => {
            let i = owned(store, id).ok_or_else(|| not_found("message"))?;
            let found = store.mail[i]
                .attachments
                .iter()
                .find(|a| a["id"] == *attachment)
                .ok_or_else(|| not_found("attachment"))?;
            store::one(req, found)
        }
        (&Method::POST, ["messages", id, action @ ("reply" | "replyAll" | "forward")]) => {
            let i = owned(store, id).ok_or_else(|| not_found("message"))?;
            let body = req.json()?;
            let original = store.mail[i].message.clone();
            // As Graph: a reply goes to `replyTo` when set, else to `from`; reply-all adds the
            // original's `to` and `cc` (the gateway's facts resolution reads the same fields).
            let reply_to = original["replyTo"].as_array().filter(|l| !l.is_empty());
            let mut to = if *action == "forward" {
                body["toRecipients"].clone()
            } else if let Some(reply_to) = reply_to {
                json!(reply_to)
            } else {
                json!([original["from"]])
            };
            if *action == "replyAll"
                && let Some(list) = to.as_array_mut()
            {
                for key in ["toRecipients", "ccRecipients"] {
                    list.extend(original[key].as_array().cloned().unwrap_or_default());
                }
            }
            if recipients(&to).is_empty() {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidRecipients",
                    "At least one recipient is not valid.",
                ));
            }
            let prefix = if *action == "forward" { "FW: " } else { "RE: " };
            let reply = json!({ "subject": format!("{prefix}{}", original["subject"].as_str().unwrap_or_default()),
                "body": { "contentType": "Text", "content": body["comment"] }, "toRecipients": to });
            deliver(store, user, &reply, "sentitems");
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (&Method::POST, ["messages", id, "send"]) => {
            let i = owned(store, id).ok_or_else(|| not_found("message"))?;
            let message = &store.mail[i].message;
            if message["isDraft"] != true {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidOperation",
                    "Only a draft can be sent.",
                ));
            }
            let any = ["toRecipients", "ccRecipients", "bccRecipients"]
                .iter()
                .any(|key| !recipients(&message[*key]).is_empty());
            if !any {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidRecipients",
                    "At least one recipient is not valid.",
                ));
            }
            let sent = folder_id(store, user, "sentitems");
            let message = &mut store.mail[i].message;
            message["isDraft"] = json!(false);
            message["parentFolderId"] = json!(sent);
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (&Method::POST, ["messages", id, "move"]) => {
            let i = owned(store, id).ok_or_else(|| not_found("message"))?;
            let destination = req.json()?["destinationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let folder = folder_id(store, user, &destination).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidIdMalformed",
                    "Id is malformed.",
                )
            })?;
            let new_id = store.id("AAMkmsg");
            let message = &mut store.mail[i].message;
            message["parentFolderId"] = json!(folder);
            message["id"] = json!(new_id);
            Ok((StatusCode::CREATED, axum::Json(message.clone())).into_response())
        }
        (&Method::GET, ["mailFolders"]) => {
            let folders: Vec<Value> = store
                .folders
                .iter()
                .filter(|(o, _)| o == user)
                .map(|(_, f)| {
                    let in_folder: Vec<&Mail> = store
                        .mail
                        .iter()
                        .filter(|m| m.owner == user && m.message["parentFolderId"] == f["id"])
                        .collect();
                    let mut f = f.clone();
                    f["totalItemCount"] = json!(in_folder.len());
                    f["unreadItemCount"] = json!(
                        in_folder
                            .iter()
                            .filter(|m| m.message["isRead"] == false)
                            .count()
                    );
                    f.as_object_mut().map(|o| o.remove("wellKnownName"));
                    f
                })
                .collect();
            store::collection(req, &folders, 10)
        }
        (&Method::GET, ["mailFolders", folder, "messages"]) => {
            let folder = folder_id(store, user, folder).ok_or_else(|| not_found("folder"))?;
            let clauses: Vec<String> = req
                .param("$filter")
                .map(|f| f.split(" and ").map(str::to_owned).collect())
                .unwrap_or_default();
            let mut values = Vec::new();
            for m in store
                .mail
                .iter()
                .filter(|m| m.owner == user && m.message["parentFolderId"] == folder.as_str())
            {
                let mut keep = true;
                for clause in &clauses {
                    keep &= filter(&m.message, clause)?;
                }
                if keep {
                    values.push(m.message.clone());
                }
            }
            values.sort_by(|a, b| {
                b["receivedDateTime"]
                    .as_str()
                    .cmp(&a["receivedDateTime"].as_str())
            });
            store::collection(req, &values, 10)
        }
        (&Method::POST, ["sendMail"]) => {
            let body = req.json()?;
            if recipients(&body["message"]["toRecipients"]).is_empty() {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidRecipients",
                    "At least one recipient is not valid.",
                ));
            }
            deliver(store, user, &body["message"], "sentitems");
            Ok(StatusCode::ACCEPTED.into_response())
        }
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Unsupported request {} {}", req.method, req.path),
        )),
    }
}
