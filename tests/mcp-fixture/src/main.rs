//! `mcp-fixture`: an upstream MCP server implementing everything the official conformance suite's
//! server scenarios call, so the suite can be run against it directly and, later, through the
//! gateway. Streamable HTTP at `/mcp` (`--http ADDR`), the legacy HTTP+SSE transport at `/sse`
//! (`--sse ADDR`) or stdio (`--stdio`).

// Logging, sampling and roots are deprecated by SEP-2577, but the 2025 scenarios still call them
// and the fixture must answer every era the suite covers.
#![allow(deprecated)]

mod legacy_sse;
mod mrtr;
mod prompts;
mod reconnect;
mod resources;
mod server;
mod tools;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use clap::Parser;
use rmcp::{
    ServiceExt as _,
    transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService},
};
use tokio::io::AsyncWriteExt as _;

use crate::server::{Fixture, Shared};

#[derive(Debug, Parser)]
#[command(name = "mcp-fixture", about = "MCP conformance fixture server")]
struct Args {
    /// Serve Streamable HTTP at http://ADDR/mcp (port 0 picks a free port).
    #[arg(
        long,
        value_name = "ADDR",
        conflicts_with_all = ["stdio", "sse"],
        required_unless_present_any = ["stdio", "sse"]
    )]
    http: Option<SocketAddr>,
    /// Serve the legacy HTTP+SSE transport (2024-11-05) at http://ADDR/sse.
    #[arg(long, value_name = "ADDR", conflicts_with = "stdio")]
    sse: Option<SocketAddr>,
    /// Serve one client over stdin/stdout.
    #[arg(long)]
    stdio: bool,
    /// HTTP only: no legacy sessions, every request is served statelessly (2026-07-28 style).
    #[arg(long, conflicts_with_all = ["stdio", "sse"])]
    stateless: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shared = Shared::new();
    match (args.http, args.sse) {
        (Some(addr), _) => serve_http(addr, args.stateless, shared).await,
        (None, Some(addr)) => serve_sse(addr, shared).await,
        (None, None) => serve_stdio(shared).await,
    }
}

async fn serve_http(addr: SocketAddr, stateless: bool, shared: Arc<Shared>) -> anyhow::Result<()> {
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(!stateless);
    let service = StreamableHttpService::new(
        move || Ok(Fixture::new(shared.clone())),
        Arc::new(reconnect::Reconnecting::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    // An SSE answer is several small writes (headers, the event, the closing chunk): without
    // TCP_NODELAY the last one waits for the client's delayed ACK (~40 ms on Linux), which a
    // client reading to the end of the stream pays on every call.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // The one line scripts wait for; flushed before serving so they never race the bind.
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("listening on http://{local}/mcp\n").as_bytes())
        .await?;
    stdout.flush().await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn serve_sse(addr: SocketAddr, shared: Arc<Shared>) -> anyhow::Result<()> {
    let app = legacy_sse::router(
        move || Fixture::new(shared.clone()),
        tokio_util::sync::CancellationToken::new(),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("listening on http://{local}/sse\n").as_bytes())
        .await?;
    stdout.flush().await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn serve_stdio(shared: Arc<Shared>) -> anyhow::Result<()> {
    let running = Fixture::new(shared)
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the stdio server")?;
    running.waiting().await?;
    Ok(())
}
