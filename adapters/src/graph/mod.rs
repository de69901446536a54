//! Microsoft 365 through Microsoft Graph: three adapter kinds (`outlook`, `teams`, `sharepoint`)
//! on one Graph client, one OAuth connection (`microsoft`) and one emulator mounted at `graph`.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::{
    Adapter, AdapterKind, BuildError, CallContext, InstanceSettings, OAuthSpec, ResolveFacts,
    StoredFacts, ToolError, ToolOutput,
};

mod args;
mod client;
mod cursor;
pub mod outlook;
mod schema;
pub mod sharepoint;
pub mod teams;

#[cfg(feature = "sandbox")]
pub mod sandbox;

use client::GraphClient;

/// Graph's public v1.0 root.
pub const DEFAULT_BASE_URL: &str = "https://graph.microsoft.com/v1.0";

/// Where all three kinds' shared emulator is served on the sandbox server.
pub const SANDBOX_MOUNT: &str = "graph";

/// The one Microsoft connection a user makes for Outlook, Teams and SharePoint alike.
pub fn oauth_spec() -> OAuthSpec {
    OAuthSpec {
        connection: "microsoft",
        display_name: "Microsoft 365",
        authorize_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        revoke_url: None,
        base_scopes: &["offline_access", "User.Read"],
        extra_authorize_params: &[],
        rotating_refresh_tokens: true,
        scope_separator: " ",
        sandbox_authorize_path: "/oauth/authorize",
        sandbox_token_path: "/oauth/token",
    }
}

/// Which of the three services an instance offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Outlook,
    Teams,
    SharePoint,
}

fn build(
    service: Service,
    id: &str,
    settings: InstanceSettings,
) -> Result<Arc<dyn Adapter>, BuildError> {
    if let Some(key) = settings.settings.keys().next() {
        return Err(BuildError::Setting {
            key: key.clone(),
            reason: format!("the {id} adapter takes no settings"),
        });
    }
    let graph = GraphClient::new(settings.client, &settings.base_url)?;
    Ok(Arc::new(GraphAdapter { service, graph }))
}

macro_rules! graph_kind {
    ($kind:ident, $service:expr, $id:literal, $summary:literal, $sandbox:expr) => {
        #[doc = concat!("The `", $id, "` adapter kind.")]
        #[derive(Debug)]
        pub struct $kind;

        impl AdapterKind for $kind {
            fn id(&self) -> &'static str {
                $id
            }
            fn summary(&self) -> &'static str {
                $summary
            }
            fn default_base_url(&self) -> &'static str {
                DEFAULT_BASE_URL
            }
            fn build(&self, settings: InstanceSettings) -> Result<Arc<dyn Adapter>, BuildError> {
                build($service, $id, settings)
            }
            fn oauth(&self) -> Option<OAuthSpec> {
                Some(oauth_spec())
            }
            fn sandbox_mount(&self) -> &'static str {
                SANDBOX_MOUNT
            }
            #[cfg(feature = "sandbox")]
            fn sandbox(&self) -> Option<axum::Router> {
                // Only one of the three serves the shared emulator, so the mount is nested once.
                $sandbox.then(|| sandbox::GraphSandbox::new().router())
            }
        }
    };
}

graph_kind!(
    OutlookKind,
    Service::Outlook,
    "outlook",
    "Outlook mail through Microsoft Graph: search, read, attachments, send, reply, drafts, folders",
    true
);
graph_kind!(
    TeamsKind,
    Service::Teams,
    "teams",
    "Microsoft Teams through Microsoft Graph: teams, channels, threads, chats, search, posting",
    false
);
graph_kind!(
    SharePointKind,
    Service::SharePoint,
    "sharepoint",
    "SharePoint and OneDrive files through Microsoft Graph: search, sites, drives, read, upload",
    false
);

/// One instance of any of the three kinds.
#[derive(Debug)]
struct GraphAdapter {
    service: Service,
    graph: GraphClient,
}

#[async_trait::async_trait]
impl Adapter for GraphAdapter {
    fn tools(&self) -> crate::Tools {
        crate::Tools::Static(match self.service {
            Service::Outlook => outlook::tools(),
            Service::Teams => teams::tools(),
            Service::SharePoint => sharepoint::tools(),
        })
    }

    async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let result = match self.service {
            Service::Outlook => outlook::call(&self.graph, tool, &arguments, ctx).await,
            Service::Teams => teams::call(&self.graph, tool, &arguments, ctx).await,
            Service::SharePoint => sharepoint::call(&self.graph, tool, &arguments, ctx).await,
        };
        // Graph's 403 says "access denied" without naming a permission; the tool knows which
        // delegated scopes it needs, so the user learns what to grant.
        result.map_err(|error| match error {
            ToolError::Forbidden(detail) => {
                let scopes = self
                    .tools()
                    .current()
                    .into_iter()
                    .find(|spec| spec.name == tool)
                    .map(|spec| spec.scopes.join(", "))
                    .unwrap_or_default();
                ToolError::Forbidden(format!(
                    "{detail}; `{tool}` needs the delegated permission(s) {scopes}: reconnect \
                     Microsoft and grant them, or ask for access to the resource"
                ))
            }
            other => other,
        })
    }

    fn facts(&self) -> Option<&dyn ResolveFacts> {
        (self.service != Service::SharePoint).then_some(self as &dyn ResolveFacts)
    }
}

#[async_trait::async_trait]
impl ResolveFacts for GraphAdapter {
    async fn resolve(
        &self,
        tool: &str,
        arguments: &Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<StoredFacts, ToolError> {
        match self.service {
            Service::Outlook => outlook::resolve_facts(&self.graph, tool, arguments, ctx).await,
            Service::Teams => teams::resolve_facts(&self.graph, tool, arguments, ctx).await,
            Service::SharePoint => Err(ToolError::UnknownTool(tool.to_owned())),
        }
    }
}
