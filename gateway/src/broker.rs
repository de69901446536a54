//! The token broker stage: which provider credential a call runs with, on whose behalf.
//!
//! The gateway never forwards the MCP client's own token to a provider. With static credentials
//! every caller shares the instance's configured credential (service-account style); the per-user
//! OAuth broker implements the same trait.

use std::collections::HashMap;

use manifold_adapters::Secret;
use manifold_policy::Principal;

/// Why no credential could be produced.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("adapter `{0}` has no credentials configured")]
    NotConfigured(String),
}

/// Supplies the provider credential for a caller and an adapter instance.
#[async_trait::async_trait]
pub trait CredentialBroker: Send + Sync {
    /// `Ok(None)` means the adapter needs no credential.
    async fn credential(
        &self,
        principal: &Principal,
        instance: &str,
    ) -> Result<Option<Secret>, BrokerError>;
}

/// The `token` from each instance's `[adapters.<name>.credentials]`.
#[derive(Debug, Default)]
pub struct StaticCredentials {
    tokens: HashMap<String, Secret>,
}

impl StaticCredentials {
    pub fn new(tokens: HashMap<String, Secret>) -> Self {
        Self { tokens }
    }
}

#[async_trait::async_trait]
impl CredentialBroker for StaticCredentials {
    async fn credential(
        &self,
        _principal: &Principal,
        instance: &str,
    ) -> Result<Option<Secret>, BrokerError> {
        match self.tokens.get(instance) {
            Some(token) if !token.is_empty() => Ok(Some(token.clone())),
            _ => Err(BrokerError::NotConfigured(instance.to_owned())),
        }
    }
}
