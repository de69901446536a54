//! Whom a reply, reply-all, forward or draft send reaches, read from the stored message the way
//! Graph itself reads it: a reply goes to `replyTo` when the message has one, else to `from`;
//! reply-all adds `toRecipients` and `ccRecipients`; sending a draft reaches its saved `to`, `cc`
//! and `bcc`. The emulator's reply and send routes follow the same rules.

use serde_json::Value;

use super::super::{
    args::{self, Args},
    client::GraphClient,
};
use crate::{CallContext, StoredFacts, ToolError};

/// Every stored address field a resolution reads.
const SELECT: &str = "from,replyTo,toRecipients,ccRecipients,bccRecipients,isDraft";

/// The addresses of a Graph recipient list; an entry without one is a bad answer, not a
/// recipient to skip.
fn addresses(message: &Value, key: &str) -> Result<Vec<String>, ToolError> {
    let Some(list) = message.get(key).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = match list {
        Value::Array(items) => items.iter().collect::<Vec<_>>(),
        // `from` is one recipient, the lists are arrays.
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(ToolError::BadResponse(format!(
                "the message's `{key}` is not a list of recipients"
            )));
        }
    };
    list.into_iter()
        .map(|entry| {
            entry
                .pointer("/emailAddress/address")
                .and_then(Value::as_str)
                .filter(|a| !a.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    ToolError::BadResponse(format!(
                        "a recipient in the message's `{key}` has no address"
                    ))
                })
        })
        .collect()
}

pub(crate) async fn resolve(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    ctx: &CallContext,
) -> Result<StoredFacts, ToolError> {
    let id = args::segment(args, "message_id")?;
    let url = graph.url(
        &["me".into(), "messages".into(), id],
        &[("$select", SELECT.to_owned())],
    )?;
    let message = graph.get(url, ctx).await?;
    let (from, reply_to) = (
        addresses(&message, "from")?,
        addresses(&message, "replyTo")?,
    );
    let (to, cc) = (
        addresses(&message, "toRecipients")?,
        addresses(&message, "ccRecipients")?,
    );
    let participants = || from.iter().chain(&to).chain(&cc).cloned().collect();
    let facts = match tool {
        "reply_message" => {
            let mut recipients = if reply_to.is_empty() {
                from.clone()
            } else {
                reply_to.clone()
            };
            if args::boolean(args, "reply_all")? {
                recipients.extend(to.iter().chain(&cc).cloned());
            }
            if recipients.is_empty() {
                return Err(ToolError::InvalidArguments(
                    "the message has no sender to reply to".into(),
                ));
            }
            StoredFacts {
                recipients,
                participants: participants(),
                ..StoredFacts::default()
            }
        }
        // The forward's recipients are its `to` argument; the quoted message's people are facts
        // too, for policies about what leaves with it.
        "forward_message" => StoredFacts {
            participants: participants(),
            ..StoredFacts::default()
        },
        "send_draft" => {
            if message.get("isDraft").and_then(Value::as_bool) != Some(true) {
                return Err(ToolError::InvalidArguments(
                    "the message is not a draft: only drafts can be sent".into(),
                ));
            }
            let mut recipients = to.clone();
            recipients.extend(cc.iter().cloned());
            recipients.extend(addresses(&message, "bccRecipients")?);
            if recipients.is_empty() {
                return Err(ToolError::InvalidArguments(
                    "the draft has no recipients".into(),
                ));
            }
            StoredFacts {
                recipients,
                ..StoredFacts::default()
            }
        }
        other => return Err(ToolError::UnknownTool(other.to_owned())),
    };
    Ok(facts)
}
