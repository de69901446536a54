//! The facts capability of the adapter contract: a tool whose effect depends on stored state (a
//! reply reaches the original's sender, sending a draft reaches its saved recipients) declares it
//! on its [`ToolSpec`](crate::ToolSpec) (`resolves_facts`), and its adapter resolves those facts
//! with the user's credential before the policy decides, so the policy decides on whom the
//! provider will actually reach rather than on what the arguments happen to name.
//!
//! Adapters return addresses as the provider stores them; the gateway parses every one with the
//! same parser as the arguments (`manifold_policy::address`) and denies the call when one does
//! not read as exactly one address. A resolution that fails (provider error, message not found)
//! is a denial too, never an allow.

use serde_json::{Map, Value};

use crate::{CallContext, ToolError};

/// Addresses one call reaches through stored state, unparsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredFacts {
    /// Whom the provider will send to besides the arguments' own recipients (a reply's
    /// addressees, a draft's saved `to`/`cc`/`bcc`).
    pub recipients: Vec<String>,
    /// Whom the provider will give access besides the arguments' own grantees.
    pub grantees: Vec<String>,
    /// The sender and recipients of the stored message the call quotes (reply, forward).
    pub participants: Vec<String>,
}

/// Resolves the facts of the tools whose spec says `resolves_facts`.
#[async_trait::async_trait]
pub trait ResolveFacts: Send + Sync {
    /// Reads what `tool` with `arguments` will reach. `arguments` were validated against the
    /// tool's schema; `ctx` carries the user's credential. Must not change anything.
    async fn resolve(
        &self,
        tool: &str,
        arguments: &Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<StoredFacts, ToolError>;
}
