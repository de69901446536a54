//! The operator endpoints: `GET /metrics` (Prometheus text). They tell whoever reads them which
//! tools exist and how they are used, so they are not served to MCP clients: by default on a
//! listener of their own on loopback (`server.operator_listen`), or on the main listener behind a
//! bearer token (`server.operator_token`, required there; optional on their own listener).

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use manifold_adapters::Secret;
use sha2::{Digest, Sha256};

use super::{HostGuard, guard};
use crate::handler::Gateway;

/// The paths served here, for the docs and the tests that check none of them is on `/mcp`'s
/// listener by default.
pub const PATHS: &[&str] = &["/metrics"];

/// The operator routes, behind the Host/Origin guard and, when `token` is set, a bearer token.
pub fn router(gateway: Arc<Gateway>, guard: HostGuard, token: Option<&Secret>) -> Router {
    let mut router = Router::new().route("/metrics", get(move || metrics(gateway.clone())));
    if let Some(token) = token {
        let expected = Arc::new(OperatorToken::new(token));
        router = router.layer(middleware::from_fn_with_state(expected, require_token));
    }
    router.layer(middleware::from_fn_with_state(guard, guard::enforce))
}

/// The expected token, kept as a digest: comparing digests takes the same time whatever the
/// guess, and the token itself is not held twice.
struct OperatorToken([u8; 32]);

impl OperatorToken {
    fn new(token: &Secret) -> Self {
        Self(Sha256::digest(token.expose().trim().as_bytes()).into())
    }

    fn matches(&self, offered: &str) -> bool {
        let offered: [u8; 32] = Sha256::digest(offered.as_bytes()).into();
        offered
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
    }
}

async fn require_token(
    State(expected): State<Arc<OperatorToken>>,
    request: Request,
    next: Next,
) -> Response {
    let offered = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match offered {
        Some(token) if expected.matches(token) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"manifold-operator\"",
            )],
            "Unauthorized: the operator endpoints need the operator token",
        )
            .into_response(),
    }
}

/// Prometheus text exposition of the gateway's own counters and its tool calls.
async fn metrics(gateway: Arc<Gateway>) -> String {
    let (reloads, rejected) = gateway
        .policy()
        .store()
        .map_or((0, 0), |store| (store.reloads(), store.rejected_reloads()));
    let tools = gateway.catalog().len();
    let upstreams: String = gateway
        .instance_health()
        .iter()
        .map(|(instance, health)| {
            let up = u8::from(*health == manifold_adapters::Health::Up);
            format!("manifold_upstream_up{{instance=\"{instance}\"}} {up}\n")
        })
        .collect();
    let mut text = format!(
        "# HELP manifold_tools Tools in the catalog.\n\
         # TYPE manifold_tools gauge\n\
         manifold_tools {tools}\n\
         # HELP manifold_upstream_up Whether the gateway is connected to an upstream MCP server instance (1) or it is degraded (0).\n\
         # TYPE manifold_upstream_up gauge\n\
         {upstreams}\
         # HELP manifold_policy_reloads_total Policy changes applied without a restart.\n\
         # TYPE manifold_policy_reloads_total counter\n\
         manifold_policy_reloads_total {reloads}\n\
         # HELP manifold_policy_reloads_rejected_total Policy changes refused (parse or validation errors); the last good policy stayed in force.\n\
         # TYPE manifold_policy_reloads_rejected_total counter\n\
         manifold_policy_reloads_rejected_total {rejected}\n"
    );
    gateway.audit().render_metrics(&mut text);
    gateway.call_metrics().render(&mut text);
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_the_token_matches() {
        let token = OperatorToken::new(&Secret::new("a-long-operator-token"));
        assert!(token.matches("a-long-operator-token"));
        for wrong in [
            "",
            "a-long-operator-toke",
            "a-long-operator-tokenx",
            "A-LONG-OPERATOR-TOKEN",
        ] {
            assert!(!token.matches(wrong), "{wrong}");
        }
    }
}
