//! Signals between replicas about a session's requests. A session's calls run on whichever
//! replica received them, and what concerns a call may land on any replica: the
//! `notifications/cancelled` naming it, or the client's answer to a question the gateway asked
//! during it (elicitation, sampling, roots), which the client POSTs as a JSON-RPC response.
//! Each replica registers the calls it runs ([`InFlight`]), and the ids of its questions name
//! it (`manager::Questions`); a signal meant for another replica is posted to the shared
//! `mcp_signals` table, which every replica holding calls or questions reads every
//! [`POLL_EVERY`], taking what is its own ([`SignalRelay`]). This is the one channel replicas
//! signal each other by.
//!
//! Rows carry the posting replica's clock and are read against the reading replica's, so
//! replica clocks must agree to within [`LOOKBACK`] (NTP keeps them within milliseconds).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use dashmap::{DashMap, mapref::entry::Entry};
use rmcp::{
    model::{ClientJsonRpcMessage, RequestId},
    transport::streamable_http_server::session::SessionManager,
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use tokio::sync::watch;

use super::manager::{Questions, SharedSessionManager};
use crate::{keyring::Keyring, router::Catalog, storage::Storage};

mod retry;

/// How often a replica with session calls or questions in flight reads the posted signals.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How far back each read looks: far longer than the gap between reads, so a replica that was
/// slow to read (or whose clock differs a little) misses nothing, and a cancellation posted just
/// before the call registered still reaches it. Reading a row twice is harmless: a cancelled
/// call has left [`InFlight`]. Request ids are never reused within a session, so a row cannot
/// name a later call of a client that keeps to the protocol.
const LOOKBACK: Duration = Duration::from_secs(10);
/// At most this many of the newest rows are read at once, so a client posting cancellations in
/// bulk cannot make every replica's reads grow without bound.
const READ_LIMIT: i64 = 1000;
/// Posted signals are kept this long, then pruned (an answer nobody took, too).
const KEEP: Duration = Duration::from_secs(120);
/// Request ids are stored as their JSON text up to this length, longer ones as a digest, so
/// rows stay small (and within PostgreSQL's index entry limit) whatever id a client picks.
const KEY_MAX: usize = 64;
/// At most this many answers of one session wait in the table: a client answers the questions
/// of its calls in flight, a handful, and cannot fill the database with answers to nothing.
const ANSWERS_PER_SESSION: i64 = 8;
/// The largest answer relayed: a form's content or a sampled message, an image at most. Rows
/// wait up to [`KEEP`], so this and the count above bound what one session can store.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// How soon the replica holding a call takes a retry relayed to it: it reads every
/// [`POLL_EVERY`] while it holds calls, so a retry still untaken after this names a call nobody
/// holds any more (its replica stopped, or let it go).
const TAKEN_WITHIN: Duration = Duration::from_secs(5);
/// How often a replica that relayed a retry looks for its outcome.
const OUTCOME_EVERY: Duration = Duration::from_millis(50);

/// What a signal row is.
const CANCEL: &str = "cancel";
const ANSWER: &str = "answer";
/// A retry for a call held on another replica, and that replica's outcome, addressed by the
/// holder (the instance holding the call) and a token of the relaying replica's.
const RESUME: &str = "resume";
const RESUMED: &str = "resumed";
/// The relaying replica gave up on a retry (its client went away, or its call timed out): the
/// holding replica stops resuming it, which withdraws the upstream call.
const WITHDRAW: &str = "withdraw";

/// Which path serves a registered call, which decides who answers a cancellation found here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The transport's session fast path: the gateway answers the cancellation itself.
    FastPath,
    /// rmcp's session service: the cancellation goes on to rmcp, which cancels its own copy.
    Rmcp,
}

/// The session calls this replica runs, by session id and request id.
#[derive(Clone, Default)]
pub struct InFlight(Arc<DashMap<(String, RequestId), Call>>);

struct Call {
    cancel: CancellationToken,
    served: Served,
    /// Tells this registration from a later one of the same key (see [`Registration`]).
    generation: u64,
}

/// Numbers registrations, so a call that was cancelled (and so left [`InFlight`]) and is still
/// winding down does not remove a newer call's entry when it ends.
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

/// A call's place in [`InFlight`], given up when dropped, however the call ends (the client may
/// go away).
pub struct Registration {
    in_flight: InFlight,
    key: (String, RequestId),
    generation: u64,
}

/// Posts signals for other replicas and delivers theirs to the calls and questions this replica
/// holds.
pub struct SignalRelay {
    storage: Storage,
    in_flight: InFlight,
    /// Seals what rows carry of a client's (answers, retries, outcomes), so the database never
    /// holds them in the clear; the replicas share the key. `None` on a gateway whose instances
    /// never ask their clients anything, which posts none of these.
    keyring: Option<Arc<Keyring>>,
    /// The relayed retries this replica is resuming, by token, so the relaying replica can
    /// withdraw them (`retry.rs`).
    resuming: retry::Resuming,
    /// How long a relayed retry may run here: the gateway's call timeout, which ended the
    /// relaying replica's wait by then (a withdrawal it could not post does not keep the
    /// upstream call for ever).
    resume_for: Duration,
}

/// What became of an answer posted for another replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Posted,
    /// The session has [`ANSWERS_PER_SESSION`] answers waiting already.
    Full,
}

/// What one read of the posted signals found for this replica.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Calls held here that were cancelled.
    pub cancelled: usize,
    /// Answers to questions of this replica, by session, taken out of the table.
    pub answers: Vec<(String, ClientJsonRpcMessage)>,
}

// === impl InFlight ===

impl InFlight {
    /// Registers the call `id` of `session`, cancelled through `cancel`; `None` when the session
    /// already has a call with this id in flight here.
    pub fn register(
        &self,
        session: &str,
        id: RequestId,
        cancel: CancellationToken,
        served: Served,
    ) -> Option<Registration> {
        let key = (session.to_owned(), id);
        let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        match self.0.entry(key.clone()) {
            Entry::Occupied(_) => None,
            Entry::Vacant(slot) => {
                slot.insert(Call {
                    cancel,
                    served,
                    generation,
                });
                Some(Registration {
                    in_flight: self.clone(),
                    key,
                    generation,
                })
            }
        }
    }

    /// Cancels the call `id` of `session` when this replica runs it, and says which path serves
    /// it.
    pub fn cancel(&self, session: &str, id: &RequestId) -> Option<Served> {
        let (_, call) = self.0.remove(&(session.to_owned(), id.clone()))?;
        call.cancel.cancel();
        Some(call.served)
    }

    /// The calls held here, by the (session, stored request key) a posted row names them with.
    fn by_stored_key(&self) -> HashMap<(String, String), (String, RequestId)> {
        self.0
            .iter()
            .map(|entry| {
                let (session, id) = entry.key();
                (
                    (session.clone(), request_key(id)),
                    (session.clone(), id.clone()),
                )
            })
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// === impl Registration ===

impl Registration {
    pub fn session_id(&self) -> &str {
        &self.key.0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let generation = self.generation;
        self.in_flight
            .0
            .remove_if(&self.key, |_, call| call.generation == generation);
    }
}

// === impl SignalRelay ===

impl SignalRelay {
    pub fn new(storage: Storage, keyring: Option<Arc<Keyring>>) -> Self {
        Self {
            storage,
            in_flight: InFlight::default(),
            keyring,
            resuming: retry::Resuming::default(),
            resume_for: Duration::from_secs(60),
        }
    }

    /// Bounds each relayed retry resumed here by `call_timeout`.
    pub fn with_call_timeout(mut self, call_timeout: Duration) -> Self {
        self.resume_for = call_timeout;
        self
    }

    /// `body` as row (`session`, `kind`, `key`) stores it: sealed, and bound to that row.
    fn seal(&self, kind: &str, session: &str, key: &str, body: &str) -> String {
        match &self.keyring {
            Some(keyring) => keyring.seal(body.as_bytes(), &row_context(kind, session, key)),
            None => body.to_owned(),
        }
    }

    /// The body a row stored; `None` when it does not open as that row's.
    fn open(&self, kind: &str, session: &str, key: &str, stored: String) -> Option<String> {
        match &self.keyring {
            Some(keyring) => keyring
                .open(&stored, &row_context(kind, session, key))
                .ok()
                .and_then(|plain| String::from_utf8(plain).ok()),
            None => Some(stored),
        }
    }

    /// Posts the row (`session`, `kind`, `key`) with `body` sealed; an existing one is kept.
    /// Returns whether it was written.
    async fn post(
        &self,
        session: &str,
        kind: &str,
        key: &str,
        body: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO mcp_signals (session_id, kind, request_id, body, posted_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (session_id, kind, request_id) DO NOTHING",
        )
        .bind(session)
        .bind(kind)
        .bind(key)
        .bind(self.seal(kind, session, key, body))
        .bind(now_ms())
        .execute(self.storage.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes the row (`session`, `kind`, `key`) out of the table and returns its body, opened;
    /// once, however many replicas try. `Some(None)`: the row was there with no body that
    /// opens.
    async fn take(
        &self,
        session: &str,
        kind: &str,
        key: &str,
    ) -> Result<Option<Option<String>>, sqlx::Error> {
        let taken: Option<(Option<String>,)> = sqlx::query_as(
            "DELETE FROM mcp_signals WHERE session_id = $1 AND kind = $2 AND request_id = $3
             RETURNING body",
        )
        .bind(session)
        .bind(kind)
        .bind(key)
        .fetch_optional(self.storage.pool())
        .await?;
        Ok(taken.map(|(body,)| body.and_then(|body| self.open(kind, session, key, body))))
    }

    /// Where the session calls this replica runs register, for cancellations to find them.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Records that the client cancelled call `id` of `session`, for the replica running it.
    pub async fn post_cancel(&self, session: &str, id: &RequestId) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO mcp_signals (session_id, kind, request_id, body, posted_ms)
             VALUES ($1, $2, $3, NULL, $4)
             ON CONFLICT (session_id, kind, request_id) DO NOTHING",
        )
        .bind(session)
        .bind(CANCEL)
        .bind(request_key(id))
        .bind(now_ms())
        .execute(self.storage.pool())
        .await?;
        Ok(())
    }

    /// Records the client's answer `body` (a JSON-RPC response or error) to the question `id`
    /// of `session`, which another replica asked. A repeated answer is kept once.
    pub async fn post_answer(
        &self,
        session: &str,
        id: &RequestId,
        body: &str,
    ) -> Result<Posted, sqlx::Error> {
        let key = request_key(id);
        // Counted and written in one statement, so answers posted at once on SQLite (one
        // writer) cannot all see room; on PostgreSQL concurrent posts of one session may each
        // see the same count, which the session's own concurrent requests bound.
        let done = sqlx::query(
            "INSERT INTO mcp_signals (session_id, kind, request_id, body, posted_ms)
             SELECT $1, $2, $3, $4, $5
             WHERE (SELECT COUNT(*) FROM mcp_signals WHERE session_id = $1 AND kind = $2) < $6
             ON CONFLICT (session_id, kind, request_id) DO NOTHING",
        )
        .bind(session)
        .bind(ANSWER)
        .bind(&key)
        .bind(self.seal(ANSWER, session, &key, body))
        .bind(now_ms())
        .bind(ANSWERS_PER_SESSION)
        .execute(self.storage.pool())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(Posted::Posted);
        }
        // Nothing written: the same answer waits already, or the session has no room.
        let (already,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM mcp_signals
             WHERE session_id = $1 AND kind = $2 AND request_id = $3",
        )
        .bind(session)
        .bind(ANSWER)
        .bind(&key)
        .fetch_one(self.storage.pool())
        .await?;
        Ok(if already > 0 {
            Posted::Posted
        } else {
            Posted::Full
        })
    }

    /// Cancels the calls held here that were cancelled on other replicas, and takes the answers
    /// to this replica's questions (`questions`) posted on others. Asks the database only while
    /// session calls or questions are in flight here.
    pub async fn deliver(&self, questions: &Questions) -> Result<Delivered, sqlx::Error> {
        let mut delivered = Delivered::default();
        if !self.in_flight.is_empty() {
            delivered.cancelled = self.deliver_cancellations().await?;
        }
        if questions.any_waiting() {
            delivered.answers = self.take_answers(questions).await?;
        }
        Ok(delivered)
    }

    async fn deliver_cancellations(&self) -> Result<usize, sqlx::Error> {
        let since = now_ms() - i64::try_from(LOOKBACK.as_millis()).unwrap_or(i64::MAX);
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT session_id, request_id FROM mcp_signals
             WHERE kind = $1 AND posted_ms >= $2 ORDER BY posted_ms DESC LIMIT $3",
        )
        .bind(CANCEL)
        .bind(since)
        .bind(READ_LIMIT)
        .fetch_all(self.storage.pool())
        .await?;
        let held = self.in_flight.by_stored_key();
        let mut cancelled = 0;
        for row in rows {
            if let Some((session, id)) = held.get(&row)
                && self.in_flight.cancel(session, id).is_some()
            {
                cancelled += 1;
            }
        }
        Ok(cancelled)
    }

    /// Takes the posted answers whose ids name this replica. No lookback: an answer waits for
    /// its question's replica however late it reads (until pruned). Each is deleted as it is
    /// read, so it is delivered once even if two reads overlap.
    async fn take_answers(
        &self,
        questions: &Questions,
    ) -> Result<Vec<(String, ClientJsonRpcMessage)>, sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT session_id, request_id FROM mcp_signals
             WHERE kind = $1 AND request_id LIKE $2 ORDER BY posted_ms LIMIT $3",
        )
        .bind(ANSWER)
        .bind(format!("{}%", questions.stored_prefix()))
        .bind(READ_LIMIT)
        .fetch_all(self.storage.pool())
        .await?;
        let mut answers = Vec::with_capacity(rows.len());
        for (session, key) in rows {
            // The answers taken out already are delivered; the rest wait for the next read.
            let taken = match self.take(&session, ANSWER, &key).await {
                Ok(taken) => taken,
                Err(error) => {
                    tracing::warn!(%error, "cannot take an answer posted by another replica");
                    break;
                }
            };
            // Read by an overlapping read already; or a body that is no client message (or
            // does not open), which the posting replica checked and sealed, so only the
            // database could have changed it.
            match taken {
                Some(Some(body)) => {
                    if let Ok(message) = serde_json::from_str::<ClientJsonRpcMessage>(&body) {
                        answers.push((session, message));
                    }
                }
                Some(None) => tracing::warn!(
                    "an answer relayed by another replica does not open with this replica's \
                     key: replicas must share MANIFOLD_SECRET_KEY"
                ),
                None => {}
            }
        }
        Ok(answers)
    }

    /// Deletes posted signals older than [`KEEP`]; returns how many.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        let cutoff = now_ms() - i64::try_from(KEEP.as_millis()).unwrap_or(i64::MAX);
        let done = sqlx::query("DELETE FROM mcp_signals WHERE posted_ms < $1")
            .bind(cutoff)
            .execute(self.storage.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Delivers posted signals every [`POLL_EVERY`] — answers to `sessions`, rmcp's sessions
    /// of this replica, whose questions they answer; retries to the instances of `catalog`
    /// that hold calls — and prunes them every [`KEEP`], until `stop`.
    pub fn spawn(
        self: Arc<Self>,
        sessions: Arc<SharedSessionManager>,
        catalog: watch::Receiver<Arc<Catalog>>,
        stop: CancellationToken,
    ) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(POLL_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pruned = tokio::time::Instant::now();
            // One warning per outage, not five a second.
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = stop.cancelled() => return,
                }
                let delivered = match self.deliver(sessions.questions()).await {
                    Ok(delivered) => self.retries(&catalog).await.map(|()| delivered),
                    Err(error) => Err(error),
                };
                match delivered {
                    Ok(delivered) => {
                        if delivered.cancelled > 0 {
                            tracing::info!(
                                cancelled = delivered.cancelled,
                                "stopped calls cancelled through another replica"
                            );
                        }
                        for (session, answer) in delivered.answers {
                            // The session ended here meanwhile: its question went with it.
                            // rmcp's error names the session, whose id is not for the log.
                            if sessions
                                .accept_message(&session.into(), answer)
                                .await
                                .is_err()
                            {
                                tracing::info!(
                                    "an answer relayed by another replica found its session gone"
                                );
                            }
                        }
                        if std::mem::take(&mut failing) {
                            tracing::info!("reading posted signals works again");
                        }
                    }
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "cannot read the signals posted by other replicas");
                    }
                    Err(_) => {}
                }
                if pruned.elapsed() >= KEEP {
                    pruned = tokio::time::Instant::now();
                    if let Err(error) = self.prune().await {
                        tracing::warn!(%error, "cannot prune posted signals");
                    }
                }
            }
        });
    }
}

/// What a row's sealed body is bound to.
fn row_context(kind: &str, session: &str, key: &str) -> String {
    format!(
        "mcp-signal|{}:{kind}|{}:{session}|{}:{key}",
        kind.len(),
        session.len(),
        key.len()
    )
}

/// A request id as stored: its JSON text (so `7` and `"7"` stay apart), or for a long id the
/// SHA-256 of that text.
fn request_key(id: &RequestId) -> String {
    let text = serde_json::to_string(id).unwrap_or_default();
    if text.len() <= KEY_MAX {
        text
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rmcp::model::NumberOrString;

    use super::*;

    /// Two replicas' relays over one SQLite database.
    async fn replicas() -> (tempfile::TempDir, SignalRelay, SignalRelay) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path()).await.unwrap();
        // One key for both, as replicas share it.
        let keyring = Arc::new(Keyring::load(None, &dir.path().join("secret.key"), true).unwrap());
        let a = SignalRelay::new(storage.clone(), Some(keyring.clone()));
        let b = SignalRelay::new(storage, Some(keyring));
        (dir, a, b)
    }

    #[tokio::test]
    async fn a_cancellation_posted_on_one_replica_cancels_the_call_on_the_other() {
        let (_dir, a, b) = replicas().await;
        let token = CancellationToken::new();
        let id = NumberOrString::Number(7);
        let held = a
            .in_flight()
            .register("s1", id.clone(), token.clone(), Served::FastPath)
            .unwrap();
        // Another session's call with the same id, and the same id as a string, stay untouched.
        let other = CancellationToken::new();
        let _other = a
            .in_flight()
            .register("s2", id.clone(), other.clone(), Served::Rmcp)
            .unwrap();
        let string = CancellationToken::new();
        let _string = a
            .in_flight()
            .register(
                "s1",
                NumberOrString::String("7".into()),
                string.clone(),
                Served::Rmcp,
            )
            .unwrap();

        assert_eq!(b.in_flight().cancel("s1", &id), None, "not held on b");
        b.post_cancel("s1", &id).await.unwrap();
        b.post_cancel("s1", &id).await.unwrap(); // a repeated cancellation is one row
        assert_eq!(
            b.deliver(&Questions::new()).await.unwrap().cancelled,
            0,
            "b holds nothing"
        );
        assert_eq!(a.deliver(&Questions::new()).await.unwrap().cancelled, 1);
        assert!(token.is_cancelled());
        assert!(!other.is_cancelled() && !string.is_cancelled());
        assert_eq!(
            a.deliver(&Questions::new()).await.unwrap().cancelled,
            0,
            "delivered once"
        );
        drop(held);
        // The others are still registered, and a local cancel says who answers it.
        assert_eq!(a.in_flight().cancel("s2", &id), Some(Served::Rmcp));
        assert!(other.is_cancelled());
    }

    #[tokio::test]
    async fn a_cancellation_posted_just_before_the_call_registered_still_reaches_it() {
        let (_dir, a, b) = replicas().await;
        // A long string id is stored as a digest and still found.
        let id = NumberOrString::String("x".repeat(5000).into());
        b.post_cancel("s1", &id).await.unwrap();
        let stored: (String,) = sqlx::query_as("SELECT request_id FROM mcp_signals")
            .fetch_one(b.storage.pool())
            .await
            .unwrap();
        assert!(stored.0.starts_with("sha256:") && stored.0.len() < 80);
        let token = CancellationToken::new();
        let _held = a
            .in_flight()
            .register("s1", id, token.clone(), Served::FastPath)
            .unwrap();
        assert_eq!(a.deliver(&Questions::new()).await.unwrap().cancelled, 1);
        assert!(token.is_cancelled());
    }

    #[tokio::test]
    async fn a_cancellation_older_than_the_lookback_is_not_read_and_is_pruned() {
        let (_dir, a, b) = replicas().await;
        let id = NumberOrString::Number(1);
        b.post_cancel("s1", &id).await.unwrap();
        sqlx::query("UPDATE mcp_signals SET posted_ms = posted_ms - 15000")
            .execute(b.storage.pool())
            .await
            .unwrap();
        let token = CancellationToken::new();
        let _held = a
            .in_flight()
            .register("s1", id.clone(), token.clone(), Served::FastPath)
            .unwrap();
        assert_eq!(a.deliver(&Questions::new()).await.unwrap().cancelled, 0);
        assert!(!token.is_cancelled());
        assert_eq!(b.prune().await.unwrap(), 0, "kept for a while");
        sqlx::query("UPDATE mcp_signals SET posted_ms = 0")
            .execute(b.storage.pool())
            .await
            .unwrap();
        assert_eq!(b.prune().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn an_answer_posted_on_one_replica_is_taken_once_by_the_replica_that_asked() {
        let (_dir, a, b) = replicas().await;
        let (asker, other) = (Questions::new(), Questions::new());
        let ours = asker.outward(&NumberOrString::Number(0));
        let theirs = other.outward(&NumberOrString::Number(0));
        assert!(asker.is_ours(&ours) && other.is_another_replicas(&ours));
        assert!(!asker.is_ours(&NumberOrString::Number(0)));
        let body = |id: &RequestId| {
            serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"action": "decline"}})
                .to_string()
        };
        for id in [&ours, &theirs] {
            assert_eq!(
                b.post_answer("s1", id, &body(id)).await.unwrap(),
                Posted::Posted
            );
        }
        // A repeated answer is one row.
        b.post_answer("s1", &ours, &body(&ours)).await.unwrap();
        let taken = a.take_answers(&asker).await.unwrap();
        assert_eq!(taken.len(), 1, "only the answer to its own question");
        assert_eq!(taken[0].0, "s1");
        assert!(matches!(&taken[0].1, ClientJsonRpcMessage::Response(r) if r.id == ours));
        assert!(
            a.take_answers(&asker).await.unwrap().is_empty(),
            "taken once"
        );
        assert_eq!(b.take_answers(&other).await.unwrap().len(), 1);
        // Nothing is read while no question waits here.
        b.post_answer("s1", &ours, &body(&ours)).await.unwrap();
        assert!(a.deliver(&asker).await.unwrap().answers.is_empty());
    }

    #[tokio::test]
    async fn a_session_cannot_fill_the_table_with_answers() {
        let (_dir, _a, b) = replicas().await;
        let other = Questions::new();
        for n in 0..ANSWERS_PER_SESSION {
            let id = other.outward(&NumberOrString::Number(n));
            let body = format!(r#"{{"jsonrpc":"2.0","id":"{id}","result":{{}}}}"#);
            assert_eq!(
                b.post_answer("s1", &id, &body).await.unwrap(),
                Posted::Posted
            );
        }
        let id = other.outward(&NumberOrString::Number(999));
        assert_eq!(b.post_answer("s1", &id, "{}").await.unwrap(), Posted::Full);
        // Another session has room of its own.
        assert_eq!(
            b.post_answer("s2", &id, "{}").await.unwrap(),
            Posted::Posted
        );
        // Cancellations are not answers.
        b.post_cancel("s1", &NumberOrString::Number(1))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn answers_are_sealed_at_rest_and_open_only_as_their_own_row() {
        let (_dir, a, b) = replicas().await;
        let asker = Questions::new();
        let (one, two) = (
            asker.outward(&NumberOrString::Number(1)),
            asker.outward(&NumberOrString::Number(2)),
        );
        for id in [&one, &two] {
            let body = serde_json::json!({"jsonrpc": "2.0", "id": id,
                "result": {"action": "accept", "content": {"name": "Ada Lovelace"}}});
            b.post_answer("s1", id, &body.to_string()).await.unwrap();
        }
        let stored: Vec<(String,)> = sqlx::query_as("SELECT body FROM mcp_signals")
            .fetch_all(b.storage.pool())
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert!(
            stored.iter().all(|(body,)| !body.contains("Ada")),
            "{stored:?}"
        );
        // Row one's body, copied onto row two, does not open there.
        let (first,): (String,) =
            sqlx::query_as("SELECT body FROM mcp_signals WHERE request_id = $1")
                .bind(request_key(&one))
                .fetch_one(b.storage.pool())
                .await
                .unwrap();
        sqlx::query("UPDATE mcp_signals SET body = $1 WHERE request_id = $2")
            .bind(&first)
            .bind(request_key(&two))
            .execute(b.storage.pool())
            .await
            .unwrap();
        let taken = a.take_answers(&asker).await.unwrap();
        assert_eq!(taken.len(), 1, "only the row the body was sealed for");
        assert!(matches!(&taken[0].1, ClientJsonRpcMessage::Response(r) if r.id == one));
    }

    #[tokio::test]
    async fn answers_posted_at_once_never_overfill_a_session() {
        let (_dir, _a, b) = replicas().await;
        let b = Arc::new(b);
        let other = Questions::new();
        let posts = (0..4 * ANSWERS_PER_SESSION).map(|n| {
            let b = b.clone();
            let id = other.outward(&NumberOrString::Number(n));
            tokio::spawn(async move { b.post_answer("s1", &id, "{}").await.unwrap() })
        });
        let outcomes = futures::future::join_all(posts).await;
        let posted = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(Posted::Posted)))
            .count();
        assert_eq!(posted, usize::try_from(ANSWERS_PER_SESSION).unwrap());
    }

    #[test]
    fn a_call_registers_once_and_leaves_when_it_ends() {
        let in_flight = InFlight::default();
        let id = NumberOrString::Number(3);
        let first = in_flight
            .register("s", id.clone(), CancellationToken::new(), Served::FastPath)
            .unwrap();
        assert!(
            in_flight
                .register("s", id.clone(), CancellationToken::new(), Served::FastPath)
                .is_none()
        );
        assert_eq!(first.session_id(), "s");
        drop(first);
        assert_eq!(in_flight.cancel("s", &id), None);

        // A cancelled call that is still winding down leaves a newer call's entry alone.
        let cancelled = in_flight
            .register("s", id.clone(), CancellationToken::new(), Served::FastPath)
            .unwrap();
        assert_eq!(in_flight.cancel("s", &id), Some(Served::FastPath));
        let newer = CancellationToken::new();
        let _newer = in_flight
            .register("s", id.clone(), newer.clone(), Served::FastPath)
            .unwrap();
        drop(cancelled);
        assert_eq!(in_flight.cancel("s", &id), Some(Served::FastPath));
        assert!(newer.is_cancelled());
    }
}
