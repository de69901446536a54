//! Client ID Metadata Documents: a `client_id` that is an https URL names a JSON document
//! listing the client's name and redirect URIs. Anyone can send any URL here, so the fetch goes
//! through the SSRF-guarded client (public addresses only, unless `[outbound]` allows more),
//! size- and time-limited, without following redirects, and cached as its `Cache-Control`
//! allows within `[outbound] cache_max_ttl`.

use std::time::Duration;

use manifold_adapters::outbound::{Fetch, Outbound, OutboundError};
use serde::Deserialize;

use super::store::Client;

/// Largest document accepted.
const MAX_BYTES: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CimdError {
    #[error("client_id URL is not allowed (https only)")]
    NotAllowed,
    #[error("client metadata document could not be fetched: {0}")]
    Fetch(OutboundError),
    #[error("client metadata document is larger than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("client metadata document is invalid: {0}")]
    Invalid(&'static str),
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    redirect_uris: Vec<String>,
}

/// Whether `client_id` looks like a metadata document URL (rather than a registered id).
pub fn is_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Fetches and checks the document behind `client_id`. `allow_http` (tests only) also accepts
/// `http://` ids; where they may point is still the outbound guard's decision.
pub async fn fetch(
    outbound: &Outbound,
    client_id: &str,
    allow_http: bool,
) -> Result<Client, CimdError> {
    let url = url::Url::parse(client_id).map_err(|_| CimdError::NotAllowed)?;
    let allowed = match url.scheme() {
        "https" => url.path() != "/" && url.fragment().is_none(),
        "http" => allow_http && url.fragment().is_none(),
        _ => false,
    };
    if !allowed {
        return Err(CimdError::NotAllowed);
    }
    let fetch = Fetch {
        max_bytes: Some(MAX_BYTES),
        timeout: Some(TIMEOUT),
        follow_redirects: false,
    };
    let body = outbound
        .get_cached(url.as_str(), "application/json", fetch)
        .await
        .map_err(|error| match error {
            OutboundError::TooLarge(_) => CimdError::TooLarge,
            error => {
                tracing::warn!(%error, "cannot fetch a client metadata document");
                CimdError::Fetch(error)
            }
        })?;
    let document: Document =
        serde_json::from_slice(&body).map_err(|_| CimdError::Invalid("not the expected JSON"))?;
    if document.client_id != client_id {
        return Err(CimdError::Invalid("client_id does not match its URL"));
    }
    if document.redirect_uris.is_empty() || document.redirect_uris.len() > 10 {
        return Err(CimdError::Invalid("redirect_uris must list 1 to 10 URIs"));
    }
    for uri in &document.redirect_uris {
        super::register::check_redirect_uri(uri, 512)
            .map_err(|_| CimdError::Invalid("a redirect URI is not allowed"))?;
    }
    let name = document
        .client_name
        .unwrap_or_else(|| client_id.to_owned())
        .chars()
        .take(100)
        .collect();
    Ok(Client {
        client_id: client_id.to_owned(),
        client_name: name,
        redirect_uris: document.redirect_uris,
    })
}
