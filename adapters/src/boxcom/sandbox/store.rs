//! The emulated Box account: items by id (`0` is the root, All Files), seeded with the same
//! documents as the Dropbox emulator and a folder of 160 notes for paging. Renders Box's
//! `File` and `Folder` representations.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::dropbox::sandbox::store::{large_text, now, office_documents, text_documents};

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub id: String,
    pub folder: bool,
    pub name: String,
    pub parent: Option<String>,
    pub content: Vec<u8>,
    pub modified: String,
    pub shared_access: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub items: BTreeMap<String, Item>,
    next: u64,
}

const USER: &str =
    r#"{"type":"user","id":"11446498","name":"Alice Anderson","login":"alice@example.com"}"#;

impl Store {
    pub(crate) fn seeded() -> Self {
        let mut store = Self {
            next: 1000,
            ..Self::default()
        };
        let at = "2026-05-04T09:30:00Z";
        store.items.insert(
            "0".into(),
            Item {
                id: "0".into(),
                folder: true,
                name: "All Files".into(),
                parent: None,
                content: Vec::new(),
                modified: at.into(),
                shared_access: None,
            },
        );
        let reports = store.add("0", "Reports", None, at);
        for (name, bytes) in office_documents() {
            store.add(&reports, name, Some(bytes.to_vec()), at);
        }
        for (name, text) in text_documents() {
            store.add(&reports, name, Some(text.into_bytes()), at);
        }
        let logs = store.add("0", "Logs", None, at);
        store.add(
            &logs,
            "server-2026.log.txt",
            Some(large_text().into_bytes()),
            at,
        );
        let archive = store.add("0", "Archive", None, at);
        for n in 1..=160 {
            let text = format!(
                "Archived note {n}.\nTopic: {}\n",
                if n % 10 == 0 { "invoice" } else { "misc" }
            );
            store.add(
                &archive,
                &format!("note-{n:03}.txt"),
                Some(text.into_bytes()),
                at,
            );
        }
        store
    }

    /// Adds a folder (`content` None) or file; returns its id.
    pub(crate) fn add(
        &mut self,
        parent: &str,
        name: &str,
        content: Option<Vec<u8>>,
        at: &str,
    ) -> String {
        self.next += 1;
        let id = self.next.to_string();
        let item = Item {
            id: id.clone(),
            folder: content.is_none(),
            name: name.into(),
            parent: Some(parent.into()),
            content: content.unwrap_or_default(),
            modified: at.into(),
            shared_access: None,
        };
        self.items.insert(id.clone(), item);
        id
    }

    pub(crate) fn children(&self, folder: &str) -> Vec<&Item> {
        let mut children: Vec<&Item> = self
            .items
            .values()
            .filter(|i| i.parent.as_deref() == Some(folder))
            .collect();
        children.sort_by(|a, b| {
            (!a.folder, a.name.to_lowercase()).cmp(&(!b.folder, b.name.to_lowercase()))
        });
        children
    }

    pub(crate) fn name_taken(&self, folder: &str, name: &str, except: &str) -> Option<&Item> {
        self.children(folder)
            .into_iter()
            .find(|i| i.id != except && i.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn touch(&mut self, id: &str) {
        if let Some(item) = self.items.get_mut(id) {
            item.modified = now();
        }
    }

    fn mini(&self, id: &str) -> Value {
        match self.items.get(id) {
            Some(item) => {
                json!({ "type": if item.folder { "folder" } else { "file" }, "id": item.id,
                                  "sequence_id": "1", "etag": "1", "name": item.name })
            }
            None => Value::Null,
        }
    }

    fn path_collection(&self, item: &Item) -> Value {
        let mut chain = Vec::new();
        let mut parent = item.parent.clone();
        while let Some(id) = parent {
            chain.push(self.mini(&id));
            parent = self.items.get(&id).and_then(|p| p.parent.clone());
        }
        chain.reverse();
        json!({ "total_count": chain.len(), "entries": chain })
    }

    fn size(&self, item: &Item) -> usize {
        if item.folder {
            self.children(&item.id).iter().map(|c| self.size(c)).sum()
        } else {
            item.content.len()
        }
    }

    /// The standard `File` or `Folder` representation.
    pub(crate) fn full(&self, item: &Item, base: &str) -> Value {
        let user: Value = serde_json::from_str(USER).unwrap_or(Value::Null);
        let mut value = json!({
            "type": if item.folder { "folder" } else { "file" }, "id": item.id, "etag": "1", "sequence_id": "1",
            "name": item.name, "description": "", "size": self.size(item),
            "path_collection": self.path_collection(item),
            "created_at": "2026-01-01T00:00:00Z", "modified_at": item.modified,
            "trashed_at": null, "purged_at": null,
            "content_created_at": "2026-01-01T00:00:00Z", "content_modified_at": item.modified,
            "created_by": user, "modified_by": user, "owned_by": user,
            "shared_link": self.shared_link(item, base),
            "parent": item.parent.as_deref().map_or(Value::Null, |p| self.mini(p)),
            "item_status": "active",
        });
        if item.folder {
            value["folder_upload_email"] = Value::Null;
        } else {
            value["sha1"] = json!(format!("{:x}", sha1_like(&item.content)));
        }
        value
    }

    /// Only the fields a `fields=` query asked for, plus `type` and `id` (as Box does).
    pub(crate) fn with_fields(&self, item: &Item, base: &str, fields: Option<&str>) -> Value {
        let full = self.full(item, base);
        let Some(fields) = fields else { return full };
        let mut picked = serde_json::Map::new();
        for key in ["type", "id", "etag"]
            .into_iter()
            .chain(fields.split(',').map(str::trim))
        {
            if let Some(value) = full.get(key) {
                picked.insert(key.to_owned(), value.clone());
            }
        }
        Value::Object(picked)
    }

    fn shared_link(&self, item: &Item, base: &str) -> Value {
        match &item.shared_access {
            None => Value::Null,
            Some(access) => json!({
                "url": format!("https://app.box.com/s/sbx{}", item.id),
                "download_url": format!("{base}/dl/{}", item.id),
                "vanity_url": null, "vanity_name": null,
                "access": access, "effective_access": access, "effective_permission": "can_download",
                "unshared_at": null, "is_password_enabled": false,
                "permissions": { "can_download": true, "can_preview": true, "can_edit": false },
                "download_count": 0, "preview_count": 0,
            }),
        }
    }
}

/// A stable 160-bit-looking hex digest for `sha1` (the emulator has no SHA-1; Box only needs
/// the field's shape here: 40 hex characters).
fn sha1_like(bytes: &[u8]) -> Sha1Hex {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    Sha1Hex(digest[..20].to_vec())
}

struct Sha1Hex(Vec<u8>);

impl std::fmt::LowerHex for Sha1Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}
