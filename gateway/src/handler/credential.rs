//! The user's provider credential for one provider request: fetched from the broker, and when
//! the provider rejects it (401) renewed once and the request made once more. The call itself,
//! the facts read before its decision, and the reads, gets and completions of an upstream that
//! authenticates each user all go through here, so all follow one rule.

use std::future::Future;

use manifold_adapters::{Secret, ToolError};
use manifold_policy::Principal;

use super::Gateway;
use crate::{broker::BrokerError, router::Route};

/// Why a request made with the user's credential produced no answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum CredentialedError {
    /// No usable credential (not connected, broken connection, renewal refused).
    #[error(transparent)]
    NotConnected(BrokerError),
    /// The adapter or its provider failed (after the one renewal, for a 401).
    #[error(transparent)]
    Tool(ToolError),
}

// === impl Gateway ===

impl Gateway {
    /// Runs `attempt` with the user's credential for `route`; when it fails as unauthorized,
    /// renews the credential once and runs `attempt` once more.
    pub(super) async fn with_credential<T, F, Fut>(
        &self,
        route: &Route,
        principal: &Principal,
        attempt: F,
    ) -> Result<T, CredentialedError>
    where
        F: Fn(Option<Secret>) -> Fut,
        Fut: Future<Output = Result<T, ToolError>>,
    {
        self.with_instance_credential(&route.instance, &route.spec.scopes, principal, attempt)
            .await
    }

    /// [`Self::with_credential`] for a request to `instance` that is no tool call (a resource
    /// read, a prompt get, a completion), asking for `scopes`.
    pub(super) async fn with_instance_credential<T, F, Fut>(
        &self,
        instance: &str,
        scopes: &[String],
        principal: &Principal,
        attempt: F,
    ) -> Result<T, CredentialedError>
    where
        F: Fn(Option<Secret>) -> Fut,
        Fut: Future<Output = Result<T, ToolError>>,
    {
        let broker = &self.broker;
        let credential = broker
            .credential(principal, instance, scopes)
            .await
            .map_err(CredentialedError::NotConnected)?;
        match (attempt(credential.clone()).await, credential) {
            (Err(ToolError::Unauthorized(reason)), Some(rejected)) => {
                let renewed = broker
                    .renew(principal, instance, &rejected)
                    .await
                    .map_err(CredentialedError::NotConnected)?;
                match renewed {
                    Some(renewed) => attempt(Some(renewed)).await,
                    None => Err(ToolError::Unauthorized(reason)),
                }
            }
            (outcome, _) => outcome,
        }
        .map_err(CredentialedError::Tool)
    }
}
