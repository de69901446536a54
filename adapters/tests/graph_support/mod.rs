//! Shared set-up for the Graph contract and permission tests: the three adapters against one
//! Graph emulator, and a script that calls every tool once while the emulator's request log
//! (`/_sandbox/requests`) records which Graph requests each tool sent.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use manifold_adapters::{
    Adapter, AdapterKind, CallContext, InstanceSettings, Registry, Secret, ToolError, ToolOutput,
    UpstreamClient, UpstreamConfig,
    graph::{OutlookKind, SharePointKind, TeamsKind},
    sandbox::SandboxServer,
};
use serde_json::{Map, Value, json};

pub mod paths;

pub const ALICE: &str = "graph_sandbox_alice";

pub struct Env {
    pub server: SandboxServer,
    pub base: String,
    pub http: reqwest::Client,
    pub kinds: Vec<(&'static str, Arc<dyn Adapter>)>,
}

/// What one tool call sent: the emulator's log entries (`method`, `path`, `query`, `body`).
#[derive(Debug)]
pub struct Recorded {
    pub kind: &'static str,
    pub tool: String,
    pub scopes: Vec<String>,
    pub requests: Vec<Value>,
}

pub async fn start() -> Env {
    let registry = Registry::builtin();
    let server = SandboxServer::start(&registry, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = server.base_url("graph");
    let build = |kind: &dyn AdapterKind| {
        let client = UpstreamClient::new(UpstreamConfig::default())
            .unwrap()
            .for_instance(kind.id(), 8);
        kind.build(InstanceSettings {
            name: kind.id().into(),
            base_url: base.clone(),
            client,
            settings: Map::new(),
        })
        .unwrap()
    };
    let kinds = vec![
        ("outlook", build(&OutlookKind)),
        ("teams", build(&TeamsKind)),
        ("sharepoint", build(&SharePointKind)),
    ];
    Env {
        base: base.to_string().trim_end_matches('/').to_owned(),
        server,
        http: reqwest::Client::new(),
        kinds,
    }
}

pub fn ctx(token: &str) -> CallContext {
    CallContext {
        credential: Some(Secret::new(token)),
        ..CallContext::default()
    }
}

impl Env {
    pub fn adapter(&self, kind: &str) -> &Arc<dyn Adapter> {
        &self.kinds.iter().find(|(k, _)| *k == kind).unwrap().1
    }

    pub async fn call_as(
        &self,
        kind: &str,
        tool: &str,
        args: Value,
        token: &str,
    ) -> Result<ToolOutput, ToolError> {
        let args = args.as_object().cloned().unwrap();
        self.adapter(kind).call(tool, args, &ctx(token)).await
    }

    pub async fn control(&self, path: &str, body: Value) {
        let status = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }

    pub async fn requests(&self) -> Vec<Value> {
        let url = format!("{}/_sandbox/requests", self.base);
        let log: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log.as_array().unwrap().clone()
    }

    async fn clear_requests(&self) {
        let url = format!("{}/_sandbox/requests", self.base);
        let status = self.http.delete(url).send().await.unwrap().status();
        assert!(status.is_success());
    }

    /// Calls `tool` as alice (it must succeed) and returns its result with what it sent.
    async fn record(&self, kind: &'static str, tool: &str, args: Value) -> (Value, Recorded) {
        self.clear_requests().await;
        let out = self
            .call_as(kind, tool, args, ALICE)
            .await
            .unwrap_or_else(|e| panic!("{kind}.{tool}: {e}"));
        let spec = self
            .adapter(kind)
            .tools()
            .into_iter()
            .find(|t| t.name == tool)
            .unwrap();
        let requests = self.requests().await;
        assert!(!requests.is_empty(), "{kind}.{tool} sent nothing");
        let recorded = Recorded {
            kind,
            tool: tool.into(),
            scopes: spec.scopes,
            requests,
        };
        (out.structured, recorded)
    }

    /// Calls every tool of the three kinds (some twice, to cover both addressing forms and
    /// paging), and checks that none was left out.
    pub async fn run_every_tool(&self) -> Vec<Recorded> {
        let mut all = Vec::new();
        let mut step = |(out, rec): (Value, Recorded)| {
            all.push(rec);
            out
        };
        // Outlook.
        let page = step(
            self.record(
                "outlook",
                "list_messages",
                json!({ "folder": "inbox", "limit": 40 }),
            )
            .await,
        );
        step(
            self.record(
                "outlook",
                "list_messages",
                json!({ "folder": "inbox", "limit": 40, "cursor": page["next_cursor"] }),
            )
            .await,
        );
        step(
            self.record(
                "outlook",
                "list_messages",
                json!({ "unread_only": true, "limit": 5 }),
            )
            .await,
        );
        step(
            self.record("outlook", "search_messages", json!({ "query": "budget" }))
                .await,
        );
        step(
            self.record(
                "outlook",
                "get_message",
                json!({ "message_id": "AAMkmsg-seed-010" }),
            )
            .await,
        );
        step(
            self.record(
                "outlook",
                "read_attachment",
                json!({ "message_id": "AAMkmsg-seed-010", "attachment_id": "AAMkatt-010" }),
            )
            .await,
        );
        step(self.record("outlook", "list_folders", json!({})).await);
        step(
            self.record(
                "outlook",
                "send_message",
                json!({ "subject": "Hi", "body": "x", "to": ["bob@contoso.example"] }),
            )
            .await,
        );
        step(
            self.record(
                "outlook",
                "reply_message",
                json!({ "message_id": "AAMkmsg-seed-001", "comment": "Thanks" }),
            )
            .await,
        );
        step(
            self.record(
                "outlook",
                "reply_message",
                json!({ "message_id": "AAMkmsg-seed-001", "comment": "All", "reply_all": true }),
            )
            .await,
        );
        step(
            self.record(
                "outlook",
                "forward_message",
                json!({ "message_id": "AAMkmsg-seed-001", "to": ["carol@contoso.example"] }),
            )
            .await,
        );
        let draft = step(
            self.record(
                "outlook",
                "create_draft",
                json!({ "subject": "Draft", "body": "later" }),
            )
            .await,
        );
        step(
            self.record(
                "outlook",
                "move_message",
                json!({ "message_id": draft["message"]["id"], "destination": "archive" }),
            )
            .await,
        );
        // Teams.
        step(self.record("teams", "list_teams", json!({})).await);
        let channels = step(
            self.record("teams", "list_channels", json!({ "team_id": "team-eng" }))
                .await,
        );
        let channel = channels["channels"][0]["id"].clone();
        let page = step(
            self.record(
                "teams",
                "list_channel_messages",
                json!({ "team_id": "team-eng", "channel_id": channel, "limit": 5 }),
            )
            .await,
        );
        step(self.record("teams", "list_channel_messages", json!({ "team_id": "team-eng", "channel_id": channel, "limit": 5, "cursor": page["next_cursor"] })).await);
        step(self.record("teams", "get_thread", json!({ "team_id": "team-eng", "channel_id": channel, "message_id": "team-eng-general-002" })).await);
        let posted = step(
            self.record(
                "teams",
                "post_channel_message",
                json!({ "team_id": "team-eng", "channel_id": channel, "text": "hello" }),
            )
            .await,
        );
        step(self.record("teams", "reply_to_channel_message", json!({ "team_id": "team-eng", "channel_id": channel, "message_id": posted["message"]["id"], "text": "re" })).await);
        let chats = step(self.record("teams", "list_chats", json!({})).await);
        let chat = chats["chats"][0]["id"].clone();
        step(
            self.record(
                "teams",
                "send_chat_message",
                json!({ "chat_id": chat, "text": "ping" }),
            )
            .await,
        );
        step(
            self.record(
                "teams",
                "list_chat_messages",
                json!({ "chat_id": chat, "limit": 5 }),
            )
            .await,
        );
        step(
            self.record(
                "teams",
                "search_messages",
                json!({ "query": "pipeline", "limit": 10 }),
            )
            .await,
        );
        // SharePoint.
        let sites = step(self.record("sharepoint", "list_sites", json!({})).await);
        let site = sites["sites"][0]["id"].clone();
        step(
            self.record("sharepoint", "get_site", json!({ "site_id": site }))
                .await,
        );
        let drives = step(
            self.record("sharepoint", "list_drives", json!({ "site_id": site }))
                .await,
        );
        let drive = drives["drives"][0]["id"].clone();
        let items = step(
            self.record(
                "sharepoint",
                "list_items",
                json!({ "drive_id": drive, "limit": 15 }),
            )
            .await,
        );
        step(
            self.record(
                "sharepoint",
                "list_items",
                json!({ "drive_id": drive, "path": "Reports" }),
            )
            .await,
        );
        let folder = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["is_folder"] == true)
            .unwrap()["id"]
            .clone();
        let item = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["is_folder"] == false)
            .unwrap()["id"]
            .clone();
        step(
            self.record(
                "sharepoint",
                "get_item",
                json!({ "drive_id": drive, "item_id": item }),
            )
            .await,
        );
        step(
            self.record(
                "sharepoint",
                "get_item",
                json!({ "drive_id": drive, "path": "Reports/plan.docx" }),
            )
            .await,
        );
        step(
            self.record(
                "sharepoint",
                "read_file",
                json!({ "drive_id": drive, "path": "handbook.txt", "max_chars": 1000 }),
            )
            .await,
        );
        step(
            self.record(
                "sharepoint",
                "upload_file",
                json!({ "drive_id": drive, "name": "new.txt", "content": "hello" }),
            )
            .await,
        );
        let big = "x".repeat(5 * 1024 * 1024);
        step(self.record("sharepoint", "upload_file", json!({ "drive_id": drive, "folder_item_id": folder, "name": "big.txt", "content": big })).await);
        step(
            self.record(
                "sharepoint",
                "create_folder",
                json!({ "drive_id": drive, "name": "Archive" }),
            )
            .await,
        );
        step(
            self.record(
                "sharepoint",
                "create_folder",
                json!({ "drive_id": drive, "parent_item_id": folder, "name": "Inner" }),
            )
            .await,
        );
        step(
            self.record(
                "sharepoint",
                "search",
                json!({ "query": "roadmap", "kinds": ["driveItem", "site"] }),
            )
            .await,
        );
        for (kind, adapter) in &self.kinds {
            for spec in adapter.tools() {
                assert!(
                    all.iter().any(|r| r.kind == *kind && r.tool == spec.name),
                    "{kind}.{} is not exercised by the contract script",
                    spec.name
                );
            }
        }
        all
    }
}
