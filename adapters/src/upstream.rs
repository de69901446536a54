//! The one HTTP client every adapter uses to reach its provider: pooled connections, timeouts,
//! retries with backoff that honour `Retry-After` within a time budget, W3C `traceparent`
//! propagation, and a concurrency limit per adapter instance.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::sync::Semaphore;
use url::Url;

use crate::{BuildError, CallContext, ToolError};

pub mod path;
mod retry;
mod traceparent;

pub use path::{PathError, PathSegment};
pub use retry::RetryPolicy;
pub use traceparent::Traceparent;

/// Timeouts and retry limits shared by all adapters (`[upstream]` in the config).
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub connect_timeout: Duration,
    /// Upper bound for one attempt, from sending the request to the last body byte.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub user_agent: String,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            user_agent: format!("manifold/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// The shared client. Cheap to clone; all clones share one connection pool.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    config: Arc<UpstreamConfig>,
}

/// A view of the shared client for one adapter instance, holding that instance's concurrency limit.
#[derive(Debug, Clone)]
pub struct InstanceClient {
    upstream: UpstreamClient,
    limit: Arc<Semaphore>,
    instance: Arc<str>,
}

/// One request to a provider.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// May this request be sent again after a failure that might have reached the provider
    /// (5xx, timeout, reset)? Requests refused with 429 or never connected are always retried.
    pub idempotent: bool,
}

/// A provider's answer, body read in full.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

// === impl UpstreamClient ===

impl UpstreamClient {
    pub fn new(config: UpstreamConfig) -> Result<Self, BuildError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|error| BuildError::Client(error.to_string()))?;
        Ok(Self {
            http,
            config: Arc::new(config),
        })
    }

    /// A client for one instance allowing at most `max_concurrency` requests in flight.
    pub fn for_instance(&self, instance: &str, max_concurrency: usize) -> InstanceClient {
        InstanceClient {
            upstream: self.clone(),
            limit: Arc::new(Semaphore::new(max_concurrency.max(1))),
            instance: instance.into(),
        }
    }
}

// === impl UpstreamRequest ===

impl UpstreamRequest {
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            idempotent: false,
        }
    }

    /// A JSON body, with its content type.
    /// A JSON body. `body` is a `Value` or a struct of strings and values, which serialize
    /// without error.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.body = serde_json::to_vec(body).ok().map(Bytes::from);
        self
    }

    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// `Authorization: Bearer …`, marked sensitive so no debug output or log prints it.
    pub fn bearer(mut self, token: &str) -> Result<Self, ToolError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ToolError::Unauthorized("the stored credential is not a valid header value".into())
        })?;
        value.set_sensitive(true);
        self.headers.insert(header::AUTHORIZATION, value);
        Ok(self)
    }
}

// === impl UpstreamResponse ===

impl UpstreamResponse {
    /// `Retry-After` as seconds (the providers here send seconds, not HTTP dates).
    pub fn retry_after(&self) -> Option<Duration> {
        retry::parse_retry_after(&self.headers)
    }
}

// === impl InstanceClient ===

impl InstanceClient {
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Sends `request`, retrying as [`RetryPolicy`] allows. Returns every answer that is not
    /// retried, whatever its status, for the adapter to map; a 429 that outlasts the retry budget
    /// becomes [`ToolError::RateLimited`]. Abandons the request as soon as `ctx.cancel` fires.
    pub async fn send(
        &self,
        request: UpstreamRequest,
        ctx: &CallContext,
    ) -> Result<UpstreamResponse, ToolError> {
        let _permit = tokio::select! {
            permit = self.limit.acquire() => permit.map_err(|_| ToolError::Cancelled)?,
            () = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
        };
        let policy = &self.upstream.config.retry;
        let started = tokio::time::Instant::now();
        let trace = ctx
            .traceparent
            .as_deref()
            .and_then(Traceparent::parse)
            .unwrap_or_else(Traceparent::new_root);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let span = trace.child();
            let outcome = tokio::select! {
                outcome = self.attempt(&request, &span) => outcome,
                () = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
            };
            let wait = match policy.decide(&request, &outcome, attempt, started.elapsed()) {
                retry::Decision::Return => return outcome.into_result(),
                retry::Decision::RetryAfter(wait) => wait,
            };
            tracing::debug!(instance = %self.instance, attempt, ?wait, "retrying upstream request");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
            }
        }
    }

    async fn attempt(&self, request: &UpstreamRequest, trace: &Traceparent) -> Attempt {
        let mut builder = self
            .upstream
            .http
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone())
            .header("traceparent", trace.to_string());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return Attempt::from_send_error(&error),
        };
        let status = response.status();
        let headers = response.headers().clone();
        match response.bytes().await {
            Ok(body) => Attempt::Answered(UpstreamResponse {
                status,
                headers,
                body,
            }),
            Err(error) if error.is_timeout() => Attempt::TimedOut,
            Err(_) => Attempt::Broken("the connection closed while reading the answer".into()),
        }
    }
}

/// What one attempt produced, as the retry policy sees it.
#[derive(Debug)]
pub(crate) enum Attempt {
    Answered(UpstreamResponse),
    /// The connection was never made: the request cannot have reached the provider.
    NotConnected(String),
    TimedOut,
    /// The request may have reached the provider.
    Broken(String),
}

impl Attempt {
    fn from_send_error(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            Attempt::TimedOut
        } else if error.is_connect() {
            // reqwest's Display names the URL and the OS error, never headers.
            Attempt::NotConnected(error.to_string())
        } else {
            Attempt::Broken(error.to_string())
        }
    }

    fn into_result(self) -> Result<UpstreamResponse, ToolError> {
        match self {
            Attempt::Answered(response) if response.status == StatusCode::TOO_MANY_REQUESTS => {
                Err(ToolError::RateLimited {
                    retry_after: response.retry_after(),
                })
            }
            Attempt::Answered(response) => Ok(response),
            Attempt::NotConnected(reason) | Attempt::Broken(reason) => {
                Err(ToolError::Unreachable(reason))
            }
            Attempt::TimedOut => Err(ToolError::Timeout),
        }
    }
}
