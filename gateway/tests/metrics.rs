//! `/metrics` counts every tool call by tool and outcome, with its latency, whichever path served
//! it (the fast path or rmcp's service). It is served on the operator listener (loopback, a port
//! of its own), not on the MCP port.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::{in_session, open_session, post, start};

#[tokio::test]
async fn metrics_count_calls_by_tool_and_outcome() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &gw.url(), version).await;
    let headers = in_session(&session, version);
    let calls = [
        json!({"name": "t_echo", "arguments": {"text": "a"}}),
        json!({"name": "t_echo", "arguments": {"text": "b"}, "_meta": {"progressToken": "p"}}),
        json!({"name": "t_fail", "arguments": {}}),
    ];
    for (id, params) in calls.iter().enumerate() {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        let (status, ..) = post(&client, &gw.url(), &headers, &body.to_string()).await;
        assert_eq!(status, 200);
    }
    let operator = gw
        .running
        .operator_addr
        .expect("an operator listener by default");
    let text = client
        .get(format!("http://{operator}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"manifold_tool_calls_total{tool="t_echo",outcome="ok"} 2"#,
        r#"manifold_tool_calls_total{tool="t_fail",outcome="error"} 1"#,
        r#"manifold_tool_call_duration_seconds_count{tool="t_echo"} 2"#,
        r#"manifold_tool_call_duration_seconds_bucket{tool="t_fail",le="+Inf"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    assert!(text.contains("# TYPE manifold_tool_call_duration_seconds histogram"));
}
