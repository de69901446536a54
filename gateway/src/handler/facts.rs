//! The facts stage of `tools/call`, between argument validation and the policy decision: the
//! policy decides on whom a call really reaches, not on what its arguments happen to say.
//!
//! 1. The recipient-bearing arguments the tool's schema declares (`"format": "email"`) are each
//!    read as exactly one address and rewritten to its canonical form, so the adapter sends the
//!    very addresses the policy saw; a value that is not one address is a denial.
//! 2. Cedar decides on those facts. For other tools that decision is final, and a denial ends the
//!    call here with no credential touched.
//! 3. Only for tools whose spec says `resolves_facts` (a reply, a draft send, a chat message, a
//!    channel post, a file read inside folders, a link share): the adapter reads the stored state with the user's credential,
//!    every stored address goes through the same parser (container ids through their own check),
//!    and Cedar decides again on the complete facts, and that decision is the one that holds,
//!    whatever the first said: a rule that allows only inside listed folders sees no folder before
//!    they are read, so a first denial proves nothing. A resolution that fails — no connection,
//!    provider error, message not found, an address that does not parse — is a denial, never an
//!    allow (with the first decision's reason when that already denied). A user with no
//!    connection to read them with gets the answer the call itself would give (how to connect),
//!    since no provider is reached either way. This is the one place the policy stage reaches
//!    the broker, and only for those tools.

use std::sync::Arc;

use manifold_adapters::{CallContext, LinkAudience as StoredAudience, ToolError};
use manifold_policy::{Action, Decision, Facts, LinkAudience, facts::Role};
use serde_json::{Map, Value};

use super::{CallScope, Gateway, credential::CredentialedError};
use crate::{broker::BrokerError, policy::tool_ref, router::Route};

/// A denial without a policy behind it: the facts themselves could not be established.
fn refused(reason: String) -> Decision {
    Decision::Deny {
        reason,
        policies: Vec::new(),
    }
}

/// Why stored facts could not be added.
enum Unresolved {
    /// The user has no usable connection to read them with: answered as the call itself would
    /// answer it (the way to connect), since no provider can be reached either way.
    NotConnected(BrokerError),
    /// The read failed; the reason of the denial.
    Unread(String),
}

// === impl Gateway ===

impl Gateway {
    /// The policy decision for one call on its facts; rewrites declared recipient arguments in
    /// `arguments` to canonical addresses. `Err`: the facts need a connection the user does not
    /// have, and nothing read so far denies the call.
    pub(super) async fn decide_on_facts(
        &self,
        route: &Arc<Route>,
        arguments: &mut Value,
        scope: &CallScope,
    ) -> Result<Decision, BrokerError> {
        let mut facts = match Facts::from_object_arguments(&route.spec.input_schema, arguments) {
            Ok(facts) => facts,
            Err(error) => return Ok(refused(error.to_string())),
        };
        let engine = self.stages.policy.engine();
        let tool = tool_ref(route);
        let principal = &scope.principal;
        let first =
            engine.decide_with_facts(principal, Action::Call, &tool, Some(arguments), &facts);
        if !route.spec.resolves_facts {
            return Ok(first);
        }
        match self
            .resolve_stored(route, arguments, scope, &mut facts)
            .await
        {
            Ok(pinned) => {
                // The call acts on what was resolved, not on what may have changed since.
                if let Err(reason) = pin(route, arguments, pinned) {
                    return Ok(refused(reason));
                }
                Ok(engine.decide_with_facts(
                    principal,
                    Action::Call,
                    &tool,
                    Some(arguments),
                    &facts,
                ))
            }
            Err(_) if !first.is_allowed() => Ok(first),
            Err(Unresolved::NotConnected(error)) => Err(error),
            Err(Unresolved::Unread(reason)) => {
                tracing::info!(tool = %route.exposed, %reason, "facts could not be resolved");
                Ok(refused(reason))
            }
        }
    }

    /// Adds what the adapter reads from stored state; returns the arguments it pinned.
    async fn resolve_stored(
        &self,
        route: &Arc<Route>,
        arguments: &Value,
        scope: &CallScope,
        facts: &mut Facts,
    ) -> Result<Map<String, Value>, Unresolved> {
        let unread = |why: String| {
            Unresolved::Unread(format!(
                "what this call would reach could not be read: {why}"
            ))
        };
        let resolver = route
            .adapter
            .facts()
            .ok_or_else(|| unread("the adapter cannot resolve facts".into()))?;
        let Value::Object(map) = arguments else {
            return Err(unread("the arguments are not an object".into()));
        };
        let read = |credential| async move {
            let ctx = CallContext {
                credential,
                user: scope.principal.user.clone(),
                cancel: scope.cancel.child_token(),
                progress: None,
                log: None,
                traceparent: scope.traceparent.clone(),
                text_filter: self.stages.redact.text_filter(route),
                client: Default::default(),
            };
            let resolve = resolver.resolve(&route.spec.name, map, &ctx);
            tokio::time::timeout(self.settings.call_timeout, resolve)
                .await
                .unwrap_or(Err(ToolError::Timeout))
        };
        // As the call itself does: a token the provider rejects is renewed once and read again.
        let stored = self
            .with_credential(route, &scope.principal, read)
            .await
            .map_err(|error| match error {
                CredentialedError::NotConnected(error) => Unresolved::NotConnected(error),
                CredentialedError::Tool(error) => unread(error.to_string()),
            })?;
        for (role, list) in [
            (Role::Recipient, &stored.recipients),
            (Role::Grantee, &stored.grantees),
            (Role::Participant, &stored.participants),
        ] {
            for raw in list {
                facts
                    .add_stored(role, raw)
                    .map_err(|error| unread(error.to_string()))?;
            }
        }
        for id in &stored.containers {
            facts
                .add_container(id)
                .map_err(|error| unread(error.to_string()))?;
        }
        if let Some(audience) = stored.link_audience {
            facts.share_by_link(match audience {
                StoredAudience::Invited => LinkAudience::Invited,
                StoredAudience::Organization => LinkAudience::Organization,
                StoredAudience::Anyone => LinkAudience::Anyone,
            });
        }
        Ok(stored.pinned)
    }
}

/// Replaces the arguments the adapter pinned (only those the call has) and checks the result
/// against the tool's schema; `Err` is the denial's reason.
fn pin(route: &Route, arguments: &mut Value, pinned: Map<String, Value>) -> Result<(), String> {
    if pinned.is_empty() {
        return Ok(());
    }
    let Value::Object(map) = arguments else {
        return Err("the arguments are not an object".into());
    };
    for (name, value) in pinned {
        if let Some(slot) = map.get_mut(&name) {
            *slot = value;
        }
    }
    route.check_arguments(arguments).map_err(|errors| {
        format!(
            "the item this call names could not be pinned: {}",
            errors.join("; ")
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::router::{route_of, test_tool};

    fn route() -> Arc<Route> {
        route_of(test_tool(
            "read",
            json!({"type": "object", "additionalProperties": false, "required": ["file"],
                   "properties": {"file": {"type": "string", "pattern": "^[^/]*$"},
                                  "limit": {"type": "integer"}}}),
        ))
    }

    fn pins(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn pinned_arguments_replace_only_those_the_call_has() {
        let mut arguments = json!({"file": "plan.docx"});
        pin(
            &route(),
            &mut arguments,
            pins(json!({"file": "1abc", "limit": 5})),
        )
        .unwrap();
        assert_eq!(arguments, json!({"file": "1abc"}), "no argument is added");
    }

    #[test]
    fn a_pin_the_schema_refuses_denies_the_call() {
        let mut arguments = json!({"file": "plan"});
        let reason = pin(&route(), &mut arguments, pins(json!({"file": "a/b"}))).unwrap_err();
        assert!(reason.contains("could not be pinned"), "{reason}");
        let mut arguments = json!({"file": "plan"});
        assert!(pin(&route(), &mut arguments, pins(json!({"file": 7}))).is_err());
    }
}
