//! Finding an upstream MCP server's authorization server, as an MCP client does: the server's
//! 401 names its Protected Resource Metadata (RFC 9728 `WWW-Authenticate: Bearer
//! resource_metadata="…"`, else the well-known URL under the server's path), which names the
//! authorization server, whose metadata comes from RFC 8414 or OpenID discovery.
//!
//! Every fetch goes through the SSRF-guarded [`Outbound`] client built for the instance
//! ([`super::outbound_for`]): size- and time-capped, redirects not followed, and private
//! addresses and http only when the instance's own URL is private.

use std::time::Duration;

use manifold_adapters::outbound::{Fetch, Fetched, Outbound, OutboundError};
use serde::Deserialize;
use serde_json::json;
use url::Url;

/// Largest metadata document accepted.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the authorization server could not be found. Texts name URLs without queries and no
/// credentials.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("the MCP server at {0} did not ask for a token (no 401): use auth = \"static\"")]
    NoChallenge(String),
    #[error("{what} could not be fetched: {source}")]
    Fetch {
        what: &'static str,
        #[source]
        source: OutboundError,
    },
    #[error("{what} answered HTTP {status}")]
    Status { what: &'static str, status: u16 },
    #[error("{what} is invalid: {reason}")]
    Invalid {
        what: &'static str,
        reason: &'static str,
    },
}

/// RFC 9728 Protected Resource Metadata, the parts used.
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// RFC 8414 Authorization Server Metadata, the parts used.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
}

/// What discovery found for one upstream.
#[derive(Debug, Clone)]
pub struct Found {
    pub resource: ResourceMetadata,
    pub server: ServerMetadata,
}

/// Discovers the authorization server of the MCP server at `url`.
pub async fn discover(outbound: &Outbound, url: &Url) -> Result<Found, DiscoveryError> {
    let metadata_url = challenge(outbound, url).await?;
    let resource = resource_metadata(outbound, url, metadata_url).await?;
    let issuer = resource
        .authorization_servers
        .first()
        .ok_or(DiscoveryError::Invalid {
            what: "the protected resource metadata",
            reason: "it names no authorization server",
        })?;
    let server = server_metadata(outbound, issuer).await?;
    Ok(Found { resource, server })
}

/// Probes `url` without a token; the `resource_metadata` of its 401 challenge, if it has one.
async fn challenge(outbound: &Outbound, url: &Url) -> Result<Option<String>, DiscoveryError> {
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "manifold", "version": env!("CARGO_PKG_VERSION")}}});
    let probe = outbound
        .post_json(
            url.as_str(),
            &initialize,
            "application/json, text/event-stream",
            fetch(),
        )
        .await
        .map_err(|source| DiscoveryError::Fetch {
            what: "the MCP server",
            source,
        })?;
    if probe.status.as_u16() != 401 {
        return Err(DiscoveryError::NoChallenge(shown(url)));
    }
    Ok(probe
        .headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| bearer_param(value, "resource_metadata")))
}

/// The metadata at `named` (from the challenge), else at the well-known URLs under `url`
/// (RFC 9728 §3.1: with the path, then at the root). Its `resource` must be `url`.
async fn resource_metadata(
    outbound: &Outbound,
    url: &Url,
    named: Option<String>,
) -> Result<ResourceMetadata, DiscoveryError> {
    const WHAT: &str = "the protected resource metadata";
    let candidates = match named {
        Some(named) => vec![named],
        None => well_known(url, "oauth-protected-resource"),
    };
    let mut last = None;
    for candidate in candidates {
        match get_json::<ResourceMetadata>(outbound, &candidate, WHAT).await {
            Ok(metadata) => {
                if !same_resource(&metadata.resource, url) {
                    return Err(DiscoveryError::Invalid {
                        what: WHAT,
                        reason: "its resource is not the MCP server's URL",
                    });
                }
                return Ok(metadata);
            }
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or(DiscoveryError::Invalid {
        what: WHAT,
        reason: "no URL to fetch it from",
    }))
}

/// RFC 8414 metadata of `issuer`, else OpenID discovery; its `issuer` must be `issuer`.
async fn server_metadata(
    outbound: &Outbound,
    issuer: &str,
) -> Result<ServerMetadata, DiscoveryError> {
    const WHAT: &str = "the authorization server metadata";
    let parsed = Url::parse(issuer).map_err(|_| DiscoveryError::Invalid {
        what: "the authorization server",
        reason: "its issuer is not a URL",
    })?;
    let mut candidates = well_known(&parsed, "oauth-authorization-server");
    candidates.extend(well_known(&parsed, "openid-configuration"));
    candidates.push(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ));
    candidates.dedup();
    let mut last = None;
    for candidate in candidates {
        match get_json::<ServerMetadata>(outbound, &candidate, WHAT).await {
            Ok(metadata)
                if metadata.issuer.trim_end_matches('/') == issuer.trim_end_matches('/') =>
            {
                return check_server(metadata);
            }
            Ok(_) => {
                return Err(DiscoveryError::Invalid {
                    what: WHAT,
                    reason: "its issuer is not the one the resource named",
                });
            }
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or(DiscoveryError::Invalid {
        what: WHAT,
        reason: "no URL to fetch it from",
    }))
}

/// The endpoints the broker needs, and PKCE with S256 (MCP clients must refuse a server that
/// does not say it supports it).
fn check_server(metadata: ServerMetadata) -> Result<ServerMetadata, DiscoveryError> {
    let invalid = |reason| DiscoveryError::Invalid {
        what: "the authorization server metadata",
        reason,
    };
    if metadata.authorization_endpoint.is_none() || metadata.token_endpoint.is_none() {
        return Err(invalid("it lacks the authorization or token endpoint"));
    }
    if !metadata
        .code_challenge_methods_supported
        .iter()
        .any(|method| method == "S256")
    {
        return Err(invalid("it does not support PKCE with S256"));
    }
    Ok(metadata)
}

/// `https://host/.well-known/<name><path>` then `https://host/.well-known/<name>`.
fn well_known(url: &Url, name: &str) -> Vec<String> {
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut candidates = Vec::new();
    if !path.is_empty() {
        candidates.push(format!("{origin}/.well-known/{name}{path}"));
    }
    candidates.push(format!("{origin}/.well-known/{name}"));
    candidates
}

async fn get_json<T: serde::de::DeserializeOwned>(
    outbound: &Outbound,
    url: &str,
    what: &'static str,
) -> Result<T, DiscoveryError> {
    let fetched: Fetched = outbound
        .get(url, "application/json", fetch())
        .await
        .map_err(|source| DiscoveryError::Fetch { what, source })?;
    if !fetched.status.is_success() {
        return Err(DiscoveryError::Status {
            what,
            status: fetched.status.as_u16(),
        });
    }
    fetched.json().map_err(|_| DiscoveryError::Invalid {
        what,
        reason: "not the expected JSON",
    })
}

fn fetch() -> Fetch {
    Fetch {
        max_bytes: Some(MAX_METADATA_BYTES),
        timeout: Some(TIMEOUT),
        // A redirect could send the gateway anywhere; metadata is served where it is named.
        follow_redirects: false,
    }
}

/// Whether a metadata `resource` names the server at `url` (a trailing slash aside).
fn same_resource(resource: &str, url: &Url) -> bool {
    resource.trim_end_matches('/') == url.as_str().trim_end_matches('/')
}

/// The value of `param` in a `Bearer` challenge (`Bearer realm="x", resource_metadata="…"`).
pub fn bearer_param(challenge: &str, param: &str) -> Option<String> {
    let rest = challenge.trim().strip_prefix("Bearer")?.trim_start();
    let mut rest = rest;
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let name = name.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };
        if name.eq_ignore_ascii_case(param) {
            return Some(value.to_owned());
        }
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    None
}

/// A URL as errors may show it: no user info, query or fragment.
fn shown(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_metadata_url_is_read_from_a_bearer_challenge() {
        let challenge = r#"Bearer realm="crm", resource_metadata="https://crm.example/.well-known/oauth-protected-resource/mcp", scope="a b""#;
        assert_eq!(
            bearer_param(challenge, "resource_metadata").as_deref(),
            Some("https://crm.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(bearer_param(challenge, "scope").as_deref(), Some("a b"));
        assert_eq!(
            bearer_param("Bearer error=invalid_token, realm=x", "realm").as_deref(),
            Some("x")
        );
        assert_eq!(bearer_param("Basic realm=\"x\"", "realm"), None);
        assert_eq!(
            bearer_param("Bearer realm=\"x\"", "resource_metadata"),
            None
        );
    }

    #[test]
    fn well_known_urls_keep_the_path_first() {
        let url = Url::parse("https://crm.example/tenant/mcp").unwrap();
        assert_eq!(
            well_known(&url, "oauth-protected-resource"),
            [
                "https://crm.example/.well-known/oauth-protected-resource/tenant/mcp",
                "https://crm.example/.well-known/oauth-protected-resource"
            ]
        );
    }

    #[test]
    fn a_server_without_s256_or_a_token_endpoint_is_refused() {
        let metadata = |methods: &[&str], token: Option<&str>| ServerMetadata {
            issuer: "https://as.example".into(),
            authorization_endpoint: Some("https://as.example/authorize".into()),
            token_endpoint: token.map(str::to_owned),
            revocation_endpoint: None,
            registration_endpoint: None,
            code_challenge_methods_supported: methods.iter().map(|m| (*m).to_owned()).collect(),
            grant_types_supported: Vec::new(),
            client_id_metadata_document_supported: false,
        };
        assert!(check_server(metadata(&["S256"], Some("https://as.example/token"))).is_ok());
        assert!(check_server(metadata(&["plain"], Some("https://as.example/token"))).is_err());
        assert!(check_server(metadata(&["S256"], None)).is_err());
    }
}
