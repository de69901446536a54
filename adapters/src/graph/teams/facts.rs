//! Whom a Teams message reaches and where a channel post lands, read from Graph before the
//! policy decides. A chat message goes to every member of the chat, but its arguments name only
//! `chat_id`; so the members are read (`GET /chats/{id}/members`, every page) and each one's
//! address becomes a recipient. A member Graph gives no address for (a guest without `email`, an
//! anonymous or phone participant) makes the resolution fail: whom the message reaches could not
//! be checked, which the gateway turns into a denial, never into a member skipped.
//!
//! A channel post acts within its team and channel. Graph matches their ids case-insensitively,
//! so the ids as the arguments spell them prove nothing to a policy's list; the team and the
//! channel are read (`GET /teams/{id}`, `GET /teams/{id}/channels/{id}`) and their ids as Graph
//! returns them become the call's `containers`.

use serde_json::Value;
use url::Url;

use super::super::{
    args::{self, Args},
    client::GraphClient,
};
use crate::{CallContext, StoredFacts, ToolError};

/// The one member type that carries an address; Graph tags every member of the (abstract)
/// `conversationMember` collection with its concrete type.
const AAD_USER_MEMBER: &str = "microsoft.graph.aadUserConversationMember";

/// Most member pages followed. Teams caps a group chat at 250 members, so more pages than this
/// means a misbehaving answer; the resolution fails rather than deciding on part of the chat.
const MAX_MEMBER_PAGES: usize = 50;

pub(crate) async fn resolve(
    graph: &GraphClient,
    tool: &str,
    args: &Args,
    ctx: &CallContext,
) -> Result<StoredFacts, ToolError> {
    match tool {
        "send_chat_message" => Ok(StoredFacts {
            recipients: chat_members(graph, args, ctx).await?,
            ..StoredFacts::default()
        }),
        "post_channel_message" | "reply_to_channel_message" => Ok(StoredFacts {
            containers: team_and_channel(graph, args, ctx).await?,
            ..StoredFacts::default()
        }),
        other => Err(ToolError::UnknownTool(other.to_owned())),
    }
}

/// The address of every member of the chat, across all pages of the member list.
async fn chat_members(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<Vec<String>, ToolError> {
    let chat = args::segment(args, "chat_id")?;
    let mut next = Some(graph.url(&["chats".into(), chat, "members".into()], &[])?);
    let mut addresses = Vec::new();
    for _ in 0..MAX_MEMBER_PAGES {
        let Some(url) = next.take() else {
            break;
        };
        let page = graph.get(url, ctx).await?;
        let (members, link) = member_page(&page)?;
        addresses.extend(members);
        // Checked like a caller's cursor: a nextLink off Graph would carry the user's token.
        next = link.map(|link| graph.next_link(&link)).transpose()?;
    }
    if next.is_some() {
        return Err(ToolError::BadResponse(format!(
            "the chat's member list did not end within {MAX_MEMBER_PAGES} pages"
        )));
    }
    if addresses.is_empty() {
        return Err(ToolError::BadResponse("the chat has no members".into()));
    }
    Ok(addresses)
}

/// One page of `conversationMember`s: each member's address, and the `@odata.nextLink`.
fn member_page(page: &Value) -> Result<(Vec<String>, Option<String>), ToolError> {
    let members = page
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| ToolError::BadResponse("the chat's member list has no `value`".into()))?;
    let addresses = members
        .iter()
        .map(member_address)
        .collect::<Result<_, _>>()?;
    let link = match page.get("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(link)) => Some(link.clone()),
        Some(_) => {
            return Err(ToolError::BadResponse(
                "the chat's member list has a `@odata.nextLink` that is not a link".into(),
            ));
        }
    };
    Ok((addresses, link))
}

/// The address of one member, or why the member cannot be checked.
fn member_address(member: &Value) -> Result<String, ToolError> {
    let kind = member
        .get("@odata.type")
        .and_then(Value::as_str)
        .map(|kind| kind.trim_start_matches('#'));
    if kind != Some(AAD_USER_MEMBER) {
        return Err(ToolError::BadResponse(format!(
            "a member of the chat is a {} rather than a directory user, so whom the message \
             reaches cannot be checked",
            kind.unwrap_or("member of unknown type")
        )));
    }
    member
        .get("email")
        .and_then(Value::as_str)
        .filter(|email| !email.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ToolError::BadResponse(
                "a member of the chat has no e-mail address (a guest or external account), so \
                 whom the message reaches cannot be checked"
                    .into(),
            )
        })
}

/// The team's and the channel's ids as Graph returns them.
async fn team_and_channel(
    graph: &GraphClient,
    args: &Args,
    ctx: &CallContext,
) -> Result<Vec<String>, ToolError> {
    let (team, channel) = (
        args::segment(args, "team_id")?,
        args::segment(args, "channel_id")?,
    );
    let select = [("$select", "id".to_owned())];
    let team_url = graph.url(&["teams".into(), team.clone()], &select)?;
    let channel_url = graph.url(&["teams".into(), team, "channels".into(), channel], &select)?;
    Ok(vec![
        canonical_id(graph, team_url, "team", ctx).await?,
        canonical_id(graph, channel_url, "channel", ctx).await?,
    ])
}

async fn canonical_id(
    graph: &GraphClient,
    url: Url,
    what: &str,
    ctx: &CallContext,
) -> Result<String, ToolError> {
    let found = graph.get(url, ctx).await?;
    found
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ToolError::BadResponse(format!("Graph answered a {what} without an id")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user(email: Value) -> Value {
        json!({ "@odata.type": "#microsoft.graph.aadUserConversationMember", "id": "m1",
            "displayName": "Someone", "roles": ["owner"], "userId": "u1", "email": email,
            "tenantId": "t1" })
    }

    fn without(mut member: Value, key: &str) -> Value {
        if let Some(fields) = member.as_object_mut() {
            fields.remove(key);
        }
        member
    }

    #[test]
    fn every_member_with_an_address_is_a_recipient_and_the_next_link_is_followed() {
        let page = json!({ "value": [user(json!("alice@example.com")), user(json!("Pat@Partner.Test"))],
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/chats/c/members?$skiptoken=2" });
        let (addresses, link) = member_page(&page).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(addresses, ["alice@example.com", "Pat@Partner.Test"]);
        assert_eq!(
            link.as_deref(),
            Some("https://graph.microsoft.com/v1.0/chats/c/members?$skiptoken=2")
        );
        let last = json!({ "value": [user(json!("bob@example.com"))] });
        assert!(matches!(member_page(&last), Ok((_, None))));
    }

    #[test]
    fn a_member_without_an_address_fails_the_whole_page() {
        for email in [json!(null), json!(""), json!("  "), json!(7)] {
            let page = json!({ "value": [user(json!("alice@example.com")), user(email.clone())] });
            assert!(
                matches!(member_page(&page), Err(ToolError::BadResponse(_))),
                "{email}"
            );
        }
        let missing = without(user(json!("x@example.com")), "email");
        assert!(member_page(&json!({ "value": [missing] })).is_err());
    }

    #[test]
    fn members_that_are_not_directory_users_fail_even_with_an_email_field() {
        for kind in [
            json!("#microsoft.graph.anonymousGuestConversationMember"),
            json!("#microsoft.graph.phoneUserConversationMember"),
            json!("#microsoft.graph.skypeUserConversationMember"),
            json!("#microsoft.graph.microsoftAccountUserConversationMember"),
            json!("#microsoft.graph.conversationMember"),
            json!(null),
        ] {
            let mut member = user(json!("eve@evil.test"));
            member["@odata.type"] = kind.clone();
            assert!(member_address(&member).is_err(), "{kind}");
        }
        let untyped = without(user(json!("eve@evil.test")), "@odata.type");
        assert!(member_address(&untyped).is_err());
    }

    #[test]
    fn a_page_without_value_or_with_a_bad_next_link_fails() {
        assert!(member_page(&json!({})).is_err());
        assert!(member_page(&json!({ "value": {} })).is_err());
        let bad = json!({ "value": [user(json!("a@example.com"))], "@odata.nextLink": 3 });
        assert!(member_page(&bad).is_err());
    }
}
