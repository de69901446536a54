//! Mode `external`: access tokens (JWTs) issued by another authorization server, checked against
//! its JWKS for signature, issuer, audience and expiry.

use std::{collections::HashMap, time::Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use manifold_adapters::outbound::{Fetch, Outbound};
use manifold_policy::Principal;
use serde_json::Value;
use tokio::sync::RwLock;

use super::keys::VerifyError;
use crate::config::ExternalAuthConfig;

/// The external authorization server.
pub struct External {
    pub(crate) issuer: String,
    jwks_url: String,
    pub(crate) audience: String,
    email_claim: String,
    groups_claim: String,
    jwks: RwLock<Option<(JwkSet, Instant)>>,
}

impl External {
    pub fn new(config: &ExternalAuthConfig, resource: &str) -> Self {
        Self {
            issuer: config.issuer.clone(),
            jwks_url: config.jwks_url.clone(),
            audience: config
                .audience
                .clone()
                .unwrap_or_else(|| resource.to_owned()),
            email_claim: config.email_claim.clone(),
            groups_claim: config.groups_claim.clone(),
            jwks: RwLock::new(None),
        }
    }

    async fn key(
        &self,
        outbound: &Outbound,
        kid: Option<&str>,
    ) -> Result<DecodingKey, VerifyError> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None => set.keys.first().cloned(),
        };
        if let Some((set, at)) = self.jwks.read().await.as_ref() {
            match find(set) {
                Some(jwk) => {
                    return DecodingKey::from_jwk(&jwk).map_err(|_| VerifyError::UnknownKey);
                }
                // Refetch at most every 30 s, so unknown kids cannot hammer the server.
                None if at.elapsed().as_secs() < 30 => return Err(VerifyError::UnknownKey),
                None => {}
            }
        }
        let set: JwkSet = fetch_keys(outbound, &self.jwks_url)
            .await
            .ok_or(VerifyError::UnknownKey)?;
        let jwk = find(&set);
        *self.jwks.write().await = Some((set, Instant::now()));
        DecodingKey::from_jwk(&jwk.ok_or(VerifyError::UnknownKey)?)
            .map_err(|_| VerifyError::UnknownKey)
    }

    /// The caller of a valid token.
    pub async fn verify(&self, outbound: &Outbound, token: &str) -> Result<Principal, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(VerifyError::Malformed);
        }
        let key = self.key(outbound, header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = 5;
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<HashMap<String, Value>>(token, &key, &validation)
            .map_err(|e| VerifyError::Invalid(format!("{:?}", e.kind())))?
            .claims;
        let text = |key: &str| claims.get(key).and_then(Value::as_str).map(str::to_owned);
        // The subject names the user (and owns their MCP sessions): an empty one names nobody.
        let sub = text("sub")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| VerifyError::Invalid("no subject".into()))?;
        let groups = match claims.get(&self.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => vec![],
        };
        Ok(Principal {
            user: Some(sub),
            email: text(&self.email_claim),
            groups,
            client_id: text("client_id").or_else(|| text("azp")),
        })
    }
}

/// The issuer's key set through the guarded client; `None` (logged) when it cannot be read.
async fn fetch_keys(outbound: &Outbound, url: &str) -> Option<JwkSet> {
    let follow = Fetch {
        follow_redirects: true,
        ..Fetch::default()
    };
    match outbound.get(url, "application/json", follow).await {
        Ok(fetched) if fetched.status.is_success() => fetched.json().ok(),
        Ok(fetched) => {
            tracing::warn!(status = %fetched.status, "the issuer's JWKS could not be read");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "the issuer's JWKS could not be fetched");
            None
        }
    }
}
