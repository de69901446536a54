//! The call path's own tests: cancellation from elsewhere, and the refusals while the audit log
//! cannot be written.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::Duration,
};

use manifold_adapters::{Adapter, Secret, ToolAnnotations, ToolOutput, ToolSpec};
use manifold_policy::audit::{AuditLog, AuditOptions, faults::Faults};
use rmcp::model::ErrorCode;
use tokio::sync::watch;

use super::*;
use crate::{
    audit::AuditStage,
    broker::StaticCredentials,
    handler::{HandlerSettings, Stages},
    router::{Catalog, CatalogInstance},
};

/// Sets its flag when dropped: shows how long the registration is held.
struct Held(Arc<AtomicBool>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn either_token_fires_for_either_source_and_holds_the_registration_until_the_call_ends() {
    // Fired from elsewhere: the call's token fires, rmcp's does not.
    let (rmcp, elsewhere) = (CancellationToken::new(), CancellationToken::new());
    let released = Arc::new(AtomicBool::new(false));
    let extension = CancelledElsewhere::new(elsewhere.clone(), Held(released.clone()));
    let (either, guard) = extension.either(&rmcp);
    drop(extension); // the request's copy goes first; the guard still holds it
    elsewhere.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), either.cancelled())
        .await
        .expect("the call's token fires when cancelled elsewhere");
    assert!(!rmcp.is_cancelled());
    assert!(!released.load(Ordering::SeqCst));
    drop(guard);
    assert!(
        released.load(Ordering::SeqCst),
        "released when the call ends"
    );

    // Fired by rmcp.
    let (rmcp, elsewhere) = (CancellationToken::new(), CancellationToken::new());
    let (either, _guard) = CancelledElsewhere::new(elsewhere, ()).either(&rmcp);
    rmcp.cancel();
    assert!(either.is_cancelled());
}

// === refusals while the audit log cannot be written ===

/// One read tool, `echo`, counting the calls that reach it.
struct Counting(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Adapter for Counting {
    fn tools(&self) -> manifold_adapters::Tools {
        manifold_adapters::Tools::Static({
            let input = json!({"type": "object", "properties": {"text": {"type": "string"}},
                           "required": ["text"], "additionalProperties": false});
            let output = json!({"type": "object", "properties": {"echo": {"type": "string"}}});
            let echo = ToolSpec::new(
                "echo",
                "Echo",
                "Returns its text.",
                ToolAnnotations::READ,
                input,
                output,
            );
            vec![echo]
        })
    }

    async fn call(
        &self,
        _tool: &str,
        arguments: serde_json::Map<String, Value>,
        _ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(ToolOutput::from_structured(
            json!({"echo": arguments["text"]}),
        ))
    }
}

/// A gateway with `adapter` as instance `t` (tools unprefixed) and `audit` as its audit stage.
fn gateway_over(adapter: Arc<dyn Adapter>, audit: AuditStage) -> Arc<Gateway> {
    let instance = CatalogInstance {
        name: "t".into(),
        kind: "test".into(),
        prefix: None,
        only_tools: None,
        offset: 0,
        adapter,
        read_only: false,
        tool_tags: Default::default(),
        overrides: Default::default(),
    };
    let catalog = Catalog::build(vec![instance]).expect("catalog");
    let (_, catalog) = watch::channel(Arc::new(catalog));
    let credentials = HashMap::from([("t".to_owned(), Secret::new("provider-token"))]);
    Gateway::new(
        catalog,
        Stages {
            audit,
            ..Stages::default()
        },
        Arc::new(StaticCredentials::new(credentials)),
        HandlerSettings {
            tools_page_size: 10,
            call_timeout: Duration::from_secs(5),
        },
        Default::default(),
    )
}

async fn call_echo(gateway: &Gateway) -> Result<CallToolResponse, McpError> {
    let request = json!({"name": "echo", "arguments": {"text": "hi"}});
    let request: CallToolRequestParams = serde_json::from_value(request).expect("request");
    let scope = CallScope {
        principal: Principal {
            user: Some("alice".into()),
            ..Principal::default()
        },
        traceparent: None,
        cancel: CancellationToken::new(),
        url_elicitation: false,
        client: Default::default(),
        notify: std::sync::Arc::new(()),
    };
    gateway.call_tool(request, &scope).await
}

#[track_caller]
fn assert_refused(answer: Result<CallToolResponse, McpError>) {
    let error = answer.expect_err("refused");
    assert_eq!(error.code, ErrorCode::INTERNAL_ERROR);
    assert_eq!(
        error.message,
        "the audit log cannot be written; calls are refused until it can"
    );
}

#[tokio::test]
async fn while_the_audit_log_cannot_be_written_no_call_reaches_the_adapter_and_the_first_record_that_goes_in_resumes_service()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let faults = Faults::default();
    let (log, _) =
        AuditLog::open_with_faults(&path, AuditOptions::default(), &faults).expect("open");
    let reached = Arc::new(AtomicUsize::new(0));
    let gateway = gateway_over(
        Arc::new(Counting(reached.clone())),
        AuditStage::with_log(Arc::new(log), None),
    );
    call_echo(&gateway).await.expect("served");
    assert_eq!(reached.load(Ordering::SeqCst), 1);

    // The disk fills during this call: the adapter ran, but its answer has no record.
    faults.set_full(Some(30));
    assert_refused(call_echo(&gateway).await);
    assert_eq!(reached.load(Ordering::SeqCst), 2);
    // From here nothing reaches the adapter; each refusal's record fails while the disk is full.
    for _ in 0..3 {
        assert_refused(call_echo(&gateway).await);
    }
    assert_eq!(reached.load(Ordering::SeqCst), 2);
    assert!(!gateway.audit().is_writable());

    // Space again: this refusal's record goes in and ends the outage; the next call is served.
    faults.set_full(None);
    assert_refused(call_echo(&gateway).await);
    assert!(gateway.audit().is_writable());
    assert_eq!(reached.load(Ordering::SeqCst), 2);
    call_echo(&gateway).await.expect("served again, no restart");
    assert_eq!(reached.load(Ordering::SeqCst), 3);

    let report = manifold_policy::audit::verify(&path).expect("the chain is whole");
    assert!(!report.torn_tail);
    let outcomes: Vec<String> = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("json")["outcome"].to_string())
        .collect();
    assert_eq!(outcomes, [r#""ok""#, r#""audit_unavailable""#, r#""ok""#]);
    let mut metrics = String::new();
    gateway.call_metrics().render(&mut metrics);
    for line in [
        "manifold_tool_calls_total{tool=\"echo\",outcome=\"ok\"} 2",
        "manifold_tool_calls_total{tool=\"echo\",outcome=\"audit_unavailable\"} 5",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

// === what a model reads ===

#[test]
fn a_timeout_names_the_arguments_of_the_tool_that_narrow_the_call() {
    let route = crate::router::route_of(crate::router::test_tool(
        "search",
        json!({"type": "object", "properties": {
            "query": {"type": "string"}, "limit": {"type": "integer"}, "cursor": {"type": "string"}
        }}),
    ));
    let text = timed_out("mail_search", Duration::from_secs(45), Some(&route));
    assert!(
        text.starts_with("mail_search did not finish in time (a call may take at most 45 s)."),
        "{text}"
    );
    assert!(
        text.ends_with("(this tool's arguments for that: limit, query)."),
        "{text}"
    );
    let bare = timed_out("mail_ping", Duration::from_secs(45), None);
    assert!(bare.ends_with("a shorter date range."), "{bare}");
}

#[test]
fn bad_arguments_are_a_tool_error_with_every_message() {
    let errors = vec![
        "text: 5 is not of type \"string\"".to_owned(),
        "other: not allowed".to_owned(),
    ];
    let CallToolResponse::Complete(result) = bad_arguments("t_echo", &errors) else {
        panic!("a tool result");
    };
    assert_eq!(result.is_error, Some(true));
    let text = result.content[0].as_text().expect("text").text.clone();
    assert!(
        text.starts_with("invalid arguments for t_echo: text: 5 is not"),
        "{text}"
    );
    assert!(text.contains("; other: not allowed."), "{text}");
    assert!(result.structured_content.is_none());
}
