//! What an upstream may ask of the calling client while it serves a call — MCP's server-to-client
//! requests: `sampling/createMessage`, `elicitation/create`, `roots/list` — and how the call's
//! transport lets the client answer ([`ClientLink`]).
//!
//! Two ways exist, one per protocol era of the *downstream* client, whatever era the upstream
//! speaks: a 2025-era session is asked during the call, on the request's stream
//! ([`Answers::Asked`]); a 2026-07-28 client answers between rounds: the call ends with the
//! upstream's input requests and the client retries it with its answers ([`Answers::Rounds`]),
//! which the gateway carries to the upstream in [`Resume`].

use std::sync::Arc;

pub use rmcp::model::{
    ClientCapabilities, InputRequest, InputRequests, InputRequiredResult, InputResponses,
};
use serde_json::Value;

use crate::ToolError;

/// Most rounds of input one call may ask for before the gateway gives up on it, as rmcp's own
/// client does: an upstream that keeps asking cannot hold a call (and its client) for ever.
pub const MAX_INPUT_ROUNDS: usize = rmcp::model::DEFAULT_MRTR_MAX_ROUNDS;

/// The calling client, as far as an upstream's questions go.
#[derive(Clone, Default)]
pub struct ClientLink {
    /// What the client declared: only `sampling`, `elicitation` and `roots` are ever read.
    pub declared: ClientCapabilities,
    /// How the client answers on this call's path.
    pub answers: Answers,
    /// The client's answers to the previous round, on a retried call (2026-07-28).
    pub resume: Resume,
}

/// How the client answers an input request on the call's path.
#[derive(Clone, Default)]
pub enum Answers {
    /// It cannot be asked on this path; the upstream hears of no client capability, and a
    /// question it asks anyway fails the call with the missing capability (-32021).
    #[default]
    Never,
    /// Asked during the call, on the request's stream (a session of the 2025 eras).
    Asked(Arc<dyn AskClient>),
    /// Between rounds: the call ends with the input requests ([`ToolError::InputRequired`]) and
    /// the client retries it with its answers (2026-07-28).
    Rounds,
}

/// The answers a client brought to a retried call, and the upstream's state of the round they
/// answer (opened from the gateway's sealed envelope; never the client's own text).
#[derive(Clone, Default)]
pub struct Resume {
    pub input_responses: Option<InputResponses>,
    pub request_state: Option<String>,
    /// Carries the retry to the replica holding its call, when another one does
    /// ([`crate::HeldCalls`]); `None` on a gateway without replicas' relay.
    pub relay: Option<Arc<dyn RelayRetry>>,
}

impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume")
            .field("input_responses", &self.input_responses)
            .field("request_state", &self.request_state)
            .field("relay", &self.relay.is_some())
            .finish()
    }
}

/// Carries a retry to the gateway replica whose instance holds the call it resumes, and that
/// replica's outcome back: a 2026-07-28 client's rounds may reach any replica, and a call held
/// open upstream lives on one.
#[async_trait::async_trait]
pub trait RelayRetry: Send + Sync {
    /// Hands `retry` to the instance named `holder` ([`crate::HeldCalls::holder`]) on whichever
    /// replica has it, and returns what its [`crate::HeldCalls::resume_relayed`] answered.
    async fn relay(&self, holder: &str, retry: Value) -> Result<Value, ToolError>;
}

/// Asks the calling client one question during a call.
#[async_trait::async_trait]
pub trait AskClient: Send + Sync {
    /// The client's result for `request` (a `CreateMessageResult`, `ElicitResult` or
    /// `ListRootsResult` as JSON), or why there is none.
    async fn ask(&self, request: InputRequest) -> Result<Value, ToolError>;
}

/// The client capability `request` needs, as the top-level key of the client capabilities, and
/// whether the client's declaration covers it (URL-mode elicitation needs `elicitation.url`).
fn needs(request: &InputRequest, declared: &ClientCapabilities) -> (&'static str, bool) {
    match request {
        InputRequest::CreateMessage(_) => ("sampling", declared.sampling.is_some()),
        InputRequest::Elicitation(elicit) => {
            let url_mode = matches!(
                elicit.params,
                rmcp::model::ElicitRequestParams::UrlElicitationParams { .. }
            );
            let covered = declared
                .elicitation
                .as_ref()
                .is_some_and(|elicitation| !url_mode || elicitation.url.is_some());
            ("elicitation", covered)
        }
        InputRequest::ListRoots(_) => ("roots", declared.roots.is_some()),
        // A kind of request this gateway does not know: nothing declares it.
        _ => ("unknown", false),
    }
}

// === impl ClientLink ===

impl ClientLink {
    /// The client capabilities an upstream may be told of: what the client declared that can be
    /// relayed on this path, and nothing else (no experimental keys, no extensions).
    pub fn relayable(&self) -> ClientCapabilities {
        let mut capabilities = ClientCapabilities::default();
        if matches!(self.answers, Answers::Never) {
            return capabilities;
        }
        capabilities.sampling = self.declared.sampling.clone();
        capabilities.elicitation = self.declared.elicitation.clone();
        capabilities.roots = self.declared.roots.clone();
        capabilities
    }

    /// The client can be asked at all on this path.
    pub fn can_be_asked(&self) -> bool {
        let relayable = self.relayable();
        relayable.sampling.is_some() || relayable.elicitation.is_some() || relayable.roots.is_some()
    }

    /// Refuses input requests the client cannot answer here, naming the first missing
    /// capability, so such a call fails with -32021 instead of hanging or asking blindly.
    pub fn check<'a>(
        &self,
        requests: impl IntoIterator<Item = &'a InputRequest>,
    ) -> Result<(), ToolError> {
        let relayable = self.relayable();
        for request in requests {
            let (capability, covered) = needs(request, &relayable);
            if !covered {
                return Err(ToolError::MissingClientCapability {
                    capability: capability.to_owned(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(value: Value) -> InputRequest {
        serde_json::from_value(value).unwrap()
    }

    fn link(declared: Value, answers: Answers) -> ClientLink {
        ClientLink {
            declared: serde_json::from_value(declared).unwrap(),
            answers,
            resume: Resume::default(),
        }
    }

    #[test]
    fn only_declared_capabilities_on_a_path_that_can_ask_are_relayable() {
        let declared = json!({"sampling": {}, "elicitation": {"form": {}}, "roots": {}, "experimental": {"x": {}}});
        let rounds = link(declared.clone(), Answers::Rounds);
        let relayable = serde_json::to_value(rounds.relayable()).unwrap();
        assert_eq!(
            relayable,
            json!({"sampling": {}, "elicitation": {"form": {}}, "roots": {}})
        );
        let never = link(declared, Answers::Never);
        assert_eq!(serde_json::to_value(never.relayable()).unwrap(), json!({}));
        assert!(!never.can_be_asked());
        assert!(rounds.can_be_asked());
    }

    #[test]
    fn a_request_the_client_did_not_declare_is_refused_with_its_capability() {
        let sampling = request(
            json!({"method": "sampling/createMessage", "params": {"messages": [], "maxTokens": 5}}),
        );
        let form = request(
            json!({"method": "elicitation/create", "params": {"mode": "form", "message": "name?", "requestedSchema": {"type": "object", "properties": {}}}}),
        );
        let url = request(
            json!({"method": "elicitation/create", "params": {"mode": "url", "message": "sign in", "url": "https://example.com/x", "elicitationId": "e1"}}),
        );
        let roots = request(json!({"method": "roots/list"}));
        let cases = [
            (json!({}), &sampling, Some("sampling")),
            (json!({"sampling": {}}), &sampling, None),
            (json!({"sampling": {}}), &form, Some("elicitation")),
            (json!({"elicitation": {}}), &form, None),
            (
                json!({"elicitation": {"form": {}}}),
                &url,
                Some("elicitation"),
            ),
            (json!({"elicitation": {"url": {}}}), &url, None),
            (json!({"elicitation": {}}), &roots, Some("roots")),
            (json!({"roots": {}}), &roots, None),
        ];
        for (declared, request, missing) in cases {
            let outcome = link(declared.clone(), Answers::Rounds).check([request]);
            match (outcome, missing) {
                (Ok(()), None) => {}
                (Err(ToolError::MissingClientCapability { capability }), Some(expected)) => {
                    assert_eq!(capability, expected, "{declared}")
                }
                (other, _) => panic!("{declared}: {other:?}"),
            }
            // On a path that cannot ask, nothing is covered.
            assert!(
                link(declared, Answers::Never).check([request]).is_err(),
                "never asked"
            );
        }
    }
}
