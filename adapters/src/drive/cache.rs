//! Text already extracted for `read_file`, so reading a long file window by window downloads
//! and parses it once. Entries are keyed by a hash of the caller's credential together with the
//! file's id and version and the id of the call's text filter (the text is kept filtered, so a
//! window of it never shows what the gateway's redaction masks): a hit is only possible for the same credential that read the content
//! before, and only after that call's metadata request succeeded again (access still granted)
//! and showed the same version. Small and short-lived: a few recent files per process.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sha2::{Digest as _, Sha256};

use crate::extract::Format;

const MAX_ENTRIES: usize = 16;
/// Texts longer than this are not kept.
const MAX_ENTRY_CHARS: usize = 4 * 1024 * 1024;
const MAX_TOTAL_CHARS: usize = 16 * 1024 * 1024;
const TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
pub(crate) struct TextCache {
    entries: Mutex<VecDeque<Entry>>,
}

#[derive(Debug)]
struct Entry {
    key: [u8; 32],
    format: Format,
    text: Arc<String>,
    stored: Instant,
}

/// The cache key of one version of one file for one credential, filtered by one filter.
pub(crate) fn key(credential: &str, file_id: &str, version: &str, filter: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [credential, file_id, version, filter] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

impl TextCache {
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<(Format, Arc<String>)> {
        let mut entries = self.entries.lock().ok()?;
        entries.retain(|e| e.stored.elapsed() < TTL);
        entries
            .iter()
            .find(|e| &e.key == key)
            .map(|e| (e.format, e.text.clone()))
    }

    pub(crate) fn put(&self, key: [u8; 32], format: Format, text: Arc<String>) {
        if text.len() > MAX_ENTRY_CHARS {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.retain(|e| e.key != key && e.stored.elapsed() < TTL);
        entries.push_back(Entry {
            key,
            format,
            text,
            stored: Instant::now(),
        });
        let mut total: usize = entries.iter().map(|e| e.text.len()).sum();
        while entries.len() > MAX_ENTRIES || total > MAX_TOTAL_CHARS {
            match entries.pop_front() {
                Some(old) => total -= old.text.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_entries_per_credential() {
        let cache = TextCache::default();
        let alice = key("token-a", "file", "3", "f");
        cache.put(alice, Format::Pdf, Arc::new("text".into()));
        assert_eq!(
            cache.get(&alice).map(|(f, t)| (f, t.to_string())),
            Some((Format::Pdf, "text".into()))
        );
        assert!(
            cache.get(&key("token-b", "file", "3", "f")).is_none(),
            "another credential"
        );
        assert!(
            cache.get(&key("token-a", "file", "4", "f")).is_none(),
            "another version"
        );
        assert!(
            cache.get(&key("token-a", "file", "3", "g")).is_none(),
            "another filter"
        );
        for n in 0..MAX_ENTRIES {
            cache.put(
                key("t", &n.to_string(), "1", "f"),
                Format::Text,
                Arc::new(String::new()),
            );
        }
        assert!(cache.get(&alice).is_none(), "the oldest entry went first");
    }
}
