//! The Box 2.0 client: JSON requests to `<base_url>/2.0/...`, multipart uploads to the upload
//! host, downloads that follow Box's 302 to a download URL or wait out its 202 + `Retry-After`,
//! and Box `ClientError` answers mapped to [`ToolError`].
//!
//! Box serves uploads on `upload.box.com/api/2.0`. The upload root is the `upload_url` setting
//! when given, `https://upload.box.com/api` when the base URL is the real `api.box.com`, and
//! otherwise `<base_url>/upload/api` (the emulator's layout).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use rand::Rng as _;
use serde_json::Value;
use url::Url;

use crate::{
    BuildError, CallContext, ToolError,
    upstream::{InstanceClient, PathSegment, UpstreamRequest, UpstreamResponse, path},
};

/// The provider's name in errors.
const PROVIDER: &str = "Box";
const REAL_API_HOST: &str = "api.box.com";
const REAL_UPLOAD: &str = "https://upload.box.com/api";
/// How often a download answered 202 (file not ready) is tried again, and the longest wait.
const NOT_READY_ATTEMPTS: u32 = 5;
const MAX_NOT_READY_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(crate) struct BoxClient {
    http: InstanceClient,
    api: Url,
    upload: Url,
}

impl BoxClient {
    pub(crate) fn new(
        http: InstanceClient,
        base_url: &Url,
        upload_url: Option<&str>,
    ) -> Result<Self, BuildError> {
        let upload = match upload_url {
            Some(raw) => Url::parse(raw).map_err(|error| BuildError::Setting {
                key: "upload_url".into(),
                reason: error.to_string(),
            })?,
            None if base_url.host_str() == Some(REAL_API_HOST) => {
                Url::parse(REAL_UPLOAD).map_err(|error| BuildError::Client(error.to_string()))?
            }
            None => path::append(base_url, &["upload".into(), "api".into()])?,
        };
        Ok(Self {
            http,
            api: path::append(base_url, &["2.0".into()])?,
            upload: path::append(&upload, &["2.0".into()])?,
        })
    }

    /// `<api>/2.0/<segments…>?<query>`; ids went through [`PathSegment::encode`], so they
    /// cannot add or climb segments.
    pub(crate) fn url(
        &self,
        segments: &[PathSegment],
        query: &[(&str, String)],
    ) -> Result<Url, ToolError> {
        let mut url = path::append(&self.api, segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    pub(crate) fn upload_url(&self) -> Result<Url, ToolError> {
        Ok(path::append(
            &self.upload,
            &["files".into(), "content".into()],
        )?)
    }

    /// Sends a request with an optional JSON body; returns the JSON answer (`Null` for 204).
    pub(crate) async fn json(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE);
        let mut request = UpstreamRequest::new(method, url)
            .idempotent(idempotent)
            .bearer(ctx.bearer(PROVIDER)?)?;
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.http.send(request, ctx).await?;
        check(&response)?;
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&response.body).map_err(|e| ToolError::BadResponse(e.to_string()))
    }

    /// `GET /files/{id}/content`: follows a 302 to the download URL (without the bearer token:
    /// it is a pre-signed URL on another host) and waits out 202 + `Retry-After`.
    pub(crate) async fn download(
        &self,
        file_id: &PathSegment,
        ctx: &CallContext,
    ) -> Result<Bytes, ToolError> {
        let url = self.url(&["files".into(), file_id.clone(), "content".into()], &[])?;
        for _ in 0..NOT_READY_ATTEMPTS {
            let request = UpstreamRequest::new(Method::GET, url.clone())
                .idempotent(true)
                .bearer(ctx.bearer(PROVIDER)?)?;
            let response = self.http.send(request, ctx).await?;
            match response.status {
                StatusCode::ACCEPTED => {
                    let wait = response
                        .retry_after()
                        .unwrap_or(Duration::from_secs(1))
                        .min(MAX_NOT_READY_WAIT);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => continue,
                        () = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
                    }
                }
                status if status.is_redirection() => {
                    let location = response
                        .headers
                        .get(header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| url.join(v).ok())
                        .ok_or_else(|| {
                            ToolError::BadResponse("redirect without a Location".into())
                        })?;
                    let fetched = self
                        .http
                        .send(
                            UpstreamRequest::new(Method::GET, location).idempotent(true),
                            ctx,
                        )
                        .await?;
                    check(&fetched)?;
                    return Ok(fetched.body);
                }
                _ => {
                    check(&response)?;
                    return Ok(response.body);
                }
            }
        }
        Err(ToolError::Upstream {
            status: 202,
            message: "Box kept answering that the file is not ready for download; try again later"
                .into(),
        })
    }

    /// Multipart upload: an `attributes` JSON part, then the `file` part (Box requires this order).
    pub(crate) async fn upload(
        &self,
        attributes: &Value,
        name: &str,
        content: Bytes,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let boundary = format!("manifold-{:016x}", rand::rng().random::<u64>());
        let safe_name: String = name
            .chars()
            .map(|c| if c == '"' || c.is_control() { '_' } else { c })
            .collect();
        let mut body = Vec::with_capacity(content.len() + 512);
        body.extend_from_slice(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"attributes\"\r\n\r\n{attributes}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        ).as_bytes());
        body.extend_from_slice(&content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut request =
            UpstreamRequest::new(Method::POST, self.upload_url()?).bearer(ctx.bearer(PROVIDER)?)?;
        let content_type =
            HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
                .map_err(|_| ToolError::BadResponse("invalid multipart boundary".into()))?;
        request.headers.insert(header::CONTENT_TYPE, content_type);
        request.body = Some(Bytes::from(body));
        let response = self.http.send(request, ctx).await?;
        check(&response)?;
        serde_json::from_slice(&response.body).map_err(|e| ToolError::BadResponse(e.to_string()))
    }
}

/// Maps a Box error answer (`{"type":"error","status":404,"code":"not_found","message":…}`).
pub(crate) fn check(response: &UpstreamResponse) -> Result<(), ToolError> {
    let status = response.status;
    if status.is_success() {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let code = body.get("code").and_then(Value::as_str).unwrap_or_default();
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no details given");
    let described = if code.is_empty() {
        message.to_owned()
    } else {
        format!("{message} ({code})")
    };
    Err(match status {
        StatusCode::UNAUTHORIZED => ToolError::Unauthorized(
            "Box rejected the access token (expired or revoked); reconnect Box".into(),
        ),
        StatusCode::TOO_MANY_REQUESTS => ToolError::RateLimited {
            retry_after: response.retry_after(),
        },
        StatusCode::NOT_FOUND => ToolError::NotFound(format!("Box: {described}")),
        StatusCode::FORBIDDEN => ToolError::Forbidden(format!("Box: {described}")),
        StatusCode::CONFLICT => ToolError::InvalidArguments(format!(
            "Box: {described}; an item with that name already exists in the folder"
        )),
        StatusCode::BAD_REQUEST | StatusCode::PRECONDITION_FAILED => {
            ToolError::InvalidArguments(format!("Box: {described}"))
        }
        _ => ToolError::Upstream {
            status: status.as_u16(),
            message: described,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_host_follows_the_api_host() {
        let http = crate::UpstreamClient::new(crate::UpstreamConfig::default())
            .expect("client")
            .for_instance("t", 1);
        let real = Url::parse("https://api.box.com").expect("url");
        let client = BoxClient::new(http.clone(), &real, None).expect("client");
        assert_eq!(
            client.upload_url().expect("url").as_str(),
            "https://upload.box.com/api/2.0/files/content"
        );
        let id = PathSegment::encode("file_id", "1 2/x").expect("segment");
        assert_eq!(
            client
                .url(&["files".into(), id], &[])
                .expect("url")
                .as_str(),
            "https://api.box.com/2.0/files/1%202%2Fx"
        );
        assert!(PathSegment::encode("file_id", "1/../x").is_err());
        let sandbox = Url::parse("http://127.0.0.1:9/box").expect("url");
        let client = BoxClient::new(http, &sandbox, None).expect("client");
        assert_eq!(
            client.upload_url().expect("url").as_str(),
            "http://127.0.0.1:9/box/upload/api/2.0/files/content"
        );
    }
}
