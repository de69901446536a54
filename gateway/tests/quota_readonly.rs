//! Quotas and the read-only switch through the whole handler, with the `test` adapter: a quota
//! refuses the call past its limit with the rule and when to retry, and a read-only instance
//! hides its write tools (a call answers as for an unknown tool) while its reads keep working.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{open_session, post, start, start_with_env};

fn call(id: u64, name: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": arguments}})
    .to_string()
}

fn result(messages: &[Value], id: u64) -> Value {
    messages.iter().find(|m| m["id"] == json!(id)).unwrap()["result"].clone()
}

/// A policy directory that allows everything and limits `t_echo` to `per_minute` calls under
/// quota `rule`, and the config lines that load it.
fn open_policies_with_quota(rule: &str, per_minute: u32) -> (tempfile::TempDir, String) {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("open.cedar"),
        "@id(\"open\")\n@reason(\"test\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    std::fs::write(
        policies.path().join("quotas.toml"),
        format!(
            "[[quota]]\nid = \"{rule}\"\nper = \"tool\"\ntool = \"t_echo\"\nper_minute = {per_minute}\n"
        ),
    )
    .unwrap();
    let extra = format!(
        "[policy]\ndir = \"{}\"\nwatch = false\n",
        policies.path().display()
    );
    (policies, extra)
}

#[tokio::test]
async fn a_quota_refuses_calls_past_its_limit() {
    let (_policies, extra) = open_policies_with_quota("echo-two", 2);
    let gw = start(&extra).await;
    let client = reqwest::Client::new();
    let session = open_session(&client, &gw.url(), "2025-11-25").await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    for id in 1..=2 {
        let (_, _, answer, _) = post(
            &client,
            &gw.url(),
            &headers,
            &call(id, "t_echo", json!({"text": "x"})),
        )
        .await;
        assert_eq!(result(&answer, id)["isError"], false);
    }
    let (_, _, answer, _) = post(
        &client,
        &gw.url(),
        &headers,
        &call(3, "t_echo", json!({"text": "x"})),
    )
    .await;
    let refused = result(&answer, 3);
    assert_eq!(refused["isError"], true);
    let text = refused["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("quota `echo-two` exceeded: try again in "),
        "{text}"
    );
    assert_eq!(
        gw.probe.calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the refused call reached the adapter"
    );
    let audit = std::fs::read_to_string(gw.dir.path().join("audit.jsonl")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["outcome"], "quota_exceeded", "{last}");
    assert_eq!(last["reason"], "quota `echo-two` exceeded");
    // Other tools are not limited by that rule.
    let (_, _, answer, _) = post(
        &client,
        &gw.url(),
        &headers,
        &call(4, "t_slow", json!({"millis": 0})),
    )
    .await;
    assert_eq!(result(&answer, 4)["isError"], false);
}

/// With the gateway's Redis (`storage.redis_url`) and no `[redis]` in `quotas.toml`, replicas
/// count one limit together: calls alternating between two gateways stop at the limit.
#[tokio::test]
async fn replicas_share_quotas_through_the_gateways_redis() {
    let Some(redis) = support::process::redis_url() else {
        return;
    };
    // A rule id of its own per run: Redis windows outlive the test.
    let rule = format!("shared-{}", uuid::Uuid::new_v4().simple());
    let (_policies, extra) = open_policies_with_quota(&rule, 3);
    let env = [("MANIFOLD_STORAGE__REDIS_URL".to_owned(), redis)];
    let replicas = [
        start_with_env(&extra, "", &env).await,
        start_with_env(&extra, "", &env).await,
    ];
    let client = reqwest::Client::new();
    let mut served = 0;
    for id in 1..=8u64 {
        let gw = &replicas[usize::try_from(id % 2).unwrap()];
        let session = open_session(&client, &gw.url(), "2025-11-25").await;
        let headers = [
            ("mcp-session-id", session.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        let (_, _, answer, _) = post(
            &client,
            &gw.url(),
            &headers,
            &call(id, "t_echo", json!({"text": "x"})),
        )
        .await;
        if result(&answer, id)["isError"] == false {
            served += 1;
        }
    }
    assert_eq!(served, 3, "one limit of 3 across both replicas");
}

#[tokio::test]
async fn a_read_only_instance_hides_and_denies_its_writes() {
    let gw = start("[adapters.ro]\nkind = \"test\"\nread_only = true\n[adapters.ro.credentials]\ntoken = \"x\"\n").await;
    let client = reqwest::Client::new();
    let session = open_session(&client, &gw.url(), "2025-11-25").await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
        let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": params});
        let (_, _, answer, _) = post(&client, &gw.url(), &headers, &body.to_string()).await;
        let page = result(&answer, 9);
        names.extend(
            page["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let read_only: Vec<_> = names.iter().filter(|n| n.starts_with("ro_")).collect();
    assert_eq!(
        read_only,
        ["ro_echo", "ro_slow"],
        "ro_fail is a write tool and must be hidden"
    );
    assert!(
        names.iter().any(|n| n == "t_fail"),
        "the other instance keeps its writes"
    );
    let (_, _, answer, _) =
        post(&client, &gw.url(), &headers, &call(1, "ro_fail", json!({}))).await;
    // Hidden, so answered as a tool that does not exist (and audited as the denial it is).
    let error = &answer.iter().find(|m| m["id"] == json!(1)).unwrap()["error"];
    assert_eq!(error["code"], -32602);
    assert_eq!(error["message"], "Unknown tool: ro_fail");
    let audit = std::fs::read_to_string(gw.dir.path().join("audit.jsonl")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["tool"], &last["outcome"], &last["policies"]),
        (
            &json!("ro_fail"),
            &json!("denied"),
            &json!(["read-only-switch"])
        )
    );
    let body = call(2, "ro_echo", json!({"text": "still"}));
    let (_, _, answer, _) = post(&client, &gw.url(), &headers, &body).await;
    assert_eq!(result(&answer, 2)["structuredContent"]["echo"], "still");
}
