//! The gateway as an OAuth client of an upstream's authorization server, in the order the MCP
//! authorization spec prefers: a client id registered beforehand (from the config), else a
//! Client ID Metadata Document (the gateway's own, published at `CLIENT_DOCUMENT_PATH` on its
//! public URL) where the server says it supports them, else dynamic client registration
//! (RFC 7591). A dynamically registered client lives as long as the process: each start
//! registers again (the registration holds nothing the gateway must keep).

use std::time::Duration;

use manifold_adapters::{
    Secret,
    outbound::{Fetch, Outbound, OutboundError},
};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::discovery::ServerMetadata;

/// Where the gateway publishes its client metadata document, under its public URL.
pub const CLIENT_DOCUMENT_PATH: &str = "/connections/client-metadata.json";
/// The name authorization servers show users on their consent pages.
const CLIENT_NAME: &str = "Manifold MCP gateway";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the gateway could not become a client of the authorization server.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(
        "the authorization server supports neither client metadata documents nor dynamic \
         registration: register the gateway there and set settings.oauth_client_id"
    )]
    Unsupported,
    #[error(
        "the authorization server supports only client metadata documents, which need an \
         https public URL (server.public_url): set settings.oauth_client_id instead"
    )]
    NoHttpsDocument,
    #[error("dynamic client registration failed: {0}")]
    Fetch(#[source] OutboundError),
    #[error("dynamic client registration answered HTTP {0}")]
    Status(u16),
    #[error("dynamic client registration answered without a client_id")]
    Invalid,
}

/// The client the gateway is at one authorization server.
#[derive(Debug)]
pub struct Client {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub how: How,
}

/// How the client came to be, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Preregistered,
    MetadataDocument,
    Dynamic,
}

/// The gateway's client metadata document, served at [`CLIENT_DOCUMENT_PATH`]; its
/// `client_id` is its own URL (as the draft requires).
pub fn client_document(public_url: &Url) -> Value {
    json!({
        "client_id": document_url(public_url).as_str(),
        "client_name": CLIENT_NAME,
        "client_uri": public_url.as_str(),
        "redirect_uris": [redirect_uri(public_url).as_str()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

pub fn document_url(public_url: &Url) -> Url {
    let mut url = public_url.clone();
    url.set_path(CLIENT_DOCUMENT_PATH);
    url.set_query(None);
    url
}

pub fn redirect_uri(public_url: &Url) -> Url {
    let mut url = public_url.clone();
    url.set_path("/connections/callback");
    url.set_query(None);
    url
}

/// Becomes a client of `server`: with `preregistered` when the config gives one, else by
/// metadata document or dynamic registration.
pub async fn register(
    outbound: &Outbound,
    server: &ServerMetadata,
    preregistered: Option<(String, Option<Secret>)>,
    public_url: &Url,
) -> Result<Client, RegistrationError> {
    if let Some((client_id, client_secret)) = preregistered {
        return Ok(Client {
            client_id,
            client_secret,
            how: How::Preregistered,
        });
    }
    // An authorization server fetches the document from outside: only an https URL can be
    // its client id (a loopback gateway in tests serves http, which a test server accepts).
    let document_usable = public_url.scheme() == "https" || is_loopback(public_url);
    if server.client_id_metadata_document_supported && document_usable {
        return Ok(Client {
            client_id: document_url(public_url).to_string(),
            client_secret: None,
            how: How::MetadataDocument,
        });
    }
    let Some(endpoint) = &server.registration_endpoint else {
        return Err(if server.client_id_metadata_document_supported {
            RegistrationError::NoHttpsDocument
        } else {
            RegistrationError::Unsupported
        });
    };
    dynamic(outbound, endpoint, public_url).await
}

/// RFC 7591: a public client (PKCE, no secret) unless the server insists on giving one.
async fn dynamic(
    outbound: &Outbound,
    endpoint: &str,
    public_url: &Url,
) -> Result<Client, RegistrationError> {
    #[derive(Deserialize)]
    struct Registered {
        client_id: String,
        client_secret: Option<String>,
    }
    let mut request = client_document(public_url);
    if let Some(map) = request.as_object_mut() {
        map.remove("client_id");
    }
    let fetch = Fetch {
        max_bytes: Some(super::discovery::MAX_METADATA_BYTES),
        timeout: Some(TIMEOUT),
        follow_redirects: false,
    };
    let answer = outbound
        .post_json(endpoint, &request, "application/json", fetch)
        .await
        .map_err(RegistrationError::Fetch)?;
    if !answer.status.is_success() {
        return Err(RegistrationError::Status(answer.status.as_u16()));
    }
    let registered: Registered = answer.json().map_err(|_| RegistrationError::Invalid)?;
    if registered.client_id.trim().is_empty() {
        return Err(RegistrationError::Invalid);
    }
    Ok(Client {
        client_id: registered.client_id,
        client_secret: registered.client_secret.map(Secret::new),
        how: How::Dynamic,
    })
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_client_document_names_itself_and_the_callback() {
        let public = Url::parse("https://gw.example/").unwrap();
        let document = client_document(&public);
        assert_eq!(
            document["client_id"],
            "https://gw.example/connections/client-metadata.json"
        );
        assert_eq!(
            document["redirect_uris"][0],
            "https://gw.example/connections/callback"
        );
        assert_eq!(document["token_endpoint_auth_method"], "none");
    }
}
