//! Test switches every emulator shares: forced rate limiting, slow answers, and a log of the
//! requests it received, driven through `/_sandbox/*` control routes.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Shared control state of one emulator. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fail_next: AtomicU32,
    retry_after_secs: AtomicU64,
    delay_millis: AtomicU64,
    requests: Mutex<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct ThrottleBody {
    fail_next: u32,
    #[serde(default)]
    retry_after_secs: u64,
}

#[derive(Debug, Deserialize)]
struct DelayBody {
    millis: u64,
}

// === impl Throttle ===

impl Throttle {
    pub fn new() -> Self {
        Self::default()
    }

    /// The control routes: `POST /_sandbox/throttle`, `POST /_sandbox/delay`,
    /// `GET /_sandbox/requests` (and `DELETE` to clear it).
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/_sandbox/throttle", post(set_throttle))
            .route("/_sandbox/delay", post(set_delay))
            .route(
                "/_sandbox/requests",
                get(list_requests).delete(clear_requests),
            )
            .with_state(self.clone())
    }

    /// Makes the next `count` requests fail with 429 and `Retry-After: retry_after_secs`.
    pub fn fail_next(&self, count: u32, retry_after_secs: u64) {
        self.inner
            .retry_after_secs
            .store(retry_after_secs, Ordering::SeqCst);
        self.inner.fail_next.store(count, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.inner.delay_millis.store(millis, Ordering::SeqCst);
    }

    /// Consumes one forced failure, returning the `Retry-After` to send, if one is pending.
    pub fn take_failure(&self) -> Option<u64> {
        self.inner
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| self.inner.retry_after_secs.load(Ordering::SeqCst))
    }

    /// Waits as long as `/_sandbox/delay` asked; every emulator calls it before answering.
    pub async fn delay(&self) {
        let millis = self.inner.delay_millis.load(Ordering::SeqCst);
        if millis > 0 {
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
    }

    /// Appends one request (in whatever JSON form the emulator chooses) to the log.
    pub fn record(&self, request: Value) {
        if let Ok(mut log) = self.inner.requests.lock() {
            log.push(request);
        }
    }

    pub fn recorded(&self) -> Vec<Value> {
        self.inner
            .requests
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }
}

/// A 429 answer with the headers rate-limited providers send (`Retry-After`, and Linear-style
/// `X-RateLimit-Requests-Remaining: 0`) and the provider's own error `body`.
pub fn too_many_requests(retry_after_secs: u64, body: Value) -> Response {
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("retry-after", HeaderValue::from(retry_after_secs));
    headers.insert(
        "x-ratelimit-requests-remaining",
        HeaderValue::from_static("0"),
    );
    response
}

async fn set_throttle(
    State(throttle): State<Throttle>,
    Json(body): Json<ThrottleBody>,
) -> Json<Value> {
    throttle.fail_next(body.fail_next, body.retry_after_secs);
    Json(json!({ "fail_next": body.fail_next, "retry_after_secs": body.retry_after_secs }))
}

async fn set_delay(State(throttle): State<Throttle>, Json(body): Json<DelayBody>) -> Json<Value> {
    throttle.set_delay(Duration::from_millis(body.millis));
    Json(json!({ "millis": body.millis }))
}

async fn list_requests(State(throttle): State<Throttle>) -> Json<Value> {
    Json(Value::Array(throttle.recorded()))
}

async fn clear_requests(State(throttle): State<Throttle>) -> StatusCode {
    if let Ok(mut log) = throttle.inner.requests.lock() {
        log.clear();
    }
    StatusCode::NO_CONTENT
}
