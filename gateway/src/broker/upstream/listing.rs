//! An upstream MCP server that authenticates each user lists its tools only to a user: the
//! gateway lists them with the token of some user who connected it (the most recent), or for
//! token exchange of a user who signed in lately, at start, after every connect and first
//! sign-in, until the instance is up. Which user's list the catalog shows is
//! then that user's; an upstream whose lists differ per user shows one user's (documented in
//! the README).

use std::{sync::Arc, time::Duration};

use manifold_adapters::{Adapter, CallContext, Health};
use manifold_policy::Principal;
use tokio_util::sync::CancellationToken;

use crate::broker::{CredentialBroker, UserBroker};

/// How often an instance that could not be listed is tried again without a new connect.
const RETRY: Duration = Duration::from_secs(30);

/// Lists each of `instances` (per-user `mcp` instances) with a connected user's token until
/// the gateway stops.
pub fn list_offers(
    broker: Arc<UserBroker>,
    instances: Vec<(String, Arc<dyn Adapter>)>,
    shutdown: CancellationToken,
) {
    if instances.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut connects = broker.connects();
        let mut sign_ins = broker.sign_ins().seen();
        loop {
            for (instance, adapter) in &instances {
                if adapter.health() != Some(Health::Up) {
                    list_one(&broker, instance, adapter.as_ref()).await;
                }
            }
            tokio::select! {
                changed = connects.changed() => if changed.is_err() { return },
                changed = sign_ins.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(RETRY) => {}
                () = shutdown.cancelled() => return,
            }
        }
    });
}

async fn list_one(broker: &UserBroker, instance: &str, adapter: &dyn Adapter) {
    // An exchanging instance lists as a user who signed in lately; a connected one as the
    // user who connected it last.
    let found = if broker.exchanges(instance) {
        Ok(broker.sign_ins().any_user())
    } else {
        let Some(connection) = broker.connection_of(instance) else {
            return;
        };
        broker.store().any_user(connection).await
    };
    let user = match found {
        Ok(Some(user)) => user,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%instance, %error, "cannot find a user to list the upstream as");
            return;
        }
    };
    let principal = Principal {
        user: Some(user.clone()),
        ..Principal::default()
    };
    let credential = match broker.credential(&principal, instance, &[]).await {
        Ok(credential) => credential,
        Err(error) => {
            tracing::info!(%instance, %error, "no usable token to list the upstream with");
            return;
        }
    };
    let ctx = CallContext {
        credential,
        user: Some(user),
        ..CallContext::default()
    };
    if let Err(error) = adapter.list_as(&ctx).await {
        tracing::warn!(%instance, %error, "the upstream could not be listed");
    }
}
