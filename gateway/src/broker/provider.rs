//! One provider's OAuth app as the broker uses it: the authorize URL (PKCE S256), the code
//! exchange, refresh and revocation, through the `oauth2` crate over a small reqwest 0.13 adapter
//! (the crate's own reqwest feature would pull a second reqwest and ring).
//!
//! A native provider's endpoints and client id are known from the config; an upstream MCP
//! server's are discovered and its client registered at run time ([`AppSource`],
//! `broker/upstream/`), on first use and retried on the next while that fails.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use manifold_adapters::{OAuthSpec, Secret};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardTokenResponse, TokenResponse, TokenUrl,
    basic::{
        BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
        BasicTokenIntrospectionResponse, BasicTokenType,
    },
};
use serde::{Deserialize, Serialize};
use url::Url;

/// A provider request that failed. Messages never carry tokens or response bodies.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The refresh token (or code) is no longer valid: the user must connect again.
    #[error("the provider refused the grant (invalid_grant)")]
    InvalidGrant,
    #[error("the provider refused the request: {0}")]
    Refused(String),
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the provider's token answer could not be read")]
    BadResponse,
    /// The provider's endpoints could not be discovered or the gateway could not register.
    #[error("the provider is not set up yet: {0}")]
    Setup(String),
}

/// Fields some providers add to the token answer that name the account (Dropbox
/// `account_id`, Microsoft `id_token`, …); used only for the label on `/connections`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for AccountFields {}

type Answer = StandardTokenResponse<AccountFields, BasicTokenType>;
type Client = oauth2::Client<
    BasicErrorResponse,
    Answer,
    BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Tokens from one code exchange or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: Secret,
    pub refresh: Option<Secret>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// What the provider says it granted, when it says.
    pub scopes: Option<Vec<String>>,
    pub account: Option<String>,
}

/// One provider connection (`linear`, `microsoft`, …) with the gateway's OAuth app for it.
#[derive(Debug)]
pub struct Provider {
    pub connection: String,
    pub display_name: String,
    pub spec: OAuthSpec,
    /// Scopes asked for on every connect besides the tools' own.
    pub base_scopes: Vec<String>,
    /// Sandbox instances talk to the emulator, which needs no registered client.
    pub sandbox: bool,
    /// RFC 8707: the resource the tokens are for, sent on authorize and token requests (an
    /// upstream MCP server's URL).
    resource: Option<String>,
    redirect: Url,
    /// The app once its endpoints and client id are known.
    app: tokio::sync::OnceCell<App>,
    /// Where a discovered provider's app comes from.
    source: Option<Arc<dyn AppSource>>,
    http: reqwest::Client,
}

/// The gateway's OAuth client at one provider.
#[derive(Debug)]
struct App {
    client: Client,
    revoke_url: Option<Url>,
    client_id: String,
    client_secret: Option<Secret>,
}

/// The endpoints and client of a provider found at run time (an upstream MCP server's
/// authorization server, discovered and registered with).
#[derive(Debug)]
pub struct Registered {
    pub endpoints: Endpoints,
    pub client_id: String,
    pub client_secret: Option<Secret>,
}

/// Finds a provider's endpoints and registers the gateway's client there. Errors are shown to
/// users and operators: no secrets.
#[async_trait::async_trait]
pub trait AppSource: Send + Sync + std::fmt::Debug {
    async fn resolve(&self) -> Result<Registered, String>;
}

/// Where a provider's endpoints are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    pub revoke: Option<Url>,
}

// === impl Provider ===

impl Provider {
    pub fn new(
        spec: OAuthSpec,
        endpoints: Endpoints,
        client_id: String,
        client_secret: Option<Secret>,
        redirect: Url,
        sandbox: bool,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            // The token endpoint must not redirect (a redirect could leak the code).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| e.to_string())?;
        let app = App::new(
            Registered {
                endpoints,
                client_id,
                client_secret,
            },
            &redirect,
        );
        Ok(Self {
            connection: spec.connection.to_owned(),
            display_name: spec.display_name.to_owned(),
            base_scopes: spec.base_scopes.iter().map(|s| (*s).to_owned()).collect(),
            spec,
            sandbox,
            resource: None,
            redirect,
            app: tokio::sync::OnceCell::new_with(Some(app)),
            source: None,
            http,
        })
    }

    /// A provider whose endpoints and client come from `source` when first needed (an
    /// upstream MCP server's authorization server). `http` makes its token requests: the
    /// SSRF-guarded client, as the endpoints were named by the upstream.
    pub fn discovered(
        discovered: Discovered,
        source: Arc<dyn AppSource>,
        redirect: Url,
        http: reqwest::Client,
    ) -> Self {
        Self {
            connection: discovered.connection,
            display_name: discovered.display_name,
            spec: discovered.spec,
            base_scopes: discovered.scopes,
            sandbox: false,
            resource: Some(discovered.resource),
            redirect,
            app: tokio::sync::OnceCell::new(),
            source: Some(source),
            http,
        }
    }

    /// The endpoints are discovered at run time (an upstream MCP server's).
    pub fn is_discovered(&self) -> bool {
        self.source.is_some()
    }

    /// The app, resolved from its source on first use; a failure is retried on the next.
    pub async fn ready(&self) -> Result<(), ProviderError> {
        self.app().await.map(drop)
    }

    async fn app(&self) -> Result<&App, ProviderError> {
        self.app
            .get_or_try_init(|| async {
                let source = self
                    .source
                    .as_ref()
                    .ok_or_else(|| ProviderError::Unreachable("no endpoints".into()))?;
                let registered = source.resolve().await.map_err(ProviderError::Setup)?;
                Ok(App::new(registered, &self.redirect))
            })
            .await
    }

    /// A fresh PKCE verifier (32 random bytes, 43 characters).
    pub fn new_verifier() -> String {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    }

    /// The provider authorize URL for `scopes`, with `state` and the S256 challenge of
    /// `verifier` (which the callback needs for the exchange).
    pub async fn authorize(
        &self,
        scopes: &[String],
        state: &str,
        login_hint: Option<&str>,
        verifier: &str,
    ) -> Result<Url, ProviderError> {
        let app = self.app().await?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            verifier.to_owned(),
        ));
        let state = state.to_owned();
        let mut request = app
            .client
            .authorize_url(move || CsrfToken::new(state))
            .set_pkce_challenge(challenge);
        // Some providers want one `scope` joined with a separator other than a space.
        if !scopes.is_empty() {
            request = request.add_scope(Scope::new(scopes.join(self.spec.scope_separator)));
        }
        for (key, value) in self.spec.extra_authorize_params {
            request = request.add_extra_param(*key, *value);
        }
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint);
        }
        if let Some(resource) = &self.resource {
            request = request.add_extra_param("resource", resource);
        }
        Ok(request.url().0)
    }

    // The futures are boxed as `Send` here: oauth2's closure-based HTTP hook otherwise fails a
    // higher-ranked `Send` check inside `#[async_trait]` methods and axum handlers.
    pub fn exchange<'a>(
        &'a self,
        code: &'a str,
        verifier: &'a str,
    ) -> BoxFuture<'a, Result<Tokens, ProviderError>> {
        Box::pin(async move {
            let app = self.app().await?;
            let http = Hook(&self.http);
            let mut request = app
                .client
                .exchange_code(AuthorizationCode::new(code.to_owned()))
                .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
            if let Some(resource) = &self.resource {
                request = request.add_extra_param("resource", resource);
            }
            let answer = request.request_async(&http).await.map_err(classify)?;
            Ok(self.tokens(&answer))
        })
    }

    pub fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<Tokens, ProviderError>> {
        Box::pin(async move {
            let app = self.app().await?;
            let http = Hook(&self.http);
            let token = RefreshToken::new(refresh_token.expose().to_owned());
            let mut request = app.client.exchange_refresh_token(&token);
            if let Some(resource) = &self.resource {
                request = request.add_extra_param("resource", resource);
            }
            let answer = request.request_async(&http).await.map_err(classify)?;
            Ok(self.tokens(&answer))
        })
    }

    /// RFC 7009 revocation of `token`, when the provider has a revoke endpoint.
    pub async fn revoke(&self, token: &Secret, hint: &str) -> Result<(), ProviderError> {
        let app = self.app().await?;
        let Some(url) = &app.revoke_url else {
            return Ok(());
        };
        let mut form = vec![
            ("token", token.expose()),
            ("token_type_hint", hint),
            ("client_id", app.client_id.as_str()),
        ];
        if let Some(secret) = &app.client_secret {
            form.push(("client_secret", secret.expose()));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(without_url(&e)))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(ProviderError::Refused(format!(
                "revocation answered HTTP {}",
                response.status().as_u16()
            )))
        }
    }

    fn tokens(&self, answer: &Answer) -> Tokens {
        let expires_at = answer.expires_in().map(|ttl| {
            crate::broker::now().saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
        });
        let scopes = answer.scopes().map(|scopes| {
            scopes
                .iter()
                .flat_map(|s| split_scopes(s, self.spec.scope_separator))
                .collect()
        });
        let extra = answer.extra_fields();
        let account = extra
            .email
            .clone()
            .or_else(|| extra.id_token.as_deref().and_then(id_token_name))
            .or_else(|| extra.account_id.clone());
        Tokens {
            access: Secret::new(answer.access_token().secret().clone()),
            refresh: answer
                .refresh_token()
                .map(|r| Secret::new(r.secret().clone())),
            expires_at,
            scopes,
            account,
        }
    }
}

/// What the gateway knows of a discovered provider before its endpoints are found.
#[derive(Debug)]
pub struct Discovered {
    pub connection: String,
    pub display_name: String,
    pub spec: OAuthSpec,
    pub scopes: Vec<String>,
    /// The protected resource (RFC 8707 `resource`).
    pub resource: String,
}

// === impl App ===

impl App {
    fn new(registered: Registered, redirect: &Url) -> Self {
        let Registered {
            endpoints,
            client_id,
            client_secret,
        } = registered;
        let mut client = oauth2::Client::new(ClientId::new(client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(endpoints.authorize))
            .set_token_uri(TokenUrl::from_url(endpoints.token))
            .set_redirect_uri(RedirectUrl::from_url(redirect.clone()))
            // Credentials in the body work with every provider we target; Basic does not.
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        Self {
            client,
            revoke_url: endpoints.revoke,
            client_id,
            client_secret,
        }
    }
}

/// Scopes as the provider wrote them, split on its separator and on spaces.
pub fn split_scopes(text: &str, separator: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || separator.contains(c))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The display name in an OpenID id_token's claims. The token is not verified: it came straight
/// from the token endpoint over TLS and is used only as a label.
fn id_token_name(token: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    ["preferred_username", "email", "name"]
        .iter()
        .find_map(|key| claims.get(key)?.as_str().map(str::to_owned))
}

fn classify(error: RequestTokenError<HttpError, BasicErrorResponse>) -> ProviderError {
    match error {
        RequestTokenError::ServerResponse(answer) => match answer.error() {
            BasicErrorResponseType::InvalidGrant => ProviderError::InvalidGrant,
            other => ProviderError::Refused(match answer.error_description() {
                Some(description) => format!("{other}: {description}"),
                None => other.to_string(),
            }),
        },
        RequestTokenError::Request(error) => ProviderError::Unreachable(error.to_string()),
        // The body may hold tokens: never echo it.
        RequestTokenError::Parse(..) => ProviderError::BadResponse,
        RequestTokenError::Other(message) => ProviderError::Refused(message),
    }
}

/// A transport failure, without the URL (which could carry a code).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// What went wrong, without reqwest's message (which names the URL).
fn without_url(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// The `oauth2` crate's HTTP hook over reqwest 0.13.
struct Hook<'h>(&'h reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Hook<'_> {
    type Error = HttpError;
    type Future = BoxFuture<'c, Result<oauth2::HttpResponse, HttpError>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send(self.0, request))
    }
}

async fn send(
    client: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(without_url(&e)))?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| HttpError(without_url(&e)))?;
    builder
        .body(body.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}
