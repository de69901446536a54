//! The shipped demo policies fire on the demo's real tools and arguments: each guard and permit
//! of `config/policies/` gets an ALLOW and a DENY case driven as a real `tools/call` through
//! `manifold demo`, checked by the answer and by the decision and policies the audit log
//! recorded; and the `send-mail` quota covers every tool tagged `sends`, not one tool name.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::demo::Demo;

/// The demo Linear's team ids (`linear_list_teams`).
const ENG: &str = "00000002-0000-4000-8000-000000000000";
const DES: &str = "00000002-0000-4000-8000-000000000001";

/// A token for `user` with extra `groups`, minted with the demo's keys.
fn token(demo: &Demo, user: &str, groups: &[&str]) -> String {
    demo.token_with_groups(user, groups)
}

/// One stateless `tools/call`; the whole JSON-RPC answer.
async fn call(demo: &Demo, token: &str, name: &str, arguments: Value) -> Value {
    demo.call_tool(token, name, arguments).await
}

fn last_record(demo: &Demo) -> Value {
    let text = std::fs::read_to_string(demo.data_dir().join("audit.jsonl")).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Allow,
    /// Denied by the policy, with its reason in the answer.
    Deny,
    /// Hidden from the caller: answered as an unknown tool.
    Hidden,
}

/// One guard or permit case: (policy, user, token, tool, arguments, expected outcome).
type Case<'a> = (&'a str, &'a str, &'a str, &'a str, Value, Expect);

/// Drives each case as a real `tools/call` and checks the answer and its audit record.
async fn check(demo: &Demo, cases: Vec<Case<'_>>) {
    for (policy, user, token, tool, arguments, expect) in cases {
        let answer = call(demo, token, tool, arguments).await;
        let record = last_record(demo);
        let case = format!("{policy}: {user} {tool} {expect:?}: {answer} / {record}");
        assert_eq!(record["tool"], tool, "{case}");
        assert_eq!(record["user"], user, "{case}");
        let policies = record["policies"].as_array().unwrap();
        match expect {
            Expect::Allow => {
                assert_eq!(record["decision"], "allow", "{case}");
                assert!(answer.get("result").is_some(), "{case}");
                let text = answer["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap_or("");
                assert!(!text.starts_with("denied by policy"), "{case}");
            }
            Expect::Deny => {
                assert_eq!(record["decision"], "deny", "{case}");
                assert!(policies.iter().any(|p| p == policy), "{case}");
                let text = answer["result"]["content"][0]["text"].as_str().unwrap();
                assert!(text.starts_with("denied by policy: "), "{case}");
            }
            Expect::Hidden => {
                assert_eq!(record["decision"], "deny", "{case}");
                assert_eq!(
                    answer["error"]["message"],
                    format!("Unknown tool: {tool}"),
                    "{case}"
                );
                // A guard names itself; a missing permit leaves default deny (no policy).
                if policy != "everyone-reads" && policy != "writers-write" {
                    assert!(policies.iter().any(|p| p == policy), "{case}");
                }
            }
        }
        if expect == Expect::Allow && policy != "mail-internal-only" {
            // The determining permits are recorded too.
            assert!(!policies.is_empty(), "{case}");
        }
    }
}

#[tokio::test]
async fn every_shipped_guard_and_permit_allows_and_denies_real_calls() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice"); // staff, writers
    let bob = demo.token("bob"); // staff
    let carol = demo.token("carol"); // contractors
    let ada = token(&demo, "ada", &["admins"]);
    let internal = json!({"to": ["bob@example.com"], "subject": "plans", "body": "hello"});
    let external = json!({"to": ["eve@evil.test"], "subject": "plans", "body": "hello"});
    let cases: Vec<Case> = vec![
        (
            "everyone-reads",
            "bob",
            &bob,
            "linear_list_teams",
            json!({}),
            Expect::Allow,
        ),
        (
            "everyone-reads",
            "bob",
            &bob,
            "linear_create_issue",
            json!({"team_id": ENG, "title": "t"}),
            Expect::Hidden,
        ),
        (
            "writers-write",
            "alice",
            &alice,
            "linear_create_issue",
            json!({"team_id": ENG, "title": "from the policy test"}),
            Expect::Allow,
        ),
        (
            "writers-write",
            "bob",
            &bob,
            "outlook_send_message",
            internal.clone(),
            Expect::Hidden,
        ),
        (
            "admins-all",
            "ada",
            &ada,
            "drive_delete_file",
            json!({"file": "/nope"}),
            Expect::Allow,
        ),
        (
            "destructive-admins-only",
            "alice",
            &alice,
            "drive_delete_file",
            json!({"file": "/nope"}),
            Expect::Hidden,
        ),
        (
            "contractors-no-mail",
            "alice",
            &alice,
            "outlook_list_messages",
            json!({}),
            Expect::Allow,
        ),
        (
            "contractors-no-mail",
            "carol",
            &carol,
            "outlook_list_messages",
            json!({}),
            Expect::Hidden,
        ),
        (
            "mail-internal-only",
            "alice",
            &alice,
            "outlook_send_message",
            internal,
            Expect::Allow,
        ),
        (
            "mail-internal-only",
            "alice",
            &alice,
            "outlook_send_message",
            external,
            Expect::Deny,
        ),
        (
            "linear-known-teams",
            "alice",
            &alice,
            "linear_create_issue",
            json!({"team_id": ENG, "title": "in ENG"}),
            Expect::Allow,
        ),
        (
            "linear-known-teams",
            "alice",
            &alice,
            "linear_create_issue",
            json!({"team_id": DES, "title": "in Design"}),
            Expect::Deny,
        ),
    ];
    check(&demo, cases).await;
}

/// The Teams guards and the forward guard, which decide on facts the gateway reads from Graph
/// first (a chat's members, a channel's team, a forwarded message's people).
#[tokio::test]
async fn teams_and_forward_guards_allow_and_deny_real_calls() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice"); // staff, writers
    let alice_admin = token(&demo, "alice", &["admins"]);
    let chat = |id: &str| json!({"chat_id": id, "text": "hello"});
    let channel = |team: &str| {
        json!({"team_id": team, "channel_id": format!("19:{team}-general@thread.tacv2"),
            "text": "hello"})
    };
    let forward = |id: &str| json!({"message_id": id, "to": ["bob@example.com"], "comment": "fyi"});
    let cases: Vec<Case> = vec![
        (
            "chat-internal-only",
            "alice",
            &alice,
            "teams_send_chat_message",
            chat("19:chat-ab@unq.gbl.spaces"),
            Expect::Allow,
        ),
        (
            "chat-internal-only",
            "alice",
            &alice,
            "teams_send_chat_message",
            chat("19:facts-partner@thread.v2"),
            Expect::Deny,
        ),
        (
            "teams-known-teams",
            "alice",
            &alice,
            "teams_post_channel_message",
            channel("team-eng"),
            Expect::Allow,
        ),
        (
            "teams-known-teams",
            "alice",
            &alice,
            "teams_post_channel_message",
            channel("team-fin"),
            Expect::Deny,
        ),
        (
            "no-forwarding-outside-threads",
            "alice",
            &alice,
            "outlook_forward_message",
            forward("AAMkmsg-facts-internal"),
            Expect::Allow,
        ),
        (
            "no-forwarding-outside-threads",
            "alice",
            &alice,
            "outlook_forward_message",
            forward("AAMkmsg-facts-external-cc"),
            Expect::Deny,
        ),
        (
            "no-forwarding-outside-threads",
            "alice",
            &alice_admin,
            "outlook_forward_message",
            forward("AAMkmsg-facts-external-sender"),
            Expect::Allow,
        ),
    ];
    check(&demo, cases).await;
}

#[tokio::test]
async fn the_send_quota_counts_every_sending_tool_together() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice");
    let mail = json!({"to": ["bob@example.com"], "subject": "s", "body": "b"});
    let chats = call(&demo, &alice, "teams_list_chats", json!({})).await;
    let chat = chats["result"]["structuredContent"]["chats"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{chats}"))
        .to_owned();
    let chat_message = json!({"chat_id": chat, "text": "hi"});
    // Reads do not count.
    for _ in 0..3 {
        call(&demo, &alice, "outlook_list_messages", json!({})).await;
    }
    // Five sends a minute, across mail and chat.
    for index in 0..6 {
        let (tool, arguments) = if index % 2 == 0 {
            ("outlook_send_message", mail.clone())
        } else {
            ("teams_send_chat_message", chat_message.clone())
        };
        let answer = call(&demo, &alice, tool, arguments).await;
        let text = answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("");
        let refused = text.starts_with("quota `send-mail` exceeded");
        assert_eq!(refused, index == 5, "send {index} ({tool}): {answer}");
        assert_eq!(
            last_record(&demo)["outcome"],
            if index == 5 { "quota_exceeded" } else { "ok" },
            "send {index}: {answer}"
        );
    }
}
