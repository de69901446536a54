//! Two `manifold` processes sharing one database serve one 2025-era session whose upstream call
//! asks the client questions, and the client answers through whichever replica its POST reaches:
//! the question's id names the replica that asked, and the replica an answer lands on relays it
//! there (`session::relay`). Runs on SQLite, and on PostgreSQL when `MANIFOLD_TEST_POSTGRES_URL`
//! is set (CI sets it); for an upstream of each era.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde_json::{Value, json};
use support::{
    ACCEPT, asking_mcp::Asking, in_session, mcp_gateway::instance, post, process::GatewayProcess,
    process::postgres_url,
};
use tokio_util::sync::CancellationToken;

const VERSION: &str = "2025-11-25";
/// Longest the whole call may take: the relay reads every 200 ms.
const PROMPTLY: Duration = Duration::from_secs(15);

fn config(dir: &Path, upstream: &str) -> std::path::PathBuf {
    let path = dir.join("manifold.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nsession_recheck = \"1s\"\n[storage]\ndata_dir = \"{}\"\n{}",
        dir.display(),
        instance(upstream, "")
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Opens a session on `url` whose client answers elicitation and sampling.
async fn open_answering_session(client: &reqwest::Client, url: &str) -> String {
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": VERSION,
        "capabilities": {"elicitation": {}, "sampling": {}},
        "clientInfo": {"name": "answering", "version": "1"}}});
    let (status, headers, _, body) = post(client, url, &[], &initialize.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let (status, ..) = post(client, url, &in_session(&session, VERSION), initialized).await;
    assert_eq!(status, 202);
    session
}

/// Waits until `url` lists `tool` in `session` (the upstream's tools arrive after start).
async fn until_listed(client: &reqwest::Client, url: &str, session: &str, tool: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
        let (_, _, messages, _) = post(client, url, &in_session(session, VERSION), list).await;
        let listed = messages.iter().any(|message| {
            message["result"]["tools"]
                .as_array()
                .is_some_and(|tools| tools.iter().any(|t| t["name"] == tool))
        });
        if listed {
            return;
        }
        assert!(Instant::now() < deadline, "{tool} never listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The JSON-RPC messages of one SSE event block (`data:` lines joined).
fn event_message(block: &str) -> Option<Value> {
    let data: Vec<&str> = block
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}

/// The client's answer to the question `request`: Ada for a name, Paris for a model.
fn answer_to(request: &Value) -> Value {
    let result = match request["method"].as_str().unwrap() {
        "elicitation/create" => json!({"action": "accept", "content": {"name": "Ada"}}),
        "sampling/createMessage" => json!({"role": "assistant", "model": "test-model",
            "content": {"type": "text", "text": "Paris"}}),
        other => panic!("unexpected question {other}"),
    };
    json!({"jsonrpc": "2.0", "id": request["id"], "result": result})
}

async fn answers_cross_replicas(legacy_upstream: bool, env: &[(&str, &str)]) {
    let stop = CancellationToken::new();
    let upstream = Arc::new(Asking::default());
    upstream
        .legacy
        .store(legacy_upstream, std::sync::atomic::Ordering::SeqCst);
    let url = upstream.serve(stop.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let replicas = [
        GatewayProcess::serve(&config, env),
        GatewayProcess::serve(&config, env),
    ];
    let (a, b) = (&replicas[0].url, &replicas[1].url);
    let client = reqwest::Client::new();
    let session = open_answering_session(&client, a).await;
    until_listed(&client, a, &session, "up_ask_twice").await;

    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "up_ask_twice", "arguments": {}}});
    let started = Instant::now();
    let response = client
        .post(a)
        .header("content-type", "application/json")
        .header("accept", ACCEPT)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", VERSION)
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut asked = Vec::new();
    let result = 'read: loop {
        let chunk = tokio::time::timeout(PROMPTLY.saturating_sub(started.elapsed()), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no answer in time; asked {asked:?}"))
            .expect("the stream ended before the call's answer")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(message) = event_message(&block) else {
                continue;
            };
            if message["id"] == 5 {
                break 'read message;
            }
            let Some(method) = message["method"].as_str() else {
                continue;
            };
            // The question's id names the replica that asked.
            let id = message["id"].as_str().unwrap_or_default().to_owned();
            assert!(id.starts_with("mf:"), "{message}");
            // The first question is answered through the other replica, the second through
            // the one that asked.
            let through = if asked.is_empty() { b } else { a };
            asked.push((method.to_owned(), id));
            let answer = answer_to(&message).to_string();
            let (status, _, _, body) =
                post(&client, through, &in_session(&session, VERSION), &answer).await;
            assert_eq!(status, 202, "{body}");
        }
    };
    assert_eq!(
        asked.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(),
        ["elicitation/create", "sampling/createMessage"]
    );
    assert_eq!(
        result["result"]["content"][0]["text"], "name=Ada model=Paris",
        "{result}"
    );

    // An answer naming a question of a replica that asked none is taken by nobody: the call
    // that never asked it is not disturbed, and the poster hears 202 as for any answer.
    let stray = json!({"jsonrpc": "2.0", "id": "mf:0000000000000000:9",
                       "result": {"action": "decline"}});
    let (status, ..) = post(
        &client,
        b,
        &in_session(&session, VERSION),
        &stray.to_string(),
    )
    .await;
    assert_eq!(status, 202);
    // In a session nobody has, it is not kept: rmcp answers 404.
    let (status, ..) = post(
        &client,
        b,
        &in_session("no-such-session", VERSION),
        &stray.to_string(),
    )
    .await;
    assert_eq!(status, 404);
    stop.cancel();
}

#[tokio::test]
async fn an_answer_posted_to_the_other_replica_reaches_the_question_on_sqlite() {
    answers_cross_replicas(false, &[]).await;
    answers_cross_replicas(true, &[]).await;
}

#[tokio::test]
async fn an_answer_posted_to_the_other_replica_reaches_the_question_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let env = [("MANIFOLD_STORAGE__URL", url.as_str())];
    answers_cross_replicas(false, &env).await;
    answers_cross_replicas(true, &env).await;
}
