//! End to end: each Box tool through the adapter against the running emulator, plus the
//! emulator's OAuth server with single-use refresh tokens.
#![allow(clippy::expect_used)]

mod files;

use std::{collections::HashSet, sync::Arc};

use manifold_adapters::{
    AdapterKind, ToolError,
    boxcom::{BoxKind, sandbox::DEMO_TOKEN},
};
use serde_json::json;

async fn start() -> files::Env {
    files::start(Arc::new(BoxKind), DEMO_TOKEN).await
}

async fn folder_id(env: &files::Env, name: &str) -> String {
    let root = env
        .call("list_folder", json!({ "folder_id": "0" }))
        .await
        .expect("root")
        .structured;
    root["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["id"].as_str())
        .expect("folder")
        .to_owned()
}

async fn file_id(env: &files::Env, query: &str) -> String {
    let found = env
        .call(
            "search_files",
            json!({ "query": query, "names_only": true, "type": "file" }),
        )
        .await
        .expect("search")
        .structured;
    found["matches"][0]["id"]
        .as_str()
        .expect("match")
        .to_owned()
}

#[tokio::test]
async fn tools_have_scopes_and_honest_annotations() {
    let env = start().await;
    for tool in env.adapter.tools().current() {
        let reads =
            ["search_files", "list_folder", "get_item", "read_file"].contains(&tool.name.as_str());
        assert_eq!(tool.annotations.read_only, reads, "{}", tool.name);
        assert_eq!(
            tool.scopes,
            [if reads {
                "root_readonly"
            } else {
                "root_readwrite"
            }],
            "{}",
            tool.name
        );
    }
    let spec = BoxKind.oauth().expect("oauth");
    assert!(spec.rotating_refresh_tokens);
}

#[tokio::test]
async fn pages_folder_items_by_marker_and_search_by_offset() {
    let env = start().await;
    let archive = folder_id(&env, "Archive").await;
    let (ids, pages) = env
        .page_all(
            "list_folder",
            json!({ "folder_id": archive, "limit": 70 }),
            "entries",
        )
        .await;
    assert_eq!((ids.len(), pages), (160, 3));
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 160);
    let (hits, pages) = env
        .page_all(
            "search_files",
            json!({ "query": "note", "folder_id": archive, "limit": 100 }),
            "matches",
        )
        .await;
    assert_eq!((hits.len(), pages), (160, 2));
    let content = env
        .call(
            "search_files",
            json!({ "query": "invoice", "folder_id": archive }),
        )
        .await
        .expect("content")
        .structured;
    assert_eq!(content["matches"].as_array().expect("m").len(), 16);
    let log = env.recorded().await;
    assert!(log.iter().any(|r| {
        r["query"]
            .as_str()
            .is_some_and(|q| q.contains("usemarker=true") && q.contains("marker="))
    }));
}

#[tokio::test]
async fn reads_files_through_redirects_and_not_ready_answers() {
    let env = start().await;
    let id = file_id(&env, "meeting-notes").await;
    env.control("/_sandbox/content_not_ready", json!({ "count": 2 }))
        .await;
    let notes = env
        .call("read_file", json!({ "file_id": id }))
        .await
        .expect("read")
        .structured;
    assert!(
        notes["text"]
            .as_str()
            .expect("t")
            .contains("launch is planned")
    );
    let log_id = file_id(&env, "server-2026").await;
    let (mut offset, mut text, mut reads) = (0u64, String::new(), 0);
    loop {
        let out = env
            .call(
                "read_file",
                json!({ "file_id": log_id, "offset": offset, "max_chars": 40000 }),
            )
            .await
            .expect("piece")
            .structured;
        text.push_str(out["text"].as_str().expect("t"));
        reads += 1;
        match out["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!((reads, text.lines().count()), (3, 2000));
    files::text_or_unsupported(
        env.call(
            "read_file",
            json!({ "file_id": file_id(&env, "roadmap").await }),
        )
        .await,
        "Roadmap 2026",
    );
    files::text_or_unsupported(
        env.call(
            "read_file",
            json!({ "file_id": file_id(&env, "handbook").await }),
        )
        .await,
        "vacation",
    );
}

#[tokio::test]
async fn uploads_read_back_move_share_and_delete() {
    let env = start().await;
    let folder = env
        .call(
            "create_folder",
            json!({ "parent_id": "0", "name": "Drafts" }),
        )
        .await
        .expect("folder")
        .structured;
    let drafts = folder["entry"]["id"].as_str().expect("id").to_owned();
    let dup = env
        .call(
            "create_folder",
            json!({ "parent_id": "0", "name": "drafts" }),
        )
        .await;
    assert!(matches!(dup, Err(ToolError::InvalidArguments(m)) if m.contains("item_name_in_use")));
    let up = env.call("upload_file", json!({ "folder_id": drafts, "name": "résumé \"v1\".md", "content": "# Résumé\nline two\n" }))
        .await.expect("upload").structured;
    let id = up["entry"]["id"].as_str().expect("id").to_owned();
    assert_eq!(up["entry"]["parent_id"], drafts.as_str());
    let read = env
        .call("read_file", json!({ "file_id": id }))
        .await
        .expect("read")
        .structured;
    assert_eq!(
        (read["text"].as_str(), read["format"].as_str()),
        (Some("# Résumé\nline two\n"), Some("markdown"))
    );
    let reports = folder_id(&env, "Reports").await;
    let moved = env
        .call(
            "move_file",
            json!({ "file_id": id, "parent_id": reports, "name": "cv.md" }),
        )
        .await
        .expect("move")
        .structured;
    assert_eq!(
        (
            moved["entry"]["name"].as_str(),
            moved["entry"]["parent_id"].as_str()
        ),
        (Some("cv.md"), Some(reports.as_str()))
    );
    let got = env
        .call("get_item", json!({ "id": id }))
        .await
        .expect("get")
        .structured;
    assert_eq!(got["entry"]["name"], "cv.md");
    let link = env
        .call(
            "create_share_link",
            json!({ "file_id": id, "access": "company" }),
        )
        .await
        .expect("share")
        .structured;
    assert_eq!(link["access"], "company");
    assert!(link["url"].as_str().expect("url").starts_with("https://"));
    env.call("delete_file", json!({ "file_id": id }))
        .await
        .expect("delete");
    let gone = env.call("get_item", json!({ "id": id })).await;
    assert!(
        matches!(&gone, Err(ToolError::NotFound(m)) if m.contains("not_found")),
        "{gone:?}"
    );
}

#[tokio::test]
async fn maps_errors_throttling_and_expired_tokens() {
    let env = start().await;
    let missing = env.call("read_file", json!({ "file_id": "999999" })).await;
    assert!(matches!(missing, Err(ToolError::NotFound(_))));
    let folder_missing = env
        .call("get_item", json!({ "id": "999999", "type": "folder" }))
        .await;
    assert!(matches!(folder_missing, Err(ToolError::NotFound(_))));
    env.control(
        "/_sandbox/throttle",
        json!({ "fail_next": 2, "retry_after_secs": 0 }),
    )
    .await;
    env.call("list_folder", json!({}))
        .await
        .expect("succeeds after 429s");

    // A real OAuth token, then expired: 401 → Unauthorized.
    let (access, refresh) = files::oauth::tokens(&env, "root_readwrite").await;
    env.call_with("list_folder", json!({}), &files::ctx(Some(&access)))
        .await
        .expect("fresh token works");
    env.control("/_sandbox/expire_tokens", json!({})).await;
    let expired = env
        .call_with("list_folder", json!({}), &files::ctx(Some(&access)))
        .await;
    assert!(
        matches!(expired, Err(ToolError::Unauthorized(_))),
        "{expired:?}"
    );
    // Refresh tokens are single-use: the first refresh works, reusing it is invalid_grant.
    let (status, body) = files::oauth::token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "demo"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["refresh_token"].as_str(), Some(refresh.as_str()));
    let (status, body) = files::oauth::token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "demo"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}
