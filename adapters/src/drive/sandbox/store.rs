//! The emulator's in-memory Drive: users with a My Drive each, one shared drive, files and
//! folders with permissions inherited down folders, seeded with deterministic fixtures (Office
//! files and PDFs built by `extract::fixtures`, Google-native files, text files, and a folder of
//! 160 logs for paging).

use std::collections::HashMap;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::extract::{
    self,
    fixtures::{self, DocxBlock, PptxSlide, XlsxCell},
};

pub(crate) const FOLDER: &str = "application/vnd.google-apps.folder";
pub(crate) const DOC: &str = "application/vnd.google-apps.document";
pub(crate) const SHEET: &str = "application/vnd.google-apps.spreadsheet";
pub(crate) const SLIDES: &str = "application/vnd.google-apps.presentation";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

/// The users of the emulated domain: login, display name, email.
pub const USERS: [(&str, &str, &str); 3] = [
    ("alice", "Alice Anderson", "alice@example.com"),
    ("bob", "Bob Brown", "bob@example.com"),
    ("carol", "Carol Chen", "carol@example.com"),
];

/// The shared drive every seeded user but carol belongs to.
pub const SHARED_DRIVE_ID: &str = "0AEngineeringSharedDrive0Uk9PVA";

/// How much one may do with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    Reader = 1,
    Commenter = 2,
    Writer = 3,
    /// Owner in My Drive, organizer in a shared drive.
    Owner = 4,
}

impl Role {
    pub(crate) fn parse(role: &str) -> Option<Self> {
        match role {
            "reader" => Some(Self::Reader),
            "commenter" => Some(Self::Commenter),
            "writer" | "fileOrganizer" => Some(Self::Writer),
            "owner" | "organizer" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// What a file holds.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// Folders.
    None,
    Bytes(Vec<u8>),
    /// A Google Doc, as Markdown.
    Doc(String),
    /// A Google Sheet: named sheets of rows.
    Sheet(Vec<(String, Vec<Vec<String>>)>),
    /// Google Slides: title, body lines, notes.
    Slides(Vec<(String, Vec<String>, String)>),
}

#[derive(Debug, Clone)]
pub(crate) struct Permission {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) role: String,
    pub(crate) email: Option<String>,
    pub(crate) display_name: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) mime_type: String,
    pub(crate) parents: Vec<String>,
    /// The owning user; `None` for items of a shared drive (the drive owns them).
    pub(crate) owner: Option<String>,
    pub(crate) drive_id: Option<String>,
    pub(crate) created: String,
    pub(crate) modified: String,
    pub(crate) description: Option<String>,
    pub(crate) trashed: bool,
    pub(crate) content: Content,
    /// Created through the API, so `drive.file` tokens may reach it.
    pub(crate) app_created: bool,
    pub(crate) permissions: Vec<Permission>,
    pub(crate) version: u64,
    /// Name, description and content text, lower case, for `fullText contains`.
    pub(crate) index: String,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) items: HashMap<String, Item>,
    /// Insertion order, so listings without `orderBy` are stable.
    pub(crate) order: Vec<String>,
    /// Shared drive id → (name, members with their role).
    pub(crate) drives: HashMap<String, (String, Vec<(String, Role)>)>,
    next_id: u64,
    clock: u64,
}

/// A Drive-like id (33 characters of `[A-Za-z0-9_-]`) from a counter.
fn make_id(n: u64) -> String {
    let digest = Sha256::digest(format!("manifold-drive-sandbox-{n}").as_bytes());
    format!("1{}", &URL_SAFE_NO_PAD.encode(digest)[..32])
}

/// `2026-03-01T09:00:00.000Z` plus `minutes`.
pub(crate) fn timestamp(minutes: u64) -> String {
    // Days since 1970-01-01 of 2026-03-01, then civil-from-days (H. Hinnant).
    let days = 20_513 + (minutes + 9 * 60) / (24 * 60);
    let minute_of_day = (minutes + 9 * 60) % (24 * 60);
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
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:00.000Z",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

pub(crate) fn user_email(login: &str) -> Option<&'static str> {
    USERS.iter().find(|u| u.0 == login).map(|u| u.2)
}

pub(crate) fn user_name(login: &str) -> Option<&'static str> {
    USERS.iter().find(|u| u.0 == login).map(|u| u.1)
}

pub(crate) fn login_of_email(email: &str) -> Option<&'static str> {
    USERS
        .iter()
        .find(|u| u.2.eq_ignore_ascii_case(email))
        .map(|u| u.0)
}

/// The id of a user's My Drive root folder.
pub(crate) fn root_id(login: &str) -> String {
    let mut name: Vec<char> = login.chars().collect();
    if let Some(first) = name.first_mut() {
        *first = first.to_ascii_uppercase();
    }
    format!(
        "0A{}RootFolder0Uk9PVA",
        name.into_iter().collect::<String>()
    )
}

/// The text of a file, for the full-text index and for exports.
pub(crate) fn text_of(content: &Content, mime_type: &str, name: &str) -> String {
    match content {
        Content::None => String::new(),
        Content::Bytes(bytes) => extract::whole_text(bytes, Some(mime_type), Some(name))
            .map(|(_, text)| text)
            .unwrap_or_default(),
        Content::Doc(markdown) => markdown.clone(),
        Content::Sheet(sheets) => sheets
            .iter()
            .map(|(name, rows)| format!("{name}\n{}", csv(rows)))
            .collect::<Vec<_>>()
            .join("\n"),
        Content::Slides(slides) => slides_text(slides),
    }
}

pub(crate) fn csv(rows: &[Vec<String>]) -> String {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|cell| {
                    if cell.contains([',', '"', '\n']) {
                        format!("\"{}\"", cell.replace('"', "\"\""))
                    } else {
                        cell.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Slides as Google's `text/plain` export gives them: each slide's text, slides apart.
pub(crate) fn slides_text(slides: &[(String, Vec<String>, String)]) -> String {
    slides
        .iter()
        .map(|(title, body, _)| {
            let mut text = title.clone();
            for line in body {
                text.push('\n');
                text.push_str(line);
            }
            text
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

impl Store {
    fn tick(&mut self) -> String {
        self.clock += 7;
        timestamp(self.clock)
    }

    pub(crate) fn now(&mut self) -> String {
        self.tick()
    }

    pub(crate) fn new_id(&mut self) -> String {
        self.next_id += 1;
        make_id(self.next_id)
    }

    /// Adds an item; its index is built from its content.
    pub(crate) fn insert(&mut self, mut item: Item) -> String {
        item.index = format!(
            "{}\n{}\n{}",
            item.name,
            item.description.as_deref().unwrap_or_default(),
            text_of(&item.content, &item.mime_type, &item.name)
        )
        .to_lowercase();
        let id = item.id.clone();
        self.order.push(id.clone());
        self.items.insert(id.clone(), item);
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        owner: Option<&str>,
        parent: &str,
        name: &str,
        mime_type: &str,
        content: Content,
        drive_id: Option<&str>,
    ) -> String {
        let id = self.new_id();
        let now = self.tick();
        self.insert(Item {
            id: id.clone(),
            name: name.to_owned(),
            mime_type: mime_type.to_owned(),
            parents: vec![parent.to_owned()],
            owner: owner.map(str::to_owned),
            drive_id: drive_id.map(str::to_owned),
            created: now.clone(),
            modified: now,
            description: None,
            trashed: false,
            content,
            app_created: false,
            permissions: Vec::new(),
            version: 1,
            index: String::new(),
        })
    }

    fn share(&mut self, id: &str, login: &str, role: &str) {
        let n = self.next_id;
        self.next_id += 1;
        if let Some(item) = self.items.get_mut(id) {
            item.permissions.push(Permission {
                id: format!("{:020}", 10_000_000 + n),
                kind: "user".into(),
                role: role.into(),
                email: user_email(login).map(str::to_owned),
                display_name: user_name(login).map(str::to_owned),
            });
        }
    }

    /// The seeded Drive.
    pub(crate) fn seeded() -> Self {
        let mut store = Self::default();
        for (login, _, _) in USERS {
            let root = root_id(login);
            store.insert(Item {
                id: root.clone(),
                name: "My Drive".into(),
                mime_type: FOLDER.into(),
                parents: Vec::new(),
                owner: Some(login.into()),
                drive_id: None,
                created: timestamp(0),
                modified: timestamp(0),
                description: None,
                trashed: false,
                content: Content::None,
                app_created: false,
                permissions: Vec::new(),
                version: 1,
                index: String::new(),
            });
        }
        store.drives.insert(
            SHARED_DRIVE_ID.into(),
            (
                "Engineering".into(),
                vec![("alice".into(), Role::Owner), ("bob".into(), Role::Writer)],
            ),
        );
        let alice = Some("alice");
        let root = root_id("alice");

        let projects = store.add(alice, &root, "Projects", FOLDER, Content::None, None);
        store.add(
            alice,
            &projects,
            "Q3 Plan.docx",
            DOCX,
            Content::Bytes(fixtures::docx(&[
                DocxBlock::Heading(1, "Q3 Plan"),
                DocxBlock::Paragraph(
                    "This quarter we migrate billing to the new ledger and ship offline mode.",
                ),
                DocxBlock::Heading(2, "Milestones"),
                DocxBlock::Bullet("July: ledger dual-writes"),
                DocxBlock::Bullet("August: offline mode beta"),
                DocxBlock::Bullet("September: cut-over"),
                DocxBlock::Table(&[
                    &["Owner", "Workstream"],
                    &["Alice", "Ledger"],
                    &["Bob", "Offline mode"],
                ]),
            ])),
            None,
        );
        store.add(
            alice,
            &projects,
            "Budget 2026.xlsx",
            XLSX,
            Content::Bytes(fixtures::xlsx(&[
                (
                    "Summary",
                    &[
                        &[
                            XlsxCell::Text("Team"),
                            XlsxCell::Text("Budget"),
                            XlsxCell::Text("Approved"),
                        ],
                        &[
                            XlsxCell::Text("Engineering"),
                            XlsxCell::Number(1_200_000.0),
                            XlsxCell::Date(46023.0),
                        ],
                        &[
                            XlsxCell::Text("Design"),
                            XlsxCell::Number(350_000.5),
                            XlsxCell::Date(46030.0),
                        ],
                    ],
                ),
                (
                    "Travel",
                    &[
                        &[XlsxCell::Text("Trip"), XlsxCell::Text("Cost")],
                        &[XlsxCell::Text("Berlin offsite"), XlsxCell::Number(18_000.0)],
                    ],
                ),
            ])),
            None,
        );
        store.add(
            alice,
            &projects,
            "Kickoff.pptx",
            PPTX,
            Content::Bytes(fixtures::pptx(&[
                PptxSlide {
                    title: "Project Falcon kickoff",
                    body: &["Why: faster checkout", "Who: payments squad"],
                    notes: "Open with the churn numbers.",
                },
                PptxSlide {
                    title: "Timeline",
                    body: &["Design in July", "Launch in October"],
                    notes: "",
                },
            ])),
            None,
        );
        store.add(
            alice,
            &projects,
            "Architecture Overview.pdf",
            "application/pdf",
            Content::Bytes(fixtures::pdf(&[
                &[
                    "Architecture Overview",
                    "The gateway fronts every provider adapter.",
                    "Requests carry a traceparent header.",
                ],
                &["Appendix: the ledger service stores entries in PostgreSQL."],
            ])),
            None,
        );
        store.add(
            alice,
            &projects,
            "Roadmap",
            DOC,
            Content::Doc(
                "# Roadmap 2026\n\nOur north star is a one-click checkout.\n\n## H1\n\n- Ledger migration\n- Offline mode\n\n## H2\n\n- Marketplace launch\n".into(),
            ),
            None,
        );
        store.add(
            alice,
            &projects,
            "Forecast",
            SHEET,
            Content::Sheet(vec![
                (
                    "Revenue".into(),
                    vec![
                        vec!["Quarter".into(), "Revenue".into()],
                        vec!["Q1".into(), "410000".into()],
                        vec!["Q2".into(), "455000".into()],
                    ],
                ),
                (
                    "Headcount".into(),
                    vec![
                        vec!["Team".into(), "People".into()],
                        vec!["Payments".into(), "12".into()],
                    ],
                ),
            ]),
            None,
        );
        store.add(
            alice,
            &projects,
            "All-hands March",
            SLIDES,
            Content::Slides(vec![
                (
                    "All-hands March".into(),
                    vec!["Wins of the month".into(), "Hiring update".into()],
                    "Thank the support team.".into(),
                ),
                (
                    "Questions".into(),
                    vec!["Ask anything".into()],
                    String::new(),
                ),
            ]),
            None,
        );
        store.add(
            alice,
            &projects,
            "meeting-notes.txt",
            "text/plain",
            Content::Bytes(
                b"Weekly sync, March 3\n- Decided: freeze the API on Friday\n- Bob follows up with legal about the marketplace terms\n".to_vec(),
            ),
            None,
        );
        store.add(
            alice,
            &projects,
            "README.md",
            "text/markdown",
            Content::Bytes(
                b"# Projects\n\nEverything for the current quarter lives here.\n".to_vec(),
            ),
            None,
        );
        store.add(
            alice,
            &projects,
            "contacts.csv",
            "text/csv",
            Content::Bytes(
                b"name,email\nAlice Anderson,alice@example.com\nBob Brown,bob@example.com\n"
                    .to_vec(),
            ),
            None,
        );
        store.add(
            alice,
            &projects,
            "status.html",
            "text/html",
            Content::Bytes(
                b"<html><body><h1>Status</h1><p>All systems <b>operational</b>.</p></body></html>"
                    .to_vec(),
            ),
            None,
        );
        let designs = store.add(alice, &projects, "Designs", FOLDER, Content::None, None);
        store.add(
            alice,
            &designs,
            "logo.png",
            "image/png",
            Content::Bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
            None,
        );

        let archive = store.add(alice, &root, "Archive", FOLDER, Content::None, None);
        for n in 1..=160 {
            store.add(
                alice,
                &archive,
                &format!("log-{n:04}.txt"),
                "text/plain",
                Content::Bytes(
                    format!("Nightly job log {n}: {} records processed.\n", n * 37).into_bytes(),
                ),
                None,
            );
        }
        let trashed = store.add(
            alice,
            &root,
            "Old draft.txt",
            "text/plain",
            Content::Bytes(b"An abandoned draft about the ledger.".to_vec()),
            None,
        );
        if let Some(item) = store.items.get_mut(&trashed) {
            item.trashed = true;
        }

        let bob_root = root_id("bob");
        let handbook = store.add(
            Some("bob"),
            &bob_root,
            "Team Handbook",
            DOC,
            Content::Doc(
                "# Team Handbook\n\nOn-call rotates weekly. Expense reports are due monthly.\n"
                    .into(),
            ),
            None,
        );
        store.share(&handbook, "alice", "reader");
        store.add(
            Some("bob"),
            &bob_root,
            "Bob private notes.txt",
            "text/plain",
            Content::Bytes(b"Surprise party for Alice on Friday.".to_vec()),
            None,
        );
        store.add(
            Some("carol"),
            &root_id("carol"),
            "Carol secret.txt",
            "text/plain",
            Content::Bytes(b"Carol's ledger password hints.".to_vec()),
            None,
        );

        let drive = Some(SHARED_DRIVE_ID);
        let specs = store.add(None, SHARED_DRIVE_ID, "Specs", FOLDER, Content::None, drive);
        store.add(
            None,
            &specs,
            "API Spec.docx",
            DOCX,
            Content::Bytes(fixtures::docx(&[
                DocxBlock::Heading(1, "Payments API"),
                DocxBlock::Paragraph("POST /v1/charges creates a charge in the ledger."),
            ])),
            drive,
        );
        store.add(
            None,
            SHARED_DRIVE_ID,
            "Oncall.md",
            "text/markdown",
            Content::Bytes(b"# On-call\n\nPage the payments squad for ledger alerts.\n".to_vec()),
            drive,
        );
        store
    }

    /// The role `login` has on item `id`: ownership, shared drive membership, or a permission on
    /// the item or any folder above it.
    pub(crate) fn role(&self, login: &str, id: &str) -> Option<Role> {
        let mut best: Option<Role> = None;
        let mut current = Some(id.to_owned());
        let mut depth = 0;
        while let Some(at) = current.take() {
            depth += 1;
            if depth > 64 {
                break;
            }
            if let Some((_, members)) = self.drives.get(&at) {
                let member = members.iter().find(|(m, _)| m == login).map(|(_, r)| *r);
                best = best.max(member);
                break;
            }
            let Some(item) = self.items.get(&at) else {
                break;
            };
            if item.owner.as_deref() == Some(login) {
                return Some(Role::Owner);
            }
            let email = user_email(login).unwrap_or_default();
            for permission in &item.permissions {
                let applies = permission.kind == "anyone"
                    || permission
                        .email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(email));
                if applies {
                    best = best.max(Role::parse(&permission.role));
                }
            }
            current = item.parents.first().cloned();
        }
        best
    }

    /// The id `root` stands for, for `login`.
    pub(crate) fn resolve_alias(login: &str, id: &str) -> String {
        if id == "root" {
            root_id(login)
        } else {
            id.to_owned()
        }
    }

    /// Ids of `id` and everything below it.
    pub(crate) fn descendants(&self, id: &str) -> Vec<String> {
        let mut found = vec![id.to_owned()];
        let mut index = 0;
        while index < found.len() {
            let parent = found[index].clone();
            for item in self.items.values() {
                if item.parents.contains(&parent) && !found.contains(&item.id) {
                    found.push(item.id.clone());
                }
            }
            index += 1;
        }
        found
    }

    /// The File resource as Drive represents it to `login`, every field.
    pub(crate) fn resource(&self, item: &Item, login: &str) -> Value {
        let role = self.role(login, &item.id);
        let is_folder = item.mime_type == FOLDER;
        let native = item.mime_type.starts_with("application/vnd.google-apps.");
        let web_view_link = match item.mime_type.as_str() {
            FOLDER => format!("https://drive.google.com/drive/folders/{}", item.id),
            DOC => format!(
                "https://docs.google.com/document/d/{}/edit?usp=drivesdk",
                item.id
            ),
            SHEET => format!(
                "https://docs.google.com/spreadsheets/d/{}/edit?usp=drivesdk",
                item.id
            ),
            SLIDES => format!(
                "https://docs.google.com/presentation/d/{}/edit?usp=drivesdk",
                item.id
            ),
            _ => format!(
                "https://drive.google.com/file/d/{}/view?usp=drivesdk",
                item.id
            ),
        };
        let can_edit = role >= Some(Role::Writer);
        let owns = role == Some(Role::Owner);
        let mut file = json!({
            "kind": "drive#file",
            "id": item.id,
            "name": item.name,
            "mimeType": item.mime_type,
            "starred": false,
            "trashed": item.trashed,
            "explicitlyTrashed": item.trashed,
            // Drive names only the parents the caller can see: a file shared with someone
            // directly shows no parent to them, not a folder they cannot open.
            "parents": item
                .parents
                .iter()
                .filter(|parent| self.role(login, parent).is_some())
                .collect::<Vec<_>>(),
            "spaces": ["drive"],
            "version": item.version.to_string(),
            "webViewLink": web_view_link,
            "iconLink": format!("https://drive-thirdparty.googleusercontent.com/16/type/{}", item.mime_type),
            "viewedByMe": item.owner.as_deref() == Some(login),
            "createdTime": item.created,
            "modifiedTime": item.modified,
            "shared": !item.permissions.is_empty() || item.drive_id.is_some(),
            "writersCanShare": true,
            "capabilities": {
                "canEdit": can_edit,
                "canComment": role >= Some(Role::Commenter),
                "canShare": can_edit,
                "canCopy": !is_folder,
                "canDownload": !is_folder,
                "canRename": can_edit,
                "canTrash": owns || (item.drive_id.is_some() && can_edit),
                "canDelete": owns,
                "canAddChildren": is_folder && can_edit,
                "canListChildren": is_folder,
                "canMoveItemWithinDrive": can_edit,
                "canReadRevisions": can_edit,
            },
        });
        if let Some(description) = &item.description {
            file["description"] = json!(description);
        }
        if let Some(owner) = &item.owner {
            file["ownedByMe"] = json!(owner == login);
            file["owners"] = json!([{
                "kind": "drive#user",
                "displayName": user_name(owner),
                "emailAddress": user_email(owner),
                "me": owner == login,
                "permissionId": format!("{:020}", owner.len() * 1_000_003),
            }]);
        }
        if let Some(drive) = &item.drive_id {
            file["driveId"] = json!(drive);
        }
        if let Content::Bytes(bytes) = &item.content {
            file["size"] = json!(bytes.len().to_string());
            file["quotaBytesUsed"] = json!(bytes.len().to_string());
            file["md5Checksum"] = json!(format!("{:x}", Sha256::digest(bytes))[..32].to_owned());
            file["headRevisionId"] = json!(format!("0B{}", item.version));
            if let Some((_, extension)) = item.name.rsplit_once('.') {
                file["fileExtension"] = json!(extension);
                file["fullFileExtension"] = json!(extension);
            }
            file["originalFilename"] = json!(item.name);
        } else if !is_folder {
            file["quotaBytesUsed"] = json!("0");
        }
        if native && !is_folder {
            let links: serde_json::Map<String, Value> = super::export::formats(&item.mime_type)
                .iter()
                .map(|mime| {
                    (
                        (*mime).to_owned(),
                        json!(format!(
                            "https://docs.google.com/feeds/download/export?id={}&exportFormat={mime}",
                            item.id
                        )),
                    )
                })
                .collect();
            file["exportLinks"] = Value::Object(links);
        }
        file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_count_from_march_2026() {
        assert_eq!(timestamp(0), "2026-03-01T09:00:00.000Z");
        assert_eq!(timestamp(15 * 60), "2026-03-02T00:00:00.000Z");
        assert_eq!(timestamp(31 * 24 * 60), "2026-04-01T09:00:00.000Z");
    }

    #[test]
    fn seeded_drive_has_the_fixtures_and_inherited_roles() {
        let store = Store::seeded();
        let archive = store
            .items
            .values()
            .find(|i| i.name == "Archive")
            .expect("archive");
        let logs = store
            .items
            .values()
            .filter(|i| i.parents.contains(&archive.id))
            .count();
        assert!(logs >= 150);
        let handbook = store
            .items
            .values()
            .find(|i| i.name == "Team Handbook")
            .expect("handbook");
        assert_eq!(store.role("alice", &handbook.id), Some(Role::Reader));
        assert_eq!(store.role("carol", &handbook.id), None);
        let spec = store
            .items
            .values()
            .find(|i| i.name == "API Spec.docx")
            .expect("spec");
        assert_eq!(store.role("bob", &spec.id), Some(Role::Writer));
        assert!(spec.index.contains("post /v1/charges"));
        assert_eq!(make_id(1).len(), 33);
    }
}
