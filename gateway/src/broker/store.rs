//! Stored connections: one row per (user `sub`, provider connection) in `broker_tokens`, the
//! tokens sealed by the keyring with the user and connection as context, so a row copied to
//! another user does not open. Every query is keyed by the caller's `sub`.

use std::sync::Arc;

use futures::future::BoxFuture;
use manifold_adapters::Secret;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use super::provider::Tokens;
use crate::{keyring::Keyring, storage::Storage};

/// A storage failure. Never carries token values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("token storage query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// Wrong key, wrong user/connection, or tampered: treated as a broken connection.
    #[error("the stored tokens cannot be opened")]
    Sealed,
}

#[derive(Serialize, Deserialize)]
struct SealedTokens {
    access: String,
    refresh: Option<String>,
}

/// One user's connection to one provider.
#[derive(Debug, Clone)]
pub struct Connection {
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub scopes: Vec<String>,
    pub account: Option<String>,
    pub expires_at: Option<i64>,
    pub broken: bool,
}

/// What the connections page shows: no secrets.
#[derive(Debug, Clone)]
pub struct Summary {
    pub connection: String,
    pub scopes: Vec<String>,
    pub account: Option<String>,
    pub expires_at: Option<i64>,
    pub broken: bool,
}

type Row = (String, String, Option<String>, Option<i64>, String);

const SELECT: &str = "SELECT sealed, scopes, account, expires_at, status FROM broker_tokens
    WHERE user_sub = $1 AND connection = $2";
/// The broker's tables.
#[derive(Debug, Clone)]
pub struct TokenStore {
    storage: Storage,
    keyring: Arc<Keyring>,
}

/// Binds sealed tokens to their owner; length-prefixed so no two (user, connection) pairs
/// produce the same context.
fn context(user: &str, connection: &str) -> String {
    format!("manifold/broker/tokens/{}:{user}/{connection}", user.len())
}

// Queries return boxed `Send` futures: awaited inside `#[async_trait]` methods and axum
// handlers, sqlx's futures otherwise fail a higher-ranked `Send` check.
impl TokenStore {
    pub fn new(storage: Storage, keyring: Arc<Keyring>) -> Self {
        Self { storage, keyring }
    }

    fn decode(&self, user: &str, connection: &str, row: Row) -> Result<Connection, StoreError> {
        let (sealed, scopes, account, expires_at, status) = row;
        let plain = self
            .keyring
            .open(&sealed, &context(user, connection))
            .map_err(|_| StoreError::Sealed)?;
        let tokens: SealedTokens =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Sealed)?;
        Ok(Connection {
            access: Secret::new(tokens.access),
            refresh: tokens.refresh.map(Secret::new),
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
            account,
            expires_at,
            broken: status != "ok",
        })
    }

    pub fn get<'a>(
        &'a self,
        user: &'a str,
        connection: &'a str,
    ) -> BoxFuture<'a, Result<Option<Connection>, StoreError>> {
        Box::pin(async move {
            let row: Option<Row> = sqlx::query_as(SELECT)
                .bind(user)
                .bind(connection)
                .fetch_optional(self.storage.pool())
                .await?;
            row.map(|row| self.decode(user, connection, row))
                .transpose()
        })
    }

    pub fn list<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Vec<Summary>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT connection, scopes, account, expires_at, status FROM broker_tokens WHERE user_sub = $1",
            )
            .bind(user)
            .fetch_all(self.storage.pool())
            .await?;
            Ok(rows
                .into_iter()
                .map(
                    |(connection, scopes, account, expires_at, status)| Summary {
                        connection,
                        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
                        account,
                        expires_at,
                        broken: status != "ok",
                    },
                )
                .collect())
        })
    }

    /// Some user with a working `connection` (the most recently stored), for listing an
    /// upstream's offers with a user's token when the instance has none of its own.
    pub fn any_user<'a>(
        &'a self,
        connection: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT user_sub FROM broker_tokens WHERE connection = $1 AND status = 'ok' \
                 ORDER BY updated_at DESC LIMIT 1",
            )
            .bind(connection)
            .fetch_optional(self.storage.pool())
            .await?;
            Ok(row.map(|(user,)| user))
        })
    }

    /// Stores a fresh connection (after a code exchange), replacing any earlier one.
    pub fn put<'a>(
        &'a self,
        user: &'a str,
        connection: &'a str,
        tokens: &'a Tokens,
        scopes: &'a [String],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.storage.pool().begin().await?;
            self.write(&mut tx, user, connection, tokens, None, scopes)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Inserts or replaces the row in `tx`. `previous_refresh` is kept when the provider did
    /// not send a new refresh token (non-rotating providers).
    fn write<'a>(
        &'a self,
        tx: &'a mut Transaction<'static, Any>,
        user: &'a str,
        connection: &'a str,
        tokens: &'a Tokens,
        previous_refresh: Option<&'a Secret>,
        scopes: &'a [String],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let refresh = tokens.refresh.as_ref().or(previous_refresh);
            let plain = serde_json::to_vec(&SealedTokens {
                access: tokens.access.expose().to_owned(),
                refresh: refresh.map(|r| r.expose().to_owned()),
            })
            .map_err(|_| StoreError::Sealed)?;
            let sealed = self.keyring.seal(&plain, &context(user, connection));
            sqlx::query(
                "INSERT INTO broker_tokens
                    (user_sub, connection, sealed, kid, scopes, account, expires_at, status, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'ok', $8)
                 ON CONFLICT (user_sub, connection) DO UPDATE SET
                    sealed = excluded.sealed, kid = excluded.kid, scopes = excluded.scopes,
                    account = COALESCE(excluded.account, broker_tokens.account),
                    expires_at = excluded.expires_at, status = 'ok', updated_at = excluded.updated_at",
            )
            .bind(user)
            .bind(connection)
            .bind(&sealed)
            .bind(self.keyring.current_kid())
            .bind(scopes.join(" "))
            .bind(tokens.account.clone())
            .bind(tokens.expires_at)
            .bind(super::now())
            .execute(&mut **tx)
            .await?;
            Ok(())
        })
    }

    /// Removes the connection, returning it (for revocation) when it opened.
    pub fn delete<'a>(
        &'a self,
        user: &'a str,
        connection: &'a str,
    ) -> BoxFuture<'a, Result<Option<Connection>, StoreError>> {
        Box::pin(async move {
            let existing = self.get(user, connection).await.unwrap_or(None);
            sqlx::query("DELETE FROM broker_tokens WHERE user_sub = $1 AND connection = $2")
                .bind(user)
                .bind(connection)
                .execute(self.storage.pool())
                .await?;
            Ok(existing)
        })
    }

    /// Claims the refresh of (user, connection) for `lease` until `until` (Unix seconds), unless
    /// another holder's lease is still running. Refresh tokens that rotate work once: only the
    /// holder may spend one. One short statement, so no database lock is held while the holder
    /// talks to the provider (SQLite's lock is the whole database's).
    pub fn claim_refresh<'a>(
        &'a self,
        user: &'a str,
        connection: &'a str,
        lease: &'a str,
        until: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let claimed = sqlx::query(
                "INSERT INTO broker_refresh_leases (user_sub, connection, lease, held_until)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_sub, connection) DO UPDATE SET
                    lease = excluded.lease, held_until = excluded.held_until
                 WHERE broker_refresh_leases.held_until < $5",
            )
            .bind(user)
            .bind(connection)
            .bind(lease)
            .bind(until)
            .bind(super::now())
            .execute(self.storage.pool())
            .await?;
            Ok(claimed.rows_affected() == 1)
        })
    }

    /// Gives up a claimed refresh without storing anything.
    pub fn release<'a>(
        &'a self,
        user: &'a str,
        connection: &'a str,
        lease: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.storage.pool().begin().await?;
            Self::end_lease(&mut tx, user, connection, lease).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn end_lease<'a>(
        tx: &'a mut Transaction<'static, Any>,
        user: &'a str,
        connection: &'a str,
        lease: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "DELETE FROM broker_refresh_leases
                 WHERE user_sub = $1 AND connection = $2 AND lease = $3",
            )
            .bind(user)
            .bind(connection)
            .bind(lease)
            .execute(&mut **tx)
            .await?;
            Ok(())
        })
    }

    /// Stores refreshed tokens and ends `lease`, together: whoever claims next sees them.
    pub fn finish_refresh<'a>(
        &'a self,
        user: &'a str,
        connection: &'a str,
        lease: &'a str,
        tokens: &'a Tokens,
        previous: &'a Connection,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let scopes = tokens
                .scopes
                .clone()
                .unwrap_or_else(|| previous.scopes.clone());
            let mut tx = self.storage.pool().begin().await?;
            self.write(
                &mut tx,
                user,
                connection,
                tokens,
                previous.refresh.as_ref(),
                &scopes,
            )
            .await?;
            Self::end_lease(&mut tx, user, connection, lease).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Marks the connection broken (the provider refused its refresh token) and ends `lease`.
    pub fn mark_broken<'a>(
        &'a self,
        user: &'a str,
        connection: &'a str,
        lease: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.storage.pool().begin().await?;
            sqlx::query(
                "UPDATE broker_tokens SET status = 'broken', updated_at = $3
                 WHERE user_sub = $1 AND connection = $2",
            )
            .bind(user)
            .bind(connection)
            .bind(super::now())
            .execute(&mut *tx)
            .await?;
            Self::end_lease(&mut tx, user, connection, lease).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a started connect so its `state` is accepted once.
    pub fn remember_state<'a>(
        &'a self,
        nonce: &'a str,
        user: &'a str,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            // Old attempts nobody finished are dropped on the way.
            sqlx::query("DELETE FROM broker_oauth_states WHERE expires_at < $1")
                .bind(super::now())
                .execute(self.storage.pool())
                .await?;
            sqlx::query(
                "INSERT INTO broker_oauth_states (nonce, user_sub, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(nonce)
            .bind(user)
            .bind(expires_at)
            .execute(self.storage.pool())
            .await?;
            Ok(())
        })
    }

    /// Consumes a started connect: true only the first time, for its own user.
    pub fn take_state<'a>(
        &'a self,
        nonce: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let done = sqlx::query(
                "DELETE FROM broker_oauth_states WHERE nonce = $1 AND user_sub = $2 AND expires_at >= $3",
            )
            .bind(nonce)
            .bind(user)
            .bind(super::now())
            .execute(self.storage.pool())
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
