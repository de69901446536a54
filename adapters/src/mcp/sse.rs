//! The legacy HTTP+SSE client transport (MCP 2024-11-05), for upstreams that predate Streamable
//! HTTP. rmcp has none, so this is one: a GET opens the event stream, whose first `endpoint`
//! event names where to POST each client message; the server's answers, notifications and
//! requests come back as `message` events on that stream. When the stream ends (or breaks a
//! bound) the transport closes and the connection task's reconnect-with-backoff takes over.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, header};
use rmcp::{
    RoleClient,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::Transport,
};
use sse_stream::SseStream;
use tokio::sync::mpsc;
use url::Url;

use crate::Secret;

/// How long the server may take to name its message endpoint once the stream is open.
const ENDPOINT_WAIT: Duration = Duration::from_secs(10);
/// Messages read ahead of rmcp; the reader waits when rmcp is this far behind.
const INBOUND_BUFFER: usize = 64;
/// How long one POST may take: the server only queues the message (its answer comes on the
/// stream), so a slow one is a stuck one.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the transport could not open, or a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("the event stream request failed: {0}")]
    Connect(#[source] reqwest::Error),
    #[error("the event stream request was answered with HTTP {0}")]
    Status(u16),
    #[error(
        "the server answered with `{0}`, not an event stream: is base_url the server's legacy \
         SSE endpoint?"
    )]
    NotEventStream(String),
    #[error("the event stream ended before the server named its message endpoint")]
    NoEndpoint,
    #[error(
        "the server did not open its event stream and name its message endpoint within {}s",
        ENDPOINT_WAIT.as_secs()
    )]
    EndpointTimeout,
    #[error("the server's message endpoint is not a URL: {0}")]
    BadEndpoint(#[source] url::ParseError),
    /// Refused so that requests and the instance's credentials go only to the configured server.
    #[error(
        "the server named a message endpoint on another origin ({0}); only the origin of \
         base_url is accepted"
    )]
    OtherOrigin(String),
    #[error("{0}")]
    Stream(String),
    #[error("a message could not be sent: {0}")]
    Post(#[source] reqwest::Error),
    #[error("a message was answered with HTTP {0}")]
    PostStatus(u16),
}

/// An error of the event stream's body: the size bound, or the connection.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("an event larger than {0} bytes; the connection is closed")]
    TooLarge(usize),
    #[error("the event stream broke: {0}")]
    Body(#[source] reqwest::Error),
}

/// The client end of one legacy SSE connection.
pub struct SseTransport {
    client: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
    inbound: mpsc::Receiver<ServerJsonRpcMessage>,
    reader: tokio::task::JoinHandle<()>,
}

// === impl SseTransport ===

impl SseTransport {
    /// Opens the event stream at `base_url` and waits for the message endpoint. `headers` go on
    /// the GET and on every POST; an event over `max_event_bytes` ends the connection.
    /// `instance` names the connection in the log.
    pub async fn connect(
        instance: &str,
        base_url: &Url,
        headers: HeaderMap,
        max_event_bytes: usize,
    ) -> Result<Self, SseError> {
        // No redirects: a 3xx could carry the credential headers to another origin, which the
        // endpoint check below exists to prevent.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(SseError::Connect)?;
        let opening = client
            .get(base_url.clone())
            .headers(headers.clone())
            .header(header::ACCEPT, "text/event-stream")
            .send();
        // One deadline for the answer and the endpoint event: a server that accepts the
        // connection and then says nothing must not hold the connection task forever.
        let deadline = tokio::time::Instant::now() + ENDPOINT_WAIT;
        let response = tokio::time::timeout_at(deadline, opening)
            .await
            .map_err(|_| SseError::EndpointTimeout)?
            .map_err(|error| SseError::Connect(error.without_url()))?;
        if !response.status().is_success() {
            return Err(SseError::Status(response.status().as_u16()));
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("text/event-stream") {
            let shown: String = content_type.chars().take(64).collect();
            return Err(SseError::NotEventStream(shown));
        }
        let mut events = events(response.bytes_stream(), max_event_bytes);
        let endpoint = tokio::time::timeout_at(deadline, endpoint(&mut events))
            .await
            .map_err(|_| SseError::EndpointTimeout)??;
        let endpoint = base_url
            .join(endpoint.trim())
            .map_err(SseError::BadEndpoint)?;
        if endpoint.origin() != base_url.origin() {
            return Err(SseError::OtherOrigin(
                endpoint.origin().ascii_serialization(),
            ));
        }
        let (sender, inbound) = mpsc::channel(INBOUND_BUFFER);
        let reader = tokio::spawn(read(instance.to_owned(), events, sender));
        Ok(Self {
            client,
            endpoint,
            headers,
            inbound,
            reader,
        })
    }
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let request = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .timeout(POST_TIMEOUT)
            .json(&item);
        async move {
            // The endpoint URL carries the session id: kept out of errors, which reach logs.
            let response = request
                .send()
                .await
                .map_err(|error| SseError::Post(error.without_url()))?;
            // Usually 202: the answer comes on the event stream.
            if !response.status().is_success() {
                return Err(SseError::PostStatus(response.status().as_u16()));
            }
            Ok(())
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.inbound.recv()
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.reader.abort();
        self.inbound.close();
        Ok(())
    }
}

/// The instance's credential headers as a header map: `authorization` holds the bare token and
/// is sent as `Bearer <token>`, as rmcp's Streamable HTTP client does.
pub fn credential_headers(headers: &[(String, Secret)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header = HeaderName::try_from(name.as_str())
            .map_err(|_| format!("credential header `{name}` is not a header name"))?;
        let text = value.expose().trim();
        let text = if header == header::AUTHORIZATION {
            format!("Bearer {text}")
        } else {
            text.to_owned()
        };
        let mut value = HeaderValue::try_from(text)
            .map_err(|_| format!("credential header `{name}` has an invalid value"))?;
        value.set_sensitive(true);
        map.insert(header, value);
    }
    Ok(map)
}

pub(super) type Events =
    std::pin::Pin<Box<dyn Stream<Item = Result<sse_stream::Sse, sse_stream::Error>> + Send>>;

/// The event stream of a response body, each event bounded to `max` bytes.
pub(super) fn events(
    body: impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
    max: usize,
) -> Events {
    let mut limit = EventLimit::new(max);
    let bounded = body.map(move |chunk| {
        let chunk = chunk.map_err(ReadError::Body)?;
        limit.observe(&chunk)?;
        Ok::<_, ReadError>(chunk)
    });
    SseStream::from_bytes_stream(bounded).boxed()
}

/// Reads up to the `endpoint` event and returns its data. Anything else before it is skipped:
/// the spec puts the endpoint first, and nothing can be answered before it is known.
async fn endpoint(events: &mut Events) -> Result<String, SseError> {
    while let Some(event) = events.next().await {
        let event = event.map_err(stream_error)?;
        if event.event.as_deref() == Some("endpoint") {
            return event.data.ok_or(SseError::NoEndpoint);
        }
    }
    Err(SseError::NoEndpoint)
}

/// Hands each `message` event to rmcp until the stream ends, breaks or rmcp goes away.
async fn read(instance: String, mut events: Events, sender: mpsc::Sender<ServerJsonRpcMessage>) {
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                let error = stream_error(error);
                tracing::warn!(%instance, %error, "upstream MCP event stream closed");
                return;
            }
        };
        // An event without a name is a `message` event (the SSE default).
        if !matches!(event.event.as_deref(), None | Some("message")) {
            continue;
        }
        let Some(data) = event.data else { continue };
        match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
            Ok(message) => {
                if sender.send(message).await.is_err() {
                    return;
                }
            }
            // One unreadable message is the server's bug, not a reason to drop the session;
            // the text is not logged since it may hold user data.
            Err(error) => {
                tracing::warn!(%instance, %error, "upstream MCP message is not JSON-RPC; skipped");
            }
        }
    }
    tracing::info!(%instance, "upstream MCP event stream ended");
}

/// Whether an event stream's body error is the event size bound (see [`events`]).
pub(super) fn is_too_large(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    matches!(
        error.downcast_ref::<ReadError>(),
        Some(ReadError::TooLarge(_))
    )
}

/// The parser's error with the bound's own text when that was the cause.
fn stream_error(error: sse_stream::Error) -> SseError {
    match error {
        sse_stream::Error::Body(cause) => SseError::Stream(cause.to_string()),
        other => SseError::Stream(format!("the event stream is not valid SSE: {other}")),
    }
}

/// Counts the bytes one event keeps, as the parser will assemble it, so that an endless event
/// is cut before it fills memory. Comment lines (`:` first) are dropped by the parser and not
/// counted; a blank line ends the event.
struct EventLimit {
    max: usize,
    event: usize,
    line: usize,
    comment: bool,
    after_cr: bool,
}

// === impl EventLimit ===

impl EventLimit {
    fn new(max: usize) -> Self {
        Self {
            max,
            event: 0,
            line: 0,
            comment: false,
            after_cr: false,
        }
    }

    fn observe(&mut self, chunk: &[u8]) -> Result<(), ReadError> {
        for &byte in chunk {
            let after_cr = std::mem::take(&mut self.after_cr);
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    if self.line == 0 {
                        self.event = 0;
                    } else if !self.comment {
                        self.event = self.event.saturating_add(self.line + 1);
                    }
                    self.line = 0;
                    self.comment = false;
                }
                _ => {
                    if self.line == 0 {
                        self.comment = byte == b':';
                    }
                    self.line += 1;
                }
            }
            if self.event.saturating_add(self.line) > self.max {
                return Err(ReadError::TooLarge(self.max));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_one_event_at_a_time_and_skips_comments() {
        let mut limit = EventLimit::new(16);
        // Two events of 13 bytes each, then one of 16 after a comment the parser drops: none
        // is over 16, though each pair would be.
        limit
            .observe(b"data: 123456\n\r\ndata: abcdef\r\n\r\n: 1234567890\ndata: 123456789\n\n")
            .unwrap();
        assert!(matches!(
            limit.observe(b"data: 1234\ndata: 5678\n"),
            Err(ReadError::TooLarge(16))
        ));
    }

    #[test]
    fn the_token_is_sent_as_a_bearer_and_other_credentials_as_they_are() {
        let map = credential_headers(&[
            ("authorization".into(), Secret::new(" tok ")),
            ("x-api-key".into(), Secret::new("key")),
        ])
        .unwrap();
        assert_eq!(map[header::AUTHORIZATION], "Bearer tok");
        assert!(map[header::AUTHORIZATION].is_sensitive());
        assert_eq!(map["x-api-key"], "key");
        assert!(credential_headers(&[("bad name".into(), Secret::new("x"))]).is_err());
    }
}
