//! The one Microsoft Graph client the Outlook, Teams and SharePoint adapters share: URL building
//! under the configured base (`https://graph.microsoft.com/v1.0`), bearer auth, `@odata.nextLink`
//! paging behind opaque cursors, and Graph error bodies mapped to [`ToolError`].

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Map, Value};
use url::Url;

use super::cursor;
use crate::{
    BuildError, CallContext, ToolError,
    upstream::{InstanceClient, PathSegment, UpstreamRequest, UpstreamResponse, path},
};

/// Sends Graph requests for one adapter instance.
#[derive(Debug, Clone)]
pub(crate) struct GraphClient {
    http: InstanceClient,
    base: Url,
}

/// One page of a Graph collection, with the cursor for the next one.
#[derive(Debug)]
pub(crate) struct Page {
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
}

impl GraphClient {
    pub(crate) fn new(http: InstanceClient, base_url: &Url) -> Result<Self, BuildError> {
        if base_url.cannot_be_a_base() {
            return Err(BuildError::BaseUrl {
                url: base_url.to_string(),
                reason: "cannot be a base URL".into(),
            });
        }
        let mut base = base_url.clone();
        // Normalise to no trailing slash so segments append cleanly and nextLinks compare.
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty();
        }
        Ok(Self { http, base })
    }

    /// `{base}/{segments…}?{query}`; ids and names went through [`PathSegment::encode`], so
    /// they can never add or climb path segments or add query parameters.
    pub(crate) fn url(
        &self,
        segments: &[PathSegment],
        query: &[(&str, String)],
    ) -> Result<Url, ToolError> {
        let mut url = path::append(&self.base, segments)?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        Ok(url)
    }

    fn request(
        &self,
        method: Method,
        url: Url,
        ctx: &CallContext,
    ) -> Result<UpstreamRequest, ToolError> {
        let token = ctx.bearer("Microsoft")?;
        let idempotent = matches!(method, Method::GET | Method::PUT);
        UpstreamRequest::new(method, url)
            .idempotent(idempotent)
            .bearer(token)
    }

    /// GET a JSON resource.
    pub(crate) async fn get(&self, url: Url, ctx: &CallContext) -> Result<Value, ToolError> {
        let request = self.request(Method::GET, url, ctx)?;
        let response = self.http.send(request, ctx).await?;
        decode_json(&response)
    }

    /// POST (or PATCH) a JSON body; `Value::Null` for answers without a body (202, 204).
    /// Writes are never resent after a 5xx or a broken connection: they may have taken effect.
    pub(crate) async fn post(
        &self,
        url: Url,
        body: &Value,
        ctx: &CallContext,
        idempotent: bool,
    ) -> Result<Value, ToolError> {
        let request = self
            .request(Method::POST, url, ctx)?
            .json(body)
            .idempotent(idempotent);
        let response = self.http.send(request, ctx).await?;
        if response.status == StatusCode::SERVICE_UNAVAILABLE && !idempotent {
            return Err(unsent_write(&response));
        }
        decode_json(&response)
    }

    /// PUT raw bytes (simple upload). `with_auth` is false for upload-session URLs, which carry
    /// their own authorization and must not receive the bearer token.
    pub(crate) async fn put_bytes(
        &self,
        url: Url,
        bytes: Bytes,
        content_range: Option<String>,
        with_auth: bool,
        ctx: &CallContext,
    ) -> Result<Value, ToolError> {
        let mut request = if with_auth {
            self.request(Method::PUT, url, ctx)?
        } else {
            UpstreamRequest::new(Method::PUT, url).idempotent(true)
        };
        request.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Some(range) = content_range {
            let value = HeaderValue::from_str(&range)
                .map_err(|_| ToolError::InvalidArguments("bad content range".into()))?;
            request.headers.insert(header::CONTENT_RANGE, value);
        }
        request.body = Some(bytes);
        let response = self.http.send(request, ctx).await?;
        decode_json(&response)
    }

    /// GET raw content (a file, following Graph's redirect to the download URL).
    pub(crate) async fn get_bytes(
        &self,
        url: Url,
        ctx: &CallContext,
    ) -> Result<(Bytes, Option<String>), ToolError> {
        let request = self.request(Method::GET, url, ctx)?;
        let response = self.http.send(request, ctx).await?;
        if !response.status.is_success() {
            return Err(map_error(&response));
        }
        let content_type = response
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((response.body, content_type))
    }

    /// One page of a collection: the first one from `first`, or the one the `cursor` argument
    /// points at. The cursor wraps Graph's `@odata.nextLink`, which must stay under the base URL
    /// so an altered cursor cannot send the user's token to another host.
    pub(crate) async fn page(
        &self,
        tool: &str,
        arguments: &Map<String, Value>,
        first: Url,
        ctx: &CallContext,
    ) -> Result<Page, ToolError> {
        let url = match cursor::decode(tool, arguments)? {
            Some(link) => self.next_link(&link)?,
            None => first,
        };
        let body = self.get(url, ctx).await?;
        let items = body
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| ToolError::BadResponse("a Graph collection without `value`".into()))?;
        let next_cursor = body
            .get("@odata.nextLink")
            .and_then(Value::as_str)
            .map(|link| cursor::encode(tool, arguments, link));
        Ok(Page { items, next_cursor })
    }

    pub(crate) fn next_link(&self, link: &str) -> Result<Url, ToolError> {
        // Under the base path segment by segment: `/v1.0` must not admit `/v1.0beta/…`.
        let prefix = self.base.path().trim_end_matches('/');
        let url = Url::parse(link).ok().filter(|url| {
            url.origin() == self.base.origin()
                && (url.path() == prefix
                    || url
                        .path()
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('/')))
        });
        url.ok_or_else(|| {
            ToolError::InvalidArguments("`cursor` does not point into Microsoft Graph".into())
        })
    }
}

fn decode_json(response: &UpstreamResponse) -> Result<Value, ToolError> {
    if !response.status.is_success() {
        return Err(map_error(response));
    }
    if response.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&response.body)
        .map_err(|error| ToolError::BadResponse(format!("Graph answered invalid JSON: {error}")))
}

/// A write answered 503: unlike a 429, Graph may have acted on it before failing, so it was not
/// resent, and saying "rate limited, retry" would invite a duplicate (a second mail, a second post).
fn unsent_write(response: &UpstreamResponse) -> ToolError {
    let wait = response
        .retry_after()
        .map(|wait| format!(" (Graph asked to wait {} s)", wait.as_secs()))
        .unwrap_or_default();
    ToolError::Upstream {
        status: 503,
        message: format!(
            "Microsoft Graph was unavailable{wait}; this write was not resent automatically \
             because it may already have taken effect: check before trying again"
        ),
    }
}

/// Maps a Graph error answer (`{"error": {"code", "message", "innerError": {"request-id"}}}`).
pub(crate) fn map_error(response: &UpstreamResponse) -> ToolError {
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    let field = |pointer: &str| {
        parsed
            .as_ref()
            .and_then(|body| body.pointer(pointer))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let code = field("/error/code");
    let mut message = field("/error/message");
    if message.is_empty() {
        message = format!("HTTP {}", response.status.as_u16());
    }
    let request_id = field("/error/innerError/request-id");
    let detail = match (code.is_empty(), request_id.is_empty()) {
        (false, false) => format!("{message} ({code}; request-id {request_id})"),
        (false, true) => format!("{message} ({code})"),
        (true, false) => format!("{message} (request-id {request_id})"),
        (true, true) => message,
    };
    match response.status {
        StatusCode::UNAUTHORIZED => ToolError::Unauthorized(format!(
            "Microsoft Graph rejected the access token: {detail}"
        )),
        StatusCode::FORBIDDEN => ToolError::Forbidden(detail),
        StatusCode::NOT_FOUND => ToolError::NotFound(detail),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => ToolError::RateLimited {
            retry_after: response.retry_after(),
        },
        StatusCode::BAD_REQUEST => ToolError::InvalidArguments(detail),
        status => ToolError::Upstream {
            status: status.as_u16(),
            message: detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn answer(status: u16, body: &str) -> UpstreamResponse {
        UpstreamResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn next_links_stay_under_the_base_path() {
        let http = crate::UpstreamClient::new(crate::UpstreamConfig::default())
            .expect("client")
            .for_instance("t", 1);
        let base = Url::parse("https://graph.microsoft.com/v1.0").expect("url");
        let graph = GraphClient::new(http, &base).expect("client");
        for good in [
            "https://graph.microsoft.com/v1.0/me/messages?$skiptoken=x",
            "https://graph.microsoft.com/v1.0/users/a%2F..%2Fb/messages",
        ] {
            assert!(graph.next_link(good).is_ok(), "{good}");
        }
        for bad in [
            "https://graph.microsoft.com/v1.0beta/me/messages",
            "https://graph.microsoft.com/v1.0/../beta/me",
            "https://graph.microsoft.com/beta/me",
            "https://graph.microsoft.com.evil.example/v1.0/me",
            "http://graph.microsoft.com/v1.0/me",
            "not a url",
        ] {
            assert!(graph.next_link(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn maps_graph_error_bodies() {
        let body = r#"{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store.","innerError":{"request-id":"r-1"}}}"#;
        match map_error(&answer(404, body)) {
            ToolError::NotFound(text) => {
                assert!(
                    text.contains("ErrorItemNotFound") && text.contains("r-1"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            map_error(&answer(403, body)),
            ToolError::Forbidden(_)
        ));
        assert!(matches!(
            map_error(&answer(401, "")),
            ToolError::Unauthorized(_)
        ));
        assert!(matches!(
            map_error(&answer(503, "")),
            ToolError::RateLimited { .. }
        ));
        assert!(matches!(
            map_error(&answer(500, "oops")),
            ToolError::Upstream { status: 500, .. }
        ));
    }
}
