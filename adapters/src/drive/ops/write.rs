//! The tools that change Drive: upload, create folders, move, delete and share.

use std::fmt::Write as _;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use super::{
    super::{DriveAdapter, render, tools::MAX_UPLOAD_BYTES},
    Args, FOLDER_MIME, guess_mime, opt_bool, opt_str, req_str,
    resolve::{destination, named},
};
use crate::{CallContext, ToolError, ToolOutput};

// === impl DriveAdapter ===

impl DriveAdapter {
    pub(crate) async fn upload_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let name = req_str(args, "name")?;
        let content = match (
            args.get("content").and_then(Value::as_str),
            opt_str(args, "content_base64"),
        ) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(encoded)) => {
                let compact: String = encoded.split_whitespace().collect();
                STANDARD.decode(compact.as_bytes()).map_err(|error| {
                    ToolError::InvalidArguments(format!("`content_base64` is not base64: {error}"))
                })?
            }
            (Some(_), Some(_)) => {
                return Err(ToolError::InvalidArguments(
                    "give either `content` or `content_base64`, not both".into(),
                ));
            }
            (None, None) => {
                return Err(ToolError::InvalidArguments(
                    "`content` (text) or `content_base64` is required".into(),
                ));
            }
        };
        if content.len() > MAX_UPLOAD_BYTES {
            return Err(ToolError::InvalidArguments(format!(
                "the content is {}; upload_file takes at most {}",
                render::human_size(content.len() as u64),
                render::human_size(MAX_UPLOAD_BYTES as u64)
            )));
        }
        let mime =
            opt_str(args, "mime_type").map_or_else(|| guess_mime(name).to_owned(), str::to_owned);
        if mime.starts_with("application/vnd.google-apps.") || mime.contains(['\r', '\n']) {
            return Err(ToolError::InvalidArguments(format!(
                "`mime_type` {mime} cannot be uploaded as content"
            )));
        }
        let parent = self
            .folder_id(named("upload_file", args)?, ctx)
            .await
            .map_err(limited_access_hint)?;
        let mut metadata = json!({ "name": name, "parents": [parent], "mimeType": mime });
        if let Some(description) = opt_str(args, "description") {
            metadata["description"] = json!(description);
        }
        let created = self
            .drive
            .upload(&metadata, &content, &mime, ctx)
            .await
            .map_err(limited_access_hint)?;
        let file = render::file(&created);
        let mut text = format!("Uploaded `{name}`.\n");
        render::file_line(&mut text, &file);
        if let Some(link) = file["web_view_link"].as_str() {
            let _ = write!(text, "Link: {link}");
        }
        Ok(ToolOutput {
            structured: json!({ "file": file }),
            text: text.trim_end().to_owned(),
        })
    }

    pub(crate) async fn create_folder(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let name = req_str(args, "name")?;
        let parent = self
            .folder_id(named("create_folder", args)?, ctx)
            .await
            .map_err(limited_access_hint)?;
        let metadata = json!({ "name": name, "mimeType": FOLDER_MIME, "parents": [parent] });
        let created = self
            .drive
            .create(&metadata, ctx)
            .await
            .map_err(limited_access_hint)?;
        let folder = render::file(&created);
        let mut text = format!("Created the folder `{name}`.\n");
        render::file_line(&mut text, &folder);
        Ok(ToolOutput {
            structured: json!({ "folder": folder }),
            text: text.trim_end().to_owned(),
        })
    }

    pub(crate) async fn move_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let reference = named("move_file", args)?;
        let new_name = opt_str(args, "new_name");
        let new_parent = destination(args);
        if new_name.is_none() && new_parent.is_none() {
            return Err(ToolError::InvalidArguments(
                "give `new_parent`, `new_name` or both".into(),
            ));
        }
        let resolved = self.resolve(reference, ctx).await?;
        let current = self.metadata(resolved, ctx).await?;
        let id = current["id"].as_str().unwrap_or_default().to_owned();
        let (mut add, mut remove) = (None, None);
        if let Some(target) = new_parent {
            let mut target_id = self.folder_id(target, ctx).await?;
            if target_id == "root" {
                // Compared with the file's parents below, which name the root by its real id.
                let root = self.drive.get("root", "id", ctx).await?;
                target_id = root["id"].as_str().unwrap_or("root").to_owned();
            }
            if target_id == id {
                return Err(ToolError::InvalidArguments(
                    "a folder cannot be moved into itself".into(),
                ));
            }
            let parents: Vec<String> = current["parents"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if !parents.contains(&target_id) {
                remove = (!parents.is_empty()).then(|| parents.join(","));
                add = Some(target_id);
            }
        }
        let mut body = json!({});
        if let Some(name) = new_name {
            body["name"] = json!(name);
        }
        let updated = self
            .drive
            .update(&id, &body, add.as_deref(), remove.as_deref(), ctx)
            .await?;
        let file = render::file(&updated);
        let old_name = current["name"].as_str().unwrap_or_default();
        let mut text = match (new_name, add.is_some()) {
            (Some(name), true) => format!("Moved and renamed `{old_name}` to `{name}`.\n"),
            (Some(name), false) => format!("Renamed `{old_name}` to `{name}`.\n"),
            (None, true) => format!("Moved `{old_name}`.\n"),
            (None, false) => format!("`{old_name}` was already there; nothing changed.\n"),
        };
        render::file_line(&mut text, &file);
        Ok(ToolOutput {
            structured: json!({ "file": file }),
            text: text.trim_end().to_owned(),
        })
    }

    pub(crate) async fn delete_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let resolved = self.resolve(named("delete_file", args)?, ctx).await?;
        let current = self.metadata(resolved, ctx).await?;
        let id = current["id"].as_str().unwrap_or_default().to_owned();
        let name = current["name"].as_str().unwrap_or_default().to_owned();
        let permanently = opt_bool(args, "permanently", false);
        let outcome = if permanently {
            self.drive.delete(&id, ctx).await?;
            "deleted"
        } else {
            self.drive
                .update(&id, &json!({ "trashed": true }), None, None, ctx)
                .await?;
            "trashed"
        };
        let text = if permanently {
            format!("Deleted `{name}` (id {id}) permanently.")
        } else {
            format!("Moved `{name}` (id {id}) to the trash; its owner can restore it for 30 days.")
        };
        Ok(ToolOutput {
            structured: json!({ "id": id, "name": name, "outcome": outcome }),
            text,
        })
    }

    pub(crate) async fn share_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let email = req_str(args, "email")?;
        if !email.contains('@') || email.contains(char::is_whitespace) {
            return Err(ToolError::InvalidArguments(format!(
                "`{email}` is not an email address"
            )));
        }
        let role = req_str(args, "role")?;
        if !matches!(role, "reader" | "commenter" | "writer") {
            return Err(ToolError::InvalidArguments(
                "`role` must be reader, commenter or writer".into(),
            ));
        }
        let notify = opt_bool(args, "notify", true);
        let resolved = self.resolve(named("share_file", args)?, ctx).await?;
        let id = match resolved.metadata {
            Some(metadata) => metadata["id"].as_str().unwrap_or_default().to_owned(),
            None => resolved.id,
        };
        let permission = self
            .drive
            .create_permission(
                &id,
                &json!({ "type": "user", "role": role, "emailAddress": email }),
                notify,
                opt_str(args, "message"),
                ctx,
            )
            .await?;
        let text_of = |key: &str| {
            permission
                .get(key)
                .and_then(Value::as_str)
                .map_or(Value::Null, |s| json!(s))
        };
        let permission_out = json!({
            "id": permission.get("id").and_then(Value::as_str).unwrap_or_default(),
            "type": permission.get("type").and_then(Value::as_str).unwrap_or("user"),
            "role": permission.get("role").and_then(Value::as_str).unwrap_or(role),
            "email": text_of("emailAddress"),
            "display_name": text_of("displayName"),
        });
        let text = format!(
            "Shared file {id} with {email} as {role}{}.",
            if notify {
                "; Google emailed them"
            } else {
                " without notifying them"
            }
        );
        Ok(ToolOutput {
            structured: json!({ "file_id": id, "permission": permission_out }),
            text,
        })
    }
}

/// A folder not found while creating may exist but be out of reach of a `drive.file`
/// connection, which sees only My Drive's root and what it created.
fn limited_access_hint(error: ToolError) -> ToolError {
    match error {
        ToolError::NotFound(message) => ToolError::NotFound(format!(
            "{message}. If the folder exists, this connection may only be allowed to add to My \
             Drive's root and to folders it created; create one with create_folder or omit the \
             folder"
        )),
        other => other,
    }
}
