//! The keyed audit chain through the real gateway: records carry the keyring's key id and verify
//! only with its keys; a log whose tail was forged (edited, extended with a record hashed with
//! plain SHA-256 or MACed with another key) or that was truncated below its database checkpoint
//! stops the gateway from starting, and fails `manifold audit verify`.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use manifold::app;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use support::{open_session, post};

const EXTRA: &str = "[policy]\naudit_checkpoint_interval = \"100ms\"\n";

/// Starts the test gateway on `dir`; `Err` is the start-up refusal's text.
async fn start(dir: &Path) -> Result<app::RunningGateway, String> {
    let probe = std::sync::Arc::new(support::Probe::default());
    let registry = support::registry(&probe);
    let source = support::config(dir, EXTRA, "");
    let path = Path::new("test.toml");
    let config = manifold::config::load_str(&source, path, &registry, &[]).unwrap();
    app::start(config, &source, path, &registry)
        .await
        .map_err(|error| error.to_string())
}

async fn stop(running: app::RunningGateway) {
    running.shutdown.cancel();
    running.wait().await.unwrap();
}

/// Makes `n` calls, waits for a checkpoint, stops.
async fn calls(dir: &Path, n: usize) {
    let running = start(dir).await.unwrap();
    let url = format!("http://{}/mcp", running.addr);
    let client = reqwest::Client::new();
    let session = open_session(&client, &url, "2025-11-25").await;
    let headers = support::in_session(&session, "2025-11-25");
    for id in 0..n {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": "t_echo", "arguments": {"text": format!("c{id}")}}});
        post(&client, &url, &headers, &body.to_string()).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    stop(running).await;
}

fn verify(dir: &Path) -> (bool, String) {
    let output = std::process::Command::new(support::manifold_bin())
        .args(["audit", "verify"])
        .arg(dir.join("audit.jsonl"))
        .env_remove("MANIFOLD_SECRET_KEY")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn canonical(value: &Value) -> String {
    // serde_json's map is sorted (no `preserve_order`), so `to_string` is the canonical form.
    value.to_string()
}

/// A record following `last`, re-hashed by a tamperer: plain SHA-256 without `kid`, or a MAC
/// under a key that is not the gateway's.
fn forged_after(last: &str, keyed_with_wrong_key: bool) -> String {
    let last: Map<String, Value> = serde_json::from_str(last).unwrap();
    let mut next = last.clone();
    next.remove("hash");
    next.insert("prev".into(), last["hash"].clone());
    next.insert("seq".into(), json!(last["seq"].as_u64().unwrap() + 1));
    next.insert("outcome".into(), json!("ok"));
    next.insert("tool".into(), json!("t_forged"));
    let hash = if keyed_with_wrong_key {
        // Any HMAC-looking value works: without the key the right one cannot be computed.
        let mut hasher = Sha256::new();
        hasher.update(b"not the key");
        hasher.update(canonical(&Value::Object(next.clone())));
        hex::encode(hasher.finalize())
    } else {
        next.remove("kid");
        hex::encode(Sha256::digest(canonical(&Value::Object(next.clone()))))
    };
    next.insert("hash".into(), json!(hash));
    canonical(&Value::Object(next))
}

#[derive(Debug, Clone, Copy)]
enum Tamper {
    EditLast(&'static str),
    AppendUnkeyed,
    AppendWrongKey,
    Truncate(usize),
    DropMiddle,
}

fn tampered(lines: &[String], tamper: Tamper) -> Vec<String> {
    let mut lines = lines.to_vec();
    match tamper {
        Tamper::EditLast(field) => {
            let last = lines.len() - 1;
            let mut record: Map<String, Value> = serde_json::from_str(&lines[last]).unwrap();
            record.insert(field.into(), json!("edited"));
            lines[last] = canonical(&Value::Object(record));
        }
        Tamper::AppendUnkeyed => {
            let forged = forged_after(lines.last().unwrap(), false);
            lines.push(forged);
        }
        Tamper::AppendWrongKey => {
            let forged = forged_after(lines.last().unwrap(), true);
            lines.push(forged);
        }
        Tamper::Truncate(n) => lines.truncate(lines.len() - n),
        Tamper::DropMiddle => {
            lines.remove(lines.len() / 2);
        }
    }
    lines
}

#[tokio::test]
async fn the_gateway_keys_its_chain_and_refuses_to_start_on_a_forged_or_truncated_log() {
    let dir = tempfile::tempdir().unwrap();
    calls(dir.path(), 6).await;
    let audit = dir.path().join("audit.jsonl");
    let original: Vec<String> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(original.len(), 6);
    assert!(
        original.iter().all(|l| l.contains("\"kid\":\"k1\"")),
        "{original:?}"
    );
    let (ok, text) = verify(dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("6 records, 6 keyed"), "{text}");
    assert!(text.contains("checkpoint of 6 records"), "{text}");

    let variants = [
        Tamper::EditLast("outcome"),
        Tamper::EditLast("user"),
        Tamper::EditLast("kid"),
        Tamper::EditLast("prev"),
        Tamper::AppendUnkeyed,
        Tamper::AppendWrongKey,
        Tamper::Truncate(1),
        Tamper::Truncate(3),
        Tamper::Truncate(6),
        Tamper::DropMiddle,
    ];
    for tamper in variants {
        let text: String = tampered(&original, tamper)
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&audit, &text).unwrap();
        let refusal = match start(dir.path()).await {
            Ok(running) => {
                stop(running).await;
                panic!("{tamper:?}: the gateway started on a tampered log");
            }
            Err(refusal) => refusal,
        };
        assert!(
            refusal.contains("truncated or replaced") || refusal.contains("fails verification"),
            "{tamper:?}: {refusal}"
        );
        assert_eq!(
            std::fs::read_to_string(&audit).unwrap(),
            text,
            "{tamper:?}: the refused log was changed"
        );
        let (ok, report) = verify(dir.path());
        assert!(!ok, "{tamper:?} passed verify: {report}");
    }

    // The untouched log starts, and the chain goes on.
    let text: String = original.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&audit, text).unwrap();
    calls(dir.path(), 2).await;
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
    assert!(report.contains("8 records, 8 keyed"), "{report}");
}
