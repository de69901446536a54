//! The gateway's secret keys: AES-256-GCM sealing of everything stored at rest that must stay
//! secret (provider tokens, signing keys). Every sealed value names the key that sealed it, so
//! keys can be rotated: the first key seals, every listed key opens.
//!
//! The audit chain is MACed with keys derived from the same ones ([`Keyring::audit_keys`]:
//! HMAC-SHA256 of the key over a fixed label, same key id), so the audit log never holds a key
//! that also seals tokens, and one secret backs both.

use std::{collections::HashMap, path::Path};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// Keys cannot be loaded or a sealed value cannot be opened. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("MANIFOLD_SECRET_KEY must be `kid:base64key[,kid:base64key…]` with 32-byte keys: {0}")]
    BadVariable(String),
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("no secret key: set MANIFOLD_SECRET_KEY or create the key file {0}")]
    Missing(String),
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with key `{0}`, which is not in the keyring")]
    UnknownKey(String),
    #[error("sealed value failed authentication (wrong key, wrong context, or tampered)")]
    Tampered,
}

/// The keys, the sealing one first.
pub struct Keyring {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    /// The audit chain's key for each id, derived at load.
    audit: HashMap<String, [u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("keys", &ids)
            .finish()
    }
}

/// Sealed values start with this, so the format can change later.
const VERSION: &str = "v1";

/// What the audit chain's key of a keyring key is derived for.
const AUDIT_LABEL: &[u8] = b"manifold audit chain v1";

fn audit_key(key: &[u8]) -> [u8; 32] {
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
        AUDIT_LABEL,
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(mac.as_ref());
    out
}

// === impl Keyring ===

impl Keyring {
    /// From `MANIFOLD_SECRET_KEY` when set, else from `key_file`, which is created with a new
    /// random key (mode 0600) when `create` is true and it does not exist.
    pub fn load(
        variable: Option<&str>,
        key_file: &Path,
        create: bool,
    ) -> Result<Self, KeyringError> {
        if let Some(value) = variable {
            return Self::parse(value).map_err(KeyringError::BadVariable);
        }
        let file_error = |reason: String| KeyringError::KeyFile {
            path: key_file.display().to_string(),
            reason,
        };
        if !key_file.exists() {
            if !create {
                return Err(KeyringError::Missing(key_file.display().to_string()));
            }
            let key: [u8; 32] = rand::random();
            let line = format!("k1:{}\n", URL_SAFE_NO_PAD.encode(key));
            if let Some(dir) = key_file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
            }
            // Written whole under a private name, then linked into place: two processes
            // starting together on one data directory both end up reading the one that won,
            // never a half-written file.
            let staged = key_file.with_extension(format!("key.{:016x}", rand::random::<u64>()));
            write_private(&staged, &line).map_err(|e| file_error(e.to_string()))?;
            let linked = std::fs::hard_link(&staged, key_file);
            let _ = std::fs::remove_file(&staged);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(file_error(e.to_string())),
            }
        }
        let text = std::fs::read_to_string(key_file).map_err(|e| file_error(e.to_string()))?;
        Self::parse(text.trim()).map_err(file_error)
    }

    /// `kid:base64key[,kid:base64key…]`, the first sealing.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut current = None;
        let mut keys = HashMap::new();
        let mut audit = HashMap::new();
        for entry in value
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (kid, encoded) = entry
                .split_once(':')
                .ok_or_else(|| "an entry has no `kid:`".to_owned())?;
            if kid.is_empty()
                || !kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err("key ids may use A-Z a-z 0-9 - _".into());
            }
            let bytes = URL_SAFE_NO_PAD
                .decode(encoded.trim_end_matches('='))
                .map_err(|_| format!("key `{kid}` is not base64url"))?;
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| format!("key `{kid}` is not 32 bytes"))?;
            keys.insert(kid.to_owned(), LessSafeKey::new(unbound));
            audit.insert(kid.to_owned(), audit_key(&bytes));
            current.get_or_insert_with(|| kid.to_owned());
        }
        let current = current.ok_or_else(|| "no key given".to_owned())?;
        Ok(Self {
            current,
            keys,
            audit,
        })
    }

    /// The keys that MAC the audit chain: one per keyring key, the sealing key's id writing.
    pub fn audit_keys(&self) -> manifold_policy::audit::AuditKeys {
        let keys = self.audit.iter().map(|(kid, key)| (kid.clone(), *key));
        manifold_policy::audit::AuditKeys::new(&self.current, keys)
            .unwrap_or_else(|| unreachable!("the sealing key is in the keyring"))
    }

    /// The id of the key that seals.
    pub fn current_kid(&self) -> &str {
        &self.current
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the user and provider it belongs to), so a
    /// sealed value copied into another row does not open.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let key = &self.keys[&self.current];
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut data = plaintext.to_vec();
        // Sealing with a valid key and fresh nonce cannot fail; an error would be a bug.
        if key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .is_err()
        {
            data.clear();
        }
        let mut blob = nonce_bytes.to_vec();
        blob.extend_from_slice(&data);
        format!(
            "{VERSION}.{}.{}",
            self.current,
            URL_SAFE_NO_PAD.encode(blob)
        )
    }

    /// Decrypts a value from [`Keyring::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, KeyringError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(kid), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyringError::Malformed);
        };
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| KeyringError::UnknownKey(kid.to_owned()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| KeyringError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(KeyringError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyringError::Malformed)?;
        let mut data = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| KeyringError::Tampered)?;
        Ok(plain.to_vec())
    }

    /// Which key sealed `sealed`, for rotation jobs that re-seal old records.
    pub fn kid_of(sealed: &str) -> Option<&str> {
        sealed.split('.').nth(1)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        URL_SAFE_NO_PAD.encode([byte; 32])
    }

    #[test]
    fn seals_opens_and_binds_to_context() {
        let ring = Keyring::parse(&format!("a:{}", key(1))).expect("keyring");
        let sealed = ring.seal(b"refresh-token-123", "alice/microsoft");
        assert!(!sealed.contains("refresh-token-123"));
        assert_eq!(
            ring.open(&sealed, "alice/microsoft").expect("opens"),
            b"refresh-token-123"
        );
        assert!(matches!(
            ring.open(&sealed, "bob/microsoft"),
            Err(KeyringError::Tampered)
        ));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(ring.open(&tampered, "alice/microsoft").is_err());
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Keyring::parse(&format!("a:{}", key(1))).expect("old");
        let sealed_old = old.seal(b"x", "c");
        let rotated = Keyring::parse(&format!("b:{},a:{}", key(2), key(1))).expect("rotated");
        assert_eq!(rotated.open(&sealed_old, "c").expect("old opens"), b"x");
        let sealed_new = rotated.seal(b"y", "c");
        assert_eq!(Keyring::kid_of(&sealed_new), Some("b"));
        assert!(matches!(
            old.open(&sealed_new, "c"),
            Err(KeyringError::UnknownKey(_))
        ));
    }

    #[test]
    fn rejects_bad_keys_without_echoing_them() {
        for bad in [
            "",
            "nokid",
            "a:short",
            "a b:xyz",
            &format!("a:{}", URL_SAFE_NO_PAD.encode([0u8; 16])),
        ] {
            let error = Keyring::parse(bad).expect_err(bad);
            assert!(!error.contains("AAAA"), "{error}");
        }
    }

    #[test]
    fn audit_keys_are_derived_per_key_id_and_differ_from_the_sealing_keys() {
        let ring = Keyring::parse(&format!("b:{},a:{}", key(2), key(1))).expect("keyring");
        let audit = ring.audit_keys();
        assert_eq!(audit.current_kid(), "b");
        let again = Keyring::parse(&format!("a:{}", key(1))).expect("keyring");
        assert_eq!(again.audit["a"], ring.audit["a"], "stable across loads");
        assert_ne!(ring.audit["a"], [1u8; 32], "not the sealing key itself");
        assert_ne!(ring.audit["a"], ring.audit["b"]);
    }

    #[test]
    fn creates_a_private_key_file_once() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secret.key");
        assert!(matches!(
            Keyring::load(None, &path, false),
            Err(KeyringError::Missing(_))
        ));
        let first = Keyring::load(None, &path, true).expect("created");
        let sealed = first.seal(b"z", "c");
        let again = Keyring::load(None, &path, true).expect("reloaded");
        assert_eq!(again.open(&sealed, "c").expect("same key"), b"z");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
