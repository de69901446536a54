//! Linear (GraphQL at `POST /graphql`).

use std::sync::Arc;

use crate::{Adapter, AdapterKind, BuildError, InstanceSettings};

/// The `linear` adapter kind.
#[derive(Debug)]
pub struct LinearKind;

impl AdapterKind for LinearKind {
    fn id(&self) -> &'static str {
        "linear"
    }

    fn summary(&self) -> &'static str {
        "Linear issues, comments, teams, projects and workflow states (GraphQL API)"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.linear.app"
    }

    fn build(&self, _settings: InstanceSettings) -> Result<Arc<dyn Adapter>, BuildError> {
        Err(BuildError::Client("the linear adapter is being written".into()))
    }
}
