//! User login at the upstream OpenID Connect provider: discovery, authorization code with PKCE
//! and nonce, the id_token checked against the provider's JWKS (signature, iss, aud, exp, nonce),
//! email and groups from configurable claims. The pending step travels in `state`, sealed with
//! the keyring, so any replica can finish the login.

use std::{collections::HashMap, sync::Arc, time::Instant};

use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use manifold_adapters::{
    Secret,
    outbound::{Fetch, Outbound},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::RwLock;

use super::{
    AuthState, UserInfo,
    authorize::{Pending, continue_signed_in, error_page, see_other},
    binding::{Binding, Flow},
    cookie, return_to,
    store::now,
};
use crate::config::AuthConfig;

/// How long a login at the provider may take.
const LOGIN_SECS: i64 = 600;
const STATE_CONTEXT: &str = "oidc-login";

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the identity provider's discovery document could not be read")]
    Discovery,
    #[error("the identity provider's token endpoint refused the code")]
    TokenExchange,
    #[error("the identity provider's keys could not be read")]
    Jwks,
    #[error("the id_token is not valid: {0}")]
    IdToken(String),
}

/// Where to go after login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Next {
    Authorize(Pending),
    /// A path on this gateway (e.g. `/connections`).
    ReturnTo(String),
}

#[derive(Serialize, Deserialize)]
struct LoginState {
    next: Next,
    nonce: String,
    verifier: String,
    /// Hash of the nonce in the starting browser's cookie ([`binding`]).
    binding: String,
    exp: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// The configured identity provider, with its discovery document and keys cached.
pub struct Upstream {
    issuer: String,
    client_id: String,
    client_secret: Option<Secret>,
    scopes: Vec<String>,
    email_claim: String,
    groups_claim: String,
    discovery: RwLock<Option<Discovery>>,
    jwks: RwLock<Option<(JwkSet, Instant)>>,
}

impl Upstream {
    /// From `[auth.oidc]`, or the sandbox provider at `<issuer>/sandbox-idp`.
    pub fn from_config(auth: &AuthConfig, gateway: &str) -> Option<Self> {
        let (issuer, client_id, client_secret, scopes, email, groups) = match &auth.oidc {
            Some(oidc) => (
                oidc.issuer.trim_end_matches('/').to_owned(),
                oidc.client_id.clone(),
                oidc.client_secret.clone(),
                oidc.scopes.clone(),
                oidc.email_claim.clone(),
                oidc.groups_claim.clone(),
            ),
            None if auth.sandbox_idp => (
                format!("{gateway}/sandbox-idp"),
                "manifold".to_owned(),
                None,
                vec!["openid".into(), "email".into()],
                "email".into(),
                "groups".into(),
            ),
            None => return None,
        };
        Some(Self {
            issuer,
            client_id,
            client_secret,
            scopes,
            email_claim: email,
            groups_claim: groups,
            discovery: RwLock::new(None),
            jwks: RwLock::new(None),
        })
    }

    async fn discovery(&self, outbound: &Outbound) -> Result<Discovery, LoginError> {
        if let Some(found) = self.discovery.read().await.as_ref() {
            return Ok(found.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let found: Discovery = fetch_json(outbound, &url)
            .await
            .ok_or(LoginError::Discovery)?;
        if found.issuer.trim_end_matches('/') != self.issuer {
            return Err(LoginError::Discovery);
        }
        *self.discovery.write().await = Some(found.clone());
        Ok(found)
    }

    /// The provider's keys; fetched again when a token names a key not seen yet (at most every
    /// 30 seconds).
    async fn key(
        &self,
        outbound: &Outbound,
        jwks_uri: &str,
        kid: Option<&str>,
    ) -> Result<DecodingKey, LoginError> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None => set.keys.first().cloned(),
        };
        if let Some((set, at)) = self.jwks.read().await.as_ref() {
            match find(set) {
                Some(jwk) => return DecodingKey::from_jwk(&jwk).map_err(|_| LoginError::Jwks),
                None if at.elapsed().as_secs() < 30 => {
                    return Err(LoginError::IdToken("unknown signing key".into()));
                }
                None => {}
            }
        }
        let set: JwkSet = fetch_json(outbound, jwks_uri)
            .await
            .ok_or(LoginError::Jwks)?;
        let jwk = find(&set).ok_or(LoginError::IdToken("unknown signing key".into()))?;
        *self.jwks.write().await = Some((set, Instant::now()));
        DecodingKey::from_jwk(&jwk).map_err(|_| LoginError::Jwks)
    }

    async fn finish(
        &self,
        state: &AuthState,
        code: &str,
        login: &LoginState,
    ) -> Result<UserInfo, LoginError> {
        let discovery = self.discovery(&state.outbound).await?;
        let redirect_uri = format!("{}/oauth/callback", state.issuer);
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("client_id", &self.client_id),
            ("code_verifier", &login.verifier),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose()));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        // The token endpoint is named by the discovery document: the guard checks it too.
        let response = state
            .outbound
            .post_form(&discovery.token_endpoint, body, Fetch::default())
            .await
            .map_err(|error| {
                tracing::warn!(%error, "the identity provider's token endpoint failed");
                LoginError::TokenExchange
            })?;
        if !response.status.is_success() {
            return Err(LoginError::TokenExchange);
        }
        let body: Value = response.json().map_err(|_| LoginError::TokenExchange)?;
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| LoginError::IdToken("missing".into()))?;
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|_| LoginError::IdToken("malformed".into()))?;
        // Only asymmetric algorithms: a provider's public key must never verify an HMAC.
        if !matches!(
            header.alg,
            jsonwebtoken::Algorithm::RS256
                | jsonwebtoken::Algorithm::RS384
                | jsonwebtoken::Algorithm::RS512
                | jsonwebtoken::Algorithm::PS256
                | jsonwebtoken::Algorithm::ES256
                | jsonwebtoken::Algorithm::ES384
                | jsonwebtoken::Algorithm::EdDSA
        ) {
            return Err(LoginError::IdToken("unsupported algorithm".into()));
        }
        let key = self
            .key(&state.outbound, &discovery.jwks_uri, header.kid.as_deref())
            .await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = 30;
        validation.set_issuer(&[discovery.issuer.as_str()]);
        validation.set_audience(&[self.client_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<HashMap<String, Value>>(id_token, &key, &validation)
            .map_err(|e| LoginError::IdToken(format!("{:?}", e.kind())))?
            .claims;
        if claims.get("nonce").and_then(Value::as_str) != Some(login.nonce.as_str()) {
            return Err(LoginError::IdToken("nonce mismatch".into()));
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| LoginError::IdToken("no sub".into()))?
            .to_owned();
        let email = claims
            .get(&self.email_claim)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let groups = match claims.get(&self.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => vec![],
        };
        // Only the provider's own word makes an address verified (absent: not verified).
        let vouched = match claims.get("email_verified") {
            Some(Value::Bool(verified)) => *verified,
            // Some providers send it as a string.
            Some(Value::String(verified)) => verified == "true",
            _ => false,
        };
        let email_verified = email.is_some() && vouched;
        Ok(UserInfo {
            sub,
            email,
            email_verified,
            groups,
        })
    }
}

/// A JSON document through the guarded client (redirects followed, each hop checked);
/// `None` (logged) when it cannot be read.
async fn fetch_json<T: serde::de::DeserializeOwned>(outbound: &Outbound, url: &str) -> Option<T> {
    let follow = Fetch {
        follow_redirects: true,
        ..Fetch::default()
    };
    match outbound.get(url, "application/json", follow).await {
        Ok(fetched) if fetched.status.is_success() => fetched.json().ok(),
        Ok(fetched) => {
            tracing::warn!(status = %fetched.status, "the identity provider answered an error");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "cannot fetch from the identity provider");
            None
        }
    }
}

/// Sends the browser to the provider's login, remembering `next` in the sealed `state`.
pub(crate) async fn begin(state: &AuthState, next: Next) -> Response {
    let Some(builtin) = state.builtin() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let upstream = &builtin.upstream;
    let discovery = match upstream.discovery(&state.outbound).await {
        Ok(discovery) => discovery,
        Err(error) => {
            tracing::error!(%error, issuer = %upstream.issuer, "cannot start a login");
            return error_page(StatusCode::BAD_GATEWAY, &error.to_string());
        }
    };
    let browser = Binding::new();
    let login = LoginState {
        next,
        nonce: super::random_token(),
        verifier: super::random_token(),
        binding: browser.hash.clone(),
        exp: now() + LOGIN_SECS,
    };
    let Ok(json) = serde_json::to_vec(&login) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server error");
    };
    let sealed = builtin.keyring.seal(&json, STATE_CONTEXT);
    let Ok(mut url) = url::Url::parse(&discovery.authorization_endpoint) else {
        return error_page(
            StatusCode::BAD_GATEWAY,
            "the identity provider's URL is invalid",
        );
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &upstream.client_id)
        .append_pair("redirect_uri", &format!("{}/oauth/callback", state.issuer))
        .append_pair("scope", &upstream.scopes.join(" "))
        .append_pair("state", &sealed)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &super::s256(&login.verifier))
        .append_pair("code_challenge_method", "S256");
    let Some(cookie) =
        Flow::Login.set_cookie(&sealed, &browser.nonce, builtin.secure_cookies, LOGIN_SECS)
    else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server error");
    };
    let mut response = see_other(url.as_str());
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /oauth/callback`: the provider sends the browser back here.
pub async fn callback(
    State(state): State<Arc<AuthState>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(builtin) = state.builtin() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let login = query
        .state
        .as_deref()
        .and_then(|sealed| builtin.keyring.open(sealed, STATE_CONTEXT).ok())
        .and_then(|json| serde_json::from_slice::<LoginState>(&json).ok())
        .filter(|login| login.exp > now());
    let Some(login) = login else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "the login state is invalid or expired",
        );
    };
    // Login CSRF: only the browser that started this login may finish it.
    let sealed = query.state.as_deref().unwrap_or_default();
    if !Binding::matches(Flow::Login.nonce(&headers, sealed), &login.binding) {
        tracing::warn!("a login callback arrived in a browser that did not start it");
        return error_page(
            StatusCode::FORBIDDEN,
            "this sign-in was started in another browser (or its cookie expired); start again",
        );
    }
    let clear = Flow::Login.clear_cookie(sealed, builtin.secure_cookies);
    if let Some(error) = query.error {
        let message = format!("the identity provider refused the login ({error})");
        return match login.next {
            Next::Authorize(pending) => super::authorize::redirect_error(
                &state,
                &pending.redirect_uri,
                pending.state.as_deref(),
                "access_denied",
                &message,
            ),
            Next::ReturnTo(_) => error_page(StatusCode::FORBIDDEN, &message),
        };
    }
    let Some(code) = query.code else {
        return error_page(StatusCode::BAD_REQUEST, "the provider sent no code");
    };
    let user = match builtin.upstream.finish(&state, &code, &login).await {
        Ok(user) => user,
        Err(error) => {
            tracing::warn!(%error, "upstream login failed");
            return error_page(StatusCode::FORBIDDEN, &error.to_string());
        }
    };
    tracing::info!(sub = %user.sub, "user signed in");
    let Some((set_cookie, session)) = cookie::sign_in(&state, user) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server error");
    };
    let mut response = match login.next {
        Next::Authorize(pending) => {
            continue_signed_in(&state, &session.user, &session.sid, pending).await
        }
        // Checked again on the way out: the state is sealed, but the rule is one function.
        Next::ReturnTo(path) => see_other(&return_to::or_default(Some(&path))),
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie);
    if let Some(clear) = clear {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

/// `GET /login?return_to=/path`: signs the browser in for the gateway's own pages.
pub async fn login_page(
    State(state): State<Arc<AuthState>>,
    Query(query): Query<LoginQuery>,
) -> Response {
    // Only same-origin paths, so the login cannot be used as an open redirect.
    let path = return_to::or_default(query.return_to.as_deref());
    begin(&state, Next::ReturnTo(path)).await
}
