//! Client ID Metadata Documents: a `client_id` that is an https URL names a JSON document
//! listing the client's name and redirect URIs. Fetched on use, size- and time-limited, without
//! following redirects.

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;

use super::store::Client;

/// Largest document accepted.
const MAX_BYTES: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CimdError {
    #[error("client_id URL is not allowed (https only)")]
    NotAllowed,
    #[error("client metadata document could not be fetched")]
    Fetch,
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

/// Fetches and checks the document behind `client_id`.
pub async fn fetch(
    http: &reqwest::Client,
    client_id: &str,
    allow_loopback_http: bool,
) -> Result<Client, CimdError> {
    let url = url::Url::parse(client_id).map_err(|_| CimdError::NotAllowed)?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    let allowed = match url.scheme() {
        "https" => url.path() != "/" && url.fragment().is_none(),
        "http" => allow_loopback_http && loopback,
        _ => false,
    };
    if !allowed {
        return Err(CimdError::NotAllowed);
    }
    let response = http
        .get(url)
        .timeout(TIMEOUT)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|_| CimdError::Fetch)?;
    if !response.status().is_success() {
        return Err(CimdError::Fetch);
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BYTES as u64)
    {
        return Err(CimdError::TooLarge);
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| CimdError::Fetch)?;
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(CimdError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
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
