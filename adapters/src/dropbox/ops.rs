//! The Dropbox tools' implementations: arguments to route arguments, answers to the tools'
//! output shapes (see `tools.rs`) and a short text form for models that read text.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{client::DropboxClient, tools};
use crate::{
    CallContext, ToolError, ToolOutput,
    extract::{self, ExtractError, Window},
    linear::cursor,
    upstream::path,
};

pub(crate) struct Ops<'a> {
    pub client: &'a DropboxClient,
    pub args: &'a Map<String, Value>,
    pub ctx: &'a CallContext,
}

impl Ops<'_> {
    fn str_arg(&self, key: &str) -> Option<&str> {
        self.args.get(key).and_then(Value::as_str)
    }

    fn required(&self, key: &str) -> Result<&str, ToolError> {
        self.str_arg(key)
            .ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` is required")))
    }

    fn path(&self, key: &str) -> Result<String, ToolError> {
        normalize_path(self.required(key)?, false)
    }

    fn flag(&self, key: &str) -> bool {
        self.args.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    fn number(&self, key: &str, default: u64, max: u64) -> u64 {
        self.args
            .get(key)
            .and_then(Value::as_u64)
            .unwrap_or(default)
            .clamp(if key == "offset" { 0 } else { 1 }, max)
    }

    pub(crate) async fn search(&self) -> Result<ToolOutput, ToolError> {
        let tool = "search_files";
        let answer = match cursor::decode(tool, self.args)? {
            Some(next) => {
                self.client
                    .rpc(
                        "files/search/continue_v2",
                        &json!({ "cursor": next }),
                        true,
                        self.ctx,
                    )
                    .await?
            }
            None => {
                let mut options = json!({
                    "max_results": self.number("limit", 25, tools::MAX_PAGE),
                    "filename_only": self.flag("filename_only"),
                    "file_status": "active",
                });
                if let Some(path) = self.str_arg("path") {
                    options["path"] = json!(normalize_path(path, true)?);
                }
                let arg = json!({ "query": self.required("query")?, "options": options });
                self.client
                    .rpc("files/search_v2", &arg, true, self.ctx)
                    .await?
            }
        };
        let matches = answer
            .get("matches")
            .and_then(Value::as_array)
            .map(|matches| {
                matches
                    .iter()
                    .filter_map(|m| m.pointer("/metadata/metadata"))
                    .map(|meta| entry(meta, None))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let next = self.next_cursor(tool, &answer);
        Ok(page_output("matches", matches, next))
    }

    pub(crate) async fn list_folder(&self) -> Result<ToolOutput, ToolError> {
        let tool = "list_folder";
        let answer = match cursor::decode(tool, self.args)? {
            Some(next) => {
                self.client
                    .rpc(
                        "files/list_folder/continue",
                        &json!({ "cursor": next }),
                        true,
                        self.ctx,
                    )
                    .await?
            }
            None => {
                let path = normalize_path(self.str_arg("path").unwrap_or(""), true)?;
                let arg = json!({ "path": path, "recursive": false, "include_deleted": false,
                                  "limit": self.number("limit", 50, tools::MAX_PAGE) });
                self.client
                    .rpc("files/list_folder", &arg, true, self.ctx)
                    .await?
            }
        };
        let entries = answer
            .get("entries")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .map(|meta| entry(meta, None))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let next = self.next_cursor(tool, &answer);
        Ok(page_output("entries", entries, next))
    }

    fn next_cursor(&self, tool: &str, answer: &Value) -> Option<String> {
        let more = answer.get("has_more").and_then(Value::as_bool) == Some(true);
        let upstream = answer.get("cursor").and_then(Value::as_str)?;
        more.then(|| cursor::encode(tool, self.args, upstream))
    }

    pub(crate) async fn get_metadata(&self) -> Result<ToolOutput, ToolError> {
        let arg = json!({ "path": self.path("path")?, "include_deleted": false });
        let meta = self
            .client
            .rpc("files/get_metadata", &arg, true, self.ctx)
            .await?;
        single_output("Found", entry(&meta, None)?)
    }

    pub(crate) async fn read_file(&self) -> Result<ToolOutput, ToolError> {
        let download = self
            .client
            .download(&json!({ "path": self.path("path")? }), self.ctx)
            .await?;
        let file = entry(&download.metadata, Some("file"))?;
        let window = Window {
            offset: usize::try_from(self.number("offset", 0, u64::MAX)).unwrap_or(usize::MAX),
            max_chars: usize::try_from(self.number("max_chars", 20_000, tools::MAX_CHARS))
                .unwrap_or(20_000),
        };
        let name = file["name"].as_str().map(str::to_owned);
        let extracted = extract::extract_blocking(
            download.bytes,
            None,
            name,
            window,
            self.ctx.text_filter.clone(),
        )
        .await
        .map_err(extract_error)?;
        let text = format!(
            "{} ({}), characters {}-{} of {}{}:\n\n{}",
            file["path"].as_str().unwrap_or_default(),
            extracted.format,
            extracted.offset,
            extracted.offset + extracted.text.chars().count(),
            extracted.total_chars,
            extracted
                .next_offset
                .map(|n| format!("; continue with offset {n}"))
                .unwrap_or_default(),
            extracted.text
        );
        let structured = json!({
            "entry": file, "format": extracted.format.to_string(), "text": extracted.text,
            "offset": extracted.offset, "total_chars": extracted.total_chars,
            "next_offset": extracted.next_offset,
        });
        Ok(ToolOutput { structured, text })
    }

    pub(crate) async fn upload(&self) -> Result<ToolOutput, ToolError> {
        let mode = match self.str_arg("mode").unwrap_or("add") {
            mode @ ("add" | "overwrite") => mode,
            other => {
                return Err(ToolError::InvalidArguments(format!(
                    "`mode` must be add or overwrite, not {other}"
                )));
            }
        };
        let path = self.path("path")?;
        if path.starts_with("id:") {
            return Err(ToolError::InvalidArguments(
                "`path` of a new file must be a path such as /Notes/a.txt, not an id".into(),
            ));
        }
        let arg = json!({ "path": path, "mode": mode, "autorename": self.flag("autorename"),
                          "mute": false, "strict_conflict": false });
        let content = Bytes::from(self.required("content")?.to_owned());
        let meta = self.client.upload(&arg, content, self.ctx).await?;
        single_output("Uploaded", entry(&meta, Some("file"))?)
    }

    pub(crate) async fn create_folder(&self) -> Result<ToolOutput, ToolError> {
        let arg = json!({ "path": self.path("path")?, "autorename": self.flag("autorename") });
        let answer = self
            .client
            .rpc("files/create_folder_v2", &arg, false, self.ctx)
            .await?;
        single_output(
            "Created",
            entry(field(&answer, "metadata")?, Some("folder"))?,
        )
    }

    pub(crate) async fn move_item(&self) -> Result<ToolOutput, ToolError> {
        let arg = json!({ "from_path": self.path("from_path")?, "to_path": self.path("to_path")?,
                          "autorename": self.flag("autorename"), "allow_ownership_transfer": false });
        let answer = self
            .client
            .rpc("files/move_v2", &arg, false, self.ctx)
            .await?;
        single_output("Moved", entry(field(&answer, "metadata")?, None)?)
    }

    pub(crate) async fn delete(&self) -> Result<ToolOutput, ToolError> {
        let arg = json!({ "path": self.path("path")? });
        let answer = self
            .client
            .rpc("files/delete_v2", &arg, false, self.ctx)
            .await?;
        single_output("Deleted", entry(field(&answer, "metadata")?, None)?)
    }

    /// The audience `create_share_link` asks for (`public` when left out, as Dropbox's default
    /// for new links); its facts read the same.
    pub(crate) fn requested_audience(&self) -> Result<&str, ToolError> {
        match self.str_arg("audience").unwrap_or("public") {
            a @ ("public" | "team" | "no_one") => Ok(a),
            other => Err(ToolError::InvalidArguments(format!(
                "`audience` must be public, team or no_one, not {other}"
            ))),
        }
    }

    /// The path `create_share_link` shares, as its facts read it too.
    pub(crate) fn share_path(&self) -> Result<String, ToolError> {
        self.path("path")
    }

    pub(crate) async fn share(&self) -> Result<ToolOutput, ToolError> {
        let audience = self.requested_audience()?;
        let arg = json!({ "path": self.share_path()?,
                          "settings": { "audience": audience, "access": "viewer", "allow_download": true } });
        let (link, existing) = match self
            .client
            .rpc_or_route_error("sharing/create_shared_link_with_settings", &arg, self.ctx)
            .await?
        {
            Ok(link) => (link, false),
            Err(error) => match error.pointer("/shared_link_already_exists/metadata") {
                Some(link) => (link.clone(), true),
                None => {
                    let tag = error.get(".tag").and_then(Value::as_str).unwrap_or("error");
                    let inner = error
                        .pointer(&format!("/{tag}/.tag"))
                        .and_then(Value::as_str)
                        .map(|t| format!("{tag}/{t}"))
                        .unwrap_or_else(|| tag.to_owned());
                    return Err(super::client::route_error(inner));
                }
            },
        };
        let url = field(&link, "url")?.as_str().unwrap_or_default().to_owned();
        let structured = json!({
            "url": url, "name": link.get("name").and_then(Value::as_str).unwrap_or_default(),
            "path": link.get("path_lower").and_then(Value::as_str),
            "audience": link.pointer("/link_permissions/effective_audience/.tag")
                .or_else(|| link.pointer("/link_permissions/resolved_visibility/.tag"))
                .and_then(Value::as_str),
            "existing": existing,
        });
        let text = format!(
            "{} shared link: {url}",
            if existing { "Existing" } else { "New" }
        );
        Ok(ToolOutput { structured, text })
    }
}

/// Dropbox paths start with `/` (or are `id:`/`rev:`/`ns:` references); the root is `""` for
/// listing and searching. A path without a leading slash is read as relative to the root.
fn normalize_path(raw: &str, root_allowed: bool) -> Result<String, ToolError> {
    let trimmed = raw.trim();
    if ["id:", "rev:", "ns:"]
        .iter()
        .any(|p| trimmed.starts_with(p))
    {
        return Ok(trimmed.to_owned());
    }
    let path = format!("/{}", trimmed.trim_start_matches('/'));
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return if root_allowed {
            Ok(String::new())
        } else {
            Err(ToolError::InvalidArguments(
                "the root folder is not allowed here; give a file or folder path".into(),
            ))
        };
    }
    // The same rule as for URL paths: no component Dropbox (or anything it normalises with)
    // could read as `.` or `..`, and no control characters.
    for part in path.split('/').filter(|part| !part.is_empty()) {
        path::check_segment("path", part)?;
    }
    Ok(path.to_owned())
}

fn field<'v>(value: &'v Value, key: &str) -> Result<&'v Value, ToolError> {
    value
        .get(key)
        .ok_or_else(|| ToolError::BadResponse(format!("Dropbox answered without `{key}`")))
}

/// Converts Dropbox `Metadata` (tagged union, or a `FileMetadata`/`FolderMetadata` struct when
/// the route's result type is one: `tag` then says which) to the tools' entry shape.
fn entry(meta: &Value, tag: Option<&str>) -> Result<Value, ToolError> {
    let tag = meta
        .get(".tag")
        .and_then(Value::as_str)
        .or(tag)
        .unwrap_or("file");
    let kind = match tag {
        "file" => "file",
        "folder" => "folder",
        other => {
            return Err(ToolError::BadResponse(format!(
                "unexpected Dropbox metadata type `{other}`"
            )));
        }
    };
    let text = |key: &str| meta.get(key).and_then(Value::as_str);
    Ok(json!({
        "type": kind,
        "id": text("id").ok_or_else(|| ToolError::BadResponse("metadata without id".into()))?,
        "name": text("name").unwrap_or_default(),
        "path": text("path_display"),
        "size": meta.get("size").and_then(Value::as_u64),
        "modified": text("server_modified"),
    }))
}

fn line(entry: &Value) -> String {
    let size = entry["size"]
        .as_u64()
        .map(|s| format!(", {s} bytes"))
        .unwrap_or_default();
    format!(
        "- [{}] {} ({}{size})",
        entry["type"].as_str().unwrap_or_default(),
        entry["path"]
            .as_str()
            .or(entry["name"].as_str())
            .unwrap_or_default(),
        entry["id"].as_str().unwrap_or_default()
    )
}

fn page_output(key: &str, items: Vec<Value>, next: Option<String>) -> ToolOutput {
    ToolOutput::page(key, items, next, line)
}

fn single_output(verb: &str, entry: Value) -> Result<ToolOutput, ToolError> {
    let text = format!("{verb}:\n{}", line(&entry));
    Ok(ToolOutput {
        structured: json!({ "entry": entry }),
        text,
    })
}

/// A file that cannot be read as text is the caller's choice of file, not a provider failure.
pub(crate) fn extract_error(error: ExtractError) -> ToolError {
    match error {
        ExtractError::Failed => ToolError::BadResponse(error.to_string()),
        _ => ToolError::InvalidArguments(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_path("/", true).ok().as_deref(), Some(""));
        assert!(normalize_path("/", false).is_err());
        assert_eq!(
            normalize_path("Docs/a.txt", false).ok().as_deref(),
            Some("/Docs/a.txt")
        );
        assert_eq!(
            normalize_path("id:abc", false).ok().as_deref(),
            Some("id:abc")
        );
        assert!(normalize_path("/a/../b", false).is_err());
        assert_eq!(
            normalize_path("/a/..b/c.", false).ok().as_deref(),
            Some("/a/..b/c.")
        );
    }

    /// Every component spelling of `.` or `..` (padded, full-width, leader dots, invisible
    /// characters) or holding a control character is refused, wherever it sits in the path.
    #[test]
    fn refuses_dot_like_and_control_components() {
        let cores = [
            "..",
            ".",
            "\u{FF0E}\u{FF0E}",
            "\u{2025}",
            ".\u{200B}.",
            " ..",
            "..\u{FEFF}",
        ];
        let controls = ["a\u{0}b", "a\nb", "\u{7F}", "x\u{85}y"];
        let mut tried = 0;
        for core in cores.iter().chain(&controls) {
            for shape in ["{}", "/{}", "{}/x", "/a/{}/b", "a/{}"] {
                let raw = shape.replace("{}", core);
                assert!(normalize_path(&raw, true).is_err(), "{raw:?}");
                tried += 1;
            }
        }
        assert_eq!(tried, 55);
    }
}
