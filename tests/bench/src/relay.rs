//! `manifold-relay`: the floor under any gateway's CPU per call on this machine — a pass-through
//! HTTP relay built from the gateway's own libraries and settings (axum server, reqwest client
//! with the adapter's settings, mimalloc, one runtime worker with the same timer anchor) that
//! forwards each POST body unchanged to one upstream URL and hands the answer back. It does no
//! JSON, policy, audit or MCP work, so its CPU per call is what two loopback HTTP hops cost here,
//! which `manifold-bench` measures beside the gateway in the same run.
//!
//! Usage: `manifold-relay UPSTREAM_URL`; prints `relay listening on http://127.0.0.1:PORT`.

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    serve::ListenerExt as _,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Headers passed upstream as they came: what the adapters send besides their client's
/// defaults (Linear: content type, key and trace context; an MCP upstream: the Streamable HTTP
/// headers too). A request without one sends none, so the Linear lane's relayed request is
/// unchanged by the MCP ones.
const FORWARDED: [header::HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::AUTHORIZATION,
    header::HeaderName::from_static("traceparent"),
    header::ACCEPT,
    header::HeaderName::from_static("mcp-protocol-version"),
    header::HeaderName::from_static("mcp-session-id"),
    header::HeaderName::from_static("mcp-method"),
    header::HeaderName::from_static("mcp-name"),
];

/// Headers of the answer handed back: its type, and an MCP session's id (on `initialize`).
const RETURNED: [header::HeaderName; 2] = [
    header::CONTENT_TYPE,
    header::HeaderName::from_static("mcp-session-id"),
];

#[derive(Clone)]
struct Relay {
    http: reqwest::Client,
    upstream: String,
}

fn main() -> ExitCode {
    let Some(upstream) = std::env::args().nth(1) else {
        eprintln!("usage: manifold-relay UPSTREAM_URL");
        return ExitCode::FAILURE;
    };
    // As the gateway's runtime (gateway/src/runtime.rs): one worker on this 2-core machine.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(upstream)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(upstream: String) -> anyhow::Result<()> {
    tokio::spawn(timer_anchor());
    // The adapter's upstream client settings (adapters/src/upstream.rs).
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent("manifold/0.1.0")
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .build()
        .context("cannot build the HTTP client")?;
    let app = Router::new()
        .fallback(forward)
        .with_state(Relay { http, upstream });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind 127.0.0.1:0")?;
    let address = listener.local_addr().context("no local address")?;
    // As the gateway's server (gateway/src/transport/server.rs): no Nagle delay on answers.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("relay listening on http://{address}");
    axum::serve(listener, app).await.context("serving")?;
    Ok(())
}

async fn forward(State(relay): State<Relay>, headers: HeaderMap, body: Bytes) -> Response {
    let mut request = relay.http.post(&relay.upstream).body(body);
    for name in FORWARDED {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let status = answer.status();
    let returned: Vec<_> = RETURNED
        .into_iter()
        .filter_map(|name| {
            let value = answer.headers().get(&name)?.clone();
            Some((name, value))
        })
        .collect();
    match answer.bytes().await {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            for (name, value) in returned {
                response.headers_mut().insert(name, value);
            }
            response
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

/// The gateway's timer anchor (gateway/src/runtime.rs): with a timer always pending, the
/// per-request timeouts register without waking the I/O driver.
async fn timer_anchor() {
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    loop {
        ticks.tick().await;
    }
}
