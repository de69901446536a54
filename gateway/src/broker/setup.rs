//! Which instances use per-user OAuth and with which provider app, from the config: every
//! enabled instance whose kind has an [`OAuthSpec`] and that has no shared `token` credential.

use std::sync::Arc;

use manifold_adapters::{OAuthSpec, Registry};
use url::Url;

use super::provider::{Endpoints, Provider};
use crate::config::Config;

/// The OAuth client id the emulators are given (they accept any).
const SANDBOX_CLIENT_ID: &str = "manifold-sandbox";

/// `(instance, provider)` for each per-user instance. `sandbox_urls` maps a sandbox mount to the
/// emulators' base URL.
pub fn providers(
    config: &Config,
    registry: &Registry,
    sandbox_urls: Option<&dyn Fn(&str) -> Url>,
    public_url: &Url,
) -> Result<Vec<(String, Arc<Provider>)>, String> {
    let mut redirect = public_url.clone();
    redirect.set_path("/connections/callback");
    let mut providers: Vec<(String, Arc<Provider>)> = Vec::new();
    for (name, instance) in &config.adapters {
        let name = name.get_ref();
        let Some(kind) = registry.get(instance.kind.get_ref()) else {
            continue;
        };
        let Some(spec) = kind.oauth() else { continue };
        if !instance.enabled || instance.credentials.contains_key("token") {
            continue;
        }
        // Instances sharing a connection (Outlook, Teams, SharePoint) share one provider.
        if let Some((_, shared)) = providers
            .iter()
            .find(|(_, p)| p.connection == spec.connection)
        {
            let shared = shared.clone();
            providers.push((name.clone(), shared));
            continue;
        }
        let (endpoints, client_id) = if instance.sandbox {
            let base = sandbox_urls
                .map(|urls| urls(kind.sandbox_mount()))
                .ok_or_else(|| format!("adapter `{name}`: sandbox emulators are not running"))?;
            (
                sandbox_endpoints(&base, &spec)?,
                SANDBOX_CLIENT_ID.to_owned(),
            )
        } else {
            let client_id = instance
                .credentials
                .get("client_id")
                .map(|id| id.expose().to_owned())
                .ok_or_else(|| {
                    format!(
                        "adapter `{name}`: per-user OAuth needs credentials.client_id (and \
                         client_secret) of a {} OAuth app, or a shared credentials.token",
                        spec.display_name
                    )
                })?;
            (public_endpoints(&spec)?, client_id)
        };
        let provider = Provider::new(
            spec,
            endpoints,
            client_id,
            instance.credentials.get("client_secret").cloned(),
            redirect.clone(),
            instance.sandbox,
        )
        .map_err(|e| format!("adapter `{name}`: {e}"))?;
        providers.push((name.clone(), Arc::new(provider)));
    }
    // Upstream MCP servers with per-user OAuth: endpoints discovered at run time.
    providers.extend(super::upstream::providers(config, public_url)?);
    Ok(providers)
}

fn parse(url: &str) -> Result<Url, String> {
    Url::parse(url).map_err(|e| format!("bad OAuth URL {url}: {e}"))
}

fn public_endpoints(spec: &OAuthSpec) -> Result<Endpoints, String> {
    Ok(Endpoints {
        authorize: parse(spec.authorize_url)?,
        token: parse(spec.token_url)?,
        revoke: spec.revoke_url.map(parse).transpose()?,
    })
}

fn sandbox_endpoints(base: &Url, spec: &OAuthSpec) -> Result<Endpoints, String> {
    let root = base.as_str().trim_end_matches('/');
    Ok(Endpoints {
        authorize: parse(&format!("{root}{}", spec.sandbox_authorize_path))?,
        token: parse(&format!("{root}{}", spec.sandbox_token_path))?,
        // Every emulator serves RFC 7009 revocation; use it where the real provider has one.
        revoke: spec
            .revoke_url
            .map(|_| parse(&format!("{root}/oauth/revoke")))
            .transpose()?,
    })
}
