//! An audit log that cannot be written makes a real `manifold` process refuse calls, and it
//! resumes by itself: the demo config with its audit log on a small tmpfs the test mounts and
//! fills. While it is full, `tools/call` is answered with the JSON-RPC internal error that names
//! the cause, the answer of a call whose record did not go in is withheld, and a write tool's
//! effect never happens (the adapter is not reached); `/metrics` shows the outage. Once space is
//! freed the next refusal's record goes in and calls are served again, with no restart; the log
//! then verifies with `manifold audit verify`, its database checkpoint included (no torn record,
//! the checkpoint task kept going).
//!
//! Mounting needs root: CI runs as root and must run this test; elsewhere it is skipped with a
//! note when not root.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde_json::{Value, json};
use support::{
    demo::{call_tool as call, token},
    process::GatewayProcess,
};

/// The demo Linear's ENG team (`linear_list_teams`).
const ENG: &str = "00000002-0000-4000-8000-000000000000";

const REFUSED: &str = "the audit log cannot be written; calls are refused until it can";

const OPERATOR_TOKEN: &str = "audit-outage-operator-token";

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs failed: {status}");
        Self(at.to_path_buf())
    }

    /// Writes a file until the filesystem refuses more; the file is removed to free the space.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match file.write_all(&block) {
                Ok(()) => {}
                Err(error) if error.raw_os_error() == Some(28) => break filler, // ENOSPC
                Err(error) => panic!("filling the tmpfs: {error}"),
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.0).status();
        if !unmounted.is_ok_and(|status| status.success()) {
            // Still busy (a process that outlived its guard): detach it now, gone when freed.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Whether this process may mount; outside CI a non-root run is skipped with a note.
fn can_mount() -> bool {
    let uid = Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "audit_full_disk needs root to mount a tmpfs, and CI must run it: run CI as root"
        );
        eprintln!("audit_full_disk: not root, cannot mount a tmpfs: skipped outside CI");
    }
    root
}

/// The demo config on `data_dir`, its audit log at `audit_file` (arguments kept, checkpoints
/// every 100 ms) and its operator endpoints on the main listener.
fn config(data_dir: &Path, audit_file: &Path) -> PathBuf {
    manifold::demo::install_policies(data_dir).unwrap();
    let text = manifold::demo::config_text(&manifold::demo::DemoOverrides {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.to_path_buf()),
        ..Default::default()
    });
    let mut document: toml::Table = toml::from_str(&text).unwrap();
    let policy = document["policy"].as_table_mut().unwrap();
    policy.insert("audit_file".into(), audit_file.display().to_string().into());
    // Stored arguments make a record as long as its arguments: one longer than a page never
    // fits the slack at the end of the log's last page, so the full disk refuses it for sure.
    policy.insert("audit_include_args".into(), true.into());
    policy.insert("audit_checkpoint_interval".into(), "100ms".into());
    let server = document["server"].as_table_mut().unwrap();
    server.insert("operator_listen".into(), "main".into());
    let path = data_dir.join("manifold.toml");
    std::fs::write(&path, toml::to_string(&document).unwrap()).unwrap();
    path
}

#[track_caller]
fn assert_refused(answer: &Value) {
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert_eq!(answer["error"]["message"], REFUSED, "{answer}");
}

#[track_caller]
fn assert_served(answer: &Value) {
    assert!(answer["result"].is_object(), "{answer}");
    assert_ne!(answer["result"]["isError"], true, "{answer}");
}

async fn metrics(url: &str) -> String {
    let base = url.trim_end_matches("/mcp");
    reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A Linear issue in ENG titled `title`, with a description longer than a page.
fn issue(title: &str) -> Value {
    json!({"team_id": ENG, "title": title, "description": "x".repeat(6000)})
}

/// The titles of ENG's issues, most recently updated first.
async fn titles(url: &str, token: &str) -> Vec<String> {
    let answer = call(
        url,
        token,
        "linear_list_issues",
        json!({"team": "ENG", "first": 50}),
    )
    .await;
    assert_served(&answer);
    let issues = answer["result"]["structuredContent"]["issues"].as_array();
    let issues = issues.unwrap_or_else(|| panic!("no issues in {answer}"));
    issues
        .iter()
        .map(|issue| issue["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_full_audit_disk_refuses_calls_before_the_provider_and_service_resumes_when_space_is_freed()
 {
    if !can_mount() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mount_point = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::mount(mount_point.path(), "256k");
    let audit_file = mount_point.path().join("audit.jsonl");
    let config = config(data.path(), &audit_file);
    let gateway = GatewayProcess::serve(
        &config,
        &[("MANIFOLD_SERVER__OPERATOR_TOKEN", OPERATOR_TOKEN)],
    );
    let url = gateway.url.clone();
    let alice = token(data.path(), &url, "alice", &[]);
    let search = json!({"query": "login"});
    assert_served(&call(&url, &alice, "linear_search_issues", search.clone()).await);

    // The disk fills. Reads go on while their records fit the last page's slack; the first
    // whose record does not is withheld (its adapter ran, its answer has no record).
    let filler = tmpfs.fill();
    let mut withheld = None;
    for attempt in 0..20 {
        let answer = call(&url, &alice, "linear_search_issues", search.clone()).await;
        if answer.get("error").is_some() {
            assert_refused(&answer);
            withheld = Some(attempt);
            break;
        }
        assert_served(&answer);
    }
    assert!(withheld.is_some(), "the full disk never refused a record");

    // From here calls are refused before the adapter: the issue is never created.
    for _ in 0..2 {
        assert_refused(&call(&url, &alice, "linear_create_issue", issue("zebra outage")).await);
    }
    let text = metrics(&url).await;
    assert!(text.contains("manifold_audit_writable 0\n"), "{text}");
    let failures: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("manifold_audit_write_failures_total "))
        .unwrap_or_else(|| panic!("no failure counter in {text}"))
        .parse()
        .unwrap();
    assert!(failures >= 3, "{text}");

    // Space again: the next refusal's record goes in and ends the outage, no restart.
    std::fs::remove_file(filler).unwrap();
    assert_refused(&call(&url, &alice, "linear_create_issue", issue("zebra probe")).await);
    assert!(
        metrics(&url).await.contains("manifold_audit_writable 1\n"),
        "the refusal's record ended the outage"
    );
    let created = call(
        &url,
        &alice,
        "linear_create_issue",
        issue("walrus recovered"),
    )
    .await;
    assert_served(&created);
    let titles = titles(&url, &alice).await;
    assert!(titles.iter().any(|t| t == "walrus recovered"), "{titles:?}");
    assert!(
        !titles.iter().any(|t| t.starts_with("zebra")),
        "a refused call reached the provider: {titles:?}"
    );

    // Every record that went in, in order: nothing of the refused writes, no torn line.
    let log = std::fs::read_to_string(&audit_file).unwrap();
    let records: Vec<(String, String)> = log
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            let field = |name: &str| record[name].as_str().unwrap_or_default().to_owned();
            (field("tool"), field("outcome"))
        })
        .collect();
    let served_reads = 1 + withheld.unwrap();
    let mut expected = vec![("linear_search_issues".to_owned(), "ok".to_owned()); served_reads];
    expected.extend([
        ("linear_create_issue".into(), "audit_unavailable".into()),
        ("linear_create_issue".into(), "ok".into()),
        ("linear_list_issues".into(), "ok".into()),
    ]);
    assert_eq!(records, expected);

    // The checkpoint task kept going through the outage: it reaches the last record.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(gateway);
    let verified = Command::new(support::manifold_bin())
        .args(["audit", "verify"])
        .arg(&audit_file)
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("MANIFOLD_SECRET_KEY")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{report}");
    let count = records.len();
    assert!(
        report.contains(&format!("{count} records, {count} keyed")),
        "{report}"
    );
    assert!(
        report.contains(&format!("checkpoint of {count} records")),
        "{report}"
    );
    drop(tmpfs);
}
