//! Errors an adapter returns: building an instance from config, and running a tool.

use std::time::Duration;

/// A tool call that did not succeed. The gateway turns each into a tool result with
/// `isError: true` and this text, so the model can read what went wrong and try again — except
/// [`ToolError::MissingClientCapability`], which is the client's to fix, not the model's, and
/// [`ToolError::InputRequired`], which is no failure at all.
/// Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("forbidden by the provider: {0}")]
    Forbidden(String),
    #[error("the provider rejected the credentials: {0}")]
    Unauthorized(String),
    #[error("rate limited by the provider; retry after {} s", retry_after.map_or(0, |d| d.as_secs()))]
    RateLimited { retry_after: Option<Duration> },
    #[error("the provider answered with an error (HTTP {status}): {message}")]
    Upstream { status: u16, message: String },
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the call was cancelled")]
    Cancelled,
    #[error("unknown tool `{0}` for this adapter")]
    UnknownTool(String),
    #[error("the provider's answer could not be read: {0}")]
    BadResponse(String),
    /// The call needs a capability the client did not declare (MCP 2026-07-28 declares them per
    /// request, in `_meta`), e.g. an upstream MCP server asking for `sampling` mid-call. The
    /// gateway answers it with the protocol error -32021, since no retry by the model helps.
    /// `capability` is a top-level key of the client capabilities: `sampling`, `elicitation`,
    /// `roots`.
    #[error("the client did not declare the `{capability}` capability this call needs")]
    MissingClientCapability { capability: String },
    /// Not a failure: the upstream needs the client's answers before it can finish (MCP
    /// 2026-07-28 `input_required`), and the client answers between rounds
    /// ([`crate::client_input::Answers::Rounds`]). The gateway passes the input requests on
    /// with the upstream's state sealed, and the client retries the call with its answers.
    #[error("the server needs the client's input to go on")]
    InputRequired(Box<rmcp::model::InputRequiredResult>),
}

/// An adapter instance that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid base_url `{url}`: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("setting `{key}`: {reason}")]
    Setting { key: String, reason: String },
    #[error("could not start the upstream client: {0}")]
    Client(String),
}
