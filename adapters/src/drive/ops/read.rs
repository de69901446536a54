//! The tools that only read: search, list, metadata and text.

use std::{fmt::Write as _, sync::Arc};

use serde_json::{Value, json};

use super::{
    super::{
        DriveAdapter, cache,
        client::{FILE_FIELDS, ListQuery},
        cursor, render,
        tools::{MAX_DOWNLOAD_BYTES, MAX_PAGE, MAX_READ_CHARS},
    },
    Args, FOLDER_MIME, more, next_cursor, opt_str, opt_u64, quote, req_str,
    resolve::{named, target},
};
use crate::{
    CallContext, ToolError, ToolOutput,
    extract::{self, ExtractError, Window},
};

// === impl DriveAdapter ===

impl DriveAdapter {
    pub(crate) async fn search_files(
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
        if let Some(folder) = target("search_files", args)? {
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

    pub(crate) async fn list_folder(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let reference = named("list_folder", args)?;
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

    pub(crate) async fn get_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let resolved = self.resolve(named("get_file", args)?, ctx).await?;
        let file = render::file(&self.metadata(resolved, ctx).await?);
        Ok(ToolOutput {
            text: render::file_details(&file),
            structured: json!({ "file": file }),
        })
    }

    pub(crate) async fn read_file(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let reference = named("read_file", args)?;
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
