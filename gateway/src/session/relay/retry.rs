//! Retries of 2026-07-28 clients relayed to the replica holding their call. An instance that
//! holds a call open upstream between its client's rounds names itself in the round's state
//! (`manifold_adapters::HeldCalls::holder`); a retry reaching another replica is posted as a
//! `resume` row addressed to that holder, which the holding replica takes while it holds calls,
//! resumes, and answers with a `resumed` row the relaying replica takes. When the relaying
//! replica stops waiting (its client went away, or the call timed out), it withdraws the retry:
//! deleted if not yet taken, else a `withdraw` row stops the resuming task, which withdraws the
//! upstream call as a local cancellation would. Bodies are the instance's own encoding, sealed
//! at rest like every client body the relay carries.

use std::sync::Arc;

use dashmap::DashMap;
use manifold_adapters::{Adapter, RelayRetry, ToolError};
use serde_json::Value;
use tokio::{sync::watch, task::AbortHandle, time::Instant};

use super::{
    OUTCOME_EVERY, READ_LIMIT, RESUME, RESUMED, SignalRelay, TAKEN_WITHIN, WITHDRAW, now_ms,
};
use crate::{router::Catalog, storage::Storage};

/// The relayed retries being resumed here, by token.
pub type Resuming = Arc<DashMap<String, AbortHandle>>;

/// A retry relayed and not yet answered: withdrawn when dropped unanswered.
struct Relayed {
    storage: Storage,
    holder: String,
    token: String,
    answered: bool,
}

// === impl SignalRelay ===

impl SignalRelay {
    /// Takes the retries relayed to the instances of `catalog` that hold calls here now, and
    /// stops those of them their relaying replica withdrew.
    pub(super) async fn retries(
        self: &Arc<Self>,
        catalog: &watch::Receiver<Arc<Catalog>>,
    ) -> Result<(), sqlx::Error> {
        let holders: Vec<Arc<dyn Adapter>> = catalog
            .borrow()
            .instances()
            .iter()
            .filter(|instance| instance.adapter.held().is_some_and(|held| held.holding()))
            .map(|instance| instance.adapter.clone())
            .collect();
        if !holders.is_empty() {
            let taken = self.deliver_retries(&holders).await?;
            if taken > 0 {
                tracing::debug!(
                    taken,
                    "resuming held calls for retries relayed by other replicas"
                );
            }
        }
        if !self.resuming.is_empty() {
            self.deliver_withdrawals().await?;
        }
        Ok(())
    }

    /// Takes the retries other replicas relayed to the calls `holders` hold here, and resumes
    /// each in a task of its own, which posts the outcome back. Returns how many it took.
    pub(super) async fn deliver_retries(
        self: &Arc<Self>,
        holders: &[Arc<dyn Adapter>],
    ) -> Result<usize, sqlx::Error> {
        let mut taken = 0;
        for adapter in holders {
            let Some(held) = adapter.held() else { continue };
            let holder = held.holder().to_owned();
            let tokens: Vec<(String,)> = sqlx::query_as(
                "SELECT request_id FROM mcp_signals
                 WHERE session_id = $1 AND kind = $2 ORDER BY posted_ms LIMIT $3",
            )
            .bind(&holder)
            .bind(RESUME)
            .bind(READ_LIMIT)
            .fetch_all(self.storage.pool())
            .await?;
            for (token,) in tokens {
                // Taken by an overlapping read already: that read resumes it.
                let Some(body) = self.take(&holder, RESUME, &token).await? else {
                    continue;
                };
                taken += 1;
                self.resume(adapter.clone(), holder.clone(), token, body);
            }
        }
        Ok(taken)
    }

    /// Resumes one relayed retry in a task of its own, registered in [`Resuming`] until it
    /// ends or is withdrawn.
    fn resume(
        self: &Arc<Self>,
        adapter: Arc<dyn Adapter>,
        holder: String,
        token: String,
        body: Option<String>,
    ) {
        let relay = self.clone();
        let key = token.clone();
        // The task starts once registered, so it cannot end (and leave) before it is.
        let (registered, start) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            if start.await.is_err() {
                return;
            }
            // A body that does not open is resumed as nothing: the instance answers that it
            // cannot read it, and the relaying replica hears so.
            if body.is_none() {
                tracing::warn!(
                    "a retry relayed by another replica does not open with this replica's key: \
                     replicas must share MANIFOLD_SECRET_KEY"
                );
            }
            let retry = body
                .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                .unwrap_or(Value::Null);
            let Some(held) = adapter.held() else { return };
            let outcome = tokio::time::timeout(relay.resume_for, held.resume_relayed(retry)).await;
            relay.resuming.remove(&token);
            // Past the call timeout the relaying replica stopped waiting: nothing to post.
            let Ok(outcome) = outcome else { return };
            if let Err(error) = relay
                .post(&holder, RESUMED, &token, &outcome.to_string())
                .await
            {
                tracing::warn!(%error, "cannot post the outcome of a relayed retry");
            }
        });
        self.resuming.insert(key, task.abort_handle());
        let _ = registered.send(());
    }

    /// Stops the resumed retries whose relaying replica withdrew them: dropping the resumption
    /// withdraws the upstream call.
    async fn deliver_withdrawals(&self) -> Result<(), sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT session_id, request_id FROM mcp_signals
             WHERE kind = $1 ORDER BY posted_ms DESC LIMIT $2",
        )
        .bind(WITHDRAW)
        .bind(READ_LIMIT)
        .fetch_all(self.storage.pool())
        .await?;
        for (holder, token) in rows {
            if let Some((_, task)) = self.resuming.remove(&token) {
                task.abort();
                self.take(&holder, WITHDRAW, &token).await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl RelayRetry for SignalRelay {
    /// Posts `retry` for `holder` and waits for its outcome. The wait ends with the gateway's
    /// call (its timeout, or the client's cancellation, drop this future, which withdraws the
    /// retry); a retry its holder has not taken within [`TAKEN_WITHIN`] is withdrawn and
    /// answered as a call no longer waiting.
    async fn relay(&self, holder: &str, retry: Value) -> Result<Value, ToolError> {
        let token = format!("{:032x}", rand::random::<u128>());
        self.post(holder, RESUME, &token, &retry.to_string())
            .await
            .map_err(unreachable)?;
        let mut relayed = Relayed {
            storage: self.storage.clone(),
            holder: holder.to_owned(),
            token: token.clone(),
            answered: false,
        };
        let posted = Instant::now();
        let mut taken = false;
        loop {
            tokio::time::sleep(OUTCOME_EVERY).await;
            if let Some(body) = self
                .take(holder, RESUMED, &token)
                .await
                .map_err(unreachable)?
            {
                relayed.answered = true;
                return body
                    .and_then(|body| serde_json::from_str(&body).ok())
                    .ok_or_else(|| {
                        ToolError::BadResponse(
                            "the replica holding the call answered something that does not open"
                                .into(),
                        )
                    });
            }
            if !taken && posted.elapsed() >= TAKEN_WITHIN {
                // Still untaken: withdrawn here, so a holder reading late cannot resume it.
                if self
                    .take(holder, RESUME, &token)
                    .await
                    .map_err(unreachable)?
                    .is_some()
                {
                    relayed.answered = true;
                    return Err(ToolError::InvalidArguments(
                        "the call these answers belong to is no longer waiting (no replica holds \
                         it any more); call the tool again"
                            .into(),
                    ));
                }
                taken = true;
            }
        }
    }
}

// === impl Relayed ===

impl Drop for Relayed {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let (storage, holder, token) = (
            self.storage.clone(),
            std::mem::take(&mut self.holder),
            std::mem::take(&mut self.token),
        );
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            // Not taken yet: deleting it is enough. Else the holder is told to stop.
            let untaken = sqlx::query(
                "DELETE FROM mcp_signals WHERE session_id = $1 AND kind = $2 AND request_id = $3",
            )
            .bind(&holder)
            .bind(RESUME)
            .bind(&token)
            .execute(storage.pool())
            .await;
            if matches!(&untaken, Ok(done) if done.rows_affected() > 0) {
                return;
            }
            let posted = sqlx::query(
                "INSERT INTO mcp_signals (session_id, kind, request_id, body, posted_ms)
                 VALUES ($1, $2, $3, NULL, $4)
                 ON CONFLICT (session_id, kind, request_id) DO NOTHING",
            )
            .bind(&holder)
            .bind(WITHDRAW)
            .bind(&token)
            .bind(now_ms())
            .execute(storage.pool())
            .await;
            if let Err(error) = posted {
                tracing::warn!(%error, "cannot withdraw a relayed retry");
            }
        });
    }
}

fn unreachable(error: sqlx::Error) -> ToolError {
    // The database's own words stay in the log.
    tracing::warn!(%error, "cannot relay a retry to the replica holding its call");
    ToolError::Unreachable("cannot relay the answers to the replica holding the call".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::{
        sync::atomic::{AtomicBool, Ordering},
        time::Duration,
    };

    use manifold_adapters::{CallContext, HeldCalls, ToolOutput, Tools};
    use serde_json::{Map, json};

    use super::*;
    use crate::keyring::Keyring;

    /// An instance holding calls: it echoes a retry, or resumes one for ever when asked to
    /// wait, noting when that resumption is dropped.
    #[derive(Default)]
    struct Holder {
        started: AtomicBool,
        dropped: Arc<AtomicBool>,
    }

    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[async_trait::async_trait]
    impl Adapter for Holder {
        fn tools(&self) -> Tools {
            Tools::Static(Vec::new())
        }

        async fn call(
            &self,
            tool: &str,
            _: Map<String, Value>,
            _: &CallContext,
        ) -> Result<ToolOutput, ToolError> {
            Err(ToolError::UnknownTool(tool.into()))
        }

        fn held(&self) -> Option<&dyn HeldCalls> {
            Some(self)
        }
    }

    #[async_trait::async_trait]
    impl HeldCalls for Holder {
        fn holder(&self) -> &str {
            "h1"
        }

        fn holding(&self) -> bool {
            true
        }

        async fn resume_relayed(&self, retry: Value) -> Value {
            self.started.store(true, Ordering::SeqCst);
            if retry["wait"] == true {
                let _dropped = Dropped(self.dropped.clone());
                std::future::pending::<()>().await;
            }
            json!({"echo": retry})
        }
    }

    async fn replicas() -> (tempfile::TempDir, Arc<SignalRelay>, Arc<SignalRelay>) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path()).await.unwrap();
        let keyring = Arc::new(Keyring::load(None, &dir.path().join("secret.key"), true).unwrap());
        let a = Arc::new(SignalRelay::new(storage.clone(), Some(keyring.clone())));
        let b = Arc::new(SignalRelay::new(storage, Some(keyring)));
        (dir, a, b)
    }

    /// Lets `holding` take what `relaying` posted, until `done`.
    async fn deliver_until(
        holding: &Arc<SignalRelay>,
        adapter: &Arc<dyn Adapter>,
        done: impl Fn() -> bool,
    ) {
        for _ in 0..100 {
            holding
                .deliver_retries(std::slice::from_ref(adapter))
                .await
                .unwrap();
            if !holding.resuming.is_empty() {
                holding.deliver_withdrawals().await.unwrap();
            }
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never done");
    }

    #[tokio::test]
    async fn a_relayed_retry_is_resumed_by_its_holder_and_the_outcome_comes_back() {
        let (_dir, a, b) = replicas().await;
        let adapter: Arc<dyn Adapter> = Arc::new(Holder::default());
        let relaying = tokio::spawn(async move { b.relay("h1", json!({"n": 1})).await });
        deliver_until(&a, &adapter, || relaying.is_finished()).await;
        assert_eq!(relaying.await.unwrap().unwrap(), json!({"echo": {"n": 1}}));
        // Nothing is left behind.
        let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mcp_signals")
            .fetch_one(a.storage.pool())
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[tokio::test]
    async fn a_retry_its_replica_stops_waiting_for_stops_being_resumed() {
        let (_dir, a, b) = replicas().await;
        let holder = Arc::new(Holder::default());
        let dropped = holder.dropped.clone();
        let adapter: Arc<dyn Adapter> = holder.clone();
        let relaying = tokio::spawn({
            let b = b.clone();
            async move { b.relay("h1", json!({"wait": true})).await }
        });
        deliver_until(&a, &adapter, || holder.started.load(Ordering::SeqCst)).await;
        // The client went away: the relaying replica's call is dropped.
        relaying.abort();
        deliver_until(&a, &adapter, || dropped.load(Ordering::SeqCst)).await;
        assert!(a.resuming.is_empty());

        // Withdrawn before the holder took it: it is never resumed.
        let holder = Arc::new(Holder::default());
        let adapter: Arc<dyn Adapter> = holder.clone();
        let relaying = tokio::spawn(async move { b.relay("h1", json!({"n": 2})).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        relaying.abort();
        let _ = relaying.await;
        for _ in 0..20 {
            let (rows,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM mcp_signals WHERE kind = $1")
                    .bind(RESUME)
                    .fetch_one(a.storage.pool())
                    .await
                    .unwrap();
            if rows == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            a.deliver_retries(&[adapter]).await.unwrap(),
            0,
            "nothing to take"
        );
        tokio::task::yield_now().await;
        assert!(!holder.started.load(Ordering::SeqCst));
    }
}
