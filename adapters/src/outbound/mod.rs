//! The one HTTP client for fetches a request can make the gateway perform — client ID metadata
//! documents, OpenID discovery, JWKS, the identity provider's token endpoint, and upstream
//! metadata — guarded against server-side request forgery:
//!
//! - https only (http only when the operator sets `allow_http`, for demos and tests);
//! - no credentials in URLs, no proxies from the environment (a proxy would resolve for us);
//! - every address is checked by [`address::AddressRules`]: literal hosts before the request,
//!   named hosts inside the resolver reqwest connects with ([`resolve`]), so the address checked
//!   is the address used and DNS rebinding has no second lookup to win;
//! - redirects are followed by hand, each hop checked like the first (or not at all);
//! - bodies are capped while they stream, requests are time-capped;
//! - a small cache ([`cache`]) for documents fetched on behalf of callers.

pub mod address;
mod cache;
pub mod resolve;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, Method, StatusCode, header};
use url::{Host, Url};

pub use address::{AddressRules, Cidr, CidrError};
pub use resolve::{BlockedAddress, Lookup, SystemLookup};

/// Why an outbound fetch was refused or failed. The texts name no address, so an error shown
/// to a caller is not an oracle for the gateway's internal DNS.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("the URL is not valid")]
    InvalidUrl,
    #[error("only https URLs may be fetched")]
    Scheme,
    #[error("URLs with credentials may not be fetched")]
    Credentials,
    #[error("{host} is not a public address")]
    Blocked { host: String },
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("a redirect without a valid Location")]
    BadRedirect,
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request timed out")]
    Timeout,
    #[error("the request failed: {0}")]
    Transport(String),
    #[error("the response is not the expected JSON")]
    Json,
}

/// What the operator allows outbound fetches to do.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Also fetch `http://` URLs (demo and tests, whose servers are loopback http).
    pub allow_http: bool,
    pub rules: AddressRules,
    /// Largest response body read by default.
    pub max_body_bytes: usize,
    /// Whole-request bound (connect, headers and body).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Redirect hops followed (each checked) where a fetch follows redirects.
    pub max_redirects: usize,
    pub cache_entries: usize,
    /// Kept this long when a response says nothing; never longer than `cache_max_ttl`.
    pub cache_default_ttl: Duration,
    pub cache_max_ttl: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            allow_http: false,
            rules: AddressRules::default(),
            max_body_bytes: 1024 * 1024,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 3,
            cache_entries: 256,
            cache_default_ttl: Duration::from_secs(300),
            cache_max_ttl: Duration::from_secs(3600),
        }
    }
}

/// Per-fetch options; the defaults come from [`OutboundSettings`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Fetch {
    /// A smaller body cap for this fetch.
    pub max_bytes: Option<usize>,
    /// A shorter time cap for this fetch.
    pub timeout: Option<Duration>,
    /// Follow redirects (each hop checked); otherwise a 3xx is returned as is.
    pub follow_redirects: bool,
}

/// A response read in full (within the caps).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The guarded client. Cheap to share behind an `Arc`.
pub struct Outbound {
    http: reqwest::Client,
    settings: OutboundSettings,
    cache: cache::Cache,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

// === impl Fetched ===

impl Fetched {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, OutboundError> {
        serde_json::from_slice(&self.body).map_err(|_| OutboundError::Json)
    }
}

// === impl Outbound ===

impl Outbound {
    /// A client resolving names with the operating system.
    pub fn new(settings: OutboundSettings) -> Result<Self, OutboundError> {
        Self::with_lookup(settings, Arc::new(SystemLookup))
    }

    /// A client resolving names with `lookup` (tests: a fixed or rebinding table).
    pub fn with_lookup(
        settings: OutboundSettings,
        lookup: Arc<dyn Lookup>,
    ) -> Result<Self, OutboundError> {
        let resolver = resolve::GuardedResolver {
            lookup,
            rules: Arc::new(settings.rules.clone()),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("manifold/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OutboundError::Transport(e.without_url().to_string()))?;
        let cache = cache::Cache::new(
            settings.cache_entries,
            settings.cache_default_ttl,
            settings.cache_max_ttl,
        );
        Ok(Self {
            http,
            settings,
            cache,
        })
    }

    pub fn settings(&self) -> &OutboundSettings {
        &self.settings
    }

    /// Whether `url` may be requested at all: scheme, credentials, and a literal address.
    /// Named hosts are checked again when resolved.
    pub fn check(&self, url: &Url) -> Result<(), OutboundError> {
        match url.scheme() {
            "https" => {}
            "http" if self.settings.allow_http => {}
            _ => return Err(OutboundError::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::Credentials);
        }
        let ip = match url.host() {
            None => return Err(OutboundError::InvalidUrl),
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        };
        if self.settings.rules.allows(ip) {
            Ok(())
        } else {
            Err(OutboundError::Blocked {
                host: ip.to_string(),
            })
        }
    }

    /// `GET url`, read in full within the caps.
    pub async fn get(
        &self,
        url: &str,
        accept: &str,
        fetch: Fetch,
    ) -> Result<Fetched, OutboundError> {
        let url = Url::parse(url).map_err(|_| OutboundError::InvalidUrl)?;
        self.send(Method::GET, url, accept, None, fetch).await
    }

    /// `GET url` through the cache: only a 200 is returned (and kept, as `Cache-Control`
    /// allows); any other status is [`OutboundError::Transport`].
    pub async fn get_cached(
        &self,
        url: &str,
        accept: &str,
        fetch: Fetch,
    ) -> Result<Bytes, OutboundError> {
        if let Some(body) = self.cache.get(url) {
            return Ok(body);
        }
        let fetched = self.get(url, accept, fetch).await?;
        if fetched.status != StatusCode::OK {
            return Err(OutboundError::Transport(format!(
                "status {}",
                fetched.status.as_u16()
            )));
        }
        let cache_control = fetched
            .headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok());
        self.cache.put(url, &fetched.body, cache_control);
        Ok(fetched.body)
    }

    /// `POST url` with a form body; redirects are never followed (a form is not re-sent).
    pub async fn post_form(
        &self,
        url: &str,
        body: String,
        fetch: Fetch,
    ) -> Result<Fetched, OutboundError> {
        let body = Body {
            content_type: "application/x-www-form-urlencoded",
            bytes: body,
        };
        self.post(url, body, "application/json", fetch).await
    }

    /// `POST url` with a JSON body (dynamic client registration, an MCP server's 401 probe);
    /// redirects are never followed.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        accept: &str,
        fetch: Fetch,
    ) -> Result<Fetched, OutboundError> {
        let body = Body {
            content_type: "application/json",
            bytes: body.to_string(),
        };
        self.post(url, body, accept, fetch).await
    }

    async fn post(
        &self,
        url: &str,
        body: Body,
        accept: &str,
        fetch: Fetch,
    ) -> Result<Fetched, OutboundError> {
        let url = Url::parse(url).map_err(|_| OutboundError::InvalidUrl)?;
        let fetch = Fetch {
            follow_redirects: false,
            ..fetch
        };
        self.send(Method::POST, url, accept, Some(body), fetch)
            .await
    }

    /// The guarded HTTP client itself (no redirects, checked addresses), for protocol clients
    /// that build their own requests, such as the OAuth token requests to an authorization
    /// server the gateway discovered.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    async fn send(
        &self,
        method: Method,
        mut url: Url,
        accept: &str,
        body: Option<Body>,
        fetch: Fetch,
    ) -> Result<Fetched, OutboundError> {
        let max_bytes = fetch
            .max_bytes
            .unwrap_or(self.settings.max_body_bytes)
            .min(self.settings.max_body_bytes);
        let mut hops = 0;
        loop {
            self.check(&url)?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(header::ACCEPT, accept);
            if let Some(timeout) = fetch.timeout {
                request = request.timeout(timeout.min(self.settings.timeout));
            }
            if let Some(body) = &body {
                request = request
                    .header(header::CONTENT_TYPE, body.content_type)
                    .body(body.bytes.clone());
            }
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status();
            if status.is_redirection() && fetch.follow_redirects && method == Method::GET {
                hops += 1;
                if hops > self.settings.max_redirects {
                    return Err(OutboundError::TooManyRedirects);
                }
                url = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|location| url.join(location).ok())
                    .ok_or(OutboundError::BadRedirect)?;
                continue;
            }
            let headers = response.headers().clone();
            let body = read_capped(response, max_bytes).await?;
            return Ok(Fetched {
                status,
                headers,
                body,
            });
        }
    }
}

/// A request body and its media type.
struct Body {
    content_type: &'static str,
    bytes: String,
}

/// The body, refused as soon as it passes `max_bytes` (a declared length is checked first).
async fn read_capped(
    response: reqwest::Response,
    max_bytes: usize,
) -> Result<Bytes, OutboundError> {
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(OutboundError::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transport_error)?;
        if body.len() + chunk.len() > max_bytes {
            return Err(OutboundError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// A reqwest error as an [`OutboundError`]: the resolver's refusal is found in the source chain.
fn transport_error(error: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<BlockedAddress>() {
            tracing::warn!(host = %blocked.host, addr = %blocked.addr, "outbound fetch refused");
            return OutboundError::Blocked {
                host: blocked.host.clone(),
            };
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return OutboundError::Timeout;
    }
    OutboundError::Transport(error.without_url().to_string())
}
