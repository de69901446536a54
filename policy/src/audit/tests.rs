//! The chain: appends, resumes, canonical lines, and generated tampering of keyed logs.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        user: Some("alice".into()),
        tool: "linear_create_issue".into(),
        instance: "linear".into(),
        action: "call".into(),
        decision: "allow".into(),
        policies: vec!["writers-write".into()],
        args: Some(json!({"title": format!("t{i}"), "team_id": "ENG"})),
        outcome: "ok".into(),
        latency_ms: Some(1.5),
        upstream_status: Some(200),
        ..AuditEvent::default()
    }
}

#[test]
fn chain_verifies_resumes_and_keeps_args_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (log, r) = AuditLog::open(&p, AuditOptions::default()).expect("open");
    assert_eq!(r.records, 0);
    for i in 0..3 {
        log.append(&event(i)).expect("append");
    }
    drop(log);
    let (log, r) = AuditLog::open(&p, AuditOptions::default()).expect("reopen");
    assert_eq!(
        r,
        OpenReport {
            records: 3,
            truncated_bytes: 0
        }
    );
    let rec = log.append(&event(3)).expect("append");
    assert_eq!(rec.seq, 3);
    let text = std::fs::read_to_string(&p).expect("read");
    assert!(
        !text.contains("\"t1\""),
        "raw args must not be stored by default"
    );
    assert!(text.contains("args_sha256"));
    assert_eq!(verify(&p).expect("verify").records, 4);
}

#[test]
fn lines_are_canonical_with_stored_nested_args() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let options = AuditOptions {
        include_args: true,
        ..AuditOptions::default()
    };
    let (log, _) = AuditLog::open(&p, options).expect("open");
    let mut e = event(0);
    // Keys out of order at every depth, escapes, numbers of every kind.
    e.args = Some(json!({"z": {"b": [1, 2.5, -3], "a": "q\"uote\n"}, "a": null, "m": true}));
    e.reason = Some("tab\there".into());
    e.latency_ms = Some(0.1 + 0.2);
    let appended = log.append(&e).expect("append");
    let text = std::fs::read_to_string(&p).expect("read");
    let line = text.trim_end_matches('\n');
    let parsed: Value = serde_json::from_str(line).expect("json");
    assert_eq!(canonical_json(&parsed), line);
    assert_eq!(parsed["hash"], appended.hash.as_str());
    assert_eq!(
        parsed["args"],
        json!({"a": null, "m": true, "z": {"a": "q\"uote\n", "b": [1, 2.5, -3]}})
    );
    assert_eq!(verify(&p).expect("verify").records, 1);
}

#[test]
fn the_exposed_name_of_a_renamed_tool_is_written_only_when_there_is_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (log, _) = AuditLog::open(&p, AuditOptions::default()).expect("open");
    log.append(&event(0)).expect("append");
    log.append(&AuditEvent {
        tool_exposed: Some("linear_file_bug".into()),
        ..event(1)
    })
    .expect("append");
    let text = std::fs::read_to_string(&p).expect("read");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    assert!(lines[0].get("tool_exposed").is_none(), "{}", lines[0]);
    assert_eq!(lines[1]["tool"], "linear_create_issue");
    assert_eq!(lines[1]["tool_exposed"], "linear_file_bug");
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).expect("json");
        assert_eq!(canonical_json(&value), line, "lines stay canonical");
    }
    assert_eq!(verify(&p).expect("verify").records, 2);
}

#[test]
fn editing_one_byte_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (log, _) = AuditLog::open(&p, AuditOptions::default()).expect("open");
    for i in 0..5 {
        log.append(&event(i)).expect("append");
    }
    let mut bytes = std::fs::read(&p).expect("read");
    let lines: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    // Flip "allow" to "allox" on line 3.
    let start = lines[1] + 1;
    let at = start
        + bytes[start..]
            .windows(5)
            .position(|w| w == b"allow")
            .expect("field")
        + 4;
    bytes[at] = b'x';
    std::fs::write(&p, &bytes).expect("write");
    match verify(&p) {
        Err(VerifyError::Tampered { line, .. }) => assert_eq!(line, 3),
        other => panic!("expected tampering at line 3, got {other:?}"),
    }
}

#[test]
fn dropping_a_line_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (log, _) = AuditLog::open(&p, AuditOptions::default()).expect("open");
    for i in 0..4 {
        log.append(&event(i)).expect("append");
    }
    let text = std::fs::read_to_string(&p).expect("read");
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&p, kept.join("\n") + "\n").expect("write");
    assert!(matches!(
        verify(&p),
        Err(VerifyError::Tampered { line: 2, .. })
    ));
}

#[test]
fn torn_tail_is_reported_then_truncated_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (log, _) = AuditLog::open(
        &p,
        AuditOptions {
            fsync: true,
            include_args: true,
            keys: None,
        },
    )
    .expect("open");
    log.append(&event(0)).expect("append");
    drop(log);
    let mut f = OpenOptions::new().append(true).open(&p).expect("open");
    f.write_all(b"{\"seq\":1,\"to").expect("torn write");
    drop(f);
    let r = verify(&p).expect("torn tail is not tampering");
    assert!(r.torn_tail);
    assert_eq!(r.records, 1);
    let (log, r) = AuditLog::open(&p, AuditOptions::default()).expect("reopen");
    assert_eq!(r.truncated_bytes, 12);
    log.append(&event(1)).expect("append");
    let r = verify(&p).expect("verify");
    assert_eq!((r.records, r.torn_tail), (2, false));
}

// === keyed chain ===

fn keys(byte: u8) -> AuditKeys {
    AuditKeys::new("k1", [("k1".to_owned(), [byte; 32])]).expect("keys")
}

fn keyed_options(byte: u8) -> AuditOptions {
    AuditOptions {
        keys: Some(keys(byte)),
        ..AuditOptions::default()
    }
}

/// A keyed log of `n` records; returns its lines and checkpoint.
fn keyed_log(path: &Path, n: usize) -> (Vec<String>, Checkpoint) {
    let (log, _) = AuditLog::open(path, keyed_options(7)).expect("open");
    for i in 0..n {
        log.append(&event(i)).expect("append");
    }
    let head = log.head();
    let text = std::fs::read_to_string(path).expect("read");
    (text.lines().map(str::to_owned).collect(), head)
}

/// How a tamperer re-hashes the records it rewrote.
#[derive(Debug, Clone, Copy)]
enum Rehash {
    /// Plain SHA-256 without `kid`, as an unkeyed log.
    Unkeyed,
    /// HMAC under a key that is not the gateway's, same `kid`.
    WrongKey,
}

/// Rewrites lines `from..` so each links to the one before and carries a fresh hash.
fn rechain(lines: &mut [String], from: usize, how: Rehash) {
    let mut prev = match from {
        0 => GENESIS.to_owned(),
        _ => {
            let v: Value = serde_json::from_str(&lines[from - 1]).expect("json");
            v["hash"].as_str().expect("hash").to_owned()
        }
    };
    for line in &mut lines[from..] {
        let Value::Object(mut m) = serde_json::from_str(line).expect("json") else {
            panic!("record is an object");
        };
        m.remove("hash");
        m.insert("prev".into(), Value::String(prev.clone()));
        let hash = match how {
            Rehash::Unkeyed => {
                m.remove("kid");
                record_hash(&m)
            }
            Rehash::WrongKey => record_mac(&m, &[9; 32]),
        };
        m.insert("hash".into(), Value::String(hash.clone()));
        *line = canonical_json(&Value::Object(m));
        prev = hash;
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Sets `field` of line `line` to `value`, leaving the hash.
    Edit {
        line: usize,
        field: &'static str,
        value: String,
    },
    Drop(usize),
    Swap(usize, usize),
    /// Removes the last `n` lines.
    Truncate(usize),
    /// Edits line `line`, then re-chains from it.
    Rechain {
        line: usize,
        how: Rehash,
    },
}

fn mutation(n: usize) -> impl Strategy<Value = Mutation> {
    let field = prop_oneof![
        Just("user"),
        Just("decision"),
        Just("tool"),
        Just("outcome"),
        Just("reason"),
        Just("kid"),
        Just("args_sha256"),
    ];
    let how = prop_oneof![Just(Rehash::Unkeyed), Just(Rehash::WrongKey)];
    prop_oneof![
        (0..n, field, "[a-z]{0,12}").prop_map(|(line, field, value)| Mutation::Edit {
            line,
            field,
            value,
        }),
        (0..n).prop_map(Mutation::Drop),
        (0..n, 0..n)
            .prop_filter("two lines", |(a, b)| a != b)
            .prop_map(|(a, b)| Mutation::Swap(a, b)),
        (1..=n).prop_map(Mutation::Truncate),
        (0..n, how).prop_map(|(line, how)| Mutation::Rechain { line, how }),
    ]
}

fn apply(lines: &mut Vec<String>, mutation: &Mutation) {
    match mutation {
        Mutation::Edit { line, field, value } => {
            let Value::Object(mut m) = serde_json::from_str(&lines[*line]).expect("json") else {
                panic!("record is an object");
            };
            let old = m.insert((*field).to_owned(), Value::String(value.clone()));
            if old == Some(Value::String(value.clone())) {
                // Not a change: make it one.
                m.insert((*field).to_owned(), Value::String(format!("{value}x")));
            }
            lines[*line] = canonical_json(&Value::Object(m));
        }
        Mutation::Drop(line) => {
            lines.remove(*line);
        }
        Mutation::Swap(a, b) => lines.swap(*a, *b),
        Mutation::Truncate(n) => lines.truncate(lines.len() - n),
        Mutation::Rechain { line, how } => {
            let Value::Object(mut m) = serde_json::from_str(&lines[*line]).expect("json") else {
                panic!("record is an object");
            };
            m.insert("outcome".into(), Value::String("rewritten".into()));
            lines[*line] = canonical_json(&Value::Object(m));
            rechain(lines, *line, *how);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 600,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// Every mutation of a keyed log fails verification with the key and its checkpoint,
    /// and a gateway opening the mutated log with its checkpoint refuses to append.
    #[test]
    fn every_tampering_of_a_keyed_log_fails_verify_and_open(
        (n, mutation) in (2usize..12).prop_flat_map(|n| (Just(n), mutation(n)))
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("audit.jsonl");
        let (mut lines, checkpoint) = keyed_log(&p, n);
        let ring = keys(7);
        proptest::prop_assert!(verify_with(&p, Some(&ring), Some(&checkpoint)).is_ok());
        apply(&mut lines, &mutation);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&p, &text).expect("write");
        let verdict = verify_with(&p, Some(&ring), Some(&checkpoint));
        proptest::prop_assert!(verdict.is_err(), "{:?} passed verify: {:?}", mutation, verdict);
        let opened = AuditLog::open_checked(&p, keyed_options(7), Some(&checkpoint));
        proptest::prop_assert!(opened.is_err(), "{:?} was opened for appending", mutation);
        // A refused log is left as found.
        proptest::prop_assert_eq!(std::fs::read_to_string(&p).expect("read"), text);
    }
}

#[test]
fn keyed_records_name_their_key_and_need_it_to_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (lines, checkpoint) = keyed_log(&p, 3);
    assert!(lines.iter().all(|l| l.contains("\"kid\":\"k1\"")));
    let report = verify_with(&p, Some(&keys(7)), Some(&checkpoint)).expect("verifies");
    assert_eq!((report.records, report.keyed), (3, 3));
    assert!(matches!(
        verify(&p),
        Err(VerifyError::KeyNeeded { line: 1, .. })
    ));
    assert!(matches!(
        verify_with(&p, Some(&keys(8)), None),
        Err(VerifyError::Tampered { line: 1, .. })
    ));
    // Reopened with the key, the chain goes on.
    let (log, _) = AuditLog::open_checked(&p, keyed_options(7), Some(&checkpoint)).expect("open");
    log.append(&event(3)).expect("append");
    assert_eq!(log.head().records, 4);
    assert_eq!(
        verify_with(&p, Some(&keys(7)), Some(&checkpoint))
            .expect("ok")
            .records,
        4
    );
}

#[test]
fn an_unkeyed_log_goes_on_keyed_and_reports_its_unkeyed_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (log, _) = AuditLog::open(&p, AuditOptions::default()).expect("open");
    log.append(&event(0)).expect("append");
    drop(log);
    let (log, _) = AuditLog::open(&p, keyed_options(7)).expect("upgrade");
    log.append(&event(1)).expect("append");
    let report = verify_with(&p, Some(&keys(7)), Some(&log.head())).expect("verifies");
    assert_eq!((report.records, report.keyed), (2, 1));
}

#[test]
fn a_forged_tail_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (mut lines, _) = keyed_log(&p, 4);
    // Without a checkpoint too: an appended forgery re-hashed with SHA-256.
    let forged = lines[3].replace("\"ok\"", "\"error\"");
    lines.push(forged);
    rechain(&mut lines, 4, Rehash::Unkeyed);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, &text).expect("write");
    match AuditLog::open(&p, keyed_options(7)) {
        Err(AuditError::Forged { line, .. }) => assert_eq!(line, 5),
        other => panic!("expected a refusal, got {:?}", other.map(|(_, r)| r)),
    }
}

#[test]
fn time_is_rfc3339() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
}

// === failed writes ===

/// A log over a file whose writes fail when `faults` says so.
fn faulty_log(path: &Path, options: AuditOptions) -> (AuditLog, faults::Faults) {
    let faults = faults::Faults::default();
    let (log, _) = AuditLog::open_with_faults(path, options, &faults).expect("open");
    (log, faults)
}

#[test]
fn a_write_that_fills_the_disk_is_cut_back_and_the_next_append_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (log, faults) = faulty_log(&p, keyed_options(7));
    log.append(&event(0)).expect("append");
    let before = std::fs::read(&p).expect("read");
    let head = log.head();

    faults.set_full(Some(40));
    for i in 1..4 {
        let error = log.append(&event(i)).expect_err("the disk is full");
        assert!(error.to_string().contains("No space left"), "{error}");
    }
    assert_eq!(std::fs::read(&p).expect("read"), before, "no torn record");
    assert_eq!(log.head(), head, "the chain is where it was");

    faults.set_full(None);
    assert_eq!(log.append(&event(4)).expect("append").seq, 1);
    let report = verify_with(&p, Some(&keys(7)), Some(&log.head())).expect("verify");
    assert_eq!((report.records, report.torn_tail), (2, false));
}

#[test]
fn a_cut_that_fails_is_retried_before_the_next_line_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("audit.jsonl");
    let (log, faults) = faulty_log(&p, AuditOptions::default());
    log.append(&event(0)).expect("append");
    faults.short_write(25);
    faults.fail_truncate(2);
    log.append(&event(1)).expect_err("short write");
    assert!(verify(&p).expect("verify").torn_tail, "the cut failed");
    // The retried cut fails too: nothing is written after the remains.
    let torn = std::fs::read(&p).expect("read");
    log.append(&event(2)).expect_err("the cut still fails");
    assert_eq!(std::fs::read(&p).expect("read"), torn);
    log.append(&event(3))
        .expect("the cut works now, then the line");
    let report = verify(&p).expect("verify");
    assert_eq!((report.records, report.torn_tail), (2, false));
}

/// What happens to one append of a generated run.
#[derive(Debug, Clone)]
enum Step {
    Append,
    /// The write stores this many bytes and fails.
    ShortWrite(usize),
    /// The disk stays full for this many appends, storing a few bytes of each.
    Full(usize, usize),
    /// The fsync fails (only when the log fsyncs; otherwise the append succeeds).
    SyncFails,
    /// The write stores this many bytes and fails, and so do this many cuts.
    Uncut(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Append),
        2 => (0usize..700).prop_map(Step::ShortWrite),
        1 => (1usize..4, 0usize..80).prop_map(|(n, stored)| Step::Full(n, stored)),
        1 => Just(Step::SyncFails),
        1 => (0usize..700, 1usize..3).prop_map(|(stored, cuts)| Step::Uncut(stored, cuts)),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 256,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// After any run of appends that succeed and appends that fail part-way (a full disk, a
    /// failed fsync, a cut back that fails too), the log verifies with every record that was
    /// acknowledged and no other, its head matches the file, the file ends on a whole record
    /// whenever the last cut worked, and a reopen finds nothing to truncate.
    #[test]
    fn the_log_verifies_after_any_run_of_successful_and_failed_appends(
        steps in proptest::collection::vec(step(), 1..14),
        fsync in proptest::bool::weighted(0.25),
        keyed in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("audit.jsonl");
        let options = AuditOptions {
            fsync,
            include_args: false,
            keys: keyed.then(|| keys(7)),
        };
        let ring = keys(7);
        let (log, faults) = faulty_log(&p, options.clone());
        let mut acknowledged: Vec<u8> = Vec::new();
        let mut records = 0u64;
        let mut n = 0;
        for step in &steps {
            let mut uncut = false;
            let appends = match step {
                Step::Append => 1,
                Step::ShortWrite(stored) => {
                    faults.short_write(*stored);
                    1
                }
                Step::Full(appends, stored) => {
                    faults.set_full(Some(*stored));
                    *appends
                }
                Step::SyncFails => {
                    faults.fail_sync();
                    1
                }
                Step::Uncut(stored, cuts) => {
                    faults.short_write(*stored);
                    faults.fail_truncate(*cuts);
                    uncut = true;
                    1
                }
            };
            for _ in 0..appends {
                n += 1;
                let outcome = log.append(&event(n));
                let bytes = std::fs::read(&p).expect("read");
                proptest::prop_assert!(bytes.starts_with(&acknowledged), "an acknowledged record was lost");
                match outcome {
                    Ok(appended) => {
                        proptest::prop_assert_eq!(appended.seq, records);
                        records += 1;
                        let line = &bytes[acknowledged.len()..];
                        proptest::prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
                        proptest::prop_assert!(line.ends_with(b"\n"));
                        acknowledged = bytes;
                    }
                    Err(_) if !uncut => {
                        proptest::prop_assert_eq!(&bytes, &acknowledged, "a failed append left bytes");
                    }
                    Err(_) => {}
                }
                let report = verify_with(&p, Some(&ring), Some(&log.head()));
                let report = report.map_err(|e| TestCaseError::fail(format!("{step:?}: {e}")))?;
                proptest::prop_assert_eq!(report.records, records);
                proptest::prop_assert_eq!(&report.last_hash, &log.head().last_hash);
                proptest::prop_assert_eq!(log.head().records, records);
                proptest::prop_assert!(uncut || !report.torn_tail);
            }
            // A fault armed for a write that never came (a cut retried first failed) ends here.
            faults.clear();
        }
        // A clean append ends any torn remains and continues the chain.
        log.append(&event(0)).expect("append");
        let report = verify_with(&p, Some(&ring), Some(&log.head())).expect("verify");
        proptest::prop_assert_eq!((report.records, report.torn_tail), (records + 1, false));
        drop(log);
        let (_, reopened) = AuditLog::open(&p, options).expect("reopen");
        proptest::prop_assert_eq!(reopened, OpenReport { records: records + 1, truncated_bytes: 0 });
    }
}
