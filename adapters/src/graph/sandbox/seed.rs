//! The seeded tenant: alice and bob with mailboxes (over 120 messages, some with attachments),
//! two teams with channels, threads and chats, and two sites whose drives hold docx, xlsx, pptx,
//! pdf and text files.

use std::io::Write as _;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use super::store::{ChannelPost, Item, Mail, Store};

const TOPICS: [&str; 6] = [
    "Budget review",
    "Quarterly planning",
    "Release notes",
    "Customer escalation",
    "Team offsite",
    "Security audit",
];

/// The emulated tenant's id, on its users' chat memberships.
pub(crate) const TENANT_ID: &str = "5f1c2d3e-0a1b-4c2d-9e3f-000000000001";

fn person(name: &str, address: &str) -> Value {
    json!({ "emailAddress": { "name": name, "address": address } })
}

/// A minimal Office Open XML package: content types plus one part with the text.
fn office(kind: &str, text: &str) -> Vec<u8> {
    let (part, xml) = match kind {
        "docx" => (
            "word/document.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"#
            ),
        ),
        "xlsx" => (
            "xl/worksheets/sheet1.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>{text}</t></is></c></row></sheetData></worksheet>"#
            ),
        ),
        _ => (
            "ppt/slides/slide1.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
            ),
        ),
    };
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#;
        for (name, body) in [("[Content_Types].xml", types.to_owned()), (part, xml)] {
            if zip.start_file(name, options).is_ok() {
                let _ = zip.write_all(body.as_bytes());
            }
        }
        let _ = zip.finish();
    }
    buffer.into_inner()
}

fn pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    format!("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj\n4 0 obj<</Length {}>>stream\n{stream}\nendstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n", stream.len()).into_bytes()
}

/// Messages whose people are in the demo policies' domain (`example.com`) or outside it, for the
/// tests that replies, forwards and draft sends are decided on whom they really reach: kept in
/// alice's archive and drafts, so the seeded inbox stays as it is.
fn fact_fixtures(store: &mut Store) {
    let fixtures = [
        (
            "AAMkmsg-facts-internal",
            "archive",
            person("Bob", "bob@example.com"),
            json!([]),
            vec![person("Alice", "alice@example.com")],
            vec![person("Dan", "dan@example.com")],
            vec![],
        ),
        (
            "AAMkmsg-facts-external-cc",
            "archive",
            person("Bob", "bob@example.com"),
            json!([]),
            vec![person("Alice", "alice@example.com")],
            vec![person("Eve", "eve@evil.test")],
            vec![],
        ),
        (
            "AAMkmsg-facts-external-sender",
            "archive",
            person("Eve", "Eve@Evil.Test"),
            json!([]),
            vec![person("Alice", "alice@example.com")],
            vec![],
            vec![],
        ),
        (
            "AAMkmsg-facts-reply-to",
            "archive",
            person("Bob", "bob@example.com"),
            json!([person("Eve", "eve@ＥＶＩＬ．test")]),
            vec![person("Alice", "alice@example.com")],
            vec![],
            vec![],
        ),
        (
            "AAMkmsg-facts-unreadable",
            "archive",
            person("Bob", "bob@example.com"),
            json!([person("Eve", "Eve <eve@evil.test>, bob@example.com")]),
            vec![],
            vec![],
            vec![],
        ),
        (
            "AAMkmsg-draft-internal",
            "drafts",
            person("Alice", "alice@example.com"),
            json!([]),
            vec![person("Bob", "bob@example.com")],
            vec![person("Dan", "DAN@example.com")],
            vec![],
        ),
        (
            "AAMkmsg-draft-external-bcc",
            "drafts",
            person("Alice", "alice@example.com"),
            json!([]),
            vec![person("Bob", "bob@example.com")],
            vec![],
            vec![person("Eve", "eve@evil.test")],
        ),
    ];
    for (id, folder, from, reply_to, to, cc, bcc) in fixtures {
        let message = json!({
            "id": id, "subject": format!("Facts fixture {id}"), "from": from, "replyTo": reply_to,
            "toRecipients": to, "ccRecipients": cc, "bccRecipients": bcc,
            "receivedDateTime": "2026-11-02T09:00:00Z", "isRead": true, "isDraft": folder == "drafts", "hasAttachments": false,
            "bodyPreview": "A fixture.", "body": { "contentType": "text", "content": "A fixture." },
            "parentFolderId": format!("AAMkfolder-alice-{folder}"), "webLink": format!("https://outlook.office.com/mail/id/{id}"),
        });
        store.mail.push(Mail {
            owner: "alice".to_owned(),
            message,
            attachments: Vec::new(),
        });
    }
}

fn mailboxes(store: &mut Store) {
    for (login, name) in [("alice", "Alice Adams"), ("bob", "Bob Brown")] {
        // The demo's people are @example.com (its identity provider and policies say so); a chat
        // member's address is the user's `mail`, so the tenant's users have it there too.
        store.users.push(json!({ "id": format!("u-{login}"), "displayName": name, "mail": format!("{login}@example.com") }));
        for (well_known, display) in [
            ("inbox", "Inbox"),
            ("sentitems", "Sent Items"),
            ("drafts", "Drafts"),
            ("archive", "Archive"),
            ("deleteditems", "Deleted Items"),
        ] {
            store.folders.push((login.to_owned(), json!({ "id": format!("AAMkfolder-{login}-{well_known}"), "displayName": display, "parentFolderId": format!("AAMkroot-{login}"), "childFolderCount": 0, "wellKnownName": well_known })));
        }
    }
    for n in 0..135_usize {
        let (owner, folder) = match n {
            0..=89 => ("alice", "inbox"),
            90..=109 => ("alice", "archive"),
            110..=124 => ("alice", "sentitems"),
            _ => ("bob", "inbox"),
        };
        let topic = TOPICS[n % TOPICS.len()];
        let html = n % 3 == 0;
        let content = if html {
            format!(
                "<html><body><p>Hello,</p><p>Notes on <b>{topic}</b> item {n}.</p><p>Regards &amp; thanks</p></body></html>"
            )
        } else {
            format!("Hello,\nNotes on {topic} item {n}.\nRegards")
        };
        let id = format!("AAMkmsg-seed-{n:03}");
        let day = 1 + n % 28;
        let mut attachments = Vec::new();
        if n % 10 == 0 {
            let (name, content_type, bytes) = if n == 0 {
                (
                    "brief.docx",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    office("docx", "Project brief for the budget review"),
                )
            } else {
                (
                    if n % 20 == 0 {
                        "figures.csv"
                    } else {
                        "notes.txt"
                    },
                    if n % 20 == 0 {
                        "text/csv"
                    } else {
                        "text/plain"
                    },
                    format!("quarter,amount\nQ{},{}\n", n % 4 + 1, n * 100).into_bytes(),
                )
            };
            attachments.push(json!({ "@odata.type": "#microsoft.graph.fileAttachment", "id": format!("AAMkatt-{n:03}"), "name": name,
                "contentType": content_type, "size": bytes.len(), "isInline": false, "lastModifiedDateTime": "2026-11-01T09:00:00Z", "contentBytes": STANDARD.encode(&bytes) }));
        }
        let message = json!({
            "id": id, "subject": format!("{topic} #{n}"),
            "from": if owner == "alice" && folder != "sentitems" { person("Bob Brown", "bob@contoso.example") } else { person("Alice Adams", "alice@contoso.example") },
            "toRecipients": [person("Alice Adams", "alice@contoso.example")], "ccRecipients": [], "bccRecipients": [],
            "receivedDateTime": format!("2026-10-{day:02}T{:02}:00:00Z", n % 24), "isRead": n % 4 != 0, "hasAttachments": !attachments.is_empty(),
            "bodyPreview": format!("Hello, notes on {topic} item {n}."), "body": { "contentType": if html { "html" } else { "text" }, "content": content },
            "parentFolderId": format!("AAMkfolder-{owner}-{folder}"), "webLink": format!("https://outlook.office.com/mail/id/{id}"),
        });
        store.mail.push(Mail {
            owner: owner.to_owned(),
            message,
            attachments,
        });
    }
}

fn teams(store: &mut Store) {
    let from = |login: &str, name: &str| json!({ "user": { "id": format!("u-{login}"), "displayName": name } });
    for (team, name, members) in [
        ("team-eng", "Engineering", vec!["alice", "bob"]),
        ("team-fin", "Finance", vec!["alice"]),
    ] {
        store.teams.push((
            json!({ "id": team, "displayName": name, "description": format!("The {name} team") }),
            members.iter().map(|m| (*m).to_owned()).collect(),
        ));
        for channel in ["General", "Announcements"] {
            let channel_id = format!("19:{team}-{}@thread.tacv2", channel.to_lowercase());
            store.channels.push((team.to_owned(), json!({ "id": channel_id, "displayName": channel, "description": format!("{channel} of {name}"), "membershipType": "standard" })));
            for n in 0..30 {
                let message = json!({ "id": format!("{team}-{}-{n:03}", channel.to_lowercase()), "messageType": "message", "createdDateTime": format!("2026-11-{:02}T10:00:00Z", 1 + n % 28),
                    "subject": format!("Thread {n}"), "body": { "contentType": "html", "content": format!("<p>{channel} update {n}: deploy <b>pipeline</b> status</p>") },
                    "from": from("alice", "Alice Adams"), "webUrl": format!("https://teams.microsoft.com/l/message/{n}"),
                    "channelIdentity": { "teamId": team, "channelId": channel_id } });
                let replies = (0..(n % 3)).map(|r| json!({ "id": format!("{team}-{}-{n:03}-r{r}", channel.to_lowercase()), "messageType": "message", "replyToId": message["id"],
                    "createdDateTime": "2026-11-15T11:00:00Z", "subject": null, "body": { "contentType": "text", "content": format!("Reply {r} to thread {n}") },
                    "from": from("bob", "Bob Brown"), "webUrl": null, "channelIdentity": { "teamId": team, "channelId": channel_id } })).collect();
                store.posts.push(ChannelPost {
                    team: team.to_owned(),
                    channel: channel_id.clone(),
                    message,
                    replies,
                });
            }
        }
    }
    for (chat, topic, kind) in [
        ("19:chat-ab@unq.gbl.spaces", Value::Null, "oneOnOne"),
        ("19:chat-group@thread.v2", json!("Launch crew"), "group"),
    ] {
        store.chats.push((json!({ "id": chat, "topic": topic, "chatType": kind, "createdDateTime": "2026-10-01T08:00:00Z", "lastUpdatedDateTime": "2026-11-18T08:00:00Z" }), vec!["alice".into(), "bob".into()]));
        for n in 0..25 {
            let login = if n % 2 == 0 {
                ("alice", "Alice Adams")
            } else {
                ("bob", "Bob Brown")
            };
            store.chat_messages.push((chat.to_owned(), json!({ "id": format!("{chat}-{n:03}"), "messageType": "message", "chatId": chat, "createdDateTime": format!("2026-11-{:02}T09:00:00Z", 1 + n % 28),
                "subject": null, "body": { "contentType": "text", "content": format!("Chat line {n} about the launch checklist") }, "from": from(login.0, login.1), "webUrl": null })));
        }
    }
}

/// A chat member who is not one of the emulator's users: another tenant's guest or an internal
/// colleague without a login here, with the address Graph lists (`email`, which may be null).
fn member(n: usize, name: &str, email: Value, tenant: &str) -> Value {
    json!({ "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": format!("MCMjMjRmY2-member-{n}"), "roles": [], "displayName": name,
        "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z", "userId": format!("u-member-{n}"),
        "email": email, "tenantId": tenant })
}

/// Chats whose members are inside `example.com` or not, for the tests that a chat message is
/// decided on whom it reaches (its members), not on its `chat_id`: after the seeded chats, so
/// alice's first chat stays the one with bob.
fn chat_fixtures(store: &mut Store) {
    let outside_tenant = "9a8b7c6d-0000-4000-8000-00000000beef";
    let staff: Vec<Value> = (0..30)
        .map(|n| {
            member(
                n,
                &format!("Staff {n}"),
                json!(format!("staff{n}@example.com")),
                TENANT_ID,
            )
        })
        .collect();
    let partner = member(99, "Pat Partner", json!("pat@partner.test"), outside_tenant);
    let fixtures = [
        (
            "19:facts-partner@thread.v2",
            "Partner sync",
            vec![partner.clone()],
        ),
        // A guest Graph lists without an address.
        (
            "19:facts-guest-no-email@thread.v2",
            "Vendor call",
            vec![member(98, "Guest", Value::Null, outside_tenant)],
        ),
        // More members than one page; in the second chat the outsider is on the second page.
        ("19:facts-all-hands@thread.v2", "All hands", staff.clone()),
        (
            "19:facts-all-hands-partner@thread.v2",
            "All hands with a partner",
            staff.into_iter().chain([partner]).collect(),
        ),
    ];
    for (chat, topic, others) in fixtures {
        store.chats.push((json!({ "id": chat, "topic": topic, "chatType": "group", "createdDateTime": "2026-10-01T08:00:00Z", "lastUpdatedDateTime": "2026-11-18T08:00:00Z" }), vec!["alice".into(), "bob".into()]));
        store
            .chat_others
            .extend(others.into_iter().map(|m| (chat.to_owned(), m)));
    }
}

fn sites(store: &mut Store) {
    let big: String = (0..6000)
        .map(|n| format!("Line {n:05} of the archived handbook.\n"))
        .collect();
    for (site, name, display) in [
        (
            "contoso.sharepoint.com,site-mkt,web-mkt",
            "marketing",
            "Marketing",
        ),
        (
            "contoso.sharepoint.com,site-hr,web-hr",
            "hr",
            "Human Resources",
        ),
    ] {
        store.sites.push(json!({ "id": site, "name": name, "displayName": display, "description": format!("{display} team site"), "webUrl": format!("https://contoso.sharepoint.com/sites/{name}"), "createdDateTime": "2025-01-01T00:00:00Z" }));
        let drive = format!("b!drive-{name}");
        store.drives.push((site.to_owned(), json!({ "id": drive, "name": "Documents", "driveType": "documentLibrary", "webUrl": format!("https://contoso.sharepoint.com/sites/{name}/Shared%20Documents") })));
        store.items.push(Item { drive: drive.clone(), parent: None, value: json!({ "id": format!("root-{drive}"), "name": "root", "folder": { "childCount": 0 }, "size": 0, "root": {}, "webUrl": format!("https://contoso.sharepoint.com/sites/{name}/Shared%20Documents") }), content: Vec::new() });
        let root = format!("root-{drive}");
        let _ = super::files::put(store, &drive, &root, "Reports", None, "fail");
        let reports = store
            .items
            .last()
            .and_then(|i| i.value["id"].as_str())
            .unwrap_or_default()
            .to_owned();
        let files: Vec<(&str, &str, Vec<u8>)> = vec![
            (
                root.as_str(),
                "readme.txt",
                format!("Welcome to the {display} site. Quarterly roadmap inside.").into_bytes(),
            ),
            (
                root.as_str(),
                "contacts.csv",
                b"name,email\nAlice,alice@contoso.example\nBob,bob@contoso.example\n".to_vec(),
            ),
            (root.as_str(), "handbook.txt", big.clone().into_bytes()),
            (
                reports.as_str(),
                "plan.docx",
                office("docx", "Quarterly roadmap plan"),
            ),
            (
                reports.as_str(),
                "numbers.xlsx",
                office("xlsx", "Revenue 1200"),
            ),
            (
                reports.as_str(),
                "deck.pptx",
                office("pptx", "Roadmap slide"),
            ),
            (reports.as_str(), "summary.pdf", pdf("Roadmap summary")),
        ];
        for (parent, file, bytes) in files {
            let _ = super::files::put(store, &drive, parent, file, Some(bytes), "fail");
        }
        for n in 0..30 {
            let _ = super::files::put(
                store,
                &drive,
                &root,
                &format!("note-{n:02}.md"),
                Some(format!("# Note {n}\n").into_bytes()),
                "fail",
            );
        }
    }
}

pub(crate) fn tenant() -> Store {
    let mut store = Store::default();
    mailboxes(&mut store);
    fact_fixtures(&mut store);
    teams(&mut store);
    chat_fixtures(&mut store);
    sites(&mut store);
    store
}
