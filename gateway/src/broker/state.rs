//! Small sealed values the connect flow hands to browsers and providers: the OAuth `state`
//! (bound to the user who started the connect, short-lived, single-use through a database row)
//! and the CSRF token of the `/connections` forms. Sealing (not just signing) keeps the PKCE
//! verifier inside `state` confidential while it travels through the provider.

use serde::{Deserialize, Serialize};

use crate::keyring::Keyring;

/// Keyring contexts: a value sealed for one purpose never opens as another.
const STATE_CONTEXT: &str = "manifold/broker/connect-state";
const CSRF_CONTEXT: &str = "manifold/broker/csrf";

/// How long a form's CSRF token stays good.
const CSRF_TTL_SECS: i64 = 3600;

/// A started connect, as carried in `state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectState {
    /// Single-use id, recorded in `broker_oauth_states` until the callback consumes it.
    pub nonce: String,
    pub user: String,
    pub connection: String,
    pub verifier: String,
    pub scopes: Vec<String>,
    /// Hash of the nonce in the starting browser's cookie (`auth::binding`): the callback must
    /// come from that browser.
    pub binding: String,
    /// Unix seconds.
    pub expires_at: i64,
}

pub fn seal_state(keyring: &Keyring, state: &ConnectState) -> String {
    let json = serde_json::to_vec(state).unwrap_or_default();
    keyring.seal(&json, STATE_CONTEXT)
}

/// The state, when it opens, parses and has not expired.
pub fn open_state(keyring: &Keyring, sealed: &str, now: i64) -> Option<ConnectState> {
    let plain = keyring.open(sealed, STATE_CONTEXT).ok()?;
    let state: ConnectState = serde_json::from_slice(&plain).ok()?;
    (state.expires_at > now).then_some(state)
}

#[derive(Serialize, Deserialize)]
struct Csrf {
    user: String,
    expires_at: i64,
}

/// A token the `/connections` forms carry: only pages served to `user` can hold one.
pub fn csrf_token(keyring: &Keyring, user: &str, now: i64) -> String {
    let csrf = Csrf {
        user: user.to_owned(),
        expires_at: now + CSRF_TTL_SECS,
    };
    keyring.seal(&serde_json::to_vec(&csrf).unwrap_or_default(), CSRF_CONTEXT)
}

pub fn csrf_valid(keyring: &Keyring, token: &str, user: &str, now: i64) -> bool {
    keyring
        .open(token, CSRF_CONTEXT)
        .ok()
        .and_then(|plain| serde_json::from_slice::<Csrf>(&plain).ok())
        .is_some_and(|csrf| csrf.user == user && csrf.expires_at > now)
}

/// A random URL-safe id.
pub fn nonce() -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        Keyring::parse(&format!("t:{}", URL_SAFE_NO_PAD.encode([7u8; 32]))).expect("ring")
    }

    #[test]
    fn state_opens_once_sealed_and_not_when_expired_or_tampered() {
        let ring = ring();
        let state = ConnectState {
            nonce: nonce(),
            user: "carol".into(),
            connection: "linear".into(),
            verifier: "v".repeat(43),
            scopes: vec!["read".into()],
            binding: "h".into(),
            expires_at: 100,
        };
        let sealed = seal_state(&ring, &state);
        assert!(!sealed.contains("carol"));
        assert_eq!(
            open_state(&ring, &sealed, 99).map(|s| s.user),
            Some("carol".into())
        );
        assert!(open_state(&ring, &sealed, 100).is_none());
        let mut tampered = sealed.clone();
        tampered.insert(sealed.len() - 3, 'x');
        assert!(open_state(&ring, &tampered, 0).is_none());
        // A CSRF token is not a state and the other way round.
        assert!(open_state(&ring, &csrf_token(&ring, "carol", 0), 0).is_none());
    }

    #[test]
    fn csrf_binds_to_the_user() {
        let ring = ring();
        let token = csrf_token(&ring, "alice", 0);
        assert!(csrf_valid(&ring, &token, "alice", 10));
        assert!(!csrf_valid(&ring, &token, "bob", 10));
        assert!(!csrf_valid(&ring, &token, "alice", CSRF_TTL_SECS + 1));
        assert!(!csrf_valid(&ring, "v1.t.garbage", "alice", 0));
    }
}
