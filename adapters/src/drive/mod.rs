//! Google Drive (REST API v3 under `/drive/v3`, uploads under `/upload/drive/v3`): search, list,
//! read files as text, upload, create folders, move, delete and share.
//!
//! Settings (`[adapters.<name>.settings]`):
//! - `shared_drives` (bool, default true): search and list shared drives' items as well
//!   (`corpora=allDrives`, `includeItemsFromAllDrives=true`); false keeps to My Drive and files
//!   shared with the user (`corpora=user`).

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::{
    Adapter, AdapterKind, BuildError, CallContext, InstanceSettings, OAuthSpec, ResolveFacts,
    ToolError, ToolOutput,
};

mod cache;
mod client;
mod cursor;
mod facts;
mod ops;
mod render;
pub mod tools;

#[cfg(feature = "sandbox")]
pub mod sandbox;

/// The `drive` adapter kind.
#[derive(Debug)]
pub struct DriveKind;

impl AdapterKind for DriveKind {
    fn id(&self) -> &'static str {
        "drive"
    }

    fn summary(&self) -> &'static str {
        "Google Drive files and folders: search, list, read as text, upload, move, delete, share (Drive API v3)"
    }

    fn default_base_url(&self) -> &'static str {
        "https://www.googleapis.com"
    }

    fn build(&self, settings: InstanceSettings) -> Result<Arc<dyn Adapter>, BuildError> {
        let mut shared_drives = true;
        for (key, value) in &settings.settings {
            match (key.as_str(), value) {
                ("shared_drives", Value::Bool(on)) => shared_drives = *on,
                ("shared_drives", _) => {
                    return Err(BuildError::Setting {
                        key: key.clone(),
                        reason: "must be true or false".into(),
                    });
                }
                _ => {
                    return Err(BuildError::Setting {
                        key: key.clone(),
                        reason: "unknown setting; the drive adapter takes `shared_drives`".into(),
                    });
                }
            }
        }
        let drive = client::DriveClient::new(settings.client, &settings.base_url, shared_drives)?;
        Ok(Arc::new(DriveAdapter {
            drive,
            cache: cache::TextCache::default(),
        }))
    }

    fn oauth(&self) -> Option<OAuthSpec> {
        Some(OAuthSpec {
            // One Google connection, should other Google kinds (Gmail, Calendar) join.
            connection: "google",
            display_name: "Google",
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
            token_url: "https://oauth2.googleapis.com/token",
            revoke_url: Some("https://oauth2.googleapis.com/revoke"),
            // Google grants a refresh token through `access_type=offline`, not a scope.
            base_scopes: &[],
            extra_authorize_params: &[
                ("access_type", "offline"),
                // Without it Google returns no new refresh token when the user consented before.
                ("prompt", "consent"),
                // A step-up to a tool's scope keeps the scopes granted before (incremental
                // authorization), so the new token serves the earlier tools too.
                ("include_granted_scopes", "true"),
            ],
            // Google's refresh tokens stay valid across refreshes.
            rotating_refresh_tokens: false,
            scope_separator: " ",
            sandbox_authorize_path: "/oauth/authorize",
            sandbox_token_path: "/oauth/token",
        })
    }

    #[cfg(feature = "sandbox")]
    fn sandbox(&self) -> Option<axum::Router> {
        Some(sandbox::DriveSandbox::new().router())
    }
}

/// One Google Drive connection.
#[derive(Debug)]
pub struct DriveAdapter {
    drive: client::DriveClient,
    cache: cache::TextCache,
}

#[async_trait::async_trait]
impl Adapter for DriveAdapter {
    fn tools(&self) -> crate::Tools {
        crate::Tools::Static(tools::all())
    }

    /// The folders each call acts within, for policies on folders (`facts.rs`).
    fn facts(&self) -> Option<&dyn ResolveFacts> {
        Some(self)
    }

    async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        match tool {
            "search_files" => self.search_files(&arguments, ctx).await,
            "list_folder" => self.list_folder(&arguments, ctx).await,
            "get_file" => self.get_file(&arguments, ctx).await,
            "read_file" => self.read_file(&arguments, ctx).await,
            "upload_file" => self.upload_file(&arguments, ctx).await,
            "create_folder" => self.create_folder(&arguments, ctx).await,
            "move_file" => self.move_file(&arguments, ctx).await,
            "delete_file" => self.delete_file(&arguments, ctx).await,
            "share_file" => self.share_file(&arguments, ctx).await,
            other => Err(ToolError::UnknownTool(other.to_owned())),
        }
    }
}
