//! The `mcp` kind's sandbox notes server, through rmcp's own client on both protocol eras: its
//! tools, resources and prompt answer, a new note reaches subscribers, and an `mcp` instance
//! pointed where `sandbox = true` points it connects and calls it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use manifold_adapters::{
    AdapterKind, CallContext, Health, InstanceSettings, Registry, ToolAnswer, UpstreamClient,
    UpstreamConfig,
    mcp::{
        McpKind,
        sandbox::{INDEX_URI, NOTE_TEMPLATE},
    },
    sandbox::SandboxServer,
};
use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, ClientCapabilities, ClientConfig, ContentBlock, ErrorCode,
        GetPromptRequestParams, Implementation, ProtocolVersion, ReadResourceRequestParams,
        ResourceContents, ResourceUpdatedNotificationParam, ServerNotification,
        SubscribeRequestParams, SubscriptionFilter,
    },
    service::{
        ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService, ServiceError,
    },
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use url::Url;

/// A sandbox server with only the `mcp` kind's emulator, and the URL `sandbox = true` gives.
async fn notes_server() -> (SandboxServer, Url) {
    let mut registry = Registry::default();
    registry.register(Arc::new(McpKind));
    let server = SandboxServer::start(&registry, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = server.base_url(McpKind.sandbox_mount());
    (server, url)
}

/// Takes the server's resource notifications, for the subscription tests.
#[derive(Clone)]
struct Listener {
    events: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Listener {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("notes-test", "1"),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.events.send(format!("updated {}", params.uri));
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.events.send("list changed".into());
    }
}

async fn connect<H: ClientHandler>(
    handler: H,
    url: &Url,
    modern: bool,
) -> RunningService<RoleClient, H> {
    let transport = StreamableHttpClientTransport::from_uri(url.as_str());
    if modern {
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        };
        handler
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .unwrap()
    } else {
        handler.serve(transport).await.unwrap()
    }
}

fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = arguments.as_object().cloned();
    params
}

fn mcp_error(error: ServiceError) -> ErrorCode {
    match error {
        ServiceError::McpError(error) => error.code,
        other => panic!("not an MCP error: {other}"),
    }
}

async fn tools_resources_and_prompts_answer(modern: bool) {
    let (_server, url) = notes_server().await;
    let client = connect(
        Listener {
            events: mpsc::unbounded_channel().0,
        },
        &url,
        modern,
    )
    .await;
    let era = if modern { "2026-07-28" } else { "2025-11-25" };
    let version = &client.peer_info().unwrap().protocol_version;
    assert_eq!(version.to_string(), era);

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "search_notes",
            "get_note",
            "create_note",
            "pick_note",
            "suggest_title"
        ],
        "{era}"
    );
    let hints = |name: &str| {
        let a = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .annotations
            .clone()
            .unwrap();
        (a.read_only_hint, a.destructive_hint)
    };
    assert_eq!(hints("search_notes"), (Some(true), Some(false)));
    assert_eq!(hints("create_note"), (Some(false), Some(false)));

    let found = client
        .call_tool(call("search_notes", json!({"query": "cache incident"})))
        .await
        .unwrap();
    assert_eq!(found.is_error, Some(false));
    let found = found.structured_content.unwrap();
    assert_eq!(found["notes"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["notes"][0]["id"], "note-0002");

    let note = client
        .call_tool(call("get_note", json!({"id": "note-0002"})))
        .await
        .unwrap();
    let note = note.structured_content.unwrap();
    assert_eq!(note["title"], "Incident 2026-11-14: search latency");
    assert_eq!(note["uri"], "notes://note/note-0002");
    let missing = client
        .call_tool(call("get_note", json!({"id": "note-9999"})))
        .await
        .unwrap();
    assert_eq!(
        missing.is_error,
        Some(true),
        "an unknown note is a tool error"
    );
    let wrong = client
        .call_tool(call("search_notes", json!({"query": 7})))
        .await
        .unwrap_err();
    assert_eq!(mcp_error(wrong), ErrorCode::INVALID_PARAMS);

    let resources = client.list_all_resources().await.unwrap();
    assert_eq!(resources[0].uri, INDEX_URI);
    assert_eq!(resources.len(), 1 + 6, "the index and the six seeded notes");
    assert!(resources.iter().any(|r| r.uri == "notes://note/note-0003"));
    let templates = client.list_all_resource_templates().await.unwrap();
    assert_eq!(templates[0].uri_template, NOTE_TEMPLATE);
    let read = client
        .read_resource(ReadResourceRequestParams::new("notes://note/note-0003"))
        .await
        .unwrap();
    match &read.contents[0] {
        ResourceContents::TextResourceContents { text, uri, .. } => {
            assert_eq!(uri, "notes://note/note-0003");
            assert!(text.starts_with("# Onboarding checklist"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let nothing = client
        .read_resource(ReadResourceRequestParams::new("notes://note/nope"))
        .await
        .unwrap_err();
    assert_eq!(mcp_error(nothing), ErrorCode::INVALID_PARAMS);

    let prompts = client.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 1);
    let argument = &prompts[0].arguments.as_ref().unwrap()[0];
    assert_eq!(
        (
            prompts[0].name.as_str(),
            argument.name.as_str(),
            argument.required
        ),
        ("summarize_note", "note_id", Some(true))
    );
    let mut arguments = serde_json::Map::new();
    arguments.insert("note_id".into(), json!("note-0004"));
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("summarize_note").with_arguments(arguments))
        .await
        .unwrap();
    assert_eq!(prompt.messages.len(), 2);
    match &prompt.messages[1].content {
        ContentBlock::Resource(embedded) => match &embedded.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => {
                assert_eq!(uri, "notes://note/note-0004");
                assert!(text.contains("Northwind"), "{text}");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let unnamed = client
        .get_prompt(GetPromptRequestParams::new("summarize_note"))
        .await
        .unwrap_err();
    assert_eq!(mcp_error(unnamed), ErrorCode::INVALID_PARAMS);

    let created = client
        .call_tool(call(
            "create_note",
            json!({"title": "Retro", "body": "Went well.", "tags": ["Team"]}),
        ))
        .await
        .unwrap();
    let created = created.structured_content.unwrap();
    assert_eq!(created["id"], "note-0007");
    assert_eq!(created["tags"], json!(["team"]));
    let listed = client.list_all_resources().await.unwrap();
    assert!(listed.iter().any(|r| r.uri == "notes://note/note-0007"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_notes_server_answers_tools_resources_and_prompts_on_a_2025_session() {
    tools_resources_and_prompts_answer(false).await;
}

#[tokio::test]
async fn the_notes_server_answers_tools_resources_and_prompts_on_2026_07_28() {
    tools_resources_and_prompts_answer(true).await;
}

/// The next notification, or a failure after a few seconds.
async fn next(events: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("a notification in time")
        .expect("the client is still there")
}

// `resources/subscribe` is deprecated only for 2026-07-28; 2025 sessions still use it.
#[allow(deprecated)]
#[tokio::test]
async fn a_new_note_reaches_a_session_subscribed_to_the_index_and_only_what_it_subscribed_to() {
    let (_server, url) = notes_server().await;
    let (events, mut heard) = mpsc::unbounded_channel();
    let client = connect(Listener { events }, &url, false).await;
    client
        .subscribe(SubscribeRequestParams::new(INDEX_URI))
        .await
        .unwrap();
    let unknown = client
        .subscribe(SubscribeRequestParams::new("notes://note/note-4242"))
        .await
        .unwrap_err();
    assert_eq!(mcp_error(unknown), ErrorCode::INVALID_PARAMS);

    // Another client writes: the subscriber hears it on its own session.
    let writer = connect(
        Listener {
            events: mpsc::unbounded_channel().0,
        },
        &url,
        false,
    )
    .await;
    writer
        .call_tool(call(
            "create_note",
            json!({"title": "Standup", "body": "-"}),
        ))
        .await
        .unwrap();
    assert_eq!(next(&mut heard).await, format!("updated {INDEX_URI}"));
    assert_eq!(next(&mut heard).await, "list changed");

    // A search changes nothing, and after unsubscribing only the list change is heard.
    writer
        .call_tool(call("search_notes", json!({"query": "standup"})))
        .await
        .unwrap();
    client
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new(INDEX_URI))
        .await
        .unwrap();
    writer
        .call_tool(call("create_note", json!({"title": "Second", "body": "-"})))
        .await
        .unwrap();
    assert_eq!(next(&mut heard).await, "list changed");
    assert!(heard.try_recv().is_err(), "nothing else was sent");
    writer.cancel().await.unwrap();
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_new_note_reaches_a_2026_07_28_listener_of_the_index() {
    let (_server, url) = notes_server().await;
    let client = connect(
        Listener {
            events: mpsc::unbounded_channel().0,
        },
        &url,
        true,
    )
    .await;
    let mut filter = SubscriptionFilter::builder()
        .resources_list_changed()
        .build();
    filter.resource_subscriptions = Some(vec![INDEX_URI.to_owned(), "notes://nope".to_owned()]);
    let mut subscription = client.peer().listen(filter).await.unwrap();
    assert_eq!(
        subscription.acknowledged().resource_subscriptions,
        Some(vec![INDEX_URI.to_owned()]),
        "only URIs the server has are accepted"
    );
    client
        .call_tool(call("create_note", json!({"title": "Plan", "body": "-"})))
        .await
        .unwrap();
    let mut heard = Vec::new();
    for _ in 0..2 {
        let notification = tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .expect("a notification in time")
            .unwrap()
            .expect("the stream is open");
        heard.push(match notification {
            ServerNotification::ResourceUpdatedNotification(n) => {
                format!("updated {}", n.params.uri)
            }
            ServerNotification::ResourceListChangedNotification(_) => "list changed".into(),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(
        heard,
        [format!("updated {INDEX_URI}"), "list changed".into()]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_mcp_instance_at_the_sandbox_url_connects_and_calls_the_notes_server() {
    let (_server, url) = notes_server().await;
    let client = UpstreamClient::new(UpstreamConfig::default())
        .unwrap()
        .for_instance("notes", 8);
    let adapter = McpKind
        .build(InstanceSettings {
            name: "notes".into(),
            base_url: url,
            client,
            settings: serde_json::Map::new(),
            credentials: Default::default(),
        })
        .expect("the sandbox URL is one the mcp kind accepts");
    let shutdown = tokio_util::sync::CancellationToken::new();
    adapter.start(shutdown.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while adapter.health() != Some(Health::Up) || adapter.tools().current().len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not up: {:?}",
            adapter.health()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut arguments = serde_json::Map::new();
    arguments.insert("query".into(), json!("offsite"));
    let answer = adapter
        .answer("search_notes", arguments, &CallContext::default())
        .await
        .unwrap();
    let ToolAnswer::Mcp(result) = answer else {
        panic!("not an MCP answer")
    };
    assert_eq!(
        result.structured_content.unwrap()["notes"][0]["title"],
        "Q4 engineering offsite agenda"
    );
    shutdown.cancel();
}
