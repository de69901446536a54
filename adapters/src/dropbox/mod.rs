//! Dropbox (API v2): search, browse, read, upload, organise and share files in a user's Dropbox.
//!
//! Settings: `content_url` (optional) overrides the content host; see [`client`] for how it is
//! derived from `base_url` otherwise.

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

pub use client::escape_non_ascii;

/// The `dropbox` adapter kind.
#[derive(Debug)]
pub struct DropboxKind;

impl AdapterKind for DropboxKind {
    fn id(&self) -> &'static str {
        "dropbox"
    }

    fn summary(&self) -> &'static str {
        "Dropbox files and folders: search, list, read as text, upload, move, delete, share (API v2)"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.dropboxapi.com"
    }

    fn build(&self, settings: InstanceSettings) -> Result<Arc<dyn Adapter>, BuildError> {
        let mut content_url = None;
        for (key, value) in &settings.settings {
            match (key.as_str(), value) {
                ("content_url", Value::String(url)) => content_url = Some(url.as_str()),
                _ => {
                    return Err(BuildError::Setting {
                        key: key.clone(),
                        reason: "the dropbox adapter takes only `content_url` (a URL string)"
                            .into(),
                    });
                }
            }
        }
        let client = client::DropboxClient::new(settings.client, &settings.base_url, content_url)?;
        Ok(Arc::new(DropboxAdapter { client }))
    }

    fn oauth(&self) -> Option<OAuthSpec> {
        Some(OAuthSpec {
            connection: "dropbox",
            display_name: "Dropbox",
            authorize_url: "https://www.dropbox.com/oauth2/authorize",
            token_url: "https://api.dropboxapi.com/oauth2/token",
            revoke_url: Some("https://api.dropboxapi.com/2/auth/token/revoke"),
            // Every tool's scope implies this one in Dropbox's app console.
            base_scopes: &["files.metadata.read"],
            // Without it Dropbox issues only short-lived access tokens and no refresh token.
            extra_authorize_params: &[("token_access_type", "offline")],
            // Dropbox refresh tokens stay valid until revoked.
            rotating_refresh_tokens: false,
            scope_separator: " ",
            sandbox_authorize_path: "/oauth/authorize",
            sandbox_token_path: "/oauth/token",
        })
    }

    #[cfg(feature = "sandbox")]
    fn sandbox(&self) -> Option<axum::Router> {
        Some(sandbox::DropboxSandbox::new().router())
    }
}

/// One Dropbox connection.
#[derive(Debug)]
pub struct DropboxAdapter {
    client: client::DropboxClient,
}

#[async_trait::async_trait]
impl Adapter for DropboxAdapter {
    fn tools(&self) -> crate::Tools {
        crate::Tools::Static(tools::all())
    }

    /// Whom a shared link works for, existing links included (`facts.rs`).
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
            "get_metadata" => ops.get_metadata().await,
            "read_file" => ops.read_file().await,
            "upload_file" => ops.upload().await,
            "create_folder" => ops.create_folder().await,
            "move_item" => ops.move_item().await,
            "delete_item" => ops.delete().await,
            "create_share_link" => ops.share().await,
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }
}
