//! The token broker stage: which provider credential a call runs with, on whose behalf.
//!
//! The gateway never forwards the MCP client's own token to a provider. Instances configured
//! with a `token` credential share it among every caller (service-account style,
//! [`StaticCredentials`]); every other instance of a kind with OAuth uses the caller's own
//! tokens, which each user connects once at `/connections` ([`UserBroker`], [`web`]). Provider
//! credentials are bound to the user's identity (`sub`), never to the MCP session.

use std::collections::HashMap;

use manifold_adapters::Secret;
use manifold_policy::Principal;

pub mod demo;
pub mod identity;
pub mod provider;
mod refresh;
pub mod setup;
mod state;
pub mod store;
pub mod upstream;
mod user;
pub mod web;

pub use identity::{DevIdentity, WebIdentity};
pub use user::{BrokerSettings, UserBroker};

/// Why no credential could be produced. Messages are shown to the user (through the model) and
/// say what to do; they never carry tokens.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("adapter `{0}` has no credentials configured")]
    NotConfigured(String),
    #[error("{display} needs your own account, and this call has no signed-in user")]
    NoUser { display: String },
    /// Token exchange needs the bearer token the caller signed in to the gateway with.
    #[error(
        "{display} is reached with the token you signed in with, and this call came without one \
         (sign in to the gateway with OAuth)"
    )]
    NoSignIn { display: String },
    #[error(
        "{display} is not connected for you. Connect it at {url} and then call the tool again."
    )]
    NotConnected {
        connection: String,
        display: String,
        url: String,
    },
    #[error(
        "your {display} connection stopped working (the provider refused to renew it). \
         Reconnect at {url} and then call the tool again."
    )]
    Broken {
        connection: String,
        display: String,
        url: String,
    },
    #[error(
        "this tool needs {display} permission you have not granted yet ({missing}). \
         Grant it at {url} and then call the tool again."
    )]
    MissingScopes {
        connection: String,
        display: String,
        missing: String,
        url: String,
    },
    #[error("{display} could not renew your access: {reason}")]
    Provider { display: String, reason: String },
    #[error("token storage failed: {0}")]
    Storage(String),
}

impl BrokerError {
    /// The page the user must visit to fix this, when a visit fixes it: `(connection, url)`.
    pub fn user_action(&self) -> Option<(&str, &str)> {
        match self {
            Self::NotConnected {
                connection, url, ..
            }
            | Self::Broken {
                connection, url, ..
            }
            | Self::MissingScopes {
                connection, url, ..
            } => Some((connection, url)),
            _ => None,
        }
    }
}

/// Supplies the provider credential for a caller and an adapter instance.
#[async_trait::async_trait]
pub trait CredentialBroker: Send + Sync {
    /// The credential for `principal` on `instance`, good for a tool needing `scopes`.
    /// `Ok(None)` means the adapter needs no credential.
    async fn credential(
        &self,
        principal: &Principal,
        instance: &str,
        scopes: &[String],
    ) -> Result<Option<Secret>, BrokerError>;

    /// The provider rejected `rejected` (HTTP 401): a renewed credential to retry once with, or
    /// `None` when there is nothing to renew (static credentials).
    async fn renew(
        &self,
        _principal: &Principal,
        _instance: &str,
        _rejected: &Secret,
    ) -> Result<Option<Secret>, BrokerError> {
        Ok(None)
    }
}

/// The `token` from each instance's `[adapters.<name>.credentials]`.
#[derive(Debug, Default)]
pub struct StaticCredentials {
    tokens: HashMap<String, Secret>,
    /// Instances whose adapter carries its own credential on its connection (an upstream MCP
    /// server): their calls take none from here, and lacking one is not an error.
    self_credentialed: std::collections::HashSet<String>,
}

impl StaticCredentials {
    pub fn new(tokens: HashMap<String, Secret>) -> Self {
        Self {
            tokens,
            self_credentialed: Default::default(),
        }
    }

    /// Marks `instance` as one that needs no per-call credential.
    pub fn self_credentialed(mut self, instance: impl Into<String>) -> Self {
        self.self_credentialed.insert(instance.into());
        self
    }

    pub fn get(&self, instance: &str) -> Option<&Secret> {
        self.tokens.get(instance).filter(|t| !t.is_empty())
    }

    /// `instance` carries its own credential on its connection and takes none per call.
    pub fn is_self_credentialed(&self, instance: &str) -> bool {
        self.self_credentialed.contains(instance)
    }
}

#[async_trait::async_trait]
impl CredentialBroker for StaticCredentials {
    async fn credential(
        &self,
        _principal: &Principal,
        instance: &str,
        _scopes: &[String],
    ) -> Result<Option<Secret>, BrokerError> {
        if self.is_self_credentialed(instance) {
            return Ok(None);
        }
        match self.get(instance) {
            Some(token) => Ok(Some(token.clone())),
            None => Err(BrokerError::NotConfigured(instance.to_owned())),
        }
    }
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
