//! End to end: each Dropbox tool through the adapter against the running emulator.
#![allow(clippy::expect_used)]

mod files;

use std::{collections::HashSet, sync::Arc};

use manifold_adapters::{
    ToolError,
    dropbox::{DropboxKind, sandbox::DEMO_TOKEN},
};
use serde_json::json;

async fn start() -> files::Env {
    files::start(Arc::new(DropboxKind), DEMO_TOKEN).await
}

#[tokio::test]
async fn tools_have_object_schemas_scopes_and_honest_annotations() {
    let env = start().await;
    let tools = env.adapter.tools().current();
    assert_eq!(tools.len(), 9);
    for tool in &tools {
        assert_eq!(
            tool.input_schema["additionalProperties"], false,
            "{}",
            tool.name
        );
        assert_eq!(tool.output_schema["type"], "object");
        assert!(!tool.scopes.is_empty());
        let reads = ["search_files", "list_folder", "get_metadata", "read_file"]
            .contains(&tool.name.as_str());
        assert_eq!(tool.annotations.read_only, reads, "{}", tool.name);
        // Closed world but for sharing, which may reach anyone (`tests/annotations.rs`).
        assert_eq!(
            tool.annotations.open_world,
            tool.name == "create_share_link",
            "{}",
            tool.name
        );
    }
    let delete = tools
        .iter()
        .find(|t| t.name == "delete_item")
        .expect("delete");
    assert!(delete.annotations.destructive && delete.annotations.idempotent);
}

#[tokio::test]
async fn lists_a_large_folder_past_two_pages() {
    let env = start().await;
    let (ids, pages) = env
        .page_all(
            "list_folder",
            json!({ "path": "/Archive", "limit": 50 }),
            "entries",
        )
        .await;
    assert_eq!((ids.len(), pages), (160, 4));
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        160,
        "no duplicates across pages"
    );
    let root = env
        .call("list_folder", json!({}))
        .await
        .expect("root")
        .structured;
    let names: Vec<&str> = root["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert!(
        names.contains(&"Reports") && names.contains(&"Archive"),
        "{names:?}"
    );
}

#[tokio::test]
async fn searches_names_and_contents_with_paging() {
    let env = start().await;
    let (ids, pages) = env
        .page_all(
            "search_files",
            json!({ "query": "note", "path": "/Archive", "filename_only": true, "limit": 60 }),
            "matches",
        )
        .await;
    assert_eq!((ids.len(), pages), (160, 3));
    let content = env
        .call("search_files", json!({ "query": "launch march" }))
        .await
        .expect("search")
        .structured;
    let names: Vec<&str> = content["matches"]
        .as_array()
        .expect("m")
        .iter()
        .map(|m| m["name"].as_str().expect("n"))
        .collect();
    assert_eq!(names, ["meeting-notes.txt"]);
    let tampered = env
        .call("search_files", json!({ "query": "other", "cursor": "abc" }))
        .await;
    assert!(matches!(tampered, Err(ToolError::InvalidArguments(_))));
}

#[tokio::test]
async fn reads_text_formats_and_a_large_file_in_pieces() {
    let env = start().await;
    let csv = env
        .call("read_file", json!({ "path": "/Reports/sales.csv" }))
        .await
        .expect("csv")
        .structured;
    assert_eq!(
        (csv["format"].as_str(), csv["next_offset"].is_null()),
        (Some("csv"), true)
    );
    assert!(csv["text"].as_str().expect("t").contains("north,1200"));
    let html = env
        .call("read_file", json!({ "path": "/reports/STATUS.html" }))
        .await
        .expect("html")
        .structured;
    assert!(
        html["text"]
            .as_str()
            .expect("t")
            .contains("All systems & services green.")
    );
    let (mut offset, mut text, mut reads) = (0u64, String::new(), 0);
    loop {
        let out = env.call("read_file", json!({ "path": "/Logs/server-2026.log.txt", "offset": offset, "max_chars": 50000 }))
            .await.expect("piece").structured;
        text.push_str(out["text"].as_str().expect("text"));
        reads += 1;
        match out["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(reads, 3);
    assert!(text.ends_with("line 01999: the quick brown fox jumps over the lazy dog\n"));
    assert_eq!(text.lines().count(), 2000);
    files::text_or_unsupported(
        env.call(
            "read_file",
            json!({ "path": "/Reports/quarterly-summary.docx" }),
        )
        .await,
        "twelve percent",
    );
    files::text_or_unsupported(
        env.call("read_file", json!({ "path": "/Reports/handbook.pdf" }))
            .await,
        "vacation",
    );
}

#[tokio::test]
async fn uploads_read_back_organise_share_and_delete() {
    let env = start().await;
    let folder = env
        .call("create_folder", json!({ "path": "/Projects/Grüße" }))
        .await
        .expect("folder")
        .structured;
    assert_eq!(folder["entry"]["type"], "folder");
    let up = env
        .call(
            "upload_file",
            json!({ "path": "/Projects/Grüße/plan.md", "content": "# Plan\nShip it — soon.\n" }),
        )
        .await
        .expect("upload")
        .structured;
    assert_eq!(up["entry"]["size"], "# Plan\nShip it — soon.\n".len());
    let read = env
        .call("read_file", json!({ "path": up["entry"]["id"] }))
        .await
        .expect("read")
        .structured;
    assert_eq!(read["text"], "# Plan\nShip it — soon.\n");
    let again = env
        .call(
            "upload_file",
            json!({ "path": "/Projects/Grüße/plan.md", "content": "x" }),
        )
        .await;
    assert!(matches!(again, Err(ToolError::InvalidArguments(m)) if m.contains("already taken")));
    let renamed = env
        .call(
            "upload_file",
            json!({ "path": "/Projects/Grüße/plan.md", "content": "x", "autorename": true }),
        )
        .await
        .expect("autorename")
        .structured;
    assert_eq!(renamed["entry"]["name"], "plan (1).md");
    let moved = env
        .call(
            "move_item",
            json!({ "from_path": "/Projects/Grüße/plan.md", "to_path": "/Reports/plan-final.md" }),
        )
        .await
        .expect("move")
        .structured;
    assert_eq!(moved["entry"]["path"], "/Reports/plan-final.md");
    assert_eq!(moved["entry"]["id"], up["entry"]["id"]);
    let meta = env
        .call("get_metadata", json!({ "path": "/reports/plan-final.md" }))
        .await
        .expect("meta")
        .structured;
    assert_eq!(meta["entry"]["name"], "plan-final.md");
    let link = env
        .call(
            "create_share_link",
            json!({ "path": "/Reports/plan-final.md", "audience": "team" }),
        )
        .await
        .expect("link")
        .structured;
    assert_eq!(
        (link["existing"].as_bool(), link["audience"].as_str()),
        (Some(false), Some("team"))
    );
    let same = env
        .call(
            "create_share_link",
            json!({ "path": "/Reports/plan-final.md" }),
        )
        .await
        .expect("again")
        .structured;
    assert_eq!(
        (same["existing"].as_bool(), &same["url"]),
        (Some(true), &link["url"])
    );
    let deleted = env
        .call("delete_item", json!({ "path": "/Reports/plan-final.md" }))
        .await
        .expect("delete")
        .structured;
    assert_eq!(deleted["entry"]["type"], "file");
    let gone = env
        .call("get_metadata", json!({ "path": "/Reports/plan-final.md" }))
        .await;
    assert!(matches!(gone, Err(ToolError::NotFound(_))), "{gone:?}");
    // The non-ASCII path travelled escaped in the Dropbox-API-Arg header.
    let log = env.recorded().await;
    let header = log
        .iter()
        .find(|r| r["route"] == "files/upload")
        .and_then(|r| r["api_arg_header"].as_str())
        .expect("upload recorded");
    assert!(
        header.is_ascii() && header.contains("Gr\\u00fc\\u00dfe"),
        "{header}"
    );
}

#[tokio::test]
async fn maps_route_errors_throttling_and_expired_tokens() {
    let env = start().await;
    let missing = env.call("read_file", json!({ "path": "/nope.txt" })).await;
    assert!(matches!(missing, Err(ToolError::NotFound(m)) if m.contains("does not exist")));
    let moved = env
        .call(
            "move_item",
            json!({ "from_path": "/nope", "to_path": "/x" }),
        )
        .await;
    assert!(matches!(moved, Err(ToolError::NotFound(m)) if m.contains("source")));
    let not_folder = env
        .call("list_folder", json!({ "path": "/Reports/sales.csv" }))
        .await;
    assert!(
        matches!(not_folder, Err(ToolError::InvalidArguments(_))),
        "{not_folder:?}"
    );

    env.control(
        "/_sandbox/throttle",
        json!({ "fail_next": 2, "retry_after_secs": 0 }),
    )
    .await;
    env.call("get_metadata", json!({ "path": "/Reports" }))
        .await
        .expect("succeeds after 429s");
    env.control(
        "/_sandbox/throttle",
        json!({ "fail_next": 50, "retry_after_secs": 0 }),
    )
    .await;
    let limited = env
        .call("get_metadata", json!({ "path": "/Reports" }))
        .await;
    assert!(
        matches!(limited, Err(ToolError::RateLimited { .. })),
        "{limited:?}"
    );
    env.control("/_sandbox/throttle", json!({ "fail_next": 0 }))
        .await;

    let unknown = env
        .call_with("list_folder", json!({}), &files::ctx(Some("sl.bogus")))
        .await;
    assert!(
        matches!(unknown, Err(ToolError::Unauthorized(m)) if m.contains("invalid_access_token"))
    );
    let none = env
        .call_with("list_folder", json!({}), &files::ctx(None))
        .await;
    assert!(matches!(none, Err(ToolError::Unauthorized(_))));
}

#[tokio::test]
async fn an_oauth_token_works_until_it_expires() {
    let env = start().await;
    let (access, _refresh) = files::oauth::tokens(&env, "files.metadata.read").await;
    assert!(access.starts_with("sl."), "{access}");
    let ctx = files::ctx(Some(&access));
    env.call_with("list_folder", json!({}), &ctx)
        .await
        .expect("a fresh OAuth token works");
    env.control("/_sandbox/expire_tokens", json!({})).await;
    let expired = env.call_with("list_folder", json!({}), &ctx).await;
    assert!(
        matches!(&expired, Err(ToolError::Unauthorized(m)) if m.contains("expired_access_token")),
        "{expired:?}"
    );
}
