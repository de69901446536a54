//! `tools/call`: route (a tool the caller may see) → validate arguments → policy → quota →
//! credential → adapter → redact → audit, independent of the transport that carried the request
//! (rmcp's service, or the fast paths of `transport::fast_path`).
//!
//! [`Gateway::call_tool`] owns the call's one audit record; `try_call` runs the stages, each
//! returning early with a typed [`CallError`]; `rescue` is the only place an error becomes an MCP
//! answer. Every attempt is audited, refusals included: names that match no tool, tools hidden
//! from the caller, arguments that fail the schema, denials, quotas. A tool the caller may not
//! list is answered exactly as a name that matches nothing.
//!
//! Fail closed on audit: no answer leaves without its record. While the audit log cannot be
//! written ([`crate::audit`]), `authorize` refuses every call before anything reaches the broker
//! or a provider, and a call whose record fails to go in (the adapter already ran) has its
//! answer withheld; both are answered with the same JSON-RPC internal error. Each refusal's own
//! record is the probe that ends the refusals once it goes in.

use std::{sync::Arc, time::Instant};

use manifold_adapters::{CallContext, ClientLink, ToolAnswer, ToolError};
use manifold_policy::{Action, Decision, Principal, audit::AuditEvent};
use rmcp::{
    ErrorData as McpError,
    model::{CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock as Content},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{
    Gateway,
    credential::CredentialedError,
    input_state::{Masking, Retry, StateError, Target},
};
use crate::{audit::AuditUnavailable, broker::BrokerError, policy::tool_ref, router::Route};

/// What a tool call needs of the request that carries it.
pub struct CallScope {
    pub principal: Principal,
    /// W3C trace context to continue upstream (`_meta.traceparent` or the HTTP header).
    pub traceparent: Option<String>,
    /// Cancelled when the client cancels the request or the gateway shuts down.
    pub cancel: CancellationToken,
    /// The client declared `capabilities.elicitation.url`.
    pub url_elicitation: bool,
    /// Where progress and log notifications go (the transport's own).
    pub notify: Arc<dyn super::Notifier>,
    /// What the client declared it can answer of an upstream's questions, and how it answers
    /// on this path (`manifold_adapters::client_input`).
    pub client: ClientLink,
}

/// A second way to stop a call rmcp serves, set by the transport: the gateway's registration of
/// the request, whose token fires when a cancellation naming it reached another replica. The
/// registration is held (`_held`) until the call ends.
#[derive(Clone)]
pub struct CancelledElsewhere {
    token: CancellationToken,
    _held: Arc<dyn std::any::Any + Send + Sync>,
}

// === impl CancelledElsewhere ===

impl CancelledElsewhere {
    pub fn new(token: CancellationToken, held: impl std::any::Any + Send + Sync) -> Self {
        Self {
            token,
            _held: Arc::new(held),
        }
    }

    /// A token cancelled when `rmcp`'s is or this one fires, valid while the guard lives.
    pub fn either(&self, rmcp: &CancellationToken) -> (CancellationToken, EitherGuard) {
        let either = rmcp.child_token();
        let (elsewhere, fire) = (self.token.clone(), either.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = elsewhere.cancelled() => fire.cancel(),
                () = fire.cancelled() => {}
            }
        });
        let guard = EitherGuard {
            _stop: either.clone().drop_guard(),
            _held: self.clone(),
        };
        (either, guard)
    }
}

/// Keeps the registration of [`CancelledElsewhere::either`] and ends its watch when dropped.
pub struct EitherGuard {
    _stop: tokio_util::sync::DropGuard,
    _held: CancelledElsewhere,
}

/// Why a `tools/call` produced no tool result. Every variant is audited by [`CallRecord`], and
/// [`Gateway::rescue`] is the only place any of them becomes an MCP answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// No tool has this name.
    #[error("unknown tool")]
    UnknownTool,
    /// The tool exists but the caller may not list it (policy, or a read-only instance): answered
    /// exactly as [`CallError::UnknownTool`], so its name, schema and policy stay unknown to them.
    #[error("hidden from the caller: {}", .0.reason)]
    Hidden(Denial),
    /// The arguments fail the tool's input schema.
    #[error("invalid arguments: {}", .0.join("; "))]
    BadArguments(Vec<String>),
    #[error("denied by policy: {}", .0.reason)]
    Denied(Denial),
    #[error("quota `{rule}` exceeded")]
    Quota {
        rule: String,
        retry_after: std::time::Duration,
    },
    /// No usable credential for the provider (the broker's answer before any provider call).
    #[error(transparent)]
    NotConnected(BrokerError),
    /// The adapter or its provider failed.
    #[error(transparent)]
    Tool(ToolError),
    /// The audit log cannot be written: refused before the adapter, or the answer withheld
    /// after it because its record did not go in.
    #[error(transparent)]
    AuditUnavailable(#[from] AuditUnavailable),
    /// A retry's `requestState` that does not open for this caller and tool (`input_state.rs`).
    #[error(transparent)]
    BadState(#[from] StateError),
}

impl From<manifold_policy::quota::QuotaError> for CallError {
    fn from(error: manifold_policy::quota::QuotaError) -> Self {
        match error {
            manifold_policy::quota::QuotaError::QuotaExceeded { rule, retry_after } => {
                Self::Quota { rule, retry_after }
            }
        }
    }
}

/// Arguments that stopped being an object between stages; cannot happen, and refused if it did.
fn not_an_object() -> CallError {
    CallError::BadArguments(vec!["arguments must be an object".to_owned()])
}

/// A refusal by a rule: its reason and the policies that made it.
#[derive(Debug)]
struct Denial {
    reason: String,
    policies: Vec<String>,
}

/// A call whose name resolved to a tool the caller may see, with arguments that fit its schema.
struct Routed {
    route: Arc<Route>,
    arguments: serde_json::Map<String, Value>,
}

/// A routed call the policy and the quotas admitted; only [`Gateway::authorize`] makes one, and
/// only a `Permitted` reaches the broker and the adapter.
struct Permitted {
    route: Arc<Route>,
    arguments: serde_json::Map<String, Value>,
    /// The client as the adapter sees it, with its answers to the last round opened.
    client: ClientLink,
}

/// A tool's result and how many spans redaction masked in it.
type Served = (CallToolResult, usize);

/// What an audit record says for a name that could not be a tool's: the client's text, which
/// may be anything (a secret pasted by mistake, megabytes), is not written.
const INVALID_NAME: &str = "<not a tool name>";

/// A name every exposed tool name fits: `[A-Za-z0-9_-]`, at most 64 characters.
fn is_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn upstream_status(error: &ToolError) -> Option<u16> {
    match error {
        ToolError::Upstream { status, .. } => Some(*status),
        ToolError::RateLimited { .. } => Some(429),
        ToolError::Unauthorized(_) => Some(401),
        ToolError::Forbidden(_) => Some(403),
        ToolError::NotFound(_) => Some(404),
        _ => None,
    }
}

/// The answer to a call of a tool that does not exist, and to one the caller may not see.
fn unknown_tool(name: &str) -> McpError {
    McpError::invalid_params(
        format!("Unknown tool: {name}"),
        Some(json!({ "tool": name })),
    )
}

fn tool_error(text: String) -> CallToolResponse {
    CallToolResult::error(vec![Content::text(text)]).into()
}

/// Arguments that fail the schema, as a tool result with `isError: true` listing every problem,
/// so the model can correct its call. No `structuredContent`: it would have to match the tool's
/// output schema.
fn bad_arguments(tool: &str, errors: &[String]) -> CallToolResponse {
    tool_error(format!(
        "invalid arguments for {tool}: {}. Correct the arguments to fit the tool's input schema \
         and call it again.",
        errors.join("; ")
    ))
}

/// Arguments that usually make a call ask a provider for less, by name.
const NARROWING: &[&str] = &[
    "limit",
    "page_size",
    "max_results",
    "top",
    "count",
    "query",
    "filter",
    "since",
    "until",
    "from",
    "to",
    "folder_id",
    "max_chars",
];

/// What a model reads when a call ran out of time (clients such as ChatGPT give a call about a
/// minute, so a retry of the same call fails the same way): ask for less, naming the arguments
/// of this tool that narrow it.
fn timed_out(tool: &str, limit: std::time::Duration, route: Option<&Route>) -> String {
    let narrowing: Vec<&str> = route
        .and_then(|route| route.spec.input_schema.get("properties"))
        .and_then(Value::as_object)
        .map(|properties| {
            NARROWING
                .iter()
                .copied()
                .filter(|name| properties.contains_key(*name))
                .collect()
        })
        .unwrap_or_default();
    let hint = if narrowing.is_empty() {
        String::new()
    } else {
        format!(
            " (this tool's arguments for that: {})",
            narrowing.join(", ")
        )
    };
    format!(
        "{tool} did not finish in time (a call may take at most {} s). Ask for less and call it \
         again: a smaller page or limit, a narrower query or folder, a shorter date range{hint}.",
        limit.as_secs().max(1)
    )
}

/// The audit record (and metrics sample) of one `tools/call`, filled in as the call goes and
/// written exactly once: by [`CallRecord::finish`] when the call ends, or on drop when the call's
/// future is dropped first (the client went away), as `abandoned`. Written means attempted: a
/// record the log refused makes `finish` fail, and the call's answer with it.
struct CallRecord<'g> {
    gateway: &'g Gateway,
    started: Instant,
    /// The name as the client sent it, for the answer.
    requested: String,
    event: AuditEvent,
    /// Set once the name resolved; metrics count only catalog names, never names clients invent.
    route: Option<Arc<Route>>,
    written: bool,
}

// === impl CallRecord ===

impl<'g> CallRecord<'g> {
    fn begin(gateway: &'g Gateway, name: &str, principal: &Principal) -> Self {
        Self {
            gateway,
            started: Instant::now(),
            requested: name.to_owned(),
            event: AuditEvent {
                user: principal.user.clone(),
                client_id: principal.client_id.clone(),
                action: "call".into(),
                // Until the policy admits the call, it is not allowed.
                decision: "deny".into(),
                ..AuditEvent::default()
            },
            route: None,
            written: false,
        }
    }

    /// What the record says for a name that never resolved: the client's text, kept only when
    /// it could be a tool name (OpenAI's function-name rule), and redacted even then. Worked
    /// out when such a record is written, not for every call (a resolved name is the route's).
    fn unresolved_name(&self) -> String {
        if is_tool_name(&self.requested) {
            self.redacted(self.requested.clone())
        } else {
            INVALID_NAME.to_owned()
        }
    }

    fn routed(&mut self, route: &Arc<Route>, arguments: &serde_json::Map<String, Value>) {
        // The name policies decided on; the one the client called too when an admin renamed
        // the tool (`router/virtualize.rs`).
        self.event.tool.clone_from(&route.view.policy_name);
        self.event.tool_exposed =
            (route.exposed != route.view.policy_name).then(|| route.exposed.clone());
        self.event.instance = route.instance.to_string();
        self.event.args = Some(Value::Object(arguments.clone()));
        self.route = Some(route.clone());
    }

    fn allowed(&mut self, policies: Vec<String>) {
        self.event.decision = "allow".into();
        self.event.policies = policies;
    }

    /// `text` with every redaction detector applied, whatever the tool's rules: error text comes
    /// from arguments and providers and may carry what results may not.
    fn redacted(&self, text: String) -> String {
        self.gateway.stages.redact.redact_text(&text)
    }

    /// Records how the call ended and writes the record; `Err` when the log refused it.
    fn finish(&mut self, result: &Result<Served, CallError>) -> Result<(), AuditUnavailable> {
        let (outcome, reason) = match result {
            Ok((_, masked)) => {
                self.event.redactions = Some(*masked);
                ("ok", None)
            }
            Err(error) => {
                let outcome = match error {
                    CallError::UnknownTool => "unknown_tool",
                    CallError::BadArguments(_) => "invalid_arguments",
                    CallError::Hidden(denial) | CallError::Denied(denial) => {
                        self.event.policies.clone_from(&denial.policies);
                        "denied"
                    }
                    CallError::Quota { .. } => "quota_exceeded",
                    CallError::NotConnected(_) => "not_connected",
                    CallError::Tool(ToolError::Cancelled) => "cancelled",
                    CallError::Tool(ToolError::InputRequired(_)) => "input_required",
                    CallError::BadState(_) => "invalid_request_state",
                    CallError::Tool(tool_error) => {
                        self.event.upstream_status = upstream_status(tool_error);
                        "error"
                    }
                    CallError::AuditUnavailable(_) => AUDIT_UNAVAILABLE,
                };
                (outcome, Some(self.redacted(error.to_string())))
            }
        };
        self.event.outcome = outcome.into();
        self.event.reason = reason;
        self.write()
    }

    fn write(&mut self) -> Result<(), AuditUnavailable> {
        if std::mem::replace(&mut self.written, true) {
            return Ok(());
        }
        if self.route.is_none() {
            self.event.tool = self.unresolved_name();
        }
        let elapsed = self.started.elapsed();
        self.event.latency_ms = Some(elapsed.as_secs_f64() * 1000.0);
        let written = self.gateway.stages.audit.record(&self.event);
        if let Some(route) = &self.route {
            // Counted as the client sees it: a withheld answer is not a success.
            let outcome = match written {
                Ok(()) => self.event.outcome.as_str(),
                Err(_) => AUDIT_UNAVAILABLE,
            };
            self.gateway
                .metrics
                .record(&route.exposed, outcome, elapsed);
        }
        written
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        if !self.written {
            self.event.outcome = "abandoned".into();
            self.event.reason = Some("the request ended before the call finished".into());
            // Nobody is left to answer; a refused record still marks the stage unwritable.
            let _ = self.write();
        }
    }
}

/// The outcome of a call refused, or withheld, because the audit log cannot be written.
const AUDIT_UNAVAILABLE: &str = "audit_unavailable";

/// JSON-RPC error -32042 (`URLElicitationRequiredError`, MCP 2025-11-25): the client shows the
/// user `url`, and the user retries the call after connecting there.
fn url_elicitation(connection: &str, url: &str, error: &BrokerError) -> McpError {
    McpError::new(
        rmcp::model::ErrorCode(-32042),
        "This request requires connecting a provider account.",
        Some(json!({
            "elicitations": [{
                "mode": "url",
                "elicitationId": format!("connect-{connection}-{}", uuid::Uuid::new_v4()),
                "url": url,
                "message": error.to_string(),
            }]
        })),
    )
}

/// What a tool call's sealed `requestState` is bound to: the caller and the tool's exposed name.
fn tool_target<'a>(principal: &'a Principal, route: &'a Route) -> Target<'a> {
    Target {
        principal,
        kind: "tool",
        name: &route.exposed,
    }
}

/// MCP's MissingRequiredClientCapabilityError: `requiredCapabilities` is a client capabilities
/// object keyed by what is missing (`{"sampling": {}}`), as the 2026-07-28 schema defines it.
/// rmcp and the stateless fast path both answer this code with HTTP 400.
pub(super) fn missing_capability(capability: &str) -> McpError {
    McpError::new(
        rmcp::model::ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!(
            "This request requires the client capability `{capability}`, which it did not declare."
        ),
        Some(json!({ "requiredCapabilities": { capability: {} } })),
    )
}

// === impl Gateway ===

impl Gateway {
    /// Serves one `tools/call`: every attempt, whatever stops it, leaves exactly one audit
    /// record, written before the answer leaves.
    pub async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        scope: &CallScope,
    ) -> Result<CallToolResponse, McpError> {
        let mut record = CallRecord::begin(self, &request.name, &scope.principal);
        let retry = Retry {
            input_responses: request.input_responses.take(),
            request_state: request.request_state.take(),
        };
        let mut result = self.try_call(request, retry, scope, &mut record).await;
        // The answer leaves only with its record in the log.
        if let Err(unwritten) = record.finish(&result) {
            result = Err(unwritten.into());
        }
        match result {
            Ok((result, _)) => {
                tracing::debug!(tool = %record.event.tool, "tool call succeeded");
                Ok(result.into())
            }
            Err(error) => self.rescue(error, &record, scope).await,
        }
    }

    /// The stages in order, each returning early with its refusal.
    async fn try_call(
        &self,
        request: CallToolRequestParams,
        retry: Retry,
        scope: &CallScope,
        record: &mut CallRecord<'_>,
    ) -> Result<Served, CallError> {
        let routed = self.route(request, &scope.principal, record)?;
        let permitted = self.authorize(routed, &retry, scope, record).await?;
        self.invoke(permitted, scope).await
    }

    /// Resolves the name to a tool the caller may see and checks the arguments against its
    /// schema. A tool the caller may not list is refused before its schema is consulted, so
    /// the answer cannot tell it from a name that matches nothing.
    fn route(
        &self,
        request: CallToolRequestParams,
        principal: &Principal,
        record: &mut CallRecord<'_>,
    ) -> Result<Routed, CallError> {
        let catalog = self.catalog();
        let arguments = request.arguments.unwrap_or_default();
        let Some(route) = catalog.get(&request.name) else {
            record.event.args = Some(Value::Object(arguments));
            return Err(CallError::UnknownTool);
        };
        record.routed(route, &arguments);
        if route.blocked_by_read_only {
            return Err(CallError::Hidden(Denial {
                reason: format!("adapter `{}` is read-only", route.instance),
                policies: vec!["read-only-switch".to_owned()],
            }));
        }
        let engine = self.stages.policy.engine();
        if let Decision::Deny { reason, policies } =
            engine.decide(principal, Action::List, &tool_ref(route), None)
        {
            return Err(CallError::Hidden(Denial { reason, policies }));
        }
        let mut arguments = Value::Object(arguments);
        route
            .check_arguments(&mut arguments)
            .map_err(CallError::BadArguments)?;
        let Value::Object(arguments) = arguments else {
            return Err(not_an_object());
        };
        Ok(Routed {
            route: route.clone(),
            arguments,
        })
    }

    /// The policy decision on the call with its arguments, then the quotas (which count only
    /// calls the policy allowed).
    async fn authorize(
        &self,
        routed: Routed,
        retry: &Retry,
        scope: &CallScope,
        record: &mut CallRecord<'_>,
    ) -> Result<Permitted, CallError> {
        // First: resolving facts reaches the broker and the provider, and the quota counts the
        // call; neither is for a call that will not be served. This call's own record then
        // probes the log (`CallRecord::finish`).
        if !self.stages.audit.is_writable() {
            return Err(AuditUnavailable.into());
        }
        let Routed { route, arguments } = routed;
        let principal = &scope.principal;
        let tool = tool_ref(&route);
        let mut arguments = Value::Object(arguments);
        // The facts the policy decides on (`facts.rs`): declared recipients parsed and rewritten
        // to canonical addresses in `arguments`, and what the adapter resolves from stored state.
        let decision = self.decide_on_facts(&route, &mut arguments, scope).await;
        // The record keeps the arguments as the policy and the adapter see them.
        record.event.args = Some(arguments.clone());
        match decision.map_err(CallError::NotConnected)? {
            Decision::Deny { reason, policies } => {
                return Err(CallError::Denied(Denial { reason, policies }));
            }
            Decision::Allow { policies } => record.allowed(policies),
        }
        // A retry's state opens only for the caller and the tool it was sealed for.
        let client =
            self.input_state
                .resumed(&scope.client, retry, &tool_target(principal, &route))?;
        // The upstream's questions pass the tool's redaction rules, as its answers do.
        let client = self.masking(&route).link(client);
        self.stages.policy.admit(principal, &tool).await?;
        let Value::Object(arguments) = arguments else {
            return Err(not_an_object());
        };
        Ok(Permitted {
            route: route.clone(),
            arguments,
            client,
        })
    }

    /// The redaction rules of `route`, for the questions its upstream asks.
    fn masking(&self, route: &Route) -> Masking {
        Masking {
            redact: self.stages.redact.clone(),
            instance: route.instance.clone(),
            kind: route.kind.clone(),
            name: route.view.policy_name.clone(),
        }
    }

    /// The credential, the adapter call (one renewal on a 401) and redaction.
    async fn invoke(&self, permitted: Permitted, scope: &CallScope) -> Result<Served, CallError> {
        self.run_tool(
            &permitted.route,
            &permitted.arguments,
            &permitted.client,
            scope,
        )
        .await
    }

    /// The only mapping of a refused or failed call to its MCP answer.
    async fn rescue(
        &self,
        error: CallError,
        record: &CallRecord<'_>,
        scope: &CallScope,
    ) -> Result<CallToolResponse, McpError> {
        // The client hears of the tool by the name it called (a renamed tool's audit `tool` is
        // the name policies know it by).
        let tool = record
            .route
            .as_ref()
            .map_or(&record.event.tool, |route| &route.exposed);
        match error {
            CallError::UnknownTool | CallError::Hidden(_) => Err(unknown_tool(&record.requested)),
            // A tool execution error, not a protocol error (MCP 2025-11-25, SEP-1303): the
            // model reads what was wrong and corrects its call.
            CallError::BadArguments(errors) => Ok(bad_arguments(tool, &errors)),
            CallError::Denied(denial) => {
                Ok(tool_error(format!("denied by policy: {}", denial.reason)))
            }
            CallError::Quota { rule, retry_after } => Ok(tool_error(format!(
                "quota `{rule}` exceeded: try again in {} s",
                retry_after.as_secs().max(1)
            ))),
            CallError::NotConnected(error) => {
                tracing::info!(%tool, %error, "no provider credential");
                match error.user_action() {
                    Some((connection, url)) if scope.url_elicitation => {
                        Err(url_elicitation(connection, url, &error))
                    }
                    _ => Ok(tool_error(error.to_string())),
                }
            }
            CallError::Tool(ToolError::Cancelled) => {
                tracing::info!(%tool, "tool call cancelled by the client");
                Err(McpError::internal_error("request cancelled", None))
            }
            CallError::Tool(ToolError::MissingClientCapability { capability }) => {
                tracing::info!(%tool, %capability, "tool call needs an undeclared client capability");
                Err(missing_capability(&capability))
            }
            CallError::Tool(ToolError::InputRequired(asked)) => {
                // Masked like an answer, its state sealed to the caller and the tool.
                let sealed = record.route.as_ref().and_then(|route| {
                    let masked = self.masking(route).round(*asked)?;
                    let target = tool_target(&scope.principal, route);
                    self.input_state.seal(masked, &target).ok()
                });
                match sealed {
                    Some(sealed) => Ok(CallToolResponse::InputRequired(sealed)),
                    None => Err(McpError::internal_error(
                        "the server needs the client's input, and the gateway could not carry the request on",
                        None,
                    )),
                }
            }
            CallError::BadState(error) => Err(McpError::invalid_params(error.to_string(), None)),
            CallError::AuditUnavailable(error) => {
                tracing::debug!(%tool, "tool call refused: the audit log cannot be written");
                Err(McpError::internal_error(error.to_string(), None))
            }
            CallError::Tool(ToolError::Timeout) => {
                let limit = self.settings.call_timeout;
                tracing::info!(%tool, "tool call timed out");
                let route = record.route.as_deref();
                Ok(tool_error(timed_out(tool, limit, route)))
            }
            CallError::Tool(error) => {
                let text = record.redacted(error.to_string());
                tracing::info!(%tool, error = %text, "tool call failed");
                scope
                    .notify
                    .warning(json!({ "tool": tool, "error": text }))
                    .await;
                Ok(tool_error(text))
            }
        }
    }

    /// Runs the tool with the caller's credential; when the provider rejects it (401), renews
    /// it once and retries once.
    async fn run_tool(
        &self,
        route: &Arc<Route>,
        arguments: &serde_json::Map<String, Value>,
        client: &ClientLink,
        scope: &CallScope,
    ) -> Result<(CallToolResult, usize), CallError> {
        self.with_credential(route, &scope.principal, |credential| {
            self.call_once(route, arguments.clone(), client, scope, credential)
        })
        .await
        .map_err(|error| match error {
            CredentialedError::NotConnected(error) => CallError::NotConnected(error),
            CredentialedError::Tool(error) => CallError::Tool(error),
        })
    }

    async fn call_once(
        &self,
        route: &Arc<Route>,
        arguments: serde_json::Map<String, Value>,
        client: &ClientLink,
        scope: &CallScope,
        credential: Option<manifold_adapters::Secret>,
    ) -> Result<(CallToolResult, usize), ToolError> {
        let progress = scope.notify.progress();
        let log = scope.notify.log();
        let ctx = CallContext {
            credential,
            user: scope.principal.user.clone(),
            cancel: scope.cancel.child_token(),
            progress: progress.as_ref().map(|(sink, _)| sink.clone()),
            // The upstream's logs pass the tool's redaction rules, as its answers do.
            log: log.as_ref().map(|(sink, _)| {
                let masking = self.masking(route);
                sink.clone().map(move |message| masking.log(message))
            }),
            traceparent: scope.traceparent.clone(),
            text_filter: self.stages.redact.text_filter(route),
            client: client.clone(),
        };
        if ctx.progress.is_some() {
            // Tells the client the call started; adapters report their own steps from there on.
            ctx.report_progress(0.0, None, Some(format!("calling {}", route.exposed)));
        }
        let call = route.adapter.answer(&route.spec.name, arguments, &ctx);
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(self.settings.call_timeout, call) => {
                outcome.unwrap_or(Err(ToolError::Timeout))
            }
            () = ctx.cancel.cancelled() => Err(ToolError::Cancelled),
        };
        drop(ctx);
        if let Some((sink, forward)) = progress {
            drop(sink);
            // Progress must reach the client before the result does.
            let _ = forward.await;
        }
        if let Some((sink, Some(forward))) = log {
            drop(sink);
            // So must the logs.
            let _ = forward.await;
        }
        let (result, masked) = match outcome? {
            ToolAnswer::Rendered(mut output) => {
                let masked =
                    self.stages
                        .redact
                        .apply(route, &mut output.structured, &mut output.text);
                let mut result = CallToolResult::success(vec![Content::text(output.text)]);
                result.structured_content = Some(output.structured);
                (result, masked)
            }
            ToolAnswer::Mcp(mut result) => {
                let masked = self.stages.redact.apply_to_result(route, &mut result);
                (*result, masked)
            }
        };
        Ok((result, masked))
    }
}

#[cfg(test)]
mod tests;
