//! The `requestState` the gateway hands a 2026-07-28 client when an upstream needs its input
//! (`resultType: "input_required"`), and opens again when the client retries with its answers.
//!
//! The client echoes the state verbatim, so it is the client's text and untrusted: the gateway
//! seals the upstream's own state (encrypted and authenticated with the keyring) together with
//! an expiry, bound to the caller and to the tool, resource or prompt asked for. A state that was
//! altered, has expired, or was sealed for another user or another target does not open, and the
//! retry is refused (-32602). Nothing is kept on the replica that sealed it, so any replica
//! resumes the call.

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use manifold_adapters::{
    Answers, AskClient, ClientLink, RelayRetry, Resume, ToolError,
    client_input::{InputRequest, InputResponses},
};
use manifold_policy::Principal;
#[allow(deprecated)] // MCP logging (SEP-2577)
use rmcp::model::{InputRequiredResult, LoggingMessageNotificationParam};
use serde::{Deserialize, Serialize};

use crate::{keyring::Keyring, redact::RedactStage};

/// How long a client has to answer one round.
const LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The most of an upstream's logger name a client is shown (after the instance's name).
const MAX_LOGGER_CHARS: usize = 64;

/// The answers a client brought to a retried request, as it sent them.
#[derive(Clone, Debug, Default)]
pub struct Retry {
    pub input_responses: Option<InputResponses>,
    /// The state the gateway sealed in the previous round, still sealed.
    pub request_state: Option<String>,
}

/// What a sealed state is bound to: who asked, for what.
pub struct Target<'a> {
    pub principal: &'a Principal,
    /// `tool`, `resource` or `prompt`.
    pub kind: &'static str,
    /// The name or URI the client used.
    pub name: &'a str,
}

/// Why a retry's `requestState` was refused.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "requestState is not one this gateway issued for this caller and this request (altered, or another's)"
    )]
    Invalid,
    #[error("requestState has expired; call again without it")]
    Expired,
    #[error("this gateway has no key to seal requestState with")]
    NoKey,
}

/// The sealed contents.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Seconds since the epoch after which the state does not open.
    exp: u64,
    /// The upstream's own state, if it gave one.
    state: Option<String>,
}

/// Seals and opens `requestState`; without a keyring (a gateway with no instance that asks its
/// clients anything) it seals nothing and opens nothing.
#[derive(Clone, Default)]
pub struct InputState {
    keyring: Option<Arc<Keyring>>,
    /// Carries a retry to the replica holding its call (`session::relay`), once the transport
    /// that has one shares it; a gateway without (stdio) resumes only what it holds itself.
    relay: Arc<OnceLock<Arc<dyn RelayRetry>>>,
}

// === impl InputState ===

impl InputState {
    pub fn new(keyring: Option<Arc<Keyring>>) -> Self {
        Self {
            keyring,
            relay: Arc::default(),
        }
    }

    /// Relays retries of calls held on other replicas through `relay` from now on.
    pub fn relay_through(&self, relay: Arc<dyn RelayRetry>) {
        // Set once, at start; a second transport sharing the same relay changes nothing.
        let _ = self.relay.set(relay);
    }

    /// The upstream's input requests for the client, its state sealed in `requestState`.
    pub fn seal(
        &self,
        mut asked: InputRequiredResult,
        target: &Target<'_>,
    ) -> Result<InputRequiredResult, StateError> {
        let keyring = self.keyring.as_ref().ok_or(StateError::NoKey)?;
        let sealed = Sealed {
            exp: now() + LIFETIME.as_secs(),
            state: asked.request_state.take(),
        };
        let plain = serde_json::to_vec(&sealed).map_err(|_| StateError::Invalid)?;
        asked.request_state = Some(keyring.seal(&plain, &context(target)));
        Ok(asked)
    }

    /// What goes upstream for a retry: the client's answers as they are (they are its own,
    /// and only ever reach the upstream it is calling), and the upstream's state opened from
    /// the sealed one. A retry without a state is a fresh call with answers, as the protocol
    /// allows.
    pub fn open(&self, retry: &Retry, target: &Target<'_>) -> Result<Resume, StateError> {
        let request_state = match &retry.request_state {
            None => None,
            Some(sealed) => {
                let keyring = self.keyring.as_ref().ok_or(StateError::Invalid)?;
                let plain = keyring
                    .open(sealed, &context(target))
                    .map_err(|_| StateError::Invalid)?;
                let opened: Sealed =
                    serde_json::from_slice(&plain).map_err(|_| StateError::Invalid)?;
                if opened.exp < now() {
                    return Err(StateError::Expired);
                }
                opened.state
            }
        };
        Ok(Resume {
            input_responses: retry.input_responses.clone(),
            request_state,
            relay: self.relay.get().cloned(),
        })
    }

    /// `link` with the opened answers of the retry, for the adapter.
    pub fn resumed(
        &self,
        link: &ClientLink,
        retry: &Retry,
        target: &Target<'_>,
    ) -> Result<ClientLink, StateError> {
        let resume = self.open(retry, target)?;
        Ok(ClientLink {
            resume,
            ..link.clone()
        })
    }
}

/// Whose redaction rules an upstream's questions and logs pass through: the tool's,
/// resource's or prompt's, as for its answers.
#[derive(Clone)]
pub struct Masking {
    pub redact: RedactStage,
    pub instance: Arc<str>,
    pub kind: Arc<str>,
    /// The name rules know the target by.
    pub name: String,
}

// === impl Masking ===

impl Masking {
    /// Masks the text of `item` (an upstream's question, or a round of them) as an answer of
    /// the target would be; `None` when it cannot be walked, so it is withheld, never passed on
    /// unmasked.
    fn apply<T: Serialize + serde::de::DeserializeOwned>(&self, item: &mut T) -> Option<()> {
        self.redact
            .apply_to_item(&self.instance, &self.kind, &self.name, item)
            .map(drop)
    }

    /// The upstream's round for the client, masked; its state is left out of the masking (it
    /// is opaque and must come back unchanged).
    pub fn round(&self, mut asked: InputRequiredResult) -> Option<InputRequiredResult> {
        let state = asked.request_state.take();
        self.apply(&mut asked)?;
        asked.request_state = state;
        Some(asked)
    }

    /// An upstream's log message for the client: its `data` and `logger` masked as an answer
    /// of the target would be, its `_meta` (the upstream's own) left out, and its `logger`
    /// prefixed with the instance (`notes/db`, or `notes` when it named none) so the client
    /// can tell which server behind the gateway spoke. `None` when it cannot be walked: the
    /// message is then withheld, never passed on unmasked.
    #[allow(deprecated)] // MCP logging (SEP-2577)
    pub fn log(
        &self,
        mut message: LoggingMessageNotificationParam,
    ) -> Option<LoggingMessageNotificationParam> {
        message.meta = None;
        self.apply(&mut message.data)?;
        message.logger = Some(match message.logger.take() {
            Some(mut logger) => {
                logger = logger.chars().take(MAX_LOGGER_CHARS).collect();
                self.apply(&mut logger)?;
                format!("{}/{logger}", self.instance)
            }
            None => self.instance.to_string(),
        });
        Some(message)
    }

    /// `link` with every question asked during the call masked first.
    pub fn link(&self, link: ClientLink) -> ClientLink {
        let answers = match link.answers {
            Answers::Asked(inner) => Answers::Asked(Arc::new(MaskedAsker {
                inner,
                masking: self.clone(),
            })),
            other => other,
        };
        ClientLink { answers, ..link }
    }
}

/// Asks the client through `inner`, each question masked by the target's redaction rules.
struct MaskedAsker {
    inner: Arc<dyn AskClient>,
    masking: Masking,
}

#[async_trait::async_trait]
impl AskClient for MaskedAsker {
    async fn ask(&self, mut request: InputRequest) -> Result<serde_json::Value, ToolError> {
        self.masking.apply(&mut request).ok_or_else(|| {
            ToolError::BadResponse(
                "the server's question could not be checked for redaction, so it was not asked"
                    .into(),
            )
        })?;
        self.inner.ask(request).await
    }
}

/// The associated data a state is sealed with: the caller (user and OAuth client) and the
/// target, each length-prefixed so no two different bindings read alike.
fn context(target: &Target<'_>) -> String {
    let parts = [
        target.principal.user.as_deref().unwrap_or(""),
        target.principal.client_id.as_deref().unwrap_or(""),
        target.kind,
        target.name,
    ];
    let mut context = String::from("mcp-request-state");
    for part in parts {
        context.push_str(&format!("|{}:{part}", part.len()));
    }
    context
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn keyring() -> Arc<Keyring> {
        let dir = tempfile::tempdir().unwrap();
        Arc::new(Keyring::load(None, &dir.path().join("secret.key"), true).unwrap())
    }

    fn principal(user: &str, client: &str) -> Principal {
        Principal {
            user: Some(user.into()),
            client_id: Some(client.into()),
            ..Principal::default()
        }
    }

    fn asked(state: Option<&str>) -> InputRequiredResult {
        InputRequiredResult::new(None, state.map(str::to_owned))
    }

    #[test]
    fn a_sealed_state_opens_only_for_its_caller_and_target() {
        let input = InputState::new(Some(keyring()));
        let alice = principal("alice", "chatgpt");
        let target = Target {
            principal: &alice,
            kind: "tool",
            name: "crm_update",
        };
        let sealed = input.seal(asked(Some("step-2")), &target).unwrap();
        let state = sealed.request_state.clone().unwrap();
        assert!(
            !state.contains("step-2"),
            "the upstream's state is encrypted"
        );
        let retry = Retry {
            input_responses: Some([("k".to_owned(), json!({"action": "accept"}))].into()),
            request_state: Some(state.clone()),
        };
        let resume = input.open(&retry, &target).unwrap();
        assert_eq!(resume.request_state.as_deref(), Some("step-2"));
        assert_eq!(resume.input_responses, retry.input_responses);

        let bob = principal("bob", "chatgpt");
        let other_client = principal("alice", "other");
        let refusals = [
            Target {
                principal: &bob,
                kind: "tool",
                name: "crm_update",
            },
            Target {
                principal: &other_client,
                kind: "tool",
                name: "crm_update",
            },
            Target {
                principal: &alice,
                kind: "tool",
                name: "crm_delete",
            },
            Target {
                principal: &alice,
                kind: "prompt",
                name: "crm_update",
            },
        ];
        for other in &refusals {
            assert!(matches!(
                input.open(&retry, other),
                Err(StateError::Invalid)
            ));
        }
        // Another gateway's key does not open it either.
        let elsewhere = InputState::new(Some(keyring()));
        assert!(elsewhere.open(&retry, &target).is_err());
        // No state: the answers pass, nothing is opened.
        let fresh = Retry {
            request_state: None,
            ..retry
        };
        assert_eq!(input.open(&fresh, &target).unwrap().request_state, None);
    }

    #[test]
    fn a_state_past_its_expiry_is_refused() {
        let keyring = keyring();
        let input = InputState::new(Some(keyring.clone()));
        let alice = principal("alice", "c");
        let target = Target {
            principal: &alice,
            kind: "tool",
            name: "t",
        };
        let stale = serde_json::to_vec(&Sealed {
            exp: now() - 1,
            state: None,
        })
        .unwrap();
        let retry = Retry {
            input_responses: None,
            request_state: Some(keyring.seal(&stale, &context(&target))),
        };
        assert!(matches!(
            input.open(&retry, &target),
            Err(StateError::Expired)
        ));
    }

    proptest! {
        /// Any change to a sealed state — a character replaced, cut, or added — is refused.
        #[test]
        fn an_altered_state_never_opens(
            upstream in proptest::option::of("[ -~]{0,64}"),
            position in 0usize..512,
            replacement in "[ -~]{0,3}",
            cut in any::<bool>(),
        ) {
            let input = InputState::new(Some(keyring()));
            let alice = principal("alice", "c");
            let target = Target { principal: &alice, kind: "tool", name: "t" };
            let sealed = input
                .seal(asked(upstream.as_deref()), &target)
                .unwrap()
                .request_state
                .unwrap();
            let at = position % (sealed.len() + 1);
            let mut altered = sealed[..at].to_owned();
            altered.push_str(&replacement);
            if !cut {
                altered.push_str(&sealed[(at + replacement.len()).min(sealed.len())..]);
            }
            prop_assume!(altered != sealed);
            let retry = Retry { input_responses: None, request_state: Some(altered) };
            prop_assert!(input.open(&retry, &target).is_err());
        }
    }
}
