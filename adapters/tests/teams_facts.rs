//! The Teams facts resolver against the Graph emulator: a chat message's recipients are every
//! member over every page of `GET /chats/{id}/members`, a member without an address or a chat
//! that cannot be read is an error (the gateway's denial), and a channel post's containers are
//! the team's and channel's ids as Graph returns them, however the arguments spelt them. The
//! requests it sends are Graph operations (the OpenAPI subset; the members route, missing from
//! it, against the CSDL) and the tools declare the least-privileged permissions for them.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod graph_support;

use graph_support::{ALICE, ctx, paths};
use manifold_adapters::{StoredFacts, ToolError};
use serde_json::{Value, json};

async fn resolve(
    env: &graph_support::Env,
    tool: &str,
    args: Value,
    token: &str,
) -> Result<StoredFacts, ToolError> {
    let adapter = env.adapter("teams");
    let resolver = adapter.facts().expect("Teams resolves facts");
    let args = args.as_object().cloned().unwrap();
    resolver.resolve(tool, &args, &ctx(token)).await
}

async fn member_requests(env: &graph_support::Env) -> Vec<Value> {
    env.requests()
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/members"))
        .collect()
}

#[tokio::test]
async fn a_chat_message_reaches_every_member_on_every_page_and_nothing_less() {
    let env = graph_support::start().await;
    let facts = resolve(
        &env,
        "send_chat_message",
        json!({"chat_id": "19:facts-all-hands-partner@thread.v2", "text": "x"}),
        ALICE,
    )
    .await
    .unwrap();
    // alice, bob, 30 colleagues and the partner, who is on the second page.
    assert_eq!(facts.recipients.len(), 33, "{:?}", facts.recipients);
    assert_eq!(facts.recipients.first().unwrap(), "alice@example.com");
    assert_eq!(facts.recipients.last().unwrap(), "pat@partner.test");
    assert!(facts.containers.is_empty() && facts.participants.is_empty());
    let pages = member_requests(&env).await;
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[1]["query"].as_str().unwrap().contains("skiptoken"));

    let one_on_one = resolve(
        &env,
        "send_chat_message",
        json!({"chat_id": "19:chat-ab@unq.gbl.spaces", "text": "x"}),
        ALICE,
    )
    .await
    .unwrap();
    assert_eq!(
        one_on_one.recipients,
        ["alice@example.com", "bob@example.com"]
    );
}

#[tokio::test]
async fn chats_whose_members_cannot_all_be_read_fail() {
    let env = graph_support::start().await;
    let guest = resolve(
        &env,
        "send_chat_message",
        json!({"chat_id": "19:facts-guest-no-email@thread.v2", "text": "x"}),
        ALICE,
    )
    .await;
    assert!(
        matches!(&guest, Err(ToolError::BadResponse(m)) if m.contains("no e-mail address")),
        "{guest:?}"
    );
    env.control(
        "/_sandbox/chats",
        json!({"id": "19:phone@thread.v2", "users": ["alice"], "members": [
            {"@odata.type": "#microsoft.graph.phoneUserConversationMember", "id": "m-p",
             "displayName": "+1 555", "phoneNumber": "+15550100"}]}),
    )
    .await;
    env.control(
        "/_sandbox/chats",
        json!({"id": "19:bobs@thread.v2", "users": ["bob"], "members": []}),
    )
    .await;
    for (chat, want) in [
        ("19:phone@thread.v2", "bad"),
        ("19:no-such-chat@thread.v2", "not found"),
        ("19:bobs@thread.v2", "forbidden"),
    ] {
        let result = resolve(
            &env,
            "send_chat_message",
            json!({"chat_id": chat, "text": "x"}),
            ALICE,
        )
        .await;
        let matched = match want {
            "bad" => matches!(result, Err(ToolError::BadResponse(_))),
            "not found" => matches!(result, Err(ToolError::NotFound(_))),
            _ => matches!(result, Err(ToolError::Forbidden(_))),
        };
        assert!(matched, "{chat}: {result:?}");
    }
}

#[tokio::test]
async fn a_channel_post_acts_within_the_team_and_channel_graph_resolves() {
    let env = graph_support::start().await;
    let canonical = ["team-eng", "19:team-eng-general@thread.tacv2"];
    for (team, channel) in [
        ("team-eng", "19:team-eng-general@thread.tacv2"),
        ("TEAM-ENG", "19:TEAM-ENG-GENERAL@THREAD.TACV2"),
        ("Team-Eng", "19:Team-Eng-General@Thread.Tacv2"),
        ("tEAM-eNG", "19:team-ENG-general@thread.TACV2"),
    ] {
        for tool in ["post_channel_message", "reply_to_channel_message"] {
            let args = json!({"team_id": team, "channel_id": channel,
                "message_id": "team-eng-general-002", "text": "x"});
            let facts = resolve(&env, tool, args, ALICE).await.unwrap();
            assert_eq!(facts.containers, canonical, "{tool} {team} {channel}");
            assert!(facts.recipients.is_empty());
        }
    }
    for (team, channel, token) in [
        ("team-engx", "19:team-eng-general@thread.tacv2", ALICE),
        ("team-eng", "19:team-fin-general@thread.tacv2", ALICE),
        (
            "team-fin",
            "19:team-fin-general@thread.tacv2",
            "graph_sandbox_bob",
        ),
    ] {
        let args = json!({"team_id": team, "channel_id": channel, "text": "x"});
        let result = resolve(&env, "post_channel_message", args, token).await;
        assert!(
            matches!(
                result,
                Err(ToolError::NotFound(_) | ToolError::Forbidden(_))
            ),
            "{team} {channel}: {result:?}"
        );
    }
}

/// The text of one entity type's element in the CSDL.
fn csdl_entity<'c>(csdl: &'c str, name: &str) -> &'c str {
    let open = format!("<EntityType Name=\"{name}\"");
    let start = csdl
        .find(&open)
        .unwrap_or_else(|| panic!("{name} in the CSDL"));
    &csdl[start..start + csdl[start..].find("</EntityType>").unwrap()]
}

/// The CSDL properties of an entity type and of its base types (a plain text read: the
/// elements are one per line in the clean metadata).
fn csdl_properties(csdl: &str, name: &str) -> Vec<String> {
    let body = csdl_entity(csdl, name);
    let mut names: Vec<String> = body
        .lines()
        .filter_map(|line| line.trim().strip_prefix("<Property Name=\""))
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect();
    let header = body.lines().next().unwrap();
    if let Some(base) = header.split("BaseType=\"graph.").nth(1) {
        names.extend(csdl_properties(csdl, base.split('"').next().unwrap()));
    }
    names
}

#[tokio::test]
async fn the_resolvers_requests_are_graph_operations_with_least_privileged_scopes() {
    let spec = paths::contract("graph-v1.0-connector-subset.openapi.json");
    let map = paths::contract("graph-v1.0-connector-permissions.json");
    let env = graph_support::start().await;
    let args = json!({"team_id": "Team-Eng", "channel_id": "19:team-eng-general@thread.tacv2",
        "message_id": "team-eng-general-002", "text": "x"});
    for tool in ["post_channel_message", "reply_to_channel_message"] {
        let scopes = env
            .adapter("teams")
            .tools()
            .current()
            .into_iter()
            .find(|t| t.name == tool)
            .unwrap()
            .scopes;
        let before = env.requests().await.len();
        resolve(&env, tool, args.clone(), ALICE).await.unwrap();
        let sent = env.requests().await.split_off(before);
        let keys: Vec<String> = sent
            .iter()
            .map(|r| {
                assert_eq!(r["method"], "GET", "{r}");
                paths::template(&spec, r["path"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("{r} is not a Graph operation"))
            })
            .collect();
        assert_eq!(
            keys,
            ["/teams/{team-id}", "/teams/{team-id}/channels/{channel-id}"]
        );
        // The map's least-privileged DelegatedWork permission of each read is declared.
        for key in &keys {
            let endpoint = map["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["method"] == "GET" && e["path"] == key.as_str())
                .unwrap_or_else(|| panic!("{key} in the permission map"));
            let least: Vec<&str> = endpoint["matched"]
                .as_object()
                .unwrap()
                .values()
                .flat_map(|list| list.as_array().unwrap())
                .filter(|p| {
                    p["least_privileged_for"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("DelegatedWork"))
                })
                .map(|p| p["permission"].as_str().unwrap())
                .collect();
            assert!(
                least.iter().any(|p| scopes.iter().any(|s| s == p)),
                "{tool} {key}: least privileged {least:?}, declared {scopes:?}"
            );
        }
    }
    // `/chats/{chat-id}/members` is not in the 2024 OpenAPI subset: check the emulator's
    // members against the CSDL's `aadUserConversationMember` (and its base types) instead.
    let csdl = std::fs::read_to_string(format!(
        "{}/../../shared/contracts/microsoft-graph/v1.0-cleanMetadata.csdl.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(
        csdl_entity(&csdl, "chat").contains(
            "<NavigationProperty Name=\"members\" Type=\"Collection(graph.conversationMember)\""
        ),
        "chat.members in the CSDL"
    );
    let known = csdl_properties(&csdl, "aadUserConversationMember");
    for property in ["email", "tenantId", "userId", "displayName", "roles", "id"] {
        assert!(known.iter().any(|k| k == property), "{property}: {known:?}");
    }
    let answer: Value = env
        .http
        .get(format!(
            "{}/chats/19:facts-partner@thread.v2/members",
            env.base
        ))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let members = answer["value"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{answer}");
    for member in members {
        for key in member.as_object().unwrap().keys() {
            assert!(
                key.starts_with("@odata.") || known.contains(key),
                "{key} is not a property of aadUserConversationMember"
            );
        }
    }
}
