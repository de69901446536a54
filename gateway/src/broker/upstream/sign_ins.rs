//! The sign-in tokens token exchange trades: the bearer token each user last presented on
//! `/mcp`, kept in memory only, only while an instance exchanges them (`enable`), and for a
//! bounded time. Every call arrives with its bearer, so the replica serving it has just seen
//! it: nothing is shared between replicas or stored.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use manifold_adapters::Secret;

/// How long a remembered token is offered for exchange (an exchange with an expired one fails
/// at the authorization server anyway).
const KEPT: Duration = Duration::from_secs(3600);
/// Users remembered at once; beyond it the oldest are forgotten.
const MAX_USERS: usize = 10_000;

#[derive(Debug, Default)]
pub struct SignIns {
    enabled: std::sync::atomic::AtomicBool,
    tokens: DashMap<String, (Secret, Instant)>,
    /// Bumped when a user is first seen, for listing an upstream's offers as them.
    seen: tokio::sync::watch::Sender<u64>,
}

// === impl SignIns ===

impl SignIns {
    /// Start remembering (an instance exchanges sign-in tokens).
    pub fn enable(&self) {
        self.enabled
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// `token` is `sub`'s, just verified.
    pub fn remember(&self, sub: &str, token: &str) {
        if !self.enabled.load(std::sync::atomic::Ordering::Relaxed) || sub.is_empty() {
            return;
        }
        if self.tokens.len() >= MAX_USERS && !self.tokens.contains_key(sub) {
            let now = Instant::now();
            self.tokens
                .retain(|_, (_, at)| now.duration_since(*at) < KEPT);
            if self.tokens.len() >= MAX_USERS {
                return;
            }
        }
        let new = self
            .tokens
            .insert(
                sub.to_owned(),
                (Secret::new(token.to_owned()), Instant::now()),
            )
            .is_none();
        if new {
            self.seen.send_modify(|count| *count += 1);
        }
    }

    /// `sub`'s sign-in token, if recent.
    pub fn get(&self, sub: &str) -> Option<Secret> {
        let entry = self.tokens.get(sub)?;
        (entry.1.elapsed() < KEPT).then(|| entry.0.clone())
    }

    /// Some user with a recent sign-in token.
    pub fn any_user(&self) -> Option<String> {
        self.tokens
            .iter()
            .find(|entry| entry.1.elapsed() < KEPT)
            .map(|entry| entry.key().clone())
    }

    pub fn seen(&self) -> tokio::sync::watch::Receiver<u64> {
        self.seen.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_remembered_only_once_enabled() {
        let sign_ins = SignIns::default();
        sign_ins.remember("carol", "t1");
        assert!(sign_ins.get("carol").is_none());
        sign_ins.enable();
        sign_ins.remember("carol", "t1");
        sign_ins.remember("carol", "t2");
        assert_eq!(
            sign_ins
                .get("carol")
                .map(|t| t.expose().to_owned())
                .as_deref(),
            Some("t2")
        );
        assert_eq!(sign_ins.any_user().as_deref(), Some("carol"));
        assert!(sign_ins.get("dave").is_none());
    }
}
