//! Box (API 2.0): search, browse, read, upload, organise and share files in a user's Box.
//! The folder is `boxcom` because `box` is a Rust keyword; the kind's id is `box`.
//!
//! Settings: `upload_url` (optional) overrides the upload host; see [`client`] for the default.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::{
    Adapter, AdapterKind, BuildError, CallContext, InstanceSettings, OAuthSpec, ResolveFacts,
    ToolError, ToolOutput,
};

mod client;
mod facts;
mod ops;
mod tools;

#[cfg(feature = "sandbox")]
pub mod sandbox;

/// The `box` adapter kind.
#[derive(Debug)]
pub struct BoxKind;

impl AdapterKind for BoxKind {
    fn id(&self) -> &'static str {
        "box"
    }

    fn summary(&self) -> &'static str {
        "Box files and folders: search, list, read as text, upload, move, delete, share (API 2.0)"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.box.com"
    }

    fn build(&self, settings: InstanceSettings) -> Result<Arc<dyn Adapter>, BuildError> {
        let mut upload_url = None;
        for (key, value) in &settings.settings {
            match (key.as_str(), value) {
                ("upload_url", Value::String(url)) => upload_url = Some(url.as_str()),
                _ => {
                    return Err(BuildError::Setting {
                        key: key.clone(),
                        reason: "the box adapter takes only `upload_url` (a URL string)".into(),
                    });
                }
            }
        }
        let client = client::BoxClient::new(settings.client, &settings.base_url, upload_url)?;
        Ok(Arc::new(BoxAdapter { client }))
    }

    fn oauth(&self) -> Option<OAuthSpec> {
        Some(OAuthSpec {
            connection: "box",
            display_name: "Box",
            authorize_url: "https://account.box.com/api/oauth2/authorize",
            token_url: "https://api.box.com/oauth2/token",
            revoke_url: Some("https://api.box.com/oauth2/revoke"),
            base_scopes: &["root_readonly"],
            extra_authorize_params: &[],
            // Box refresh tokens are single-use: each refresh returns a new one.
            rotating_refresh_tokens: true,
            scope_separator: " ",
            sandbox_authorize_path: "/oauth/authorize",
            sandbox_token_path: "/oauth/token",
        })
    }

    #[cfg(feature = "sandbox")]
    fn sandbox(&self) -> Option<axum::Router> {
        Some(sandbox::BoxSandbox::new().router())
    }
}

/// One Box connection.
#[derive(Debug)]
pub struct BoxAdapter {
    client: client::BoxClient,
}

#[async_trait::async_trait]
impl Adapter for BoxAdapter {
    fn tools(&self) -> crate::Tools {
        crate::Tools::Static(tools::all())
    }

    /// Whom a shared link works for (`facts.rs`).
    fn facts(&self) -> Option<&dyn ResolveFacts> {
        Some(self)
    }

    async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let ops = ops::Ops {
            client: &self.client,
            args: &arguments,
            ctx,
        };
        match tool {
            "search_files" => ops.search().await,
            "list_folder" => ops.list_folder().await,
            "get_item" => ops.get_item().await,
            "read_file" => ops.read_file().await,
            "upload_file" => ops.upload().await,
            "create_folder" => ops.create_folder().await,
            "move_file" => ops.move_file().await,
            "delete_file" => ops.delete().await,
            "create_share_link" => ops.share().await,
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }
}
