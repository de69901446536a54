//! The script that calls every Outlook, Teams and SharePoint tool once (some twice, for both
//! addressing forms and paging) and records what each sent.

use serde_json::{Value, json};

use super::{Env, Recorded};

impl Env {
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
        step(
            self.record(
                "outlook",
                "send_draft",
                json!({ "message_id": "AAMkmsg-draft-internal" }),
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
            for spec in adapter.tools().current() {
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
