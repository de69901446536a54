//! Upstream calls held open between a 2026-07-28 client's rounds. An upstream of the 2025 eras
//! asks its questions mid-call (on the stream of the gateway's request) and waits for the
//! answer; a 2026-07-28 client answers only between rounds, by retrying its call. So the
//! gateway holds the upstream call: the question ends the client's round as `input_required`,
//! with a request state naming the held call (sealed by the gateway, so bound to the caller and
//! to the tool, resource or prompt), and the retry carrying the answer resumes the call where it
//! waits. A held call lives on the replica holding the upstream connection; a retry that reaches
//! another replica, or comes after [`HOLD_FOR`], is told the call is gone (so this case needs a
//! client kept on one replica), and the upstream hears its question went unanswered when the
//! sweeper lets the call go.

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
        ClientRequest, InputRequest, InputRequests, InputRequiredResult, RequestId, ServerResult,
    },
    service::{Peer, RequestHandle, ServiceError},
};
use serde_json::Value;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use super::{
    CLIENT_CANCELLED, CancelOnDrop,
    calls::{Calls, Entered},
};
use crate::{Answers, AskClient, CallContext, ClientLink, ToolError};

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

type HeldCalls = Mutex<HashMap<String, Held>>;

/// The calls an instance holds, by handle.
#[derive(Clone, Default)]
pub struct Holds {
    held: Arc<HeldCalls>,
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

/// The handle of a held call a retry names, if it names one.
pub fn resumed(ctx: &CallContext) -> Option<&str> {
    ctx.client
        .resume
        .request_state
        .as_deref()?
        .strip_prefix(STATE_PREFIX)
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

impl Holds {
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
        let round = round(&held.question, &handle);
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
        let weak: Weak<HeldCalls> = Arc::downgrade(&self.held);
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
        // Taken in a statement of its own: the lock must not outlive it (`hold` takes it again).
        let taken = self.held().remove(handle);
        let Some(held) = taken else {
            return Err(ToolError::InvalidArguments(
                "the call these answers belong to is no longer waiting (it waited longer than \
                 the gateway holds a call, or another replica holds it); call the tool again"
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
        let answer = ctx
            .client
            .resume
            .input_responses
            .as_ref()
            .and_then(|responses| responses.get(KEY));
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
        let _ = answered.send(Ok(answer.clone()));
        pending.entered.follow(ctx);
        pending.wait(self).await
    }
}

/// What `request` asks of the upstream, without the fields a retry changes (its answers, state
/// and `_meta`).
pub fn fingerprint(request: &ClientRequest) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut value = serde_json::to_value(request).unwrap_or_default();
    if let Some(params) = value.get_mut("params").and_then(Value::as_object_mut) {
        for key in ["inputResponses", "requestState", "_meta"] {
            params.remove(key);
        }
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

/// The round that asks the client `question` for the held call `handle`.
fn round(question: &InputRequest, handle: &str) -> ToolError {
    let requests = InputRequests::from([(KEY.to_owned(), question.clone())]);
    ToolError::InputRequired(Box::new(InputRequiredResult::new(
        Some(requests),
        Some(format!("{STATE_PREFIX}{handle}")),
    )))
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
