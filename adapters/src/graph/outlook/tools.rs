//! The Outlook tools as the model sees them, with the least-privileged delegated scopes each
//! needs (checked against Graph's permission map in `tests/graph_contract.rs`).

use serde_json::{Value, json};

use super::super::schema::{
    addresses, cursor, id, limit, nullable_string, object, page, person, string, window_args,
    window_properties,
};
use crate::{ToolAnnotations, ToolSpec};

pub(crate) fn message_summary() -> Value {
    object(
        json!({
            "id": string(), "subject": nullable_string(), "from": person(),
            "to": { "type": "array", "items": person() },
            "received_at": nullable_string(), "is_read": { "type": "boolean" },
            "has_attachments": { "type": "boolean" }, "preview": string(),
            "folder_id": nullable_string(), "web_link": nullable_string(),
        }),
        &[
            "id",
            "subject",
            "from",
            "to",
            "received_at",
            "is_read",
            "has_attachments",
            "preview",
            "folder_id",
            "web_link",
        ],
    )
}

fn full_message() -> Value {
    let mut schema = message_summary();
    schema["properties"]["cc"] = json!({ "type": "array", "items": person() });
    schema["properties"]["body"] =
        json!({ "type": "string", "description": "The body as plain text (HTML converted)." });
    schema["properties"]["body_truncated"] = json!({ "type": "boolean" });
    schema["properties"]["attachments"] = json!({ "type": "array", "items": object(json!({
        "id": string(), "name": nullable_string(), "content_type": nullable_string(), "size": { "type": "integer" },
    }), &["id", "name", "content_type", "size"]) });
    if let Some(required) = schema["required"].as_array_mut() {
        required.extend(["cc", "body", "body_truncated", "attachments"].map(Value::from));
    }
    schema
}

fn folder_arg() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 512, "default": "inbox",
            "description": "Folder id (list_folders) or a well-known name: inbox, sentitems, drafts, archive, deleteditems, junkemail." })
}

fn compose(extra: Value, required: &[&str]) -> Value {
    let mut properties = json!({
        "subject": { "type": "string", "maxLength": 998 },
        "body": { "type": "string", "maxLength": 200000, "description": "Message body." },
        "body_type": { "type": "string", "enum": ["text", "html"], "default": "text" },
        "to": addresses(), "cc": addresses(), "bcc": addresses(),
    });
    if let (Some(target), Some(more)) = (properties.as_object_mut(), extra.as_object()) {
        target.extend(more.clone());
    }
    object(properties, required)
}

fn done() -> Value {
    object(
        json!({ "status": string(), "message_id": nullable_string() }),
        &["status", "message_id"],
    )
}

pub(crate) fn all() -> Vec<ToolSpec> {
    let page_args = |mut more: Value| {
        more["limit"] = limit(25, 50);
        more["cursor"] = cursor();
        more
    };
    vec![
        ToolSpec::new("search_messages", "Search Outlook mail",
            "Full-text search of the user's mailbox (subject, body, people, attachments names) with \
             Outlook's $search (KQL such as `from:bob budget` works). Results are ranked by relevance, \
             not date. Returns message summaries with a short preview; call get_message for the full \
             body. Paged: pass `next_cursor` back as `cursor`.",
            ToolAnnotations::READ,
            object(page_args(json!({ "query": { "type": "string", "minLength": 1, "maxLength": 500 } })), &["query"]),
            page("messages", message_summary()))
        .with_scopes(&["Mail.Read"]),
        ToolSpec::new("list_messages", "List messages in an Outlook folder",
            "Lists messages of one mail folder, newest first, optionally only unread ones and only \
             those received in a date range. Use for \"what came in today\" or \"unread mail\"; use \
             search_messages to look for words. Paged with `cursor`/`next_cursor`.",
            ToolAnnotations::READ,
            object(page_args(json!({
                "folder": folder_arg(),
                "unread_only": { "type": "boolean", "default": false },
                "received_after": { "type": "string", "format": "date-time", "description": "ISO 8601, e.g. 2026-11-01T00:00:00Z." },
                "received_before": { "type": "string", "format": "date-time" },
            })), &[]),
            page("messages", message_summary()))
        .with_scopes(&["Mail.Read"]),
        ToolSpec::new("get_message", "Read an Outlook message",
            "Fetches one message with its body as plain text (HTML converted; long bodies cut at \
             50,000 characters) and the list of its attachments (id, name, type, size). Read an \
             attachment's text with read_attachment.",
            ToolAnnotations::READ,
            object(json!({ "message_id": id("Message id.") }), &["message_id"]),
            object(json!({ "message": full_message() }), &["message"]))
        .with_scopes(&["Mail.Read"]),
        ToolSpec::new("read_attachment", "Read an Outlook attachment as text",
            "Returns the text of a file attached to a message (txt, csv, html, docx, xlsx, pptx, \
             pdf), a window at a time: continue with `offset` = `next_offset`.",
            ToolAnnotations::READ,
            {
                let mut properties = window_args();
                properties.insert("message_id".into(), id("Message id."));
                properties.insert("attachment_id".into(), id("Attachment id from get_message."));
                object(Value::Object(properties), &["message_id", "attachment_id"])
            },
            {
                let mut properties = window_properties();
                properties["name"] = nullable_string();
                object(properties, &["name", "format", "text", "offset", "total_chars", "next_offset"])
            })
        .with_scopes(&["Mail.Read"]),
        ToolSpec::new("list_folders", "List Outlook mail folders",
            "Lists the top-level mail folders with their ids and unread and total counts. Use the \
             id with list_messages or move_message.",
            ToolAnnotations::READ,
            object(page_args(json!({})), &[]),
            page("folders", object(json!({
                "id": string(), "name": string(), "unread": { "type": "integer" }, "total": { "type": "integer" },
            }), &["id", "name", "unread", "total"])))
        .with_scopes(&["Mail.ReadBasic"]),
        ToolSpec::new("send_message", "Send an Outlook email",
            "Sends a new email as the user, saved to Sent Items. Each call sends another email: do \
             not repeat a call that succeeded. Use create_draft to prepare one for review instead.",
            // Mail reaches any address.
            ToolAnnotations::CREATE.reaching_outside(),
            compose(json!({}), &["subject", "body", "to"]),
            done())
        .with_scopes(&["Mail.Send"]),
        ToolSpec::new("reply_message", "Reply to an Outlook email",
            "Replies to a message (to its sender, or to everyone with `reply_all`), quoting it, and \
             sends the reply at once. Each call sends another reply.",
            // Mail reaches any address.
            ToolAnnotations::CREATE.reaching_outside(),
            object(json!({ "message_id": id("The message to answer."),
                           "comment": { "type": "string", "minLength": 1, "maxLength": 200000, "description": "The reply text." },
                           "reply_all": { "type": "boolean", "default": false } }), &["message_id", "comment"]),
            done())
        // Mail.ReadBasic: the gateway reads the original's sender and recipients first.
        .with_scopes(&["Mail.Send", "Mail.ReadBasic"])
        .resolving_facts(),
        ToolSpec::new("forward_message", "Forward an Outlook email",
            "Forwards a message with its attachments to new recipients, with an optional comment \
             above it, and sends it at once. Each call sends another copy.",
            // Mail reaches any address.
            ToolAnnotations::CREATE.reaching_outside(),
            object(json!({ "message_id": id("The message to forward."), "to": addresses(),
                           "comment": { "type": "string", "maxLength": 200000 } }), &["message_id", "to"]),
            done())
        .with_scopes(&["Mail.Send", "Mail.ReadBasic"])
        .resolving_facts(),
        ToolSpec::new("create_draft", "Create an Outlook draft",
            "Saves a new email in the Drafts folder without sending it, so the user can review and \
             send it from Outlook. Returns the draft's id and link.",
            ToolAnnotations::CREATE,
            compose(json!({}), &[]),
            object(json!({ "message": message_summary() }), &["message"]))
        .with_scopes(&["Mail.ReadWrite"]),
        ToolSpec::new("send_draft", "Send an Outlook draft",
            "Sends a saved draft (an id from create_draft or list_messages in drafts) to the \
             recipients saved in it, and moves it to Sent Items. Each call sends it once; a sent \
             draft is no longer a draft.",
            // Mail reaches any address.
            ToolAnnotations::CREATE.reaching_outside(),
            object(json!({ "message_id": id("The draft to send.") }), &["message_id"]),
            done())
        // Mail.ReadBasic: the gateway reads the draft's recipients first.
        .with_scopes(&["Mail.Send", "Mail.ReadBasic"])
        .resolving_facts(),
        ToolSpec::new("move_message", "Move an Outlook email to a folder",
            "Moves a message to another folder (an id from list_folders or a well-known name such \
             as archive or deleteditems). Graph gives the moved message a new id, returned here.",
            // Moving again to the same folder changes nothing more; nothing is deleted.
            ToolAnnotations { read_only: false, destructive: false, idempotent: true, open_world: false },
            object(json!({ "message_id": id("The message to move."),
                           "destination": { "type": "string", "minLength": 1, "maxLength": 512 } }), &["message_id", "destination"]),
            object(json!({ "message": message_summary() }), &["message"]))
        .with_scopes(&["Mail.ReadWrite"]),
    ]
}
