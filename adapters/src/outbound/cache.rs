//! A small in-memory cache of successful GETs, for documents fetched on behalf of requests
//! (client metadata documents): it keeps one caller from making the gateway fetch the same URL
//! on every request. Lifetimes follow the response's `Cache-Control` within the operator's
//! bound; `no-store`, `no-cache`, `private` and `max-age=0` are not cached.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use bytes::Bytes;

/// Cached bodies by URL.
pub(super) struct Cache {
    entries: Mutex<HashMap<String, (Bytes, Instant)>>,
    capacity: usize,
    default_ttl: Duration,
    max_ttl: Duration,
}

// === impl Cache ===

impl Cache {
    pub(super) fn new(capacity: usize, default_ttl: Duration, max_ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            default_ttl: default_ttl.min(max_ttl),
            max_ttl,
        }
    }

    pub(super) fn get(&self, url: &str) -> Option<Bytes> {
        let mut entries = self.entries.lock().ok()?;
        match entries.get(url) {
            Some((body, until)) if *until > Instant::now() => Some(body.clone()),
            Some(_) => {
                entries.remove(url);
                None
            }
            None => None,
        }
    }

    /// Keeps `body` for as long as `cache_control` allows, bounded by the maximum.
    pub(super) fn put(&self, url: &str, body: &Bytes, cache_control: Option<&str>) {
        let Some(ttl) = ttl(cache_control, self.default_ttl, self.max_ttl) else {
            return;
        };
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, until)| *until > now);
        }
        if entries.len() >= self.capacity {
            // Still full of live entries: drop the one closest to expiry.
            if let Some(first) = entries
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&first);
            }
        }
        entries.insert(url.to_owned(), (body.clone(), now + ttl));
    }
}

/// How long a response may be kept: `None` for not at all.
fn ttl(cache_control: Option<&str>, default: Duration, max: Duration) -> Option<Duration> {
    let Some(value) = cache_control else {
        return (!default.is_zero()).then_some(default);
    };
    let mut max_age = None;
    for directive in value.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        match directive.split_once('=') {
            None if matches!(directive.as_str(), "no-store" | "no-cache" | "private") => {
                return None;
            }
            Some(("max-age", secs)) => {
                // An unreadable max-age is treated as "do not cache".
                max_age = Some(secs.trim_matches('"').parse::<u64>().ok()?);
            }
            _ => {}
        }
    }
    let ttl = max_age.map_or(default, Duration::from_secs).min(max);
    (!ttl.is_zero()).then_some(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn cache_control_decides_within_the_bound() {
        assert_eq!(ttl(None, MIN, HOUR), Some(MIN));
        assert_eq!(
            ttl(Some("max-age=120"), MIN, HOUR),
            Some(Duration::from_secs(120))
        );
        assert_eq!(ttl(Some("public, max-age=999999"), MIN, HOUR), Some(HOUR));
        for refused in [
            "no-store",
            "no-cache",
            "private, max-age=600",
            "max-age=0",
            "max-age=-1",
            "max-age=soon",
            "public, NO-STORE",
        ] {
            assert_eq!(ttl(Some(refused), MIN, HOUR), None, "{refused}");
        }
    }

    #[test]
    fn a_full_cache_stays_at_its_capacity() {
        let cache = Cache::new(3, MIN, HOUR);
        for i in 0..10 {
            cache.put(&format!("u{i}"), &Bytes::from_static(b"x"), None);
        }
        let len = cache.entries.lock().map(|e| e.len()).unwrap_or_default();
        assert_eq!(len, 3);
        assert!(cache.get("u9").is_some());
    }
}
