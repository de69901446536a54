//! Contract tests of the Dropbox emulator's answers: every result and error it gave while the
//! adapter ran each tool (and hit the usual errors) must deserialize strictly into the types
//! hand-transcribed from the Stone spec in `dropbox_stone`, chosen by the result and error type
//! names `routes.json` gives for the route.
#![allow(clippy::expect_used)]

mod dropbox_stone;
mod files;

use std::{collections::BTreeMap, sync::Arc};

use manifold_adapters::dropbox::{DropboxKind, sandbox::DEMO_TOKEN};
use serde_json::{Value, json};

const ROUTES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/contracts/dropbox/routes.json"
);

/// Runs every tool once, plus route errors, a bad token and a throttled call.
async fn exercise(env: &files::Env) {
    let call = |tool: &'static str, args: Value| async move {
        env.call(tool, args).await.expect(tool).structured
    };
    let page = call("list_folder", json!({ "path": "/Archive", "limit": 2 })).await;
    let cursor = page["next_cursor"].as_str().expect("more").to_owned();
    call(
        "list_folder",
        json!({ "path": "/Archive", "limit": 2, "cursor": cursor }),
    )
    .await;
    call("list_folder", json!({})).await;
    let found = call("search_files", json!({ "query": "note", "limit": 2 })).await;
    let cursor = found["next_cursor"].as_str().expect("more").to_owned();
    call(
        "search_files",
        json!({ "query": "note", "limit": 2, "cursor": cursor }),
    )
    .await;
    call("get_metadata", json!({ "path": "/Reports" })).await;
    call("get_metadata", json!({ "path": "/Reports/sales.csv" })).await;
    call("read_file", json!({ "path": "/Reports/sales.csv" })).await;
    call("create_folder", json!({ "path": "/answers" })).await;
    call(
        "upload_file",
        json!({ "path": "/answers/a.txt", "content": "x" }),
    )
    .await;
    call(
        "move_item",
        json!({ "from_path": "/answers/a.txt", "to_path": "/answers/b.txt" }),
    )
    .await;
    call("create_share_link", json!({ "path": "/answers/b.txt" })).await;
    call("create_share_link", json!({ "path": "/answers" })).await;
    // The second link request finds the existing link (409 with its metadata).
    let _ = env
        .call("create_share_link", json!({ "path": "/answers/b.txt" }))
        .await;
    let errors = [
        ("list_folder", json!({ "path": "/nope" })),
        ("list_folder", json!({ "path": "/Reports/sales.csv" })),
        ("get_metadata", json!({ "path": "/nope" })),
        ("read_file", json!({ "path": "/nope.txt" })),
        ("read_file", json!({ "path": "/Reports" })),
        ("create_folder", json!({ "path": "/answers" })),
        (
            "upload_file",
            json!({ "path": "/answers/b.txt", "content": "y" }),
        ),
        ("upload_file", json!({ "path": "/answers", "content": "y" })),
        (
            "move_item",
            json!({ "from_path": "/nope", "to_path": "/x" }),
        ),
        (
            "move_item",
            json!({ "from_path": "/answers/b.txt", "to_path": "/Reports" }),
        ),
        ("delete_item", json!({ "path": "/nope" })),
        ("create_share_link", json!({ "path": "/nope" })),
    ];
    for (tool, args) in errors {
        assert!(env.call(tool, args.clone()).await.is_err(), "{tool} {args}");
    }
    // The facts of a link request list the path's own links (seeded, made above, none, missing).
    let facts = env.adapter.facts().expect("dropbox resolves facts");
    for (path, found) in [
        ("/Reports/sales.csv", true),
        ("/answers/b.txt", true),
        ("/Reports/roadmap.pptx", true),
        ("/nope", false),
    ] {
        let args = json!({ "path": path, "audience": "team" });
        let resolved = facts
            .resolve(
                "create_share_link",
                args.as_object().expect("object"),
                &files::ctx(Some(DEMO_TOKEN)),
            )
            .await;
        assert_eq!(resolved.is_ok(), found, "{path}: {resolved:?}");
    }
    call("delete_item", json!({ "path": "/answers/b.txt" })).await;
    let bogus = files::ctx(Some("sl.bogus"));
    assert!(
        env.call_with("list_folder", json!({}), &bogus)
            .await
            .is_err()
    );
    env.control(
        "/_sandbox/throttle",
        json!({ "fail_next": 20, "retry_after_secs": 0 }),
    )
    .await;
    assert!(env.call("list_folder", json!({})).await.is_err());
    env.control("/_sandbox/throttle", json!({ "fail_next": 0 }))
        .await;
}

#[tokio::test]
async fn dropbox_answers_deserialize_strictly_as_stone_types() {
    let env = files::start_recording(Arc::new(DropboxKind), DEMO_TOKEN).await;
    exercise(&env).await;
    let routes: Value =
        serde_json::from_str(&std::fs::read_to_string(ROUTES).expect("routes")).expect("json");
    let answers = env.answers.lock().expect("answers").clone();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for answer in answers.iter().filter(|a| !a.path.starts_with("/_sandbox")) {
        let route = answer
            .path
            .strip_prefix("/content")
            .unwrap_or(&answer.path)
            .to_owned();
        let spec = routes["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .find(|r| r["url"].as_str().is_some_and(|u| u.ends_with(&route)))
            .unwrap_or_else(|| panic!("{route} is not a Dropbox route"));
        let (type_name, value) = match answer.status {
            // A download's result travels in the `Dropbox-API-Result` header.
            200 if spec["style"] == "download" => (
                spec["result"].as_str(),
                answer.api_result.clone().expect("Dropbox-API-Result"),
            ),
            200 => (spec["result"].as_str(), answer.body.clone()),
            409 => (spec["error"].as_str(), answer.body.clone()),
            401 => (Some("AuthError"), answer.body.clone()),
            429 => (Some("RateLimitError"), answer.body.clone()),
            other => panic!("{route}: unexpected status {other}: {}", answer.body),
        };
        let type_name = type_name.expect("type name");
        if let Err(error) = dropbox_stone::errors::check(type_name, &value) {
            panic!(
                "{route} {}: not a {type_name}: {error}\n{value}",
                answer.status
            );
        }
        *checked.entry(type_name.to_owned()).or_default() += 1;
    }
    for name in [
        "ListFolderResult",
        "SearchV2Result",
        "Metadata",
        "FileMetadata",
        "CreateFolderResult",
        "RelocationResult",
        "DeleteResult",
        "SharedLinkMetadata",
        "ListFolderError",
        "GetMetadataError",
        "DownloadError",
        "CreateFolderError",
        "UploadError",
        "RelocationError",
        "DeleteError",
        "CreateSharedLinkWithSettingsError",
        "AuthError",
        "RateLimitError",
    ] {
        assert!(checked.contains_key(name), "no {name} checked: {checked:?}");
    }
}
