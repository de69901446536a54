//! What each tool does: arguments to Drive requests, and Drive's answers to [`ToolOutput`]s.

use std::{fmt::Write as _, sync::Arc};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Map, Value, json};

use super::{
    DriveAdapter, cache,
    client::{FILE_FIELDS, ListQuery},
    cursor, render,
    tools::{MAX_DOWNLOAD_BYTES, MAX_PAGE, MAX_READ_CHARS, MAX_UPLOAD_BYTES},
};
use crate::{
    CallContext, ToolError, ToolOutput,
    extract::{self, ExtractError, Window},
};

type Args = Map<String, Value>;

fn opt_str<'a>(args: &'a Args, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn req_str<'a>(args: &'a Args, key: &str) -> Result<&'a str, ToolError> {
    opt_str(args, key).ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` is required")))
}

fn opt_u64(args: &Args, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "`{key}` must be an integer from {min} to {max}"
                ))
            }),
    }
}

fn opt_bool(args: &Args, key: &str, default: bool) -> bool {
    args.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// A string literal of Drive's query language: single quotes, with `\` and `'` escaped.
pub(crate) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
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
struct Resolved {
    id: String,
    metadata: Option<Value>,
}

const FOLDER_MIME: &str = render::FOLDER;

impl DriveAdapter {
    /// An id, `root`, a Drive link, or a path from My Drive's root.
    async fn resolve(&self, reference: &str, ctx: &CallContext) -> Result<Resolved, ToolError> {
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
    async fn metadata(&self, resolved: Resolved, ctx: &CallContext) -> Result<Value, ToolError> {
        match resolved.metadata {
            Some(metadata) => Ok(metadata),
            None => self.drive.get(&resolved.id, FILE_FIELDS, ctx).await,
        }
    }

    /// A folder's id, failing when the reference names a file.
    async fn folder_id(&self, reference: &str, ctx: &CallContext) -> Result<String, ToolError> {
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

    pub(super) async fn search_files(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let words = req_str(args, "query")?;
        let by_name = opt_str(args, "match") == Some("name");
        let mut q = format!(
            "{} contains {} and trashed = false",
            if by_name { "name" } else { "fullText" },
            quote(words)
        );
        let kinds: &[&str] = match opt_str(args, "kind").unwrap_or("any") {
            "folder" => &[FOLDER_MIME],
            "document" => &[
                render::GOOGLE_DOC,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/msword",
            ],
            "spreadsheet" => &[
                render::GOOGLE_SHEET,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-excel",
                "text/csv",
            ],
            "presentation" => &[
                render::GOOGLE_SLIDES,
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                "application/vnd.ms-powerpoint",
            ],
            "pdf" => &["application/pdf"],
            "any" => &[],
            other => {
                return Err(ToolError::InvalidArguments(format!(
                    "`kind` must be any, folder, document, spreadsheet, presentation or pdf, not `{other}`"
                )));
            }
        };
        if !kinds.is_empty() {
            let alternatives: Vec<String> = kinds
                .iter()
                .map(|mime| format!("mimeType = {}", quote(mime)))
                .collect();
            let _ = write!(q, " and ({})", alternatives.join(" or "));
        }
        if let Some(folder) = opt_str(args, "folder") {
            let id = self.folder_id(folder, ctx).await?;
            let _ = write!(q, " and {} in parents", quote(&id));
        }
        let page_size = opt_u64(args, "page_size", 25, 1, MAX_PAGE)?;
        let token = cursor::decode("search_files", args)?;
        let fields = format!("nextPageToken,incompleteSearch,files({FILE_FIELDS})");
        let page = self
            .drive
            .list(
                &ListQuery {
                    q: &q,
                    page_size: page_size as u32,
                    page_token: token.as_deref(),
                    // Drive refuses `orderBy` with fullText terms: those come by relevance.
                    order_by: by_name.then_some("modifiedTime desc"),
                    fields: &fields,
                },
                ctx,
            )
            .await?;
        let files: Vec<Value> = page.files.iter().map(render::file).collect();
        let next = next_cursor("search_files", args, page.next_page_token.as_deref());
        let mut text = match files.len() {
            0 => format!("No files match `{words}`.\n"),
            n => format!(
                "{n} file{} matching `{words}`:\n",
                if n == 1 { "" } else { "s" }
            ),
        };
        for file in &files {
            render::file_line(&mut text, file);
        }
        if page.incomplete_search {
            text.push_str("Drive could not search every drive; narrow the search to find more.\n");
        }
        more(&mut text, &next);
        Ok(ToolOutput {
            structured: json!({ "files": files, "next_cursor": next, "incomplete": page.incomplete_search }),
            text: text.trim_end().to_owned(),
        })
    }

    pub(super) async fn list_folder(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let reference = opt_str(args, "folder").unwrap_or("root");
        let resolved = self.resolve(reference, ctx).await?;
        let folder = render::file(&self.metadata(resolved, ctx).await?);
        if folder["kind"] != "folder" {
            return Err(ToolError::InvalidArguments(format!(
                "`{reference}` is a file, not a folder; use get_file or read_file"
            )));
        }
        let id = folder["id"].as_str().unwrap_or_default().to_owned();
        let page_size = opt_u64(args, "page_size", 50, 1, MAX_PAGE)?;
        let token = cursor::decode("list_folder", args)?;
        let q = format!("{} in parents and trashed = false", quote(&id));
        let fields = format!("nextPageToken,files({FILE_FIELDS})");
        let page = self
            .drive
            .list(
                &ListQuery {
                    q: &q,
                    page_size: page_size as u32,
                    page_token: token.as_deref(),
                    order_by: Some("folder,name"),
                    fields: &fields,
                },
                ctx,
            )
            .await?;
        let files: Vec<Value> = page.files.iter().map(render::file).collect();
        let next = next_cursor("list_folder", args, page.next_page_token.as_deref());
        let name = folder["name"].as_str().unwrap_or_default();
        let mut text = match files.len() {
            0 if token.is_none() => format!("The folder `{name}` is empty.\n"),
            n => format!(
                "`{name}` (id {id}), {n} item{} on this page:\n",
                if n == 1 { "" } else { "s" }
            ),
        };
        for file in &files {
            render::file_line(&mut text, file);
        }
        more(&mut text, &next);
        Ok(ToolOutput {
            structured: json!({ "folder": folder, "files": files, "next_cursor": next }),
            text: text.trim_end().to_owned(),
        })
    }

    pub(super) async fn get_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let resolved = self.resolve(req_str(args, "file")?, ctx).await?;
        let file = render::file(&self.metadata(resolved, ctx).await?);
        Ok(ToolOutput {
            text: render::file_details(&file),
            structured: json!({ "file": file }),
        })
    }

    pub(super) async fn read_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let reference = req_str(args, "file")?;
        let window = Window {
            offset: usize::try_from(opt_u64(args, "offset", 0, 0, u64::MAX)?).unwrap_or(usize::MAX),
            max_chars: opt_u64(args, "max_chars", 20_000, 100, MAX_READ_CHARS)? as usize,
        };
        let resolved = self.resolve(reference, ctx).await?;
        let metadata = self.metadata(resolved, ctx).await?;
        let file = render::file(&metadata);
        let id = file["id"].as_str().unwrap_or_default().to_owned();
        let name = file["name"].as_str().unwrap_or_default().to_owned();
        let mime = file["mime_type"].as_str().unwrap_or_default().to_owned();
        // Google-native files have no content of their own: they are exported. Sheets go out as
        // xlsx, so every sheet is read (a CSV export carries only the first one).
        let export = match mime.as_str() {
            render::FOLDER => {
                return Err(ToolError::InvalidArguments(format!(
                    "`{name}` is a folder; use list_folder"
                )));
            }
            render::GOOGLE_DOC => Some("text/markdown"),
            render::GOOGLE_SHEET => {
                Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            }
            render::GOOGLE_SLIDES => Some("text/plain"),
            other if other.starts_with("application/vnd.google-apps.") => {
                return Err(ToolError::InvalidArguments(format!(
                    "`{name}` is a {} and cannot be read as text; its link is {}",
                    other.trim_start_matches("application/vnd.google-apps."),
                    file["web_view_link"].as_str().unwrap_or("unknown")
                )));
            }
            _ => None,
        };
        // Text read before, by the same credential, of the same version, through the same filter
        // (the cache holds the filtered whole text: windows are cut from it).
        let version = metadata["version"].as_str().map(|v| {
            format!(
                "{v}|{}",
                metadata["modifiedTime"].as_str().unwrap_or_default()
            )
        });
        let cache_key = match (&ctx.credential, version) {
            (Some(credential), Some(version)) => Some(cache::key(
                credential.expose(),
                &id,
                &version,
                ctx.text_filter.id(),
            )),
            _ => None,
        };
        if let Some((format, text)) = cache_key.as_ref().and_then(|key| self.cache.get(key)) {
            return Ok(read_output(file, extract::window_of(format, &text, window)));
        }
        let (bytes, content_type) = match export {
            Some(target) => (
                self.drive.export(&id, target, ctx).await?,
                target.to_owned(),
            ),
            None => {
                if extract::detect(Some(&mime), Some(&name)).is_none() {
                    return Err(ToolError::InvalidArguments(format!(
                        "`{name}` is a {mime} file, which cannot be read as text; read_file reads \
                         Google Docs, Sheets and Slides, Word, Excel, PowerPoint, PDF, HTML, CSV, \
                         Markdown and text files"
                    )));
                }
                if let Some(size) = file["size_bytes"]
                    .as_u64()
                    .filter(|s| *s > MAX_DOWNLOAD_BYTES)
                {
                    return Err(ToolError::InvalidArguments(format!(
                        "`{name}` is {}; read_file downloads at most {}",
                        render::human_size(size),
                        render::human_size(MAX_DOWNLOAD_BYTES)
                    )));
                }
                (self.drive.download(&id, ctx).await?, mime.clone())
            }
        };
        let whole = Window {
            offset: 0,
            max_chars: usize::MAX,
        };
        let extracted = extract::extract_blocking(
            bytes,
            Some(content_type),
            Some(name.clone()),
            whole,
            ctx.text_filter.clone(),
        )
        .await
        .map_err(|error| match error {
            ExtractError::Unsupported(_) | ExtractError::TooLarge { .. } => {
                ToolError::InvalidArguments(format!("`{name}`: {error}"))
            }
            ExtractError::Corrupt { .. } => ToolError::BadResponse(format!("`{name}`: {error}")),
            ExtractError::Failed => ToolError::BadResponse(error.to_string()),
        })?;
        let text = Arc::new(extracted.text);
        if let Some(key) = cache_key {
            self.cache.put(key, extracted.format, text.clone());
        }
        Ok(read_output(
            file,
            extract::window_of(extracted.format, &text, window),
        ))
    }

    pub(super) async fn upload_file(
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
            .folder_id(opt_str(args, "folder").unwrap_or("root"), ctx)
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

    pub(super) async fn create_folder(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let name = req_str(args, "name")?;
        let parent = self
            .folder_id(opt_str(args, "parent").unwrap_or("root"), ctx)
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

    pub(super) async fn move_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let reference = req_str(args, "file")?;
        let new_name = opt_str(args, "new_name");
        let new_parent = opt_str(args, "new_parent");
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

    pub(super) async fn delete_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let resolved = self.resolve(req_str(args, "file")?, ctx).await?;
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

    pub(super) async fn share_file(
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
        let resolved = self.resolve(req_str(args, "file")?, ctx).await?;
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

/// One window of a file's text as `read_file` answers.
fn read_output(file: Value, extracted: extract::Extracted) -> ToolOutput {
    let name = file["name"].as_str().unwrap_or_default().to_owned();
    let mut text = format!(
        "{name} ({}), characters {}-{} of {}:\n\n{}",
        extracted.format,
        extracted.offset,
        extracted.offset + extracted.text.chars().count(),
        extracted.total_chars,
        extracted.text
    );
    if let Some(next) = extracted.next_offset {
        let _ = write!(
            text,
            "\n\n[More text: call read_file again with offset {next}.]"
        );
    }
    ToolOutput {
        structured: json!({
            "file": file,
            "format": extracted.format.to_string(),
            "text": extracted.text,
            "offset": extracted.offset,
            "total_chars": extracted.total_chars,
            "next_offset": extracted.next_offset,
        }),
        text,
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

fn next_cursor(tool: &str, args: &Args, token: Option<&str>) -> Value {
    token.map_or(Value::Null, |token| {
        json!(cursor::encode(tool, args, token))
    })
}

fn more(text: &mut String, next: &Value) {
    if !next.is_null() {
        text.push_str("More results: call again with `cursor` set to `next_cursor`.\n");
    }
}

/// A content type from a file name's extension.
pub(crate) fn guess_mime(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "txt" | "log" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_query_strings() {
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
    }

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

    #[test]
    fn guesses_types_from_extensions() {
        assert_eq!(guess_mime("notes.MD"), "text/markdown");
        assert_eq!(guess_mime("noext"), "application/octet-stream");
    }
}
