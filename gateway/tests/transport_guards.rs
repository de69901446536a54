//! The transport's fail-closed rules, driven through the real gateway with generated variants:
//! the Host / `:authority` allow-list and the Origin check on HTTP/1.1, HTTP/2 (prior knowledge)
//! and an HTTP/1.1 `Upgrade: h2c` attempt; connection time limits against silent and trickling
//! connections; `Content-Type` other than JSON refused with 415; duplicate JSON keys refused with
//! -32700 on every path; the caps on sessions per user and streams per session; and `/metrics`
//! kept off the MCP port.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    net::SocketAddr,
    path::Path,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use axum::body::Body;
use hyper::{Request, client::conn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use proptest::{
    prelude::*,
    strategy::{Strategy, ValueTree},
    test_runner::TestRunner,
};
use serde_json::{Value, json};
use support::{ACCEPT, in_session, initialize_body, open_session, post, start_with_server};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// `count` values of `strategy`, the same on every run.
fn generate<S: Strategy>(strategy: S, count: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

// === Host, :authority and Origin on both protocols ===

/// Authorities the default allow-list (`localhost`, `127.0.0.1`, `::1`) must refuse: random
/// names, and near misses of the allowed ones (suffixes, prefixes, other loopback addresses,
/// user info, other case with a suffix), with and without a port.
fn bad_authority() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}"
            .prop_filter("an allowed host", |h| h != "localhost"),
        "(localhost|127\\.0\\.0\\.1|LOCALHOST)\\.[a-z]{1,8}",
        "[a-z]{1,8}\\.(localhost|127\\.0\\.0\\.1)",
        "127\\.0\\.0\\.([2-9]|[1-9][0-9])",
        "\\[::[2-9a-f]\\]",
        "[a-z]{1,6}@(localhost|127\\.0\\.0\\.1)",
    ];
    (host, prop::option::of(1u16..65535)).prop_map(|(host, port)| match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

async fn h1(addr: SocketAddr) -> conn::http1::SendRequest<Body> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    sender
}

async fn h2(addr: SocketAddr) -> conn::http2::SendRequest<Body> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A `GET` of `uri` with the given `Host` and `Origin` headers (each optional).
fn get(uri: &str, host: Option<&str>, origin: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(Body::empty()).unwrap()
}

async fn status1(sender: &mut conn::http1::SendRequest<Body>, request: Request<Body>) -> u16 {
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20).await;
    status
}

async fn status2(sender: &mut conn::http2::SendRequest<Body>, request: Request<Body>) -> u16 {
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let status = response.status().as_u16();
    let _ = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20).await;
    status
}

#[tokio::test]
async fn host_authority_and_origin_are_checked_alike_on_http1_and_http2() {
    let gw = start_with_server("").await;
    let addr = gw.running.addr;
    let port = addr.port();
    let good = format!("127.0.0.1:{port}");
    let (mut one, mut two) = (h1(addr).await, h2(addr).await);
    // The allowed authority passes on every protocol, so the refusals below are the guard's.
    assert_eq!(
        status1(&mut one, get("/healthz", Some(&good), None)).await,
        200
    );
    let h2_good = format!("http://{good}/healthz");
    assert_eq!(status2(&mut two, get(&h2_good, None, None)).await, 200);
    assert_eq!(
        status2(&mut two, get(&h2_good, Some(&good), None)).await,
        200
    );
    let bad_authorities = generate(bad_authority(), 256);
    for bad in &bad_authorities {
        let on_bad = format!("http://{bad}/healthz");
        let cases = [
            (
                "HTTP/1.1 Host",
                status1(&mut one, get("/healthz", Some(bad), None)).await,
            ),
            (
                "HTTP/1.1 absolute-form target",
                status1(&mut one, get(&on_bad, Some(&good), None)).await,
            ),
            (
                "HTTP/2 :authority",
                status2(&mut two, get(&on_bad, None, None)).await,
            ),
            (
                "HTTP/2 :authority with an allowed Host",
                status2(&mut two, get(&on_bad, Some(&good), None)).await,
            ),
            (
                "HTTP/2 allowed :authority with another Host",
                status2(&mut two, get(&h2_good, Some(bad), None)).await,
            ),
        ];
        for (how, status) in cases {
            assert_eq!(status, 403, "{how} = {bad}");
        }
        // The same on the MCP endpoint itself.
        let mcp = format!("http://{bad}/mcp");
        assert_eq!(status2(&mut two, get(&mcp, None, None)).await, 403, "{bad}");
    }
    let bad_origins = generate(
        ("https?", bad_authority())
            .prop_map(|(scheme, authority)| format!("{scheme}://{authority}")),
        256,
    );
    for origin in bad_origins.iter().chain([&"null".to_owned()]) {
        let h1_status = status1(&mut one, get("/healthz", Some(&good), Some(origin))).await;
        let h2_status = status2(&mut two, get(&h2_good, None, Some(origin))).await;
        assert_eq!((h1_status, h2_status), (403, 403), "Origin {origin}");
    }
    let own_origin = format!("http://{good}");
    assert_eq!(
        status2(&mut two, get(&h2_good, None, Some(&own_origin))).await,
        200
    );
}

/// The server does not switch an HTTP/1.1 `Upgrade: h2c` request to HTTP/2: it answers it as
/// HTTP/1.1, so the same guard decides.
#[tokio::test]
async fn an_h2c_upgrade_request_is_answered_as_http1_behind_the_same_guard() {
    let gw = start_with_server("").await;
    let addr = gw.running.addr;
    let good = format!("127.0.0.1:{}", addr.port());
    let hosts = generate(bad_authority(), 64);
    for (host, expected) in hosts
        .iter()
        .map(|h| (h.as_str(), "403"))
        .chain([(good.as_str(), "200")])
    {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, HTTP2-Settings\r\n\
             Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).await.unwrap();
        let head = String::from_utf8_lossy(&head);
        assert_eq!(head, format!("HTTP/1.1 {expected}"), "Host {host}");
    }
}

// === Connection time limits ===

const SHORT_LIMITS: &str =
    "header_read_timeout = \"300ms\"\nidle_timeout = \"600ms\"\nbody_read_timeout = \"300ms\"\n";

/// How long until the server closes `tcp`, writing `trickle` one byte every `every` meanwhile
/// (and nothing once it is used up). Gives up after 5 s.
async fn closed_after(
    mut tcp: TcpStream,
    prefix: &[u8],
    trickle: &[u8],
    every: Duration,
) -> Duration {
    let started = Instant::now();
    tcp.write_all(prefix).await.unwrap();
    let mut bytes = trickle.iter();
    let mut buf = [0u8; 4096];
    loop {
        assert!(started.elapsed() < Duration::from_secs(5), "never closed");
        match tokio::time::timeout(every, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {} // e.g. the server's SETTINGS frame
            Err(_) => {
                if let Some(byte) = bytes.next()
                    && tcp.write_all(&[*byte]).await.is_err()
                {
                    return started.elapsed();
                }
            }
        }
    }
}

#[tokio::test]
async fn silent_and_trickling_connections_are_closed_within_the_header_read_timeout() {
    let gw = start_with_server(SHORT_LIMITS).await;
    let addr = gw.running.addr;
    // Headers that never end: each a byte at a time, faster than any reasonable timeout.
    let endless_h1 = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n{}",
        "X-Pad: a\r\n".repeat(200)
    );
    let h2_preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // The preface and an empty SETTINGS frame at once, then a HEADERS frame (stream 1, 1000
    // bytes announced, END_HEADERS unset) whose block never ends.
    let mut h2_started = h2_preface.clone();
    h2_started.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let mut h2_headers = vec![0, 0x03, 0xe8, 1, 0, 0, 0, 0, 1];
    h2_headers.extend(std::iter::repeat_n(0x40u8, 1000));
    let mut attempts = Vec::new();
    for every_ms in [10u64, 25, 50, 100] {
        let every = Duration::from_millis(every_ms);
        let h1 = endless_h1.clone().into_bytes();
        attempts.push(("silent", Vec::new(), Vec::new(), every));
        attempts.push(("HTTP/1.1 headers", Vec::new(), h1, every));
        attempts.push(("HTTP/2 preface", Vec::new(), h2_preface.clone(), every));
        let (started, headers) = (h2_started.clone(), h2_headers.clone());
        attempts.push(("HTTP/2 HEADERS", started, headers, every));
    }
    let runs = attempts
        .into_iter()
        .map(|(what, prefix, trickle, every)| async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let after = closed_after(tcp, &prefix, &trickle, every).await;
            (what, every, after)
        });
    for (what, every, after) in futures::future::join_all(runs).await {
        // 300 ms configured; the slack is for a loaded CI machine.
        assert!(
            after >= Duration::from_millis(250) && after < Duration::from_millis(2000),
            "{what} every {every:?}: closed after {after:?}"
        );
    }
}

#[tokio::test]
async fn a_trickled_body_gets_408_within_the_body_read_timeout() {
    let gw = start_with_server(SHORT_LIMITS).await;
    let addr = gw.running.addr;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let variants = [10u64, 25, 50, 100]
        .into_iter()
        .flat_map(|every_ms| [(every_ms, "/mcp"), (every_ms, "/messages?sessionId=x")]);
    let runs = variants.map(|(every_ms, path)| async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Accept: {ACCEPT}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let mut bytes = body.bytes();
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(started.elapsed() < Duration::from_secs(5), "no answer");
            match tokio::time::timeout(Duration::from_millis(every_ms), tcp.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {
                    // Never the last byte: the body stays incomplete.
                    if bytes.len() > 1
                        && let Some(byte) = bytes.next()
                    {
                        tcp.write_all(&[byte]).await.unwrap();
                    }
                }
            }
        }
        (
            every_ms,
            started.elapsed(),
            String::from_utf8_lossy(&answer).into_owned(),
        )
    });
    for (every_ms, after, answer) in futures::future::join_all(runs).await {
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "every {every_ms} ms: {answer}"
        );
        assert!(
            after >= Duration::from_millis(250) && after < Duration::from_millis(2000),
            "every {every_ms} ms: answered after {after:?}"
        );
    }
}

#[tokio::test]
async fn idle_connections_close_but_busy_ones_and_open_streams_stay() {
    let gw = start_with_server(&format!("{SHORT_LIMITS}sse_keep_alive = \"10s\"\n")).await;
    let addr = gw.running.addr;
    let good = format!("127.0.0.1:{}", addr.port());
    // HTTP/2: one request, then nothing: closed after the idle timeout.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    let ended = tokio::spawn(async move {
        let _ = connection.await;
        Instant::now()
    });
    let h2_good = format!("http://{good}/healthz");
    assert_eq!(status2(&mut sender, get(&h2_good, None, None)).await, 200);
    let idle_from = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(3), ended).await;
    let after = ended
        .expect("an idle HTTP/2 connection stays open")
        .unwrap()
        - idle_from;
    assert!(
        after >= Duration::from_millis(500),
        "closed after {after:?}"
    );

    // HTTP/1.1 keep-alive: the next request's headers are awaited for the header read timeout.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    let ended = tokio::spawn(async move {
        let _ = connection.await;
        Instant::now()
    });
    assert_eq!(
        status1(&mut sender, get("/healthz", Some(&good), None)).await,
        200
    );
    let idle_from = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(3), ended).await;
    let after = ended
        .expect("an idle HTTP/1.1 connection stays open")
        .unwrap()
        - idle_from;
    assert!(
        after >= Duration::from_millis(250),
        "closed after {after:?}"
    );

    // A tool call longer than both limits, and an open SSE stream, keep their connections.
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &gw.url(), version).await;
    let slow = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "t_slow", "arguments": {"millis": 1000}}});
    let (status, _, answer, _) = post(
        &client,
        &gw.url(),
        &in_session(&session, version),
        &slow.to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer.last().unwrap()["result"]["isError"], false);
    let mut stream = client
        .get(gw.url())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", version)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let until = Instant::now() + Duration::from_millis(1500);
    while let Ok(chunk) = tokio::time::timeout_at(until.into(), stream.chunk()).await {
        assert!(chunk.unwrap().is_some(), "the open stream was closed");
    }
}

// === Content-Type ===

fn bad_content_types() -> Vec<Option<String>> {
    let mut types: Vec<Option<String>> = [
        "application/json5",
        "application/jsonx",
        "application/json-seq",
        "application/jsonrequest",
        "application/x-json",
        "application/ld+json",
        "application/json+ld",
        "text/json",
        "text/plain",
        "text/event-stream",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
        "application/json; boundary=x",
        "application/json, text/plain",
        "application /json",
        "json",
        "",
        "*/*",
    ]
    .into_iter()
    .map(|t| Some(t.to_owned()))
    .collect();
    types.push(None);
    types.extend(
        generate(
            "[a-z]{1,11}/[a-z0-9.+-]{1,14}(; ?[a-z]{1,8}=[a-z0-9-]{1,8})?"
                .prop_filter("JSON itself", |t| {
                    !t.starts_with("application/json;") && t != "application/json"
                }),
            200,
        )
        .into_iter()
        .map(Some),
    );
    types
}

#[tokio::test]
async fn a_content_type_other_than_json_gets_415_with_a_jsonrpc_error_on_every_post_route() {
    let gw = start_with_server("").await;
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &gw.url(), version).await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let legacy = format!("{}/messages?sessionId=unknown", gw.base());
    let send = |url: String, content_type: Option<String>, in_session: bool| {
        let mut request = client.post(url).header("accept", ACCEPT).body(ping);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if in_session {
            request = request
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", version);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.ok())
        }
    };
    for content_type in bad_content_types() {
        for (url, in_session) in [(gw.url(), false), (gw.url(), true), (legacy.clone(), false)] {
            let (status, body) = send(url.clone(), content_type.clone(), in_session).await;
            assert_eq!(status, 415, "{content_type:?} on {url}");
            let body = body.unwrap();
            assert_eq!(body["jsonrpc"], "2.0");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{body}"
            );
        }
    }
    for content_type in [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=\"UTF-8\"",
    ] {
        let (status, _) = send(gw.url(), Some(content_type.into()), true).await;
        assert_eq!(status, 200, "{content_type}");
    }
}

// === Duplicate JSON keys ===

/// The `_meta` every 2026-07-28 request carries.
fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
    })
}

/// A `tools/call` of `t_echo` as text, with one key repeated at `depth` (0: the message, 1: its
/// params, 2: the arguments, deeper: objects nested in the arguments), the repeat written
/// escaped when `escape`.
fn call_with_repeated_key(meta: &Value, depth: usize, escape: bool, pad: &str) -> String {
    let key = |name: &str| {
        if escape {
            let escaped: String = name
                .chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect();
            format!("\"{escaped}\"")
        } else {
            format!("\"{name}\"")
        }
    };
    let meta = meta.to_string();
    let mut arguments = format!(r#"{{"text":"{pad}"}}"#);
    if depth >= 3 {
        let mut nested = format!(r#"{{"k":1,{}:2}}"#, key("k"));
        for level in 3..depth {
            nested = format!(r#"{{"n{level}":{nested}}}"#);
        }
        arguments = format!(r#"{{"text":"{pad}","nested":{nested}}}"#);
    } else if depth == 2 {
        arguments = format!(r#"{{"text":"{pad}",{}:"other"}}"#, key("text"));
    }
    let params = if depth == 1 {
        format!(
            r#"{{"name":"t_echo",{}:"t_fail","arguments":{arguments},"_meta":{meta}}}"#,
            key("name")
        )
    } else {
        format!(r#"{{"name":"t_echo","arguments":{arguments},"_meta":{meta}}}"#)
    };
    if depth == 0 {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call",{}:"ping","params":{params}}}"#,
            key("method")
        )
    } else {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#)
    }
}

/// A way into the handler: its name, route (`mcp` or `legacy`), headers and the call's `_meta`.
type Lane<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Value);

#[tokio::test]
async fn duplicate_keys_at_any_depth_are_a_parse_error_on_every_path() {
    let gw = start_with_server("").await;
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &gw.url(), version).await;
    let session_headers = in_session(&session, version);
    let stateless_headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "t_echo"),
    ];
    let legacy = format!("{}/messages?sessionId=unknown", gw.base());
    // (path, headers, _meta): the stateless fast path, the session fast path, rmcp's service
    // (a progress token sends a session call there), and the legacy transport.
    let paths: [Lane<'_>; 4] = [
        (
            "stateless fast path",
            "mcp",
            &stateless_headers,
            stateless_meta(),
        ),
        ("session fast path", "mcp", &session_headers, json!({})),
        (
            "rmcp",
            "mcp",
            &session_headers,
            json!({"progressToken": "p"}),
        ),
        ("legacy", "legacy", &[], json!({})),
    ];
    let variants = generate((0usize..12, any::<bool>(), "[a-z]{0,8}"), 64);
    for (name, route, headers, meta) in &paths {
        let url = if *route == "legacy" {
            &legacy
        } else {
            &gw.url()
        };
        for (depth, escape, pad) in &variants {
            let body = call_with_repeated_key(meta, *depth, *escape, pad);
            let (status, _, answer, text) = post(&client, url, headers, &body).await;
            assert_eq!(status, 400, "{name}: {body} -> {text}");
            assert_eq!(answer[0]["error"]["code"], -32700, "{name}: {text}");
            let message = answer[0]["error"]["message"].as_str().unwrap();
            assert!(message.contains("duplicate key"), "{name}: {message}");
        }
    }
    assert_eq!(
        gw.probe.calls.load(Ordering::SeqCst),
        0,
        "no call reached the adapter"
    );
    // The same calls without the repeat are served on each /mcp path: the refusals above were
    // the duplicates'.
    for (name, _, headers, meta) in &paths[..3] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": "t_echo", "arguments": {"text": "x"}, "_meta": meta}});
        let (status, _, _, text) = post(&client, &gw.url(), headers, &body.to_string()).await;
        assert_eq!(status, 200, "{name}: {text}");
    }
    assert_eq!(gw.probe.calls.load(Ordering::SeqCst), 3);
}

// === Caps: sessions per user, streams per session ===

/// A gateway with sign-in, and a function minting a token for a user.
async fn signed_in_gateway(server: &str) -> (support::TestGateway, manifold::config::Config) {
    // Port 0 in the public URL becomes the port bound.
    let server = format!("public_url = \"http://127.0.0.1:0\"\n{server}");
    let server = server.as_str();
    let extra = "[auth]\nmode = \"builtin\"\nsandbox_idp = true\ndev_tokens = true\n";
    let gw = support::start_with_extra_server(extra, server).await;
    let source = support::config(gw.dir.path(), extra, server);
    let registry = support::registry(&gw.probe);
    let config =
        manifold::config::load_str(&source, Path::new("test.toml"), &registry, &[]).unwrap();
    (gw, config)
}

async fn token(gw: &support::TestGateway, config: &manifold::config::Config, user: &str) -> String {
    let storage = manifold::storage::Storage::open(None, &config.storage.data_dir)
        .await
        .unwrap();
    let state = manifold::auth::AuthState::from_config(config, storage, &gw.base())
        .unwrap()
        .unwrap();
    let info = manifold::auth::UserInfo {
        sub: user.to_owned(),
        email: None,
        email_verified: false,
        groups: vec![],
    };
    state.dev_token(&info).await.unwrap()
}

#[tokio::test]
async fn the_initialize_past_the_per_user_session_cap_gets_429_until_one_ends() {
    let (gw, config) = signed_in_gateway("max_sessions_per_user = 3\n").await;
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let users = generate("[a-z]{3,10}", 6);
    for user in &users {
        let bearer = format!("Bearer {}", token(&gw, &config, user).await);
        let auth = [("authorization", bearer.as_str())];
        let mut sessions = Vec::new();
        for _ in 0..3 {
            let (status, headers, _, text) =
                post(&client, &gw.url(), &auth, &initialize_body(version)).await;
            assert_eq!(status, 200, "{user}: {text}");
            sessions.push(headers["mcp-session-id"].to_str().unwrap().to_owned());
        }
        let (status, headers, answer, text) =
            post(&client, &gw.url(), &auth, &initialize_body(version)).await;
        assert_eq!(status, 429, "{user}: {text}");
        assert!(headers.get("mcp-session-id").is_none());
        assert_eq!(answer[0]["error"]["code"], -32000);
        let message = answer[0]["error"]["message"].as_str().unwrap();
        assert!(message.contains("Too many sessions"), "{message}");
        // Requests in an open session are not initializes and still pass.
        let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
        let mut in_one = in_session(&sessions[0], version).to_vec();
        in_one.push(auth[0]);
        let (status, ..) = post(&client, &gw.url(), &in_one, ping).await;
        assert_eq!(status, 200);
        // Ending one makes room for one more.
        let ended = client
            .delete(gw.url())
            .header("authorization", &bearer)
            .header("mcp-session-id", &sessions[0])
            .header("mcp-protocol-version", version)
            .send()
            .await
            .unwrap();
        assert!(ended.status().is_success(), "{}", ended.status());
        let (status, ..) = post(&client, &gw.url(), &auth, &initialize_body(version)).await;
        assert_eq!(status, 200, "{user} after ending a session");
        // The legacy transport's sessions (one per open `GET /sse`) have the same cap.
        let mut streams = Vec::new();
        for _ in 0..3 {
            let stream = client
                .get(format!("{}/sse", gw.base()))
                .header("authorization", &bearer)
                .send()
                .await
                .unwrap();
            assert_eq!(stream.status(), 200);
            streams.push(stream);
        }
        let refused = client
            .get(format!("{}/sse", gw.base()))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 429, "{user}: a fourth legacy stream");
        let answer: Value = refused.json().await.unwrap();
        assert_eq!(answer["error"]["code"], -32000);
    }
}

#[tokio::test]
async fn concurrent_initializes_of_one_user_cannot_pass_the_cap_together() {
    let (gw, config) = signed_in_gateway("max_sessions_per_user = 3\n").await;
    let client = reqwest::Client::new();
    for (round, burst) in [4usize, 8, 12].into_iter().enumerate() {
        let bearer = format!(
            "Bearer {}",
            token(&gw, &config, &format!("burst{round}")).await
        );
        let attempts = (0..burst).map(|_| {
            let (client, url, bearer) = (client.clone(), gw.url(), bearer.clone());
            async move {
                let auth = [("authorization", bearer.as_str())];
                post(&client, &url, &auth, &initialize_body("2025-11-25"))
                    .await
                    .0
            }
        });
        let statuses = futures::future::join_all(attempts).await;
        let opened = statuses.iter().filter(|s| s.as_u16() == 200).count();
        let refused = statuses.iter().filter(|s| s.as_u16() == 429).count();
        assert_eq!((opened, refused), (3, burst - 3), "{statuses:?}");
    }
}

#[tokio::test]
async fn requests_past_the_per_session_stream_cap_get_429_and_the_slots_come_back() {
    let gw = start_with_server("max_streams_per_session = 2\n").await;
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &gw.url(), version).await;
    let headers = in_session(&session, version);
    let slow = |id: u32| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "t_slow", "arguments": {"millis": 1200}}})
        .to_string()
    };
    let (url, client2) = (gw.url(), client.clone());
    let busy = [1, 2].map(|id| {
        let (url, client, body) = (url.clone(), client2.clone(), slow(id));
        let session = session.clone();
        tokio::spawn(async move {
            post(&client, &url, &in_session(&session, version), &body)
                .await
                .0
        })
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ping = r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#.to_owned();
    for body in [ping.clone(), slow(3)] {
        let (status, _, answer, text) = post(&client, &gw.url(), &headers, &body).await;
        assert_eq!(status, 429, "{text}");
        assert_eq!(answer[0]["error"]["code"], -32000);
        assert!(text.contains("Too many open streams"), "{text}");
    }
    let stream = client
        .get(gw.url())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", version)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 429);
    // Another session is not affected.
    let other = open_session(&client, &gw.url(), version).await;
    let (status, ..) = post(&client, &gw.url(), &in_session(&other, version), &ping).await;
    assert_eq!(status, 200);
    for call in busy {
        assert_eq!(call.await.unwrap(), 200);
    }
    let (status, ..) = post(&client, &gw.url(), &headers, &ping).await;
    assert_eq!(status, 200, "the slots were given back");
}

// === Operator endpoints ===

#[tokio::test]
async fn metrics_are_on_the_loopback_operator_listener_not_on_the_mcp_port() {
    let gw = start_with_server("").await;
    let client = reqwest::Client::new();
    for path in manifold::transport::operator::PATHS {
        let main = client
            .get(format!("{}{path}", gw.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(main.status(), 404, "{path} on the MCP port");
    }
    let operator = gw.running.operator_addr.unwrap();
    assert!(operator.ip().is_loopback());
    let url = format!("http://{operator}/metrics");
    let ok = client.get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("manifold_tools 3"));
    // DNS rebinding to the loopback port is refused; a scraper by address is not.
    for (host, status) in [
        ("evil.example", 403),
        ("localhost.evil", 403),
        ("10.0.0.7:9", 200),
    ] {
        let response = client.get(&url).header("host", host).send().await.unwrap();
        assert_eq!(response.status(), status, "{host}");
    }
}

#[tokio::test]
async fn metrics_on_the_main_listener_need_the_operator_token() {
    let secret = "operator-token-0123456789";
    let gw = start_with_server(&format!(
        "operator_listen = \"main\"\noperator_token = \"{secret}\"\n"
    ))
    .await;
    assert!(gw.running.operator_addr.is_none());
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", gw.base());
    let wrong = generate("[ -~]{0,40}", 100);
    let near = [
        secret[1..].to_owned(),
        format!("{secret}x"),
        secret.to_uppercase(),
        secret[..secret.len() - 1].to_owned(),
    ];
    for guess in wrong.iter().chain(&near).filter(|g| g.trim() != secret) {
        let response = client
            .get(&url)
            .header("authorization", format!("Bearer {guess}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{guess:?}");
        assert!(!response.text().await.unwrap().contains(secret));
    }
    let none = client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let ok = client
        .get(&url)
        .header("authorization", format!("Bearer {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Without a token the config is refused: the public listener never serves them open.
    let dir = tempfile::tempdir().unwrap();
    let registry = support::registry(&gw.probe);
    let source = support::config(dir.path(), "", "operator_listen = \"main\"\n");
    let refused = manifold::config::load_str(&source, Path::new("t.toml"), &registry, &[]);
    let problem = refused.err().unwrap().to_string();
    assert!(problem.contains("operator_token"), "{problem}");
}
