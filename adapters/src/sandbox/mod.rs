//! The sandbox server: every adapter kind's local emulator of its provider's API, each under
//! `/<kind>`, on one loopback listener. Only built with the `sandbox` feature.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::Registry;

pub mod oauth;
pub mod throttle;

/// A running sandbox server.
#[derive(Debug)]
pub struct SandboxServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl SandboxServer {
    /// Binds `addr` (port 0 for any free port) and serves every kind in `registry` that has an
    /// emulator.
    pub async fn start(registry: &Registry, addr: SocketAddr) -> std::io::Result<Self> {
        let mut router = axum::Router::new();
        for kind in registry.kinds() {
            if let Some(emulator) = kind.sandbox() {
                router = router.nest(&format!("/{}", kind.sandbox_mount()), emulator);
            }
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "sandbox server stopped");
            }
        });
        Ok(Self { addr, shutdown })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL an adapter reaches its emulator at, given the kind's sandbox mount.
    pub fn base_url(&self, kind: &str) -> Url {
        // A socket address and a kind id always form a valid URL.
        Url::parse(&format!("http://{}/{kind}", self.addr)).unwrap_or_else(|_| {
            Url::parse("http://127.0.0.1/").unwrap_or_else(|_| unreachable!("static URL"))
        })
    }
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
