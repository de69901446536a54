//! The SSRF guard of discovering an upstream MCP server's authorization server (per-user OAuth
//! to upstreams, `mcp_upstream_oauth.rs`): metadata on a private address for a public upstream,
//! oversized metadata and redirects are refused.
#![allow(clippy::unwrap_used)]

use manifold_adapters::outbound::{AddressRules, Outbound, OutboundError, OutboundSettings};
use tokio_util::sync::CancellationToken;

/// A server at 127.0.0.1 whose `/mcp` answers 401 pointing at `metadata`, and which serves
/// `/meta` as `body` (or a redirect to `redirect`).
async fn probe_server(
    metadata: impl Fn(&str) -> String,
    body: String,
    redirect: Option<String>,
) -> (String, CancellationToken) {
    use axum::{response::IntoResponse, routing::get};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let challenge = format!("Bearer resource_metadata=\"{}\"", metadata(&base));
    let router = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(move || {
                let challenge = challenge.clone();
                async move {
                    (
                        axum::http::StatusCode::UNAUTHORIZED,
                        [("www-authenticate", challenge)],
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/meta",
            get(move || {
                let (body, redirect) = (body.clone(), redirect.clone());
                async move {
                    match redirect {
                        Some(to) => axum::response::Redirect::temporary(&to).into_response(),
                        None => body.into_response(),
                    }
                }
            }),
        );
    let stop = CancellationToken::new();
    let until = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(until.cancelled_owned())
            .await
            .unwrap();
    });
    (base, stop)
}

/// The guard of an upstream treated as public, except that its own address (127.0.0.1) is
/// reachable over http: every other private address stays refused.
fn public_guard() -> Outbound {
    Outbound::new(OutboundSettings {
        allow_http: true,
        rules: AddressRules {
            allow_private: false,
            allowed_cidrs: vec!["127.0.0.1/32".parse().unwrap()],
        },
        ..OutboundSettings::default()
    })
    .unwrap()
}

async fn discover(base: &str) -> Result<(), manifold::broker::upstream::discovery::DiscoveryError> {
    let url = url::Url::parse(&format!("{base}/mcp")).unwrap();
    manifold::broker::upstream::discovery::discover(&public_guard(), &url)
        .await
        .map(drop)
}

#[tokio::test]
async fn discovery_refuses_metadata_on_a_private_address_for_a_public_upstream() {
    use manifold::broker::upstream::discovery::DiscoveryError;
    let (base, _stop) = probe_server(
        |base| base.replace("127.0.0.1", "127.0.0.2") + "/meta",
        "{}".into(),
        None,
    )
    .await;
    match discover(&base).await {
        Err(DiscoveryError::Fetch {
            source: OutboundError::Blocked { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn discovery_refuses_oversized_metadata_and_redirects() {
    use manifold::broker::upstream::discovery::{DiscoveryError, MAX_METADATA_BYTES};
    let huge = format!(
        "{{\"resource\": \"x\", \"padding\": \"{}\"}}",
        "a".repeat(MAX_METADATA_BYTES)
    );
    let (base, _stop) = probe_server(|base| format!("{base}/meta"), huge, None).await;
    match discover(&base).await {
        Err(DiscoveryError::Fetch {
            source: OutboundError::TooLarge(_),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let (base, _stop) = probe_server(
        |base| format!("{base}/meta"),
        String::new(),
        Some("http://other.example/meta".into()),
    )
    .await;
    match discover(&base).await {
        Err(DiscoveryError::Status { status: 307, .. }) => {}
        other => panic!("{other:?}"),
    }
}
