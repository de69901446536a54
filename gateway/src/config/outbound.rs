//! `[outbound]`: what the SSRF-guarded client (`manifold_adapters::outbound`) may reach when a
//! request makes the gateway fetch a URL — client ID metadata documents, the identity
//! provider's discovery, keys and token endpoint, an external issuer's JWKS. The defaults are
//! strict (https, public addresses); a deployment whose identity provider sits on a private
//! network names that network in `allowed_cidrs`.

use std::time::Duration;

use manifold_adapters::outbound::{AddressRules, Cidr, CidrError, OutboundSettings};
use schemars::JsonSchema;
use serde::Deserialize;

/// `[outbound]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Also fetch `http://` URLs. DEMO AND TESTS ONLY (their servers are loopback http).
    pub allow_http: bool,
    /// Allow the private-use ranges: loopback, RFC 1918, CGNAT 100.64/10, IPv6 ULA. Link-local
    /// (cloud metadata), multicast, documentation and reserved ranges stay closed.
    pub allow_private: bool,
    /// Networks allowed besides public addresses, e.g. `["10.20.0.0/16"]` for an in-house
    /// identity provider. A bare address is one host.
    pub allowed_cidrs: Vec<String>,
    /// Largest response body read.
    pub max_body_bytes: usize,
    /// Bound for one whole fetch (connect, headers, body).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub connect_timeout: Duration,
    /// Redirect hops followed for discovery and keys (each hop checked like the first).
    /// Client metadata documents never follow redirects.
    pub max_redirects: usize,
    /// Client metadata documents kept in memory at most.
    pub cache_entries: usize,
    /// Longest a cached document is kept, whatever its `Cache-Control` says.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub cache_max_ttl: Duration,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        let settings = OutboundSettings::default();
        Self {
            allow_http: false,
            allow_private: false,
            allowed_cidrs: Vec::new(),
            max_body_bytes: settings.max_body_bytes,
            timeout: settings.timeout,
            connect_timeout: settings.connect_timeout,
            max_redirects: settings.max_redirects,
            cache_entries: settings.cache_entries,
            cache_max_ttl: settings.cache_max_ttl,
        }
    }
}

impl OutboundConfig {
    /// The client's settings; the first CIDR that does not parse is the error.
    pub fn settings(&self) -> Result<OutboundSettings, CidrError> {
        let allowed_cidrs = self
            .allowed_cidrs
            .iter()
            .map(|text| text.parse::<Cidr>())
            .collect::<Result<_, _>>()?;
        let defaults = OutboundSettings::default();
        Ok(OutboundSettings {
            allow_http: self.allow_http,
            rules: AddressRules {
                allow_private: self.allow_private,
                allowed_cidrs,
            },
            max_body_bytes: self.max_body_bytes,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            max_redirects: self.max_redirects,
            cache_entries: self.cache_entries,
            cache_default_ttl: defaults.cache_default_ttl.min(self.cache_max_ttl),
            cache_max_ttl: self.cache_max_ttl,
        })
    }

    /// Every problem of the section, for `validate`.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .allowed_cidrs
            .iter()
            .filter_map(|text| text.parse::<Cidr>().err())
            .map(|error| format!("outbound.allowed_cidrs: {error}"))
            .collect();
        if self.max_body_bytes == 0 {
            problems.push("outbound.max_body_bytes must be at least 1".into());
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            problems.push("outbound.timeout and outbound.connect_timeout must not be 0".into());
        }
        problems
    }
}
