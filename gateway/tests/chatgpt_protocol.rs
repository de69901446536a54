//! ChatGPT's MCP client habits on the wire (REFERENCE.md, "ChatGPT as a client"), replayed byte
//! for byte: `server/discover` first, then the fallback `initialize` with an object in
//! `capabilities.experimental` and a non-standard `capabilities.extensions`; later requests
//! without `Mcp-Session-Id`; `Accept` with only JSON, with `*/*` or absent; and empty or `{}`
//! probes, which get a JSON-RPC error and never a 5xx.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{messages, start};

/// The client ChatGPT's requests name (late 2026).
const CLIENT_INFO: &str = r#"{"name":"openai-mcp","version":"1.0.0"}"#;
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One POST with exactly these headers (no default `Accept`): status, headers, content type,
/// the JSON-RPC messages and the raw text.
async fn send(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (
    StatusCode,
    reqwest::header::HeaderMap,
    String,
    Vec<Value>,
    String,
) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    let parsed = if content_type.is_empty() || text.is_empty() {
        vec![]
    } else {
        messages(&content_type, &text)
    };
    (status, headers, content_type, parsed, text)
}

fn answer(messages: &[Value], id: u64) -> Value {
    messages
        .iter()
        .find(|m| m["id"] == json!(id))
        .cloned()
        .unwrap_or_else(|| panic!("no answer {id} in {messages:?}"))
}

#[tokio::test]
async fn the_chatgpt_handshake_replays_with_discover_then_the_initialize_fallback() {
    let gw = start("").await;
    let url = gw.url();
    let accept = ("accept", "application/json, text/event-stream");

    // 1. `server/discover` of protocol 2026-07-28, as sent.
    let discover = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"server/discover","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}},"io.modelcontextprotocol/clientInfo":{CLIENT_INFO}}}}}}}"#
    );
    let (status, headers, _, answers, text) = send(
        &url,
        &[
            accept,
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "server/discover"),
            ("traceparent", TRACEPARENT),
        ],
        &discover,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(headers.get("mcp-session-id").is_none());
    let versions = answer(&answers, 0)["result"]["supportedVersions"].clone();
    assert!(
        versions.as_array().unwrap().contains(&json!("2026-07-28")),
        "a discover answer without 2026-07-28 makes ChatGPT retry forever: {versions}"
    );

    // 2. The fallback `initialize`: `experimental` holds an object, `extensions` is not in the
    // schema. No elicitation, sampling or roots.
    let initialize = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{"experimental":{{"openai/visibility":{{"enabled":true,"modes":["default"]}}}},"extensions":{{"io.modelcontextprotocol/ui":{{"mimeTypes":["text/html;profile=mcp-app"]}}}}}},"clientInfo":{CLIENT_INFO}}}}}"#
    );
    let (status, headers, _, answers, text) =
        send(&url, &[accept, ("traceparent", TRACEPARENT)], &initialize).await;
    assert_eq!(status, 200, "{text}");
    let result = &answer(&answers, 1)["result"];
    assert_eq!(result["protocolVersion"], "2025-11-25", "{result}");
    assert!(result["capabilities"]["tools"].is_object(), "{result}");
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    let in_session = [
        accept,
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let (status, ..) = send(
        &url,
        &in_session,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(status, 202);

    // 3. In the session, then with the session dropped: both served, alike.
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;
    let sessionless = [
        accept,
        ("mcp-protocol-version", "2025-11-25"),
        ("traceparent", TRACEPARENT),
    ];
    let mut names = Vec::new();
    for headers in [&in_session[..], &sessionless[..]] {
        let (status, _, _, answers, text) = send(&url, headers, list).await;
        assert_eq!(status, 200, "{text}");
        let tools = answer(&answers, 2)["result"]["tools"].clone();
        let listed: Vec<String> = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        names.push(listed);
    }
    assert_eq!(names[0], names[1]);
    assert!(names[0].contains(&"t_echo".to_owned()), "{names:?}");

    let call = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t_echo","arguments":{"text":"no session"},"_meta":{"openai/userAgent":"ChatGPT"}}}"#;
    let (status, _, _, answers, text) = send(&url, &sessionless, call).await;
    assert_eq!(status, 200, "{text}");
    let result = &answer(&answers, 3)["result"];
    assert_eq!(
        result["structuredContent"]["echo"], "no session",
        "{result}"
    );
    assert_eq!(result["isError"], false);
    let last = gw.probe.last_traceparent.lock().unwrap().clone();
    assert_eq!(
        last.as_deref(),
        Some(TRACEPARENT),
        "trace context carried on"
    );

    // Without any version header, and a ping and a notification without a session.
    let (status, _, _, answers, text) = send(&url, &[accept], call).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(answer(&answers, 3)["result"]["isError"], false);
    let (status, _, _, answers, _) = send(
        &url,
        &sessionless,
        r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#,
    )
    .await;
    assert_eq!(
        (status, &answer(&answers, 4)["result"]),
        (StatusCode::OK, &json!({}))
    );
    let (status, ..) = send(
        &url,
        &sessionless,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(status, 202);

    // A call the tool refuses, without a session: still a result the model reads.
    let bad = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t_echo","arguments":{"text":7}}}"#;
    let (status, _, _, answers, _) = send(&url, &sessionless, bad).await;
    assert_eq!(status, 200);
    assert_eq!(answer(&answers, 5)["result"]["isError"], true);
    let unknown = r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"t_nope","arguments":{}}}"#;
    let (_, _, _, answers, _) = send(&url, &sessionless, unknown).await;
    assert_eq!(answer(&answers, 6)["error"]["code"], -32602);
}

#[tokio::test]
async fn accept_with_only_json_any_or_none_is_served_and_json_only_gets_json() {
    let gw = start("").await;
    let url = gw.url();
    let call = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"t_echo","arguments":{"text":"hi"}}}"#;
    for accept in [
        Some("application/json"),
        Some("*/*"),
        Some("application/json, */*;q=0.8"),
        None,
    ] {
        let accept_header: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        // A session opened with this Accept.
        let init = support::initialize_body("2025-06-18");
        let (status, headers, content_type, answers, text) =
            send(&url, &accept_header, &init).await;
        assert_eq!(status, 200, "{accept:?}: {text}");
        if accept == Some("application/json") {
            assert_eq!(content_type, "application/json", "{accept:?}");
        }
        assert_eq!(
            answer(&answers, 1)["result"]["protocolVersion"],
            "2025-06-18"
        );
        let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
        let mut in_session = accept_header.clone();
        in_session.push(("mcp-session-id", &session));
        in_session.push(("mcp-protocol-version", "2025-06-18"));
        let (status, ..) = send(
            &url,
            &in_session,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        )
        .await;
        assert_eq!(status, 202, "{accept:?}");
        // A call in the session, and one without it.
        let mut sessionless = accept_header.clone();
        sessionless.push(("mcp-protocol-version", "2025-06-18"));
        for headers in [&in_session, &sessionless] {
            let (status, _, content_type, answers, text) = send(&url, headers, call).await;
            assert_eq!(status, 200, "{accept:?}: {text}");
            if accept == Some("application/json") {
                assert_eq!(content_type, "application/json", "{accept:?}: {text}");
            }
            assert_eq!(
                answer(&answers, 9)["result"]["structuredContent"]["echo"],
                "hi",
                "{accept:?}"
            );
        }
    }
    // A progress token with a JSON-only client: the result, as JSON, without the progress.
    let slow = r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"t_slow","arguments":{"millis":30},"_meta":{"progressToken":"p"}}}"#;
    let (session_headers, session) = {
        let (_, headers, ..) = send(
            &url,
            &[("accept", "application/json")],
            &support::initialize_body("2025-11-25"),
        )
        .await;
        let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
        (headers, session)
    };
    drop(session_headers);
    let json_only = [
        ("accept", "application/json"),
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let (status, ..) = send(
        &url,
        &json_only,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(status, 202);
    let (status, _, content_type, answers, text) = send(&url, &json_only, slow).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "application/json"),
        "{text}"
    );
    assert_eq!(answers.len(), 1, "{text}");
    assert!(answer(&answers, 10)["result"].is_object(), "{text}");
    // Something else entirely is still refused, as the transport says.
    let (status, ..) = send(
        &url,
        &[("accept", "text/html")],
        &support::initialize_body("2025-06-18"),
    )
    .await;
    assert_eq!(status, 406);
}

#[tokio::test]
async fn empty_and_empty_object_probes_get_a_jsonrpc_error_never_a_5xx() {
    let gw = start("").await;
    let url = gw.url();
    let accept = ("accept", "application/json, text/event-stream");
    for (body, headers) in [
        ("", vec![accept]),
        ("{}", vec![accept]),
        ("", vec![]),
        ("{}", vec![]),
        ("{}", vec![("accept", "application/json")]),
        ("{}", vec![accept, ("mcp-protocol-version", "2025-11-25")]),
        ("{}", vec![accept, ("mcp-protocol-version", "2026-07-28")]),
        ("[]", vec![accept]),
        ("null", vec![accept]),
    ] {
        let (status, _, _, answers, text) = send(&url, &headers, body).await;
        assert!(
            status.is_client_error() || status == StatusCode::OK,
            "{body:?} {headers:?}: {status} {text}"
        );
        let error = &answers
            .first()
            .unwrap_or_else(|| panic!("{body:?} {headers:?}: no JSON-RPC answer: {status} {text}"))
            ["error"];
        assert!(error["code"].as_i64().is_some(), "{body:?}: {text}");
        assert!(error["message"].is_string(), "{body:?}: {text}");
    }
    // And the gateway still serves.
    let client = reqwest::Client::new();
    assert!(
        !support::open_session(&client, &url, "2025-06-18")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_call_past_call_timeout_tells_the_model_to_ask_for_less() {
    // The fixture's call_timeout is 5 s; ChatGPT's own limit is about 60 s.
    let gw = start("").await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t_slow","arguments":{"millis":8000}}}"#;
    let started = std::time::Instant::now();
    let (status, _, _, answers, text) = send(
        &gw.url(),
        &[
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        call,
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(7),
        "ended at call_timeout"
    );
    assert_eq!(status, 200, "{text}");
    let result = &answer(&answers, 1)["result"];
    assert_eq!(result["isError"], true, "{result}");
    let message = result["content"][0]["text"].as_str().unwrap();
    assert!(
        message.starts_with(
            "t_slow did not finish in time (a call may take at most 5 s). Ask for less"
        ),
        "{message}"
    );
    assert!(
        message.contains("a smaller page or limit, a narrower query"),
        "{message}"
    );
}
