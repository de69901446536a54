//! Questions the upstream asks the calling client during a call (sampling, elicitation, roots),
//! in both of the upstream's protocol eras:
//! - a 2026-07-28 upstream answers `input_required`; [`McpAdapter::rounds`] gets the client's
//!   answers (asked on its stream, or by ending the call with the requests so the client
//!   retries) and sends the request again with them;
//! - an upstream of the 2025 eras sends a request on the stream of the gateway's call
//!   ([`Calls::relay`]); it goes to the client whose call that stream serves, and its answer
//!   back. A request on no call's stream goes to the one call in flight that can be asked, and
//!   is refused when there is none or more than one: an upstream can only ever reach a client
//!   that is calling it at that moment, and never one it was not given. A client that answers
//!   only between rounds is asked by holding the call open until it retries (`held.rs`).

use rmcp::{
    ErrorData as McpError, RoleClient,
    model::{ClientRequest, ErrorCode, InputRequest, InputResponses, ServerResult},
    service::{InboundStreamOrigin, RequestContext},
};
use serde_json::Value;

use super::{McpAdapter, calls::Calls};
use crate::{Answers, CallContext, ToolError, client_input::MAX_INPUT_ROUNDS};

// === impl McpAdapter ===

impl McpAdapter {
    /// Sends `build`'s request and, while the upstream answers `input_required`, gets the
    /// client's answers and sends the request again with them and the upstream's state, at most
    /// [`MAX_INPUT_ROUNDS`] times. A client that answers between rounds gets the requests
    /// ([`ToolError::InputRequired`]); its retry starts here again with [`crate::Resume`].
    pub(super) async fn rounds(
        &self,
        ctx: &CallContext,
        build: impl Fn(Option<InputResponses>, Option<String>) -> ClientRequest,
    ) -> Result<ServerResult, ToolError> {
        let mut responses = ctx.client.resume.input_responses.clone();
        let mut state = ctx.client.resume.request_state.clone();
        for _ in 0..MAX_INPUT_ROUNDS {
            let asked = match self
                .send(build(responses.take(), state.take()), ctx)
                .await?
            {
                ServerResult::InputRequiredResult(asked) => asked,
                answer => return Ok(answer),
            };
            let requests = asked.input_requests.clone().unwrap_or_default();
            ctx.client.check(requests.values())?;
            match &ctx.client.answers {
                Answers::Rounds => return Err(ToolError::InputRequired(Box::new(asked))),
                Answers::Asked(client) => {
                    let mut answers = InputResponses::new();
                    for (key, request) in requests {
                        answers.insert(key, client.ask(request).await?);
                    }
                    responses = Some(answers);
                }
                // `check` let through only a round with no questions: its state alone goes back.
                Answers::Never => {}
            }
            state = asked.request_state;
        }
        Err(ToolError::BadResponse(format!(
            "the server asked for more input {MAX_INPUT_ROUNDS} times in one call; the gateway \
             stopped asking the client"
        )))
    }
}

// === impl Calls ===

impl Calls {
    /// Relays a request the upstream sent during a call to that call's client and returns the
    /// client's result, or the error the upstream hears.
    pub async fn relay(
        &self,
        instance: &str,
        request: InputRequest,
        context: &RequestContext<RoleClient>,
    ) -> Result<Value, McpError> {
        let origin = match context.extensions.get::<InboundStreamOrigin>() {
            Some(InboundStreamOrigin::OutboundRequest(id)) => Some(id),
            _ => None,
        };
        let link = self.link_for(origin).ok_or_else(|| {
            tracing::warn!(%instance, "upstream request outside any call refused");
            McpError::invalid_request(
                "this request belongs to no call in progress that the gateway can relay it to",
                None,
            )
        })?;
        link.check([&request]).map_err(|error| {
            McpError::new(
                ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                error.to_string(),
                None,
            )
        })?;
        match &link.answers {
            Answers::Asked(client) => client.ask(request).await.map_err(|error| {
                McpError::internal_error(format!("the client did not answer: {error}"), None)
            }),
            // Not a call's own link (a call of a client answering between rounds is held and
            // asked through `held.rs`): there is no round to end. Refused clearly; the
            // upstream decides how its call goes on.
            Answers::Rounds | Answers::Never => Err(McpError::new(
                ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                "the calling client answers server requests only between rounds (protocol \
                 2026-07-28), not during a call",
                None,
            )),
        }
    }
}
