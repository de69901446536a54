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
//!
//! Failed writes: a write or fsync that fails (a full disk, an I/O error) may leave part of a line
//! behind. The log knows the length of its last whole record and cuts the file back to it before
//! returning the error, so the file ends on a whole record and the chain (`prev`, `seq`) is as it
//! was: the next append that succeeds continues the chain with no gap and no garbage. When even
//! that cut fails, the next append retries it before writing anything.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, value::RawValue};
use sha2::{Digest, Sha256};

#[cfg(any(test, feature = "test-util"))]
pub mod faults;
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
    /// The name the client called when an admin renamed the tool (`tool` is then the name the
    /// policies know it by). Absent otherwise, so records of tools not renamed are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_exposed: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_exposed: Option<&'a str>,
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
    file: Box<dyn LogFile>,
    prev: String,
    seq: u64,
    /// Whole lines in the file.
    records: u64,
    /// Bytes in the file up to the end of its last whole record: where a failed write is cut
    /// back to. Only this log writes the file, so it is the file's length between appends.
    len: u64,
    /// A failed write could not be cut back: the file may end in part of a line until
    /// [`State::roll_back`] succeeds, which the next append tries first.
    torn: bool,
}

/// The file under a log: a [`File`], or in tests one whose writes fail on demand
/// (`faults`, built only for tests).
trait LogFile: Write + Send {
    fn sync_data(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn seek_end(&mut self) -> io::Result<u64>;
}

impl LogFile for File {
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn seek_end(&mut self) -> io::Result<u64> {
        self.seek(SeekFrom::End(0))
    }
}

// === impl State ===

impl State {
    /// One whole line, made durable when `fsync`.
    fn write_line(&mut self, line: &[u8], fsync: bool) -> io::Result<()> {
        self.file.write_all(line)?;
        if fsync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Cuts the file back to its last whole record. Until that succeeds `torn` stays set and no
    /// line is written after the remains.
    fn roll_back(&mut self) -> io::Result<()> {
        self.torn = true;
        self.file.set_len(self.len)?;
        self.file.seek_end()?;
        self.torn = false;
        Ok(())
    }
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
        Self::open_on(path.into(), opts, checkpoint, |file| Box::new(file))
    }

    /// [`AuditLog::open_checked`], writing through `wrap(file)`.
    fn open_on(
        path: PathBuf,
        opts: AuditOptions,
        checkpoint: Option<&Checkpoint>,
        wrap: impl FnOnce(File) -> Box<dyn LogFile>,
    ) -> Result<(Self, OpenReport), AuditError> {
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
                    file: wrap(file),
                    prev,
                    seq,
                    records,
                    len: whole as u64,
                    torn: false,
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

    /// Appends one record; when this returns `Ok`, the record is in the file. Returns it. On
    /// `Err` the file and the chain are as they were before the call (see the module docs).
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
            tool_exposed: event.tool_exposed.as_deref(),
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
        // Remains of an earlier failed write go first: a line after them would not parse.
        if st.torn {
            st.roll_back().map_err(|e| self.io_error(e))?;
        }
        // One write of the whole line: with O_APPEND, a kill mid-call leaves either the whole
        // line or (rarely) a torn tail that open() truncates; a failed write is cut back here.
        if let Err(error) = st.write_line(&line, self.opts.fsync) {
            if let Err(cut) = st.roll_back() {
                tracing::error!(path = %self.path.display(), error = %cut, "cannot cut a failed audit write back to the last whole record; the next append retries");
            }
            return Err(self.io_error(error));
        }
        let seq = st.seq;
        st.prev.clone_from(&hash);
        st.seq += 1;
        st.records += 1;
        st.len += line.len() as u64;
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
mod tests;
