//! Inbound authorization (MCP authorization spec, OAuth 2.1): the gateway as resource server for
//! `/mcp` and, in mode `builtin`, as authorization server whose users log in at an upstream
//! OpenID Connect provider.
//!
//! - [`metadata`]: RFC 9728 protected resource and RFC 8414 authorization server metadata.
//! - [`register`]: RFC 7591 dynamic client registration, limited per client address by
//!   [`register_limit`]; [`cimd`]: client ID metadata documents.
//! - [`authorize`], [`login`], [`consent`]: the browser leg (PKCE S256, RFC 8707 `resource`,
//!   RFC 9207 `iss`), upstream login, per-client consent.
//! - [`token`], [`revoke`]: code and refresh grants (single use, family revocation), RFC 7009.
//! - [`userinfo`]: the OpenID Connect UserInfo endpoint (`sub`, `email`, `email_verified`).
//! - [`keys`]: rotating ES256 signing keys sealed with the keyring; [`external`]: tokens of
//!   another authorization server.
//! - [`resource`]: the middleware that turns a bearer token into a [`Principal`] for `/mcp`.
//! - [`binding`]: login CSRF, every sign-in and connect bound to the browser that started it.
//! - [`cookie`]: the browser session, read by [`current_user`] for other pages; [`return_to`]:
//!   the only post-login destinations (same-origin paths).

pub mod authorize;
pub mod binding;
pub mod cimd;
pub mod consent;
pub mod cookie;
pub mod external;
pub mod keys;
pub mod login;
pub mod metadata;
pub mod register;
pub mod register_limit;
pub mod resource;
pub mod return_to;
pub mod revoke;
#[cfg(feature = "sandbox")]
pub mod sandbox_idp;
pub mod store;
pub mod token;
pub mod userinfo;
mod verified;

use std::{path::Path, sync::Arc, time::Duration};

use axum::{
    Router,
    routing::{get, post},
};
use manifold_adapters::outbound::{CidrError, Outbound};
use manifold_policy::Principal;
use serde::{Deserialize, Serialize};

pub use cookie::current_user;

use crate::{
    config::{AuthMode, Config, RegistrationConfig},
    keyring::{Keyring, KeyringError},
    storage::Storage,
};
use keys::SigningKeys;
use store::AuthStore;

/// Why the auth stage could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("auth: {0}")]
    Config(String),
    #[error("auth: {0}")]
    Keyring(#[from] KeyringError),
    #[error("auth: cannot build the HTTP client: {0}")]
    Http(String),
}

/// A logged-in user, as the upstream identity provider described them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    pub sub: String,
    pub email: Option<String>,
    /// The identity provider vouched for `email` (its `email_verified` claim was true). ChatGPT's
    /// workspace domain restrictions trust only a verified address.
    #[serde(default)]
    pub email_verified: bool,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn principal(&self, client_id: Option<String>) -> Principal {
        Principal {
            user: Some(self.sub.clone()),
            email: self.email.clone(),
            groups: self.groups.clone(),
            client_id,
        }
    }
}

/// What mode `builtin` needs beyond the shared state.
pub struct Builtin {
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) keys: SigningKeys,
    pub(crate) upstream: login::Upstream,
    pub(crate) access_ttl: Duration,
    pub(crate) refresh_ttl: Duration,
    /// See `[auth] refresh_retry_grace`.
    pub(crate) refresh_retry_grace: Duration,
    pub(crate) registration: RegistrationConfig,
    pub(crate) registration_limits: register_limit::RegistrationLimiter,
    pub(crate) allow_insecure_cimd: bool,
    pub(crate) secure_cookies: bool,
    pub(crate) dev_tokens: bool,
}

/// Everything the auth routes and middleware share.
pub struct AuthState {
    pub(crate) mode: AuthMode,
    /// `server.public_url` without a trailing slash: the issuer.
    pub(crate) issuer: String,
    /// `<issuer>/mcp`: the resource identifier clients ask tokens for.
    pub(crate) resource: String,
    /// Audiences accepted on `/mcp` (the resource, and the bare gateway URL).
    pub(crate) audiences: Vec<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) store: AuthStore,
    pub(crate) builtin: Option<Builtin>,
    pub(crate) external: Option<external::External>,
    /// Every fetch a request can trigger (client metadata, discovery, keys, the provider's
    /// token endpoint) goes through this SSRF-guarded client.
    pub(crate) outbound: Arc<Outbound>,
    /// Where verified bearer tokens are remembered for token exchange to upstream MCP servers,
    /// when the broker has such instances (`broker::upstream::sign_ins`).
    pub(crate) sign_ins: std::sync::OnceLock<Arc<crate::broker::upstream::sign_ins::SignIns>>,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("mode", &self.mode)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The key file under the data directory, used when `MANIFOLD_SECRET_KEY` is unset.
pub fn key_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("secret.key")
}

impl AuthState {
    /// The auth state for `config`, or `None` in mode `none`. `public_url` is the effective
    /// public URL (the demo's may only be known after binding).
    pub fn from_config(
        config: &Config,
        storage: Storage,
        public_url: &str,
    ) -> Result<Option<Arc<Self>>, AuthError> {
        let auth = &config.auth;
        if auth.mode == AuthMode::None {
            return Ok(None);
        }
        let issuer = public_url.trim_end_matches('/').to_owned();
        let resource = format!("{issuer}/mcp");
        let settings = config
            .outbound
            .settings()
            .map_err(|e| AuthError::Config(e.to_string()))?;
        let outbound =
            Arc::new(Outbound::new(settings).map_err(|e| AuthError::Http(e.to_string()))?);
        let store = AuthStore::new(storage).with_revocation_recheck(auth.revocation_recheck);
        let mut builtin = None;
        let mut external = None;
        match auth.mode {
            AuthMode::Builtin => {
                let variable = std::env::var("MANIFOLD_SECRET_KEY").ok();
                // One SQLite host may create its own key; replicas sharing PostgreSQL must share
                // a key, so they need MANIFOLD_SECRET_KEY.
                let create = config.storage.url.is_none();
                let keyring = Arc::new(Keyring::load(
                    variable.as_deref(),
                    &key_file(&config.storage.data_dir),
                    create,
                )?);
                let trusted_proxies = auth
                    .registration
                    .trusted_proxies
                    .iter()
                    .map(|p| {
                        p.parse()
                            .map_err(|e: CidrError| AuthError::Config(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let upstream = login::Upstream::from_config(auth, &issuer)
                    .ok_or_else(|| AuthError::Config("no identity provider configured".into()))?;
                builtin = Some(Builtin {
                    keys: SigningKeys::new(
                        store.clone(),
                        keyring.clone(),
                        auth.signing_key_rotation,
                    ),
                    keyring,
                    upstream,
                    access_ttl: auth.access_token_ttl,
                    refresh_ttl: auth.refresh_token_ttl,
                    refresh_retry_grace: auth.refresh_retry_grace,
                    registration: auth.registration.clone(),
                    registration_limits: register_limit::RegistrationLimiter::new(
                        auth.registration.per_address_per_minute,
                        auth.registration.per_minute,
                        trusted_proxies,
                    ),
                    allow_insecure_cimd: auth.allow_insecure_client_metadata,
                    secure_cookies: issuer.starts_with("https://"),
                    dev_tokens: auth.dev_tokens,
                });
            }
            AuthMode::External => {
                let section = auth.external.as_ref().ok_or_else(|| {
                    AuthError::Config("mode external needs [auth.external]".into())
                })?;
                external = Some(external::External::new(section, &resource));
            }
            AuthMode::None => {}
        }
        let mut audiences = vec![resource.clone(), issuer.clone(), format!("{issuer}/")];
        if let Some(ext) = &external {
            audiences = vec![ext.audience.clone()];
        }
        Ok(Some(Arc::new(Self {
            mode: auth.mode,
            issuer,
            resource,
            audiences,
            scopes: auth.scopes.clone(),
            store,
            builtin,
            external,
            outbound,
            sign_ins: std::sync::OnceLock::new(),
        })))
    }

    /// Verified bearer tokens go to `sign_ins` from now on (token exchange).
    pub fn share_sign_ins(&self, sign_ins: Arc<crate::broker::upstream::sign_ins::SignIns>) {
        let _ = self.sign_ins.set(sign_ins);
    }

    pub(crate) fn builtin(&self) -> Option<&Builtin> {
        self.builtin.as_ref()
    }

    /// Mints an access token for `user` without any client (for `manifold token`), valid for
    /// the access-token lifetime. Only in mode builtin with dev tokens allowed by the caller.
    pub async fn dev_token(&self, user: &UserInfo) -> Result<String, token::TokenError> {
        let builtin = self.builtin().ok_or(token::TokenError::NotBuiltin)?;
        let now = store::now();
        let claims = keys::AccessClaims {
            iss: self.issuer.clone(),
            sub: user.sub.clone(),
            aud: self.resource.clone(),
            exp: now + i64::try_from(builtin.access_ttl.as_secs()).unwrap_or(600),
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            client_id: "manifold-cli".into(),
            scope: self.scopes.join(" "),
            email: user.email.clone(),
            email_verified: user.email_verified && user.email.is_some(),
            groups: user.groups.clone(),
            fid: None,
        };
        builtin
            .keys
            .sign(&claims)
            .await
            .map_err(token::TokenError::Keys)
    }

    /// Signs arbitrary claims with the current key (tests and tooling).
    pub async fn sign(&self, claims: &keys::AccessClaims) -> Result<String, token::TokenError> {
        let builtin = self.builtin().ok_or(token::TokenError::NotBuiltin)?;
        builtin
            .keys
            .sign(claims)
            .await
            .map_err(token::TokenError::Keys)
    }

    /// Whether `manifold token` may mint tokens from this config.
    pub fn dev_tokens_allowed(&self) -> bool {
        self.builtin().is_some_and(|b| b.dev_tokens)
    }
}

/// The auth routes: metadata always; the authorization server's endpoints in mode builtin.
pub fn routes(state: Arc<AuthState>, sandbox_idp: bool) -> Router {
    let mut router = Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        );
    if let Some(builtin) = state.builtin() {
        let register_limit = builtin.registration.max_body_bytes;
        router = router
            .route(
                "/.well-known/oauth-authorization-server",
                get(metadata::authorization_server),
            )
            .route(
                "/.well-known/openid-configuration",
                get(metadata::authorization_server),
            )
            .route("/jwks.json", get(metadata::jwks))
            .route(
                "/register",
                post(register::register)
                    .layer(axum::extract::DefaultBodyLimit::max(register_limit)),
            )
            .route("/authorize", get(authorize::authorize))
            .route("/authorize/consent", post(consent::decide))
            .route("/oauth/callback", get(login::callback))
            .route("/login", get(login::login_page))
            .route("/token", post(token::token))
            .route(
                "/userinfo",
                get(userinfo::userinfo).post(userinfo::userinfo),
            )
            .route("/revoke", post(revoke::revoke));
    }
    let router = router.with_state(state.clone());
    #[cfg(feature = "sandbox")]
    if sandbox_idp {
        return router.nest("/sandbox-idp", sandbox_idp::routes(&state.issuer));
    }
    let _ = sandbox_idp;
    router
}

/// 32 random bytes, base64url: codes, refresh tokens, nonces, PKCE verifiers.
pub(crate) fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// BASE64URL(SHA-256(verifier)), the S256 PKCE challenge.
pub(crate) fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}
