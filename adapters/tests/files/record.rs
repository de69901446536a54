//! An emulator served behind a recording layer: every answer it gives (status, JSON body and the
//! `Dropbox-API-Result` header) is kept, for checking the answers against the providers' specs.

use std::sync::{Arc, Mutex};

use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use manifold_adapters::AdapterKind;
use serde_json::Value;

/// One answer of the emulator.
#[derive(Debug, Clone)]
pub struct Answer {
    pub method: String,
    /// The path under the kind's mount, e.g. `/2.0/folders/0/items` or `/2/files/list_folder`.
    pub path: String,
    pub status: u16,
    /// The JSON body, or `Null` when the body is empty or not JSON.
    pub body: Value,
    /// The parsed `Dropbox-API-Result` header of a download, if any.
    pub api_result: Option<Value>,
}

pub type Answers = Arc<Mutex<Vec<Answer>>>;

/// Keeps the server task alive for as long as the `Env` lives.
pub struct Served(pub tokio::task::JoinHandle<()>);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn record(
    State(answers): State<(Answers, String)>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("answer body");
    let api_result = parts
        .headers
        .get("dropbox-api-result")
        .and_then(|v| v.to_str().ok())
        .map(|v| serde_json::from_str(v).expect("Dropbox-API-Result is JSON"));
    let is_json = parts
        .headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let answer = Answer {
        method,
        path: path
            .strip_prefix(answers.1.as_str())
            .unwrap_or(&path)
            .to_owned(),
        status: parts.status.as_u16(),
        body: if is_json {
            serde_json::from_slice(&bytes).expect("JSON answer parses")
        } else {
            Value::Null
        },
        api_result,
    };
    answers.0.lock().expect("answers").push(answer);
    Response::from_parts(parts, Body::from(bytes))
}

/// Serves `kind`'s emulator under `/<mount>` behind the recording layer on a free port.
pub async fn serve(kind: &dyn AdapterKind) -> (std::net::SocketAddr, Answers, Served) {
    let answers = Answers::default();
    let mount = format!("/{}", kind.sandbox_mount());
    let router = axum::Router::new()
        .nest(&mount, kind.sandbox().expect("the kind has an emulator"))
        .layer(axum::middleware::from_fn_with_state(
            (answers.clone(), mount),
            record,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    (addr, answers, Served(task))
}
