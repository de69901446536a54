//! Who is signed in on the `/connections` pages.
//!
//! TEMPORARY SEAM: the authentication module (gateway/src/auth/, built separately) owns login.
//! Until it merges, [`WebIdentity`] is implemented by [`DevIdentity`]: a sealed cookie set by
//! `/connections/dev-login?user=<name>`, which exists only with `[broker] dev_login = true`
//! (demo and tests). When the auth module lands, implement `WebIdentity` over its browser
//! session, pass that to [`super::web::routes`] instead, and drop `dev_login` from production
//! configs; [`dev_principal`] then goes too (the auth stage puts the `Principal` on MCP requests).

use axum::{extract::Request, middleware::Next, response::Response};
use http::HeaderMap;
use manifold_policy::Principal;
use std::sync::Arc;

use crate::keyring::Keyring;

/// The signed-in user of a browser request.
pub trait WebIdentity: Send + Sync {
    fn current_user(&self, headers: &HeaderMap) -> Option<Principal>;
}

/// The cookie [`DevIdentity`] reads.
pub const DEV_COOKIE: &str = "manifold_dev_user";
const DEV_CONTEXT: &str = "manifold/broker/dev-login";

/// Demo/test sign-in: anyone may claim any name through `dev-login`.
pub struct DevIdentity {
    keyring: Arc<Keyring>,
}

impl DevIdentity {
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self { keyring }
    }

    /// The `Set-Cookie` value signing `user` in.
    pub fn cookie_for(&self, user: &str) -> String {
        let sealed = self.keyring.seal(user.as_bytes(), DEV_CONTEXT);
        format!("{DEV_COOKIE}={sealed}; Path=/; HttpOnly; SameSite=Lax")
    }
}

impl WebIdentity for DevIdentity {
    fn current_user(&self, headers: &HeaderMap) -> Option<Principal> {
        let sealed = cookie(headers, DEV_COOKIE)?;
        let user = String::from_utf8(self.keyring.open(sealed, DEV_CONTEXT).ok()?).ok()?;
        Some(Principal {
            user: Some(user),
            ..Principal::default()
        })
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// DEMO/TESTS ONLY (with `dev_login`): MCP requests carrying the dev cookie act as its user,
/// unless an authentication stage already set a `Principal`.
pub async fn dev_principal(
    axum::extract::State(identity): axum::extract::State<Arc<DevIdentity>>,
    mut request: Request,
    next: Next,
) -> Response {
    let known = request
        .extensions()
        .get::<Principal>()
        .is_some_and(|p| p.user.is_some());
    if !known && let Some(principal) = identity.current_user(request.headers()) {
        request.extensions_mut().insert(principal);
    }
    next.run(request).await
}
