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
        })
        .expect("adapter builds");
    let ctx = CallContext {
        credential: Some(Secret::new("ya29.mock")),
        ..CallContext::default()
    };
    let arguments = json!({ "file": id });
    adapter
        .facts()
        .expect("drive resolves facts")
        .resolve("get_file", arguments.as_object().unwrap(), &ctx)
        .await
        .map(|facts| facts.containers)
        .map_err(|error| error.to_string())
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
