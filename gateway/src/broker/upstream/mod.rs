//! Per-user credentials for upstream MCP servers (`kind = "mcp"`). With `settings.auth =
//! "oauth"` an instance is a broker provider like Linear or Microsoft, connected by each user at
//! `/connections` (connection id `mcp-<instance>`), except that its endpoints are not known from
//! the config: the upstream's 401 leads to its authorization server ([`discovery`]), where the
//! gateway becomes a client ([`registration`]). Discovery runs when the provider is first needed
//! and again on the next use while it fails; [`warm_up`] starts it at start with backoff, so an
//! upstream that is down at start is found once it is up. With `settings.auth =
//! "token_exchange"` nothing is connected: the caller's sign-in token ([`sign_ins`]) is traded
//! for an upstream token ([`exchange`]).
//!
//! Tokens asked for name the upstream as their RFC 8707 `resource`, and every request to the
//! upstream carries only the user's token for it: the MCP client's token to the gateway never
//! reaches an upstream (an exchange shows it to the upstream's authorization server only).

pub mod discovery;
pub mod exchange;
mod listing;
pub mod registration;
pub mod sign_ins;

pub use listing::list_offers;

use std::{sync::Arc, time::Duration};

use manifold_adapters::{
    OAuthSpec, Secret,
    mcp::{ExchangeGrant, McpSettings, UpstreamAuth},
    outbound::{AddressRules, Outbound, OutboundSettings, address},
};
use tokio_util::sync::CancellationToken;
use url::Url;

use self::exchange::{Exchanger, Grant};
use super::provider::{AppSource, Discovered, Endpoints, Provider, Registered};
use crate::config::Config;

/// The habits every upstream authorization server is assumed to have (OAuth 2.1 as the MCP
/// authorization spec profiles it); the endpoints themselves are discovered.
const UPSTREAM_SPEC: OAuthSpec = OAuthSpec {
    connection: "mcp",
    display_name: "MCP server",
    authorize_url: "",
    token_url: "",
    revoke_url: None,
    base_scopes: &[],
    extra_authorize_params: &[],
    rotating_refresh_tokens: true,
    scope_separator: " ",
    sandbox_authorize_path: "",
    sandbox_token_path: "",
};

/// The first and the longest wait between discovery attempts at start.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// The broker connection id of an `mcp` instance with per-user OAuth.
pub fn connection_id(instance: &str) -> String {
    format!("mcp-{instance}")
}

/// `(instance, provider)` for every enabled `mcp` instance with `auth = "oauth"`. Reads only
/// the config: nothing is fetched until the provider is first used (or [`warm_up`]).
pub fn providers(
    config: &Config,
    public_url: &Url,
) -> Result<Vec<(String, Arc<Provider>)>, String> {
    let mut providers = Vec::new();
    for upstream in upstreams(config)? {
        let UpstreamAuth::OAuth(oauth) = upstream.auth else {
            continue;
        };
        let name = upstream.name;
        let preregistered = oauth
            .client_id
            .clone()
            .map(|id| (id, upstream.client_secret.clone()));
        let source = Arc::new(UpstreamApp {
            instance: name.clone(),
            url: upstream.url.clone(),
            outbound: upstream.outbound.clone(),
            preregistered,
            public_url: public_url.clone(),
        });
        let discovered = Discovered {
            connection: connection_id(&name),
            display_name: oauth.display_name.clone().unwrap_or_else(|| name.clone()),
            spec: UPSTREAM_SPEC,
            scopes: oauth.scopes.clone(),
            resource: upstream.url.to_string(),
        };
        let provider = Provider::discovered(
            discovered,
            source,
            registration::redirect_uri(public_url),
            upstream.outbound.http_client().clone(),
        );
        providers.push((name, Arc::new(provider)));
    }
    Ok(providers)
}

/// `(instance, exchanger)` for every enabled `mcp` instance with `auth = "token_exchange"`.
pub fn exchangers(config: &Config) -> Result<Vec<(String, Arc<Exchanger>)>, String> {
    let mut exchangers = Vec::new();
    for upstream in upstreams(config)? {
        let UpstreamAuth::TokenExchange(settings) = upstream.auth else {
            continue;
        };
        let grant = match settings.grant {
            ExchangeGrant::Rfc8693 { audience } => Grant::Rfc8693 { audience },
            ExchangeGrant::EntraObo => Grant::EntraObo,
        };
        let exchanger = Exchanger::new(
            upstream.name.clone(),
            upstream.url,
            upstream.outbound,
            (settings.client_id, upstream.client_secret),
            grant,
            settings.scopes,
        );
        exchangers.push((upstream.name, Arc::new(exchanger)));
    }
    Ok(exchangers)
}

/// An enabled `mcp` instance whose upstream authenticates each user.
struct Upstream {
    name: String,
    url: Url,
    auth: UpstreamAuth,
    client_secret: Option<Secret>,
    /// The SSRF-guarded client for everything fetched about it.
    outbound: Arc<Outbound>,
}

/// Every enabled `mcp` instance with per-user auth. Bad settings are skipped here: the
/// adapter's own build reports them with their place in the file.
fn upstreams(config: &Config) -> Result<Vec<Upstream>, String> {
    let operator = config
        .outbound
        .settings()
        .map_err(|error| format!("[outbound]: {error}"))?;
    let mut upstreams = Vec::new();
    for (name, instance) in &config.adapters {
        let name = name.get_ref();
        if instance.kind.get_ref() != "mcp" || !instance.enabled || instance.sandbox {
            continue;
        }
        let Some(url) = instance
            .base_url
            .as_ref()
            .and_then(|url| Url::parse(url.get_ref()).ok())
        else {
            continue;
        };
        let Ok(serde_json::Value::Object(settings)) = serde_json::to_value(&instance.settings)
        else {
            continue;
        };
        let Ok(parsed) = McpSettings::parse(&url, settings) else {
            continue;
        };
        if !parsed.auth.per_user() {
            continue;
        }
        let outbound = Arc::new(
            Outbound::new(outbound_for(&url, &operator))
                .map_err(|error| format!("adapter `{name}`: {error}"))?,
        );
        upstreams.push(Upstream {
            name: name.clone(),
            url,
            auth: parsed.auth,
            client_secret: instance.credentials.get("client_secret").cloned(),
            outbound,
        });
    }
    Ok(upstreams)
}

/// The outbound rules for fetches about the upstream at `url`: the operator's, with private
/// addresses and http allowed only when the upstream itself is at a private or loopback
/// address (an internal server's authorization server is internal too), and never otherwise.
pub fn outbound_for(url: &Url, operator: &OutboundSettings) -> OutboundSettings {
    let private = is_private(url);
    OutboundSettings {
        allow_http: private,
        rules: AddressRules {
            allow_private: private,
            allowed_cidrs: operator.rules.allowed_cidrs.clone(),
        },
        max_body_bytes: operator.max_body_bytes.min(discovery::MAX_METADATA_BYTES),
        ..operator.clone()
    }
}

/// Whether `url`'s host is a loopback or private address (or `localhost`).
fn is_private(url: &Url) -> bool {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        Some(url::Host::Domain(name)) => return name == "localhost",
        None => return false,
    };
    address::classify(ip) == address::AddressClass::Private
}

/// Discovers each provider's authorization server and registers with it now, retrying with
/// backoff until it works or the gateway stops, so the first user does not wait for it.
pub fn warm_up(providers: &[(String, Arc<Provider>)], shutdown: &CancellationToken) {
    for (instance, provider) in providers {
        let (instance, provider, shutdown) = (instance.clone(), provider.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut backoff = BACKOFF.0;
            loop {
                match provider.ready().await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(%instance, %error, "upstream authorization server not ready; retrying");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        });
    }
}

/// Discovery and registration for one upstream.
#[derive(Debug)]
struct UpstreamApp {
    instance: String,
    url: Url,
    outbound: Arc<Outbound>,
    preregistered: Option<(String, Option<Secret>)>,
    public_url: Url,
}

#[async_trait::async_trait]
impl AppSource for UpstreamApp {
    async fn resolve(&self) -> Result<Registered, String> {
        let found = discovery::discover(&self.outbound, &self.url)
            .await
            .map_err(|error| error.to_string())?;
        let server = &found.server;
        let client = registration::register(
            &self.outbound,
            server,
            self.preregistered.clone(),
            &self.public_url,
        )
        .await
        .map_err(|error| error.to_string())?;
        let parse = |url: &Option<String>| -> Result<Option<Url>, String> {
            url.as_deref()
                .map(|url| {
                    let parsed =
                        Url::parse(url).map_err(|_| "an endpoint is not a URL".to_owned())?;
                    self.outbound
                        .check(&parsed)
                        .map_err(|error| format!("an endpoint is refused: {error}"))?;
                    Ok(parsed)
                })
                .transpose()
        };
        let endpoints = Endpoints {
            authorize: parse(&server.authorization_endpoint)?.ok_or("no authorization endpoint")?,
            token: parse(&server.token_endpoint)?.ok_or("no token endpoint")?,
            revoke: parse(&server.revocation_endpoint)?,
        };
        tracing::info!(
            instance = %self.instance,
            issuer = %server.issuer,
            client = ?client.how,
            "upstream authorization server discovered"
        );
        Ok(Registered {
            endpoints,
            client_id: client.client_id,
            client_secret: client.client_secret,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_and_http_are_allowed_only_for_a_private_upstream() {
        let operator = OutboundSettings::default();
        let public = outbound_for(&Url::parse("https://crm.example/mcp").unwrap(), &operator);
        assert!(!public.allow_http && !public.rules.allow_private);
        let public_ip = outbound_for(&Url::parse("https://8.8.8.8/mcp").unwrap(), &operator);
        assert!(!public_ip.rules.allow_private);
        for private in [
            "http://127.0.0.1:8080/mcp",
            "http://10.1.2.3/mcp",
            "http://localhost/mcp",
        ] {
            let settings = outbound_for(&Url::parse(private).unwrap(), &operator);
            assert!(
                settings.allow_http && settings.rules.allow_private,
                "{private}"
            );
        }
        assert!(public.max_body_bytes <= discovery::MAX_METADATA_BYTES);
    }
}
