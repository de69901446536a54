//! The legacy HTTP+SSE server transport (MCP 2024-11-05), which rmcp does not offer: `GET /sse`
//! opens a session whose first event, `endpoint`, names `/messages?sessionId=<id>`; each POST
//! there feeds one client message to an rmcp server running over channels and is answered 202;
//! the server's messages go out on the GET stream as `message` events. The fixture serves it with
//! `--sse ADDR`, and the gateway's and adapters' tests include this file as their SSE upstream.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{SinkExt as _, StreamExt as _, channel::mpsc, stream};
use rmcp::{
    ServerHandler, ServiceExt as _,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
};
use tokio_util::sync::CancellationToken;

/// Client messages a session buffers before a POST waits.
const BUFFER: usize = 64;

type Sessions = Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>;

struct Inner<F> {
    make: F,
    sessions: Sessions,
    stop: CancellationToken,
}

/// `GET /sse` and `POST /messages`, one `make()` server per session. Cancelling `stop` ends every
/// event stream, so a graceful shutdown does not wait for them.
pub fn router<S, F>(make: F, stop: CancellationToken) -> Router
where
    S: ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    let inner = Arc::new(Inner {
        make,
        sessions: Mutex::new(HashMap::new()),
        stop,
    });
    Router::new()
        .route("/sse", get(open::<S, F>))
        .route("/messages", post(message::<S, F>))
        .with_state(inner)
}

/// Forgets a session when its event stream is dropped (the client left or `stop`): its server's
/// input then ends, and so does the server.
struct Forget<F> {
    inner: Arc<Inner<F>>,
    id: String,
}

impl<F> Drop for Forget<F> {
    fn drop(&mut self) {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

async fn open<S, F>(State(inner): State<Arc<Inner<F>>>) -> Response
where
    S: ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    let id = format!("{:016x}", rand::random::<u64>());
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(BUFFER);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(BUFFER);
    inner
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), to_server);
    let server = (inner.make)();
    tokio::spawn(async move {
        // A client that leaves before `initialize` is not an error for a test server.
        if let Ok(running) = server.serve((to_client, from_client)).await {
            let _ = running.waiting().await;
        }
    });
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={id}"));
    let forget = Forget {
        inner: inner.clone(),
        id,
    };
    let messages = from_server.map(move |message| {
        let _session = &forget;
        // Compact JSON has no line breaks, so it is one `data:` line.
        let data = serde_json::to_string(&message).unwrap_or_default();
        Event::default().event("message").data(data)
    });
    let events = stream::once(async { endpoint })
        .chain(messages)
        .take_until(inner.stop.clone().cancelled_owned())
        .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn message<S, F>(
    State(inner): State<Arc<Inner<F>>>,
    Query(query): Query<HashMap<String, String>>,
    Json(message): Json<ClientJsonRpcMessage>,
) -> StatusCode
where
    S: ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    let session = query.get("sessionId").and_then(|id| {
        inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    });
    match session {
        Some(mut session) => match session.send(message).await {
            Ok(()) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::GONE,
        },
        None => StatusCode::NOT_FOUND,
    }
}
