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
//!
//! Besides people, two facts are not addresses: the places a call acts within (`containers`: a
//! file's folder and every folder above it, a channel's team, by the provider's canonical id, so
//! a policy's list of folder or team ids means what it says however the arguments spelt the
//! item), and whom a shared link works for (`link_audience`: an existing link the provider hands
//! back instead of a new one counts as what it is, not as what was asked for).

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
    /// The places the call acts within, by the provider's canonical ids: the item's folder and
    /// every folder above it (the item itself when it is a folder), a channel's team.
    pub containers: Vec<String>,
    /// Whom a link the call creates or hands out works for; `None` when it shares no link.
    pub link_audience: Option<LinkAudience>,
    /// Arguments the call must act on as they were resolved (a path replaced by the id it named
    /// when the facts were read), so that the provider acts on the item the policy decided on
    /// even if someone renames or moves things in between. The gateway replaces only arguments
    /// the call already has, and checks the result against the tool's schema again.
    pub pinned: Map<String, Value>,
}

/// Whom a shared link works for, in words common to every provider; ordered narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LinkAudience {
    /// Only people who already have access (Dropbox `no_one`, Box `collaborators`).
    Invited,
    /// The account's organization (Dropbox `team`, Box `company`).
    Organization,
    /// Anyone with the link (Dropbox `public`, Box `open`).
    Anyone,
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
