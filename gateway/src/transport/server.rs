//! The accept loop: HTTP/1.1 and HTTP/2 (prior knowledge) on one listener, with the connection
//! time limits `axum::serve` does not offer.
//!
//! A connection that sends nothing, or trickles its request headers a byte at a time
//! (slowloris), holds a socket and a task for as long as the server lets it. Two limits close it:
//!
//! - `header_read_timeout`: a new connection must deliver its first complete request within it
//!   (both protocols; this also covers a silent connection and a trickled HTTP/2 preface), and on
//!   HTTP/1 every request's headers must arrive within it (hyper's own timer).
//! - `idle_timeout`: a connection with no request in progress for this long is closed. A request
//!   is in progress until its answer's body has been sent, so an open SSE stream or a long tool
//!   call keeps its connection.
//! - `body_read_timeout`: a request's body must have arrived within it (counted from its
//!   headers); a body trickled slower fails to read with [`BodyTimedOut`], which `/mcp` answers
//!   with 408.
//!
//! A connection past its limit is dropped, not drained: it has nothing in flight to finish.

use std::{
    convert::Infallible,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{Router, body::Body, extract::Request, response::Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Time limits of every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish (as
/// `axum::serve` with graceful shutdown does).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    // Every connection task holds a receiver; the loop waits for all to be dropped.
    let (open_tx, open_rx) = tokio::sync::watch::channel(());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Answers are small and written in pieces (SSE); without NODELAY, Nagle's algorithm
        // holds the last piece for the client's delayed ACK (~40 ms).
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            limits,
            shutdown: shutdown.clone(),
            _open: open_rx.clone(),
        };
        tokio::spawn(connection.run(tcp, peer));
    }
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// One accepted connection.
struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    _open: tokio::sync::watch::Receiver<()>,
}

// === impl Connection ===

impl Connection {
    async fn run(self, tcp: tokio::net::TcpStream, peer: std::net::SocketAddr) {
        let activity = Arc::new(Activity::new());
        let router = self.router;
        let body_read_timeout = self.limits.body_read_timeout;
        let tracked = activity.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = tracked.begin();
            let router = router.clone();
            async move {
                let mut request: Request =
                    request.map(|body| Body::new(ReadDeadline::new(body, body_read_timeout)));
                // The peer address reaches handlers as `ConnectInfo`, as with `axum::serve`
                // (registration limits count by it).
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let response: Response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|body| Guarded::new(body, in_flight)))
            }
        });
        let mut conn = pin!(
            self.builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
        );
        let mut draining = false;
        loop {
            let deadline = activity.deadline(self.limits);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%error, "connection ended with an error");
                    }
                    return;
                }
                () = sleep_until(deadline) => {
                    if activity.expired(self.limits) {
                        tracing::debug!("closing an idle or too slow connection");
                        return;
                    }
                }
                () = self.shutdown.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        // Busy: nothing can expire until the last request ends, which re-arms the loop through
        // `conn` or the next deadline check.
        None => std::future::pending().await,
    }
}

/// What a connection is doing, for its time limits.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Requests seen so far (0: the first request's headers are still awaited).
    served: AtomicUsize,
    /// Milliseconds after `opened` when the last request in progress ended.
    idle_since_ms: AtomicU64,
}

// === impl Activity ===

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// When the connection expires if nothing happens before, `None` while a request is in
    /// progress. Checked every time it passes, so a request that began and ended meanwhile
    /// moves it on.
    fn deadline(&self, limits: ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Re-check now and then: an answer that ends wakes the connection future, but not
            // this timer.
            return Some(Instant::now() + limits.idle_timeout.min(limits.header_read_timeout));
        }
        if self.served.load(Ordering::Acquire) == 0 {
            return Some(self.opened + limits.header_read_timeout);
        }
        let idle_since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        Some(self.opened + idle_since + limits.idle_timeout)
    }

    fn expired(&self, limits: ConnectionLimits) -> bool {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return false;
        }
        self.deadline(limits).is_some_and(|at| at <= Instant::now())
    }
}

/// A request in progress on its connection, until its answer's body is dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let now = u64::try_from(activity.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        activity.idle_since_ms.fetch_max(now, Ordering::AcqRel);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that holds `G` (a request counted as in progress) until it has been sent or
/// dropped.
pub(super) struct Guarded<G> {
    body: Body,
    _guard: G,
}

impl<G> Guarded<G> {
    pub(super) fn new(body: Body, guard: G) -> Self {
        Self {
            body,
            _guard: guard,
        }
    }
}

impl<G: Unpin> hyper::body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails once its deadline has passed.
struct ReadDeadline {
    body: Incoming,
    deadline: Instant,
    /// Armed the first time the body is not ready: most bodies arrive with their headers, and
    /// those never touch the timer.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The error of a request body that did not arrive within `server.body_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the time allowed")]
pub struct BodyTimedOut;

impl ReadDeadline {
    fn new(body: Incoming, timeout: Duration) -> Self {
        Self {
            body,
            deadline: Instant::now() + timeout,
            timer: None,
        }
    }
}

impl hyper::body::Body for ReadDeadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Whether reading a body failed because it came too slowly.
pub(super) fn timed_out(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        source = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const LIMITS: ConnectionLimits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
    };

    #[test]
    fn a_new_connection_has_the_header_read_timeout_then_the_idle_timeout() {
        let activity = Arc::new(Activity::new());
        let first = activity.deadline(LIMITS).unwrap();
        assert_eq!(first, activity.opened + LIMITS.header_read_timeout);
        let request = activity.begin();
        assert!(!activity.expired(LIMITS));
        std::thread::sleep(Duration::from_millis(120));
        assert!(!activity.expired(LIMITS), "busy connections never expire");
        drop(request);
        let idle = activity.deadline(LIMITS).unwrap();
        assert!(idle >= activity.opened + Duration::from_millis(120) + LIMITS.idle_timeout);
        assert!(!activity.expired(LIMITS));
    }
}
