//! Cancellation across replicas. A session's calls run on whichever replica received them, and
//! the `notifications/cancelled` naming one may land on any replica. Each replica registers the
//! session calls it runs ([`InFlight`]); a cancellation that finds no call here is posted to the
//! shared `mcp_cancellations` table, which every replica with session calls in flight reads every
//! [`POLL_EVERY`], cancelling the calls it holds ([`CancelRelay`]).

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use dashmap::{DashMap, mapref::entry::Entry};
use rmcp::model::RequestId;
use tokio_util::sync::CancellationToken;

use crate::storage::Storage;

/// How often a replica with session calls in flight reads the posted cancellations.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How far back each read looks: far longer than the gap between reads, so a replica that was
/// slow to read misses nothing. Reading a row twice is harmless: a cancelled call has left
/// [`InFlight`].
const LOOKBACK: Duration = Duration::from_secs(30);
/// Posted cancellations are kept this long, then pruned by the session sweep.
const KEEP: Duration = Duration::from_secs(120);
/// A posted cancellation reaches calls that started at most this long after it was posted: the
/// clocks of two replicas differ a little, and a client may cancel a call on one replica before
/// the other has registered it. Request ids are never reused within a session, so an older row
/// cannot name a newer call of a well-behaved client.
const SKEW: Duration = Duration::from_secs(2);

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
    started_ms: i64,
    served: Served,
}

/// A call's place in [`InFlight`], given up when dropped, however the call ends (the client may
/// go away).
pub struct Registration {
    in_flight: InFlight,
    key: (String, RequestId),
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
        match self.0.entry(key.clone()) {
            Entry::Occupied(_) => None,
            Entry::Vacant(slot) => {
                slot.insert(Call {
                    cancel,
                    started_ms: now_ms(),
                    served,
                });
                Some(Registration {
                    in_flight: self.clone(),
                    key,
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

    /// Cancels the call when it started no later than [`SKEW`] after `posted_ms`.
    fn cancel_posted(&self, session: &str, id: &RequestId, posted_ms: i64) -> bool {
        let skew = i64::try_from(SKEW.as_millis()).unwrap_or(i64::MAX);
        let key = (session.to_owned(), id.clone());
        let Some((_, call)) = self
            .0
            .remove_if(&key, |_, call| call.started_ms <= posted_ms + skew)
        else {
            return false;
        };
        call.cancel.cancel();
        true
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
        self.in_flight.0.remove(&self.key);
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

    /// The calls this replica runs.
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
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT session_id, request_id, posted_ms FROM mcp_cancellations WHERE posted_ms >= $1",
        )
        .bind(since)
        .fetch_all(self.storage.pool())
        .await?;
        let mut cancelled = 0;
        for (session, request, posted_ms) in rows {
            // A row this build cannot read names no call it runs.
            let Ok(id) = serde_json::from_str::<RequestId>(&request) else {
                continue;
            };
            if self.in_flight.cancel_posted(&session, &id, posted_ms) {
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

    /// Delivers posted cancellations every [`POLL_EVERY`] until `stop`.
    pub fn spawn(self: Arc<Self>, stop: CancellationToken) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(POLL_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = stop.cancelled() => return,
                }
                match self.deliver().await {
                    Ok(0) => {}
                    Ok(cancelled) => {
                        tracing::info!(cancelled, "cancelled calls cancelled on another replica");
                    }
                    Err(error) => tracing::warn!(%error, "reading posted cancellations failed"),
                }
            }
        });
    }
}

/// A request id as stored: its JSON text, so `7` and `"7"` stay apart.
fn request_key(id: &RequestId) -> String {
    serde_json::to_string(id).unwrap_or_default()
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
        assert_eq!(a.in_flight().0.len(), 2);
    }

    #[tokio::test]
    async fn an_old_cancellation_does_not_reach_a_later_call_and_is_pruned() {
        let (_dir, a, b) = replicas().await;
        let id = NumberOrString::Number(1);
        b.post("s1", &id).await.unwrap();
        sqlx::query("UPDATE mcp_cancellations SET posted_ms = posted_ms - 10000")
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
    }
}
