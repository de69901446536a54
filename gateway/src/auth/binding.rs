//! Binds a sign-in or connect flow to the browser that started it (login CSRF). Starting a flow
//! sets a cookie holding a random nonce; the flow's sealed `state` carries only the nonce's
//! hash. The callback succeeds only in a browser that sends the cookie whose nonce hashes to the
//! state's value, so a callback URL replayed into another browser (an attacker's half-finished
//! login pushed to a victim) signs no one in and connects nothing.
//!
//! The cookie is named after the sealed state (so flows started in parallel in one browser keep
//! their own cookies), scoped to the callback path, HttpOnly, SameSite=Lax (the provider sends
//! the browser back with a top-level GET, which Lax allows), Secure when the gateway is https,
//! and cleared when the callback uses it.

use axum::http::{HeaderMap, HeaderValue, header};

/// The flows a browser is bound to, each with its cookie prefix and callback path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Sign-in at the identity provider (OIDC or the sandbox IdP), back at `/oauth/callback`.
    Login,
    /// A provider connection from `/connections`, back at `/connections/callback`.
    Connect,
}

/// A new binding: the nonce for the cookie and its hash for the state.
#[derive(Debug, Clone)]
pub struct Binding {
    pub nonce: String,
    pub hash: String,
}

// === impl Flow ===

impl Flow {
    fn prefix(self) -> &'static str {
        match self {
            Self::Login => "manifold_login_",
            Self::Connect => "manifold_connect_",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Login => "/oauth/callback",
            Self::Connect => "/connections/callback",
        }
    }

    /// The cookie name for the flow whose sealed state is `sealed`.
    fn cookie_name(self, sealed: &str) -> String {
        let id = super::s256(sealed);
        format!("{}{}", self.prefix(), id.get(..22).unwrap_or(&id))
    }

    /// `Set-Cookie` holding `nonce` for the flow of `sealed`, living `max_age` seconds.
    pub fn set_cookie(
        self,
        sealed: &str,
        nonce: &str,
        secure: bool,
        max_age: i64,
    ) -> Option<HeaderValue> {
        let value = format!(
            "{}={nonce}; Path={}; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            self.cookie_name(sealed),
            self.path(),
            if secure { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&value).ok()
    }

    /// `Set-Cookie` removing the flow's cookie once used.
    pub fn clear_cookie(self, sealed: &str, secure: bool) -> Option<HeaderValue> {
        self.set_cookie(sealed, "", secure, 0)
    }

    /// The nonce this browser holds for the flow of `sealed`, if any.
    pub fn nonce<'h>(self, headers: &'h HeaderMap, sealed: &str) -> Option<&'h str> {
        let name = self.cookie_name(sealed);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
            .filter(|value| !value.is_empty())
    }
}

// === impl Binding ===

impl Binding {
    pub fn new() -> Self {
        let nonce = super::random_token();
        let hash = super::s256(&nonce);
        Self { nonce, hash }
    }

    /// Whether `nonce` (from the browser) is the one whose hash the state holds.
    pub fn matches(nonce: Option<&str>, hash: &str) -> bool {
        use aws_lc_rs::constant_time::verify_slices_are_equal;
        nonce.is_some_and(|nonce| {
            !hash.is_empty()
                && verify_slices_are_equal(super::s256(nonce).as_bytes(), hash.as_bytes()).is_ok()
        })
    }
}

impl Default for Binding {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(cookie).unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        headers
    }

    #[test]
    fn only_the_starting_browsers_nonce_matches_its_state() {
        for flow in [Flow::Login, Flow::Connect] {
            for i in 0..200 {
                let binding = Binding::new();
                let sealed = format!("v1.state-{i}");
                let set = flow
                    .set_cookie(&sealed, &binding.nonce, i % 2 == 0, 600)
                    .unwrap_or_else(|| HeaderValue::from_static(""));
                let set = set.to_str().unwrap_or_default();
                assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"));
                assert!(set.contains(&format!("Path={}", flow.path())));
                assert_eq!(set.contains("; Secure"), i % 2 == 0);
                let pair = set.split(';').next().unwrap_or_default();
                let browser = headers(&format!("other=1; {pair}"));
                let nonce = flow.nonce(&browser, &sealed);
                assert!(Binding::matches(nonce, &binding.hash));
                // Another browser: no cookie, another flow's cookie, a forged value.
                assert!(!Binding::matches(
                    flow.nonce(&HeaderMap::new(), &sealed),
                    &binding.hash
                ));
                assert!(!Binding::matches(
                    flow.nonce(&browser, &format!("v1.state-{}", i + 1)),
                    &binding.hash
                ));
                let forged = headers(&format!("{}=x", flow.cookie_name(&sealed)));
                assert!(!Binding::matches(
                    flow.nonce(&forged, &sealed),
                    &binding.hash
                ));
                assert!(!Binding::matches(Some(&binding.nonce), ""));
            }
        }
    }
}
