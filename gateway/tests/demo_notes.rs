//! The demo's upstream MCP server: `manifold demo` starts its notes server and fronts it as the
//! `notes` instance (`kind = "mcp"`), and a new user sees it work: alice (a writer) lists and
//! calls the notes tools, bob (staff) reads but does not write, as the shipped policies say for
//! any tool with those annotations.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::demo::Demo;

/// Every tool `tools/list` shows the caller, following the cursor.
async fn tool_names(demo: &Demo, token: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = cursor.map_or(json!({}), |c| json!({"cursor": c}));
        let page = demo.rpc_message(token, "tools/list", params).await["result"].clone();
        names.extend(
            page["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return names,
        }
    }
}

/// The caller's tools once the notes server is up (`/healthz` names no degraded instance) and
/// its tools are in the catalog: they arrive live, when the gateway's connection to the upstream
/// is made, shortly after the demo starts serving.
async fn tools_with_notes(demo: &Demo, token: &str) -> Vec<String> {
    let health_url = demo.mcp_url.replace("/mcp", "/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = reqwest::get(&health_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let names = tool_names(demo, token).await;
        if health == "ok" && names.iter().any(|n| n.starts_with("notes_")) {
            return names;
        }
        assert!(
            Instant::now() < deadline,
            "the notes server never came up: {health}; {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn notes_tools(names: &[String]) -> Vec<&str> {
    let mut notes: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("notes_"))
        .collect();
    notes.sort_unstable();
    notes
}

/// `tools/call`'s `result`, failing on a JSON-RPC error or a tool error.
async fn call_ok(demo: &Demo, token: &str, name: &str, arguments: Value) -> Value {
    let answer = demo.call_tool(token, name, arguments).await;
    let result = answer["result"].clone();
    assert_eq!(result["isError"], false, "{name}: {answer}");
    result
}

#[tokio::test]
async fn the_demo_fronts_its_notes_mcp_server_and_alice_lists_and_calls_its_tools() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice");

    let names = tools_with_notes(&demo, &alice).await;
    assert_eq!(
        notes_tools(&names),
        [
            "notes_create_note",
            "notes_get_note",
            "notes_pick_note",
            "notes_search_notes",
            "notes_suggest_title"
        ]
    );

    let found = call_ok(
        &demo,
        &alice,
        "notes_search_notes",
        json!({"query": "offsite"}),
    )
    .await;
    let first = &found["structuredContent"]["notes"][0];
    assert_eq!(first["title"], "Q4 engineering offsite agenda", "{found}");
    let id = first["id"].as_str().unwrap().to_owned();
    let note = call_ok(&demo, &alice, "notes_get_note", json!({"id": id})).await;
    assert!(
        note["structuredContent"]["body"]
            .as_str()
            .unwrap()
            .contains("architecture review"),
        "{note}"
    );

    // A write goes through to the upstream and is there to read back.
    let created = call_ok(
        &demo,
        &alice,
        "notes_create_note",
        json!({"title": "Demo retro", "body": "The notes server works.", "tags": ["demo"]}),
    )
    .await;
    let new_id = created["structuredContent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = call_ok(
        &demo,
        &alice,
        "notes_search_notes",
        json!({"query": "demo retro"}),
    )
    .await;
    assert_eq!(
        again["structuredContent"]["notes"][0]["id"],
        new_id.as_str()
    );

    // Every call is audited like a native adapter's, under the instance's tool name.
    let audit = std::fs::read_to_string(demo.data_dir().join("audit.jsonl")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["tool"].as_str(), last["decision"].as_str()),
        (Some("notes_search_notes"), Some("allow")),
        "{last}"
    );
}

#[tokio::test]
async fn staff_read_the_notes_but_only_writers_see_and_call_create_note() {
    let demo = Demo::start(&[]);
    let bob = demo.token("bob");

    let names = tools_with_notes(&demo, &bob).await;
    assert_eq!(
        notes_tools(&names),
        [
            "notes_get_note",
            "notes_pick_note",
            "notes_search_notes",
            "notes_suggest_title"
        ],
        "bob (staff) reads, as for every read-only tool"
    );
    call_ok(&demo, &bob, "notes_get_note", json!({"id": "note-0001"})).await;
    let write = demo
        .call_tool(
            &bob,
            "notes_create_note",
            json!({"title": "not mine", "body": "-"}),
        )
        .await;
    assert_eq!(
        write["error"]["message"], "Unknown tool: notes_create_note",
        "{write}"
    );
}
