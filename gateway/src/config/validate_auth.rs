//! Checks of the `[auth]` section: each mode has what it needs, and URLs are URLs.

use super::{AuthMode, Config};

/// Reports every `[auth]` problem at `offset` (the section header).
pub(super) fn validate_auth(config: &Config, at: &mut impl FnMut(usize, String), offset: usize) {
    let auth = &config.auth;
    if auth.mode == AuthMode::None {
        return;
    }
    match config.server.public_url.as_deref().map(url::Url::parse) {
        None => at(
            offset,
            "auth.mode needs server.public_url (the issuer and resource URL clients see)".into(),
        ),
        Some(Ok(url)) if matches!(url.scheme(), "http" | "https") && url.query().is_none() => {}
        Some(_) => at(
            offset,
            "server.public_url must be an http(s) URL without query".into(),
        ),
    }
    if auth.access_token_ttl.as_secs() < 10 || auth.access_token_ttl.as_secs() > 24 * 3600 {
        at(
            offset,
            "auth.access_token_ttl must be between 10s and 24h".into(),
        );
    }
    if auth.signing_key_rotation.as_secs() < 60 {
        at(
            offset,
            "auth.signing_key_rotation must be at least 1m".into(),
        );
    }
    if auth.scopes.is_empty() || auth.scopes.iter().any(|s| !is_scope_token(s)) {
        at(
            offset,
            "auth.scopes must list at least one scope of visible ASCII without spaces or quotes"
                .into(),
        );
    }
    match auth.mode {
        AuthMode::Builtin => {
            if let Some(oidc) = &auth.oidc {
                check_url(&oidc.issuer, "auth.oidc.issuer", at, offset);
                if oidc.client_id.is_empty() {
                    at(offset, "auth.oidc.client_id must not be empty".into());
                }
                if !oidc.scopes.iter().any(|s| s == "openid") {
                    at(offset, "auth.oidc.scopes must include `openid`".into());
                }
            } else if !auth.sandbox_idp {
                at(
                    offset,
                    "auth.mode = \"builtin\" needs [auth.oidc] (or sandbox_idp = true for a demo)"
                        .into(),
                );
            }
            if auth.sandbox_idp && !cfg!(feature = "sandbox") {
                at(
                    offset,
                    "auth.sandbox_idp needs a build with the `sandbox` feature".into(),
                );
            }
            for proxy in &auth.registration.trusted_proxies {
                if proxy.parse::<manifold_adapters::outbound::Cidr>().is_err() {
                    at(
                        offset,
                        format!("auth.registration.trusted_proxies: `{proxy}` is not a CIDR"),
                    );
                }
            }
            if auth.registration.per_address_per_minute == 0 {
                at(
                    offset,
                    "auth.registration.per_address_per_minute must be at least 1".into(),
                );
            }
            if auth.registration.max_redirect_uris == 0 {
                at(
                    offset,
                    "auth.registration.max_redirect_uris must be at least 1".into(),
                );
            }
        }
        AuthMode::External => match &auth.external {
            Some(external) => {
                check_url(&external.issuer, "auth.external.issuer", at, offset);
                check_url(&external.jwks_url, "auth.external.jwks_url", at, offset);
            }
            None => at(
                offset,
                "auth.mode = \"external\" needs [auth.external] (issuer, jwks_url)".into(),
            ),
        },
        AuthMode::None => {}
    }
}

fn check_url(value: &str, key: &str, at: &mut impl FnMut(usize, String), offset: usize) {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {}
        _ => at(offset, format!("{key} must be an http(s) URL")),
    }
}

/// RFC 6749 scope-token characters.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}
