//! An upstream MCP server's log notifications during a call reach the client that made the
//! call, for upstreams of both eras: a 2026-07-28 upstream on the call's own answer stream (the
//! direct path), hearing the client's level in the request's `_meta`; a 2025-era upstream on
//! the gateway's session, asked for every level once (`logging/setLevel debug`). Either way the
//! client hears only what its own threshold admits, masked by the tool's redaction rules, with
//! the instance named in the `logger`: from rmcp's session service on the session's stream, and
//! from the session fast path ahead of the answer, on the call's own stream.
// Logging is deprecated by SEP-2577, and still what these tests relay.
#![allow(clippy::unwrap_used, deprecated)]

mod support;

use std::{sync::Arc, time::Duration};

use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{
        ClientCapabilities, ClientConfig, Implementation, LoggingLevel,
        LoggingMessageNotificationParam, SetLevelRequestParams,
    },
    service::NotificationContext,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;
use support::{
    asking_mcp::Asking,
    in_session,
    mcp_gateway::{call, connect, instance, until_listed},
    open_session, post,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "AKIAIOSFODNN7EXAMPLE";

/// A downstream session that tells the log notifications it hears.
struct Listening(mpsc::UnboundedSender<LoggingMessageNotificationParam>);

impl ClientHandler for Listening {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("listening", "1"),
        )
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params);
    }
}

#[tokio::test]
async fn an_upstreams_logs_reach_the_caller_under_its_threshold_masked_and_named() {
    for legacy in [false, true] {
        let stop = CancellationToken::new();
        let upstream = Arc::new(Asking::default());
        upstream
            .legacy
            .store(legacy, std::sync::atomic::Ordering::SeqCst);
        let url = upstream.serve(stop.clone()).await;
        let gateway = support::start(&instance(&url, "")).await;
        let (lister, _) = connect(&gateway.url()).await;
        until_listed(&lister, "up_log_leaky").await;

        let (sender, mut heard) = mpsc::unbounded_channel();
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(gateway.url()),
        );
        let client = Listening(sender).serve(transport).await.unwrap();
        client
            .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
            .await
            .unwrap();
        let result = client
            .call_tool(call("up_log_leaky", json!({})))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(false), "legacy={legacy}: {result:?}");

        let mut logs = Vec::new();
        while logs.len() < 2 {
            let log = tokio::time::timeout(Duration::from_secs(10), heard.recv())
                .await
                .unwrap_or_else(|_| panic!("legacy={legacy}: only {logs:?} heard"))
                .unwrap();
            logs.push(log);
        }
        // Anything else would have come with these.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            heard.try_recv().is_err(),
            "legacy={legacy}: the debug line is under the client's threshold"
        );
        let levels: Vec<LoggingLevel> = logs.iter().map(|log| log.level).collect();
        assert_eq!(
            levels,
            [LoggingLevel::Info, LoggingLevel::Warning],
            "legacy={legacy}"
        );
        for log in &logs {
            assert_eq!(log.logger.as_deref(), Some("up/db"), "legacy={legacy}");
        }
        assert_eq!(logs[0].data, json!("info line"));
        let warning = logs[1].data.to_string();
        assert!(warning.contains("slow query"), "{warning}");
        assert!(!warning.contains(SECRET), "legacy={legacy}: {warning}");

        // What the upstream was asked to send: everything on the shared session, the caller's
        // own level per request at 2026-07-28.
        let asked = upstream.log_levels.lock().unwrap().clone();
        if legacy {
            assert_eq!(asked, ["setLevel:debug"]);
        } else {
            assert_eq!(asked, ["call:info"]);
        }

        client.cancel().await.unwrap();
        lister.cancel().await.unwrap();
        gateway.running.shutdown.cancel();
        stop.cancel();
    }
}

#[tokio::test]
async fn the_session_fast_path_sends_an_upstreams_logs_ahead_of_its_answer() {
    let stop = CancellationToken::new();
    let upstream = Arc::new(Asking::default());
    let url = upstream.serve(stop.clone()).await;
    let gateway = support::start(&instance(&url, "")).await;
    let (lister, _) = connect(&gateway.url()).await;
    until_listed(&lister, "up_log_leaky").await;

    // A plain call in a session that declared nothing to be asked: the fast path serves it.
    let http = reqwest::Client::new();
    let version = "2025-11-25";
    let session = open_session(&http, &gateway.url(), version).await;
    let headers = in_session(&session, version);
    let set_level =
        r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"info"}}"#;
    let (status, ..) = post(&http, &gateway.url(), &headers, set_level).await;
    assert_eq!(status, 200);
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "up_log_leaky", "arguments": {}}});
    let (status, _, messages, _) = post(&http, &gateway.url(), &headers, &body.to_string()).await;
    assert_eq!(status, 200);
    let (answer, logs) = messages.split_last().unwrap();
    assert_eq!(answer["id"], 2, "the answer comes last: {messages:?}");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let levels: Vec<&serde_json::Value> = logs.iter().map(|log| &log["params"]["level"]).collect();
    assert_eq!(levels, [&json!("info"), &json!("warning")], "{messages:?}");
    for log in logs {
        assert_eq!(log["method"], "notifications/message");
        assert_eq!(log["params"]["logger"], "up/db");
    }
    assert!(!logs[1].to_string().contains(SECRET), "{}", logs[1]);
    assert_eq!(*upstream.log_levels.lock().unwrap(), ["call:info"]);

    lister.cancel().await.unwrap();
    gateway.running.shutdown.cancel();
    stop.cancel();
}
