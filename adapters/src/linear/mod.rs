//! Linear (GraphQL at `POST /graphql`): issues, comments, teams, projects and workflow states.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::{
    Adapter, AdapterKind, BuildError, CallContext, InstanceSettings, OAuthSpec, ToolError,
    ToolOutput,
};

pub(crate) mod client;
pub(crate) mod cursor;
mod model;
mod ops;
pub mod queries;
mod render;
mod tools;

#[cfg(feature = "sandbox")]
pub mod sandbox;

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

    fn build(&self, settings: InstanceSettings) -> Result<Arc<dyn Adapter>, BuildError> {
        if let Some(key) = settings.settings.keys().next() {
            return Err(BuildError::Setting {
                key: key.clone(),
                reason: "the linear adapter takes no settings".into(),
            });
        }
        let graphql = client::GraphqlClient::new(settings.client, &settings.base_url)?;
        Ok(Arc::new(LinearAdapter { graphql }))
    }

    fn oauth(&self) -> Option<OAuthSpec> {
        Some(OAuthSpec {
            connection: "linear",
            display_name: "Linear",
            authorize_url: "https://linear.app/oauth/authorize",
            token_url: "https://api.linear.app/oauth/token",
            revoke_url: Some("https://api.linear.app/oauth/revoke"),
            base_scopes: &["read"],
            extra_authorize_params: &[("prompt", "consent")],
            rotating_refresh_tokens: true,
            scope_separator: ",",
            sandbox_authorize_path: "/oauth/authorize",
            sandbox_token_path: "/oauth/token",
        })
    }

    #[cfg(feature = "sandbox")]
    fn sandbox(&self) -> Option<axum::Router> {
        Some(sandbox::LinearSandbox::new().router())
    }
}

/// One Linear workspace connection.
#[derive(Debug)]
pub struct LinearAdapter {
    graphql: client::GraphqlClient,
}

#[async_trait::async_trait]
impl Adapter for LinearAdapter {
    fn tools(&self) -> crate::Tools {
        crate::Tools::Static(tools::all())
    }

    async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        match tool {
            "search_issues" | "list_issues" => self.issues_page(tool, &arguments, ctx).await,
            "get_issue" => self.get_issue(&arguments, ctx).await,
            "create_issue" | "update_issue" => self.write_issue(tool, &arguments, ctx).await,
            "add_comment" => self.add_comment(&arguments, ctx).await,
            "list_teams" | "list_projects" | "list_workflow_states" => {
                self.list_simple(tool, &arguments, ctx).await
            }
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }
}
