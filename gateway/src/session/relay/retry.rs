//! Retries of 2026-07-28 clients relayed to the replica holding their call. An instance that
//! holds a call open upstream between its client's rounds names itself in the round's state
//! (`manifold_adapters::HeldCalls::holder`); a retry reaching another replica is posted as a
//! `resume` row addressed to that holder, which the holding replica takes while it holds calls,
//! resumes, and answers with a `resumed` row the relaying replica takes. Both bodies are the
//! instance's own encoding, sealed at rest like every client body the relay carries.

use std::sync::Arc;

use manifold_adapters::{Adapter, RelayRetry, ToolError};
use serde_json::Value;
use tokio::time::Instant;

use super::{OUTCOME_EVERY, READ_LIMIT, RESUME, RESUMED, SignalRelay, TAKEN_WITHIN};

// === impl SignalRelay ===

impl SignalRelay {
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
                let relay = self.clone();
                let adapter = adapter.clone();
                let holder = holder.clone();
                tokio::spawn(async move {
                    let retry = body.and_then(|body| serde_json::from_str::<Value>(&body).ok());
                    // A body that does not open is resumed as nothing: the instance answers
                    // that it cannot read it, and the relaying replica hears so.
                    let outcome = match (adapter.held(), retry) {
                        (Some(held), Some(retry)) => held.resume_relayed(retry).await,
                        (Some(held), None) => held.resume_relayed(Value::Null).await,
                        (None, _) => Value::Null,
                    };
                    if let Err(error) = relay
                        .post(&holder, RESUMED, &token, &outcome.to_string())
                        .await
                    {
                        tracing::warn!(%error, "cannot post the outcome of a relayed retry");
                    }
                });
            }
        }
        Ok(taken)
    }
}

#[async_trait::async_trait]
impl RelayRetry for SignalRelay {
    /// Posts `retry` for `holder` and waits for its outcome. The wait ends with the gateway's
    /// call (its timeout, or the client's cancellation, drop this future); a retry its holder
    /// has not taken within [`TAKEN_WITHIN`] is withdrawn and answered as a call no longer
    /// waiting.
    async fn relay(&self, holder: &str, retry: Value) -> Result<Value, ToolError> {
        let token = format!("{:032x}", rand::random::<u128>());
        self.post(holder, RESUME, &token, &retry.to_string())
            .await
            .map_err(unreachable)?;
        let posted = Instant::now();
        let mut taken = false;
        loop {
            tokio::time::sleep(OUTCOME_EVERY).await;
            if let Some(body) = self
                .take(holder, RESUMED, &token)
                .await
                .map_err(unreachable)?
            {
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

fn unreachable(error: sqlx::Error) -> ToolError {
    ToolError::Unreachable(format!(
        "cannot relay the answers to the replica holding the call: {error}"
    ))
}
