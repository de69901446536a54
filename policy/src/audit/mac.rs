//! The keys that MAC the audit chain. A keyed record carries `kid` and its `hash` is
//! HMAC-SHA256 under that key over the same canonical bytes a plain record hashes with SHA-256,
//! so whoever lacks the key can neither edit a record nor re-chain a rewritten copy.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// HMAC-SHA256 (RFC 2104) over the concatenation of `parts`.
pub(super) fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    padded[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(padded.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(padded.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The audit keys by id, one of them writing. Never prints key material.
#[derive(Clone)]
pub struct AuditKeys {
    current: String,
    keys: HashMap<String, [u8; 32]>,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("AuditKeys")
            .field("current", &self.current)
            .field("keys", &ids)
            .finish()
    }
}

// === impl AuditKeys ===

impl AuditKeys {
    /// `keys` by id; `current` (which must be among them) MACs new records. `None` when it is
    /// not.
    pub fn new(current: &str, keys: impl IntoIterator<Item = (String, [u8; 32])>) -> Option<Self> {
        let keys: HashMap<_, _> = keys.into_iter().collect();
        keys.contains_key(current).then(|| Self {
            current: current.to_owned(),
            keys,
        })
    }

    pub fn current_kid(&self) -> &str {
        &self.current
    }

    pub(super) fn current_key(&self) -> &[u8; 32] {
        // `new` checked that the current key is present.
        &self.keys[&self.current]
    }

    pub(super) fn get(&self, kid: &str) -> Option<&[u8; 32]> {
        self.keys.get(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_with_a_32_byte_key() {
        // RFC 4231 test case 1 uses a 20-byte key; padded with zeros to 32 bytes it is the same
        // HMAC key (keys shorter than the block are zero-padded).
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&[0x0b; 20]);
        let mac = hmac_sha256(&key, &[b"Hi ", b"There"]);
        assert_eq!(
            hex::encode(mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
