//! `manifold stdio`: the same handler over stdin/stdout, for clients that launch the gateway as a
//! subprocess.
//!
//! Each line from stdin is checked as `POST /mcp` bodies are before rmcp reads it: a line with a
//! key repeated in one object is answered on stdout with -32700 and goes no further (the stages
//! would otherwise disagree on which value counts; see [`super::unique_keys`]). Everything else
//! reaches rmcp unchanged. One task writes stdout, so those answers and rmcp's never interleave.

use std::sync::Arc;

use rmcp::ServiceExt;
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::mpsc,
};

use super::unique_keys::{self, UniqueKeysError};
use crate::handler::Gateway;

/// Serves one client on stdin/stdout until it closes stdin.
pub async fn serve(gateway: Arc<Gateway>) -> Result<(), std::io::Error> {
    serve_on(gateway, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves one client reading `input` and writing `output`.
async fn serve_on<R, W>(gateway: Arc<Gateway>, input: R, output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // rmcp reads the checked lines from one pipe and writes its answers into another.
    let (to_rmcp, rmcp_in) = tokio::io::duplex(64 * 1024);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(64 * 1024);
    let (refusals_tx, refusals) = mpsc::channel::<String>(16);
    let checker = tokio::spawn(check_lines(input, to_rmcp, refusals_tx));
    let writer = tokio::spawn(write_lines(from_rmcp, refusals, output));
    let service = gateway
        .handler()
        .serve((rmcp_in, rmcp_out))
        .await
        .map_err(std::io::Error::other)?;
    service.waiting().await.map_err(std::io::Error::other)?;
    checker.abort();
    let _ = writer.await;
    Ok(())
}

/// Passes each line of `input` to rmcp, or its refusal to the writer. Ends (closing rmcp's
/// input, which ends the service) when `input` does.
async fn check_lines<R: AsyncRead + Unpin>(
    input: R,
    mut to_rmcp: tokio::io::DuplexStream,
    refusals: mpsc::Sender<String>,
) -> std::io::Result<()> {
    let mut lines = BufReader::new(input).lines();
    while let Some(line) = lines.next_line().await? {
        match unique_keys::check(line.trim().as_bytes()) {
            Err(error @ UniqueKeysError::Duplicate { .. }) => {
                let answer = json!({"jsonrpc": "2.0", "id": null,
                    "error": {"code": -32700, "message": format!("Parse error: {error}")}});
                if refusals.send(answer.to_string()).await.is_err() {
                    break;
                }
            }
            // Well-formed, or not JSON at all: rmcp's own handling applies.
            Ok(()) | Err(UniqueKeysError::Syntax(_)) => {
                to_rmcp.write_all(line.as_bytes()).await?;
                to_rmcp.write_all(b"\n").await?;
            }
        }
    }
    to_rmcp.shutdown().await
}

/// Copies rmcp's answers and the refusals to `output`, a whole line at a time.
async fn write_lines<W: AsyncWrite + Unpin>(
    from_rmcp: tokio::io::DuplexStream,
    mut refusals: mpsc::Receiver<String>,
    mut output: W,
) -> std::io::Result<()> {
    let mut answers = BufReader::new(from_rmcp).lines();
    let mut refusals_open = true;
    loop {
        let line = tokio::select! {
            answer = answers.next_line() => match answer? {
                Some(line) => line,
                None => break,
            },
            refusal = refusals.recv(), if refusals_open => match refusal {
                Some(line) => line,
                None => {
                    refusals_open = false;
                    continue;
                }
            },
        };
        output.write_all(line.as_bytes()).await?;
        output.write_all(b"\n").await?;
        output.flush().await?;
    }
    output.flush().await
}
