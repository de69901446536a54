//! Refreshing one user's connection so that a rotating refresh token is spent exactly once, by
//! whichever replica claims the refresh first.
//!
//! The claim is a lease row ([`TokenStore::claim_refresh`]) held for [`LEASE`], not a database
//! lock held across the provider call: on SQLite a lock is the whole database's, and a slow
//! provider would stall every write of every replica and fail the other replicas' claims. The
//! others poll the token row until the holder stores the new tokens (or its lease runs out).
//! The holder's work runs in its own task, so a caller that gives up (a cancelled tool call)
//! cannot leave a spent refresh token unstored.

use std::{sync::Arc, time::Duration};

use manifold_adapters::Secret;

use super::{
    now,
    provider::{Provider, ProviderError},
    state,
    store::{Connection, StoreError, TokenStore},
};

/// How long a claimed refresh may take before another replica may claim it: longer than the
/// provider's token-request timeout (15 s) plus storing the result.
pub(super) const LEASE: Duration = Duration::from_secs(30);
/// How often a replica waiting for another's refresh looks at the row again.
const POLL: Duration = Duration::from_millis(50);

/// How a refresh ended.
pub(super) enum Refreshed {
    Fresh(Secret),
    NotConnected,
    /// The user must connect again (with these scopes): refused or unreadable tokens.
    Broken(Vec<String>),
    /// The provider could not be asked or answered with an error other than `invalid_grant`.
    Failed(String),
    Storage(String),
}

/// Whether `connection`'s access token expires within `skew`.
pub(super) fn expiring(connection: &Connection, skew: Duration) -> bool {
    let skew = i64::try_from(skew.as_secs()).unwrap_or(60);
    connection
        .expires_at
        .is_some_and(|at| at.saturating_sub(skew) <= now())
}

/// A fresh access token for `user`. `rejected` is the token the provider just refused (after a
/// 401); without it, refresh only when the stored token is within `skew` of expiring.
pub(super) async fn refresh(
    store: &TokenStore,
    provider: &Arc<Provider>,
    user: &str,
    rejected: Option<&Secret>,
    skew: Duration,
) -> Refreshed {
    let connection = provider.connection.as_str();
    let lease_secs = i64::try_from(LEASE.as_secs()).unwrap_or(30);
    let deadline = tokio::time::Instant::now() + LEASE * 2;
    let mut lease: Option<String> = None;
    loop {
        let current = match store.get(user, connection).await {
            Ok(Some(current)) if !current.broken => current,
            other => {
                release(store, user, connection, lease.as_deref()).await;
                return match other {
                    Ok(None) => Refreshed::NotConnected,
                    Ok(Some(broken)) => Refreshed::Broken(broken.scopes),
                    Err(StoreError::Sealed) => Refreshed::Broken(Vec::new()),
                    Err(error) => Refreshed::Storage(error.to_string()),
                };
            }
        };
        // Another caller or replica may have refreshed while this one waited.
        let stale = match rejected {
            Some(rejected) => current.access == *rejected,
            None => expiring(&current, skew),
        };
        if !stale {
            release(store, user, connection, lease.as_deref()).await;
            return Refreshed::Fresh(current.access);
        }
        if let Some(lease) = lease {
            // Read after the claim: these are the tokens no one else will spend now.
            let task = spend(
                store.clone(),
                provider.clone(),
                user.to_owned(),
                lease,
                current,
            );
            return tokio::spawn(task)
                .await
                .unwrap_or_else(|e| Refreshed::Failed(format!("the refresh task failed: {e}")));
        }
        let candidate = state::nonce();
        match store
            .claim_refresh(user, connection, &candidate, now() + lease_secs)
            .await
        {
            // Look at the row again under the lease: the previous holder may just have stored.
            Ok(true) => lease = Some(candidate),
            Ok(false) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL).await;
            }
            Ok(false) => {
                return Refreshed::Failed(
                    "another refresh of this connection did not finish".into(),
                );
            }
            Err(error) => return Refreshed::Storage(error.to_string()),
        }
    }
}

/// Spends `current`'s refresh token while holding `lease`, and stores what comes back.
async fn spend(
    store: TokenStore,
    provider: Arc<Provider>,
    user: String,
    lease: String,
    current: Connection,
) -> Refreshed {
    let connection = provider.connection.as_str();
    let broken = |result: Result<(), StoreError>| match result {
        Ok(()) => Refreshed::Broken(current.scopes.clone()),
        Err(error) => Refreshed::Storage(error.to_string()),
    };
    let Some(refresh) = current.refresh.clone() else {
        return broken(store.mark_broken(&user, connection, &lease).await);
    };
    match provider.refresh(&refresh).await {
        Ok(tokens) => {
            // The old refresh token is spent: storing the new one must not give up early.
            let mut attempt = 0;
            loop {
                match store
                    .finish_refresh(&user, connection, &lease, &tokens, &current)
                    .await
                {
                    Ok(()) => {
                        tracing::debug!(user, connection, "tokens refreshed");
                        return Refreshed::Fresh(tokens.access);
                    }
                    Err(error) if attempt >= 4 => {
                        tracing::error!(user, connection, %error, "refreshed tokens were not stored");
                        return Refreshed::Storage(error.to_string());
                    }
                    Err(_) => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    }
                }
            }
        }
        Err(ProviderError::InvalidGrant) => {
            tracing::info!(user, connection, "refresh refused: connection broken");
            broken(store.mark_broken(&user, connection, &lease).await)
        }
        Err(error) => {
            release(&store, &user, connection, Some(&lease)).await;
            Refreshed::Failed(error.to_string())
        }
    }
}

async fn release(store: &TokenStore, user: &str, connection: &str, lease: Option<&str>) {
    if let Some(lease) = lease
        && let Err(error) = store.release(user, connection, lease).await
    {
        // The lease runs out by itself.
        tracing::warn!(user, connection, %error, "could not end a refresh lease");
    }
}
