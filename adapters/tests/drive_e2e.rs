//! End-to-end: each Drive tool through the adapter against the running emulator, including
//! paging, every readable format, writes, sharing, errors, rate limits and OAuth scopes.
#![allow(clippy::expect_used)]

mod drive_support;

use std::collections::HashSet;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use drive_support::{BOB, FILE, FULL, METADATA_READONLY, READONLY, ctx};
use manifold_adapters::{ToolError, extract::fixtures};
use serde_json::{Value, json};

fn names(output: &Value) -> Vec<String> {
    output["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn tools_are_described_completely_and_honestly() {
    let env = drive_support::start().await;
    let tools = env.adapter.tools().current();
    assert_eq!(tools.len(), 9);
    for tool in &tools {
        for schema in [&tool.input_schema, &tool.output_schema] {
            assert_eq!(schema["type"], "object", "{}", tool.name);
            jsonschema::validator_for(&Value::Object(schema.clone())).expect("schema compiles");
        }
        assert_eq!(
            tool.input_schema["additionalProperties"], false,
            "{}",
            tool.name
        );
        assert!(
            tool.description.len() > 80,
            "{} needs a real description",
            tool.name
        );
        assert_eq!(tool.scopes.len(), 1, "{}", tool.name);
        let read =
            ["search_files", "list_folder", "get_file", "read_file"].contains(&tool.name.as_str());
        assert_eq!(tool.annotations.read_only, read, "{}", tool.name);
        // Closed world but for sharing, which may reach anyone (`tests/annotations.rs`).
        assert_eq!(
            tool.annotations.open_world,
            tool.name == "share_file",
            "{}",
            tool.name
        );
        if read {
            assert!(!tool.annotations.destructive && tool.annotations.idempotent);
            assert!(
                [READONLY, METADATA_READONLY].contains(&tool.scopes[0].as_str()),
                "{}",
                tool.name
            );
        }
    }
    let by_name = |n: &str| tools.iter().find(|t| t.name == n).expect("tool");
    assert!(by_name("delete_file").annotations.destructive);
    assert!(by_name("move_file").annotations.destructive);
    assert!(!by_name("upload_file").annotations.idempotent);
    assert!(
        !by_name("share_file").annotations.idempotent,
        "sharing again emails again"
    );
    assert_eq!(by_name("upload_file").scopes, [FILE]);
    assert_eq!(by_name("create_folder").scopes, [FILE]);
    for name in ["move_file", "delete_file", "share_file"] {
        assert_eq!(by_name(name).scopes, [FULL], "{name}");
    }
}

#[tokio::test]
async fn lists_root_then_a_folder_by_path() {
    let env = drive_support::start().await;
    let root = env
        .call("list_folder", json!({}))
        .await
        .expect("root")
        .structured;
    assert_eq!(root["folder"]["name"], "My Drive");
    assert_eq!(
        names(&root),
        ["Archive", "Projects"],
        "folders first, trashed file hidden"
    );
    assert_eq!(root["next_cursor"], Value::Null);

    let projects = env
        .call("list_folder", json!({ "folder": "/Projects" }))
        .await
        .expect("projects");
    let listed = names(&projects.structured);
    assert_eq!(listed[0], "Designs");
    for expected in [
        "Q3 Plan.docx",
        "Budget 2026.xlsx",
        "Roadmap",
        "Forecast",
        "status.html",
    ] {
        assert!(
            listed.contains(&expected.to_owned()),
            "{expected} in {listed:?}"
        );
    }
    assert!(projects.text.contains("Q3 Plan.docx"));
    let designs = env
        .call("list_folder", json!({ "folder": "Projects/Designs" }))
        .await
        .expect("designs")
        .structured;
    assert_eq!(names(&designs), ["logo.png"]);
}

#[tokio::test]
async fn pages_through_a_folder_of_160_files() {
    let env = drive_support::start().await;
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let mut args = json!({ "folder": "/Archive", "page_size": 50 });
        if !cursor.is_null() {
            args["cursor"] = cursor.clone();
        }
        let out = env
            .call("list_folder", args)
            .await
            .expect("page")
            .structured;
        pages += 1;
        seen.extend(names(&out));
        cursor = out["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), 160);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        160,
        "no file twice"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "by name");

    // A cursor is bound to its tool and arguments.
    let first = env
        .call(
            "list_folder",
            json!({ "folder": "/Archive", "page_size": 10 }),
        )
        .await
        .expect("first")
        .structured;
    let stolen = json!({ "folder": "/Projects", "cursor": first["next_cursor"] });
    assert!(matches!(
        env.call("list_folder", stolen).await,
        Err(ToolError::InvalidArguments(_))
    ));
}

#[tokio::test]
async fn searches_content_and_names_across_drives() {
    let env = drive_support::start().await;
    let found = env
        .call("search_files", json!({ "query": "ledger" }))
        .await
        .expect("search")
        .structured;
    let hits = names(&found);
    for expected in [
        "Q3 Plan.docx",
        "Architecture Overview.pdf",
        "API Spec.docx",
        "Oncall.md",
    ] {
        assert!(
            hits.contains(&expected.to_owned()),
            "{expected} in {hits:?}"
        );
    }
    assert!(!hits.contains(&"Old draft.txt".to_owned()), "trashed");
    assert!(
        !hits.contains(&"Carol secret.txt".to_owned()),
        "not shared with alice"
    );
    let spec = found["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["name"] == "API Spec.docx")
        .expect("spec");
    assert_eq!(spec["drive_id"], "0AEngineeringSharedDrive0Uk9PVA");

    let docs = env
        .call(
            "search_files",
            json!({ "query": "ledger", "kind": "document" }),
        )
        .await
        .expect("docs")
        .structured;
    assert!(docs["files"].as_array().expect("files").iter().all(|f| {
        f["kind"] == "google_doc"
            || f["mime_type"]
                .as_str()
                .expect("mime")
                .contains("wordprocessingml")
    }));
    let by_name = env
        .call(
            "search_files",
            json!({ "query": "budget", "match": "name" }),
        )
        .await
        .expect("name")
        .structured;
    assert_eq!(names(&by_name), ["Budget 2026.xlsx"]);
    let in_folder = env
        .call(
            "search_files",
            json!({ "query": "job", "folder": "/Archive", "page_size": 100 }),
        )
        .await
        .expect("folder")
        .structured;
    assert_eq!(in_folder["files"].as_array().expect("files").len(), 100);
    assert!(in_folder["next_cursor"].is_string());
    let shared = env
        .call(
            "search_files",
            json!({ "query": "handbook", "match": "name" }),
        )
        .await
        .expect("shared with me")
        .structured;
    assert_eq!(names(&shared), ["Team Handbook"]);

    let my_drive_only = drive_support::start_with(
        json!({ "shared_drives": false })
            .as_object()
            .cloned()
            .expect("settings"),
    )
    .await;
    let hits = names(
        &my_drive_only
            .call("search_files", json!({ "query": "ledger" }))
            .await
            .expect("search")
            .structured,
    );
    assert!(!hits.contains(&"API Spec.docx".to_owned()), "{hits:?}");
    assert!(hits.contains(&"Q3 Plan.docx".to_owned()));
}

#[tokio::test]
async fn reads_every_format_as_text() {
    let env = drive_support::start().await;
    let cases: [(&str, &str, &[&str]); 11] = [
        (
            "/Projects/Q3 Plan.docx",
            "docx",
            &[
                "# Q3 Plan",
                "- July: ledger dual-writes",
                "| Alice | Ledger |",
            ],
        ),
        (
            "/Projects/Budget 2026.xlsx",
            "xlsx",
            &[
                "## Sheet: Summary",
                "Engineering,1200000,2026-01-01",
                "## Sheet: Travel",
            ],
        ),
        (
            "/Projects/Kickoff.pptx",
            "pptx",
            &[
                "## Slide 1: Project Falcon kickoff",
                "Notes:\nOpen with the churn numbers.",
            ],
        ),
        (
            "/Projects/Architecture Overview.pdf",
            "pdf",
            &[
                "## Page 1",
                "The gateway fronts every provider adapter.",
                "## Page 2",
            ],
        ),
        (
            "/Projects/Roadmap",
            "markdown",
            &["# Roadmap 2026", "- Ledger migration"],
        ),
        (
            "/Projects/Forecast",
            "xlsx",
            &[
                "## Sheet: Revenue",
                "Q1,410000",
                "## Sheet: Headcount",
                "Payments,12",
            ],
        ),
        (
            "/Projects/All-hands March",
            "text",
            &["All-hands March\nWins of the month", "Questions"],
        ),
        (
            "/Projects/meeting-notes.txt",
            "text",
            &["freeze the API on Friday"],
        ),
        ("/Projects/README.md", "markdown", &["# Projects"]),
        (
            "/Projects/contacts.csv",
            "csv",
            &["Bob Brown,bob@example.com"],
        ),
        (
            "/Projects/status.html",
            "html",
            &["Status\n\nAll systems operational."],
        ),
    ];
    for (path, format, expected) in cases {
        let out = env
            .call("read_file", json!({ "file": path }))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .structured;
        assert_eq!(out["format"], format, "{path}");
        let text = out["text"].as_str().expect("text");
        for piece in expected {
            assert!(text.contains(piece), "{path}: {piece:?} not in\n{text}");
        }
        assert_eq!(out["next_offset"], Value::Null);
    }
    let picture = env
        .call("read_file", json!({ "file": "/Projects/Designs/logo.png" }))
        .await;
    assert!(matches!(picture, Err(ToolError::InvalidArguments(m)) if m.contains("image/png")));
    let folder = env.call("read_file", json!({ "file": "/Projects" })).await;
    assert!(matches!(folder, Err(ToolError::InvalidArguments(m)) if m.contains("list_folder")));
    let shared_doc = env
        .call(
            "read_file",
            json!({ "file": env.id_of("Team Handbook").await }),
        )
        .await
        .expect("shared doc")
        .structured;
    assert!(
        shared_doc["text"]
            .as_str()
            .expect("text")
            .contains("On-call rotates weekly")
    );
}

#[tokio::test]
async fn long_text_comes_in_windows() {
    let env = drive_support::start().await;
    env.clear_requests().await;
    let whole = env
        .call("read_file", json!({ "file": "/Projects/Q3 Plan.docx" }))
        .await
        .expect("whole")
        .structured;
    let total = whole["total_chars"].as_u64().expect("total");
    let mut offset = 0;
    let mut joined = String::new();
    let mut calls = 0;
    loop {
        let out = env
            .call(
                "read_file",
                json!({ "file": "/Projects/Q3 Plan.docx", "offset": offset, "max_chars": 100 }),
            )
            .await
            .expect("window");
        calls += 1;
        joined.push_str(out.structured["text"].as_str().expect("text"));
        match out.structured["next_offset"].as_u64() {
            Some(next) => {
                assert!(out.text.contains(&format!("offset {next}")));
                offset = next;
            }
            None => break,
        }
    }
    assert_eq!(joined, whole["text"].as_str().expect("text"));
    assert_eq!(calls, total.div_ceil(100));
    let downloads = env
        .requests()
        .await
        .iter()
        .filter(|r| r["query"]["alt"] == "media")
        .count();
    assert_eq!(
        downloads, 1,
        "the text is extracted once and windows come from the cache"
    );

    // Another credential does not share the cache, and a new version is read afresh.
    let bob_reads = env
        .call_as(
            BOB,
            "read_file",
            json!({ "file": env.id_of("Q3 Plan.docx").await }),
        )
        .await;
    assert!(matches!(bob_reads, Err(ToolError::NotFound(_))));
    env.call(
        "move_file",
        json!({ "file": "/Projects/Q3 Plan.docx", "new_name": "Q3 Plan v2.docx" }),
    )
    .await
    .expect("rename");
    env.clear_requests().await;
    env.call("read_file", json!({ "file": "/Projects/Q3 Plan v2.docx" }))
        .await
        .expect("read renamed");
    assert!(
        env.requests()
            .await
            .iter()
            .any(|r| r["query"]["alt"] == "media")
    );
}

#[tokio::test]
async fn gets_metadata_by_id_path_and_link() {
    let env = drive_support::start().await;
    let by_path = env
        .call("get_file", json!({ "file": "/Projects/Budget 2026.xlsx" }))
        .await
        .expect("path");
    let file = &by_path.structured["file"];
    assert_eq!(file["kind"], "file");
    assert!(file["size_bytes"].as_u64().expect("size") > 500);
    assert_eq!(file["owners"][0]["email"], "alice@example.com");
    assert!(
        by_path
            .text
            .contains("Owners: Alice Anderson <alice@example.com>")
    );
    let id = file["id"].as_str().expect("id");
    let link = file["web_view_link"].as_str().expect("link");
    let by_link = env
        .call("get_file", json!({ "file": link }))
        .await
        .expect("link");
    assert_eq!(by_link.structured["file"]["id"], id);
    let by_id = env
        .call("get_file", json!({ "file": id }))
        .await
        .expect("id");
    assert_eq!(by_id.structured, by_path.structured);

    let missing = env
        .call("get_file", json!({ "file": "/Projects/nope.txt" }))
        .await;
    assert!(matches!(missing, Err(ToolError::NotFound(m)) if m.contains("nope.txt")));
    let unknown = env
        .call("get_file", json!({ "file": "1DoesNotExist" }))
        .await;
    assert!(matches!(unknown, Err(ToolError::NotFound(m)) if m.contains("File not found")));
}

#[tokio::test]
async fn uploads_creates_moves_renames_and_deletes() {
    let env = drive_support::start().await;
    let folder = env
        .call("create_folder", json!({ "name": "Reports" }))
        .await
        .expect("folder")
        .structured["folder"]
        .clone();
    assert_eq!(folder["kind"], "folder");
    let note = env
        .call(
            "upload_file",
            json!({ "name": "summary.md", "content": "# Summary\n\nAll good — ünïcode too.", "folder": "/Reports" }),
        )
        .await
        .expect("upload")
        .structured["file"]
        .clone();
    assert_eq!(note["mime_type"], "text/markdown");
    assert_eq!(note["parents"][0], folder["id"]);
    let read = env
        .call("read_file", json!({ "file": "/Reports/summary.md" }))
        .await
        .expect("read back")
        .structured;
    assert_eq!(read["text"], "# Summary\n\nAll good — ünïcode too.");

    let docx = fixtures::docx(&[fixtures::DocxBlock::Paragraph("Uploaded as binary")]);
    let binary = env
        .call(
            "upload_file",
            json!({ "name": "memo.docx", "content_base64": STANDARD.encode(&docx) }),
        )
        .await
        .expect("binary")
        .structured["file"]
        .clone();
    assert_eq!(binary["size_bytes"], docx.len());
    let text = env
        .call("read_file", json!({ "file": binary["id"] }))
        .await
        .expect("read docx")
        .structured;
    assert_eq!(text["text"], "Uploaded as binary");

    let moved = env
        .call("move_file", json!({ "file": "/memo.docx", "new_parent": "/Reports", "new_name": "memo-final.docx" }))
        .await
        .expect("move");
    assert_eq!(moved.structured["file"]["name"], "memo-final.docx");
    assert_eq!(moved.structured["file"]["parents"], json!([folder["id"]]));
    assert!(moved.text.contains("Moved and renamed"));
    let back = env
        .call(
            "move_file",
            json!({ "file": "/Reports/memo-final.docx", "new_parent": "root" }),
        )
        .await
        .expect("back to root");
    let root_id = env
        .call("list_folder", json!({}))
        .await
        .expect("root")
        .structured["folder"]["id"]
        .clone();
    assert_eq!(back.structured["file"]["parents"], json!([root_id]));
    let into_itself = env
        .call(
            "move_file",
            json!({ "file": "/Reports", "new_parent": "/Reports" }),
        )
        .await;
    assert!(matches!(into_itself, Err(ToolError::InvalidArguments(_))));

    let trashed = env
        .call("delete_file", json!({ "file": "/Reports/summary.md" }))
        .await
        .expect("trash")
        .structured;
    assert_eq!(trashed["outcome"], "trashed");
    let listing = env
        .call("list_folder", json!({ "folder": "/Reports" }))
        .await
        .expect("list");
    assert!(names(&listing.structured).is_empty());
    let gone = env
        .call(
            "delete_file",
            json!({ "file": "/Reports", "permanently": true }),
        )
        .await
        .expect("delete")
        .structured;
    assert_eq!(gone["outcome"], "deleted");
    let after = env.call("get_file", json!({ "file": folder["id"] })).await;
    assert!(matches!(after, Err(ToolError::NotFound(_))));

    let neither = env.call("upload_file", json!({ "name": "x.txt" })).await;
    assert!(matches!(neither, Err(ToolError::InvalidArguments(_))));
    let bad = env
        .call(
            "upload_file",
            json!({ "name": "x.bin", "content_base64": "***" }),
        )
        .await;
    assert!(matches!(bad, Err(ToolError::InvalidArguments(_))));
    let into_file = env
        .call(
            "upload_file",
            json!({ "name": "x.txt", "content": "x", "folder": "/Projects/README.md" }),
        )
        .await;
    assert!(matches!(into_file, Err(ToolError::InvalidArguments(m)) if m.contains("not a folder")));
}

#[tokio::test]
async fn owners_delete_others_cannot() {
    let env = drive_support::start().await;
    let handbook = env.id_of("Team Handbook").await;
    let refused = env.call("delete_file", json!({ "file": handbook })).await;
    assert!(
        matches!(refused, Err(ToolError::Forbidden(m)) if m.contains("sufficient permissions"))
    );
    let rename = env
        .call(
            "move_file",
            json!({ "file": handbook, "new_name": "Mine now" }),
        )
        .await;
    assert!(
        matches!(rename, Err(ToolError::Forbidden(_))),
        "alice only reads it"
    );
}

#[tokio::test]
async fn shares_a_file_so_the_other_user_sees_it() {
    let env = drive_support::start().await;
    let before = env
        .call_as(BOB, "get_file", json!({ "file": "/Projects/Roadmap" }))
        .await;
    assert!(
        matches!(before, Err(ToolError::NotFound(_))),
        "bob has no Projects folder"
    );
    let id = env.id_of("Roadmap").await;
    let hidden = env.call_as(BOB, "get_file", json!({ "file": id })).await;
    assert!(matches!(hidden, Err(ToolError::NotFound(_))));
    let shared = env
        .call(
            "share_file",
            json!({ "file": "/Projects/Roadmap", "email": "bob@example.com", "role": "commenter", "message": "Have a look" }),
        )
        .await
        .expect("share");
    let permission = &shared.structured["permission"];
    assert_eq!(permission["role"], "commenter");
    assert_eq!(permission["email"], "bob@example.com");
    assert_eq!(permission["display_name"], "Bob Brown");
    let seen = env
        .call_as(BOB, "read_file", json!({ "file": id }))
        .await
        .expect("bob reads it");
    assert!(
        seen.structured["text"]
            .as_str()
            .expect("text")
            .contains("one-click checkout")
    );
}

#[tokio::test]
async fn credentials_are_required_and_checked() {
    let env = drive_support::start().await;
    let none = env.call_with("list_folder", json!({}), &ctx(None)).await;
    assert!(matches!(none, Err(ToolError::Unauthorized(m)) if m.contains("connect Google Drive")));
    let wrong = env
        .call_with("list_folder", json!({}), &ctx(Some("ya29.forged")))
        .await;
    assert!(matches!(wrong, Err(ToolError::Unauthorized(m)) if m.contains("reconnect")));
    let token = env.token("alice", &[METADATA_READONLY]).await;
    env.call_as(&token, "list_folder", json!({}))
        .await
        .expect("fresh token works");
    env.control("/_sandbox/expire_tokens", json!({})).await;
    let expired = env.call_as(&token, "list_folder", json!({})).await;
    assert!(matches!(expired, Err(ToolError::Unauthorized(_))));
}

#[tokio::test]
async fn retries_429_and_403_rate_limits_then_gives_up() {
    let env = drive_support::start().await;
    env.clear_requests().await;
    env.control(
        "/_sandbox/throttle",
        json!({ "fail_next": 2, "retry_after_secs": 0 }),
    )
    .await;
    env.call("get_file", json!({ "file": "root" }))
        .await
        .expect("after two 429s");
    assert_eq!(env.requests().await.len(), 3);

    env.clear_requests().await;
    env.control("/_sandbox/rate_limit_403", json!({ "fail_next": 2 }))
        .await;
    // A write: a 403 rate limit means Drive did nothing, so it is sent again too.
    env.call("create_folder", json!({ "name": "After backoff" }))
        .await
        .expect("after two 403 rate limits");
    let requests = env.requests().await;
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r["method"] == "POST"));

    env.control("/_sandbox/rate_limit_403", json!({ "fail_next": 50 }))
        .await;
    let started = std::time::Instant::now();
    let limited = env.call("get_file", json!({ "file": "root" })).await;
    assert!(
        matches!(limited, Err(ToolError::RateLimited { .. })),
        "{limited:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    env.control("/_sandbox/rate_limit_403", json!({ "fail_next": 0 }))
        .await;
}

#[tokio::test]
async fn each_tool_works_with_exactly_its_declared_scopes() {
    let env = drive_support::start().await;
    let scopes = |name: &str| -> Vec<String> {
        env.adapter
            .tools()
            .current()
            .into_iter()
            .find(|t| t.name == name)
            .expect("tool")
            .scopes
    };
    let token_for = |name: &'static str| {
        let scopes = scopes(name);
        let env = &env;
        async move {
            let refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
            env.token("alice", &refs).await
        }
    };
    let meta = token_for("list_folder").await;
    env.call_as(&meta, "list_folder", json!({ "folder": "/Projects" }))
        .await
        .expect("list");
    env.call_as(&meta, "get_file", json!({ "file": "/Projects/Roadmap" }))
        .await
        .expect("get");
    let content = env
        .call_as(&meta, "read_file", json!({ "file": "/Projects/Roadmap" }))
        .await;
    assert!(
        matches!(&content, Err(ToolError::Forbidden(m)) if m.contains("not granted")),
        "metadata scope reads no content: {content:?}"
    );

    let read = token_for("read_file").await;
    env.call_as(&read, "search_files", json!({ "query": "ledger" }))
        .await
        .expect("search");
    env.call_as(&read, "read_file", json!({ "file": "/Projects/Roadmap" }))
        .await
        .expect("read");
    let write = env
        .call_as(&read, "create_folder", json!({ "name": "x" }))
        .await;
    assert!(matches!(write, Err(ToolError::Forbidden(_))));

    let file = token_for("upload_file").await;
    env.call_as(&file, "create_folder", json!({ "name": "App folder" }))
        .await
        .expect("drive.file creates in root");
    env.call_as(
        &file,
        "upload_file",
        json!({ "name": "a.txt", "content": "a", "folder": "/App folder" }),
    )
    .await
    .expect("drive.file writes into its own folder");
    let foreign = env.id_of("Projects").await;
    let refused = env
        .call_as(
            &file,
            "upload_file",
            json!({ "name": "b.txt", "content": "b", "folder": foreign }),
        )
        .await;
    assert!(
        matches!(&refused, Err(ToolError::Forbidden(m) | ToolError::NotFound(m)) if m.contains("folders it created")),
        "drive.file cannot add to the user's own folders: {refused:?}"
    );

    let full = token_for("delete_file").await;
    env.call_as(
        &full,
        "move_file",
        json!({ "file": "/Projects/README.md", "new_name": "READ ME.md" }),
    )
    .await
    .expect("move");
    env.call_as(&full, "share_file", json!({ "file": "/Projects/READ ME.md", "email": "carol@example.com", "role": "reader", "notify": false }))
        .await
        .expect("share");
    env.call_as(
        &full,
        "delete_file",
        json!({ "file": "/Projects/READ ME.md" }),
    )
    .await
    .expect("delete");
}
