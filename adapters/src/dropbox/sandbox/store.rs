//! The emulated Dropbox: an in-memory tree of folders and files keyed by lower-cased path, seeded
//! with office documents, text files, a large log and a folder of 160 notes (for paging).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Seed documents shared with the Box emulator: real (minimal) Office files and a PDF, so text
/// extraction is exercised on genuine formats.
pub(crate) fn office_documents() -> [(&'static str, &'static [u8]); 4] {
    [
        (
            "quarterly-summary.docx",
            include_bytes!("fixtures/quarterly-summary.docx"),
        ),
        (
            "budget-2026.xlsx",
            include_bytes!("fixtures/budget-2026.xlsx"),
        ),
        ("roadmap.pptx", include_bytes!("fixtures/roadmap.pptx")),
        ("handbook.pdf", include_bytes!("fixtures/handbook.pdf")),
    ]
}

/// Plain-text seed files shared with the Box emulator.
pub(crate) fn text_documents() -> [(&'static str, String); 4] {
    [
        (
            "meeting-notes.txt",
            "Meeting notes\nThe launch is planned for March. Budget approved.\n".into(),
        ),
        (
            "README.md",
            "# Team folder\n\nEverything about the *launch* lives here.\n".into(),
        ),
        ("sales.csv", "region,amount\nnorth,1200\nsouth,900\n".into()),
        (
            "status.html",
            "<html><body><h1>Status</h1><p>All systems &amp; services green.</p></body></html>"
                .into(),
        ),
    ]
}

/// A text of about 120 000 characters whose lines are numbered, to read in windows.
pub(crate) fn large_text() -> String {
    (0..2000)
        .map(|n| format!("line {n:05}: the quick brown fox jumps over the lazy dog\n"))
        .collect()
}

/// One file or folder.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub id: String,
    pub path_display: String,
    pub folder: bool,
    pub content: Vec<u8>,
    pub modified: String,
    pub rev: u64,
}

impl Node {
    pub(crate) fn name(&self) -> &str {
        self.path_display.rsplit('/').next().unwrap_or_default()
    }

    /// `Metadata` as Dropbox serialises it; `tagged` adds the union's `.tag` (routes whose
    /// result is the `Metadata` union), off for `FileMetadata`/`FolderMetadata` results.
    pub(crate) fn metadata(&self, tagged: bool) -> Value {
        let mut meta = json!({
            "name": self.name(), "id": self.id,
            "path_lower": self.path_display.to_lowercase(), "path_display": self.path_display,
        });
        if self.folder {
            if tagged {
                meta[".tag"] = json!("folder");
            }
        } else {
            if tagged {
                meta[".tag"] = json!("file");
            }
            meta["client_modified"] = json!(self.modified);
            meta["server_modified"] = json!(self.modified);
            meta["rev"] = json!(format!("{:012x}", self.rev));
            meta["size"] = json!(self.content.len());
            meta["is_downloadable"] = json!(true);
        }
        meta
    }
}

/// A shared link: its URL and whom it works for (a `LinkAudience` tag: `public`, `team`,
/// `no_one`), which later requests for the same path do not change.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub url: String,
    pub audience: String,
}

/// The whole Dropbox of the sandbox user.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// By lower-cased path.
    pub nodes: BTreeMap<String, Node>,
    /// The one direct link of a path, by lower-cased path.
    pub links: BTreeMap<String, Link>,
    next: u64,
}

/// `2026-11-25T14:00:00Z` for a Unix time, as Dropbox writes timestamps.
pub(crate) fn timestamp(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date crate in the emulator.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub(crate) fn now() -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    timestamp(unix)
}

pub(crate) fn parent_of(path_lower: &str) -> &str {
    path_lower.rsplit_once('/').map_or("", |(parent, _)| parent)
}

impl Store {
    pub(crate) fn seeded() -> Self {
        let mut store = Self::default();
        let seeded = "2026-05-04T09:30:00Z";
        for (name, bytes) in office_documents() {
            store.put(&format!("/Reports/{name}"), bytes.to_vec(), seeded);
        }
        for (name, text) in text_documents() {
            store.put(&format!("/Reports/{name}"), text.into_bytes(), seeded);
        }
        // Secrets the gateway's redaction must mask before any result reaches a model.
        store.put(
            "/Finance/payment-details.txt",
            b"Supplier payment details\nCard: 4111 1111 1111 1111\nIBAN: GB82 WEST 1234 5698 7654 32\n\
              Deploy key: AKIAIOSFODNN7EXAMPLE\n"
                .to_vec(),
            seeded,
        );
        store.put(
            "/Logs/server-2026.log.txt",
            large_text().into_bytes(),
            seeded,
        );
        for n in 1..=160 {
            let text = format!(
                "Archived note {n}.\nTopic: {}\n",
                if n % 10 == 0 { "invoice" } else { "misc" }
            );
            store.put(
                &format!("/Archive/note-{n:03}.txt"),
                text.into_bytes(),
                seeded,
            );
        }
        store.mkdir("/Projects", seeded);
        // Links made before: one of each audience, for policies on whom a link works for.
        for (name, audience) in [
            ("sales.csv", "public"),
            ("README.md", "team"),
            ("meeting-notes.txt", "no_one"),
        ] {
            let key = format!("/reports/{}", name.to_lowercase());
            let url = store.link_url(&key);
            store.links.insert(
                key,
                Link {
                    url,
                    audience: audience.into(),
                },
            );
        }
        store
    }

    /// The URL a new link to the node at `key` gets.
    pub(crate) fn link_url(&self, key: &str) -> String {
        self.nodes.get(key).map_or_else(String::new, |node| {
            format!(
                "https://www.dropbox.com/scl/fi/{}/{}?dl=0",
                &node.id[3..],
                node.name()
            )
        })
    }

    fn new_id(&mut self) -> (String, u64) {
        self.next += 1;
        (format!("id:sbx{:06}AAAAAAAAA", self.next), self.next)
    }

    /// Creates a folder and its missing parents; returns its lower-cased path.
    pub(crate) fn mkdir(&mut self, path: &str, modified: &str) -> String {
        let mut current = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            current.push('/');
            current.push_str(part);
            let key = current.to_lowercase();
            if !self.nodes.contains_key(&key) {
                let (id, rev) = self.new_id();
                let node = Node {
                    id,
                    path_display: current.clone(),
                    folder: true,
                    content: Vec::new(),
                    modified: modified.into(),
                    rev,
                };
                self.nodes.insert(key, node);
            }
        }
        path.to_lowercase()
    }

    /// Writes a file (creating parent folders); returns its lower-cased path.
    pub(crate) fn put(&mut self, path: &str, content: Vec<u8>, modified: &str) -> String {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.mkdir(parent, modified);
        }
        let key = path.to_lowercase();
        let (fresh_id, rev) = self.new_id();
        let id = self.nodes.get(&key).map_or(fresh_id, |old| old.id.clone());
        let node = Node {
            id,
            path_display: path.into(),
            folder: false,
            content,
            modified: modified.into(),
            rev,
        };
        self.nodes.insert(key.clone(), node);
        key
    }

    /// The lower-cased path a Dropbox path or `id:` reference names, if it exists.
    pub(crate) fn resolve(&self, path: &str) -> Option<String> {
        if path.starts_with("id:") {
            return self
                .nodes
                .iter()
                .find(|(_, n)| n.id == path)
                .map(|(k, _)| k.clone());
        }
        let key = path.to_lowercase();
        self.nodes.contains_key(&key).then_some(key)
    }

    /// Direct children of a folder (`""` is the root), in path order.
    pub(crate) fn children(&self, folder: &str) -> Vec<&Node> {
        self.nodes
            .iter()
            .filter(|(key, _)| parent_of(key) == folder)
            .map(|(_, node)| node)
            .collect()
    }

    /// A free name for `path` like `notes (1).txt`, as Dropbox's autorename picks.
    pub(crate) fn free_name(&self, path: &str) -> String {
        let (stem, ext) = match path.rsplit_once('.') {
            Some((stem, ext)) if !stem.ends_with('/') && !ext.contains('/') => {
                (stem.to_owned(), format!(".{ext}"))
            }
            _ => (path.to_owned(), String::new()),
        };
        (1..)
            .map(|n| format!("{stem} ({n}){ext}"))
            .find(|candidate| !self.nodes.contains_key(&candidate.to_lowercase()))
            .unwrap_or_default()
    }

    /// Moves a node and everything under it.
    pub(crate) fn relocate(&mut self, from: &str, to_display: &str) {
        let to_lower = to_display.to_lowercase();
        let moved: Vec<String> = self
            .nodes
            .keys()
            .filter(|k| *k == from || k.starts_with(&format!("{from}/")))
            .cloned()
            .collect();
        for key in moved {
            if let Some(mut node) = self.nodes.remove(&key) {
                let rest = &node.path_display[from.len()..];
                node.path_display = format!("{to_display}{rest}");
                let moved = format!("{to_lower}{}", &key[from.len()..]);
                // A link follows its file.
                if let Some(link) = self.links.remove(&key) {
                    self.links.insert(moved.clone(), link);
                }
                self.nodes.insert(moved, node);
            }
        }
    }

    /// Removes a node and everything under it; returns the node.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Node> {
        let prefix = format!("{key}/");
        self.nodes.retain(|k, _| !k.starts_with(&prefix));
        self.links
            .retain(|k, _| k != key && !k.starts_with(&prefix));
        self.nodes.remove(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps_and_seeds_paging_folder() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_795_615_200), "2026-11-25T14:00:00Z");
        let store = Store::seeded();
        assert_eq!(store.children("/archive").len(), 160);
        assert!(store.large_enough());
    }

    impl Store {
        fn large_enough(&self) -> bool {
            self.nodes
                .get("/logs/server-2026.log.txt")
                .is_some_and(|n| n.content.len() > 100_000)
        }
    }
}
