//! Sessions are not bound to one process: two `manifold` processes sharing one config (and so one
//! database) serve one session's requests alternately, and a session ended on one is gone there
//! at once and on the other within `server.session_recheck` (at once when it is `0s`), and a
//! `notifications/cancelled` sent to one stops the call running on the other. Runs on SQLite,
//! and on PostgreSQL when `MANIFOLD_TEST_POSTGRES_URL` is set (CI sets it).
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use manifold_adapters::{Registry, sandbox::SandboxServer};
use serde_json::{Value, json};
use support::{
    in_session, open_session, post,
    process::{GatewayProcess, postgres_url},
};

/// How long the emulator holds each Linear answer in the cancellation test: far longer than a
/// cancellation takes to cross replicas.
const SLOW_ANSWER: Duration = Duration::from_secs(20);

/// Both replicas' config: Linear with the demo key, on the in-process emulator, or on the
/// emulator at `sandbox` (one both replicas share) when given.
fn config(dir: &std::path::Path, recheck: &str, sandbox: Option<SocketAddr>) -> std::path::PathBuf {
    let path = dir.join("manifold.toml");
    let shared_sandbox = sandbox.map_or_else(String::new, |addr| {
        format!("[sandbox]\nurl = \"http://{addr}\"\n")
    });
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
session_recheck = "{recheck}"
call_timeout = "60s"
[storage]
data_dir = "{}"
{shared_sandbox}[adapters.linear]
kind = "linear"
sandbox = true
[adapters.linear.credentials]
token = "lin_api_sandbox_alice"
"#,
        dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Two `manifold serve` processes of one config.
fn two_replicas(config: &std::path::Path, env: &[(&str, &str)]) -> [GatewayProcess; 2] {
    [
        GatewayProcess::serve(config, env),
        GatewayProcess::serve(config, env),
    ]
}

async fn alternate_one_session(env: &[(&str, &str)], recheck: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), recheck, None);
    let replicas = two_replicas(&config, env);
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &replicas[0].url, version).await;
    let headers = in_session(&session, version);
    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "linear_list_teams", "arguments": {}}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
               "params": {"name": "linear_search_issues", "arguments": {"query": "login"}}}),
        json!({"jsonrpc": "2.0", "id": 6, "method": "ping"}),
    ];
    for (index, request) in requests.iter().enumerate() {
        let replica = &replicas[(index + 1) % 2];
        let (status, _, answer, body) =
            post(&client, &replica.url, &headers, &request.to_string()).await;
        assert_eq!(
            status,
            200,
            "request {index} on replica {}: {body}",
            (index + 1) % 2
        );
        let answer = answer.iter().find(|m| m["id"] == request["id"]).unwrap();
        assert!(answer.get("error").is_none(), "{answer}");
        assert_ne!(answer["result"]["isError"], true, "{answer}");
    }
    let ended = client
        .delete(&replicas[1].url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", version)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success());
    let ping = r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#;
    let echo = r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"linear_list_teams","arguments":{}}}"#;
    for body in [ping, echo] {
        let (status, ..) = post(&client, &replicas[1].url, &headers, body).await;
        assert_eq!(status, 404, "ended on this replica: gone at once");
    }
    // The other replica trusted its last look at the session for up to `recheck`.
    let strict = recheck == "0s";
    let deadline = Instant::now() + Duration::from_secs(3);
    for body in [echo, ping] {
        loop {
            let (status, ..) = post(&client, &replicas[0].url, &headers, body).await;
            if status == 404 {
                break;
            }
            assert!(
                !strict && Instant::now() < deadline,
                "an ended session must be gone on every replica (recheck {recheck}): {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Starts a slow call on replica 0 (on the fast path, and with a progress token on rmcp's
/// path), cancels it through replica 1, and expects the call to end long before the emulator
/// would have answered.
async fn cancel_across_replicas(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = SandboxServer::start(&Registry::builtin(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let emulator = format!("http://{}/linear", sandbox.addr());
    let config = config(dir.path(), "1s", Some(sandbox.addr()));
    let replicas = two_replicas(&config, env);
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &replicas[0].url, version).await;
    let headers = in_session(&session, version);
    let control = |path: &str| format!("{emulator}/_sandbox/{path}");
    let delay = json!({"millis": SLOW_ANSWER.as_millis()});
    let set = client.post(control("delay")).json(&delay).send().await;
    assert!(set.unwrap().status().is_success());
    for (id, meta) in [(7, json!({})), (8, json!({"progressToken": "p8"}))] {
        client.delete(control("requests")).send().await.unwrap();
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "linear_list_teams", "arguments": {}, "_meta": meta}});
        let started = Instant::now();
        let slow = tokio::spawn({
            let (client, url, session) = (client.clone(), replicas[0].url.clone(), session.clone());
            async move {
                let headers = in_session(&session, version);
                post(&client, &url, &headers, &call.to_string()).await
            }
        });
        // The call is in flight once the emulator has its request.
        loop {
            let log: Value = client
                .get(control("requests"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if log.as_array().is_some_and(|log| !log.is_empty()) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "call {id} never left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "user pressed stop"}});
        let (status, _, _, body) =
            post(&client, &replicas[1].url, &headers, &cancel.to_string()).await;
        assert_eq!(status, 202, "{body}");
        let (status, _, answer, body) = slow.await.unwrap();
        let elapsed = started.elapsed();
        assert!(
            elapsed < SLOW_ANSWER / 2,
            "call {id} ran on for {elapsed:?} after its cancellation: {}",
            body.chars().take(300).collect::<String>()
        );
        assert_eq!(status, 200, "{body}");
        let answer = answer.iter().find(|m| m["id"] == id).unwrap();
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("cancelled")),
            "call {id}: {answer}"
        );
    }
}

#[tokio::test]
async fn a_cancellation_sent_to_one_replica_stops_the_call_on_the_other_on_sqlite() {
    cancel_across_replicas(&[]).await;
}

#[tokio::test]
async fn a_cancellation_sent_to_one_replica_stops_the_call_on_the_other_on_postgres() {
    let Some(url) = postgres_url() else { return };
    cancel_across_replicas(&[("MANIFOLD_STORAGE__URL", &url)]).await;
}

#[tokio::test]
async fn two_processes_serve_one_session_on_sqlite() {
    alternate_one_session(&[], "1s").await;
}

#[tokio::test]
async fn with_recheck_zero_an_ended_session_is_gone_on_every_replica_at_once() {
    alternate_one_session(&[], "0s").await;
}

#[tokio::test]
async fn two_processes_serve_one_session_on_postgres() {
    let Some(url) = postgres_url() else { return };
    alternate_one_session(&[("MANIFOLD_STORAGE__URL", &url)], "1s").await;
}
