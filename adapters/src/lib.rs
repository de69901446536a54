//! The adapter plug-in point: the [`Adapter`] trait every backend implements, the registry of
//! adapter kinds, the shared upstream HTTP client, and one folder per provider.
//!
//! A developer adds a backend by adding one folder (tools, API client, sandbox emulator and its
//! fixtures, contract tests) and one line in [`registry::Registry::builtin`].

pub mod adapter;
pub mod boxcom;
pub mod client_input;
pub(crate) mod cursor;
pub mod drive;
pub mod dropbox;
pub mod error;
pub mod extract;
pub mod facts;
pub mod graph;
pub mod linear;
pub mod mcp;
pub mod offers;
pub mod outbound;
pub mod registry;
pub mod secret;
pub mod text_filter;
pub mod tool;
pub mod upstream;
pub mod withdraw;

#[cfg(feature = "sandbox")]
pub mod sandbox;

pub use adapter::{
    Adapter, AdapterKind, CallContext, Health, HeldCalls, InstanceSettings, LogSink, OAuthSpec,
    ProgressSink, Tools,
};
pub use client_input::{Answers, AskClient, ClientLink, RelayRetry, Resume};
pub use error::{BuildError, ToolError};
pub use facts::{LinkAudience, ResolveFacts, StoredFacts};
pub use offers::{Completion, LiveList, Prompts, ResourceUpdate, Resources};
pub use registry::Registry;
pub use secret::Secret;
pub use text_filter::TextFilter;
pub use tool::{ToolAnnotations, ToolAnswer, ToolOutput, ToolSpec};
pub use upstream::{UpstreamClient, UpstreamConfig};
pub use withdraw::Withdraw;
