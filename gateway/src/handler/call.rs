//! `tools/call`: route → validate arguments → policy → quota → credential → adapter → redact →
//! audit, independent of the transport that carried the request (rmcp's service, or the fast
//! paths of `transport::fast_path`).

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use manifold_adapters::{CallContext, ToolError};
use manifold_policy::{Decision, Principal, audit::AuditEvent};
use rmcp::{
    ErrorData as McpError, Peer, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock as Content,
        ProgressNotificationParam, ProgressToken, ServerJsonRpcMessage,
    },
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Gateway,
    logging::{ClientLog, LogTarget},
};
use crate::{broker::BrokerError, policy::tool_ref, router::Route};

/// What a tool call needs of the request that carries it.
pub struct CallScope {
    pub principal: Principal,
    /// W3C trace context to continue upstream (`_meta.traceparent` or the HTTP header).
    pub traceparent: Option<String>,
    /// Cancelled when the client cancels the request or the gateway shuts down.
    pub cancel: CancellationToken,
    /// The client declared `capabilities.elicitation.url`.
    pub url_elicitation: bool,
    /// Where progress and log notifications go.
    pub notify: Notify,
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

/// The way back to the client for notifications during a call.
pub enum Notify {
    /// The answer carries the result alone (a stateless JSON answer has no room for more).
    Silent,
    /// Out on the request's stream as they happen (rmcp's session service).
    Peer {
        peer: Peer<RoleServer>,
        progress_token: Option<ProgressToken>,
        log: ClientLog,
    },
    /// Log notifications kept for the transport to send ahead of the answer (the session fast
    /// path, which serves no progress).
    Collect {
        log: ClientLog,
        messages: Mutex<Vec<ServerJsonRpcMessage>>,
    },
}

// === impl Notify ===

impl Notify {
    /// Collects log notifications under the session's threshold `log`.
    pub fn collect(log: ClientLog) -> Self {
        Self::Collect {
            log,
            messages: Mutex::new(Vec::new()),
        }
    }

    /// The notifications collected so far, in order.
    pub fn take_collected(&self) -> Vec<ServerJsonRpcMessage> {
        match self {
            Self::Collect { messages, .. } => messages
                .lock()
                .map(|mut messages| std::mem::take(&mut *messages))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    async fn warning(&self, data: Value) {
        match self {
            Self::Silent => {}
            Self::Peer { peer, log, .. } => log.warning(LogTarget::Peer(peer), data).await,
            Self::Collect { log, messages } => {
                log.warning(LogTarget::Collect(messages), data).await;
            }
        }
    }
}

/// One audit record's facts besides the route and the caller.
struct Outcome<'a> {
    decision: &'a str,
    policies: Vec<String>,
    reason: Option<String>,
    outcome: &'a str,
    upstream_status: Option<u16>,
    redactions: Option<usize>,
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

/// A tool call that failed before (broker) or in (adapter) the provider call.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Tool(#[from] ToolError),
}

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

/// Forwards adapter progress to the client in order, when it asked for progress.
fn progress_sink(
    notify: &Notify,
) -> Option<(manifold_adapters::ProgressSink, tokio::task::JoinHandle<()>)> {
    let Notify::Peer {
        peer,
        progress_token: Some(token),
        ..
    } = notify
    else {
        return None;
    };
    let (token, peer) = (token.clone(), peer.clone());
    let (sender, mut receiver) = mpsc::unbounded_channel::<(f64, Option<f64>, Option<String>)>();
    let forward = tokio::spawn(async move {
        while let Some((progress, total, message)) = receiver.recv().await {
            let mut param = ProgressNotificationParam::new(token.clone(), progress);
            param.total = total;
            param.message = message;
            if peer.notify_progress(param).await.is_err() {
                break;
            }
        }
    });
    let sink: manifold_adapters::ProgressSink = Arc::new(move |progress, total, message| {
        let _ = sender.send((progress, total, message));
    });
    Some((sink, forward))
}

// === impl Gateway ===

impl Gateway {
    /// Serves one `tools/call`.
    pub async fn call_tool(
        &self,
        request: CallToolRequestParams,
        scope: &CallScope,
    ) -> Result<CallToolResponse, McpError> {
        let started = Instant::now();
        let catalog = self.catalog();
        let Some(route) = catalog.get(&request.name) else {
            return Err(McpError::invalid_params(
                format!("Unknown tool: {}", request.name),
                Some(json!({ "tool": request.name })),
            ));
        };
        let mut arguments = Value::Object(request.arguments.unwrap_or_default());
        if let Err(errors) = route.check_arguments(&arguments) {
            return Err(McpError::invalid_params(
                format!(
                    "invalid arguments for {}: {}",
                    route.exposed,
                    errors.join("; ")
                ),
                Some(json!({ "tool": route.exposed, "errors": errors })),
            ));
        }
        let principal = &scope.principal;
        let stages = &self.stages;
        let audit = |arguments: &Value, facts: Outcome<'_>| {
            self.metrics
                .record(&route.exposed, facts.outcome, started.elapsed());
            stages.audit.record(&AuditEvent {
                user: principal.user.clone(),
                client_id: principal.client_id.clone(),
                tool: route.exposed.clone(),
                instance: route.instance.to_string(),
                action: "call".into(),
                decision: facts.decision.into(),
                policies: facts.policies,
                reason: facts.reason,
                args: Some(arguments.clone()),
                outcome: facts.outcome.into(),
                latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
                upstream_status: facts.upstream_status,
                redactions: facts.redactions,
            });
        };
        let denial = if route.blocked_by_read_only {
            Some((
                format!("adapter `{}` is read-only", route.instance),
                vec!["read-only-switch".to_owned()],
            ))
        } else {
            // Facts (recipients canonical in `arguments`, stored state) then Cedar: `facts.rs`.
            match self.decide_on_facts(route, &mut arguments, scope).await {
                Decision::Deny { reason, policies } => Some((reason, policies)),
                Decision::Allow { .. } => None,
            }
        };
        if let Some((reason, policies)) = denial {
            audit(
                &arguments,
                Outcome {
                    decision: "deny",
                    policies,
                    reason: Some(reason.clone()),
                    outcome: "denied",
                    upstream_status: None,
                    redactions: None,
                },
            );
            return Ok(CallToolResult::error(vec![Content::text(format!(
                "denied by policy: {reason}"
            ))])
            .into());
        }
        if let Err(manifold_policy::quota::QuotaError::QuotaExceeded { rule, retry_after }) =
            stages.policy.admit(principal, &tool_ref(route)).await
        {
            let seconds = retry_after.as_secs().max(1);
            audit(
                &arguments,
                Outcome {
                    decision: "allow",
                    policies: vec![],
                    reason: Some(format!("quota `{rule}` exceeded")),
                    outcome: "quota_exceeded",
                    upstream_status: None,
                    redactions: None,
                },
            );
            return Ok(CallToolResult::error(vec![Content::text(format!(
                "quota `{rule}` exceeded: try again in {seconds} s"
            ))])
            .into());
        }
        let Value::Object(map) = &arguments else {
            return Err(McpError::internal_error("arguments changed shape", None));
        };
        let outcome = self.run_tool(route, map, scope).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = match outcome {
            Ok(result) => Ok(result),
            Err(CallError::Tool(error)) => Err(error),
            Err(CallError::Broker(error)) => {
                tracing::info!(tool = %route.exposed, %error, "no provider credential");
                audit(
                    &arguments,
                    Outcome {
                        decision: "allow",
                        policies: vec![],
                        reason: Some(error.to_string()),
                        outcome: "not_connected",
                        upstream_status: None,
                        redactions: None,
                    },
                );
                if let Some((connection, url)) = error.user_action()
                    && scope.url_elicitation
                {
                    return Err(url_elicitation(connection, url, &error));
                }
                return Ok(CallToolResult::error(vec![Content::text(error.to_string())]).into());
            }
        };
        let (status, masked) = match &outcome {
            Ok((_, masked)) => ("ok", Some(*masked)),
            Err(ToolError::Cancelled) => ("cancelled", None),
            Err(_) => ("error", None),
        };
        audit(
            &arguments,
            Outcome {
                decision: "allow",
                policies: vec![],
                reason: outcome.as_ref().err().map(ToString::to_string),
                outcome: status,
                upstream_status: outcome.as_ref().err().and_then(upstream_status),
                redactions: masked,
            },
        );
        match outcome.map(|(result, _)| result) {
            Ok(result) => {
                tracing::debug!(tool = %route.exposed, elapsed_ms, "tool call succeeded");
                Ok(result.into())
            }
            Err(ToolError::Cancelled) => {
                tracing::info!(tool = %route.exposed, elapsed_ms, "tool call cancelled by the client");
                Err(McpError::internal_error("request cancelled", None))
            }
            Err(error) => {
                tracing::info!(tool = %route.exposed, elapsed_ms, %error, "tool call failed");
                scope
                    .notify
                    .warning(json!({ "tool": route.exposed, "error": error.to_string() }))
                    .await;
                Ok(CallToolResult::error(vec![Content::text(error.to_string())]).into())
            }
        }
    }

    /// Runs the tool with the caller's credential; when the provider rejects it (401), renews
    /// it once and retries once.
    async fn run_tool(
        &self,
        route: &Arc<Route>,
        arguments: &serde_json::Map<String, Value>,
        scope: &CallScope,
    ) -> Result<(CallToolResult, usize), CallError> {
        let broker = &self.broker;
        let principal = &scope.principal;
        let credential = broker
            .credential(principal, &route.instance, &route.spec.scopes)
            .await?;
        let first = self
            .call_once(route, arguments.clone(), scope, credential.clone())
            .await;
        match (first, credential) {
            (Err(ToolError::Unauthorized(reason)), Some(rejected)) => {
                match broker.renew(principal, &route.instance, &rejected).await? {
                    Some(renewed) => Ok(self
                        .call_once(route, arguments.clone(), scope, Some(renewed))
                        .await?),
                    None => Err(ToolError::Unauthorized(reason).into()),
                }
            }
            (outcome, _) => Ok(outcome?),
        }
    }

    async fn call_once(
        &self,
        route: &Arc<Route>,
        arguments: serde_json::Map<String, Value>,
        scope: &CallScope,
        credential: Option<manifold_adapters::Secret>,
    ) -> Result<(CallToolResult, usize), ToolError> {
        let progress = progress_sink(&scope.notify);
        let ctx = CallContext {
            credential,
            cancel: scope.cancel.child_token(),
            progress: progress.as_ref().map(|(sink, _)| sink.clone()),
            traceparent: scope.traceparent.clone(),
        };
        if ctx.progress.is_some() {
            // Tells the client the call started; adapters report their own steps from there on.
            ctx.report_progress(0.0, None, Some(format!("calling {}", route.exposed)));
        }
        let call = route.adapter.call(&route.spec.name, arguments, &ctx);
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
        let mut output = outcome?;
        let masked = self.stages.redact.apply(
            &route.instance,
            &route.exposed,
            &mut output.structured,
            &mut output.text,
        );
        let mut result = CallToolResult::success(vec![Content::text(output.text)]);
        result.structured_content = Some(output.structured);
        Ok((result, masked))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Sets its flag when dropped: shows how long the registration is held.
    struct Held(Arc<AtomicBool>);

    impl Drop for Held {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn either_token_fires_for_either_source_and_holds_the_registration_until_the_call_ends() {
        // Fired from elsewhere: the call's token fires, rmcp's does not.
        let (rmcp, elsewhere) = (CancellationToken::new(), CancellationToken::new());
        let released = Arc::new(AtomicBool::new(false));
        let extension = CancelledElsewhere::new(elsewhere.clone(), Held(released.clone()));
        let (either, guard) = extension.either(&rmcp);
        drop(extension); // the request's copy goes first; the guard still holds it
        elsewhere.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), either.cancelled())
            .await
            .expect("the call's token fires when cancelled elsewhere");
        assert!(!rmcp.is_cancelled());
        assert!(!released.load(Ordering::SeqCst));
        drop(guard);
        assert!(
            released.load(Ordering::SeqCst),
            "released when the call ends"
        );

        // Fired by rmcp.
        let (rmcp, elsewhere) = (CancellationToken::new(), CancellationToken::new());
        let (either, _guard) = CancelledElsewhere::new(elsewhere, ()).either(&rmcp);
        rmcp.cancel();
        assert!(either.is_cancelled());
    }
}
