//! The audit log: one JSON line per call or denial, appended to a file and hash-chained (`prev`
//! is the previous record's `hash`; `hash` is SHA-256 over the record's canonical JSON without
//! `hash`), so editing, dropping or reordering a line breaks the chain at that line.
//!
//! Durability: each record is one `write` of a whole line to a file opened with `O_APPEND`, made
//! before [`AuditLog::append`] returns, so a killed process loses nothing that was acknowledged
//! (the kernel has it); `fsync: true` also survives power loss at the cost of a disk flush per
//! record. On open, a torn last line (a crash mid-write) is truncated and reported, and the chain
//! resumes from the last whole line.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, value::RawValue};
use sha2::{Digest, Sha256};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The last whole line does not parse: the chain cannot be resumed without hiding tampering.
    #[error("audit log {}: line {line} is not a valid record; run verify", path.display())]
    Corrupt { path: PathBuf, line: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit log {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit log tampered at line {line}: {reason}")]
    Tampered { line: usize, reason: String },
}

#[derive(Debug, Clone, Copy, Default)]
pub struct AuditOptions {
    /// `fsync` after every record (survives power loss, not just process death).
    pub fsync: bool,
    /// Store raw arguments next to their digest. Off by default: arguments carry mail bodies and
    /// personal data; the digest still proves what was sent.
    pub include_args: bool,
}

/// What the gateway reports about one call or denial.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditEvent {
    pub user: Option<String>,
    pub client_id: Option<String>,
    pub tool: String,
    pub instance: String,
    pub action: String,
    /// `allow` or `deny`.
    pub decision: String,
    pub policies: Vec<String>,
    pub reason: Option<String>,
    /// Arguments: digested (and stored only with `include_args`).
    #[serde(skip_serializing)]
    pub args: Option<Value>,
    /// `ok`, `error`, `denied`, `quota_exceeded`, …
    pub outcome: String,
    pub latency_ms: Option<f64>,
    pub upstream_status: Option<u16>,
    /// Masked spans in the result.
    pub redactions: Option<usize>,
}

/// One line of the log, in two halves around `hash` with fields in key order, so serde writes
/// the canonical form directly (the same bytes [`canonical_json`] gives for the parsed line,
/// which is what [`verify`] checks) and the line is serialized once: the hash covers the halves
/// joined, and the written line is the halves with `hash` between them.
#[derive(Serialize)]
struct RecordHead<'a> {
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a RawValue>,
    args_sha256: Option<&'a str>,
    client_id: Option<&'a str>,
    decision: &'a str,
}

/// The fields after `hash`; see [`RecordHead`].
#[derive(Serialize)]
struct RecordTail<'a> {
    instance: &'a str,
    latency_ms: Option<f64>,
    outcome: &'a str,
    policies: &'a [String],
    prev: &'a str,
    reason: Option<&'a str>,
    redactions: Option<usize>,
    seq: u64,
    time: &'a str,
    tool: &'a str,
    upstream_status: Option<u16>,
    user: Option<&'a str>,
}

/// What [`AuditLog::append`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: String,
}

/// What [`AuditLog::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub records: u64,
    /// Bytes of a torn last line that were truncated.
    pub truncated_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub records: u64,
    pub last_hash: String,
    /// The file ends in a partial line (a crash mid-write); not counted as tampering.
    pub torn_tail: bool,
}

struct State {
    file: File,
    prev: String,
    seq: u64,
}

/// An open, appendable audit log. `append` takes a lock and does blocking I/O: call it from
/// `spawn_blocking` or a dedicated writer task on the async path.
pub struct AuditLog {
    path: PathBuf,
    opts: AuditOptions,
    state: Mutex<State>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// JSON with object keys sorted at every depth and no whitespace: the bytes that are hashed, so
/// the hash does not depend on serde_json's map ordering features.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(k) {
                    write_canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn sha256_hex(s: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(s.as_bytes());
    hex_digest(hasher)
}

/// The digest in lower-case hex, written straight into its buffer (`hex::encode` builds the
/// string a character at a time).
fn hex_digest(hasher: Sha256) -> String {
    let mut out = [0u8; 64];
    let digest = hasher.finalize();
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(digest, &mut out);
    out.iter().map(|&b| char::from(b)).collect()
}

/// The hash a record must carry: over everything but `hash`.
fn record_hash(record: &Map<String, Value>) -> String {
    let mut m = record.clone();
    m.remove("hash");
    sha256_hex(&canonical_json(&Value::Object(m)))
}

/// RFC 3339 UTC with milliseconds, without a date crate.
fn rfc3339(ms: u128) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

impl AuditLog {
    /// Opens (or creates) the log, truncates a torn last line and resumes the chain.
    pub fn open(
        path: impl Into<PathBuf>,
        opts: AuditOptions,
    ) -> Result<(Self, OpenReport), AuditError> {
        let path = path.into();
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut report = OpenReport {
            records: 0,
            truncated_bytes: (bytes.len() - whole) as u64,
        };
        if report.truncated_bytes > 0 {
            tracing::warn!(path = %path.display(), bytes = report.truncated_bytes, "truncating torn last audit line");
            file.set_len(whole as u64).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
        }
        let text = String::from_utf8_lossy(&bytes[..whole]);
        let lines: Vec<&str> = text.lines().collect();
        report.records = lines.len() as u64;
        let (prev, seq) = match lines.last() {
            None => (GENESIS.to_string(), 0),
            Some(last) => {
                let corrupt = || AuditError::Corrupt {
                    path: path.clone(),
                    line: lines.len(),
                };
                let v: Value = serde_json::from_str(last).map_err(|_| corrupt())?;
                let hash = v.get("hash").and_then(Value::as_str).ok_or_else(corrupt)?;
                let seq = v.get("seq").and_then(Value::as_u64).ok_or_else(corrupt)?;
                (hash.to_string(), seq + 1)
            }
        };
        Ok((
            AuditLog {
                path,
                opts,
                state: Mutex::new(State { file, prev, seq }),
            },
            report,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record; when this returns `Ok`, the record is in the file. Returns it.
    pub fn append(&self, event: &AuditEvent) -> Result<Appended, AuditError> {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let args = event.args.as_ref().map(canonical_json);
        let args_sha256 = args.as_deref().map(sha256_hex);
        let stored_args = match &args {
            Some(text) if self.opts.include_args => {
                Some(RawValue::from_string(text.clone()).map_err(|e| self.io_error(e.into()))?)
            }
            _ => None,
        };
        let time = rfc3339(ms);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let head = RecordHead {
            action: &event.action,
            args: stored_args.as_deref(),
            args_sha256: args_sha256.as_deref(),
            client_id: event.client_id.as_deref(),
            decision: &event.decision,
        };
        let tail = RecordTail {
            instance: &event.instance,
            latency_ms: event.latency_ms,
            outcome: &event.outcome,
            policies: &event.policies,
            prev: &st.prev,
            reason: event.reason.as_deref(),
            redactions: event.redactions,
            seq: st.seq,
            time: &time,
            tool: &event.tool,
            upstream_status: event.upstream_status,
            user: event.user.as_deref(),
        };
        let mut head = serde_json::to_vec(&head).map_err(|e| self.io_error(e.into()))?;
        let tail = serde_json::to_vec(&tail).map_err(|e| self.io_error(e.into()))?;
        // `{head…}` + `{tail…}` → `{head…,tail…}`: both are non-empty objects.
        head.pop();
        head.push(b',');
        let fields = tail.get(1..).unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(&head);
        hasher.update(fields);
        let hash = hex_digest(hasher);
        let mut line = head;
        line.reserve(fields.len() + hash.len() + 12);
        line.extend_from_slice(b"\"hash\":\"");
        line.extend_from_slice(hash.as_bytes());
        line.extend_from_slice(b"\",");
        line.extend_from_slice(fields);
        line.push(b'\n');
        // One write of the whole line: with O_APPEND, concurrent writers and a kill mid-call
        // leave either the whole line or (rarely) a torn tail that open() truncates.
        st.file.write_all(&line).map_err(|e| self.io_error(e))?;
        if self.opts.fsync {
            st.file.sync_data().map_err(|e| self.io_error(e))?;
        }
        let seq = st.seq;
        st.prev.clone_from(&hash);
        st.seq += 1;
        Ok(Appended { seq, hash })
    }

    fn io_error(&self, source: std::io::Error) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// Checks every record's hash and link. A partial last line is reported, not an error.
pub fn verify(path: &Path) -> Result<VerifyReport, VerifyError> {
    let bytes = std::fs::read(path).map_err(|source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut report = VerifyReport {
        records: 0,
        last_hash: GENESIS.to_string(),
        torn_tail: whole < bytes.len(),
    };
    let mut prev = GENESIS.to_string();
    let mut expect_seq: Option<u64> = None;
    // Whole lines only: the content before the final newline, split on newlines.
    let body = &bytes[..whole.saturating_sub(1)];
    let lines = if whole == 0 {
        None
    } else {
        Some(body.split(|&b| b == b'\n'))
    };
    for (i, raw) in lines.into_iter().flatten().enumerate() {
        let line = i + 1;
        let tampered = |reason: &str| VerifyError::Tampered {
            line,
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(raw).map_err(|_| tampered("not UTF-8"))?;
        let v: Value = serde_json::from_str(text).map_err(|_| tampered("not JSON"))?;
        let Value::Object(m) = v else {
            return Err(tampered("not an object"));
        };
        if canonical_json(&Value::Object(m.clone())) != text {
            return Err(tampered("not in canonical form"));
        }
        if m.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return Err(tampered("prev does not match the previous record's hash"));
        }
        let hash = m
            .get("hash")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if record_hash(&m) != hash {
            return Err(tampered("hash does not match the record"));
        }
        let seq = m
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| tampered("no seq"))?;
        if expect_seq.is_some_and(|e| e != seq) {
            return Err(tampered("sequence gap"));
        }
        expect_seq = Some(seq + 1);
        prev = hash;
        report.records += 1;
    }
    report.last_hash = prev;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn time_is_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
    }
}
