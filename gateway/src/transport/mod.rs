//! The transport stage: how MCP messages reach the handler. Streamable HTTP at `/mcp` (every
//! protocol era), the 2024-11-05 HTTP+SSE transport at `/sse` + `/messages`, and stdio.

pub(crate) mod guard;
pub mod http;
mod jsonrpc;
mod legacy_sse;
mod stateless;
pub mod stdio;

pub use guard::HostGuard;
