//! Access tokens this replica has verified, so a client sending the same token on every request
//! pays for one ES256 signature check (tens of microseconds) per token, not per request. A token
//! is remembered by its SHA-256 digest (the token itself is not kept) until its `exp`; the grant
//! is still checked for revocation on every request by the caller.

use dashmap::DashMap;
use sha2::{Digest, Sha256};

use super::{keys::AccessClaims, store::now};

/// How many verified tokens a replica remembers; past that, expired ones are dropped, then all.
const KEPT: usize = 50_000;

/// Verified tokens by digest.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    tokens: DashMap<[u8; 32], AccessClaims>,
}

// === impl VerifiedTokens ===

impl VerifiedTokens {
    /// The claims of `token` when it was verified here and has not expired.
    pub fn get(&self, token: &str) -> Option<AccessClaims> {
        let digest = digest(token);
        let claims = self.tokens.get(&digest)?;
        if claims.exp > now() {
            return Some(claims.clone());
        }
        drop(claims);
        self.tokens.remove(&digest);
        None
    }

    /// Remembers `token`, whose signature, issuer, audience and expiry were just checked.
    pub fn insert(&self, token: &str, claims: &AccessClaims) {
        if self.tokens.len() >= KEPT {
            let now = now();
            self.tokens.retain(|_, claims| claims.exp > now);
            if self.tokens.len() >= KEPT {
                self.tokens.clear();
            }
        }
        self.tokens.insert(digest(token), claims.clone());
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://gw".into(),
            sub: "alice".into(),
            aud: "https://gw/mcp".into(),
            exp,
            iat: 0,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "mcp".into(),
            email: None,
            groups: vec![],
            fid: None,
        }
    }

    #[test]
    fn remembers_a_token_until_it_expires() {
        let verified = VerifiedTokens::default();
        assert!(verified.get("t1").is_none());
        verified.insert("t1", &claims(now() + 60));
        assert_eq!(verified.get("t1").map(|c| c.sub).as_deref(), Some("alice"));
        assert!(
            verified.get("t2").is_none(),
            "another token is not remembered"
        );
        verified.insert("t3", &claims(now() - 1));
        assert!(verified.get("t3").is_none(), "expired");
        assert!(
            verified.tokens.get(&digest("t3")).is_none(),
            "and forgotten"
        );
    }
}
