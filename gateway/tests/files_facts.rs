//! Folder and link rules decide on where an item really is and whom a link really reaches,
//! through `manifold demo`, its emulators and its shipped guards (`drive-shared-folders`,
//! `no-public-links`), over many generated spellings rather than one example each:
//! - Drive: every item of the shared folders and of others, by id, by each kind of link and by
//!   path in every spelling the path walk accepts (and some it refuses: `..`, other letter
//!   case), at nesting depths to four, and an item moved out after it was allowed; the expected
//!   answer comes from where the test put or found each item, never from the spelling.
//! - Dropbox: paths with no link and with an existing link of each audience, asked for each
//!   audience, in case and slash variants and by `id:`, against a model of the links the
//!   emulator holds after each allowed call.
//! - Box: each access level, left out or given, for a writer and an admin.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;

use serde_json::{Value, json};
use support::{
    decision::{Want, decided, last_record},
    demo::Demo,
};

/// The shared folders `drive-shared-folders` lists.
const ENGINEERING_DRIVE: &str = "0AEngineeringSharedDrive0Uk9PVA";
const PROJECTS: &str = "1Sb0NIo8jIuUmvlwWV1CiGSvtSXvAVo64";

async fn call(demo: &Demo, token: &str, name: &str, arguments: Value) -> Value {
    demo.call_tool(token, name, arguments).await
}

fn structured(answer: &Value) -> &Value {
    &answer["result"]["structuredContent"]
}

// === Drive ===

/// One Drive item as the test found or made it.
#[derive(Debug, Clone)]
struct Item {
    id: String,
    /// From My Drive's root; `None` for items reached only by id (a shared drive, shared with me).
    path: Option<String>,
    folder: bool,
    /// Whether it lies in (or is) a shared folder.
    inside: bool,
}

/// The children of a folder as staff see them, given the folder's path when it has one.
async fn children(
    demo: &Demo,
    token: &str,
    folder: &str,
    path: Option<&str>,
    inside: bool,
) -> Vec<Item> {
    let listed = call(
        demo,
        token,
        "drive_list_folder",
        json!({"folder": folder, "page_size": 4}),
    )
    .await;
    structured(&listed)["files"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|file| {
            let name = file["name"].as_str().unwrap();
            Item {
                id: file["id"].as_str().unwrap().to_owned(),
                path: path.map(|p| format!("{p}/{name}")),
                folder: file["kind"] == "folder",
                inside,
            }
        })
        .collect()
}

/// The id of the first item named `name`, found as staff.
async fn find_by_name(demo: &Demo, token: &str, name: &str) -> String {
    let found = call(
        demo,
        token,
        "drive_search_files",
        json!({"query": name, "match": "name"}),
    )
    .await;
    structured(&found)["files"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{found}"))
        .to_owned()
}

/// What the adapter reads as an id rather than a path: letters, digits, `-` and `_`.
fn is_id_like(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Every way to name `item`, each with whether it names `item` (else it names nothing).
fn spellings(item: &Item) -> Vec<(String, bool)> {
    let id = &item.id;
    let link = if item.folder {
        format!("https://drive.google.com/drive/folders/{id}")
    } else {
        format!("https://docs.google.com/document/d/{id}/edit?usp=sharing")
    };
    let mut out = vec![(id.clone(), true), (link, true)];
    let Some(path) = &item.path else {
        out.push((format!("https://drive.google.com/open?id={id}"), true));
        return out;
    };
    let names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
    let bare = path.trim_start_matches('/');
    out.extend([
        (path.clone(), true),
        (format!("My Drive/{}/", names.join("//")), true),
        (format!("/ {} ", names.join(" / ")), true),
        // Without a slash, one name reads as an id (as a Drive id would), which it is not.
        (bare.to_owned(), bare.contains('/') || !is_id_like(bare)),
        // Drive names are matched exactly: another letter case names nothing (unless equal).
        (path.to_uppercase(), path.to_uppercase() == *path),
        // `..` is a name like any other, which no folder has: nothing to escape through.
        (format!("/Projects/../{}", names.join("/")), false),
    ]);
    out
}

/// Checks every spelling of every item as a contractor against where the item lies; a spelling
/// that names nothing is outside every shared folder for them, and unreadable for staff.
async fn check_items(demo: &Demo, (contractor, staff): (&str, &str), items: &[Item]) -> usize {
    let mut tried = 0;
    for (index, item) in items.iter().enumerate() {
        for (n, (spelling, names_it)) in spellings(item).into_iter().enumerate() {
            let want = if names_it && item.inside {
                Want::Allow
            } else {
                Want::Denied("drive-shared-folders")
            };
            let answer = decided(
                demo,
                contractor,
                "drive_get_file",
                json!({"file": spelling}),
                want,
            )
            .await;
            if want == Want::Allow {
                assert_eq!(
                    structured(&answer)["file"]["id"],
                    item.id.as_str(),
                    "{answer}"
                );
            }
            tried += 1;
            if !names_it && index % 3 == 0 {
                decided(
                    demo,
                    staff,
                    "drive_get_file",
                    json!({"file": spelling}),
                    Want::Unreadable,
                )
                .await;
                tried += 1;
            }
            // Listing reads the folder the same way: by id and by path are enough.
            if item.folder && (n == 0 || n == 2) {
                decided(
                    demo,
                    contractor,
                    "drive_list_folder",
                    json!({"folder": spelling}),
                    want,
                )
                .await;
                tried += 1;
            }
        }
    }
    tried
}

#[tokio::test]
async fn drive_items_are_confined_by_where_they_lie_in_every_spelling_and_depth() {
    let demo = Demo::start(&[]);
    let staff = demo.token("alice");
    let contractor = demo.token_with_groups("alice", &["contractors"]);
    let mut items = vec![Item {
        id: PROJECTS.into(),
        path: Some("/Projects".into()),
        folder: true,
        inside: true,
    }];
    items.extend(children(&demo, &staff, "/Projects", Some("/Projects"), true).await);
    items.extend(
        children(
            &demo,
            &staff,
            "/Projects/Designs",
            Some("/Projects/Designs"),
            true,
        )
        .await,
    );
    items.extend(children(&demo, &staff, "/Archive", Some("/Archive"), false).await);
    // My Drive's root holds Projects too: it is inside, and already listed.
    let root = children(&demo, &staff, "root", Some(""), false).await;
    items.extend(root.into_iter().filter(|item| item.id != PROJECTS));
    // The shared drive and what is shared with alice directly are reached by id only.
    let specs = find_by_name(&demo, &staff, "Specs").await;
    let oncall = find_by_name(&demo, &staff, "Oncall").await;
    let handbook = find_by_name(&demo, &staff, "Team Handbook").await;
    let got = call(&demo, &staff, "drive_get_file", json!({"file": oncall})).await;
    assert_eq!(
        structured(&got)["file"]["parents"],
        json!([ENGINEERING_DRIVE]),
        "{got}"
    );
    items.push(Item {
        id: specs.clone(),
        path: None,
        folder: true,
        inside: true,
    });
    items.extend(children(&demo, &staff, &specs, None, true).await);
    items.push(Item {
        id: oncall,
        path: None,
        folder: false,
        inside: true,
    });
    items.push(Item {
        id: handbook,
        path: None,
        folder: false,
        inside: false,
    });
    assert!(items.len() >= 14, "{}", items.len());
    assert!(items.iter().filter(|i| !i.inside).count() >= 5);

    // Depth: a chain of four folders inside a shared folder and one outside, each named by id
    // and by path.
    let mut nested = Vec::new();
    for (top, inside) in [("/Projects", true), ("/Archive", false)] {
        let mut path = top.to_owned();
        for depth in 1..=4 {
            let name = format!("level {depth}");
            let made = call(
                &demo,
                &staff,
                "drive_create_folder",
                json!({"name": name, "parent": path}),
            )
            .await;
            path = format!("{path}/{name}");
            nested.push(Item {
                id: structured(&made)["folder"]["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{made}"))
                    .to_owned(),
                path: Some(path.clone()),
                folder: true,
                inside,
            });
        }
    }
    let who = (contractor.as_str(), staff.as_str());
    let tried = check_items(&demo, who, &items).await + check_items(&demo, who, &nested).await;

    // Decided by where the item is now: a file allowed by id is denied by the same id once moved
    // out, and its old path names nothing.
    let uploaded = call(
        &demo,
        &staff,
        "drive_upload_file",
        json!({"name": "moving.txt", "content": "x", "folder": "/Projects/level 1"}),
    )
    .await;
    let moving = structured(&uploaded)["file"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(
        &demo,
        &contractor,
        "drive_read_file",
        json!({"file": moving}),
        Want::Allow,
    )
    .await;
    // Moving is destructive: an admin's (not a contractor).
    let admin = demo.token_with_groups("alice", &["admins"]);
    let moved = call(
        &demo,
        &admin,
        "drive_move_file",
        json!({"file": moving, "new_parent": "/Archive/level 1"}),
    )
    .await;
    assert_eq!(moved["result"]["isError"], false, "{moved}");
    for (file, want) in [
        (moving.clone(), Want::Denied("drive-shared-folders")),
        (
            "/Archive/level 1/moving.txt".into(),
            Want::Denied("drive-shared-folders"),
        ),
        (
            "/Projects/level 1/moving.txt".into(),
            Want::Denied("drive-shared-folders"),
        ),
    ] {
        decided(
            &demo,
            &contractor,
            "drive_read_file",
            json!({"file": file}),
            want,
        )
        .await;
    }
    assert!(tried >= 180, "{tried}");
}

// === Dropbox ===

/// Whom a link works for, ordered narrowest first, as the tool's audience words.
const AUDIENCES: [&str; 3] = ["no_one", "team", "public"];

fn rank(audience: &str) -> usize {
    AUDIENCES.iter().position(|a| *a == audience).unwrap()
}

#[tokio::test]
async fn dropbox_links_are_decided_on_the_link_the_path_really_gets() {
    let demo = Demo::start(&[]);
    let writer = demo.token("alice");
    // Uploading may replace a file: destructive, so an admin's (the emulator has one Dropbox).
    let admin = demo.token_with_groups("bob", &["admins"]);
    // The emulator's links, by lower-cased path: seeded ones, then each one an allowed call makes.
    let mut links: HashMap<String, &str> = HashMap::from([
        ("/reports/sales.csv".into(), "public"),
        ("/reports/readme.md".into(), "team"),
        ("/reports/meeting-notes.txt".into(), "no_one"),
    ]);
    let mut paths: Vec<String> = vec![
        "/Reports/sales.csv".into(),
        "/Reports/README.md".into(),
        "/Reports/meeting-notes.txt".into(),
    ];
    for n in 0..4 {
        let path = format!("/Gen/fresh-{n}.txt");
        let made = call(
            &demo,
            &admin,
            "dropbox_upload_file",
            json!({"path": path, "content": "x"}),
        )
        .await;
        assert_eq!(made["result"]["isError"], false, "{made}");
        paths.push(path);
    }
    let mut tried = 0;
    for (n, path) in paths.iter().enumerate() {
        let meta = call(
            &demo,
            &writer,
            "dropbox_get_metadata",
            json!({"path": path}),
        )
        .await;
        let id = structured(&meta)["entry"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Dropbox paths are case-insensitive; a leading slash is added and a trailing one
        // dropped before Dropbox sees them.
        let spellings = [
            path.clone(),
            path.to_uppercase(),
            path.trim_start_matches('/').to_owned(),
            format!("{path}/"),
            id,
        ];
        // Each path is asked for every audience in an order of its own, so fresh paths get their
        // first link at each audience.
        let order: Vec<&str> = (0..3).map(|k| AUDIENCES[(n + k) % 3]).collect();
        for spelling in &spellings {
            for asked in order.iter().copied().chain([""]) {
                let key = path.to_lowercase();
                let asked_word = if asked.is_empty() { "public" } else { asked };
                let existing = links.get(&key).copied();
                let widest = existing.map_or(rank(asked_word), |e| rank(e).max(rank(asked_word)));
                let want = if widest == 2 {
                    Want::Denied("no-public-links")
                } else {
                    Want::Allow
                };
                let mut arguments = json!({"path": spelling});
                if !asked.is_empty() {
                    arguments["audience"] = json!(asked);
                }
                let answer =
                    decided(&demo, &writer, "dropbox_create_share_link", arguments, want).await;
                tried += 1;
                if want == Want::Allow {
                    let link = structured(&answer);
                    let now = *links.entry(key).or_insert(asked_word);
                    assert_eq!(link["audience"], now, "{spelling} {asked}: {answer}");
                    assert_eq!(link["existing"], existing.is_some(), "{answer}");
                }
            }
        }
    }
    // A path that does not exist: nothing to read, denied before Dropbox is asked to link it.
    decided(
        &demo,
        &writer,
        "dropbox_create_share_link",
        json!({"path": "/Gen/none.txt", "audience": "team"}),
        Want::Unreadable,
    )
    .await;
    assert!(tried >= 140, "{tried}");
}

// === Box ===

/// Forbids that name the audience Cedar sees, for a probing group only: a probe's denial says
/// which `context.link_audience` the call had, and changes nothing.
const PROBES: &str = r#"
@id("probe-anyone")
@reason("probe: anyone")
forbid (principal in Group::"link-probe", action == Action::"call", resource)
when { context.link_audience == "anyone" };

@id("probe-organization")
@reason("probe: organization")
forbid (principal in Group::"link-probe", action == Action::"call", resource)
when { context.link_audience == "organization" };

@id("probe-invited")
@reason("probe: invited")
forbid (principal in Group::"link-probe", action == Action::"call", resource)
when { context.link_audience == "invited" };
"#;

#[tokio::test]
async fn box_links_are_decided_on_the_access_the_link_is_set_to() {
    let demo = Demo::start(&[]);
    // Box's link tool replaces the file's one link (destructive): admins only, whom
    // `no-public-links` exempts, so the audience is read through probes.
    let admin = demo.token_with_groups("bob", &["admins"]);
    let probe = demo.token_with_groups("bob", &["admins", "link-probe"]);
    std::fs::write(demo.data_dir().join("policies/probes.cedar"), PROBES).unwrap();
    let root = call(&demo, &admin, "box_list_folder", json!({"folder_id": "0"})).await;
    let mut files = Vec::new();
    for folder in structured(&root)["entries"].as_array().unwrap() {
        let listed = call(
            &demo,
            &admin,
            "box_list_folder",
            json!({"folder_id": folder["id"], "limit": 2}),
        )
        .await;
        for entry in structured(&listed)["entries"].as_array().unwrap() {
            if entry["type"] == "file" {
                files.push(entry["id"].as_str().unwrap().to_owned());
            }
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    // The policy directory is watched: wait for the probes to load.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        call(
            &demo,
            &probe,
            "box_create_share_link",
            json!({"file_id": files[0], "access": "company"}),
        )
        .await;
        if last_record(&demo)["policies"] == json!(["probe-organization"]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the probes did not load"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut tried = 0;
    for file in &files {
        // Narrowing and widening the one link, in both orders; left out is `open`.
        for access in [
            "collaborators",
            "open",
            "company",
            "",
            "collaborators",
            "open",
        ] {
            let mut arguments = json!({"file_id": file});
            if !access.is_empty() {
                arguments["access"] = json!(access);
            }
            let (set, seen) = match access {
                "collaborators" => ("collaborators", "probe-invited"),
                "company" => ("company", "probe-organization"),
                _ => ("open", "probe-anyone"),
            };
            decided(
                &demo,
                &probe,
                "box_create_share_link",
                arguments.clone(),
                Want::Denied(seen),
            )
            .await;
            let answer = decided(
                &demo,
                &admin,
                "box_create_share_link",
                arguments,
                Want::Allow,
            )
            .await;
            assert_eq!(structured(&answer)["access"], set, "{answer}");
            tried += 2;
        }
    }
    assert!(tried >= 48, "{tried}");
}
