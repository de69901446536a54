//! Upstream calls held open between a 2026-07-28 client's rounds. An upstream of the 2025 eras
//! asks its questions mid-call (on the stream of the gateway's request) and waits for the
//! answer; a 2026-07-28 client answers only between rounds, by retrying its call. So the
//! gateway holds the upstream call: the question ends the client's round as `input_required`,
//! with a request state naming the held call and the instance holding it (sealed by the
//! gateway, so bound to the caller and to the tool, resource or prompt), and the retry carrying
//! the answer resumes the call where it waits.
//!
//! A held call lives on the replica holding the upstream connection, and the client's retry
//! may reach any replica: one whose instance is not the holder relays the retry there
//! ([`crate::RelayRetry`], the gateway's signal channel between replicas) and passes the
//! outcome on as its own ([`RelayedRetry`], [`Outcome`]). Progress and logs of a call resumed
//! on another replica stay there. A retry after [`HOLD_FOR`] is told the call is gone, and the
//! upstream hears its question went unanswered when the sweeper lets the call go.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::future::BoxFuture;
use rmcp::{
    RoleClient,
    model::{
        CallToolResult, ClientRequest, GetPromptResult, InputRequest, InputRequests,
        InputRequiredResult, ReadResourceResult, RequestId, ServerResult,
    },
    service::{Peer, RequestHandle, ServiceError},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use super::{
    CLIENT_CANCELLED, CancelOnDrop, McpAdapter,
    calls::{Calls, Entered},
    service_error,
};
use crate::{Answers, AskClient, CallContext, ClientLink, HeldCalls, ToolError};

/// How long a held call waits for the client's answer to one question (retries without the
/// answer do not extend it).
pub const HOLD_FOR: Duration = Duration::from_secs(600);
/// How often held calls past their time, or whose upstream gave up on its question, are let go.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// At most this many calls are held per instance: each keeps an upstream request open, and
/// clients that never retry must not pile them up.
const MAX_HELD: usize = 256;
/// At most this many of them for one user, so one user cannot take every place.
const MAX_HELD_PER_USER: usize = 16;
/// The request state of a held call, before the gateway seals it.
const STATE_PREFIX: &str = "manifold-held:";
/// The key of the one question each round carries.
const KEY: &str = "input";
/// Questions of one call waiting for its waiting side: an upstream asks one at a time in
/// practice, and more than this many unanswered ones wait in the upstream's own task.
const QUESTIONS: usize = 8;

/// A question of the upstream on its way to the call's waiting side, with where its answer goes.
type Question = (InputRequest, oneshot::Sender<Result<Value, ToolError>>);

type HeldByHandle = Mutex<HashMap<String, Held>>;

/// The calls an instance holds, by handle.
#[derive(Clone)]
pub struct Holds {
    /// The name the held calls' states carry ([`HeldCalls::holder`]).
    holder: Arc<str>,
    held: Arc<HeldByHandle>,
    /// Whether the sweeper runs (started with the first held call).
    sweeping: Arc<AtomicBool>,
}

/// A held call: the upstream call in progress, and the question its client has to answer.
struct Held {
    pending: Pending,
    question: InputRequest,
    answer: oneshot::Sender<Result<Value, ToolError>>,
    /// When the question goes unanswered and the call is let go.
    deadline: Instant,
}

/// An upstream call in progress whose questions come to the waiting side.
pub struct Pending {
    /// The caller (`None` without sign-in), whose held calls are counted together.
    user: Option<String>,
    /// What was asked of the upstream ([`fingerprint`]): a retry resumes the call only when it
    /// asks the same, so policy and audit, which see the retry, see what the upstream runs.
    fingerprint: u64,
    response: BoxFuture<'static, Result<ServerResult, ServiceError>>,
    questions: mpsc::Receiver<Question>,
    /// The call's place among its connection's calls, where its questions, progress and logs
    /// find it.
    entered: Entered,
    cancel: CancelOnDrop,
}

/// Asks by handing the question to the call's waiting side.
struct HeldAsker {
    questions: mpsc::Sender<Question>,
}

/// Whether a call of this client may be held: it answers between rounds.
pub fn holds_for(ctx: &CallContext) -> bool {
    matches!(ctx.client.answers, Answers::Rounds)
}

/// The holder and handle of the held call a retry names, if it names one (`Some(("", ""))`
/// for a held call's state that does not parse, such as one from an older gateway, which
/// names no call held anywhere and must never reach an upstream).
pub fn resumed(ctx: &CallContext) -> Option<(&str, &str)> {
    let named = ctx
        .client
        .resume
        .request_state
        .as_deref()?
        .strip_prefix(STATE_PREFIX)?;
    Some(named.split_once(':').unwrap_or(("", "")))
}

/// What a replica relays of a retry to the one holding its call.
#[derive(Serialize, Deserialize)]
struct RelayedRetry {
    handle: String,
    fingerprint: u64,
    user: Option<String>,
    /// The client's answer to the held question; `None` when it retried without one.
    answer: Option<Value>,
}

/// What the holding replica relays back: the upstream's answer, its next question, or why
/// there is neither.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    /// The upstream's result, as JSON of the result type of the request.
    Answered(Value),
    /// The call asks again: the round for the client (with the state naming the held call).
    InputRequired {
        input_requests: InputRequests,
        request_state: String,
    },
    Failed(Failure),
}

/// A [`ToolError`] on its way between replicas.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Failure {
    InvalidArguments { message: String },
    MissingClientCapability { capability: String },
    Unauthorized { message: String },
    Upstream { status: u16, message: String },
    BadResponse { message: String },
    Timeout,
    Cancelled,
    Other { message: String },
}

// === impl Pending ===

impl Pending {
    /// Routes the upstream's questions during call `handle` to this call's waiting side.
    pub fn start(
        calls: &Arc<Calls>,
        peer: Peer<RoleClient>,
        handle: RequestHandle<RoleClient>,
        fingerprint: u64,
        ctx: &CallContext,
    ) -> Self {
        let (sender, questions) = mpsc::channel(QUESTIONS);
        let link = ClientLink {
            declared: ctx.client.declared.clone(),
            answers: Answers::Asked(Arc::new(HeldAsker { questions: sender })),
            resume: Default::default(),
        };
        let id: RequestId = handle.id.clone();
        Self {
            cancel: CancelOnDrop::new(peer, id.clone(), CLIENT_CANCELLED),
            entered: calls.enter_as(id, handle.progress_token.clone(), link, ctx),
            user: ctx.user.clone(),
            fingerprint,
            questions,
            response: Box::pin(handle.await_response()),
        }
    }

    /// The call's answer, or — when the upstream asks first — the call held in `holds` and
    /// the question for the client ([`ToolError::InputRequired`]).
    pub async fn wait(
        mut self,
        holds: &Holds,
    ) -> Result<Result<ServerResult, ServiceError>, ToolError> {
        let asked = tokio::select! {
            response = &mut self.response => Ok(response),
            Some(question) = self.questions.recv() => Err(question),
        };
        match asked {
            Ok(response) => {
                self.cancel.answered();
                Ok(response)
            }
            Err((question, answer)) => {
                // The round ends here: its client's progress and logs must not wait on the call.
                self.entered.detach();
                Err(holds.hold(Held {
                    pending: self,
                    question,
                    answer,
                    deadline: Instant::now() + HOLD_FOR,
                }))
            }
        }
    }
}

// === impl Holds ===

impl Default for Holds {
    fn default() -> Self {
        Self {
            holder: format!("{:016x}", rand::random::<u64>()).into(),
            held: Arc::default(),
            sweeping: Arc::default(),
        }
    }
}

impl Holds {
    /// The name the states of the calls held here carry.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `held` for the client's retry and returns the round that asks it. Let go at its
    /// deadline: the upstream call is cancelled and its question unanswered.
    fn hold(&self, held: Held) -> ToolError {
        self.sweep();
        let mut holds = self.held();
        let user = &held.pending.user;
        let users = holds.values().filter(|h| h.pending.user == *user).count();
        if holds.len() >= MAX_HELD || users >= MAX_HELD_PER_USER {
            // Dropping `held` tells the upstream its question went unanswered.
            return ToolError::Unreachable(format!(
                "the gateway holds as many calls waiting for their clients as it may ({MAX_HELD} \
                 per instance, {MAX_HELD_PER_USER} per user); answer or abandon one, then retry"
            ));
        }
        let handle = format!("{:032x}", rand::random::<u128>());
        let round = round(&held.question, &self.holder, &handle);
        holds.insert(handle, held);
        round
    }

    /// Starts the sweeper once: every [`SWEEP_EVERY`] it lets go of the calls past their
    /// deadline and those whose upstream gave up on its question (it stopped waiting for the
    /// answer), until the instance is gone.
    fn sweep(&self) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let weak: Weak<HeldByHandle> = Arc::downgrade(&self.held);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SWEEP_EVERY);
            loop {
                ticker.tick().await;
                let Some(held) = weak.upgrade() else {
                    return;
                };
                let now = Instant::now();
                let gone: Vec<Held> = {
                    let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                    let handles: Vec<String> = held
                        .iter()
                        .filter(|(_, h)| h.deadline <= now || h.answer.is_closed())
                        .map(|(handle, _)| handle.clone())
                        .collect();
                    handles.iter().filter_map(|h| held.remove(h)).collect()
                };
                // Dropped outside the lock: each cancels its upstream call.
                drop(gone);
            }
        });
    }

    /// Resumes the held call `handle` with the client's answer in `ctx` and waits for what the
    /// upstream does next.
    pub async fn resume(
        &self,
        handle: &str,
        fingerprint: u64,
        ctx: &CallContext,
    ) -> Result<Result<ServerResult, ServiceError>, ToolError> {
        let answer = ctx
            .client
            .resume
            .input_responses
            .as_ref()
            .and_then(|responses| responses.get(KEY))
            .cloned();
        self.resume_with(handle, fingerprint, &ctx.user, answer, Some(ctx))
            .await
    }

    /// Resumes the held call `handle` of `user` with `answer`; its progress and logs from now
    /// on go to `follow`'s client (nowhere for a retry relayed from another replica).
    async fn resume_with(
        &self,
        handle: &str,
        fingerprint: u64,
        user: &Option<String>,
        answer: Option<Value>,
        follow: Option<&CallContext>,
    ) -> Result<Result<ServerResult, ServiceError>, ToolError> {
        // Taken in a statement of its own: the lock must not outlive it (`hold` takes it again).
        // Another caller's retry finds nothing (its state would not have opened anyway).
        let taken = {
            let mut held = self.held();
            match held.get(handle) {
                Some(call) if call.pending.user == *user => held.remove(handle),
                _ => None,
            }
        };
        let Some(held) = taken else {
            return Err(ToolError::InvalidArguments(
                "the call these answers belong to is no longer waiting (it waited longer than \
                 the gateway holds a call, or the replica holding it stopped); call the tool \
                 again"
                    .into(),
            ));
        };
        if held.pending.fingerprint != fingerprint {
            // Still held for a retry that asks the same.
            self.held().insert(handle.to_owned(), held);
            return Err(ToolError::InvalidArguments(
                "a retry must send the same arguments as the call it answers".into(),
            ));
        }
        let Some(answer) = answer else {
            // Retried without the answer: asked again, the call still held.
            return Err(self.hold(held));
        };
        let Held {
            pending,
            answer: answered,
            ..
        } = held;
        // The upstream may have given up on its question meanwhile; its call goes on either way.
        let _ = answered.send(Ok(answer));
        match follow {
            Some(ctx) => pending.entered.follow(ctx),
            None => pending.entered.detach(),
        }
        pending.wait(self).await
    }

    /// Resumes a retry relayed from another replica and encodes the outcome for it.
    async fn resume_relayed(&self, retry: Value) -> Value {
        let outcome = match serde_json::from_value::<RelayedRetry>(retry) {
            Ok(retry) => {
                let resumed = self
                    .resume_with(
                        &retry.handle,
                        retry.fingerprint,
                        &retry.user,
                        retry.answer,
                        None,
                    )
                    .await;
                Outcome::of(resumed)
            }
            Err(error) => Outcome::Failed(Failure::Other {
                message: format!("a replica relayed a retry this one cannot read: {error}"),
            }),
        };
        serde_json::to_value(outcome).unwrap_or(Value::Null)
    }
}

/// Relays a retry of the call `handle`, held by the instance `holder` on another replica, and
/// returns the outcome there as this replica's. `request` is the retry's, which says what
/// result type the upstream's answer has.
pub async fn resume_elsewhere(
    request: &ClientRequest,
    holder: &str,
    handle: &str,
    fingerprint: u64,
    ctx: &CallContext,
) -> Result<ServerResult, ToolError> {
    let Some(relay) = &ctx.client.resume.relay else {
        return Err(ToolError::InvalidArguments(
            "the call these answers belong to is no longer waiting (the gateway that held it \
             restarted); call the tool again"
                .into(),
        ));
    };
    let retry = RelayedRetry {
        handle: handle.to_owned(),
        fingerprint,
        user: ctx.user.clone(),
        answer: ctx
            .client
            .resume
            .input_responses
            .as_ref()
            .and_then(|responses| responses.get(KEY))
            .cloned(),
    };
    let retry = serde_json::to_value(retry)
        .map_err(|error| ToolError::BadResponse(format!("cannot relay the retry: {error}")))?;
    let outcome = relay.relay(holder, retry).await?;
    match serde_json::from_value::<Outcome>(outcome) {
        Ok(Outcome::Answered(value)) => result_of(request, value),
        Ok(Outcome::InputRequired {
            input_requests,
            request_state,
        }) => Err(ToolError::InputRequired(Box::new(
            InputRequiredResult::new(Some(input_requests), Some(request_state)),
        ))),
        Ok(Outcome::Failed(failure)) => Err(failure.into()),
        Err(error) => Err(ToolError::BadResponse(format!(
            "the replica holding the call answered something this one cannot read: {error}"
        ))),
    }
}

/// The upstream's answer to `request`, decoded as that request's result type (a tool's,
/// prompt's or resource's; rmcp's untagged union otherwise).
fn result_of(request: &ClientRequest, value: Value) -> Result<ServerResult, ToolError> {
    let decoded = match request {
        ClientRequest::CallToolRequest(_) => {
            serde_json::from_value::<CallToolResult>(value).map(ServerResult::CallToolResult)
        }
        ClientRequest::GetPromptRequest(_) => {
            serde_json::from_value::<GetPromptResult>(value).map(ServerResult::GetPromptResult)
        }
        ClientRequest::ReadResourceRequest(_) => {
            serde_json::from_value::<ReadResourceResult>(value)
                .map(ServerResult::ReadResourceResult)
        }
        _ => serde_json::from_value::<ServerResult>(value),
    };
    decoded.map_err(|error| ToolError::BadResponse(format!("relayed answer: {error}")))
}

// === impl Outcome ===

impl Outcome {
    fn of(resumed: Result<Result<ServerResult, ServiceError>, ToolError>) -> Self {
        match resumed {
            Ok(Ok(result)) => match serde_json::to_value(result) {
                Ok(value) => Outcome::Answered(value),
                Err(error) => Outcome::Failed(Failure::Other {
                    message: format!("the upstream's answer cannot be relayed: {error}"),
                }),
            },
            Ok(Err(error)) => Outcome::Failed(service_error(error).into()),
            Err(ToolError::InputRequired(round)) => Outcome::InputRequired {
                input_requests: round.input_requests.unwrap_or_default(),
                request_state: round.request_state.unwrap_or_default(),
            },
            Err(error) => Outcome::Failed(error.into()),
        }
    }
}

// === impl Failure ===

impl From<ToolError> for Failure {
    fn from(error: ToolError) -> Self {
        match error {
            ToolError::InvalidArguments(message) => Failure::InvalidArguments { message },
            ToolError::MissingClientCapability { capability } => {
                Failure::MissingClientCapability { capability }
            }
            ToolError::Unauthorized(message) => Failure::Unauthorized { message },
            ToolError::Upstream { status, message } => Failure::Upstream { status, message },
            ToolError::BadResponse(message) => Failure::BadResponse { message },
            ToolError::Timeout => Failure::Timeout,
            ToolError::Cancelled => Failure::Cancelled,
            other => Failure::Other {
                message: other.to_string(),
            },
        }
    }
}

impl From<Failure> for ToolError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::InvalidArguments { message } => ToolError::InvalidArguments(message),
            Failure::MissingClientCapability { capability } => {
                ToolError::MissingClientCapability { capability }
            }
            Failure::Unauthorized { message } => ToolError::Unauthorized(message),
            Failure::Upstream { status, message } => ToolError::Upstream { status, message },
            Failure::BadResponse { message } => ToolError::BadResponse(message),
            Failure::Timeout => ToolError::Timeout,
            Failure::Cancelled => ToolError::Cancelled,
            Failure::Other { message } => ToolError::Unreachable(message),
        }
    }
}

/// What `request` asks of the upstream, without the fields a retry changes (its answers, state
/// and `_meta`).
pub fn fingerprint(request: &ClientRequest) -> u64 {
    use sha2::Digest as _;
    let mut value = serde_json::to_value(request).unwrap_or_default();
    if let Some(params) = value.get_mut("params").and_then(Value::as_object_mut) {
        for key in ["inputResponses", "requestState", "_meta"] {
            params.remove(key);
        }
    }
    // A fixed hash, not the standard library's: replicas of different builds compare it (a
    // retry relayed during a rolling upgrade).
    let digest = sha2::Sha256::digest(value.to_string().as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The round that asks the client `question` for the call `handle` held by `holder`.
fn round(question: &InputRequest, holder: &str, handle: &str) -> ToolError {
    let requests = InputRequests::from([(KEY.to_owned(), question.clone())]);
    ToolError::InputRequired(Box::new(InputRequiredResult::new(
        Some(requests),
        Some(format!("{STATE_PREFIX}{holder}:{handle}")),
    )))
}

// === impl McpAdapter ===

#[async_trait::async_trait]
impl HeldCalls for McpAdapter {
    fn holder(&self) -> &str {
        &self.holds.holder
    }

    fn holding(&self) -> bool {
        !self.holds.held().is_empty()
    }

    async fn resume_relayed(&self, retry: Value) -> Value {
        self.holds.resume_relayed(retry).await
    }
}

// === impl HeldAsker ===

#[async_trait::async_trait]
impl AskClient for HeldAsker {
    async fn ask(&self, request: InputRequest) -> Result<Value, ToolError> {
        let (answer, answered) = oneshot::channel();
        self.questions
            .send((request, answer))
            .await
            .map_err(|_| ToolError::Cancelled)?;
        // Dropped unanswered: the call ended, or its client never came back for it.
        answered.await.map_err(|_| ToolError::Cancelled)?
    }
}
