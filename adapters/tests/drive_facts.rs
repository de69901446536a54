//! The folders a Drive call acts in (`context.containers`), read from a mock Drive that answers
//! what the emulator never would: a parent chain that loops, one deeper than Drive allows, a
//! parent that is gone, an item with two parents. Each is an error (a denial at the gateway),
//! never a shorter list; a sound chain ends at My Drive's root or at a shared drive's id.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use axum::{Json, Router, extract::Path, http::StatusCode, response::IntoResponse, routing::get};
use manifold_adapters::{
    AdapterKind, CallContext, InstanceSettings, Secret, UpstreamClient, UpstreamConfig,
    drive::DriveKind,
};
use serde_json::json;

const FOLDER: &str = "application/vnd.google-apps.folder";

/// `files.get` of the mock Drive.
async fn file(Path(id): Path<String>) -> axum::response::Response {
    let item =
        |mime: &str, parents: &[&str]| json!({ "id": id, "mimeType": mime, "parents": parents });
    let answer = match id.as_str() {
        "fine" => item("text/plain", &["f1"]),
        "f1" => item(FOLDER, &["root0"]),
        "root0" => json!({ "id": "root0", "mimeType": FOLDER }),
        "shared" => {
            json!({ "id": "shared", "mimeType": "text/plain", "parents": ["0Adrive"], "driveId": "0Adrive" })
        }
        "loop" => item("text/plain", &["loopA"]),
        "loopA" => item(FOLDER, &["loopB"]),
        "loopB" => item(FOLDER, &["loopA"]),
        "orphan" => item("text/plain", &["gone"]),
        "twins" => item("text/plain", &["f1", "root0"]),
        "odd" => json!({ "id": "odd", "mimeType": "text/plain", "parents": "f1" }),
        deep if deep.starts_with('d') => {
            let n: u32 = deep[1..].parse().unwrap_or(0);
            item(FOLDER, &[&format!("d{}", n + 1)])
        }
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(
                    json!({ "error": { "code": 404, "message": format!("File not found: {id}."),
                    "errors": [{ "reason": "notFound", "message": "File not found" }] } }),
                ),
            )
                .into_response();
        }
    };
    Json(answer).into_response()
}

async fn resolve(id: &str) -> Result<Vec<String>, String> {
    facts_of("get_file", json!({ "file": id }))
        .await
        .map(|facts| facts.containers)
}

async fn facts_of(
    tool: &str,
    arguments: serde_json::Value,
) -> Result<manifold_adapters::StoredFacts, String> {
    let app: Router = Router::new().route("/drive/v3/files/{id}", get(file));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = UpstreamClient::new(UpstreamConfig::default())
        .expect("client")
        .for_instance("drive", 8);
    let adapter = DriveKind
        .build(InstanceSettings {
            name: "drive".into(),
            base_url: format!("http://{addr}/").parse().unwrap(),
            client,
            settings: Default::default(),
            credentials: Default::default(),
        })
        .expect("adapter builds");
    let ctx = CallContext {
        credential: Some(Secret::new("ya29.mock")),
        ..CallContext::default()
    };
    adapter
        .facts()
        .expect("drive resolves facts")
        .resolve(tool, arguments.as_object().unwrap(), &ctx)
        .await
        .map_err(|error| error.to_string())
}

/// However the item was named (id, link), the call is pinned to the id the facts were read for,
/// so a rename or move between the decision and the call cannot change what it acts on.
#[tokio::test]
async fn the_call_is_pinned_to_the_ids_the_folders_were_read_for() {
    for reference in [
        "fine",
        "https://drive.google.com/file/d/fine/view",
        "https://docs.google.com/document/d/fine/edit",
        "https://drive.google.com/open?id=fine",
    ] {
        let facts = facts_of("read_file", json!({ "file": reference }))
            .await
            .expect(reference);
        assert_eq!(
            facts.pinned,
            json!({ "file": "fine" }).as_object().cloned().unwrap(),
            "{reference}"
        );
    }
    let moved = facts_of(
        "move_file",
        json!({ "file": "fine", "new_parent": "https://drive.google.com/drive/folders/f1" }),
    )
    .await
    .expect("move");
    assert_eq!(
        moved.pinned,
        json!({ "file": "fine", "new_parent": "f1" })
            .as_object()
            .cloned()
            .unwrap()
    );
    // A search of the whole Drive names no item: nothing to pin.
    let search = facts_of("search_files", json!({ "query": "x" }))
        .await
        .expect("search");
    assert!(search.pinned.is_empty() && search.containers.is_empty());
}

#[tokio::test]
async fn a_sound_chain_ends_at_the_root_or_the_shared_drive() {
    assert_eq!(resolve("fine").await, Ok(vec!["f1".into(), "root0".into()]));
    // A shared drive's root folder has the drive's id: it ends the chain without being read.
    assert_eq!(resolve("shared").await, Ok(vec!["0Adrive".into()]));
    assert_eq!(resolve("f1").await, Ok(vec!["f1".into(), "root0".into()]));
}

#[tokio::test]
async fn loops_depth_missing_parents_and_two_parents_are_errors() {
    for (id, says) in [
        ("loop", "loop or nest deeper"),
        ("d0", "loop or nest deeper"),
        ("orphan", "not found"),
        ("twins", "several folders"),
        ("odd", "not a list"),
        ("nothing", "not found"),
    ] {
        let error = resolve(id).await.expect_err(id);
        assert!(error.to_lowercase().contains(says), "{id}: {error}");
    }
}
