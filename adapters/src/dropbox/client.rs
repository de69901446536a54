//! The Dropbox API v2 client: RPC routes (`POST <api>/2/<route>`, JSON in and out), download
//! routes (argument in the `Dropbox-API-Arg` header, result in `Dropbox-API-Result`) and upload
//! routes (argument header, octet-stream body), with Dropbox's error answers mapped to
//! [`ToolError`].
//!
//! Dropbox serves RPC routes on `api.dropboxapi.com` and content routes on
//! `content.dropboxapi.com`. The instance's `base_url` is the API host; the content host is the
//! `content_url` setting when given, `https://content.dropboxapi.com` when the base URL is the
//! real API host, and otherwise `<base_url>/content` (the emulator's layout:
//! `/dropbox/2/...` and `/dropbox/content/2/...`).

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use url::Url;

use crate::{
    BuildError, CallContext, ToolError,
    upstream::{InstanceClient, PathSegment, UpstreamRequest, UpstreamResponse, path},
};

/// The provider's name in errors.
const PROVIDER: &str = "Dropbox";
/// The real API host, whose content twin is [`REAL_CONTENT`].
const REAL_API_HOST: &str = "api.dropboxapi.com";
const REAL_CONTENT: &str = "https://content.dropboxapi.com";

/// Sends Dropbox API v2 requests for one instance.
#[derive(Debug, Clone)]
pub(crate) struct DropboxClient {
    http: InstanceClient,
    api: Url,
    content: Url,
}

/// A downloaded file: its metadata (from `Dropbox-API-Result`) and bytes.
#[derive(Debug)]
pub(crate) struct Download {
    pub metadata: Value,
    pub bytes: Bytes,
}

impl DropboxClient {
    pub(crate) fn new(
        http: InstanceClient,
        base_url: &Url,
        content_url: Option<&str>,
    ) -> Result<Self, BuildError> {
        let content = match content_url {
            Some(raw) => Url::parse(raw).map_err(|error| BuildError::Setting {
                key: "content_url".into(),
                reason: error.to_string(),
            })?,
            None if base_url.host_str() == Some(REAL_API_HOST) => {
                Url::parse(REAL_CONTENT).map_err(|error| BuildError::Client(error.to_string()))?
            }
            None => path::append(base_url, &["content".into()])?,
        };
        // Refuse a content URL that takes no path now, not on the first download.
        path::append(&content, &[])?;
        path::append(base_url, &[])?;
        Ok(Self {
            http,
            api: base_url.clone(),
            content,
        })
    }

    /// The URL of `route` (`files/list_folder`) on the API or content host. Routes are literals
    /// of this module (`&'static str`); file paths travel in the JSON body or `Dropbox-API-Arg`,
    /// never in the URL.
    pub(crate) fn route_url(&self, route: &'static str, content: bool) -> Result<Url, ToolError> {
        let base = if content { &self.content } else { &self.api };
        let segments: Vec<PathSegment> = std::iter::once("2")
            .chain(route.split('/'))
            .map(PathSegment::fixed)
            .collect();
        Ok(path::append(base, &segments)?)
    }

    /// Calls an RPC route with a JSON argument; returns the JSON result.
    pub(crate) async fn rpc(
        &self,
        route: &'static str,
        arg: &Value,
        idempotent: bool,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let request = UpstreamRequest::new(Method::POST, self.route_url(route, false)?)
            .json(arg)
            .idempotent(idempotent)
            .bearer(ctx.bearer(PROVIDER)?)?;
        let response = self.http.send(request, ctx).await?;
        check(&response)?;
        serde_json::from_slice(&response.body)
            .map_err(|error| ToolError::BadResponse(format!("{route}: {error}")))
    }

    /// Like [`Self::rpc`], but hands a 409 route error's `error` union back to the caller, for
    /// routes whose errors carry data (`shared_link_already_exists` carries the existing link).
    pub(crate) async fn rpc_or_route_error(
        &self,
        route: &'static str,
        arg: &Value,
        ctx: &CallContext,
    ) -> Result<Result<Value, Value>, ToolError> {
        let request = UpstreamRequest::new(Method::POST, self.route_url(route, false)?)
            .json(arg)
            .bearer(ctx.bearer(PROVIDER)?)?;
        let response = self.http.send(request, ctx).await?;
        if response.status == StatusCode::CONFLICT {
            let error = serde_json::from_slice::<Value>(&response.body)
                .ok()
                .and_then(|body| body.get("error").cloned());
            if let Some(error) = error {
                return Ok(Err(error));
            }
        }
        check(&response)?;
        serde_json::from_slice(&response.body)
            .map(Ok)
            .map_err(|error| ToolError::BadResponse(format!("{route}: {error}")))
    }

    /// Calls `files/download`: the argument travels in `Dropbox-API-Arg`, the metadata comes
    /// back in `Dropbox-API-Result`.
    pub(crate) async fn download(
        &self,
        arg: &Value,
        ctx: &CallContext,
    ) -> Result<Download, ToolError> {
        let mut request =
            UpstreamRequest::new(Method::POST, self.route_url("files/download", true)?)
                .idempotent(true)
                .bearer(ctx.bearer(PROVIDER)?)?;
        request.headers.insert("dropbox-api-arg", api_arg(arg)?);
        let response = self.http.send(request, ctx).await?;
        check(&response)?;
        let metadata = response
            .headers
            .get("dropbox-api-result")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str(v).ok())
            .ok_or_else(|| {
                ToolError::BadResponse("download answered without Dropbox-API-Result".into())
            })?;
        Ok(Download {
            metadata,
            bytes: response.body,
        })
    }

    /// Calls `files/upload` with `bytes` as the body; returns the new file's metadata.
    pub(crate) async fn upload(
        &self,
        arg: &Value,
        bytes: Bytes,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let mut request = UpstreamRequest::new(Method::POST, self.route_url("files/upload", true)?)
            .bearer(ctx.bearer(PROVIDER)?)?;
        request.headers.insert("dropbox-api-arg", api_arg(arg)?);
        request.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        request.body = Some(bytes);
        let response = self.http.send(request, ctx).await?;
        check(&response)?;
        serde_json::from_slice(&response.body)
            .map_err(|error| ToolError::BadResponse(format!("files/upload: {error}")))
    }
}

/// `Dropbox-API-Arg` must be ASCII: Dropbox requires every non-ASCII character of the JSON to be
/// escaped as `\u` plus four hex digits (UTF-16 code units, so astral characters become surrogate pairs).
pub fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn api_arg(arg: &Value) -> Result<HeaderValue, ToolError> {
    HeaderValue::from_str(&escape_non_ascii(&arg.to_string()))
        .map_err(|_| ToolError::InvalidArguments("the path contains control characters".into()))
}

/// Maps a non-success answer. Dropbox answers route errors with 409 and
/// `{"error_summary": "path/not_found/..", "error": {".tag": "path", "path": {".tag": "not_found"}}}`,
/// authentication errors with 401, bad input with 400 (plain text) and throttling with 429.
fn check(response: &UpstreamResponse) -> Result<(), ToolError> {
    let status = response.status;
    if status.is_success() {
        return Ok(());
    }
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let summary = body
        .as_ref()
        .and_then(|b| b.get("error_summary"))
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches(['.', '/']).to_owned());
    let plain = || {
        String::from_utf8_lossy(&response.body)
            .chars()
            .take(200)
            .collect::<String>()
    };
    Err(match status {
        StatusCode::UNAUTHORIZED => ToolError::Unauthorized(format!(
            "Dropbox rejected the access token ({})",
            summary.unwrap_or_else(|| "invalid_access_token".into())
        )),
        StatusCode::TOO_MANY_REQUESTS => ToolError::RateLimited {
            retry_after: response.retry_after(),
        },
        StatusCode::BAD_REQUEST => ToolError::InvalidArguments(format!("Dropbox: {}", plain())),
        StatusCode::FORBIDDEN => ToolError::Forbidden(summary.unwrap_or_else(plain)),
        StatusCode::CONFLICT => route_error(summary.unwrap_or_default()),
        _ => ToolError::Upstream {
            status: status.as_u16(),
            message: summary.unwrap_or_else(plain),
        },
    })
}

/// A 409 route error by its tag path (`path/not_found`, `to/conflict/folder`, …).
pub(crate) fn route_error(summary: String) -> ToolError {
    let tags: Vec<&str> = summary.split('/').collect();
    let has = |tag: &str| tags.contains(&tag);
    let what = if tags.first() == Some(&"from_lookup") {
        "the source path"
    } else if tags.first() == Some(&"to") {
        "the destination path"
    } else {
        "the path"
    };
    if has("not_found") {
        ToolError::NotFound(format!("{what} does not exist in Dropbox ({summary})"))
    } else if has("conflict") {
        ToolError::InvalidArguments(format!(
            "{what} is already taken by another file or folder ({summary}); pick another name or set autorename"
        ))
    } else if has("malformed_path") || has("not_file") || has("not_folder") || has("invalid_path") {
        ToolError::InvalidArguments(format!("{what} is not usable here ({summary})"))
    } else if has("no_write_permission") || has("email_not_verified") || has("access_denied") {
        ToolError::Forbidden(format!("Dropbox refused the change ({summary})"))
    } else {
        ToolError::Upstream {
            status: 409,
            message: summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_non_ascii_as_utf16_units() {
        assert_eq!(
            escape_non_ascii(r#"{"path":"/é😀"}"#),
            r#"{"path":"/\u00e9\ud83d\ude00"}"#
        );
    }

    #[test]
    fn maps_route_error_tags() {
        assert!(
            matches!(route_error("path/not_found".into()), ToolError::NotFound(m) if m.contains("the path"))
        );
        assert!(
            matches!(route_error("from_lookup/not_found".into()), ToolError::NotFound(m) if m.contains("source"))
        );
        assert!(matches!(
            route_error("to/conflict/folder".into()),
            ToolError::InvalidArguments(_)
        ));
        assert!(matches!(
            route_error("path/no_write_permission".into()),
            ToolError::Forbidden(_)
        ));
        assert!(matches!(
            route_error("other".into()),
            ToolError::Upstream { status: 409, .. }
        ));
    }

    #[test]
    fn content_host_follows_the_api_host() {
        let http = crate::UpstreamClient::new(crate::UpstreamConfig::default())
            .expect("client")
            .for_instance("t", 1);
        let real = Url::parse("https://api.dropboxapi.com").expect("url");
        let client = DropboxClient::new(http.clone(), &real, None).expect("client");
        assert_eq!(
            client
                .route_url("files/download", true)
                .expect("url")
                .as_str(),
            "https://content.dropboxapi.com/2/files/download"
        );
        assert_eq!(
            client
                .route_url("files/list_folder/continue", false)
                .expect("url")
                .as_str(),
            "https://api.dropboxapi.com/2/files/list_folder/continue"
        );
        let sandbox = Url::parse("http://127.0.0.1:9/dropbox").expect("url");
        let client = DropboxClient::new(http, &sandbox, None).expect("client");
        assert_eq!(
            client
                .route_url("files/upload", true)
                .expect("url")
                .as_str(),
            "http://127.0.0.1:9/dropbox/content/2/files/upload"
        );
    }
}
