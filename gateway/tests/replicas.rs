//! Sessions are not bound to one process: two `manifold` processes sharing one config (and so one
//! database) serve one session's requests alternately, and a session ended on one is gone there
//! at once and on the other within `server.session_recheck` (at once when it is `0s`). Runs on
//! SQLite, and on PostgreSQL when `MANIFOLD_TEST_POSTGRES_URL` is set (CI sets it).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{open_session, post, process::GatewayProcess};

fn config(dir: &std::path::Path, recheck: &str) -> std::path::PathBuf {
    let path = dir.join("manifold.toml");
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
session_recheck = "{recheck}"
[storage]
data_dir = "{}"
[adapters.linear]
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

async fn alternate_one_session(env: &[(&str, &str)], recheck: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), recheck);
    let replicas = [
        GatewayProcess::serve(&config, env),
        GatewayProcess::serve(&config, env),
    ];
    let client = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&client, &replicas[0].url, version).await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", version),
    ];
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
    let Ok(url) = std::env::var("MANIFOLD_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide MANIFOLD_TEST_POSTGRES_URL"
        );
        eprintln!("MANIFOLD_TEST_POSTGRES_URL not set: PostgreSQL run skipped outside CI");
        return;
    };
    alternate_one_session(&[("MANIFOLD_STORAGE__URL", &url)], "1s").await;
}
