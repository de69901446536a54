//! Single-flight refresh across processes: two `manifold serve` processes share one database,
//! one keyring and one Linear emulator (whose refresh tokens rotate: each works once). When the
//! user's tokens expire and both processes get calls at once, exactly one refresh must reach the
//! provider, every call must succeed, and the refresh token stored afterwards must still work.
//! The emulator answers token requests slowly (longer than SQLite's lock wait), as a real
//! provider may. Runs on SQLite, and on PostgreSQL when `MANIFOLD_TEST_POSTGRES_URL` is set (CI
//! sets it).
#![allow(clippy::unwrap_used)]

mod support;

use std::{net::SocketAddr, path::Path, time::Duration};

use manifold_adapters::{Registry, sandbox::SandboxServer};
use serde_json::{Value, json};
use support::{
    broker::{BrokerClient, assert_ok, refreshes},
    process::{GatewayProcess, postgres_url},
};

/// Both processes' keyring (`kid:base64url of 32 bytes`).
const SECRET_KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
/// How long the emulator takes to answer a token request: longer than the 5 s SQLite waits for
/// a lock, so a design holding the database lock across the provider call fails here.
const SLOW_PROVIDER: Duration = Duration::from_millis(6000);
/// Calls fired at each process at once.
const CALLS_PER_PROCESS: usize = 8;

fn config(dir: &Path, sandbox: SocketAddr) -> std::path::PathBuf {
    let path = dir.join("manifold.toml");
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
allowed_origins = ["http://127.0.0.1:*"]
call_timeout = "60s"
[storage]
data_dir = "{}"
[sandbox]
url = "http://{sandbox}"
[broker]
dev_login = true
[adapters.linear]
kind = "linear"
sandbox = true
"#,
        dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn refresh_once_across_processes(storage_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = SandboxServer::start(&Registry::builtin(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let emulator = format!("http://{}/linear", sandbox.addr());
    let config = config(dir.path(), sandbox.addr());
    let mut env = vec![("MANIFOLD_SECRET_KEY", SECRET_KEY)];
    if let Some(url) = storage_url {
        env.push(("MANIFOLD_STORAGE__URL", url));
    }
    let processes = [
        GatewayProcess::serve(&config, &env),
        GatewayProcess::serve(&config, &env),
    ];
    let clients = processes
        .each_ref()
        .map(|p| BrokerClient::new(p.url.trim_end_matches("/mcp"), &emulator));
    // A seeded user of the emulator; on PostgreSQL, connecting replaces an earlier run's row.
    let user = "dave";
    let cookie = clients[0].login(user).await;
    clients[0].connect(&cookie).await;
    // Both processes serve the user: the sign-in cookie opens with the shared keyring.
    for client in &clients {
        assert_ok(&client.call(&cookie, json!({}), "linear_list_teams").await);
    }

    clients[0]
        .control(
            "/_sandbox/token_delay",
            json!({"millis": SLOW_PROVIDER.as_millis()}),
        )
        .await;
    clients[0]
        .control("/_sandbox/expire_tokens", Value::Null)
        .await;
    let before = refreshes(&clients[0].oauth_log().await).len();
    // Sessions first, so the tool calls leave for both processes together.
    let mut sessions = Vec::new();
    for client in &clients {
        for _ in 0..CALLS_PER_PROCESS {
            sessions.push((client, client.session(&cookie, json!({})).await));
        }
    }
    let calls = sessions
        .iter()
        .map(|(client, session)| client.call_in(&cookie, session, "linear_list_teams"));
    for answer in futures::future::join_all(calls).await {
        assert_ok(&answer);
    }
    // Ended, so repeated runs on the shared database stay under the user's session cap.
    for (client, session) in &sessions {
        client.end(&cookie, session).await;
    }
    let log = clients[0].oauth_log().await;
    let during = refreshes(&log);
    assert_eq!(
        during.len() - before,
        1,
        "one refresh for both processes: {log}"
    );
    assert!(during.iter().all(|r| r["outcome"] == "ok"), "{log}");

    // The rotated refresh token was stored: the next expiry refreshes again, from the other
    // process, with it.
    clients[0]
        .control("/_sandbox/token_delay", json!({"millis": 0}))
        .await;
    clients[0]
        .control("/_sandbox/expire_tokens", Value::Null)
        .await;
    assert_ok(
        &clients[1]
            .call(&cookie, json!({}), "linear_list_teams")
            .await,
    );
    let log = clients[0].oauth_log().await;
    let after = refreshes(&log);
    assert_eq!(after.len() - before, 2, "{log}");
    assert!(after.iter().all(|r| r["outcome"] == "ok"), "{log}");
    assert_eq!(
        log["bearer_users"].as_array().unwrap().last().unwrap(),
        user
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_refresh_once_on_sqlite() {
    refresh_once_across_processes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_refresh_once_on_postgres() {
    let Some(url) = postgres_url() else { return };
    refresh_once_across_processes(Some(&url)).await;
}
