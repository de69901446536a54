//! `MANIFOLD_*` environment overrides, so secrets need not sit in the config file.
//!
//! Path segments are joined with `__`: `MANIFOLD_STORAGE__URL`, `MANIFOLD_STORAGE__REDIS_URL`,
//! `MANIFOLD_AUTH__OIDC__CLIENT_SECRET`, `MANIFOLD_ADAPTERS__<NAME>__CREDENTIALS__<KEY>` (instance names matched case-insensitively,
//! `-` written as `_`).

use manifold_adapters::Secret;

use super::Config;

/// Applies every `MANIFOLD_…__…` override in `vars`. An override naming nothing that exists is
/// an error rather than a silent no-op, so a misspelt variable is noticed. Variables without
/// `__` (`MANIFOLD_LOG`, `MANIFOLD_SECRET_KEY`, …) configure the process, not the file.
pub fn apply_env_overrides(config: &mut Config, vars: &[(String, String)]) -> Result<(), String> {
    for (key, value) in vars {
        let Some(path) = key.strip_prefix("MANIFOLD_") else {
            continue;
        };
        if !path.contains("__") {
            continue;
        }
        if path == "STORAGE__URL" {
            config.storage.url = Some(Secret::new(value.clone()));
            continue;
        }
        if path == "STORAGE__REDIS_URL" {
            config.storage.redis_url = Some(Secret::new(value.clone()));
            continue;
        }
        if path == "SERVER__OPERATOR_TOKEN" {
            config.server.operator_token = Some(Secret::new(value.clone()));
            continue;
        }
        if path == "AUTH__OIDC__CLIENT_SECRET" {
            match config.auth.oidc.as_mut() {
                Some(oidc) => oidc.client_secret = Some(Secret::new(value.clone())),
                None => {
                    return Err(format!(
                        "environment variable {key} overrides nothing in this config (no [auth.oidc])"
                    ));
                }
            }
            continue;
        }
        let target = path.strip_prefix("ADAPTERS__").and_then(|rest| {
            let (instance, credential) = rest.split_once("__CREDENTIALS__")?;
            let entry = config
                .adapters
                .iter_mut()
                .find(|(name, _)| name.get_ref().to_uppercase().replace('-', "_") == instance)?;
            Some((entry.1, credential))
        });
        match target {
            Some((instance, credential)) if !credential.is_empty() => {
                instance
                    .credentials
                    .insert(credential.to_lowercase(), Secret::new(value.clone()));
            }
            _ => {
                return Err(format!(
                    "environment variable {key} overrides nothing in this config"
                ));
            }
        }
    }
    Ok(())
}
