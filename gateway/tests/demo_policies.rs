//! The shipped demo policies fire on the demo's real tools and arguments: each guard and permit
//! of `config/policies/` gets an ALLOW and a DENY case driven as a real `tools/call` through
//! `manifold demo`, checked by the answer and by the decision and policies the audit log
//! recorded; and the `send-mail` quota covers every tool tagged `sends`, not one tool name.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{
    decision::{Want, decided},
    demo::Demo,
};

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
    let bob_admin = token(&demo, "bob", &["admins"]);
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
            // Drive calls read where the item lies first, with the caller's own connection: an
            // admin with one (ada has none) deleting a file that exists.
            "admins-all",
            "bob",
            &bob_admin,
            "drive_delete_file",
            json!({"file": "/Bob private notes.txt"}),
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

// === Drive folders and shared links: `drive-shared-folders`, `no-public-links` ===

/// One of the shared folders `drive-shared-folders` lists (with the Engineering shared drive):
/// alice's Projects folder.
const PROJECTS: &str = "1Sb0NIo8jIuUmvlwWV1CiGSvtSXvAVo64";

#[tokio::test]
async fn drive_guard_confines_contractors_to_the_shared_folders_wherever_the_arguments_point() {
    let demo = Demo::start(&[]);
    // alice's own Drive connection, as a contractor (and still a writer), and as herself.
    let contractor = token(&demo, "alice", &["contractors"]);
    let contractor = ("alice", contractor.as_str());
    let staff = demo.token("alice");
    let staff = ("alice", staff.as_str());
    // The guard's ids are the demo Drive's: Projects by path, a shared drive file by name.
    let projects = call(
        &demo,
        staff.1,
        "drive_get_file",
        json!({"file": "/Projects"}),
    )
    .await;
    assert_eq!(
        projects["result"]["structuredContent"]["file"]["id"], PROJECTS,
        "{projects}"
    );
    let found = call(
        &demo,
        staff.1,
        "drive_search_files",
        json!({"query": "API Spec", "match": "name"}),
    )
    .await;
    let spec = found["result"]["structuredContent"]["files"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{found}"))
        .to_owned();
    let spec_link = format!("https://docs.google.com/document/d/{spec}/edit");
    let cases = [
        // Inside: by path, by id, by link, the folder itself, nested, odd but equal spellings.
        (
            "drive_read_file",
            json!({"file": "/Projects/Q3 Plan.docx"}),
            Want::Allow,
        ),
        ("drive_get_file", json!({"file": PROJECTS}), Want::Allow),
        ("drive_get_file", json!({"file": "/Projects/"}), Want::Allow),
        (
            "drive_get_file",
            json!({"file": "My Drive//Projects/Designs/"}),
            Want::Allow,
        ),
        (
            "drive_list_folder",
            json!({"folder": "/Projects/Designs"}),
            Want::Allow,
        ),
        (
            "drive_read_file",
            json!({"file": spec.clone()}),
            Want::Allow,
        ),
        ("drive_get_file", json!({"file": spec_link}), Want::Allow),
        (
            "drive_search_files",
            json!({"query": "plan", "folder": "/Projects"}),
            Want::Allow,
        ),
        // Outside: another folder, My Drive's root, the whole Drive, a file shared directly.
        (
            "drive_read_file",
            json!({"file": "/Archive/log-0001.txt"}),
            Want::Denied("drive-shared-folders"),
        ),
        (
            "drive_get_file",
            json!({"file": "/Archive/"}),
            Want::Denied("drive-shared-folders"),
        ),
        (
            "drive_list_folder",
            json!({}),
            Want::Denied("drive-shared-folders"),
        ),
        (
            "drive_get_file",
            json!({"file": "root"}),
            Want::Denied("drive-shared-folders"),
        ),
        (
            "drive_search_files",
            json!({"query": "plan"}),
            Want::Denied("drive-shared-folders"),
        ),
        (
            "drive_search_files",
            json!({"query": "plan", "folder": "/Archive"}),
            Want::Denied("drive-shared-folders"),
        ),
        // Spelt to escape: `..` is a name Drive does not have, and names are exact, so these
        // name nothing; for a contractor that is outside every shared folder.
        (
            "drive_read_file",
            json!({"file": "/Projects/../Archive/log-0001.txt"}),
            Want::Denied("drive-shared-folders"),
        ),
        (
            "drive_get_file",
            json!({"file": "/projects"}),
            Want::Denied("drive-shared-folders"),
        ),
        (
            "drive_get_file",
            json!({"file": "/Projects/../Projects"}),
            Want::Denied("drive-shared-folders"),
        ),
    ];
    for (tool, arguments, want) in cases {
        decided(&demo, contractor.1, tool, arguments, want).await;
    }
    // The guard is the contractors': staff read where they like, and a path that names nothing
    // is a denial for them too (where it acts cannot be read).
    for (file, want) in [
        ("/Archive/log-0001.txt", Want::Allow),
        ("/Projects/../Archive/log-0001.txt", Want::Unreadable),
        ("/projects", Want::Unreadable),
    ] {
        decided(
            &demo,
            staff.1,
            "drive_get_file",
            json!({"file": file}),
            want,
        )
        .await;
    }
    // Without a Google connection where the item lies cannot be read: the answer is the way to
    // connect, as for any call that needs the connection, not an allow.
    let stranger = token(&demo, "dave", &[]);
    let answer = call(
        &demo,
        &stranger,
        "drive_get_file",
        json!({"file": "/Projects"}),
    )
    .await;
    let record = last_record(&demo);
    assert_eq!(
        (&record["decision"], &record["outcome"]),
        (&json!("deny"), &json!("not_connected")),
        "{answer} / {record}"
    );
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("/connections/connect?connection=google"),
        "{text}"
    );
    // A move acts in two places, which the list cannot confine: not for contractors, even
    // admin ones (the guard overrides `admins-all`).
    let admin = token(&demo, "alice", &["contractors", "admins"]);
    decided(
        &demo,
        &admin,
        "drive_move_file",
        json!({"file": "/Projects/Q3 Plan.docx", "new_parent": "/Projects/Designs"}),
        Want::Denied("drive-shared-folders"),
    )
    .await;
}

#[tokio::test]
async fn links_that_work_for_anyone_are_for_admins_whatever_was_asked() {
    let demo = Demo::start(&[]);
    let writer = demo.token("alice");
    let writer = ("alice", writer.as_str());
    // bob's own connections, as an admin.
    let admin = token(&demo, "bob", &["admins"]);
    let admin = ("bob", admin.as_str());
    let denied = Want::Denied("no-public-links");
    let cases = [
        // Left out, the audience is the tool's default: public.
        (
            writer,
            "dropbox_create_share_link",
            json!({"path": "/Reports/budget-2026.xlsx"}),
            denied,
        ),
        (
            writer,
            "dropbox_create_share_link",
            json!({"path": "/Reports/roadmap.pptx", "audience": "public"}),
            denied,
        ),
        // The path already has a public link, which Dropbox would hand back.
        (
            writer,
            "dropbox_create_share_link",
            json!({"path": "/Reports/sales.csv", "audience": "team"}),
            denied,
        ),
        (
            writer,
            "dropbox_create_share_link",
            json!({"path": "/reports/SALES.csv", "audience": "no_one"}),
            denied,
        ),
        // A fresh path, or one whose existing link is no wider.
        (
            writer,
            "dropbox_create_share_link",
            json!({"path": "/Reports/quarterly-summary.docx", "audience": "team"}),
            Want::Allow,
        ),
        (
            writer,
            "dropbox_create_share_link",
            json!({"path": "/Reports/README.md", "audience": "no_one"}),
            Want::Allow,
        ),
        (
            admin,
            "dropbox_create_share_link",
            json!({"path": "/Reports/handbook.pdf"}),
            Want::Allow,
        ),
    ];
    for (who, tool, arguments, want) in cases {
        decided(&demo, who.1, tool, arguments, want).await;
    }
    // Box's link tool replaces a file's one link (destructive): admins only, whom the guard
    // exempts. `files_facts.rs` checks the audience its facts give.
    let hidden = call(
        &demo,
        writer.1,
        "box_create_share_link",
        json!({"file_id": "1003"}),
    )
    .await;
    assert_eq!(
        hidden["error"]["message"], "Unknown tool: box_create_share_link",
        "{hidden}"
    );
    decided(
        &demo,
        admin.1,
        "box_create_share_link",
        json!({"file_id": "1003"}),
        Want::Allow,
    )
    .await;
}
