//! The authorization server's tables: registered clients, authorization codes, token families,
//! refresh tokens (SHA-256 hashes only), consents, signing keys and MCP session owners. SQL is
//! shared by SQLite and PostgreSQL (`$n` placeholders, BIGINT times in Unix seconds).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::storage::Storage;

/// Schema steps of this module (versions 10..=19 are reserved for it).
pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        10,
        "CREATE TABLE IF NOT EXISTS auth_signing_keys (
            kid TEXT PRIMARY KEY,
            sealed_private TEXT NOT NULL,
            public_x TEXT NOT NULL,
            public_y TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
    ),
    (
        11,
        "CREATE TABLE IF NOT EXISTS auth_clients (
            client_id TEXT PRIMARY KEY,
            client_name TEXT NOT NULL,
            redirect_uris TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
    ),
    (
        12,
        "CREATE TABLE IF NOT EXISTS auth_families (
            family TEXT PRIMARY KEY,
            client_id TEXT NOT NULL,
            sub TEXT NOT NULL,
            revoked BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        )",
    ),
    (
        13,
        "CREATE TABLE IF NOT EXISTS auth_codes (
            code_hash TEXT PRIMARY KEY,
            grant_json TEXT NOT NULL,
            family TEXT NOT NULL,
            expires_at BIGINT NOT NULL,
            used_at BIGINT
        )",
    ),
    (
        14,
        "CREATE TABLE IF NOT EXISTS auth_refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            grant_json TEXT NOT NULL,
            family TEXT NOT NULL,
            expires_at BIGINT NOT NULL,
            used_at BIGINT
        )",
    ),
    (
        15,
        "CREATE TABLE IF NOT EXISTS auth_consents (
            sub TEXT NOT NULL,
            client_id TEXT NOT NULL,
            granted_at BIGINT NOT NULL,
            PRIMARY KEY (sub, client_id)
        )",
    ),
    (
        16,
        "CREATE TABLE IF NOT EXISTS auth_session_owners (
            session_id TEXT PRIMARY KEY,
            sub TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
    ),
    // The session cap counts a user's sessions on every `initialize` (`session::slots`).
    (
        17,
        "CREATE INDEX IF NOT EXISTS auth_session_owners_sub ON auth_session_owners (sub)",
    ),
    // The token pair a refresh token was exchanged for, sealed, so one retry of the refresh
    // within `[auth] refresh_retry_grace` gets the same pair (`token.rs`); [`RETRIED`] once it
    // has.
    (
        18,
        "ALTER TABLE auth_refresh_tokens ADD COLUMN successor TEXT",
    ),
];

/// The `successor` of a refresh token whose one tolerated retry was spent.
const RETRIED: &str = "retried";

/// What a refresh token reused within the grace window may still give.
#[derive(Debug, PartialEq, Eq)]
pub enum RetryClaim {
    /// The sealed pair its first use answered with; this caller spent the one retry.
    Claimed(String),
    /// Its first use has not stored its answer yet: ask again shortly.
    Pending,
    /// Used too long ago, retried already, or unknown: a replay.
    Refused,
}

/// What a code or refresh token grants: who, to which client, for which resource and scope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub sub: String,
    pub email: Option<String>,
    /// Grants stored before this field existed read as unverified.
    #[serde(default)]
    pub email_verified: bool,
    pub groups: Vec<String>,
    pub resource: String,
    pub scope: String,
    /// Only codes carry these.
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub code_challenge: String,
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
}

/// The result of redeeming a single-use code or refresh token.
#[derive(Debug)]
pub enum Redeemed {
    Fresh {
        grant: Grant,
        family: String,
    },
    /// Already used: the caller must revoke the family.
    Replayed {
        family: String,
    },
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("auth database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("auth database row is corrupt")]
    Corrupt,
}

/// SHA-256 hex of a secret, the only form codes and refresh tokens are stored in.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The two single-use secrets, whose tables have the same shape.
#[derive(Debug, Clone, Copy)]
enum SingleUse {
    Code,
    Refresh,
}

impl SingleUse {
    /// (insert, mark used, select) statements.
    fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Code => (
                "INSERT INTO auth_codes (code_hash, grant_json, family, expires_at)
                 VALUES ($1, $2, $3, $4)",
                "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
                "SELECT grant_json, family, expires_at FROM auth_codes WHERE code_hash = $1",
            ),
            Self::Refresh => (
                "INSERT INTO auth_refresh_tokens (token_hash, grant_json, family, expires_at)
                 VALUES ($1, $2, $3, $4)",
                "UPDATE auth_refresh_tokens SET used_at = $1
                 WHERE token_hash = $2 AND used_at IS NULL",
                "SELECT grant_json, family, expires_at FROM auth_refresh_tokens
                 WHERE token_hash = $1",
            ),
        }
    }
}

/// The auth tables of the shared database.
#[derive(Debug, Clone)]
pub struct AuthStore {
    storage: Storage,
    /// Session owners seen by this replica. A session's owner never changes once bound, so a
    /// request in a known session needs no query.
    owners: Arc<DashMap<String, String>>,
    /// Token families by when this replica last found them not revoked (trusted for
    /// `revocation_recheck`), or `None` once found revoked — revocation is final.
    families: Arc<DashMap<String, Option<Instant>>>,
    revocation_recheck: Duration,
}

/// How many session owners, and token families, a replica keeps in memory.
const REMEMBERED: usize = 100_000;

/// Puts `key` in a memo map, emptying it first when it is full (lookups refill it).
fn remember<V>(map: &DashMap<String, V>, key: &str, value: V) {
    if map.len() >= REMEMBERED {
        map.clear();
    }
    map.insert(key.to_owned(), value);
}

impl AuthStore {
    /// Every revocation check asks the database; see [`Self::with_revocation_recheck`].
    pub fn new(storage: Storage) -> Self {
        Self {
            storage,
            owners: Arc::default(),
            families: Arc::default(),
            revocation_recheck: Duration::ZERO,
        }
    }

    /// Trusts a family found not revoked for `recheck` before asking again: a grant revoked on
    /// this replica stops working here at once, one revoked on another replica within `recheck`.
    pub fn with_revocation_recheck(mut self, recheck: Duration) -> Self {
        self.revocation_recheck = recheck;
        self
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let uris = serde_json::to_string(&client.redirect_uris).map_err(|_| StoreError::Corrupt)?;
        sqlx::query(
            "INSERT INTO auth_clients (client_id, client_name, redirect_uris, created_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&client.client_id)
        .bind(&client.client_name)
        .bind(uris)
        .bind(now())
        .execute(self.storage.pool())
        .await?;
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT client_name, redirect_uris FROM auth_clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(self.storage.pool())
        .await?;
        let Some((client_name, uris)) = row else {
            return Ok(None);
        };
        let redirect_uris = serde_json::from_str(&uris).map_err(|_| StoreError::Corrupt)?;
        Ok(Some(Client {
            client_id: client_id.to_owned(),
            client_name,
            redirect_uris,
        }))
    }

    /// Starts a token family: every token descending from one authorization code.
    pub async fn new_family(&self, client_id: &str, sub: &str) -> Result<String, StoreError> {
        let family = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query(
            "INSERT INTO auth_families (family, client_id, sub, revoked, created_at)
             VALUES ($1, $2, $3, 0, $4)",
        )
        .bind(&family)
        .bind(client_id)
        .bind(sub)
        .bind(now())
        .execute(self.storage.pool())
        .await?;
        Ok(family)
    }

    pub async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE auth_families SET revoked = 1 WHERE family = $1")
            .bind(family)
            .execute(self.storage.pool())
            .await?;
        remember(&self.families, family, None);
        Ok(())
    }

    /// True when the family is revoked or unknown.
    pub async fn family_revoked(&self, family: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        match self.families.get(family).as_deref() {
            Some(None) => return Ok(true),
            Some(Some(seen)) if now.duration_since(*seen) < self.revocation_recheck => {
                return Ok(false);
            }
            _ => {}
        }
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT revoked FROM auth_families WHERE family = $1")
                .bind(family)
                .fetch_optional(self.storage.pool())
                .await?;
        let revoked = row.is_none_or(|(revoked,)| revoked != 0);
        remember(&self.families, family, (!revoked).then_some(now));
        Ok(revoked)
    }

    pub async fn insert_code(
        &self,
        code: &str,
        grant: &Grant,
        family: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.insert_single_use(SingleUse::Code, code, grant, family, expires_at)
            .await
    }

    pub async fn insert_refresh(
        &self,
        token: &str,
        grant: &Grant,
        family: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.insert_single_use(SingleUse::Refresh, token, grant, family, expires_at)
            .await
    }

    async fn insert_single_use(
        &self,
        kind: SingleUse,
        secret: &str,
        grant: &Grant,
        family: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(grant).map_err(|_| StoreError::Corrupt)?;
        sqlx::query(kind.sql().0)
            .bind(hash(secret))
            .bind(json)
            .bind(family)
            .bind(expires_at)
            .execute(self.storage.pool())
            .await?;
        Ok(())
    }

    pub async fn redeem_code(&self, code: &str) -> Result<Redeemed, StoreError> {
        self.redeem(SingleUse::Code, code).await
    }

    pub async fn redeem_refresh(&self, token: &str) -> Result<Redeemed, StoreError> {
        self.redeem(SingleUse::Refresh, token).await
    }

    /// Marks the secret used in one conditional UPDATE, so two concurrent redemptions cannot
    /// both succeed; expired secrets count as unknown.
    async fn redeem(&self, kind: SingleUse, secret: &str) -> Result<Redeemed, StoreError> {
        let hashed = hash(secret);
        let now = now();
        let marked = sqlx::query(kind.sql().1)
            .bind(now)
            .bind(&hashed)
            .execute(self.storage.pool())
            .await?;
        let row: Option<(String, String, i64)> = sqlx::query_as(kind.sql().2)
            .bind(&hashed)
            .fetch_optional(self.storage.pool())
            .await?;
        let Some((json, family, expires_at)) = row else {
            return Ok(Redeemed::Unknown);
        };
        if marked.rows_affected() == 0 {
            return Ok(Redeemed::Replayed { family });
        }
        if expires_at <= now {
            return Ok(Redeemed::Unknown);
        }
        let grant = serde_json::from_str(&json).map_err(|_| StoreError::Corrupt)?;
        Ok(Redeemed::Fresh { grant, family })
    }

    /// Records `sealed`, the pair `token` was just exchanged for, for one retry.
    pub async fn set_successor(&self, token: &str, sealed: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE auth_refresh_tokens SET successor = $1
             WHERE token_hash = $2 AND successor IS NULL",
        )
        .bind(sealed)
        .bind(hash(token))
        .execute(self.storage.pool())
        .await?;
        Ok(())
    }

    /// Takes the one retry of a used refresh token, if its first use was at `used_since` or
    /// later. The swap to [`RETRIED`] is conditional on the value read, so of two concurrent
    /// retries only one gets the pair.
    pub async fn claim_retry(
        &self,
        token: &str,
        used_since: i64,
    ) -> Result<RetryClaim, StoreError> {
        let hashed = hash(token);
        let row: Option<(Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT used_at, successor FROM auth_refresh_tokens WHERE token_hash = $1",
        )
        .bind(&hashed)
        .fetch_optional(self.storage.pool())
        .await?;
        let Some((Some(used_at), successor)) = row else {
            return Ok(RetryClaim::Refused);
        };
        if used_at < used_since {
            return Ok(RetryClaim::Refused);
        }
        let sealed = match successor {
            None => return Ok(RetryClaim::Pending),
            Some(sealed) if sealed == RETRIED => return Ok(RetryClaim::Refused),
            Some(sealed) => sealed,
        };
        let taken = sqlx::query(
            "UPDATE auth_refresh_tokens SET successor = $1
             WHERE token_hash = $2 AND successor = $3",
        )
        .bind(RETRIED)
        .bind(&hashed)
        .bind(&sealed)
        .execute(self.storage.pool())
        .await?;
        Ok(if taken.rows_affected() == 1 {
            RetryClaim::Claimed(sealed)
        } else {
            RetryClaim::Refused
        })
    }

    /// The family of a refresh token, for revocation.
    pub async fn refresh_family(&self, token: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT family FROM auth_refresh_tokens WHERE token_hash = $1")
                .bind(hash(token))
                .fetch_optional(self.storage.pool())
                .await?;
        Ok(row.map(|(family,)| family))
    }

    pub async fn has_consent(&self, sub: &str, client_id: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM auth_consents WHERE sub = $1 AND client_id = $2")
                .bind(sub)
                .bind(client_id)
                .fetch_optional(self.storage.pool())
                .await?;
        Ok(row.is_some())
    }

    pub async fn grant_consent(&self, sub: &str, client_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_consents (sub, client_id, granted_at) VALUES ($1, $2, $3)
             ON CONFLICT (sub, client_id) DO NOTHING",
        )
        .bind(sub)
        .bind(client_id)
        .bind(now())
        .execute(self.storage.pool())
        .await?;
        Ok(())
    }

    /// The user an MCP session was created by.
    pub async fn session_owner(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        if let Some(owner) = self.owners.get(session_id) {
            return Ok(Some(owner.clone()));
        }
        let row: Option<(String,)> =
            sqlx::query_as("SELECT sub FROM auth_session_owners WHERE session_id = $1")
                .bind(session_id)
                .fetch_optional(self.storage.pool())
                .await?;
        if let Some((sub,)) = &row {
            remember(&self.owners, session_id, sub.clone());
        }
        Ok(row.map(|(sub,)| sub))
    }

    pub async fn bind_session(&self, session_id: &str, sub: &str) -> Result<(), StoreError> {
        insert_session_owner(self.storage.pool(), session_id, sub).await?;
        Ok(())
    }
}

/// Records `sub` as the creator of `session_id`; the first binding wins. Takes any executor so
/// the session cap can bind in the transaction that gives up the session's reserved slot.
pub(crate) async fn insert_session_owner<'c, E>(
    executor: E,
    session_id: &str,
    sub: &str,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO auth_session_owners (session_id, sub, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(session_id)
    .bind(sub)
    .bind(now())
    .execute(executor)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_grant_revoked_here_fails_at_once_and_elsewhere_after_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path()).await.unwrap();
        let recheck = Duration::from_millis(300);
        let here = AuthStore::new(storage.clone()).with_revocation_recheck(recheck);
        let there = AuthStore::new(storage.clone()).with_revocation_recheck(recheck);
        let strict = AuthStore::new(storage);
        assert!(
            here.family_revoked("nope").await.unwrap(),
            "unknown: revoked"
        );
        let family = here.new_family("client", "alice").await.unwrap();
        for store in [&here, &there, &strict] {
            assert!(!store.family_revoked(&family).await.unwrap());
        }
        here.revoke_family(&family).await.unwrap();
        assert!(here.family_revoked(&family).await.unwrap(), "revoked here");
        assert!(
            strict.family_revoked(&family).await.unwrap(),
            "no recheck window"
        );
        assert!(
            !there.family_revoked(&family).await.unwrap(),
            "the other replica trusts its last check until recheck"
        );
        tokio::time::sleep(recheck).await;
        assert!(
            there.family_revoked(&family).await.unwrap(),
            "after recheck"
        );
    }

    fn grant() -> Grant {
        Grant {
            client_id: "client".into(),
            sub: "alice".into(),
            email: None,
            email_verified: false,
            groups: vec![],
            resource: "https://gw/mcp".into(),
            scope: "mcp".into(),
            redirect_uri: String::new(),
            code_challenge: String::new(),
        }
    }

    #[tokio::test]
    async fn of_concurrent_retries_of_a_used_refresh_token_exactly_one_gets_its_pair() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path()).await.unwrap();
        let store = AuthStore::new(storage);
        let family = store.new_family("client", "alice").await.unwrap();
        let later = now() + 600;
        for token in ["used", "unused", "pending"] {
            store
                .insert_refresh(token, &grant(), &family, later)
                .await
                .unwrap();
        }
        assert!(matches!(
            store.redeem_refresh("used").await.unwrap(),
            Redeemed::Fresh { .. }
        ));
        store.set_successor("used", "sealed-pair").await.unwrap();
        // A second answer never replaces the first.
        store.set_successor("used", "another").await.unwrap();
        let since = now() - 30;
        assert_eq!(
            store.claim_retry("used", now() + 5).await.unwrap(),
            RetryClaim::Refused,
            "used before the window"
        );
        let claims =
            futures::future::join_all((0..16).map(|_| store.claim_retry("used", since))).await;
        let claimed: Vec<_> = claims
            .into_iter()
            .map(Result::unwrap)
            .filter(|claim| *claim != RetryClaim::Refused)
            .collect();
        assert_eq!(claimed, [RetryClaim::Claimed("sealed-pair".into())]);
        assert_eq!(
            store.claim_retry("used", since).await.unwrap(),
            RetryClaim::Refused,
            "spent"
        );
        assert_eq!(
            store.claim_retry("unused", since).await.unwrap(),
            RetryClaim::Refused,
            "never used: nothing to retry"
        );
        assert_eq!(
            store.claim_retry("nope", since).await.unwrap(),
            RetryClaim::Refused
        );
        store.redeem_refresh("pending").await.unwrap();
        assert_eq!(
            store.claim_retry("pending", since).await.unwrap(),
            RetryClaim::Pending,
            "its answer is not stored yet"
        );
    }

    #[tokio::test]
    async fn a_session_owner_is_bound_once_and_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path()).await.unwrap();
        let (here, there) = (AuthStore::new(storage.clone()), AuthStore::new(storage));
        assert_eq!(here.session_owner("s").await.unwrap(), None);
        here.bind_session("s", "alice").await.unwrap();
        there.bind_session("s", "mallory").await.unwrap();
        assert_eq!(
            there.session_owner("s").await.unwrap().as_deref(),
            Some("alice")
        );
        // Remembered: answered without the table.
        sqlx::query("DELETE FROM auth_session_owners")
            .execute(there.storage.pool())
            .await
            .unwrap();
        assert_eq!(
            there.session_owner("s").await.unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(
            here.session_owner("s").await.unwrap(),
            None,
            "here it was looked up only before it was bound"
        );
    }
}
