//! The Streamable HTTP endpoint end to end: every protocol era, paging, calls, errors, hostile
//! bodies, cancellation, progress and the legacy SSE transport, against an in-process gateway.
#![allow(clippy::unwrap_used)]

mod support;

use std::{sync::atomic::Ordering, time::Duration};

use serde_json::{Value, json};
use support::{ACCEPT, in_session, open_session, post, start};

const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

fn call(id: u64, name: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": arguments}})
    .to_string()
}

fn result_of(messages: &[Value], id: u64) -> Value {
    messages
        .iter()
        .find(|m| m["id"] == json!(id))
        .cloned()
        .unwrap_or_else(|| panic!("no answer with id {id} in {messages:?}"))
}

#[tokio::test]
async fn every_session_era_initializes_pages_and_calls() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    for version in SESSION_VERSIONS {
        let session = open_session(&client, &gw.url(), version).await;
        let headers = in_session(&session, version);
        let list = |cursor: Option<&str>| {
            let params = cursor.map_or(json!({}), |c| json!({"cursor": c}));
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": params}).to_string()
        };
        let (status, _, page1, _) = post(&client, &gw.url(), &headers, &list(None)).await;
        assert_eq!(status, 200, "{version}");
        let page1 = result_of(&page1, 2)["result"].clone();
        let names: Vec<_> = page1["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].clone())
            .collect();
        assert_eq!(names, [json!("t_echo"), json!("t_slow")], "{version}");
        let cursor = page1["nextCursor"].as_str().unwrap();
        let (_, _, page2, _) = post(&client, &gw.url(), &headers, &list(Some(cursor))).await;
        let page2 = result_of(&page2, 2)["result"].clone();
        assert_eq!(page2["tools"][0]["name"], "t_fail");
        assert!(page2.get("nextCursor").is_none(), "{version}: {page2}");
        let annotations = &page1["tools"][0]["annotations"];
        for hint in [
            "readOnlyHint",
            "destructiveHint",
            "idempotentHint",
            "openWorldHint",
        ] {
            assert!(
                annotations[hint].is_boolean(),
                "{hint} missing: {annotations}"
            );
        }
        let (_, _, answer, _) = post(
            &client,
            &gw.url(),
            &headers,
            &call(3, "t_echo", json!({"text": version})),
        )
        .await;
        let result = &result_of(&answer, 3)["result"];
        assert_eq!(result["structuredContent"], json!({"echo": version}));
        assert_eq!(result["content"][0]["text"], version);
        assert_eq!(result["isError"], false);
    }
}

/// The `_meta` every 2026-07-28 request carries.
fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
    })
}

#[tokio::test]
async fn stateless_2026_era_discovers_lists_and_calls_without_a_session() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let meta = stateless_meta();
    let v = ("mcp-protocol-version", "2026-07-28");
    let discover =
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}});
    let (status, headers, answer, _) = post(
        &client,
        &gw.url(),
        &[v, ("mcp-method", "server/discover")],
        &discover.to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.get("mcp-session-id").is_none());
    let result = &result_of(&answer, 1)["result"];
    assert!(
        result["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );
    assert!(
        result["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2024-11-05"))
    );

    let list =
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta}});
    let (status, _, answer, _) = post(
        &client,
        &gw.url(),
        &[v, ("mcp-method", "tools/list")],
        &list.to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        result_of(&answer, 2)["result"]["tools"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"_meta": meta, "name": "t_echo", "arguments": {"text": "hi"}}});
    let (status, _, answer, body) = post(
        &client,
        &gw.url(),
        &[v, ("mcp-method", "tools/call"), ("mcp-name", "t_echo")],
        &call.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        result_of(&answer, 3)["result"]["structuredContent"]["echo"],
        "hi"
    );

    // Mcp-Name must agree with the body.
    let (status, ..) = post(
        &client,
        &gw.url(),
        &[v, ("mcp-method", "tools/call"), ("mcp-name", "t_slow")],
        &call.to_string(),
    )
    .await;
    assert_eq!(status, 400);
}

/// A stateless `tools/call` is answered by the gateway's fast path unless it asks for more than
/// its answer; a progress token sends it through rmcp's service instead. Both must answer alike.
#[tokio::test]
async fn stateless_calls_answer_alike_on_the_fast_path_and_through_rmcp() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let meta = stateless_meta();
    // (tool, arguments, whether the call reaches the adapter)
    let cases = [
        ("t_echo", json!({"text": "hi"}), true),
        // Refused before the adapter, as a tool result (invalid arguments).
        ("t_echo", json!({"text": 7}), false),
        ("t_fail", json!({}), true),
        ("t_nope", json!({}), false),
    ];
    for (index, (tool, arguments, reaches_adapter)) in cases.into_iter().enumerate() {
        let id = 10 + index as u64;
        let mut slow_meta = meta.clone();
        slow_meta["progressToken"] = json!(format!("p{id}"));
        let headers = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", tool),
        ];
        let mut answers = Vec::new();
        for meta in [&meta, &slow_meta] {
            let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"_meta": meta, "name": tool, "arguments": arguments}});
            let (status, response_headers, messages, text) =
                post(&client, &gw.url(), &headers, &body.to_string()).await;
            let content_type = response_headers["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            answers.push((status, content_type, result_of(&messages, id), text));
        }
        let (fast, rmcp) = (&answers[0], &answers[1]);
        assert_eq!(
            fast.1, "application/json",
            "{tool}: the fast path answers JSON"
        );
        // A call that reaches the adapter reports progress first, so rmcp answers with a stream.
        if reaches_adapter {
            assert!(
                rmcp.1.starts_with("text/event-stream"),
                "{tool}: a progress token goes through rmcp's stream: {}",
                rmcp.3
            );
        }
        assert_eq!(fast.0, rmcp.0, "{tool}: same HTTP status");
        assert_eq!(fast.2, rmcp.2, "{tool}: same JSON-RPC answer");
    }
    assert_eq!(
        gw.probe.calls.load(Ordering::SeqCst),
        4,
        "echo and fail, twice each"
    );
}

#[tokio::test]
async fn protocol_errors_have_the_right_codes_and_never_reach_the_adapter() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &gw.url(), version).await;
    let headers = in_session(&session, version);

    let (_, _, answer, _) = post(
        &client,
        &gw.url(),
        &headers,
        &call(1, "nope_tool", json!({})),
    )
    .await;
    let error = &result_of(&answer, 1)["error"];
    assert_eq!(error["code"], -32602);
    assert!(error["message"].as_str().unwrap().contains("Unknown tool"));

    for arguments in [
        json!({}),
        json!({"text": 5}),
        json!({"text": "x", "other": 1}),
        json!({"text": "y".repeat(101)}),
    ] {
        let (_, _, answer, _) = post(
            &client,
            &gw.url(),
            &headers,
            &call(2, "t_echo", arguments.clone()),
        )
        .await;
        // A tool execution error with the validation messages (MCP 2025-11-25, SEP-1303),
        // so the model can correct its call; only an unknown tool stays -32602.
        let result = &result_of(&answer, 2)["result"];
        assert_eq!(result["isError"], true, "{arguments}: {result}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("invalid arguments for t_echo: "), "{text}");
        assert!(
            text.len() > "invalid arguments for t_echo: ".len() + 5,
            "{text}"
        );
    }
    assert_eq!(
        gw.probe.calls.load(Ordering::SeqCst),
        0,
        "invalid calls reached the adapter"
    );

    let unknown = r#"{"jsonrpc":"2.0","id":3,"method":"no/such/method"}"#;
    let (_, _, answer, _) = post(&client, &gw.url(), &headers, unknown).await;
    assert_eq!(result_of(&answer, 3)["error"]["code"], -32601);

    let ping = r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#;
    let (status, ..) = post(
        &client,
        &gw.url(),
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "1999-01-01"),
        ],
        ping,
    )
    .await;
    assert_eq!(status, 400, "unsupported MCP-Protocol-Version");

    let (status, ..) = post(
        &client,
        &gw.url(),
        &[
            ("mcp-session-id", "no-such-session"),
            ("mcp-protocol-version", version),
        ],
        ping,
    )
    .await;
    assert_eq!(status, 404, "unknown session");

    // A client that drops its session id (ChatGPT does) is served without one.
    let (status, _, answer, _) = post(
        &client,
        &gw.url(),
        &[("mcp-protocol-version", version)],
        ping,
    )
    .await;
    assert_eq!(status, 200, "no session id: served statelessly");
    assert_eq!(result_of(&answer, 4)["result"], json!({}));

    let deleted = client
        .delete(gw.url())
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", version)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, ..) = post(&client, &gw.url(), &headers, ping).await;
    assert_eq!(status, 404, "ended session");

    let (status, ..) = post(&client, &gw.url(), &[("host", "evil.example")], ping).await;
    assert_eq!(status, 403);
    let (status, ..) = post(
        &client,
        &gw.url(),
        &[("origin", "https://evil.example")],
        ping,
    )
    .await;
    assert_eq!(status, 403);

    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    let (status, ..) = post(&client, &gw.url(), &headers, &huge).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn hostile_bodies_get_jsonrpc_errors_and_the_server_keeps_serving() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let deep = format!("{}{}", "{\"a\":".repeat(5000), "}".repeat(5000));
    let wide_id = format!(
        r#"{{"jsonrpc":"2.0","id":{},"method":"ping"}}"#,
        "9".repeat(30)
    );
    let unrepresentable = format!(
        r#"{{"jsonrpc":"2.0","id":{},"method":"ping"}}"#,
        "9".repeat(400)
    );
    let cases: Vec<(String, i64)> = vec![
        (r#"{"jsonrpc":"2.0","id":1,"method":"initia"#.into(), -32700),
        ("\u{0}\u{1}garbage".into(), -32700),
        (deep, -32700),
        (wide_id, -32600),
        (unrepresentable, -32700),
        (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.into(), -32600),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#.into(), -32600),
        (r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#.into(), -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":7}}"#.into(), -32602),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}"#.into(), -32602),
    ];
    for (body, code) in cases {
        let (status, _, answer, text) = post(&client, &gw.url(), &[], &body).await;
        let shown: String = body.chars().take(60).collect();
        assert_eq!(status, 400, "{shown}: {text}");
        assert_eq!(answer[0]["error"]["code"], code, "{shown}: {text}");
    }
    let session = open_session(&client, &gw.url(), "2025-06-18").await;
    assert!(
        !session.is_empty(),
        "server stopped serving after hostile input"
    );
}

#[tokio::test]
async fn provider_failures_are_tool_results_the_model_can_read() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let session = open_session(&client, &gw.url(), "2025-06-18").await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let (_, _, answer, _) = post(&client, &gw.url(), &headers, &call(1, "t_fail", json!({}))).await;
    let result = &result_of(&answer, 1)["result"];
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("503")
    );
}

#[tokio::test]
async fn progress_is_reported_before_the_result_when_asked_for() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let session = open_session(&client, &gw.url(), "2025-11-25").await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "t_slow", "arguments": {"millis": 50}, "_meta": {"progressToken": "p-1"}}});
    let (_, _, messages, _) = post(&client, &gw.url(), &headers, &body.to_string()).await;
    let progress: Vec<_> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(progress.len() >= 3, "{messages:?}");
    assert!(
        progress
            .iter()
            .all(|m| m["params"]["progressToken"] == "p-1")
    );
    let values: Vec<f64> = progress
        .iter()
        .map(|m| m["params"]["progress"].as_f64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {values:?}"
    );
    assert_eq!(messages.last().unwrap()["id"], 9, "the result comes last");

    let plain = call(10, "t_slow", json!({"millis": 20}));
    let (_, _, messages, _) = post(&client, &gw.url(), &headers, &plain).await;
    assert!(
        messages
            .iter()
            .all(|m| m["method"] != "notifications/progress"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn the_configured_credential_and_trace_context_reach_the_adapter() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let session = open_session(&client, &gw.url(), "2025-06-18").await;
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
        ("traceparent", trace),
    ];
    post(
        &client,
        &gw.url(),
        &headers,
        &call(1, "t_echo", json!({"text": "x"})),
    )
    .await;
    assert_eq!(
        gw.probe.last_credential.lock().unwrap().as_deref(),
        Some("provider-secret")
    );
    assert_eq!(
        gw.probe.last_traceparent.lock().unwrap().as_deref(),
        Some(trace)
    );
}

#[tokio::test]
async fn rmcp_client_pages_through_everything_and_cancels_a_slow_call() {
    use rmcp::{
        ServiceExt,
        model::{CallToolRequest, CallToolRequestParams, ClientRequest},
        service::PeerRequestOptions,
        transport::StreamableHttpClientTransport,
    };
    let gw = start("[adapters.t.settings]\nextra_tools = 7").await;
    let client = ().serve(StreamableHttpClientTransport::from_uri(gw.url())).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 10);
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.dedup();
    assert_eq!(names.len(), 10, "a page repeated a tool");

    let params = CallToolRequestParams::new("t_echo")
        .with_arguments(json!({"text": "rmcp"}).as_object().unwrap().clone());
    let result = client.call_tool(params).await.unwrap();
    assert_eq!(result.structured_content.unwrap()["echo"], "rmcp");

    let slow = CallToolRequestParams::new("t_slow")
        .with_arguments(json!({"millis": 5000}).as_object().unwrap().clone());
    let handle = client
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(slow)),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    handle
        .cancel(Some("user pressed stop".into()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while gw.probe.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the adapter call was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn legacy_sse_transport_serves_the_same_handler() {
    use futures::StreamExt;
    let gw = start("").await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/sse", gw.base()))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut next_data = async |buffer: &mut String, event: &str| -> String {
        loop {
            if let Some(start) = buffer.find(&format!("event: {event}\n")) {
                let rest = &buffer[start..];
                if let Some(end) = rest.find("\n\n") {
                    let block = rest[..end].to_owned();
                    buffer.replace_range(..start + end + 2, "");
                    return block
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: "))
                        .collect::<Vec<_>>()
                        .join("\n");
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    let endpoint = next_data(&mut buffer, "endpoint").await;
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
    let messages_url = format!("{}{}", gw.base(), endpoint);
    let send = |body: String| {
        client
            .post(&messages_url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        send(support::initialize_body("2024-11-05"))
            .await
            .unwrap()
            .status(),
        202
    );
    let init: Value = serde_json::from_str(&next_data(&mut buffer, "message").await).unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into())
        .await
        .unwrap();
    send(call(2, "t_echo", json!({"text": "legacy"})))
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&next_data(&mut buffer, "message").await).unwrap();
    assert_eq!(answer["result"]["structuredContent"]["echo"], "legacy");

    let bad = client
        .post(&messages_url)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let unknown = client
        .post(format!("{}/messages?sessionId=nope", gw.base()))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let _ = ACCEPT;
}

#[tokio::test]
async fn idle_sessions_end_and_sessions_in_use_stay() {
    let gw = support::start_with_server("session_idle_timeout = \"2s\"").await;
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let busy = open_session(&client, &gw.url(), version).await;
    let idle = open_session(&client, &gw.url(), version).await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let headers = in_session(&busy, version);
        let (status, ..) = post(&client, &gw.url(), &headers, ping).await;
        assert_eq!(status, 200, "a session in use was ended");
    }
    let headers = in_session(&idle, version);
    let (status, ..) = post(&client, &gw.url(), &headers, ping).await;
    assert_eq!(status, 404, "an idle session outlived its timeout");
}
