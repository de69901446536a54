//! Two `manifold` processes sharing one database serve one 2025-era session whose upstream call
//! asks the client questions, and the client answers through whichever replica its POST reaches:
//! the question's id names the replica that asked, and the replica an answer lands on relays it
//! there (`session::relay`). And a 2026-07-28 client, whose 2025-era upstream asks mid-call, so
//! that one replica holds the upstream call between the client's rounds: its retries resume the
//! call through whichever replica they reach. Runs on SQLite, and on PostgreSQL when
//! `MANIFOLD_TEST_POSTGRES_URL` is set (CI sets it); for an upstream of each era.
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
    ACCEPT,
    asking_mcp::{Asking, round, sampled, send},
    in_session,
    mcp_gateway::instance,
    post,
    process::GatewayProcess,
    process::postgres_url,
};
use tokio_util::sync::CancellationToken;

const VERSION: &str = "2025-11-25";
/// The replicas' shared key, which seals what they relay and the clients' request states.
const SECRET_KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
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

/// Round one on replica `a`, whose instance holds the upstream call; every retry through `b`,
/// which relays it there.
async fn held_call_cross_replicas(env: &[(&str, &str)]) {
    let stop = CancellationToken::new();
    let upstream = Arc::new(Asking::default());
    upstream
        .legacy
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let url = upstream.serve(stop.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let mut env = env.to_vec();
    env.push(("MANIFOLD_SECRET_KEY", SECRET_KEY));
    let mut replicas = vec![
        GatewayProcess::serve(&config, &env),
        GatewayProcess::serve(&config, &env),
    ];
    let (a, b) = (replicas[0].url.clone(), replicas[1].url.clone());
    let client = reqwest::Client::new();
    let declared = json!({"elicitation": {}, "sampling": {}});
    let asked = |answer: &Value, method: &str| -> String {
        let result = &answer["result"];
        assert_eq!(result["resultType"], "input_required", "{answer}");
        assert_eq!(
            result["inputRequests"]["input"]["method"], method,
            "{answer}"
        );
        result["requestState"].as_str().unwrap().to_owned()
    };
    let retry = |answers: Option<Value>, state: &str| {
        round(
            "up_ask_twice",
            declared.clone(),
            Some((answers.unwrap_or_else(|| json!({})), state)),
        )
    };

    // Round one on `a`, once the upstream's tools have arrived there.
    let started = Instant::now();
    let first = loop {
        let (_, answer) = send(&client, &a, round("up_ask_twice", declared.clone(), None)).await;
        if answer.get("result").is_some() {
            break answer;
        }
        assert!(started.elapsed() < PROMPTLY, "never listed: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let state = asked(&first, "elicitation/create");
    // A retry without the answer, through `b`, is asked again by the holder.
    let (_, again) = send(&client, &b, retry(None, &state)).await;
    let state = asked(&again, "elicitation/create");
    // The answer through `b` resumes the call on `a`, which asks its second question.
    let name = json!({"input": {"action": "accept", "content": {"name": "Ada"}}});
    let (status, second) = send(&client, &b, retry(Some(name.clone()), &state)).await;
    assert_eq!(status, 200, "{second}");
    let state_two = asked(&second, "sampling/createMessage");
    // The last answer, through `b` again, finishes it.
    let (status, done) = send(
        &client,
        &b,
        retry(Some(json!({"input": sampled("Paris")})), &state_two),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "name=Ada model=Paris",
        "{done}"
    );
    // One upstream call, on the holding replica, served every round.
    assert_eq!(upstream.declared.lock().unwrap().len(), 1);
    // A round already answered names a call no longer held, whichever replica hears it.
    for through in [&a, &b] {
        let (_, stale) = send(&client, through, retry(Some(name.clone()), &state)).await;
        assert_eq!(stale["result"]["isError"], true, "{stale}");
        let text = stale["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("no longer waiting"), "{text}");
    }

    // The holder stops while it holds a call: a retry through `b` is told so within seconds.
    let (_, held) = send(&client, &a, round("up_ask_twice", declared.clone(), None)).await;
    let state = asked(&held, "elicitation/create");
    drop(replicas.remove(0));
    let asked_at = Instant::now();
    let (_, gone) = send(&client, &b, retry(Some(name), &state)).await;
    assert!(
        asked_at.elapsed() < Duration::from_secs(9),
        "{:?}",
        asked_at.elapsed()
    );
    assert_eq!(gone["result"]["isError"], true, "{gone}");
    let text = gone["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("no longer waiting"), "{text}");
    stop.cancel();
}

#[tokio::test]
async fn a_2026_clients_retries_resume_the_call_held_on_the_other_replica_on_sqlite() {
    held_call_cross_replicas(&[]).await;
}

#[tokio::test]
async fn a_2026_clients_retries_resume_the_call_held_on_the_other_replica_on_postgres() {
    let Some(url) = postgres_url() else { return };
    held_call_cross_replicas(&[("MANIFOLD_STORAGE__URL", url.as_str())]).await;
}
