//! The Box tools' implementations: arguments to Box requests, answers to the tools' output
//! shapes (see `tools.rs`) and a short text form.

use bytes::Bytes;
use http::Method;
use serde_json::{Map, Value, json};

use super::{client::BoxClient, tools};
use crate::{
    CallContext, ToolError, ToolOutput,
    extract::{self, Window},
    linear::cursor,
    upstream::PathSegment,
};

/// The fields asked for on every item, so list and search answers carry size and time.
const FIELDS: &str = "type,id,name,size,modified_at,parent";

pub(crate) struct Ops<'a> {
    pub client: &'a BoxClient,
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

    /// Box ids are decimal numbers; anything else is refused before it reaches a URL.
    fn id(&self, key: &str) -> Result<&str, ToolError> {
        let id = self.required(key)?;
        if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ToolError::InvalidArguments(format!(
                "`{key}` must be a Box id (digits), got `{id}`"
            )));
        }
        Ok(id)
    }

    /// The Box id under `key`, encoded for a URL path.
    fn id_segment(&self, key: &str) -> Result<PathSegment, ToolError> {
        Ok(PathSegment::encode(key, self.id(key)?)?)
    }

    fn name(&self) -> Result<&str, ToolError> {
        let name = self.required("name")?.trim();
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(ToolError::InvalidArguments(
                "`name` must be a plain name without slashes".into(),
            ));
        }
        Ok(name)
    }

    fn number(&self, key: &str, default: u64, max: u64) -> u64 {
        self.args
            .get(key)
            .and_then(Value::as_u64)
            .unwrap_or(default)
            .min(max)
    }

    pub(crate) async fn search(&self) -> Result<ToolOutput, ToolError> {
        let tool = "search_files";
        let offset: u64 = match cursor::decode(tool, self.args)? {
            Some(offset) => offset
                .parse()
                .map_err(|_| ToolError::InvalidArguments("`cursor` is not valid".into()))?,
            None => 0,
        };
        let limit = self.number("limit", 25, tools::MAX_PAGE).max(1);
        let mut query = vec![
            ("query", self.required("query")?.to_owned()),
            ("offset", offset.to_string()),
            ("limit", limit.to_string()),
            ("fields", FIELDS.to_owned()),
        ];
        if let Some(kind) = self.str_arg("type") {
            query.push(("type", kind.to_owned()));
        }
        if self.str_arg("folder_id").is_some() {
            query.push(("ancestor_folder_ids", self.id("folder_id")?.to_owned()));
        }
        if self.args.get("names_only").and_then(Value::as_bool) == Some(true) {
            query.push(("content_types", "name".to_owned()));
        }
        let url = self.client.url(&["search".into()], &query)?;
        let answer = self.client.json(Method::GET, url, None, self.ctx).await?;
        let matches = entries(&answer)?;
        let total = answer
            .get("total_count")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let end = offset + matches.len() as u64;
        let next = (!matches.is_empty() && end < total)
            .then(|| cursor::encode(tool, self.args, &end.to_string()));
        Ok(page_output("matches", matches, next))
    }

    pub(crate) async fn list_folder(&self) -> Result<ToolOutput, ToolError> {
        let tool = "list_folder";
        let folder = if self.str_arg("folder_id").is_some() {
            self.id_segment("folder_id")?
        } else {
            "0".into()
        };
        let mut query = vec![
            ("usemarker", "true".to_owned()),
            (
                "limit",
                self.number("limit", 50, tools::MAX_PAGE).max(1).to_string(),
            ),
            ("fields", FIELDS.to_owned()),
        ];
        if let Some(marker) = cursor::decode(tool, self.args)? {
            query.push(("marker", marker));
        }
        let url = self
            .client
            .url(&["folders".into(), folder, "items".into()], &query)?;
        let answer = self.client.json(Method::GET, url, None, self.ctx).await?;
        let items = entries(&answer)?;
        let next = answer
            .get("next_marker")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(|marker| cursor::encode(tool, self.args, marker));
        Ok(page_output("entries", items, next))
    }

    pub(crate) async fn get_item(&self) -> Result<ToolOutput, ToolError> {
        let collection = match self.str_arg("type").unwrap_or("file") {
            "file" => "files",
            "folder" => "folders",
            other => {
                return Err(ToolError::InvalidArguments(format!(
                    "`type` must be file or folder, not {other}"
                )));
            }
        };
        let url = self
            .client
            .url(&[collection.into(), self.id_segment("id")?], &[])?;
        let item = self.client.json(Method::GET, url, None, self.ctx).await?;
        single_output("Found", entry(&item)?)
    }

    pub(crate) async fn read_file(&self) -> Result<ToolOutput, ToolError> {
        let file_id = self.id_segment("file_id")?;
        let url = self.client.url(&["files".into(), file_id.clone()], &[])?;
        let info = entry(&self.client.json(Method::GET, url, None, self.ctx).await?)?;
        let name = info["name"].as_str().map(str::to_owned);
        let size = info["size"].as_u64().unwrap_or(0);
        if size > extract::MAX_INPUT_BYTES as u64 {
            return Err(ToolError::InvalidArguments(format!(
                "the file is {size} bytes; at most {} bytes are read as text",
                extract::MAX_INPUT_BYTES
            )));
        }
        let bytes = self.client.download(&file_id, self.ctx).await?;
        let window = Window {
            offset: usize::try_from(self.number("offset", 0, u64::MAX)).unwrap_or(usize::MAX),
            max_chars: usize::try_from(self.number("max_chars", 20_000, tools::MAX_CHARS).max(1))
                .unwrap_or(20_000),
        };
        let extracted = extract::extract_blocking(
            bytes,
            None,
            name.clone(),
            window,
            self.ctx.text_filter.clone(),
        )
        .await
        .map_err(|error| match error {
            extract::ExtractError::Failed => ToolError::BadResponse(error.to_string()),
            _ => ToolError::InvalidArguments(error.to_string()),
        })?;
        let text = format!(
            "{} ({}), characters {}-{} of {}{}:\n\n{}",
            name.as_deref().unwrap_or_default(),
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
            "entry": info, "format": extracted.format.to_string(), "text": extracted.text,
            "offset": extracted.offset, "total_chars": extracted.total_chars, "next_offset": extracted.next_offset,
        });
        Ok(ToolOutput { structured, text })
    }

    pub(crate) async fn upload(&self) -> Result<ToolOutput, ToolError> {
        let name = self.name()?;
        let attributes = json!({ "name": name, "parent": { "id": self.id("folder_id")? } });
        let content = Bytes::from(self.required("content")?.to_owned());
        let answer = self
            .client
            .upload(&attributes, name, content, self.ctx)
            .await?;
        let file = answer.pointer("/entries/0").ok_or_else(|| {
            ToolError::BadResponse("Box answered the upload without the file".into())
        })?;
        single_output("Uploaded", entry(file)?)
    }

    pub(crate) async fn create_folder(&self) -> Result<ToolOutput, ToolError> {
        let body = json!({ "name": self.name()?, "parent": { "id": self.id("parent_id")? } });
        let url = self.client.url(&["folders".into()], &[])?;
        let folder = self
            .client
            .json(Method::POST, url, Some(&body), self.ctx)
            .await?;
        single_output("Created", entry(&folder)?)
    }

    pub(crate) async fn move_file(&self) -> Result<ToolOutput, ToolError> {
        let mut body = json!({});
        if self.str_arg("name").is_some() {
            body["name"] = json!(self.name()?);
        }
        if self.str_arg("parent_id").is_some() {
            body["parent"] = json!({ "id": self.id("parent_id")? });
        }
        if body == json!({}) {
            return Err(ToolError::InvalidArguments(
                "give `parent_id`, `name` or both".into(),
            ));
        }
        let url = self
            .client
            .url(&["files".into(), self.id_segment("file_id")?], &[])?;
        let file = self
            .client
            .json(Method::PUT, url, Some(&body), self.ctx)
            .await?;
        single_output("Moved", entry(&file)?)
    }

    pub(crate) async fn delete(&self) -> Result<ToolOutput, ToolError> {
        // Box answers a delete with 204 and no body: read the file first to report what went.
        let url = self
            .client
            .url(&["files".into(), self.id_segment("file_id")?], &[])?;
        let file = entry(
            &self
                .client
                .json(Method::GET, url.clone(), None, self.ctx)
                .await?,
        )?;
        self.client
            .json(Method::DELETE, url, None, self.ctx)
            .await?;
        single_output("Deleted (moved to the trash)", file)
    }

    /// The access `create_share_link` sets (`open` when left out); its facts read the same.
    pub(crate) fn requested_access(&self) -> Result<&str, ToolError> {
        match self.str_arg("access").unwrap_or("open") {
            a @ ("open" | "company" | "collaborators") => Ok(a),
            other => Err(ToolError::InvalidArguments(format!(
                "`access` must be open, company or collaborators, not {other}"
            ))),
        }
    }

    pub(crate) async fn share(&self) -> Result<ToolOutput, ToolError> {
        let access = self.requested_access()?;
        let file_id = self.id("file_id")?;
        let url = self.client.url(
            &["files".into(), PathSegment::encode("file_id", file_id)?],
            &[("fields", "shared_link".to_owned())],
        )?;
        let body = json!({ "shared_link": { "access": access } });
        let file = self
            .client
            .json(Method::PUT, url, Some(&body), self.ctx)
            .await?;
        let link = file
            .get("shared_link")
            .filter(|l| l.is_object())
            .ok_or_else(|| ToolError::BadResponse("Box answered without the shared link".into()))?;
        let link_url = link
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let structured = json!({
            "url": link_url, "download_url": link.get("download_url").and_then(Value::as_str),
            "access": link.get("effective_access").or_else(|| link.get("access")).and_then(Value::as_str).unwrap_or(access),
            "file_id": file_id,
        });
        Ok(ToolOutput {
            text: format!("Shared link ({access}): {link_url}"),
            structured,
        })
    }
}

fn entries(answer: &Value) -> Result<Vec<Value>, ToolError> {
    answer
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(|| ToolError::BadResponse("Box answered without `entries`".into()))?
        .iter()
        .map(entry)
        .collect()
}

/// A Box `File`, `Folder` or `WebLink` (any representation) as the tools' entry.
fn entry(item: &Value) -> Result<Value, ToolError> {
    let text = |key: &str| item.get(key).and_then(Value::as_str);
    let kind = text("type")
        .filter(|t| matches!(*t, "file" | "folder" | "web_link"))
        .ok_or_else(|| ToolError::BadResponse("Box item without a known `type`".into()))?;
    Ok(json!({
        "type": kind,
        "id": text("id").ok_or_else(|| ToolError::BadResponse("Box item without `id`".into()))?,
        "name": text("name").unwrap_or_default(),
        "size": item.get("size").and_then(Value::as_u64),
        "modified": text("modified_at"),
        "parent_id": item.pointer("/parent/id").and_then(Value::as_str),
    }))
}

fn line(entry: &Value) -> String {
    let size = entry["size"]
        .as_u64()
        .map(|s| format!(", {s} bytes"))
        .unwrap_or_default();
    format!(
        "- [{}] {} (id {}{size})",
        entry["type"].as_str().unwrap_or_default(),
        entry["name"].as_str().unwrap_or_default(),
        entry["id"].as_str().unwrap_or_default()
    )
}

fn page_output(key: &str, items: Vec<Value>, next: Option<String>) -> ToolOutput {
    ToolOutput::page(key, items, next, line)
}

fn single_output(verb: &str, entry: Value) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput {
        text: format!("{verb}:\n{}", line(&entry)),
        structured: json!({ "entry": entry }),
    })
}
