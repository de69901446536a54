//! Rate limits of dynamic client registration: a token bucket per client address and one global
//! bucket above them, so one caller exhausts only its own allowance and everyone together
//! cannot exceed the ceiling (per replica).
//!
//! The client address is the TCP peer. A `X-Forwarded-For` header counts only when the peer is a
//! proxy the operator trusts (`[auth.registration] trusted_proxies`); then the address is the
//! rightmost entry that is not itself a trusted proxy (entries left of it are the client's own
//! claims, so anyone could write them). IPv6 callers are counted per /64, the block one
//! subscriber usually holds; IPv4-mapped addresses count as their IPv4 address. A request whose
//! peer is unknown shares one bucket with every other such request.

use std::{
    net::{IpAddr, Ipv6Addr},
    sync::Mutex,
    time::Instant,
};

use axum::http::HeaderMap;
use dashmap::DashMap;
use manifold_adapters::outbound::{Cidr, address::canonical};

/// Addresses tracked at most; beyond, new addresses share one overflow bucket.
const MAX_TRACKED: usize = 10_000;

/// Which limit refused a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    #[error("too many registrations from this address")]
    Address,
    #[error("too many registrations")]
    Global,
}

/// A bucket of `capacity` tokens refilled at `capacity` per minute.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The registration limits of one replica.
pub struct RegistrationLimiter {
    per_address: u32,
    global_limit: u32,
    addresses: DashMap<Key, Bucket>,
    global: Mutex<Bucket>,
    trusted_proxies: Vec<Cidr>,
}

/// What a bucket is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Unknown,
    Overflow,
}

// === impl Bucket ===

impl Bucket {
    fn full(capacity: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(capacity),
            at: now,
        }
    }

    fn take(&mut self, capacity: u32, now: Instant) -> bool {
        let per_sec = f64::from(capacity) / 60.0;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_sec).min(f64::from(capacity));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

// === impl RegistrationLimiter ===

impl RegistrationLimiter {
    pub fn new(per_address: u32, global: u32, trusted_proxies: Vec<Cidr>) -> Self {
        Self {
            per_address,
            global_limit: global,
            addresses: DashMap::new(),
            global: Mutex::new(Bucket::full(global, Instant::now())),
            trusted_proxies,
        }
    }

    /// Takes one registration for the caller `peer` (with `headers`), or says which limit
    /// refused it.
    pub fn take(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<(), Limited> {
        self.take_at(self.client_address(peer, headers), Instant::now())
    }

    fn take_at(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Limited> {
        let mut key = client.map_or(Key::Unknown, |ip| Key::Ip(bucket_of(ip)));
        if !self.addresses.contains_key(&key) && self.addresses.len() >= MAX_TRACKED {
            // Forget callers whose bucket has refilled; if that frees nothing, share.
            let per_address = self.per_address;
            self.addresses.retain(|_, bucket| {
                let mut probe = *bucket;
                probe.take(per_address, now);
                probe.tokens + 1.0 < f64::from(per_address)
            });
            if self.addresses.len() >= MAX_TRACKED {
                key = Key::Overflow;
            }
        }
        let allowed = self
            .addresses
            .entry(key)
            .or_insert_with(|| Bucket::full(self.per_address, now))
            .take(self.per_address, now);
        if !allowed {
            return Err(Limited::Address);
        }
        let mut global = self.global.lock().map_err(|_| Limited::Global)?;
        if global.take(self.global_limit, now) {
            Ok(())
        } else {
            Err(Limited::Global)
        }
    }

    /// The address a registration is counted against (see the module docs).
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(peer) {
            return Some(peer);
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for entry in forwarded.iter().rev() {
            // An entry that is not an address is someone's forgery: stop at the proxy before it.
            let Ok(ip) = entry.parse::<IpAddr>().map(canonical) else {
                return Some(peer);
            };
            if !trusted(ip) {
                return Some(ip);
            }
        }
        Some(peer)
    }
}

/// The bucket an address counts in: IPv4 as is, IPv6 by its /64.
fn bucket_of(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::time::Duration;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert("x-forwarded-for", value);
        }
        headers
    }

    fn limiter(proxies: &[&str]) -> RegistrationLimiter {
        let proxies = proxies
            .iter()
            .map(|p| p.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        RegistrationLimiter::new(3, 20, proxies)
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let direct = limiter(&[]);
        let peer = Some(ip("198.51.100.9"));
        assert_eq!(
            direct.client_address(peer, &forwarded("203.0.113.1")),
            peer,
            "an untrusted peer cannot name another client"
        );
        let proxied = limiter(&["10.0.0.0/8"]);
        let via = Some(ip("10.1.1.1"));
        let cases = [
            ("203.0.113.1", "203.0.113.1"),
            ("1.1.1.1, 203.0.113.1", "203.0.113.1"),
            ("203.0.113.1, 10.2.2.2", "203.0.113.1"),
            ("garbage, 203.0.113.1", "203.0.113.1"),
            ("203.0.113.1, garbage", "10.1.1.1"),
            ("", "10.1.1.1"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
        ];
        for (header, expected) in cases {
            assert_eq!(
                proxied.client_address(via, &forwarded(header)),
                Some(ip(expected)),
                "{header}"
            );
        }
        assert_eq!(proxied.client_address(None, &forwarded("1.2.3.4")), None);
    }

    #[test]
    fn one_address_at_its_limit_leaves_the_others_registering_until_the_ceiling() {
        let limits = limiter(&[]);
        let now = Instant::now();
        // Six generated callers: each gets exactly its 3 (18 of the ceiling of 20), the 4th is
        // refused without using the ceiling.
        for caller in 0..6u8 {
            let addr = Some(IpAddr::from([203, 0, 113, caller]));
            for _ in 0..3 {
                assert_eq!(limits.take_at(addr, now), Ok(()), "caller {caller}");
            }
            assert_eq!(limits.take_at(addr, now), Err(Limited::Address));
        }
        // An IPv6 caller's whole /64 is one caller: different interface ids share a bucket.
        let v6 = |n: u16| Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 0, 7, n, 0, 0, n)));
        assert_eq!(limits.take_at(v6(1), now), Ok(()));
        assert_eq!(limits.take_at(v6(2), now), Ok(()));
        assert_eq!(
            limits.take_at(v6(3), now),
            Err(Limited::Global),
            "18 + 2 = ceiling"
        );
        assert_eq!(
            limits.take_at(Some(ip("198.51.100.1")), now),
            Err(Limited::Global)
        );
        // A minute later the buckets have refilled.
        let later = now + Duration::from_secs(61);
        assert_eq!(limits.take_at(Some(ip("203.0.113.0")), later), Ok(()));
    }
}
