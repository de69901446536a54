//! Requests in progress per session counted in Redis (`storage.redis_url`), so
//! `server.max_streams_per_session` holds for a session whatever replicas serve it.
//!
//! Each request in progress is a member of a sorted set per session, scored with a deadline.
//! One Lua script drops the members past their deadline, counts the rest and adds the new one
//! only under the cap, so concurrent requests on any replicas cannot pass it together. A
//! replica pushes its members' deadlines forward while their requests run (a GET stream may
//! stay open for hours) and removes a member when its request ends: the answer sent, or the
//! request's future dropped, since the slot is a guard. The members of a replica that died
//! expire after [`HOLD`]. A plain INCR/DECR counter with a TTL would either forget streams
//! older than the TTL or, with the TTL renewed, keep a dead replica's count for ever.
//!
//! Cost: one Redis round trip before each request that names a session (the script takes about
//! 0.1 ms on a local Redis), and a removal after it that the request does not wait for; renewal
//! runs beside the requests. Only with `storage.redis_url`. Deadlines use Redis's clock, so
//! replica clocks need not agree. If Redis fails, the request is counted on this replica alone
//! (as without Redis), and the failure is logged once until Redis answers again.

use std::{
    sync::{
        Arc, LazyLock, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use dashmap::DashMap;
use manifold_adapters::Secret;
use redis::{
    Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

/// How long a member counts without its replica renewing it.
pub const HOLD: Duration = Duration::from_secs(30);

/// Renewals per [`HOLD`]: a member survives two missed renewals.
const RENEWALS_PER_HOLD: u32 = 3;

/// A Redis URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("storage.redis_url: {0}")]
pub struct SharedStreamsError(#[from] redis::RedisError);

/// KEYS[1]: the session's set. ARGV: the cap, HOLD in ms, the new member. 1 if added, else 0.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// KEYS: sets; ARGV: one member per key, then HOLD in ms. Only members still present move
/// (`XX`), so a renewal racing a removal cannot bring the member back.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local hold = tonumber(ARGV[#ARGV])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + hold, ARGV[i])
  redis.call('PEXPIRE', key, hold)
end
return #KEYS
",
    )
});

/// The Redis side of the stream cap; clones share the connection and the held members.
#[derive(Clone)]
pub struct SharedStreams {
    conn: ConnectionManager,
    /// Members this replica holds, by member name: their set's key.
    held: Arc<DashMap<String, String>>,
    replica: Arc<str>,
    next: Arc<AtomicU64>,
    failing: Arc<AtomicBool>,
}

impl std::fmt::Debug for SharedStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStreams")
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

/// A member in Redis, removed when dropped.
pub struct SharedSlot {
    streams: SharedStreams,
    member: String,
}

// === impl SharedStreams ===

impl SharedStreams {
    /// A client of `url`, connecting on first use: Redis being down at start is handled like an
    /// outage later (counted per replica meanwhile). Starts the renewal of held members, which
    /// ends with the last clone.
    pub fn connect(url: &Secret) -> Result<Self, SharedStreamsError> {
        let client = redis::Client::open(url.expose())?;
        // A request waits at most this long for Redis before being counted here instead.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        let streams = Self {
            conn,
            held: Arc::default(),
            replica: uuid::Uuid::new_v4().simple().to_string().into(),
            next: Arc::default(),
            failing: Arc::default(),
        };
        tokio::spawn(renew(
            Arc::downgrade(&streams.held),
            streams.conn.clone(),
            streams.failing.clone(),
        ));
        Ok(streams)
    }

    /// Adds a member for a request of `session` if fewer than `max` are in progress: `Ok(None)`
    /// at the cap, `Err` when Redis cannot say.
    pub async fn acquire(
        &self,
        session: &str,
        max: usize,
    ) -> Result<Option<SharedSlot>, redis::RedisError> {
        let key = format!("manifold:streams:{session}");
        let member = format!(
            "{}:{}",
            self.replica,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        // Held before the script runs: the renewal may touch it early, which is harmless.
        self.held.insert(member.clone(), key.clone());
        let slot = SharedSlot {
            streams: self.clone(),
            member,
        };
        let added: Result<i64, _> = ACQUIRE
            .key(&key)
            .arg(max)
            .arg(hold_millis())
            .arg(&slot.member)
            .invoke_async(&mut self.conn.clone())
            .await;
        match added {
            Ok(1) => {
                self.answered();
                Ok(Some(slot))
            }
            Ok(_) => {
                self.answered();
                // Not added: nothing to remove.
                self.held.remove(&slot.member);
                Ok(None)
            }
            Err(error) => {
                self.failed(&error);
                Err(error)
            }
        }
    }

    fn answered(&self) {
        answered(&self.failing);
    }

    fn failed(&self, error: &redis::RedisError) {
        failed(&self.failing, error);
    }
}

fn answered(failing: &AtomicBool) {
    if failing.swap(false, Ordering::Relaxed) {
        tracing::info!("Redis answers again: streams per session are counted across replicas");
    }
}

fn failed(failing: &AtomicBool, error: &redis::RedisError) {
    if !failing.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            %error,
            "Redis is unavailable: streams per session are counted per replica until it answers"
        );
    }
}

fn hold_millis() -> u64 {
    u64::try_from(HOLD.as_millis()).unwrap_or(u64::MAX)
}

/// Pushes the deadlines of the members this replica holds forward, until `held` is gone.
async fn renew(
    held: Weak<DashMap<String, String>>,
    mut conn: ConnectionManager,
    failing: Arc<AtomicBool>,
) {
    let mut every = tokio::time::interval(HOLD / RENEWALS_PER_HOLD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(held) = held.upgrade() else {
            return;
        };
        if held.is_empty() {
            continue;
        }
        let mut invocation = RENEW.prepare_invoke();
        for entry in held.iter() {
            invocation.key(entry.value()).arg(entry.key());
        }
        drop(held);
        invocation.arg(hold_millis());
        match invocation.invoke_async::<i64>(&mut conn).await {
            Ok(_) => answered(&failing),
            Err(error) => failed(&failing, &error),
        }
    }
}

// === impl SharedSlot ===

impl Drop for SharedSlot {
    fn drop(&mut self) {
        let Some((member, key)) = self.streams.held.remove(&self.member) else {
            return;
        };
        // Drop cannot wait for Redis: the removal runs beside the request. One that fails leaves
        // the member to expire after HOLD, no longer renewed.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut conn = self.streams.conn.clone();
        runtime.spawn(async move {
            let removed = redis::cmd("ZREM")
                .arg(&key)
                .arg(&member)
                .query_async::<i64>(&mut conn)
                .await;
            if let Err(error) = removed {
                tracing::debug!(%error, "cannot remove a stream slot from Redis; it expires");
            }
        });
    }
}
