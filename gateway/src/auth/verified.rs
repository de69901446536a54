//! Access tokens this replica has verified, so a client sending the same token on every request
//! pays for one ES256 signature check (tens of microseconds) per token, not per request. A token
//! is remembered by its SHA-256 digest (the token itself is not kept) until its `exp`, with the
//! id of the key that signed it, so it stops being accepted as soon as that key is retired; the
//! grant is still checked for revocation on every request by the caller.

use dashmap::DashMap;
use sha2::{Digest, Sha256};

use super::{keys::AccessClaims, store::now};

/// How many verified tokens a replica remembers; past that, expired ones are dropped, then all.
const KEPT: usize = 50_000;

/// Verified tokens by digest.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    tokens: DashMap<[u8; 32], Verified>,
}

/// A token's claims and the key it was signed with.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: AccessClaims,
    pub kid: String,
}

// === impl VerifiedTokens ===

impl VerifiedTokens {
    /// `token` when it was verified here and has not expired.
    pub fn get(&self, token: &str) -> Option<Verified> {
        let digest = digest(token);
        let verified = self.tokens.get(&digest)?;
        if verified.claims.exp > now() {
            return Some(verified.clone());
        }
        drop(verified);
        self.tokens.remove(&digest);
        None
    }

    /// Remembers `token`, whose signature (by key `kid`), issuer, audience and expiry were just
    /// checked.
    pub fn insert(&self, token: &str, claims: &AccessClaims, kid: &str) {
        if self.tokens.len() >= KEPT {
            let now = now();
            self.tokens.retain(|_, verified| verified.claims.exp > now);
            if self.tokens.len() >= KEPT {
                self.tokens.clear();
            }
        }
        let verified = Verified {
            claims: claims.clone(),
            kid: kid.to_owned(),
        };
        self.tokens.insert(digest(token), verified);
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_token_until_it_expires() {
        let verified = VerifiedTokens::default();
        assert!(verified.get("t1").is_none());
        verified.insert("t1", &AccessClaims::sample(now() + 60), "k1");
        let hit = verified.get("t1").expect("remembered");
        assert_eq!((hit.claims.sub.as_str(), hit.kid.as_str()), ("alice", "k1"));
        assert!(
            verified.get("t2").is_none(),
            "another token is not remembered"
        );
        verified.insert("t3", &AccessClaims::sample(now() - 1), "k1");
        assert!(verified.get("t3").is_none(), "expired");
        assert!(
            verified.tokens.get(&digest("t3")).is_none(),
            "and forgotten"
        );
    }
}
