//! The policy stage: who may list and call which tool (Cedar policies, hot-reloaded), per-user,
//! per-tool and per-adapter quotas, and the read-only switch of adapter instances. A call this
//! stage refuses never reaches the broker or a provider, except to read the stored state of a tool
//! whose spec says `resolves_facts` (`handler/facts.rs`).

use std::{path::Path, sync::Arc};

use manifold_policy::{
    AllowAll, PolicyEngine, PolicyStore, Principal, ToolDescriptor, ToolRef, WatchHandle,
    quota::{QuotaConfig, QuotaError, Quotas, RedisConfig},
};
use serde_json::Value;

use crate::router::{Catalog, Route};

/// Why the policy stage could not be set up. Locations are `file:line:column`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyStageError {
    #[error("policies in {dir}: {message}")]
    Policies { dir: String, message: String },
    #[error("{path}: {message}")]
    Quotas { path: String, message: String },
}

/// The decision engine and quotas in force.
pub struct PolicyStage {
    engine: Arc<dyn PolicyEngine>,
    store: Option<Arc<PolicyStore>>,
    quotas: Option<Quotas>,
    _watch: Option<WatchHandle>,
}

impl std::fmt::Debug for PolicyStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStage")
            .field("cedar", &self.store.is_some())
            .field("quotas", &self.quotas.is_some())
            .finish()
    }
}

/// What the policy layer knows of each tool: the schema Cedar validates policies against.
///
/// A tool is known by its original identity (`router/virtualize.rs`): the name it would have
/// without an admin's rename, the adapter's own input schema (which holds pinned arguments), and
/// hints an override may only make more cautious.
pub fn descriptors(catalog: &Catalog) -> Vec<ToolDescriptor> {
    catalog
        .routes()
        .iter()
        .map(|route| ToolDescriptor {
            name: route.view.policy_name.clone(),
            instance: route.instance.to_string(),
            kind: route.kind.to_string(),
            read_only: route.view.enforced.read_only,
            destructive: route.view.enforced.destructive,
            tags: route.tags.clone(),
            input_schema: Value::Object(route.spec.input_schema.clone()),
        })
        .collect()
}

/// The policy view of a route.
pub fn tool_ref(route: &Route) -> ToolRef<'_> {
    ToolRef {
        name: &route.view.policy_name,
        instance: &route.instance,
        kind: &route.kind,
        read_only: route.view.enforced.read_only,
        destructive: route.view.enforced.destructive,
        tags: &route.tags,
    }
}

// === impl PolicyStage ===

impl PolicyStage {
    /// Allows everything: no `[policy] dir` configured.
    pub fn allow_all() -> Self {
        Self {
            engine: Arc::new(AllowAll),
            store: None,
            quotas: None,
            _watch: None,
        }
    }

    /// Loads `dir` (policies, `quotas.toml`) for the tools of `catalog`; refuses to start on
    /// any error rather than run with no or half a policy. Quotas are shared through the
    /// gateway's Redis (`storage.redis_url`) unless `quotas.toml` names its own `[redis]`.
    pub async fn load(
        dir: &Path,
        watch: bool,
        catalog: &Catalog,
        redis_url: Option<&str>,
    ) -> Result<Self, PolicyStageError> {
        let tools = descriptors(catalog);
        let store = PolicyStore::open(dir, &tools).map_err(|error| PolicyStageError::Policies {
            dir: dir.display().to_string(),
            message: error.to_string(),
        })?;
        let watch = if watch {
            Some(store.watch().map_err(|error| PolicyStageError::Policies {
                dir: dir.display().to_string(),
                message: error.to_string(),
            })?)
        } else {
            None
        };
        let quotas_path = dir.join("quotas.toml");
        let quotas = match std::fs::read_to_string(&quotas_path) {
            Ok(text) => {
                let quota_error = |message: String| PolicyStageError::Quotas {
                    path: quotas_path.display().to_string(),
                    message,
                };
                let mut config =
                    QuotaConfig::from_toml(&text).map_err(|e| quota_error(e.to_string()))?;
                if config.redis.is_none() {
                    config.redis = redis_url.map(RedisConfig::at);
                }
                Some(
                    Quotas::new(&config)
                        .await
                        .map_err(|e| quota_error(e.to_string()))?,
                )
            }
            Err(_) => None,
        };
        Ok(Self {
            engine: store.clone(),
            store: Some(store),
            quotas,
            _watch: watch,
        })
    }

    pub fn engine(&self) -> &Arc<dyn PolicyEngine> {
        &self.engine
    }

    /// The Cedar store, when policies are configured (for `explain` and reload metrics).
    pub fn store(&self) -> Option<&Arc<PolicyStore>> {
        self.store.as_ref()
    }

    /// Counts the call against every matching quota; `Err` names the rule and when to retry.
    pub async fn admit(&self, principal: &Principal, tool: &ToolRef<'_>) -> Result<(), QuotaError> {
        match &self.quotas {
            Some(quotas) => quotas.check(principal, tool).await,
            None => Ok(()),
        }
    }
}
