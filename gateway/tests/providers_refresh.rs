//! Every provider through the whole gateway with the user's own brokered connection: after the
//! provider expires all access tokens, a read tool of each kind still succeeds because the
//! broker refreshes the token (once) and retries — Linear, Outlook, Teams, SharePoint (one
//! Microsoft connection), Dropbox, Box (single-use refresh tokens) and Google Drive.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::demo::Demo;

/// One read tool of each kind, and the emulator mount that issued its token.
const READS: &[(&str, &str)] = &[
    ("linear_list_teams", "linear"),
    ("outlook_list_folders", "graph"),
    ("teams_list_teams", "graph"),
    ("sharepoint_list_sites", "graph"),
    ("dropbox_list_folder", "dropbox"),
    ("box_list_folder", "box"),
    ("drive_list_folder", "drive"),
];

async fn call(demo: &Demo, token: &str, name: &str) -> Value {
    demo.call_tool(token, name, json!({})).await["result"].clone()
}

#[tokio::test]
async fn expired_provider_tokens_are_refreshed_for_every_kind() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice");
    let http = reqwest::Client::new();
    for (tool, _) in READS {
        let result = call(&demo, &alice, tool).await;
        assert_eq!(result["isError"], false, "{tool} before expiry: {result}");
    }
    let mut mounts: Vec<&str> = READS.iter().map(|(_, mount)| *mount).collect();
    mounts.dedup();
    for mount in &mounts {
        let url = format!("{}/{mount}/_sandbox/expire_tokens", demo.sandbox_url);
        let expired = http.post(&url).send().await.unwrap();
        assert!(expired.status().is_success(), "{url}: {}", expired.status());
    }
    for (tool, _) in READS {
        let result = call(&demo, &alice, tool).await;
        assert_eq!(result["isError"], false, "{tool} after expiry: {result}");
    }
    // The old tokens are really dead: the emulators refused them, so the broker had to refresh.
    for mount in &mounts {
        let url = format!("{}/{mount}/_sandbox/oauth_log", demo.sandbox_url);
        let log: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        let refreshes = log.to_string().matches("refresh_token").count();
        assert!(
            refreshes >= 1,
            "{mount}: no refresh reached the provider: {log}"
        );
    }
}

#[tokio::test]
async fn every_argument_free_read_tool_answers_through_the_gateway() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice");
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "refresh-test", "version": "1"}
    });
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = json!({"_meta": meta});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let page: Value = reqwest::Client::new()
            .post(&demo.mcp_url)
            .bearer_auth(&alice)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tools.extend(page["result"]["tools"].as_array().unwrap().iter().cloned());
        match page["result"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let free_reads: Vec<&Value> = tools
        .iter()
        .filter(|t| t["annotations"]["readOnlyHint"] == true)
        .filter(|t| {
            t["inputSchema"]["required"]
                .as_array()
                .is_none_or(Vec::is_empty)
        })
        .collect();
    let kinds: std::collections::BTreeSet<&str> = free_reads
        .iter()
        .filter_map(|t| t["name"].as_str()?.split('_').next())
        .collect();
    assert_eq!(kinds.len(), 7, "a read of every kind: {kinds:?}");
    for tool in free_reads {
        let name = tool["name"].as_str().unwrap();
        let result = call(&demo, &alice, name).await;
        assert_eq!(result["isError"], false, "{name}: {result}");
        let validator = jsonschema::validator_for(&tool["outputSchema"]).unwrap();
        let structured = &result["structuredContent"];
        assert!(
            validator.is_valid(structured),
            "{name}: structuredContent breaks its outputSchema: {structured}"
        );
    }
}
