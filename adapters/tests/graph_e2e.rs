//! End-to-end: the Outlook, Teams and SharePoint tools through their adapters against the Graph
//! emulator, every structured result validated against the tool's output schema.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use manifold_adapters::{
    Adapter, AdapterKind, CallContext, InstanceSettings, Registry, Secret, ToolError, ToolOutput,
    UpstreamClient, UpstreamConfig,
    graph::{OutlookKind, SharePointKind, TeamsKind},
    sandbox::SandboxServer,
};
use serde_json::{Map, Value, json};

struct Env {
    server: SandboxServer,
    outlook: Arc<dyn Adapter>,
    teams: Arc<dyn Adapter>,
    sharepoint: Arc<dyn Adapter>,
}

async fn start() -> Env {
    let registry = Registry::builtin();
    let server = SandboxServer::start(&registry, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let build = |kind: &dyn AdapterKind| {
        let client = UpstreamClient::new(UpstreamConfig::default())
            .unwrap()
            .for_instance(kind.id(), 8);
        kind.build(InstanceSettings {
            name: kind.id().into(),
            base_url: server.base_url("graph"),
            client,
            settings: Map::new(),
            credentials: Default::default(),
        })
        .unwrap()
    };
    Env {
        outlook: build(&OutlookKind),
        teams: build(&TeamsKind),
        sharepoint: build(&SharePointKind),
        server,
    }
}

fn ctx(token: &str) -> CallContext {
    CallContext {
        credential: Some(Secret::new(token)),
        ..CallContext::default()
    }
}

async fn call_as(
    adapter: &Arc<dyn Adapter>,
    tool: &str,
    args: Value,
    token: &str,
) -> Result<ToolOutput, ToolError> {
    let result = adapter
        .call(tool, args.as_object().cloned().unwrap(), &ctx(token))
        .await;
    if let Ok(output) = &result {
        let spec = adapter
            .tools()
            .current()
            .into_iter()
            .find(|t| t.name == tool)
            .unwrap();
        let validator = jsonschema::validator_for(&Value::Object(spec.output_schema)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&output.structured)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{tool}: {errors:?}\n{}",
            output.structured
        );
    }
    result
}

async fn call(adapter: &Arc<dyn Adapter>, tool: &str, args: Value) -> Value {
    call_as(adapter, tool, args, "graph_sandbox_alice")
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
        .structured
}

#[tokio::test]
async fn outlook_pages_reads_and_writes() {
    let env = start().await;
    let mut seen = 0;
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let mut args = json!({ "folder": "inbox", "limit": 40 });
        if !cursor.is_null() {
            args["cursor"] = cursor.clone();
        }
        let out = call(&env.outlook, "list_messages", args).await;
        seen += out["messages"].as_array().unwrap().len();
        pages += 1;
        cursor = out["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!((pages, seen), (3, 90));
    let unread = call(
        &env.outlook,
        "list_messages",
        json!({ "unread_only": true, "limit": 50 }),
    )
    .await;
    assert!(
        unread["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["is_read"] == false)
    );
    let found = call(
        &env.outlook,
        "search_messages",
        json!({ "query": "budget" }),
    )
    .await;
    assert!(!found["messages"].as_array().unwrap().is_empty());
    let message = call(
        &env.outlook,
        "get_message",
        json!({ "message_id": "AAMkmsg-seed-003" }),
    )
    .await;
    assert!(
        message["message"]["body"]
            .as_str()
            .unwrap()
            .contains("Regards & thanks")
    );
    let with_file = call(
        &env.outlook,
        "get_message",
        json!({ "message_id": "AAMkmsg-seed-010" }),
    )
    .await;
    let attachment = with_file["message"]["attachments"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = call(
        &env.outlook,
        "read_attachment",
        json!({ "message_id": "AAMkmsg-seed-010", "attachment_id": attachment }),
    )
    .await;
    assert!(text["text"].as_str().unwrap().contains("quarter,amount"));
    let docx = call_as(
        &env.outlook,
        "read_attachment",
        json!({ "message_id": "AAMkmsg-seed-000", "attachment_id": "AAMkatt-000" }),
        "graph_sandbox_alice",
    )
    .await;
    assert!(
        docx.is_ok()
            || matches!(docx, Err(ToolError::InvalidArguments(ref m)) if m.contains("docx")),
        "{docx:?}"
    );
    let folders = call(&env.outlook, "list_folders", json!({})).await;
    assert_eq!(folders["folders"].as_array().unwrap().len(), 5);
    call(&env.outlook, "send_message", json!({ "subject": "Hi", "body": "<p>x</p>", "body_type": "html", "to": ["bob@contoso.example"] })).await;
    call(
        &env.outlook,
        "reply_message",
        json!({ "message_id": "AAMkmsg-seed-001", "comment": "Thanks", "reply_all": true }),
    )
    .await;
    call(
        &env.outlook,
        "forward_message",
        json!({ "message_id": "AAMkmsg-seed-001", "to": ["carol@contoso.example"] }),
    )
    .await;
    let draft = call(
        &env.outlook,
        "create_draft",
        json!({ "subject": "Draft", "body": "later" }),
    )
    .await;
    let moved = call(
        &env.outlook,
        "move_message",
        json!({ "message_id": draft["message"]["id"], "destination": "archive" }),
    )
    .await;
    assert_ne!(moved["message"]["id"], draft["message"]["id"]);
}

#[tokio::test]
async fn errors_are_clear() {
    let env = start().await;
    let missing = call_as(
        &env.outlook,
        "get_message",
        json!({ "message_id": "nope" }),
        "graph_sandbox_alice",
    )
    .await;
    assert!(
        matches!(missing, Err(ToolError::NotFound(_))),
        "{missing:?}"
    );
    let denied = call_as(
        &env.outlook,
        "send_message",
        json!({ "subject": "x", "body": "y", "to": ["bob@contoso.example"] }),
        "graph_sandbox_alice_readonly",
    )
    .await;
    assert!(
        matches!(denied, Err(ToolError::Forbidden(ref m)) if m.contains("Mail.Send")),
        "{denied:?}"
    );
    let not_member = call_as(
        &env.teams,
        "list_channels",
        json!({ "team_id": "team-fin" }),
        "graph_sandbox_bob",
    )
    .await;
    assert!(
        matches!(not_member, Err(ToolError::Forbidden(_))),
        "{not_member:?}"
    );
    let http = reqwest::Client::new();
    let base = env.server.base_url("graph");
    http.post(format!("{base}/_sandbox/throttle"))
        .json(&json!({ "fail_next": 2, "retry_after_secs": 1 }))
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    call(&env.teams, "list_teams", json!({})).await;
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    let forged = call_as(
        &env.outlook,
        "list_folders",
        json!({ "cursor": "eyJ0IjoibGlzdF9mb2xkZXJzIn0" }),
        "graph_sandbox_alice",
    )
    .await;
    assert!(matches!(forged, Err(ToolError::InvalidArguments(_))));
    let expired = call_as(
        &env.outlook,
        "list_folders",
        json!({}),
        "graph_oauth_sandbox_unknown",
    )
    .await;
    assert!(
        matches!(expired, Err(ToolError::Unauthorized(_))),
        "{expired:?}"
    );
}

#[tokio::test]
async fn teams_threads_chats_and_search() {
    let env = start().await;
    let teams = call(&env.teams, "list_teams", json!({})).await;
    assert_eq!(teams["teams"].as_array().unwrap().len(), 2);
    let channels = call(
        &env.teams,
        "list_channels",
        json!({ "team_id": "team-eng" }),
    )
    .await;
    let channel = channels["channels"][0]["id"].as_str().unwrap().to_owned();
    let page = call(
        &env.teams,
        "list_channel_messages",
        json!({ "team_id": "team-eng", "channel_id": channel, "limit": 5 }),
    )
    .await;
    assert!(page["next_cursor"].is_string());
    let thread = call(&env.teams, "get_thread", json!({ "team_id": "team-eng", "channel_id": channel, "message_id": "team-eng-general-002" })).await;
    assert_eq!(thread["thread"]["replies"].as_array().unwrap().len(), 2);
    let posted = call(
        &env.teams,
        "post_channel_message",
        json!({ "team_id": "team-eng", "channel_id": channel, "text": "hello" }),
    )
    .await;
    call(&env.teams, "reply_to_channel_message", json!({ "team_id": "team-eng", "channel_id": channel, "message_id": posted["message"]["id"], "text": "re" })).await;
    let chats = call(&env.teams, "list_chats", json!({})).await;
    let chat = chats["chats"][0]["id"].as_str().unwrap().to_owned();
    call(
        &env.teams,
        "send_chat_message",
        json!({ "chat_id": chat, "text": "ping" }),
    )
    .await;
    let lines = call(
        &env.teams,
        "list_chat_messages",
        json!({ "chat_id": chat, "limit": 5 }),
    )
    .await;
    assert_eq!(lines["messages"][0]["text"], "ping");
    let hits = call(
        &env.teams,
        "search_messages",
        json!({ "query": "pipeline", "limit": 10 }),
    )
    .await;
    assert_eq!(hits["hits"].as_array().unwrap().len(), 10);
    assert!(hits["next_cursor"].is_string());
}

#[tokio::test]
async fn sharepoint_files_read_in_windows_and_upload() {
    let env = start().await;
    let sites = call(&env.sharepoint, "list_sites", json!({})).await;
    let site = sites["sites"][0]["id"].as_str().unwrap().to_owned();
    call(&env.sharepoint, "get_site", json!({ "site_id": site })).await;
    let drives = call(&env.sharepoint, "list_drives", json!({ "site_id": site })).await;
    let drive = drives["drives"][0]["id"].as_str().unwrap().to_owned();
    let first = call(
        &env.sharepoint,
        "list_items",
        json!({ "drive_id": drive, "limit": 15 }),
    )
    .await;
    let second = call(
        &env.sharepoint,
        "list_items",
        json!({ "drive_id": drive, "limit": 15, "cursor": first["next_cursor"] }),
    )
    .await;
    let third = call(
        &env.sharepoint,
        "list_items",
        json!({ "drive_id": drive, "limit": 15, "cursor": second["next_cursor"] }),
    )
    .await;
    assert!(!third["items"].as_array().unwrap().is_empty());
    let reports = call(
        &env.sharepoint,
        "list_items",
        json!({ "drive_id": drive, "path": "Reports" }),
    )
    .await;
    assert_eq!(reports["items"].as_array().unwrap().len(), 4);
    let item = call(
        &env.sharepoint,
        "get_item",
        json!({ "drive_id": drive, "path": "Reports/plan.docx" }),
    )
    .await;
    assert_eq!(item["item"]["name"], "plan.docx");
    let mut offset = json!(0);
    let mut windows = 0;
    while !offset.is_null() {
        let out = call(&env.sharepoint, "read_file", json!({ "drive_id": drive, "path": "handbook.txt", "offset": offset, "max_chars": 50000 })).await;
        windows += 1;
        offset = out["next_offset"].clone();
    }
    assert_eq!(windows, 5);
    let pdf = call_as(
        &env.sharepoint,
        "read_file",
        json!({ "drive_id": drive, "path": "Reports/summary.pdf" }),
        "graph_sandbox_alice",
    )
    .await;
    assert!(pdf.is_ok() || matches!(pdf, Err(ToolError::InvalidArguments(_))));
    let small = call(
        &env.sharepoint,
        "upload_file",
        json!({ "drive_id": drive, "name": "new.txt", "content": "hello" }),
    )
    .await;
    assert_eq!(small["upload"], "simple");
    let dup = call_as(
        &env.sharepoint,
        "upload_file",
        json!({ "drive_id": drive, "name": "new.txt", "content": "again" }),
        "graph_sandbox_alice",
    )
    .await;
    assert!(dup.is_err());
    let big = "x".repeat(5 * 1024 * 1024);
    let large = call(
        &env.sharepoint,
        "upload_file",
        json!({ "drive_id": drive, "name": "big.txt", "content": big }),
    )
    .await;
    assert_eq!(
        (large["upload"].as_str(), large["item"]["size"].as_i64()),
        (Some("session"), Some(5 * 1024 * 1024))
    );
    let folder = call(
        &env.sharepoint,
        "create_folder",
        json!({ "drive_id": drive, "name": "Archive" }),
    )
    .await;
    assert_eq!(folder["item"]["is_folder"], true);
    let hits = call(
        &env.sharepoint,
        "search",
        json!({ "query": "roadmap", "kinds": ["driveItem", "site"] }),
    )
    .await;
    assert!(!hits["hits"].as_array().unwrap().is_empty());
}
