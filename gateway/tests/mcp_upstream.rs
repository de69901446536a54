//! An upstream MCP server behind the gateway (`kind = "mcp"`), reached by rmcp's client through
//! the gateway: its tools appear under the instance prefix once it is up, every content type
//! passes through, redaction and the audit log cover its answers, a new tool is announced to
//! the gateway's own sessions, an upstream that is down degrades only itself, and what an
//! upstream offers that clients would refuse is left out.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use rmcp::{
    RoleClient,
    model::{ProtocolVersion, ServerNotification, SubscriptionFilter},
    service::{ClientLifecycleMode, ClientServiceExt},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use support::{
    mcp_gateway::{
        Client, Heard, Setup, behind_gateway, call, connect, healthz, instance, tool_names,
        until_listed,
    },
    upstream_mcp::Upstream,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn an_upstream_servers_tools_are_proxied_whole_redacted_audited_and_announced() {
    let Setup {
        stop,
        upstream,
        gateway,
        client,
        mut changes,
    } = behind_gateway("", "echo").await;

    let names = tool_names(&client).await;
    assert!(
        names.contains(&"t_echo".to_owned()),
        "native tools stay: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("dot")),
        "refused name listed: {names:?}"
    );
    let tools = client.list_all_tools().await.unwrap();
    let echo = tools.iter().find(|t| t.name == "up_echo").unwrap();
    assert!(echo.output_schema.is_some(), "outputSchema passes through");
    assert_eq!(echo.meta.as_ref().unwrap().0["vendor/x"], "kept");
    let media = tools.iter().find(|t| t.name == "up_media").unwrap();
    let hints = media.annotations.as_ref().unwrap();
    assert_eq!(
        hints.read_only_hint,
        Some(false),
        "untrusted annotations are claims"
    );
    assert_eq!(hints.destructive_hint, Some(true));

    let echoed = client
        .call_tool(call("up_echo", json!({"text": "hi"})))
        .await
        .unwrap();
    assert_eq!(echoed.structured_content, Some(json!({"echo": "hi"})));
    assert_eq!(echoed.content[0].as_text().unwrap().text, "hi");

    let media = client.call_tool(call("up_media", json!({}))).await.unwrap();
    let kinds: Vec<Value> = media
        .content
        .iter()
        .map(|block| serde_json::to_value(block).unwrap()["type"].clone())
        .collect();
    assert_eq!(
        kinds,
        json!(["text", "image", "audio", "resource_link", "resource"])
            .as_array()
            .unwrap()
            .clone()
    );
    let image = serde_json::to_value(&media.content[1]).unwrap();
    assert_eq!(image["data"], "iVBORw0KGgo=", "binary passes untouched");

    let leak = client.call_tool(call("up_leak", json!({}))).await.unwrap();
    let text = serde_json::to_string(&leak).unwrap();
    assert!(
        !text.contains("AKIAIOSFODNN7EXAMPLE"),
        "secret passed: {text}"
    );

    let failed = client.call_tool(call("up_fails", json!({}))).await.unwrap();
    assert_eq!(failed.is_error, Some(true));

    // The upstream got the instance's credential, never the client's (which had none).
    let seen = upstream.authorizations.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|h| h == "Bearer upstream-secret"),
        "{seen:?}"
    );

    // A new upstream tool reaches the gateway's own session as a list change.
    while changes.try_recv().is_ok() {}
    upstream.add_tool().await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while changes.recv().await != Some(Heard::ToolsChanged) {}
    })
    .await
    .expect("no tools/list_changed from the gateway");
    until_listed(&client, "up_added").await;

    let audit = std::fs::read_to_string(gateway.dir.path().join("audit.jsonl")).unwrap_or_default();
    assert!(
        audit.contains("\"tool\":\"up_echo\""),
        "no audit record: {audit}"
    );
    assert!(!audit.contains("AKIAIOSFODNN7EXAMPLE"));
    assert!(!audit.contains("upstream-secret"));

    client.cancel().await.unwrap();
    gateway.running.shutdown.cancel();
    stop.cancel();
}

#[tokio::test]
async fn an_upstream_that_is_down_degrades_only_itself_and_its_tools_arrive_when_it_comes_up() {
    // A port nothing listens on yet.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let gateway = support::start(&instance(&format!("http://{addr}/mcp"), "")).await;
    let (client, _changes) = connect(&gateway.url()).await;
    let names = tool_names(&client).await;
    assert!(names.contains(&"t_echo".to_owned()) && !names.iter().any(|n| n.starts_with("up_")));
    let health = healthz(&gateway).await;
    assert!(
        health.starts_with("ok") && health.contains("degraded: up"),
        "{health}"
    );
    assert!(!health.contains("upstream-secret"));

    // The upstream comes up where the config says: its tools join the catalog.
    let stop = CancellationToken::new();
    let upstream = Arc::new(Upstream::default());
    let _ = upstream.serve_at(addr, stop.clone()).await;
    until_listed(&client, "up_echo").await;
    let health = healthz(&gateway).await;
    assert_eq!(health, "ok");

    client.cancel().await.unwrap();
    gateway.running.shutdown.cancel();
    stop.cancel();
}

#[tokio::test]
async fn a_call_the_client_cancels_or_that_outlives_the_call_timeout_is_cancelled_upstream() {
    // support's config: call_timeout = "5s".
    let setup = behind_gateway("", "slow").await;
    let upstream = setup.upstream.clone();
    let started = Instant::now();
    let answer = setup
        .client
        .call_tool(call("up_slow", json!({})))
        .await
        .unwrap();
    assert_eq!(answer.is_error, Some(true));
    assert!(started.elapsed() < Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream call was never cancelled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    setup.end().await;
}

#[tokio::test]
async fn an_answer_over_the_cap_is_refused_clearly_and_the_upstream_stays_usable() {
    let setup = behind_gateway(
        "[adapters.up.settings]\nmax_response_bytes = 65536\n",
        "huge",
    )
    .await;
    let client = &setup.client;
    let huge = client.call_tool(call("up_huge", json!({}))).await.unwrap();
    assert_eq!(huge.is_error, Some(true));
    let text = serde_json::to_string(&huge).unwrap();
    assert!(text.len() < 65536, "the oversized answer came through");
    assert!(
        text.contains("65536"),
        "the error does not name the cap: {text}"
    );
    let echoed = client
        .call_tool(call("up_echo", json!({"text": "still here"})))
        .await
        .unwrap();
    assert_eq!(
        echoed.structured_content,
        Some(json!({"echo": "still here"}))
    );
    setup.end().await;
}

/// The calls of `name` until one succeeds, for an upstream that is coming back: meanwhile a
/// call gets a tool error (not connected), or no such tool while the restarted upstream, itself
/// still starting, lists none yet.
async fn until_served(
    client: &rmcp::service::RunningService<RoleClient, Client>,
    name: &str,
) -> rmcp::model::CallToolResult {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = client
            .call_tool(call(name, json!({"text": "via stdio"})))
            .await;
        match answer {
            Ok(answer) if answer.is_error != Some(true) => return answer,
            Ok(answer) => assert!(Instant::now() < deadline, "{name} never served: {answer:?}"),
            Err(rmcp::ServiceError::McpError(error)) if error.message.contains("Unknown tool") => {
                assert!(Instant::now() < deadline, "{name} never listed again");
            }
            Err(other) => panic!("{name}: {other}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_stdio_upstream_is_spawned_and_restarted_after_it_is_killed() {
    // The stdio upstream is a second gateway (`manifold stdio`) in front of the HTTP test
    // upstream: a real MCP server over stdin/stdout, spawned from the config.
    let stop = CancellationToken::new();
    let upstream = Arc::new(Upstream::default());
    let url = upstream.serve(stop.clone()).await;
    let inner = tempfile::tempdir().unwrap();
    let inner_config = inner.path().join("inner.toml");
    std::fs::write(
        &inner_config,
        format!(
            "[storage]\ndata_dir = \"{}\"\n{}",
            inner.path().join("data").display(),
            instance(&url, "")
        ),
    )
    .unwrap();
    let outer = format!(
        "\n[adapters.notes]\nkind = \"mcp\"\nsettings.command = [\"{}\", \"stdio\", \"--config\", \"{}\"]\n",
        support::manifold_bin(),
        inner_config.display()
    );
    let gateway = support::start(&outer).await;
    let (client, _changes) = connect(&gateway.url()).await;
    until_listed(&client, "notes_up_echo").await;
    let echoed = until_served(&client, "notes_up_echo").await;
    assert_eq!(
        echoed.structured_content,
        Some(json!({"echo": "via stdio"}))
    );

    // Killed: the gateway notices, restarts it, and serves again.
    let pattern = inner_config.display().to_string();
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f", &pattern])
        .status()
        .unwrap();
    assert!(killed.success(), "no stdio upstream process to kill");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = healthz(&gateway).await;
        if health.contains("degraded: notes") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed upstream was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let echoed = until_served(&client, "notes_up_echo").await;
    assert_eq!(
        echoed.structured_content,
        Some(json!({"echo": "via stdio"}))
    );

    client.cancel().await.unwrap();
    gateway.running.shutdown.cancel();
    stop.cancel();
}

#[tokio::test]
async fn a_2026_client_hears_of_a_new_upstream_tool_on_its_listen_stream() {
    let setup = behind_gateway("", "echo").await;
    let (sender, _changes) = mpsc::unbounded_channel();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(setup.gateway.url()),
    );
    let modern = Client(sender)
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let mut subscription = modern.peer().listen(filter).await.unwrap();
    setup.upstream.add_tool().await;
    let notification = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("no notification on the listen stream")
        .unwrap()
        .expect("the stream ended");
    assert!(
        matches!(
            notification,
            ServerNotification::ToolListChangedNotification(_)
        ),
        "{notification:?}"
    );
    until_listed(&setup.client, "up_added").await;
    drop(subscription);
    modern.cancel().await.unwrap();
    setup.end().await;
}

#[tokio::test]
async fn an_upstream_answering_429_or_500_gets_a_tool_error_and_is_served_again_once_healthy() {
    let setup = behind_gateway("", "echo").await;
    for status in [429, 500, 503] {
        setup.upstream.http_status.store(status, Ordering::SeqCst);
        let answer = setup
            .client
            .call_tool(call("up_echo", json!({"text": "hi"})))
            .await
            .unwrap();
        assert_eq!(answer.is_error, Some(true), "{status}: {answer:?}");
        let text = serde_json::to_string(&answer).unwrap();
        assert!(!text.contains("upstream-secret"), "{text}");
        setup.upstream.http_status.store(0, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = setup
                .client
                .call_tool(call("up_echo", json!({"text": "back"})))
                .await
                .unwrap();
            if answer.is_error != Some(true) {
                assert_eq!(answer.structured_content, Some(json!({"echo": "back"})));
                break;
            }
            assert!(Instant::now() < deadline, "{status}: never served again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    setup.end().await;
}

#[tokio::test]
async fn a_flood_of_list_changes_makes_a_bounded_number_of_refreshes() {
    let setup = behind_gateway("", "echo").await;
    let before = setup.upstream.tool_lists.load(Ordering::SeqCst);
    let started = Instant::now();
    setup.upstream.flood_list_changes(2_000).await;
    // Let the last refresh the flood asked for happen.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let refreshes = setup.upstream.tool_lists.load(Ordering::SeqCst) - before;
    // One refresh per 500 ms gap at most, plus the one in progress when the flood began.
    let bound = (started.elapsed().as_millis() / 500) as usize + 2;
    assert!(
        (1..=bound).contains(&refreshes),
        "{refreshes} tools/list requests for 2000 notifications in {:?} (bound {bound})",
        started.elapsed()
    );
    // The gateway still serves.
    let echoed = setup
        .client
        .call_tool(call("up_echo", json!({"text": "after the flood"})))
        .await
        .unwrap();
    assert_eq!(echoed.content[0].as_text().unwrap().text, "after the flood");
    setup.end().await;
}
