//! The registry of adapter kinds the gateway can instantiate.

use std::{collections::BTreeMap, sync::Arc};

use crate::AdapterKind;

/// Adapter kinds by their config name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn AdapterKind>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

// === impl Registry ===

impl Registry {
    /// Every kind built into this binary. Adding a backend adds one line here.
    pub fn builtin() -> Self {
        let mut registry = Self::default();
        registry.register(Arc::new(crate::linear::LinearKind));
        registry.register(Arc::new(crate::graph::OutlookKind));
        registry.register(Arc::new(crate::graph::TeamsKind));
        registry.register(Arc::new(crate::graph::SharePointKind));
        registry.register(Arc::new(crate::dropbox::DropboxKind));
        registry.register(Arc::new(crate::boxcom::BoxKind));
        registry.register(Arc::new(crate::drive::DriveKind));
        registry.register(Arc::new(crate::mcp::McpKind));

        registry
    }

    pub fn register(&mut self, kind: Arc<dyn AdapterKind>) {
        self.kinds.insert(kind.id(), kind);
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn AdapterKind>> {
        self.kinds.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    pub fn kinds(&self) -> impl Iterator<Item = &Arc<dyn AdapterKind>> + '_ {
        self.kinds.values()
    }
}
