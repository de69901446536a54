//! The policy seam: who may list and call which tool. The gateway asks a [`PolicyEngine`] after
//! routing and before it touches any credential or provider; a denied call goes no further.
//!
//! Besides the trait and the trivial engines ([`AllowAll`], [`ReadOnly`]) this crate holds the
//! Cedar engine ([`CedarEngine`], hot-reloaded through [`PolicyStore`]), the admin operations
//! ([`admin`]), quotas ([`quota`]), redaction of results ([`redact`]) and the hash-chained audit
//! log ([`audit`]). `README.md` shows how the gateway wires them together.

pub mod address;
pub mod admin;
pub mod audit;
mod context;
pub mod diag;
mod engine;
pub mod facts;
pub mod quota;
pub mod redact;
mod schema;
mod store;

pub use diag::Diagnostic;
pub use engine::{CedarEngine, DEFAULT_DENY_REASON, EngineError, Explanation, Summary};
pub use facts::{Facts, FactsError, LinkAudience};
pub use schema::{PolicySchema, SchemaError, ToolDescriptor, schema_text};
pub use store::{PolicyStore, ReloadError, StoreError, WatchHandle};

use serde::Serialize;

/// The caller, as authentication established it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Stable user id (`sub`); `None` for an anonymous caller on an open gateway.
    pub user: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// The OAuth client the call came through.
    pub client_id: Option<String>,
}

impl Principal {
    /// The lower-cased part of the e-mail address after the last `@`, or `""` — what policies
    /// see as `principal.domain`, so "only staff of example.com" needs no string parsing in Cedar.
    pub fn domain(&self) -> String {
        self.email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d.trim().to_ascii_lowercase())
            .unwrap_or_default()
    }
}

/// What the caller wants to do with a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// See it in `tools/list`.
    List,
    /// Run it.
    Call,
    /// Read a resource the tool exposes (`resources/read` behind a tool).
    Fetch,
}

impl Action {
    /// The Cedar action id (`Action::"call"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::List => "list",
            Action::Call => "call",
            Action::Fetch => "fetch",
        }
    }
}

/// What an MCP server offers besides tools, each a Cedar entity type of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A resource or resource template (`Resource::"<exposed uri>"`).
    Resource,
    /// A prompt (`Prompt::"<exposed name>"`).
    Prompt,
}

/// What the caller wants to do with a resource or a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemAction {
    /// See it in `resources/list`, `resources/templates/list` or `prompts/list`.
    List,
    /// `resources/read`, `resources/subscribe` (resources only).
    Read,
    /// `prompts/get` (prompts only).
    Get,
}

impl ItemAction {
    /// The Cedar action id (`Action::"read"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ItemAction::List => "list",
            ItemAction::Read => "read",
            ItemAction::Get => "get",
        }
    }

    /// Whether Cedar's schema lets this action apply to `kind` (`read` is for resources, `get`
    /// for prompts); a mismatched request is denied, not evaluated.
    pub fn applies_to(self, kind: ItemKind) -> bool {
        matches!(
            (self, kind),
            (ItemAction::List, _)
                | (ItemAction::Read, ItemKind::Resource)
                | (ItemAction::Get, ItemKind::Prompt)
        )
    }
}

/// The resource or prompt a decision is about.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ItemRef<'a> {
    pub kind: ItemKind,
    /// The exposed URI (or URI template) of a resource, the exposed name of a prompt.
    pub name: &'a str,
    /// The adapter instance that serves it.
    pub instance: &'a str,
    /// The adapter kind (`mcp`).
    pub adapter_kind: &'a str,
}

/// The tool a decision is about.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ToolRef<'a> {
    /// The exposed name (`linear_create_issue`).
    pub name: &'a str,
    /// The adapter instance (`linear`).
    pub instance: &'a str,
    /// The adapter kind (`linear`).
    pub kind: &'a str,
    pub read_only: bool,
    pub destructive: bool,
    /// Free-form labels from the adapter or config (`mail`, `write`, `pii`); `resource.tags` in
    /// Cedar.
    pub tags: &'a [String],
}

impl<'a> ToolRef<'a> {
    /// Borrows a descriptor as the tool of a decision.
    pub fn from_descriptor(d: &'a ToolDescriptor) -> Self {
        ToolRef {
            name: &d.name,
            instance: &d.instance,
            kind: &d.kind,
            read_only: d.read_only,
            destructive: d.destructive,
            tags: &d.tags,
        }
    }
}

/// A decision and what made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow {
        policies: Vec<String>,
    },
    Deny {
        reason: String,
        policies: Vec<String>,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The ids of the policies that determined the decision (empty for default deny).
    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies } | Decision::Deny { policies, .. } => policies,
        }
    }
}

/// Decides requests. Implementations must be cheap: `tools/list` asks once per tool.
pub trait PolicyEngine: Send + Sync {
    /// Decides on the arguments alone: the facts are read from the addresses the tool's schema
    /// declares in them (a value that is not one address denies).
    fn decide(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        arguments: Option<&serde_json::Value>,
    ) -> Decision;

    /// Decides with facts the caller established: [`Facts::from_arguments`] over the same
    /// `arguments` (which it rewrote to canonical addresses), plus what the adapter resolved
    /// from stored state. Required, so no engine can ignore them by omission.
    fn decide_with_facts(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        arguments: Option<&serde_json::Value>,
        facts: &Facts,
    ) -> Decision;

    /// Decides on a resource or a prompt. Required, like the tool decisions, so an engine
    /// cannot leave resources open by omission.
    fn decide_item(
        &self,
        principal: &Principal,
        action: ItemAction,
        item: &ItemRef<'_>,
    ) -> Decision;
}

/// Allows everything: the engine in force when no policy is configured, so that a gateway without
/// policies behaves as a plain proxy (the `[policy]` section turns on default-deny Cedar).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl PolicyEngine for AllowAll {
    fn decide(
        &self,
        _: &Principal,
        _: Action,
        _: &ToolRef<'_>,
        _: Option<&serde_json::Value>,
    ) -> Decision {
        Decision::Allow {
            policies: vec!["allow-all".into()],
        }
    }

    fn decide_with_facts(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        arguments: Option<&serde_json::Value>,
        _: &Facts,
    ) -> Decision {
        self.decide(principal, action, tool, arguments)
    }

    fn decide_item(&self, _: &Principal, _: ItemAction, _: &ItemRef<'_>) -> Decision {
        Decision::Allow {
            policies: vec!["allow-all".into()],
        }
    }
}

/// Denies every tool that is not read-only: the engine behind an instance's read-only switch and
/// a building block for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOnly;

impl PolicyEngine for ReadOnly {
    fn decide(
        &self,
        _: &Principal,
        _: Action,
        tool: &ToolRef<'_>,
        _: Option<&serde_json::Value>,
    ) -> Decision {
        if tool.read_only {
            Decision::Allow {
                policies: vec!["read-only".into()],
            }
        } else {
            Decision::Deny {
                reason: "this gateway only allows read-only tools".into(),
                policies: vec!["read-only".into()],
            }
        }
    }

    fn decide_with_facts(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        arguments: Option<&serde_json::Value>,
        _: &Facts,
    ) -> Decision {
        self.decide(principal, action, tool, arguments)
    }

    /// Listing and reading resources and getting prompts change nothing upstream.
    fn decide_item(&self, _: &Principal, _: ItemAction, _: &ItemRef<'_>) -> Decision {
        Decision::Allow {
            policies: vec!["read-only".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(read_only: bool) -> ToolRef<'static> {
        ToolRef {
            name: "linear_create_issue",
            instance: "linear",
            kind: "linear",
            read_only,
            destructive: false,
            tags: &[],
        }
    }

    #[test]
    fn allow_all_allows_and_read_only_denies_writes() {
        let anyone = Principal::default();
        assert!(
            AllowAll
                .decide(&anyone, Action::Call, &tool(false), None)
                .is_allowed()
        );
        assert!(
            ReadOnly
                .decide(&anyone, Action::Call, &tool(true), None)
                .is_allowed()
        );
        let denied = ReadOnly.decide(&anyone, Action::Call, &tool(false), None);
        assert!(
            matches!(denied, Decision::Deny { ref reason, .. } if reason.contains("read-only"))
        );
    }

    #[test]
    fn domain_comes_from_the_email() {
        let p = Principal {
            email: Some("Alice@Example.COM".into()),
            ..Principal::default()
        };
        assert_eq!(p.domain(), "example.com");
        assert_eq!(Principal::default().domain(), "");
    }
}
