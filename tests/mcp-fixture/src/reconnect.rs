//! Session manager for `test_reconnection` (SEP-1699, scenario server-sse-polling): the POST
//! stream of that call is cut right after its priming event, before the result, so the client
//! must come back with `Last-Event-ID` and receive the result from the session's replay cache.
//! rmcp offers a handler no way to close its own request's stream (the stream id is internal to
//! `LocalSessionManager`), so the cut happens here, around the stream rmcp hands to the HTTP layer;
//! rmcp still caches every event sent to a dropped stream, which is what makes the resume work.

use std::pin::Pin;

use futures::{Stream, StreamExt as _, stream};
use rmcp::{
    model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage},
    transport::{
        common::server_side_http::ServerSseMessage,
        streamable_http_server::{
            RestoreOutcome, SessionId, SessionManager, session::local::LocalSessionManager,
        },
    },
};

pub const TOOL: &str = "test_reconnection";

type Events = Pin<Box<dyn Stream<Item = ServerSseMessage> + Send + Sync>>;

/// `LocalSessionManager`, except that a `test_reconnection` call's POST stream ends early.
#[derive(Default)]
pub struct Reconnecting {
    inner: LocalSessionManager,
}

fn is_reconnection_call(message: &ClientJsonRpcMessage) -> bool {
    match message {
        JsonRpcMessage::Request(request) => matches!(
            &request.request,
            ClientRequest::CallToolRequest(call) if call.params.name == TOOL
        ),
        _ => false,
    }
}

impl SessionManager for Reconnecting {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<rmcp::model::ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let cut = is_reconnection_call(&message);
        let mut events: Events = Box::pin(self.inner.create_stream(id, message).await?);
        if !cut {
            return Ok(events.left_stream());
        }
        // Forward events up to and including the priming one (no message, carries the id to
        // resume from), then drop the stream: the result lands in the cache, not on this POST.
        let mut sent = Vec::new();
        while let Some(event) = events.next().await {
            let priming = event.message.is_none();
            sent.push(event);
            if priming {
                break;
            }
        }
        Ok(stream::iter(sent).right_stream())
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }
}
