//! What the arguments name, as a Drive item: an id, `root`, a Drive or Docs link, or a path
//! walked from My Drive's root one name at a time. Calls and their policy facts both resolve
//! through here, so the item a policy decides on is the item the call acts on.

use std::fmt::Write as _;

use serde_json::Value;

use super::{
    super::{
        DriveAdapter,
        client::{FILE_FIELDS, ListQuery},
    },
    Args, FOLDER_MIME, opt_str, quote, req_str,
};
use crate::{CallContext, ToolError};

/// What a tool acts within, as its arguments name it: the one reading of the arguments that the
/// calls and their policy facts share. `None`: the whole Drive (a search without a folder).
pub(crate) fn target<'a>(tool: &str, args: &'a Args) -> Result<Option<&'a str>, ToolError> {
    Ok(match tool {
        "get_file" | "read_file" | "move_file" | "delete_file" | "share_file" => {
            Some(req_str(args, "file")?)
        }
        "list_folder" | "upload_file" => Some(opt_str(args, "folder").unwrap_or("root")),
        "create_folder" => Some(opt_str(args, "parent").unwrap_or("root")),
        "search_files" => opt_str(args, "folder"),
        other => return Err(ToolError::UnknownTool(other.to_owned())),
    })
}

/// The argument [`target`] reads for `tool`, when the tool names its item by an argument.
pub(crate) fn target_argument(tool: &str) -> Option<&'static str> {
    match tool {
        "get_file" | "read_file" | "move_file" | "delete_file" | "share_file" => Some("file"),
        "list_folder" | "upload_file" | "search_files" => Some("folder"),
        "create_folder" => Some("parent"),
        _ => None,
    }
}

/// The argument [`destination`] reads.
pub(crate) const DESTINATION_ARGUMENT: &str = "new_parent";

/// [`target`] for the tools that always name one item or folder.
pub(crate) fn named<'a>(tool: &str, args: &'a Args) -> Result<&'a str, ToolError> {
    target(tool, args)?
        .ok_or_else(|| ToolError::InvalidArguments(format!("`{tool}` names no item")))
}

/// The folder `move_file` moves the item into, if any.
pub(crate) fn destination(args: &Args) -> Option<&str> {
    opt_str(args, DESTINATION_ARGUMENT)
}

/// A Drive id: letters, digits, `-` and `_`.
fn is_id(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The id in a Drive or Docs link (`…/d/<id>/…`, `…/folders/<id>`, `…?id=<id>`).
fn id_from_link(link: &str) -> Option<String> {
    let url = url::Url::parse(link).ok()?;
    let host = url.host_str()?;
    if !(host.ends_with("google.com")) {
        return None;
    }
    if let Some((_, id)) = url.query_pairs().find(|(key, _)| key == "id") {
        return Some(id.into_owned()).filter(|id| is_id(id));
    }
    let segments: Vec<&str> = url.path_segments()?.collect();
    segments
        .windows(2)
        .find(|pair| matches!(pair[0], "d" | "folders"))
        .map(|pair| pair[1].to_owned())
        .filter(|id| is_id(id))
}

/// A file the arguments named: its id, and its metadata when resolving it fetched them.
pub(crate) struct Resolved {
    pub(crate) id: String,
    pub(crate) metadata: Option<Value>,
}

// === impl DriveAdapter ===

impl DriveAdapter {
    /// An id, `root`, a Drive link, or a path from My Drive's root.
    pub(crate) async fn resolve(
        &self,
        reference: &str,
        ctx: &CallContext,
    ) -> Result<Resolved, ToolError> {
        let reference = reference.trim();
        if reference.is_empty() || reference == "/" || reference.eq_ignore_ascii_case("root") {
            return Ok(Resolved {
                id: "root".into(),
                metadata: None,
            });
        }
        if reference.starts_with("http://") || reference.starts_with("https://") {
            let id = id_from_link(reference).ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "`{reference}` is not a Google Drive or Docs link with a file id"
                ))
            })?;
            return Ok(Resolved { id, metadata: None });
        }
        if !reference.contains('/') && is_id(reference) {
            return Ok(Resolved {
                id: reference.to_owned(),
                metadata: None,
            });
        }
        self.walk_path(reference, ctx).await
    }

    /// Follows a path one name at a time from My Drive's root.
    async fn walk_path(&self, path: &str, ctx: &CallContext) -> Result<Resolved, ToolError> {
        let names: Vec<&str> = path
            .trim_start_matches("My Drive")
            .split('/')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut parent = "root".to_owned();
        let mut walked = String::new();
        let mut found = None;
        let fields = format!("files({FILE_FIELDS})");
        for (index, name) in names.iter().enumerate() {
            let last = index + 1 == names.len();
            let mut q = format!(
                "{} in parents and name = {} and trashed = false",
                quote(&parent),
                quote(name)
            );
            if !last {
                let _ = write!(q, " and mimeType = {}", quote(FOLDER_MIME));
            }
            let page = self
                .drive
                .list(
                    &ListQuery {
                        q: &q,
                        page_size: 10,
                        fields: &fields,
                        ..ListQuery::default()
                    },
                    ctx,
                )
                .await?;
            let here = if walked.is_empty() {
                "/".to_owned()
            } else {
                walked.clone()
            };
            let file = match page.files.as_slice() {
                [] => {
                    return Err(ToolError::NotFound(format!(
                        "no {} named `{name}` in {here}; list_folder shows what is there",
                        if last { "file or folder" } else { "folder" }
                    )));
                }
                [one] => one.clone(),
                many => {
                    let ids: Vec<&str> = many.iter().filter_map(|f| f["id"].as_str()).collect();
                    return Err(ToolError::InvalidArguments(format!(
                        "{} items are named `{name}` in {here} (ids {}); pass the id instead",
                        many.len(),
                        ids.join(", ")
                    )));
                }
            };
            let _ = write!(walked, "/{name}");
            parent = file["id"].as_str().unwrap_or_default().to_owned();
            found = Some(file);
        }
        Ok(Resolved {
            id: parent,
            metadata: found,
        })
    }

    /// Full metadata of a resolved file.
    pub(crate) async fn metadata(
        &self,
        resolved: Resolved,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        match resolved.metadata {
            Some(metadata) => Ok(metadata),
            None => self.drive.get(&resolved.id, FILE_FIELDS, ctx).await,
        }
    }

    /// A folder's id, failing when the reference names a file.
    pub(crate) async fn folder_id(
        &self,
        reference: &str,
        ctx: &CallContext,
    ) -> Result<String, ToolError> {
        let resolved = self.resolve(reference, ctx).await?;
        if let Some(metadata) = resolved
            .metadata
            .as_ref()
            .filter(|m| m["mimeType"] != FOLDER_MIME)
        {
            let name = metadata["name"].as_str().unwrap_or(reference);
            return Err(ToolError::InvalidArguments(format!(
                "`{name}` is a file, not a folder"
            )));
        }
        Ok(resolved.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ids_in_links() {
        assert_eq!(
            id_from_link("https://docs.google.com/document/d/1AbC_d-9/edit?usp=sharing").as_deref(),
            Some("1AbC_d-9")
        );
        assert_eq!(
            id_from_link("https://drive.google.com/drive/folders/0Fold3r").as_deref(),
            Some("0Fold3r")
        );
        assert_eq!(
            id_from_link("https://drive.google.com/open?id=1xyz").as_deref(),
            Some("1xyz")
        );
        assert_eq!(id_from_link("https://example.com/d/1xyz"), None);
    }
}
