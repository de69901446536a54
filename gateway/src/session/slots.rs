//! Per-user session slots, reserved in the shared database so `server.max_sessions_per_user`
//! holds across every replica.
//!
//! Counting a user's sessions and then creating one is a race: replicas that count at the same
//! time all see room and all add a session. So an `initialize` first reserves a slot, in one
//! transaction serialized per user: it counts the user's live sessions plus the reservations
//! still held, and adds a reservation only when the sum is under the cap. PostgreSQL serializes
//! the transactions of one user with a transaction-scoped advisory lock on a hash of the user
//! (other users are not held up); SQLite serializes every writer anyway, and `BEGIN IMMEDIATE`
//! takes the write lock before the count rather than at the insert, which would fail instead of
//! wait. Once rmcp has stored the session, one more transaction turns the reservation into the
//! session's owner row, so the session is counted exactly once throughout.
//!
//! A reservation whose `initialize` ends without a session (an error, the client gone) is
//! deleted by its guard; one left by a replica that died mid-`initialize` stops counting after
//! [`RESERVATION_HOLD`]. An `initialize` slower than that could see its slot taken meanwhile;
//! initializes take milliseconds.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};

use crate::storage::Storage;

/// How long a reservation counts without becoming a session.
pub const RESERVATION_HOLD: Duration = Duration::from_secs(60);

/// The outcome of asking for a slot.
#[derive(Debug)]
pub enum Reserved {
    /// A slot is held until the session exists ([`SessionSlots::confirm`]) or the guard drops.
    Slot(Reservation),
    /// The user is at the cap: `open` sessions (and slots being opened) already.
    Full { open: usize },
}

/// The slots of every user, in the shared database.
#[derive(Debug, Clone)]
pub struct SessionSlots {
    storage: Storage,
    max: usize,
}

/// A held slot. Dropped before [`SessionSlots::confirm`], it gives the slot back.
#[derive(Debug)]
pub struct Reservation {
    id: String,
    sub: String,
    /// `None` once confirmed: nothing left to give back.
    storage: Option<Storage>,
}

// === impl SessionSlots ===

impl SessionSlots {
    pub fn new(storage: Storage, max: usize) -> Self {
        Self { storage, max }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Reserves a slot of `user` if the user has fewer than the cap, atomically with the count.
    pub async fn reserve(&self, user: &str) -> Result<Reserved, sqlx::Error> {
        let now = now_secs();
        let mut tx = self.begin_for(user).await?;
        // Reservations whose replica never confirmed nor released them.
        sqlx::query("DELETE FROM mcp_session_reservations WHERE sub = $1 AND expires_at <= $2")
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // One statement, so one snapshot: a slot confirmed meanwhile is seen as a reservation
        // or as a session, never as neither.
        let (open,): (i64,) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM auth_session_owners o
                     JOIN mcp_sessions s ON s.id = o.session_id WHERE o.sub = $1)
                  + (SELECT COUNT(*) FROM mcp_session_reservations WHERE sub = $1)",
        )
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        let open = usize::try_from(open).unwrap_or(usize::MAX);
        if open >= self.max {
            tx.rollback().await?;
            return Ok(Reserved::Full { open });
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let hold = i64::try_from(RESERVATION_HOLD.as_secs()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO mcp_session_reservations (id, sub, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&id)
        .bind(user)
        .bind(now.saturating_add(hold))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Reserved::Slot(Reservation {
            id,
            sub: user.to_owned(),
            storage: Some(self.storage.clone()),
        }))
    }

    /// Turns `reservation` into the owner row of `session`, in one transaction: the slot is
    /// counted as a reservation until the moment it is counted as a session.
    pub async fn confirm(
        &self,
        mut reservation: Reservation,
        session: &str,
    ) -> Result<(), sqlx::Error> {
        // Under the user's lock too, so no count runs across the swap.
        let mut tx = self.begin_for(&reservation.sub).await?;
        sqlx::query("DELETE FROM mcp_session_reservations WHERE id = $1")
            .bind(&reservation.id)
            .execute(&mut *tx)
            .await?;
        crate::auth::store::insert_session_owner(&mut *tx, session, &reservation.sub).await?;
        tx.commit().await?;
        reservation.storage = None;
        Ok(())
    }

    /// A transaction that holds `user`'s slots until it ends.
    async fn begin_for(&self, user: &str) -> Result<Transaction<'static, Any>, sqlx::Error> {
        if self.storage.is_sqlite() {
            return self.storage.pool().begin_with("BEGIN IMMEDIATE").await;
        }
        let mut tx = self.storage.pool().begin().await?;
        // The lock function returns `void`, which the Any driver cannot decode: count its row.
        sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
            .bind(lock_key(user))
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// The advisory lock key of `user`'s slots: the same on every replica, and namespaced so it
/// does not meet a lock taken for anything else.
fn lock_key(user: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"manifold:session-slots:")
        .chain_update(user.as_bytes())
        .finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(head)
}

fn now_secs() -> i64 {
    crate::auth::store::now()
}

// === impl Reservation ===

impl Drop for Reservation {
    fn drop(&mut self) {
        let Some(storage) = self.storage.take() else {
            return;
        };
        // Drop cannot wait for the database; a delete that fails or never runs (no runtime)
        // leaves a reservation that stops counting after RESERVATION_HOLD.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let id = std::mem::take(&mut self.id);
        runtime.spawn(async move {
            let released = sqlx::query("DELETE FROM mcp_session_reservations WHERE id = $1")
                .bind(id)
                .execute(storage.pool())
                .await;
            if let Err(error) = released {
                tracing::warn!(%error, "cannot release a session slot; it expires by itself");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn slots(max: usize) -> (tempfile::TempDir, SessionSlots) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path()).await.unwrap();
        (dir, SessionSlots::new(storage, max))
    }

    async fn add_session(slots: &SessionSlots, id: &str) {
        sqlx::query("INSERT INTO mcp_sessions (id, state, updated_at) VALUES ($1, '{}', 0)")
            .bind(id)
            .execute(slots.storage.pool())
            .await
            .unwrap();
    }

    fn slot(reserved: Reserved) -> Reservation {
        match reserved {
            Reserved::Slot(slot) => slot,
            Reserved::Full { open } => panic!("refused with {open} open"),
        }
    }

    #[tokio::test]
    async fn reservations_and_sessions_share_the_cap_and_a_confirmed_slot_counts_once() {
        let (_dir, slots) = slots(2).await;
        let first = slot(slots.reserve("alice").await.unwrap());
        let _second = slot(slots.reserve("alice").await.unwrap());
        assert!(matches!(
            slots.reserve("alice").await.unwrap(),
            Reserved::Full { open: 2 }
        ));
        assert!(
            matches!(slots.reserve("bob").await.unwrap(), Reserved::Slot(_)),
            "another user has slots of their own"
        );
        add_session(&slots, "s1").await;
        slots.confirm(first, "s1").await.unwrap();
        assert!(matches!(
            slots.reserve("alice").await.unwrap(),
            Reserved::Full { open: 2 }
        ));
        sqlx::query("DELETE FROM mcp_sessions WHERE id = 's1'")
            .execute(slots.storage.pool())
            .await
            .unwrap();
        let _third = slot(slots.reserve("alice").await.unwrap());
    }

    #[tokio::test]
    async fn a_dropped_reservation_gives_its_slot_back() {
        let (_dir, slots) = slots(1).await;
        drop(slot(slots.reserve("alice").await.unwrap()));
        for _ in 0..100 {
            if let Reserved::Slot(_) = slots.reserve("alice").await.unwrap() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the slot never came back");
    }

    #[tokio::test]
    async fn an_expired_reservation_stops_counting() {
        let (_dir, slots) = slots(1).await;
        let held = slot(slots.reserve("alice").await.unwrap());
        sqlx::query("UPDATE mcp_session_reservations SET expires_at = 0")
            .execute(slots.storage.pool())
            .await
            .unwrap();
        let _next = slot(slots.reserve("alice").await.unwrap());
        drop(held);
    }

    #[tokio::test]
    async fn a_database_that_fails_grants_no_slot() {
        let (_dir, slots) = slots(5).await;
        slots.storage.pool().close().await;
        assert!(slots.reserve("alice").await.is_err());
    }

    #[test]
    fn lock_keys_differ_per_user_and_agree_across_calls() {
        assert_eq!(lock_key("alice"), lock_key("alice"));
        assert_ne!(lock_key("alice"), lock_key("bob"));
    }
}
