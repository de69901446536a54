//! The shared upstream client against a small local server: the per-instance concurrency limit
//! holds, `traceparent` continues the caller's trace on every attempt, and a cancelled call stops
//! waiting at once.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, http::HeaderMap, routing::post};
use manifold_adapters::{
    CallContext, ToolError, UpstreamClient, UpstreamConfig,
    upstream::{Traceparent, UpstreamRequest},
};

#[derive(Default)]
struct Seen {
    in_flight: AtomicUsize,
    most: AtomicUsize,
    calls: AtomicUsize,
    traceparents: Mutex<Vec<String>>,
}

async fn slow(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
) -> (axum::http::StatusCode, &'static str) {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.most.fetch_max(now, Ordering::SeqCst);
    let call = seen.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(value) = headers.get("traceparent") {
        seen.traceparents
            .lock()
            .unwrap()
            .push(value.to_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    // The first answer is a 503, so an idempotent request is sent twice.
    if call == 0 {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy")
    } else {
        (axum::http::StatusCode::OK, "ok")
    }
}

async fn server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let hang = || async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "late"
    };
    let app = Router::new()
        .route("/x", post(slow))
        .route("/hang", post(hang))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn request(url: &str) -> UpstreamRequest {
    UpstreamRequest::new(http::Method::POST, url.parse().unwrap()).idempotent(true)
}

#[tokio::test]
async fn concurrency_limit_and_trace_context_hold() {
    let (url, seen) = server().await;
    let mut config = UpstreamConfig::default();
    config.retry.initial_backoff = Duration::from_millis(10);
    let client = UpstreamClient::new(config).unwrap().for_instance("t", 2);
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let ctx = CallContext {
        traceparent: Some(trace.into()),
        ..CallContext::default()
    };
    let calls = (0..8).map(|_| client.send(request(&url), &ctx));
    let answers = futures::future::join_all(calls).await;
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|r| r.status == 200)),
        "{answers:?}"
    );
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        9,
        "one retry after the 503"
    );
    assert!(
        seen.most.load(Ordering::SeqCst) <= 2,
        "limit exceeded: {}",
        seen.most.load(Ordering::SeqCst)
    );
    let parent = Traceparent::parse(trace).unwrap();
    let headers = seen.traceparents.lock().unwrap().clone();
    assert_eq!(headers.len(), 9);
    for header in &headers {
        let child = Traceparent::parse(header).unwrap();
        assert_eq!(
            child.trace_id(),
            parent.trace_id(),
            "trace not continued: {header}"
        );
        assert_ne!(header, trace, "each attempt is its own span");
    }
}

#[tokio::test]
async fn cancelling_stops_a_call_at_once() {
    let (url, _seen) = server().await;
    let client = UpstreamClient::new(UpstreamConfig::default())
        .unwrap()
        .for_instance("t", 1);
    let ctx = CallContext::default();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let hanging = url.replace("/x", "/hang");
    let outcome = client.send(request(&hanging), &ctx).await;
    assert!(matches!(outcome, Err(ToolError::Cancelled)), "{outcome:?}");
    // The provider would answer after 30 s; the call returns as soon as it is cancelled.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unreachable_provider_is_a_clear_error() {
    let client = UpstreamClient::new(UpstreamConfig {
        retry: manifold_adapters::upstream::RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            ..Default::default()
        },
        ..UpstreamConfig::default()
    })
    .unwrap()
    .for_instance("t", 1);
    let outcome = client
        .send(request("http://127.0.0.1:9/x"), &CallContext::default())
        .await;
    assert!(
        matches!(outcome, Err(ToolError::Unreachable(_))),
        "{outcome:?}"
    );
}
