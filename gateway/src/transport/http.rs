//! The HTTP server: `/mcp` (Streamable HTTP, served by rmcp with the gateway's handler and the
//! shared session store), the legacy SSE routes, `/healthz`, and the OAuth routes of [`auth`]
//! (whose middleware guards `/mcp` and the legacy routes when `[auth] mode` is not `none`).
//! The operator endpoints are not here but in [`super::operator`], served where
//! `server.operator_listen` says.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    middleware,
    routing::get,
};
use manifold_adapters::Secret;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::{
    HostGuard, fast_path, guard, habits,
    jsonrpc::{self, BodyLimit},
    legacy_sse,
    limits::{self, StreamCap},
    shared_streams::SharedStreams,
};
use crate::{
    auth::{self, AuthState},
    handler::Gateway,
    session::{SharedSessionManager, SignalRelay, SqlSessionStore},
};

/// What the HTTP transport needs from `[server]`.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub guard: HostGuard,
    pub max_body_bytes: usize,
    pub sse_keep_alive: Duration,
    pub legacy_sse: bool,
    pub max_sessions_per_user: usize,
    pub max_streams_per_session: usize,
    /// Where requests in progress per session are counted across replicas
    /// (`storage.redis_url`); `None` counts them per replica.
    pub shared_streams: Option<SharedStreams>,
    /// The operator endpoints on this router too (`server.operator_listen = "main"`), behind
    /// this token.
    pub operator_on_main: Option<Secret>,
}

/// The gateway's routes, ready for `axum::serve`.
pub fn router(
    gateway: Arc<Gateway>,
    sessions: Arc<SqlSessionStore>,
    live_sessions: Arc<SharedSessionManager>,
    relay: Arc<SignalRelay>,
    settings: &HttpSettings,
    shutdown: CancellationToken,
    auth: Option<(Arc<AuthState>, bool)>,
) -> Router {
    let operator_gateway = gateway.clone();
    let mut config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(settings.sse_keep_alive))
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(shutdown.clone())
        // Stateless (2026) answers with nothing before the result go out as plain JSON.
        .with_json_response(true)
        // Host and Origin are checked by our guard on every route, legacy ones included.
        .disable_allowed_hosts()
        .disable_allowed_origins();
    config.session_store = Some(sessions.clone());
    let factory_gateway = gateway.clone();
    let questions = live_sessions.questions().clone();
    let mcp =
        StreamableHttpService::new(move || Ok(factory_gateway.handler()), live_sessions, config);
    let fast = fast_path::FastPath {
        gateway: gateway.clone(),
        sessions: sessions.clone(),
        relay,
        questions,
        shutdown: shutdown.clone(),
    };
    let session_slots = sessions.slots(settings.max_sessions_per_user);
    let mut mcp = Router::new()
        .fallback_service(mcp)
        // Inside the body guard: sees only well-formed bodies within the limit.
        .layer(middleware::from_fn_with_state(fast, fast_path::serve))
        // Inside the body guard too, which marks an `initialize`.
        .layer(middleware::from_fn_with_state(
            session_slots,
            limits::sessions_per_user,
        ))
        // What real clients send that the rules would refuse (no session, Accept), on bodies
        // the guard checked.
        .layer(middleware::from_fn_with_state(
            gateway.clone(),
            habits::tolerate,
        ))
        .layer(middleware::from_fn_with_state(
            BodyLimit(settings.max_body_bytes),
            jsonrpc::enforce,
        ))
        // Outside the body guard: a body still being read is a request in progress.
        .layer(middleware::from_fn_with_state(
            StreamCap::new(
                settings.max_streams_per_session,
                settings.shared_streams.clone(),
            ),
            limits::streams_per_session,
        ))
        .layer(middleware::from_fn_with_state(
            gateway.clone(),
            session_ended_status,
        ));
    // Authentication runs before anything else of /mcp, so an unauthenticated request learns
    // nothing but the challenge.
    if let Some((state, _)) = &auth {
        mcp = mcp.layer(middleware::from_fn_with_state(
            state.clone(),
            auth::resource::require,
        ));
    }
    let mut router = Router::new().nest("/mcp", mcp).route(
        "/healthz",
        get({
            let gateway = operator_gateway.clone();
            move || async move { health_text(&gateway) }
        }),
    );
    if let Some(token) = &settings.operator_on_main {
        let operator =
            super::operator::router(operator_gateway, settings.guard.clone(), Some(token));
        router = router.merge(operator);
    }
    if settings.legacy_sse {
        let mut legacy = legacy_sse::routes(gateway, settings, shutdown);
        if let Some((state, _)) = &auth {
            legacy = legacy.layer(middleware::from_fn_with_state(
                state.clone(),
                auth::resource::require,
            ));
        }
        router = router.merge(legacy);
    }
    if let Some((state, sandbox_idp)) = auth {
        router = router.merge(auth::routes(state, sandbox_idp));
    }
    router
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            settings.guard.clone(),
            guard::enforce,
        ))
}

/// rmcp answers a successful `DELETE /mcp` with 202; clients (the Python SDK among them) expect
/// the 200/204 family for a completed deletion, and nothing remains pending, so say 204.
/// The session's log threshold goes with it.
async fn session_ended_status(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let ended = (request.method() == axum::http::Method::DELETE)
        .then(|| {
            request
                .headers()
                .get("mcp-session-id")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .flatten();
    let mut response = next.run(request).await;
    if let Some(session) = ended
        && response.status() == axum::http::StatusCode::ACCEPTED
    {
        gateway.session_logs().forget(&session);
        *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
    }
    response
}

/// `/healthz`: the gateway answers, so it is up (`ok`); an instance that keeps a connection and
/// lost it is named on a line of its own, so an operator sees it without the pod being
/// restarted for a fault that is not the gateway's.
fn health_text(gateway: &Gateway) -> String {
    let mut text = String::from("ok");
    for (instance, health) in gateway.instance_health() {
        if let manifold_adapters::Health::Degraded { reason } = health {
            text.push_str(&format!("\ndegraded: {instance}: {reason}"));
        }
    }
    text
}
