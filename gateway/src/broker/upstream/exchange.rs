//! Token exchange: the user's sign-in token traded at the upstream's authorization server for a
//! token to the upstream, so users connect nothing by hand. Two grants: RFC 8693
//! (`urn:ietf:params:oauth:grant-type:token-exchange`) and Microsoft Entra's on-behalf-of
//! (`urn:ietf:params:oauth:grant-type:jwt-bearer` with `requested_token_use=on_behalf_of`).
//! The exchange is a confidential client's request (a pre-registered id and secret) through
//! the SSRF-guarded client; the sign-in token goes to the authorization server only, never to
//! the upstream itself.
//!
//! [`Exchanger`] is the broker's side: one per instance with `auth = "token_exchange"`, which
//! discovers the authorization server on first use (as `auth = "oauth"` does), trades the
//! caller's sign-in token ([`super::sign_ins`]) and keeps the result per user until it nears
//! its expiry, the sign-in token changes, or the upstream refuses it (one renewal).

use std::{sync::Arc, time::Duration};

use manifold_adapters::{
    Secret,
    outbound::{Fetch, Outbound, OutboundError},
};
use serde::Deserialize;
use url::Url;

use super::discovery::ServerMetadata;

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const TIMEOUT: Duration = Duration::from_secs(15);
/// A token answer is small; anything larger is not one.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Which grant the authorization server takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// RFC 8693, optionally for a named `audience`.
    Rfc8693 { audience: Option<String> },
    /// Entra on-behalf-of: the sign-in token as the `assertion`.
    EntraObo,
}

/// Why no upstream token came back. Texts never carry tokens or the answer's body.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the authorization server does not offer the {0} grant")]
    Unsupported(&'static str),
    #[error("the token endpoint could not be reached: {0}")]
    Fetch(#[source] OutboundError),
    #[error("the authorization server refused the exchange: {0}")]
    Refused(String),
    #[error("the authorization server's answer could not be read")]
    BadResponse,
}

/// One upstream's exchange: where, as which client, for what.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub grant: Grant,
    pub scopes: Vec<String>,
    /// RFC 8707 `resource`: the upstream's URL (RFC 8693 only; Entra names it by scope).
    pub resource: Option<String>,
}

/// The upstream token an exchange gave.
#[derive(Debug, Clone)]
pub struct Exchanged {
    pub access: Secret,
    /// Unix seconds.
    pub expires_at: Option<i64>,
}

// === impl Grant ===

impl Grant {
    fn grant_type(&self) -> &'static str {
        match self {
            Self::Rfc8693 { .. } => TOKEN_EXCHANGE,
            Self::EntraObo => JWT_BEARER,
        }
    }

    /// Whether `server` says it takes this grant. A server that lists no grant types is
    /// believed (RFC 8414 makes the list optional); the exchange itself then tells.
    pub fn offered_by(&self, server: &ServerMetadata) -> Result<(), ExchangeError> {
        let listed = &server.grant_types_supported;
        if listed.is_empty() || listed.iter().any(|grant| grant == self.grant_type()) {
            Ok(())
        } else {
            Err(ExchangeError::Unsupported(self.grant_type()))
        }
    }
}

// === impl Exchange ===

impl Exchange {
    /// Trades `subject` (the user's sign-in token) for an upstream token.
    pub async fn exchange(
        &self,
        outbound: &Outbound,
        subject: &Secret,
    ) -> Result<Exchanged, ExchangeError> {
        let form = self.form(subject);
        let fetch = Fetch {
            max_bytes: Some(MAX_ANSWER_BYTES),
            timeout: Some(TIMEOUT),
            follow_redirects: false,
        };
        let answer = outbound
            .post_form(self.token_url.as_str(), form, fetch)
            .await
            .map_err(ExchangeError::Fetch)?;
        #[derive(Deserialize)]
        struct Answer {
            access_token: Option<String>,
            expires_in: Option<i64>,
            error: Option<String>,
        }
        let parsed: Answer = answer.json().map_err(|_| ExchangeError::BadResponse)?;
        if !answer.status.is_success() {
            // Only the registered error code: descriptions may quote the assertion.
            let code = parsed
                .error
                .filter(|code| code.len() <= 64 && code.bytes().all(|b| b.is_ascii_graphic()))
                .unwrap_or_else(|| format!("HTTP {}", answer.status.as_u16()));
            return Err(ExchangeError::Refused(code));
        }
        let access = parsed
            .access_token
            .filter(|token| !token.is_empty())
            .ok_or(ExchangeError::BadResponse)?;
        Ok(Exchanged {
            access: Secret::new(access),
            expires_at: parsed
                .expires_in
                .map(|ttl| crate::broker::now().saturating_add(ttl)),
        })
    }

    /// The token request's form body.
    fn form(&self, subject: &Secret) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", self.grant.grant_type());
        match &self.grant {
            Grant::Rfc8693 { audience } => {
                form.append_pair("subject_token", subject.expose())
                    .append_pair("subject_token_type", ACCESS_TOKEN_TYPE)
                    .append_pair("requested_token_type", ACCESS_TOKEN_TYPE);
                if let Some(audience) = audience {
                    form.append_pair("audience", audience);
                }
                if let Some(resource) = &self.resource {
                    form.append_pair("resource", resource);
                }
            }
            Grant::EntraObo => {
                form.append_pair("assertion", subject.expose())
                    .append_pair("requested_token_use", "on_behalf_of");
            }
        }
        if !self.scopes.is_empty() {
            form.append_pair("scope", &self.scopes.join(" "));
        }
        form.append_pair("client_id", &self.client_id);
        if let Some(secret) = &self.client_secret {
            form.append_pair("client_secret", secret.expose());
        }
        form.finish()
    }
}

/// Renew an exchanged token this long before it expires.
const SKEW: i64 = 60;

/// The broker's exchange for one instance.
#[derive(Debug)]
pub struct Exchanger {
    pub display_name: String,
    url: Url,
    outbound: Arc<Outbound>,
    client_id: String,
    client_secret: Option<Secret>,
    grant: Grant,
    scopes: Vec<String>,
    resolved: tokio::sync::OnceCell<Exchange>,
    /// User → (the sign-in token traded, what it gave).
    issued: dashmap::DashMap<String, (Secret, Exchanged)>,
}

// === impl Exchanger ===

impl Exchanger {
    pub fn new(
        display_name: String,
        url: Url,
        outbound: Arc<Outbound>,
        client: (String, Option<Secret>),
        grant: Grant,
        scopes: Vec<String>,
    ) -> Self {
        Self {
            display_name,
            url,
            outbound,
            client_id: client.0,
            client_secret: client.1,
            grant,
            scopes,
            resolved: tokio::sync::OnceCell::new(),
            issued: dashmap::DashMap::new(),
        }
    }

    /// The upstream token for `user`, whose sign-in token is `subject`. `rejected` is a token
    /// the upstream just refused: traded again rather than served from memory.
    pub async fn token(
        &self,
        user: &str,
        subject: &Secret,
        rejected: Option<&Secret>,
    ) -> Result<Secret, String> {
        if let Some(entry) = self.issued.get(user) {
            let (traded, exchanged) = entry.value();
            let fresh = exchanged
                .expires_at
                .is_none_or(|at| at - SKEW > crate::broker::now());
            let refused = rejected.is_some_and(|r| r.expose() == exchanged.access.expose());
            if traded.expose() == subject.expose() && fresh && !refused {
                return Ok(exchanged.access.clone());
            }
        }
        let exchange = self.resolve().await?;
        let exchanged = exchange
            .exchange(&self.outbound, subject)
            .await
            .map_err(|error| error.to_string())?;
        let access = exchanged.access.clone();
        self.issued
            .insert(user.to_owned(), (subject.clone(), exchanged));
        Ok(access)
    }

    /// The token endpoint, discovered on first use (retried on the next while it fails).
    async fn resolve(&self) -> Result<&Exchange, String> {
        self.resolved
            .get_or_try_init(|| async {
                let found = super::discovery::discover(&self.outbound, &self.url)
                    .await
                    .map_err(|error| error.to_string())?;
                self.grant
                    .offered_by(&found.server)
                    .map_err(|error| error.to_string())?;
                let token = found
                    .server
                    .token_endpoint
                    .as_deref()
                    .and_then(|url| Url::parse(url).ok())
                    .ok_or("the authorization server names no token endpoint")?;
                self.outbound
                    .check(&token)
                    .map_err(|error| format!("the token endpoint is refused: {error}"))?;
                Ok(Exchange {
                    token_url: token,
                    client_id: self.client_id.clone(),
                    client_secret: self.client_secret.clone(),
                    grant: self.grant.clone(),
                    scopes: self.scopes.clone(),
                    resource: Some(self.url.to_string()),
                })
            })
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn exchange(grant: Grant) -> Exchange {
        Exchange {
            token_url: Url::parse("https://as.example/token").unwrap(),
            client_id: "gw".into(),
            client_secret: Some(Secret::new("s3".to_owned())),
            grant,
            scopes: vec!["api://crm/.default".into()],
            resource: Some("https://crm.example/mcp".into()),
        }
    }

    fn fields(form: &str) -> HashMap<String, String> {
        url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn rfc8693_sends_the_subject_token_audience_and_resource() {
        let grant = Grant::Rfc8693 {
            audience: Some("crm".into()),
        };
        let form = fields(&exchange(grant).form(&Secret::new("sign-in".to_owned())));
        assert_eq!(form["grant_type"], TOKEN_EXCHANGE);
        assert_eq!(form["subject_token"], "sign-in");
        assert_eq!(form["subject_token_type"], ACCESS_TOKEN_TYPE);
        assert_eq!(form["audience"], "crm");
        assert_eq!(form["resource"], "https://crm.example/mcp");
        assert_eq!(form["client_secret"], "s3");
    }

    #[test]
    fn entra_on_behalf_of_sends_the_assertion_and_scope() {
        let form = fields(&exchange(Grant::EntraObo).form(&Secret::new("sign-in".to_owned())));
        assert_eq!(form["grant_type"], JWT_BEARER);
        assert_eq!(form["assertion"], "sign-in");
        assert_eq!(form["requested_token_use"], "on_behalf_of");
        assert_eq!(form["scope"], "api://crm/.default");
        assert!(!form.contains_key("subject_token"));
    }
}
