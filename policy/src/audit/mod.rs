//! The audit log: one JSON line per call or denial, appended to a file and hash-chained (`prev`
//! is the previous record's `hash`; `hash` is SHA-256 over the record's canonical JSON without
//! `hash`), so editing, dropping or reordering a line breaks the chain at that line.
//!
//! Keyed chain: with [`AuditOptions::keys`], each record also carries `kid` and its `hash` is
//! HMAC-SHA256 under that key (see [`mac`]), so a rewritten copy cannot be re-chained without the
//! key. Records without `kid` (logs written before keying) still verify and are reported as
//! unkeyed; an unkeyed record after a keyed one is tampering (a re-chain with plain SHA-256).
//! Truncation is caught by [`Checkpoint`]s (record count and last hash) kept elsewhere (the
//! gateway's database): a log shorter than its checkpoint, or whose record at the checkpoint
//! has another hash, fails [`verify_with`] and [`AuditLog::open_checked`].
//!
//! On open, the last [`TAIL_CHECK`] records are verified; a log whose tail is forged or broken
//! is refused (no record is appended after it), so tampering is noticed at the next start.
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

mod mac;
pub use mac::AuditKeys;

/// How many records at the end of the log [`AuditLog::open`] verifies before appending.
pub const TAIL_CHECK: usize = 1000;

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
    /// The tail of the log fails verification: appending would extend a forged chain.
    #[error(
        "audit log {}: line {line} fails verification ({reason}); refusing to append to a forged \
         or broken log: keep it for investigation and start a new file",
        path.display()
    )]
    Forged {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// The log is shorter than its last checkpoint, or differs at it.
    #[error(
        "audit log {}: {reason}; the log was truncated or replaced: keep it for investigation and \
         start a new file",
        path.display()
    )]
    Truncated { path: PathBuf, reason: String },
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
    /// A keyed record and no key to check it (or not the key it names).
    #[error(
        "audit log line {line} is keyed with `{kid}`, which is not among the keys given: pass \
         the gateway's keys (MANIFOLD_SECRET_KEY or the data directory's secret.key)"
    )]
    KeyNeeded { line: usize, kid: String },
    /// Shorter than its checkpoint, or different at it.
    #[error("audit log truncated or replaced: {0}")]
    Truncated(String),
}

/// How far the log had got when last recorded elsewhere: `records` lines, the last with hash
/// `last_hash`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub records: u64,
    pub last_hash: String,
}

#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// `fsync` after every record (survives power loss, not just process death).
    pub fsync: bool,
    /// Store raw arguments next to their digest. Off by default: arguments carry mail bodies and
    /// personal data; the digest still proves what was sent.
    pub include_args: bool,
    /// MAC records with the current key; `None` writes the plain SHA-256 chain.
    pub keys: Option<AuditKeys>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
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
    /// Records with a MAC checked under the keys given; the others are plain SHA-256 (written
    /// before the chain was keyed), which proves order but not who wrote them.
    pub keyed: u64,
    pub last_hash: String,
    /// The file ends in a partial line (a crash mid-write); not counted as tampering.
    pub torn_tail: bool,
}

struct State {
    file: File,
    prev: String,
    seq: u64,
    /// Whole lines in the file.
    records: u64,
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

/// The MAC a keyed record must carry: over the same bytes as [`record_hash`].
fn record_mac(record: &Map<String, Value>, key: &[u8; 32]) -> String {
    let mut m = record.clone();
    m.remove("hash");
    hex::encode(mac::hmac_sha256(
        key,
        &[canonical_json(&Value::Object(m)).as_bytes()],
    ))
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
    /// Opens (or creates) the log, truncates a torn last line, verifies the tail and resumes the
    /// chain.
    pub fn open(
        path: impl Into<PathBuf>,
        opts: AuditOptions,
    ) -> Result<(Self, OpenReport), AuditError> {
        Self::open_checked(path, opts, None)
    }

    /// [`AuditLog::open`], also refusing a log shorter than `checkpoint` or different at it.
    pub fn open_checked(
        path: impl Into<PathBuf>,
        opts: AuditOptions,
        checkpoint: Option<&Checkpoint>,
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
        let lines: Vec<&[u8]> = match whole {
            0 => Vec::new(),
            _ => bytes[..whole - 1].split(|&b| b == b'\n').collect(),
        };
        report.records = lines.len() as u64;
        // Verified before anything is written, the torn tail's truncation included: a refused
        // log is left exactly as found.
        let first = lines.len().saturating_sub(TAIL_CHECK);
        let mut chain = Chain::new(opts.keys.as_ref(), first > 0);
        for (index, raw) in lines.iter().enumerate().skip(first) {
            chain.check(index + 1, raw).map_err(|error| match error {
                VerifyError::Tampered { line, reason } => AuditError::Forged {
                    path: path.clone(),
                    line,
                    reason,
                },
                other => AuditError::Forged {
                    path: path.clone(),
                    line: lines.len(),
                    reason: other.to_string(),
                },
            })?;
        }
        if let Some(checkpoint) = checkpoint {
            let hash_at = |records: u64| {
                let raw = lines.get(usize::try_from(records).ok()?.checked_sub(1)?)?;
                let v: Value = serde_json::from_slice(raw).ok()?;
                v.get("hash").and_then(Value::as_str).map(str::to_owned)
            };
            checkpoint_holds(checkpoint, lines.len() as u64, hash_at).map_err(|reason| {
                AuditError::Truncated {
                    path: path.clone(),
                    reason,
                }
            })?;
        }
        if report.truncated_bytes > 0 {
            tracing::warn!(path = %path.display(), bytes = report.truncated_bytes, "truncating torn last audit line");
            file.set_len(whole as u64).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
        }
        let (prev, seq) = match lines.last() {
            None => (GENESIS.to_string(), 0),
            Some(last) => {
                let corrupt = || AuditError::Corrupt {
                    path: path.clone(),
                    line: lines.len(),
                };
                let v: Value = serde_json::from_slice(last).map_err(|_| corrupt())?;
                let hash = v.get("hash").and_then(Value::as_str).ok_or_else(corrupt)?;
                let seq = v.get("seq").and_then(Value::as_u64).ok_or_else(corrupt)?;
                (hash.to_string(), seq + 1)
            }
        };
        let records = report.records;
        Ok((
            AuditLog {
                path,
                opts,
                state: Mutex::new(State {
                    file,
                    prev,
                    seq,
                    records,
                }),
            },
            report,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the log is now: what a checkpoint records.
    pub fn head(&self) -> Checkpoint {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Checkpoint {
            records: st.records,
            last_hash: st.prev.clone(),
        }
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
        let kid = self.opts.keys.as_ref().map(AuditKeys::current_kid);
        let tail = RecordTail {
            instance: &event.instance,
            kid,
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
        let hash = match &self.opts.keys {
            Some(keys) => hex::encode(mac::hmac_sha256(keys.current_key(), &[&head, fields])),
            None => {
                let mut hasher = Sha256::new();
                hasher.update(&head);
                hasher.update(fields);
                hex_digest(hasher)
            }
        };
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
        st.records += 1;
        Ok(Appended { seq, hash })
    }

    fn io_error(&self, source: std::io::Error) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// `Ok` when a log of `records` lines whose line `n` has hash `hash_at(n)` reaches `checkpoint`.
fn checkpoint_holds(
    checkpoint: &Checkpoint,
    records: u64,
    hash_at: impl Fn(u64) -> Option<String>,
) -> Result<(), String> {
    if records < checkpoint.records {
        return Err(format!(
            "it has {records} records, the checkpoint {}",
            checkpoint.records
        ));
    }
    if checkpoint.records > 0
        && hash_at(checkpoint.records).as_deref() != Some(checkpoint.last_hash.as_str())
    {
        return Err(format!(
            "record {} does not have the checkpoint's hash",
            checkpoint.records
        ));
    }
    Ok(())
}

/// The running check of a chain, one record at a time.
struct Chain<'k> {
    keys: Option<&'k AuditKeys>,
    /// The previous record's hash; `None` before the first record checked when the check
    /// starts mid-log (the tail check), whose first `prev` cannot be known.
    prev: Option<String>,
    expect_seq: Option<u64>,
    keyed_seen: bool,
    keyed: u64,
}

// === impl Chain ===

impl<'k> Chain<'k> {
    fn new(keys: Option<&'k AuditKeys>, mid_log: bool) -> Self {
        Self {
            keys,
            prev: (!mid_log).then(|| GENESIS.to_owned()),
            expect_seq: None,
            keyed_seen: false,
            keyed: 0,
        }
    }

    fn check(&mut self, line: usize, raw: &[u8]) -> Result<(), VerifyError> {
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
        if let Some(prev) = &self.prev
            && m.get("prev").and_then(Value::as_str) != Some(prev.as_str())
        {
            return Err(tampered("prev does not match the previous record's hash"));
        }
        let hash = m
            .get("hash")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let expected = match m.get("kid") {
            None if self.keyed_seen => {
                return Err(tampered(
                    "unkeyed record after keyed ones (re-chained without the key)",
                ));
            }
            None => record_hash(&m),
            Some(Value::String(kid)) => {
                let key = self.keys.and_then(|keys| keys.get(kid)).ok_or_else(|| {
                    VerifyError::KeyNeeded {
                        line,
                        kid: kid.clone(),
                    }
                })?;
                self.keyed_seen = true;
                self.keyed += 1;
                record_mac(&m, key)
            }
            Some(_) => return Err(tampered("kid is not a string")),
        };
        if expected != hash {
            return Err(tampered("hash does not match the record"));
        }
        let seq = m
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| tampered("no seq"))?;
        if self.expect_seq.is_some_and(|e| e != seq) {
            return Err(tampered("sequence gap"));
        }
        self.expect_seq = Some(seq + 1);
        self.prev = Some(hash);
        Ok(())
    }
}

/// Checks every record's hash and link. A partial last line is reported, not an error. Keyed
/// records need their key: see [`verify_with`].
pub fn verify(path: &Path) -> Result<VerifyReport, VerifyError> {
    verify_with(path, None, None)
}

/// Checks every record's hash (keyed records' MAC under `keys`) and link, and that the log
/// reaches `checkpoint`. A partial last line is reported, not an error.
pub fn verify_with(
    path: &Path,
    keys: Option<&AuditKeys>,
    checkpoint: Option<&Checkpoint>,
) -> Result<VerifyReport, VerifyError> {
    let bytes = std::fs::read(path).map_err(|source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut report = VerifyReport {
        records: 0,
        keyed: 0,
        last_hash: GENESIS.to_string(),
        torn_tail: whole < bytes.len(),
    };
    let mut chain = Chain::new(keys, false);
    // The hash at the checkpoint's record, seen on the way.
    let mut at_checkpoint = None;
    // Whole lines only: the content before the final newline, split on newlines.
    let body = &bytes[..whole.saturating_sub(1)];
    let lines = if whole == 0 {
        None
    } else {
        Some(body.split(|&b| b == b'\n'))
    };
    for (i, raw) in lines.into_iter().flatten().enumerate() {
        chain.check(i + 1, raw)?;
        report.records += 1;
        if checkpoint.is_some_and(|c| c.records == report.records) {
            at_checkpoint = chain.prev.clone();
        }
    }
    report.keyed = chain.keyed;
    report.last_hash = chain.prev.unwrap_or_else(|| GENESIS.to_owned());
    if let Some(checkpoint) = checkpoint {
        checkpoint_holds(checkpoint, report.records, |_| at_checkpoint.clone())
            .map_err(VerifyError::Truncated)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
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
                let Value::Object(mut m) = serde_json::from_str(&lines[*line]).expect("json")
                else {
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
                let Value::Object(mut m) = serde_json::from_str(&lines[*line]).expect("json")
                else {
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
        let (log, _) =
            AuditLog::open_checked(&p, keyed_options(7), Some(&checkpoint)).expect("open");
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
}
