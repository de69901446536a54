//! The transport stage: how MCP messages reach the handler. Streamable HTTP at `/mcp` (every
//! protocol era), the 2024-11-05 HTTP+SSE transport at `/sse` + `/messages`, and stdio.

mod fast_path;
pub(crate) mod guard;
mod habits;
pub mod http;
mod jsonrpc;
mod legacy_sse;
mod limits;
pub mod operator;
pub(crate) mod param_headers;
pub mod server;
pub mod shared_streams;
pub mod stdio;
mod unique_keys;

pub use guard::HostGuard;
