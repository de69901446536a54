//! A client for the parts of the Drive v3 REST API the tools use: `files.list`, `files.get`
//! (metadata and `alt=media`), `files.export`, `files.create` (metadata only, and multipart
//! upload), `files.update`, `files.delete` and `permissions.create`. Google's error bodies
//! (`{"error":{"code","message","errors":[{"reason",…}]}}`) become [`ToolError`]s.
//!
//! Rate limits: Drive answers 429, or 403 with reason `userRateLimitExceeded` or
//! `rateLimitExceeded`, and asks for exponential backoff on all three. The shared
//! [`InstanceClient`] already retries 429 (honouring `Retry-After`) and 5xx within the configured
//! budget, but it cannot tell a rate-limit 403 from a permission 403 without reading Google's
//! body, so this client retries those itself: at most [`RATE_LIMIT_RETRIES`] more times, with
//! jittered backoff from 500 ms, and within [`RATE_LIMIT_BUDGET`]. A 403 rate limit means Google
//! refused the request before doing anything, so even writes are safe to resend. When the budget
//! runs out the call fails with [`ToolError::RateLimited`], the same answer as an exhausted 429.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use url::Url;

use crate::{
    BuildError, CallContext, ToolError,
    upstream::{InstanceClient, PathSegment, UpstreamRequest, UpstreamResponse, path},
};

/// Further attempts after a 403 rate-limit answer.
pub(crate) const RATE_LIMIT_RETRIES: u32 = 3;
/// No 403 rate-limit retry starts later than this after the first attempt.
pub(crate) const RATE_LIMIT_BUDGET: Duration = Duration::from_secs(8);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The fields of a File the tools read (a `fields` selection; Drive returns only
/// `kind,id,name,mimeType` without one).
pub(crate) const FILE_FIELDS: &str = "id,name,mimeType,size,createdTime,modifiedTime,parents,\
webViewLink,owners(displayName,emailAddress),shared,trashed,driveId,description,version";

/// Where the Drive API lives under the configured base URL.
#[derive(Debug, Clone)]
pub(crate) struct DriveClient {
    http: InstanceClient,
    /// `{base}/drive/v3`
    api: Url,
    /// `{base}/upload/drive/v3`
    upload: Url,
    /// List shared drives' items too (`corpora=allDrives`, `includeItemsFromAllDrives`).
    shared_drives: bool,
}

/// One page of `files.list`.
#[derive(Debug, Clone)]
pub(crate) struct FileList {
    pub(crate) files: Vec<Value>,
    pub(crate) next_page_token: Option<String>,
    pub(crate) incomplete_search: bool,
}

/// Parameters of one `files.list` call.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListQuery<'a> {
    pub(crate) q: &'a str,
    pub(crate) page_size: u32,
    pub(crate) page_token: Option<&'a str>,
    pub(crate) order_by: Option<&'a str>,
    pub(crate) fields: &'a str,
}

impl DriveClient {
    pub(crate) fn new(
        http: InstanceClient,
        base_url: &Url,
        shared_drives: bool,
    ) -> Result<Self, BuildError> {
        // Appending keeps any prefix of the base URL (the sandbox serves Drive under `/drive`).
        Ok(Self {
            http,
            api: path::append(base_url, &["drive".into(), "v3".into()])?,
            upload: path::append(base_url, &["upload".into(), "drive".into(), "v3".into()])?,
            shared_drives,
        })
    }

    /// `{base}/{segments…}?{query}`; ids went through [`PathSegment::encode`], so they cannot
    /// add or climb segments.
    fn url(
        &self,
        base: &Url,
        segments: &[PathSegment],
        query: &[(&str, &str)],
    ) -> Result<Url, ToolError> {
        let mut url = path::append(base, segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// `files/{file_id}…`: the id of a file, from the arguments or from Drive's own answers.
    fn file(file_id: &str) -> Result<PathSegment, ToolError> {
        Ok(PathSegment::encode("file", file_id)?)
    }

    /// `files.list`.
    pub(crate) async fn list(
        &self,
        query: &ListQuery<'_>,
        ctx: &CallContext,
    ) -> Result<FileList, ToolError> {
        let page_size = query.page_size.to_string();
        let mut params = vec![
            ("q", query.q),
            ("pageSize", page_size.as_str()),
            ("fields", query.fields),
            ("supportsAllDrives", "true"),
        ];
        if self.shared_drives {
            params.push(("corpora", "allDrives"));
            params.push(("includeItemsFromAllDrives", "true"));
        } else {
            params.push(("corpora", "user"));
        }
        if let Some(token) = query.page_token {
            params.push(("pageToken", token));
        }
        if let Some(order) = query.order_by {
            params.push(("orderBy", order));
        }
        let url = self.url(&self.api, &["files".into()], &params)?;
        let body = self.json(Method::GET, url, None, true, ctx).await?;
        Ok(FileList {
            files: body
                .get("files")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            next_page_token: body
                .get("nextPageToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            incomplete_search: body
                .get("incompleteSearch")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// `files.get`: metadata.
    pub(crate) async fn get(
        &self,
        file_id: &str,
        fields: &str,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let url = self.url(
            &self.api,
            &["files".into(), Self::file(file_id)?],
            &[("fields", fields), ("supportsAllDrives", "true")],
        )?;
        self.json(Method::GET, url, None, true, ctx).await
    }

    /// `files.get` with `alt=media`: the content of a file with binary content.
    pub(crate) async fn download(
        &self,
        file_id: &str,
        ctx: &CallContext,
    ) -> Result<Bytes, ToolError> {
        let url = self.url(
            &self.api,
            &["files".into(), Self::file(file_id)?],
            &[("alt", "media"), ("supportsAllDrives", "true")],
        )?;
        Ok(self.send(Method::GET, url, None, true, ctx).await?.body)
    }

    /// `files.export`: a Google Docs Editors file converted to `mime_type`.
    pub(crate) async fn export(
        &self,
        file_id: &str,
        mime_type: &str,
        ctx: &CallContext,
    ) -> Result<Bytes, ToolError> {
        let url = self.url(
            &self.api,
            &["files".into(), Self::file(file_id)?, "export".into()],
            &[("mimeType", mime_type)],
        )?;
        Ok(self.send(Method::GET, url, None, true, ctx).await?.body)
    }

    /// `files.create` without content (folders).
    pub(crate) async fn create(
        &self,
        metadata: &Value,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let url = self.url(
            &self.api,
            &["files".into()],
            &[("fields", FILE_FIELDS), ("supportsAllDrives", "true")],
        )?;
        let body = Body::Json(metadata.clone());
        self.json(Method::POST, url, Some(body), false, ctx).await
    }

    /// `files.create` as a multipart upload: metadata and content in one request (up to 5 MB).
    pub(crate) async fn upload(
        &self,
        metadata: &Value,
        content: &[u8],
        mime_type: &str,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let url = self.url(
            &self.upload,
            &["files".into()],
            &[
                ("uploadType", "multipart"),
                ("fields", FILE_FIELDS),
                ("supportsAllDrives", "true"),
            ],
        )?;
        let boundary = format!("manifold-{:032x}", rand::random::<u128>());
        let mut body = Vec::with_capacity(content.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
                 --{boundary}\r\nContent-Type: {mime_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let body = Body::Raw {
            content_type: format!("multipart/related; boundary={boundary}"),
            bytes: Bytes::from(body),
        };
        self.json(Method::POST, url, Some(body), false, ctx).await
    }

    /// `files.update` (metadata): rename, trash, move with `addParents`/`removeParents`.
    pub(crate) async fn update(
        &self,
        file_id: &str,
        metadata: &Value,
        add_parents: Option<&str>,
        remove_parents: Option<&str>,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let mut params = vec![("fields", FILE_FIELDS), ("supportsAllDrives", "true")];
        if let Some(add) = add_parents {
            params.push(("addParents", add));
        }
        if let Some(remove) = remove_parents {
            params.push(("removeParents", remove));
        }
        let url = self.url(&self.api, &["files".into(), Self::file(file_id)?], &params)?;
        // Setting the same name or trashed flag again changes nothing, so those are resent after
        // an ambiguous failure; a move is not, as a second `removeParents` of a parent already
        // removed fails although the move worked.
        let idempotent = add_parents.is_none() && remove_parents.is_none();
        self.json(
            Method::PATCH,
            url,
            Some(Body::Json(metadata.clone())),
            idempotent,
            ctx,
        )
        .await
    }

    /// `files.delete`: permanently, skipping the trash.
    pub(crate) async fn delete(&self, file_id: &str, ctx: &CallContext) -> Result<(), ToolError> {
        let url = self.url(
            &self.api,
            &["files".into(), Self::file(file_id)?],
            &[("supportsAllDrives", "true")],
        )?;
        // Not resent after an ambiguous failure: a second try would report "not found" for a
        // delete that worked.
        self.send(Method::DELETE, url, None, false, ctx).await?;
        Ok(())
    }

    /// `permissions.create`.
    pub(crate) async fn create_permission(
        &self,
        file_id: &str,
        permission: &Value,
        notify: bool,
        message: Option<&str>,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let mut params = vec![
            ("fields", "id,type,role,emailAddress,displayName"),
            ("supportsAllDrives", "true"),
            (
                "sendNotificationEmail",
                if notify { "true" } else { "false" },
            ),
        ];
        if let Some(message) = message.filter(|_| notify) {
            params.push(("emailMessage", message));
        }
        let url = self.url(
            &self.api,
            &["files".into(), Self::file(file_id)?, "permissions".into()],
            &params,
        )?;
        self.json(
            Method::POST,
            url,
            Some(Body::Json(permission.clone())),
            false,
            ctx,
        )
        .await
    }

    async fn json(
        &self,
        method: Method,
        url: Url,
        body: Option<Body>,
        idempotent: bool,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let response = self.send(method, url, body, idempotent, ctx).await?;
        serde_json::from_slice(&response.body).map_err(|error| {
            ToolError::BadResponse(format!("Drive answered with invalid JSON: {error}"))
        })
    }

    /// Sends one request with the caller's token, retrying 403 rate limits (see the module
    /// docs); any other non-2xx answer becomes a [`ToolError`].
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Body>,
        idempotent: bool,
        ctx: &CallContext,
    ) -> Result<UpstreamResponse, ToolError> {
        let token = ctx.bearer("Google Drive")?;
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        let mut request = UpstreamRequest::new(method, url)
            .idempotent(idempotent)
            .bearer(token)?;
        request
            .headers
            .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        match body {
            Some(Body::Json(value)) => request = request.json(&value),
            Some(Body::Raw {
                content_type,
                bytes,
            }) => {
                let value = HeaderValue::from_str(&content_type)
                    .map_err(|_| ToolError::InvalidArguments("bad content type".into()))?;
                request.headers.insert(header::CONTENT_TYPE, value);
                request.body = Some(bytes);
            }
            None => {}
        }
        let started = tokio::time::Instant::now();
        let mut retries = 0;
        loop {
            let response = self.http.send(request.clone(), ctx).await?;
            if response.status.is_success() {
                return Ok(response);
            }
            let error = DriveError::parse(&response);
            if !error.is_rate_limit() {
                return Err(error.into_tool_error());
            }
            let wait = backoff(retries);
            if retries >= RATE_LIMIT_RETRIES || started.elapsed() + wait > RATE_LIMIT_BUDGET {
                return Err(ToolError::RateLimited {
                    retry_after: response.retry_after().or(Some(wait)),
                });
            }
            retries += 1;
            tracing::debug!(instance = %self.http.instance(), retries, ?wait, reason = %error.reason, "Drive rate limit (403), backing off");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
            }
        }
    }
}

enum Body {
    Json(Value),
    Raw { content_type: String, bytes: Bytes },
}

/// 500 ms, 1 s, 2 s, … with the upper half jittered.
fn backoff(retries: u32) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1 << retries.min(6));
    let half = base / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// Google's JSON error, as much of it as the mapping needs.
#[derive(Debug)]
pub(crate) struct DriveError {
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
    pub(crate) message: String,
    pub(crate) location: Option<String>,
}

impl DriveError {
    pub(crate) fn parse(response: &UpstreamResponse) -> Self {
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let error = body.get("error").cloned().unwrap_or(json!({}));
        let first = error
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|errors| errors.first())
            .cloned()
            .unwrap_or(json!({}));
        let text =
            |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        // Newer answers carry the reason in `details[].reason` (google.rpc.ErrorInfo) only.
        let detail_reason = error
            .get("details")
            .and_then(Value::as_array)
            .and_then(|details| details.iter().find_map(|d| text(d, "reason")));
        let message = text(&error, "message")
            .or_else(|| text(&first, "message"))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&response.body)
                    .chars()
                    .take(200)
                    .collect()
            });
        Self {
            status: response.status,
            reason: text(&first, "reason").or(detail_reason).unwrap_or_default(),
            message,
            location: text(&first, "location"),
        }
    }

    fn is_rate_limit(&self) -> bool {
        self.status == StatusCode::FORBIDDEN
            && matches!(
                self.reason.as_str(),
                "userRateLimitExceeded" | "rateLimitExceeded"
            )
    }

    pub(crate) fn into_tool_error(self) -> ToolError {
        let message = self.message.trim_end_matches('.').to_owned();
        match (self.status.as_u16(), self.reason.as_str()) {
            (401, _) => ToolError::Unauthorized(format!(
                "{message}. The Google Drive connection has expired or was revoked; reconnect \
                 Google Drive"
            )),
            (403, "insufficientPermissions" | "ACCESS_TOKEN_SCOPE_INSUFFICIENT") => {
                ToolError::Forbidden(format!(
                    "{message}. The Google Drive connection was not granted the access this tool \
                     needs; reconnect Google Drive and allow it"
                ))
            }
            (403, "appNotAuthorizedToFile" | "appNotAuthorizedToChild") => {
                ToolError::Forbidden(format!(
                    "{message}. With the `drive.file` access this connection has, it can only \
                     change files and folders it created itself; choose one of those (or My \
                     Drive's root), or have full Drive access granted"
                ))
            }
            (403, "dailyLimitExceeded" | "sharingRateLimitExceeded") => ToolError::Forbidden(
                format!("{message}. This quota resets later; do not retry now"),
            ),
            (403, "storageQuotaExceeded") => {
                ToolError::Forbidden(format!("{message}. The Drive is full"))
            }
            (403, _) => ToolError::Forbidden(message),
            (404, _) => ToolError::NotFound(format!(
                "{message}. Check the id, or that this user can see the file"
            )),
            (400, _) => ToolError::InvalidArguments(match &self.location {
                Some(location) => format!("{message} (parameter `{location}`)"),
                None => message,
            }),
            (429, _) => ToolError::RateLimited { retry_after: None },
            (status, _) => ToolError::Upstream { status, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: Value) -> UpstreamResponse {
        UpstreamResponse {
            status: StatusCode::from_u16(status).expect("status"),
            headers: http::HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    fn google(status: u16, reason: &str, message: &str) -> UpstreamResponse {
        response(
            status,
            json!({ "error": { "code": status, "message": message,
                    "errors": [{ "domain": "global", "reason": reason, "message": message }] } }),
        )
    }

    #[test]
    fn maps_google_error_reasons() {
        let map = |r: UpstreamResponse| DriveError::parse(&r).into_tool_error();
        assert!(matches!(
            map(google(401, "authError", "Invalid Credentials")),
            ToolError::Unauthorized(_)
        ));
        assert!(
            matches!(map(google(404, "notFound", "File not found: x.")), ToolError::NotFound(m) if m.starts_with("File not found: x"))
        );
        assert!(matches!(
            map(google(400, "invalid", "Invalid Value")),
            ToolError::InvalidArguments(_)
        ));
        assert!(matches!(
            map(google(403, "insufficientPermissions", "Insufficient Permission")),
            ToolError::Forbidden(m) if m.contains("reconnect")
        ));
        assert!(matches!(
            map(google(403, "appNotAuthorizedToFile", "The user has not granted the app write access")),
            ToolError::Forbidden(m) if m.contains("drive.file")
        ));
        assert!(matches!(
            map(google(500, "backendError", "Backend Error")),
            ToolError::Upstream { status: 500, .. }
        ));
        let limited = DriveError::parse(&google(
            403,
            "userRateLimitExceeded",
            "User Rate Limit Exceeded",
        ));
        assert!(limited.is_rate_limit());
        assert!(!DriveError::parse(&google(403, "forbidden", "no")).is_rate_limit());
    }

    #[test]
    fn reads_the_reason_from_error_info_details() {
        let r = response(
            403,
            json!({ "error": { "code": 403, "message": "Request had insufficient authentication scopes.",
                    "status": "PERMISSION_DENIED",
                    "details": [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT" }] } }),
        );
        assert!(
            matches!(DriveError::parse(&r).into_tool_error(), ToolError::Forbidden(m) if m.contains("reconnect"))
        );
    }

    #[test]
    fn urls_keep_the_base_path() {
        let client = crate::UpstreamClient::new(crate::UpstreamConfig::default())
            .expect("client")
            .for_instance("t", 1);
        let base = Url::parse("http://127.0.0.1:9/drive").expect("url");
        let drive = DriveClient::new(client, &base, true).expect("client");
        assert_eq!(drive.api.as_str(), "http://127.0.0.1:9/drive/drive/v3");
        assert_eq!(
            drive.upload.as_str(),
            "http://127.0.0.1:9/drive/upload/drive/v3"
        );
        let file = DriveClient::file("a b").expect("segment");
        let url = drive
            .url(
                &drive.api,
                &["files".into(), file],
                &[("q", "'x' in parents")],
            )
            .expect("url");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/drive/drive/v3/files/a%20b?q=%27x%27+in+parents"
        );
        assert!(DriveClient::file("..").is_err());
    }

    #[test]
    fn backoff_grows() {
        assert!(backoff(0) >= Duration::from_millis(250) && backoff(0) <= FIRST_BACKOFF);
        assert!(backoff(2) >= Duration::from_secs(1));
    }
}
