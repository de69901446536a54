//! The policy stage end to end against `manifold demo` and its shipped policies: tools/list shows
//! each user only what they may call, denials carry the policy's reason and nothing else, policy
//! edits take effect without a restart (broken ones are refused), secrets in provider files are
//! masked, and every call and denial lands in a verifiable audit log.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::demo::Demo;

/// Calls `method` on the demo as `user` (stateless 2026-07-28 requests) and returns `result`.
async fn rpc(demo: &Demo, token: &str, method: &str, params: Value) -> Value {
    rpc_message(demo, token, method, params).await["result"].clone()
}

/// The whole JSON-RPC answer to `method` (its `result` or its `error`).
async fn rpc_message(demo: &Demo, token: &str, method: &str, params: Value) -> Value {
    demo.rpc_message(token, method, params).await
}

async fn tool_names(demo: &Demo, token: &str) -> Vec<String> {
    listed(demo, token)
        .await
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every tool `tools/list` shows the caller, following the cursor.
async fn listed(demo: &Demo, token: &str) -> Vec<Value> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = cursor.map_or(json!({}), |c| json!({"cursor": c}));
        let page = rpc(demo, token, "tools/list", params).await;
        tools.extend(page["tools"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return tools,
        }
    }
}

async fn call(demo: &Demo, token: &str, name: &str, arguments: Value) -> Value {
    rpc(
        demo,
        token,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    )
    .await
}

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn each_user_sees_and_calls_only_what_the_policies_allow() {
    let demo = Demo::start(&[]);
    let (alice, bob, carol) = (demo.token("alice"), demo.token("bob"), demo.token("carol"));

    let alice_tools = tool_names(&demo, &alice).await;
    let carol_tools = tool_names(&demo, &carol).await;
    assert!(
        alice_tools.iter().any(|n| n.starts_with("outlook_")),
        "{alice_tools:?}"
    );
    assert!(
        !carol_tools.iter().any(|n| n.starts_with("outlook_")),
        "contractors see mail: {carol_tools:?}"
    );
    assert!(carol_tools.iter().any(|n| n == "linear_search_issues"));

    // Mail is hidden from contractors: a call answers as for a tool that does not exist.
    let hidden = rpc_message(
        &demo,
        &carol,
        "tools/call",
        json!({"name": "outlook_list_messages", "arguments": {}}),
    )
    .await;
    assert_eq!(hidden["error"]["code"], -32602, "{hidden}");
    assert_eq!(
        hidden["error"]["message"],
        "Unknown tool: outlook_list_messages"
    );

    // tools/list shows exactly what each may call: bob (staff) only reads, alice (writers) no
    // destructive tools (admins only).
    let bob_tools = listed(&demo, &bob).await;
    assert!(!bob_tools.is_empty());
    assert!(
        bob_tools
            .iter()
            .all(|t| t["annotations"]["readOnlyHint"] == true),
        "bob sees writes"
    );
    let alice_all = listed(&demo, &alice).await;
    assert!(
        alice_all
            .iter()
            .any(|t| t["annotations"]["readOnlyHint"] == false),
        "alice sees no writes"
    );
    assert!(
        alice_all
            .iter()
            .all(|t| t["annotations"]["destructiveHint"] == false),
        "alice sees destructive tools"
    );

    // bob is staff but not a writer: no permit covers a write, so writes are hidden from him
    // and a call answers as for a tool that does not exist, echoing none of the arguments.
    let teams = call(&demo, &bob, "linear_list_teams", json!({})).await;
    let team_id = teams["structuredContent"]["teams"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let write = rpc_message(
        &demo,
        &bob,
        "tools/call",
        json!({"name": "linear_create_issue",
               "arguments": {"team_id": team_id, "title": "secret-title-7"}}),
    )
    .await;
    assert_eq!(
        write["error"]["message"],
        "Unknown tool: linear_create_issue"
    );
    assert!(
        !write.to_string().contains("secret-title-7"),
        "the refusal echoes the arguments: {write}"
    );

    // alice writes, but mail only to internal domains.
    let external = call(
        &demo,
        &alice,
        "outlook_send_message",
        json!({"to": ["eve@evil.test"], "subject": "plans", "body": "see attached"}),
    )
    .await;
    assert_eq!(
        text_of(&external),
        "denied by policy: mail may only be sent to example.com addresses"
    );
    let created = call(
        &demo,
        &alice,
        "linear_create_issue",
        json!({"team_id": team_id, "title": "from alice"}),
    )
    .await;
    assert_eq!(created["isError"], false, "{created}");

    // Every call and denial is in the audit log, and its chain verifies.
    let audit = demo.data_dir().join("audit.jsonl");
    let records: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.iter().any(|r| r["decision"] == "deny"
        && r["user"] == "carol"
        && r["tool"] == "outlook_list_messages"));
    assert!(records.iter().any(|r| r["outcome"] == "ok"
        && r["user"] == "alice"
        && r["tool"] == "linear_create_issue"));
    assert!(
        !std::fs::read_to_string(&audit)
            .unwrap()
            .contains("secret-title-7"),
        "raw arguments in the audit log"
    );
    let verify = std::process::Command::new(support::manifold_bin())
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn secrets_in_provider_files_never_leave_the_gateway() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice");
    // The emulator does serve the secrets: the file holds them.
    let read = call(
        &demo,
        &alice,
        "dropbox_read_file",
        json!({"path": "/Finance/payment-details.txt"}),
    )
    .await;
    assert_eq!(read["isError"], false, "{read}");
    let everything = read.to_string();
    assert!(
        everything.contains("Supplier payment details"),
        "{everything}"
    );
    for secret in [
        "4111 1111 1111 1111",
        "GB82 WEST 1234 5698 7654 32",
        "AKIAIOSFODNN7EXAMPLE",
    ] {
        assert!(
            !everything.contains(secret),
            "`{secret}` reached the client: {everything}"
        );
    }
}

#[tokio::test]
async fn policy_edits_apply_without_restart_and_broken_ones_are_refused() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice");
    let policies = demo.data_dir().join("policies");
    assert_eq!(
        call(&demo, &alice, "linear_list_teams", json!({})).await["isError"],
        false
    );

    let forbid = "@id(\"no-teams\")\n@reason(\"team lists are off today\")\nforbid (principal, action == Action::\"call\", resource)\nwhen { resource.name == \"linear_list_teams\" };\n";
    std::fs::write(policies.join("extra.cedar"), forbid).unwrap();
    let denied = wait_for(
        || async { text_of(&call(&demo, &alice, "linear_list_teams", json!({})).await) },
        |text| text == "denied by policy: team lists are off today",
    )
    .await;
    assert!(denied, "the new policy was not picked up");

    // A broken edit is refused: the last good policy (with the forbid) stays in force.
    std::fs::write(
        policies.join("extra.cedar"),
        format!("{forbid}\npermit (principal, action, resource) when {{ resource.nope }};\n"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        text_of(&call(&demo, &alice, "linear_list_teams", json!({})).await),
        "denied by policy: team lists are off today"
    );

    std::fs::remove_file(policies.join("extra.cedar")).unwrap();
    let allowed = wait_for(
        || async { call(&demo, &alice, "linear_list_teams", json!({})).await["isError"].clone() },
        |value| value == &json!(false),
    )
    .await;
    assert!(allowed, "removing the policy did not restore access");
}

async fn wait_for<T, F, Fut>(probe: F, done: impl Fn(&T) -> bool) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for _ in 0..50 {
        if done(&probe().await) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
