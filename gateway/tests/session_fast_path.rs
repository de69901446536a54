//! A plain `tools/call` inside a session is served by the gateway's session fast path; one with a
//! progress token goes through rmcp's session service. Both must answer alike and drop the
//! adapter call when the client cancels it; the fast path honours the log level the session set
//! through rmcp; sessions that are unknown or ended still answer 404.
#![allow(clippy::unwrap_used)]

mod support;

use std::{sync::atomic::Ordering, time::Duration};

use serde_json::{Value, json};
use support::{in_session, open_session, post, start};

const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

fn call(id: u64, name: &str, arguments: &Value, progress: Option<&str>) -> String {
    let mut params = json!({"name": name, "arguments": arguments});
    if let Some(token) = progress {
        params["_meta"] = json!({ "progressToken": token });
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string()
}

fn content_type(headers: &reqwest::header::HeaderMap) -> String {
    headers["content-type"].to_str().unwrap().to_owned()
}

fn answer_to(messages: &[Value], id: u64) -> Value {
    messages
        .iter()
        .find(|m| m["id"] == json!(id))
        .cloned()
        .unwrap_or_else(|| panic!("no answer with id {id} in {messages:?}"))
}

fn logs(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .cloned()
        .collect()
}

#[tokio::test]
async fn session_calls_answer_alike_on_the_fast_path_and_through_rmcp() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let cases = [
        ("t_echo", json!({"text": "hi"})),
        ("t_echo", json!({"text": 7})),
        ("t_fail", json!({})),
        ("t_nope", json!({})),
    ];
    let mut id = 0;
    for version in SESSION_VERSIONS {
        let session = open_session(&client, &gw.url(), version).await;
        let headers = in_session(&session, version);
        for (tool, arguments) in &cases {
            id += 1;
            let (fast_status, fast_headers, fast, fast_text) = post(
                &client,
                &gw.url(),
                &headers,
                &call(id, tool, arguments, None),
            )
            .await;
            let token = format!("p{id}");
            let (rmcp_status, rmcp_headers, rmcp, _) = post(
                &client,
                &gw.url(),
                &headers,
                &call(id, tool, arguments, Some(&token)),
            )
            .await;
            let what = format!("{version} {tool} {arguments}");
            assert_eq!(fast_status, 200, "{what}: {fast_text}");
            assert_eq!(fast_status, rmcp_status, "{what}: same HTTP status");
            assert_eq!(
                answer_to(&fast, id),
                answer_to(&rmcp, id),
                "{what}: same JSON-RPC answer"
            );
            assert!(
                rmcp_headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/event-stream"),
                "{what}: rmcp's session service answers with a stream"
            );
            // A failing provider call is logged to the client ahead of its result (the
            // default level is warning); anything else is one JSON message.
            let expected = if *tool == "t_fail" {
                "text/event-stream"
            } else {
                "application/json"
            };
            assert_eq!(
                content_type(&fast_headers),
                expected,
                "{what}: served by the fast path"
            );
        }
    }
    assert_eq!(
        gw.probe.calls.load(Ordering::SeqCst),
        4 * SESSION_VERSIONS.len(),
        "echo and fail, twice each per era"
    );
}

#[tokio::test]
async fn the_log_level_a_session_set_applies_on_the_fast_path_and_only_to_it() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let version = "2025-06-18";
    let quiet = open_session(&client, &gw.url(), version).await;
    let loud = open_session(&client, &gw.url(), version).await;
    let set_level =
        r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"error"}}"#;
    let quiet_headers = in_session(&quiet, version);
    let loud_headers = in_session(&loud, version);
    let (status, _, answer, _) = post(&client, &gw.url(), &quiet_headers, set_level).await;
    assert_eq!(status, 200);
    assert!(answer_to(&answer, 1).get("error").is_none(), "{answer:?}");
    // rmcp's own service sends log messages to the session's GET stream; the fast path sends
    // them ahead of the answer, on the stream of the call they are about.
    let body = call(2, "t_fail", &json!({}), None);
    let (_, _, quiet_answer, _) = post(&client, &gw.url(), &quiet_headers, &body).await;
    assert_eq!(answer_to(&quiet_answer, 2)["result"]["isError"], true);
    assert!(
        logs(&quiet_answer).is_empty(),
        "level error hides warnings: {quiet_answer:?}"
    );
    let (_, _, loud_answer, _) = post(&client, &gw.url(), &loud_headers, &body).await;
    let warnings = logs(&loud_answer);
    assert_eq!(warnings.len(), 1, "{loud_answer:?}");
    assert_eq!(warnings[0]["params"]["level"], "warning");
    assert_eq!(warnings[0]["params"]["data"]["tool"], "t_fail");
    assert_eq!(
        loud_answer.last().unwrap()["id"],
        2,
        "the answer comes after the log"
    );
}

#[tokio::test]
async fn cancelling_drops_the_adapter_call_on_both_paths() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &gw.url(), version).await;
    for (index, progress) in [None, Some("p-slow")].into_iter().enumerate() {
        let id = 40 + index as u64;
        let slow = tokio::spawn({
            let (client, url, session) = (client.clone(), gw.url(), session.clone());
            let body = call(id, "t_slow", &json!({"millis": 10_000}), progress);
            async move {
                let headers = in_session(&session, version);
                post(&client, &url, &headers, &body).await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": id, "reason": "stop"}});
        let headers = in_session(&session, version);
        let (status, ..) = post(&client, &gw.url(), &headers, &cancel.to_string()).await;
        assert_eq!(status, 202, "{progress:?}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while gw.probe.cancelled.load(Ordering::SeqCst) <= index {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{progress:?}: the adapter call was not dropped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slow.abort();
    }
    // The session is still usable.
    let headers = in_session(&session, version);
    let body = call(50, "t_echo", &json!({"text": "after"}), None);
    let (status, _, answer, _) = post(&client, &gw.url(), &headers, &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer_to(&answer, 50)["result"]["structuredContent"]["echo"],
        "after"
    );
}

#[tokio::test]
async fn unknown_ended_and_mismatched_requests_get_rmcps_answers() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let echo = call(1, "t_echo", &json!({"text": "x"}), None);
    let unknown = [
        ("mcp-session-id", "no-such-session"),
        ("mcp-protocol-version", version),
    ];
    let (status, ..) = post(&client, &gw.url(), &unknown, &echo).await;
    assert_eq!(status, 404, "unknown session");

    let session = open_session(&client, &gw.url(), version).await;
    let headers = in_session(&session, version);
    let wrong_version = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "1999-01-01"),
    ];
    let (status, ..) = post(&client, &gw.url(), &wrong_version, &echo).await;
    assert_eq!(status, 400, "unsupported MCP-Protocol-Version");
    let mismatched = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", version),
        ("mcp-method", "tools/call"),
        ("mcp-name", "t_other"),
    ];
    // Headers that disagree with the body are rmcp's to judge (it serves them before 2026).
    let (status, headers_back, _, _) = post(&client, &gw.url(), &mismatched, &echo).await;
    assert_eq!(status, 200);
    assert!(
        content_type(&headers_back).starts_with("text/event-stream"),
        "left to rmcp's session service"
    );

    // The same request id twice at once in one session: the second is refused.
    let slow = call(7, "t_slow", &json!({"millis": 600}), None);
    let first = tokio::spawn({
        let (client, url, session, slow) =
            (client.clone(), gw.url(), session.clone(), slow.clone());
        async move {
            let headers = in_session(&session, version);
            post(&client, &url, &headers, &slow).await
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (_, _, second, _) = post(&client, &gw.url(), &headers, &slow).await;
    assert_eq!(answer_to(&second, 7)["error"]["code"], -32600, "{second:?}");
    let (_, _, first, _) = first.await.unwrap();
    assert!(answer_to(&first, 7).get("result").is_some(), "{first:?}");

    let ended = client
        .delete(gw.url())
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", version)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let (status, ..) = post(&client, &gw.url(), &headers, &echo).await;
    assert_eq!(status, 404, "ended session");
}
