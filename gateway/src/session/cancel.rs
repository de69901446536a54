//! Cancellation across replicas. A session's calls run on whichever replica received them, and
//! the `notifications/cancelled` naming one may land on any replica. Each replica registers the
//! session calls it runs ([`InFlight`]); a cancellation that finds no call here is posted to the
//! shared `mcp_cancellations` table, which every replica with session calls in flight reads every
//! [`POLL_EVERY`], cancelling the calls it holds ([`CancelRelay`]).
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
use rmcp::model::RequestId;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::storage::Storage;

/// How often a replica with session calls in flight reads the posted cancellations.
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
/// Posted cancellations are kept this long, then pruned.
const KEEP: Duration = Duration::from_secs(120);
/// Request ids are stored as their JSON text up to this length, longer ones as a digest, so
/// rows stay small (and within PostgreSQL's index entry limit) whatever id a client picks.
const KEY_MAX: usize = 64;

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

/// Posts cancellations for other replicas and delivers theirs to the calls this replica holds.
pub struct CancelRelay {
    storage: Storage,
    in_flight: InFlight,
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

// === impl CancelRelay ===

impl CancelRelay {
    pub fn new(storage: Storage) -> Self {
        Self {
            storage,
            in_flight: InFlight::default(),
        }
    }

    /// Where the session calls this replica runs register, for cancellations to find them.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Records that the client cancelled call `id` of `session`, for the replica running it.
    pub async fn post(&self, session: &str, id: &RequestId) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO mcp_cancellations (session_id, request_id, posted_ms) VALUES ($1, $2, $3)
             ON CONFLICT (session_id, request_id) DO NOTHING",
        )
        .bind(session)
        .bind(request_key(id))
        .bind(now_ms())
        .execute(self.storage.pool())
        .await?;
        Ok(())
    }

    /// Cancels the calls held here that were cancelled on other replicas; returns how many.
    /// Asks the database only while session calls are in flight here.
    pub async fn deliver(&self) -> Result<usize, sqlx::Error> {
        if self.in_flight.is_empty() {
            return Ok(0);
        }
        let since = now_ms() - i64::try_from(LOOKBACK.as_millis()).unwrap_or(i64::MAX);
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT session_id, request_id FROM mcp_cancellations
             WHERE posted_ms >= $1 ORDER BY posted_ms DESC LIMIT $2",
        )
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

    /// Deletes posted cancellations older than [`KEEP`]; returns how many.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        let cutoff = now_ms() - i64::try_from(KEEP.as_millis()).unwrap_or(i64::MAX);
        let done = sqlx::query("DELETE FROM mcp_cancellations WHERE posted_ms < $1")
            .bind(cutoff)
            .execute(self.storage.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Delivers posted cancellations every [`POLL_EVERY`], and prunes them every [`KEEP`],
    /// until `stop`.
    pub fn spawn(self: Arc<Self>, stop: CancellationToken) {
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
                match self.deliver().await {
                    Ok(cancelled) => {
                        if cancelled > 0 {
                            tracing::info!(
                                cancelled,
                                "stopped calls cancelled through another replica"
                            );
                        }
                        if std::mem::take(&mut failing) {
                            tracing::info!("reading posted cancellations works again");
                        }
                    }
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "cannot read posted cancellations");
                    }
                    Err(_) => {}
                }
                if pruned.elapsed() >= KEEP {
                    pruned = tokio::time::Instant::now();
                    if let Err(error) = self.prune().await {
                        tracing::warn!(%error, "cannot prune posted cancellations");
                    }
                }
            }
        });
    }
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
    async fn replicas() -> (tempfile::TempDir, CancelRelay, CancelRelay) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path()).await.unwrap();
        let a = CancelRelay::new(storage.clone());
        let b = CancelRelay::new(storage);
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
        b.post("s1", &id).await.unwrap();
        b.post("s1", &id).await.unwrap(); // a repeated cancellation is one row
        assert_eq!(b.deliver().await.unwrap(), 0, "b holds nothing");
        assert_eq!(a.deliver().await.unwrap(), 1);
        assert!(token.is_cancelled());
        assert!(!other.is_cancelled() && !string.is_cancelled());
        assert_eq!(a.deliver().await.unwrap(), 0, "delivered once");
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
        b.post("s1", &id).await.unwrap();
        let stored: (String,) = sqlx::query_as("SELECT request_id FROM mcp_cancellations")
            .fetch_one(b.storage.pool())
            .await
            .unwrap();
        assert!(stored.0.starts_with("sha256:") && stored.0.len() < 80);
        let token = CancellationToken::new();
        let _held = a
            .in_flight()
            .register("s1", id, token.clone(), Served::FastPath)
            .unwrap();
        assert_eq!(a.deliver().await.unwrap(), 1);
        assert!(token.is_cancelled());
    }

    #[tokio::test]
    async fn a_cancellation_older_than_the_lookback_is_not_read_and_is_pruned() {
        let (_dir, a, b) = replicas().await;
        let id = NumberOrString::Number(1);
        b.post("s1", &id).await.unwrap();
        sqlx::query("UPDATE mcp_cancellations SET posted_ms = posted_ms - 15000")
            .execute(b.storage.pool())
            .await
            .unwrap();
        let token = CancellationToken::new();
        let _held = a
            .in_flight()
            .register("s1", id.clone(), token.clone(), Served::FastPath)
            .unwrap();
        assert_eq!(a.deliver().await.unwrap(), 0);
        assert!(!token.is_cancelled());
        assert_eq!(b.prune().await.unwrap(), 0, "kept for a while");
        sqlx::query("UPDATE mcp_cancellations SET posted_ms = 0")
            .execute(b.storage.pool())
            .await
            .unwrap();
        assert_eq!(b.prune().await.unwrap(), 1);
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
