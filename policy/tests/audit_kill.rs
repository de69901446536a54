//! A writer process is SIGKILLed mid-load; every record it acknowledged must be in the log and
//! the chain must verify. The child is this same test binary re-executed with an env var set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use manifold_policy::audit::{AuditEvent, AuditLog, AuditOptions, verify};

const CHILD_ENV: &str = "MANIFOLD_AUDIT_CHILD_LOG";

/// The child's body: appends forever, printing `ack <seq>` after each append returns.
#[test]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Not a child: nothing to do.
    };
    let (log, _) = AuditLog::open(&path, AuditOptions::default()).expect("child open");
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let rec = log
            .append(&AuditEvent {
                user: Some(format!("u{}", i % 7)),
                tool: "linear_create_issue".into(),
                instance: "linear".into(),
                action: "call".into(),
                decision: "allow".into(),
                args: Some(serde_json::json!({"i": i, "pad": "x".repeat((i % 300) as usize)})),
                outcome: "ok".into(),
                ..AuditEvent::default()
            })
            .expect("append");
        writeln!(out, "ack {}", rec.seq).expect("stdout");
        out.flush().expect("flush");
    }
}

#[test]
fn sigkill_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut acked: Vec<u64> = Vec::new();
    let mut line = String::new();
    while acked.len() < 2000 {
        line.clear();
        if reader.read_line(&mut line).expect("read") == 0 {
            panic!("child exited early after {} acks", acked.len());
        }
        if let Some(n) = line.trim().strip_prefix("ack ") {
            acked.push(n.parse().expect("seq"));
        }
    }
    // Kill mid-load (Child::kill is SIGKILL on Unix), then drain acks already in the pipe.
    child.kill().expect("kill");
    child.wait().expect("wait");
    for l in reader.lines().map_while(Result::ok) {
        if let Some(n) = l.trim().strip_prefix("ack ") {
            acked.push(n.parse().expect("seq"));
        }
    }
    let report = verify(&path).expect("chain verifies after SIGKILL");
    let last = *acked.last().expect("acks");
    assert!(
        report.records > last,
        "acknowledged seq {last} missing; log has {} records",
        report.records
    );
    // Reopen resumes the chain (truncating a torn tail if the kill hit mid-write).
    let (log, open) = AuditLog::open(&path, AuditOptions::default()).expect("reopen");
    assert!(open.records > last);
    log.append(&AuditEvent::default())
        .expect("append after restart");
    let after = verify(&path).expect("verifies after restart");
    assert_eq!(after.records, open.records + 1);
    assert!(!after.torn_tail);
}
