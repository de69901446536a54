//! The browser session of a logged-in user: a cookie holding the user, sealed (encrypted and
//! authenticated) with the keyring, so any replica can read it and nobody can forge it.
//! HttpOnly, SameSite=Lax, Secure when the gateway is served over https.
//!
//! Other pages (e.g. `/connections`) find the user with [`current_user`].

use axum::http::{HeaderMap, HeaderValue, header};
use manifold_policy::Principal;
use serde::{Deserialize, Serialize};

use super::{AuthState, UserInfo, store::now};

pub const COOKIE_NAME: &str = "manifold_session";
/// How long a browser stays signed in.
const LIFETIME_SECS: i64 = 8 * 3600;
const CONTEXT: &str = "web-session";

/// What the cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebSession {
    pub user: UserInfo,
    /// Random per sign-in; binds CSRF tokens of forms to this session.
    pub sid: String,
    pub exp: i64,
}

/// A `Set-Cookie` value signing `user` in, and the new session.
pub(crate) fn sign_in(state: &AuthState, user: UserInfo) -> Option<(HeaderValue, WebSession)> {
    let builtin = state.builtin()?;
    let session = WebSession {
        user,
        sid: super::random_token(),
        exp: now() + LIFETIME_SECS,
    };
    let json = serde_json::to_vec(&session).ok()?;
    let sealed = builtin.keyring.seal(&json, CONTEXT);
    let secure = if builtin.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{COOKIE_NAME}={sealed}; Path=/; HttpOnly; SameSite=Lax; Max-Age={LIFETIME_SECS}{secure}"
    );
    Some((HeaderValue::from_str(&value).ok()?, session))
}

/// The session in the request's cookie, when present, authentic and not expired.
pub(crate) fn session(state: &AuthState, headers: &HeaderMap) -> Option<WebSession> {
    let builtin = state.builtin()?;
    let sealed = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)?;
    let json = builtin.keyring.open(sealed, CONTEXT).ok()?;
    let session: WebSession = serde_json::from_slice(&json).ok()?;
    (session.exp > now()).then_some(session)
}

/// The user signed in on this browser (mode `builtin`), as a [`Principal`] without a client.
///
/// For gateway pages outside `/mcp`, such as `/connections`: call it with the request headers;
/// `None` means "not signed in" — send the browser to `/authorize`-style login or show 401.
/// Sign-in happens through the upstream identity provider during an OAuth authorization.
pub async fn current_user(state: &AuthState, headers: &HeaderMap) -> Option<Principal> {
    signed_in_user(state, headers)
}

/// [`current_user`] without the `async`: reading the session cookie does no I/O.
pub fn signed_in_user(state: &AuthState, headers: &HeaderMap) -> Option<Principal> {
    session(state, headers).map(|session| session.user.principal(None))
}
