//! Protocol 2026-07-28 rules the conformance suite checks (its `server-stateless`,
//! `http-header-validation` and `http-custom-header-server-validation` scenarios), over real
//! HTTP against an in-process gateway: -32021 for an undeclared client capability, 404 for the
//! methods the era removed, MCP headers read without surrounding whitespace, and `Mcp-Param-*`
//! headers checked against the body. Each stateless call is sent twice, once as the fast path
//! serves it and once with a progress token, which sends it through rmcp: both must agree.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{TestGateway, in_session, open_session, post, start};

const VERSION: &str = "2026-07-28";
const ERA_TOOLS: &str = "[adapters.t.settings]\nera_tools = true";

/// The `_meta` every 2026-07-28 request carries; `progress` adds a progress token.
fn meta(progress: Option<&str>) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
    });
    if let Some(token) = progress {
        meta["progressToken"] = json!(token);
    }
    meta
}

fn call(id: u64, tool: &str, arguments: &Value, progress: Option<&str>) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"_meta": meta(progress), "name": tool, "arguments": arguments}})
    .to_string()
}

/// POSTs `body` and returns the status and the answer to request `id`.
async fn send(
    client: &reqwest::Client,
    gw: &TestGateway,
    headers: &[(&str, &str)],
    body: &str,
    id: u64,
) -> (u16, Value) {
    let (status, _, messages, text) = post(client, &gw.url(), headers, body).await;
    let answer = messages
        .into_iter()
        .find(|message| message["id"] == json!(id))
        .unwrap_or_else(|| panic!("no answer to {id} (HTTP {status}): {text}"));
    (status.as_u16(), answer)
}

/// Sends the stateless `tools/call` of `tool` with `headers` (besides the protocol version) on
/// the fast path and through rmcp; asserts both answer alike and returns that answer.
async fn call_both_ways(
    client: &reqwest::Client,
    gw: &TestGateway,
    headers: &[(&str, &str)],
    tool: &str,
    arguments: &Value,
) -> (u16, Value) {
    let mut all = headers.to_vec();
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("mcp-protocol-version"))
    {
        all.push(("mcp-protocol-version", VERSION));
    }
    let fast = send(client, gw, &all, &call(1, tool, arguments, None), 1).await;
    let rmcp = send(client, gw, &all, &call(1, tool, arguments, Some("p")), 1).await;
    assert_eq!(
        fast, rmcp,
        "fast path and rmcp differ for {headers:?} {arguments}"
    );
    fast
}

fn http2() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_call_needing_an_undeclared_client_capability_gets_32021_with_http_400() {
    let gw = start(ERA_TOOLS).await;
    let client = reqwest::Client::new();
    let headers = [
        ("mcp-protocol-version", VERSION),
        ("mcp-method", "tools/call"),
        ("mcp-name", "t_needs_sampling"),
    ];
    let body = call(1, "t_needs_sampling", &json!({}), None);
    let (status, answer) = send(&client, &gw, &headers, &body, 1).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], -32021, "{answer}");
    assert_eq!(
        answer["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}}),
        "a ClientCapabilities object keyed by the missing capability"
    );
    // With a progress token the call reports progress before the adapter runs, which opens the
    // answer's stream with HTTP 200; the error that follows on it is the same.
    let body = call(1, "t_needs_sampling", &json!({}), Some("p"));
    let (_, streamed) = send(&client, &gw, &headers, &body, 1).await;
    assert_eq!(streamed, answer);

    // A session of an earlier era gets the same JSON-RPC error on its stream.
    let session = open_session(&client, &gw.url(), "2025-11-25").await;
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "t_needs_sampling", "arguments": {}}});
    let (_, answer) = send(
        &client,
        &gw,
        &in_session(&session, "2025-11-25"),
        &body.to_string(),
        2,
    )
    .await;
    assert_eq!(answer["error"]["code"], -32021, "{answer}");
}

#[tokio::test]
async fn methods_removed_in_2026_07_28_get_404_and_32601_there_but_sessions_keep_them() {
    let gw = start("").await;
    let client = reqwest::Client::new();
    let removed = [
        ("initialize", json!({"_meta": meta(None)})),
        ("ping", json!({"_meta": meta(None)})),
        ("logging/setLevel", json!({"_meta": meta(None)})),
        (
            "logging/setLevel",
            json!({"_meta": meta(None), "level": "info"}),
        ),
        ("resources/subscribe", json!({"_meta": meta(None)})),
        ("resources/unsubscribe", json!({"_meta": meta(None)})),
        (
            "initialize",
            json!({"_meta": meta(None), "protocolVersion": VERSION, "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}),
        ),
    ];
    for (index, (method, params)) in removed.into_iter().enumerate() {
        let id = 40 + index as u64;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let headers = [("mcp-protocol-version", VERSION), ("mcp-method", method)];
        let (status, answer) = send(&client, &gw, &headers, &body.to_string(), id).await;
        assert_eq!(status, 404, "{method}: {answer}");
        assert_eq!(answer["error"]["code"], -32601, "{method}: {answer}");
    }

    // Earlier eras keep them: a session opens, and sets its log level.
    let session = open_session(&client, &gw.url(), "2025-11-25").await;
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel",
                      "params": {"level": "info"}});
    let (status, answer) = send(
        &client,
        &gw,
        &in_session(&session, "2025-11-25"),
        &body.to_string(),
        2,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("result").is_some(), "{answer}");
}

/// HTTP/1.1's parser already drops whitespace around a field value; HTTP/2's keeps it, so the
/// padded headers reach the gateway as sent there.
#[tokio::test]
async fn mcp_headers_padded_with_whitespace_read_as_their_values_and_mismatches_still_fail() {
    let gw = start(ERA_TOOLS).await;
    let text = json!({"text": "hi"});
    for client in [http2(), reqwest::Client::new()] {
        for pad in ["", " ", "\t", "  \t "] {
            let method = format!("{pad}tools/call{pad}");
            let name = format!("{pad}t_echo{pad}");
            let version = format!("{pad}{VERSION}");
            let headers = [
                ("mcp-method", method.as_str()),
                ("mcp-name", name.as_str()),
                ("mcp-protocol-version", version.as_str()),
            ];
            let (status, answer) = call_both_ways(&client, &gw, &headers, "t_echo", &text).await;
            assert_eq!(status, 200, "{pad:?}: {answer}");
            assert_eq!(answer["result"]["structuredContent"]["echo"], "hi");

            let other = format!("{pad}t_slow{pad}");
            let headers = [
                ("mcp-method", method.as_str()),
                ("mcp-name", other.as_str()),
            ];
            let (status, answer) = call_both_ways(&client, &gw, &headers, "t_echo", &text).await;
            assert_eq!((status, &answer["error"]["code"]), (400, &json!(-32020)));

            let wrong_method = format!("{pad}TOOLS/CALL{pad}");
            let headers = [
                ("mcp-method", wrong_method.as_str()),
                ("mcp-name", name.as_str()),
            ];
            let (status, answer) = call_both_ways(&client, &gw, &headers, "t_echo", &text).await;
            assert_eq!((status, &answer["error"]["code"]), (400, &json!(-32020)));
        }
    }
}

#[tokio::test]
async fn mcp_param_headers_must_mirror_the_arguments_the_tool_declares() {
    let gw = start(ERA_TOOLS).await;
    let client = reqwest::Client::new();

    // tools/list passes the declaration through unchanged.
    let mut cursor = None;
    let mut regional = None;
    for id in 1..10 {
        let mut params = json!({"_meta": meta(None)});
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params});
        let headers = [
            ("mcp-protocol-version", VERSION),
            ("mcp-method", "tools/list"),
        ];
        let (_, answer) = send(&client, &gw, &headers, &body.to_string(), id).await;
        let result = &answer["result"];
        regional = regional.or_else(|| {
            result["tools"]
                .as_array()?
                .iter()
                .find(|tool| tool["name"] == "t_regional")
                .cloned()
        });
        cursor = result["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let schema = &regional.expect("t_regional listed")["inputSchema"]["properties"];
    assert_eq!(
        schema["region"],
        json!({"type": "string", "x-mcp-header": "Region"})
    );
    assert_eq!(
        schema["count"],
        json!({"type": "integer", "x-mcp-header": "Count"})
    );

    let with = |extra: &[(&'static str, &'static str)]| {
        let mut headers = vec![("mcp-method", "tools/call"), ("mcp-name", "t_regional")];
        headers.extend_from_slice(extra);
        headers
    };
    let accepted: &[(&[(&'static str, &'static str)], Value)] = &[
        (&[("mcp-param-region", "eu")], json!({"region": "eu"})),
        (
            &[("Mcp-Param-Region", "eu"), ("MCP-PARAM-COUNT", "3")],
            json!({"region": "eu", "count": 3, "query": "unmirrored"}),
        ),
        (
            &[("Mcp-Param-Region", "eu"), ("Mcp-Param-Count", "3.0")],
            json!({"region": "eu", "count": 3}),
        ),
        (
            &[("Mcp-Param-Region", "=?base64?SGVsbG8=?=")],
            json!({"region": "Hello"}),
        ),
        (
            &[("Mcp-Param-Region", "=?base64?IFrDvHJpY2gg?=")],
            json!({"region": " Zürich "}),
        ),
        (
            &[("Mcp-Param-Region", "SGVsbG8=")],
            json!({"region": "SGVsbG8="}),
        ),
        (
            &[("Mcp-Param-Region", "=?base64?SGVsbG8=")],
            json!({"region": "=?base64?SGVsbG8="}),
        ),
    ];
    for (extra, arguments) in accepted {
        let (status, answer) =
            call_both_ways(&client, &gw, &with(extra), "t_regional", arguments).await;
        assert_eq!(status, 200, "{extra:?} {arguments}: {answer}");
        assert_eq!(
            answer["result"]["structuredContent"]["echo"],
            arguments["region"]
        );
    }

    let refused: &[(&[(&'static str, &'static str)], Value)] = &[
        // Missing for an argument that is there.
        (&[], json!({"region": "eu"})),
        (
            &[("Mcp-Param-Region", "eu")],
            json!({"region": "eu", "count": 3}),
        ),
        // Differs from the argument.
        (&[("Mcp-Param-Region", "us")], json!({"region": "eu"})),
        (&[("Mcp-Param-Region", "EU")], json!({"region": "eu"})),
        (
            &[("Mcp-Param-Region", "eu"), ("Mcp-Param-Count", "4")],
            json!({"region": "eu", "count": 3}),
        ),
        (
            &[("Mcp-Param-Region", "SGVsbG8=")],
            json!({"region": "Hello"}),
        ),
        // Invalid Base64: padding, alphabet.
        (
            &[("Mcp-Param-Region", "=?base64?SGVsbG8?=")],
            json!({"region": "Hello"}),
        ),
        (
            &[("Mcp-Param-Region", "=?base64?SGVs!!!bG8=?=")],
            json!({"region": "Hello"}),
        ),
        // Not declared by the tool, or for an argument that is absent.
        (
            &[("Mcp-Param-Region", "eu"), ("Mcp-Param-Query", "q")],
            json!({"region": "eu", "query": "q"}),
        ),
        (
            &[("Mcp-Param-Region", "eu"), ("Mcp-Param-Count", "3")],
            json!({"region": "eu"}),
        ),
        // Given twice.
        (
            &[("Mcp-Param-Region", "eu"), ("mcp-param-region", "eu")],
            json!({"region": "eu"}),
        ),
    ];
    for (extra, arguments) in refused {
        let (status, answer) =
            call_both_ways(&client, &gw, &with(extra), "t_regional", arguments).await;
        assert_eq!(status, 400, "{extra:?} {arguments}: {answer}");
        assert_eq!(answer["error"]["code"], -32020, "{extra:?} {arguments}");
        assert_eq!(answer["id"], 1);
    }
    assert_eq!(
        gw.probe.calls.load(std::sync::atomic::Ordering::SeqCst),
        2 * accepted.len(),
        "refused calls never reach the adapter"
    );

    // Sessions of earlier eras have no such headers: ignored there, as rmcp ignores them.
    let session = open_session(&client, &gw.url(), "2025-11-25").await;
    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                      "params": {"name": "t_regional", "arguments": {"region": "eu"}}});
    let mut headers = in_session(&session, "2025-11-25").to_vec();
    headers.push(("mcp-param-region", "elsewhere"));
    let (status, answer) = send(&client, &gw, &headers, &body.to_string(), 5).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["structuredContent"]["echo"], "eu");
}

/// A tool the caller may not list answers as a name that matches nothing, whatever its
/// `Mcp-Param-*` headers: its schema is not consulted, through rmcp either.
#[tokio::test]
async fn param_headers_of_a_hidden_tool_reveal_nothing_of_its_schema() {
    let policies = tempfile::tempdir().unwrap();
    let policy = r#"
@id("open")
@reason("test")
permit (principal, action, resource);

@id("hide-regional")
@reason("not for this caller")
forbid (principal, action, resource) when { resource.name == "t_regional" };
"#;
    std::fs::write(policies.path().join("test.cedar"), policy).unwrap();
    let extra = format!(
        "{ERA_TOOLS}\n[policy]\ndir = \"{}\"\nwatch = false\n",
        policies.path().display()
    );
    let gw = start(&extra).await;
    let client = reqwest::Client::new();
    let arguments = json!({"region": "eu", "query": "q"});
    for params in [
        vec![],
        vec![("Mcp-Param-Query", "q")],
        vec![("Mcp-Param-Region", "us")],
        vec![("Mcp-Param-Nothing", "x")],
    ] {
        let mut answers = Vec::new();
        for tool in ["t_regional", "t_no_such_tool"] {
            let mut headers = vec![("mcp-method", "tools/call"), ("mcp-name", tool)];
            headers.extend_from_slice(&params);
            let (status, answer) = call_both_ways(&client, &gw, &headers, tool, &arguments).await;
            let text = answer.to_string().replace(tool, "<tool>");
            answers.push((status, text));
        }
        assert_eq!(answers[0], answers[1], "{params:?}");
        assert!(answers[0].1.contains("-32602"), "{answers:?}");
    }
    assert_eq!(gw.probe.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}
