//! The access-token signing keys: ES256 key pairs generated here, private halves sealed with the
//! [`Keyring`] in the database, a new key every `rotation` (the previous ones stay published for
//! verification), and the JWT claims the gateway signs.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use super::{
    store::{AuthStore, StoreError, now},
    verified::VerifiedTokens,
};
use crate::keyring::Keyring;

/// The claims of the gateway's access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    /// The resource (RFC 8707) the token is for.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The identity provider vouched for `email`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub email_verified: bool,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The token family, so revoking a grant also stops its live access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("signing key {0} cannot be opened with the keyring")]
    Sealed(String),
    #[error("cannot generate a signing key")]
    Generate,
    #[error("cannot sign the token")]
    Sign,
}

/// Why a token was not accepted (never echoes the token).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is signed by an unknown key")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

struct Loaded {
    at: Instant,
    kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: Value,
}

/// The signing keys, cached for a minute so other replicas' rotations are seen soon.
pub struct SigningKeys {
    store: AuthStore,
    keyring: Arc<Keyring>,
    rotation: Duration,
    cache: RwLock<Option<Arc<Loaded>>>,
    verified: VerifiedTokens,
}

const CACHE_FOR: Duration = Duration::from_secs(60);

impl SigningKeys {
    pub fn new(store: AuthStore, keyring: Arc<Keyring>, rotation: Duration) -> Self {
        Self {
            store,
            keyring,
            rotation,
            cache: RwLock::new(None),
            verified: VerifiedTokens::default(),
        }
    }

    async fn loaded(&self) -> Result<Arc<Loaded>, KeyError> {
        if let Some(loaded) = self.cache.read().await.as_ref()
            && loaded.at.elapsed() < CACHE_FOR
        {
            return Ok(loaded.clone());
        }
        let mut cache = self.cache.write().await;
        let loaded = Arc::new(self.load().await?);
        *cache = Some(loaded.clone());
        Ok(loaded)
    }

    /// Reads the keys, making a new one when the newest is older than `rotation`, and drops
    /// keys no token signed with could still be valid for (three rotations).
    async fn load(&self) -> Result<Loaded, KeyError> {
        let rotation = i64::try_from(self.rotation.as_secs()).unwrap_or(i64::MAX / 4);
        let pool = self.store.storage().pool();
        sqlx::query("DELETE FROM auth_signing_keys WHERE created_at < $1")
            .bind(now().saturating_sub(rotation.saturating_mul(3)))
            .execute(pool)
            .await?;
        let mut rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT kid, sealed_private, public_x, public_y, created_at FROM auth_signing_keys
             ORDER BY created_at DESC, kid",
        )
        .fetch_all(pool)
        .await?;
        if rows.first().is_none_or(|row| row.4 <= now() - rotation) {
            rows.insert(0, self.generate().await?);
        }
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        for (kid, _, x, y, _) in &rows {
            if let Ok(key) = DecodingKey::from_ec_components(x, y) {
                verifying.insert(kid.clone(), key);
                jwks.push(
                    json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
                                 "kid": kid, "x": x, "y": y}),
                );
            }
        }
        let (kid, sealed, ..) = rows.into_iter().next().ok_or(KeyError::Generate)?;
        let pkcs8 = self
            .keyring
            .open(&sealed, &format!("auth-signing-key:{kid}"))
            .map_err(|_| KeyError::Sealed(kid.clone()))?;
        Ok(Loaded {
            at: Instant::now(),
            kid,
            signing: EncodingKey::from_ec_der(&pkcs8),
            verifying,
            jwks: json!({"keys": jwks}),
        })
    }

    async fn generate(&self) -> Result<(String, String, String, String, i64), KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generate)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| KeyError::Generate)?;
        // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        let (x, y) = match (point.get(1..33), point.get(33..65)) {
            (Some(x), Some(y)) => (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)),
            _ => return Err(KeyError::Generate),
        };
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let sealed = self
            .keyring
            .seal(pkcs8.as_ref(), &format!("auth-signing-key:{kid}"));
        let created = now();
        sqlx::query(
            "INSERT INTO auth_signing_keys (kid, sealed_private, public_x, public_y, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&kid)
        .bind(&sealed)
        .bind(&x)
        .bind(&y)
        .bind(created)
        .execute(self.store.storage().pool())
        .await?;
        tracing::info!(%kid, "generated a new access-token signing key");
        Ok((kid, sealed, x, y, created))
    }

    /// Signs `claims` with the current key.
    pub async fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let loaded = self.loaded().await?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(loaded.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &loaded.signing).map_err(|_| KeyError::Sign)
    }

    /// Checks signature, issuer, audience (one of `audiences`) and expiry.
    pub async fn verify(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[String],
    ) -> Result<AccessClaims, VerifyError> {
        // Issuer and audiences are the gateway's own and fixed while it runs; the key may have
        // been retired since.
        if let Some(hit) = self.verified.get(token)
            && self.loaded().await?.verifying.contains_key(&hit.kid)
        {
            return Ok(hit.claims);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let mut loaded = self.loaded().await?;
        if !loaded.verifying.contains_key(&kid) {
            // Another replica may have rotated since we cached.
            *self.cache.write().await = None;
            loaded = self.loaded().await?;
        }
        let key = loaded.verifying.get(&kid).ok_or(VerifyError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = 5;
        validation.set_issuer(&[issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|error| VerifyError::Invalid(format!("{:?}", error.kind())))?;
        self.verified.insert(token, &claims, &kid);
        Ok(claims)
    }

    /// The public keys as a JWK Set.
    pub async fn jwks(&self) -> Result<Value, KeyError> {
        Ok(self.loaded().await?.jwks.clone())
    }
}

#[cfg(test)]
impl AccessClaims {
    /// Alice's token for `https://gw/mcp`, issued by `https://gw`, expiring at `exp`.
    pub(crate) fn sample(exp: i64) -> Self {
        Self {
            iss: "https://gw".into(),
            sub: "alice".into(),
            aud: "https://gw/mcp".into(),
            exp,
            iat: now(),
            jti: "j".into(),
            client_id: "c".into(),
            scope: "mcp".into(),
            email: None,
            email_verified: false,
            groups: vec![],
            fid: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::Engine;

    use super::*;
    use crate::storage::Storage;

    #[tokio::test]
    async fn a_remembered_token_fails_once_its_key_is_retired() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path()).await.unwrap();
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        let keyring = Arc::new(Keyring::parse(&format!("k:{key}")).unwrap());
        let keys = SigningKeys::new(
            AuthStore::new(storage.clone()),
            keyring,
            Duration::from_secs(3600),
        );
        let (issuer, audiences) = ("https://gw", vec!["https://gw/mcp".to_owned()]);
        let claims = AccessClaims::sample(now() + 600);
        let token = keys.sign(&claims).await.unwrap();
        for _ in 0..2 {
            let verified = keys.verify(&token, issuer, &audiences).await.unwrap();
            assert_eq!(verified.sub, "alice");
        }
        sqlx::query("DELETE FROM auth_signing_keys")
            .execute(storage.pool())
            .await
            .unwrap();
        *keys.cache.write().await = None;
        assert!(
            matches!(
                keys.verify(&token, issuer, &audiences).await,
                Err(VerifyError::UnknownKey)
            ),
            "the key that signed it is gone"
        );
    }
}
