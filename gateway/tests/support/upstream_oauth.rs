//! An upstream MCP server protected by its own OAuth authorization server, in one process, for
//! tests of per-user OAuth to upstreams: RFC 9728 protected resource metadata, RFC 8414
//! metadata, `/authorize` (approves at once, the user from `login_hint`, PKCE S256 checked),
//! `/token` (authorization code, refresh with rotation), `/register` (RFC 7591), client ID
//! metadata documents fetched from the client's URL, token exchange (RFC 8693, and Entra's
//! on-behalf-of `jwt-bearer`) of sign-in tokens `idp-<user>` for the pre-registered client,
//! `/revoke`; and `/mcp`, which answers 401
//! with `WWW-Authenticate: Bearer resource_metadata="…"` to any request without one of its
//! tokens, and whose `whoami` tool and `crm://me` resource answer with the user the token
//! belongs to. `legacy` makes `/mcp` speak only the 2025 eras, with a session per connection;
//! its `chatty` tool then waits for a second call, sends progress under every call's token, a
//! log, and asks its client who it is. Resource subscriptions and list changes are per user:
//! `touch` says a resource changed on one user's connections only (those that subscribed to
//! it), `add_tool` and `flood_list_changes` announce a list change on one user's connections
//! (or every user's), on the session (2025 eras) or on `subscriptions/listen` streams.
// Logging and the 2025 eras' mid-call questions are deprecated by SEP-2577, and still tested.
#![allow(dead_code, clippy::unwrap_used, deprecated)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Form, Json, Router,
    extract::{Query, Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::{Value, json};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

/// The pre-registered client the tests configure.
pub const PRE_CLIENT: &str = "pre-client";
pub const PRE_SECRET: &str = "pre-secret";

/// How the authorization server behaves, and what it saw.
#[derive(Default)]
pub struct OAuthUpstream {
    /// `http://127.0.0.1:<port>`, set by [`OAuthUpstream::serve`].
    pub base: std::sync::OnceLock<String>,
    /// Say `client_id_metadata_document_supported`.
    pub cimd: AtomicBool,
    /// Offer `registration_endpoint`.
    pub dcr: AtomicBool,
    /// Lifetime of access tokens, in seconds (default 3600).
    pub access_ttl: AtomicU64,
    /// Answer this many more requests to `/mcp` with 401 although their token is valid (the
    /// upstream revoked it on its own).
    pub reject: AtomicUsize,
    /// Every `Authorization` header `/mcp` received (none: "").
    pub authorizations: Mutex<Vec<String>>,
    /// Users whose calls of `whoami` were served.
    pub calls: Mutex<Vec<String>>,
    /// Token requests: `{grant_type, client_id, resource}`.
    pub token_requests: Mutex<Vec<Value>>,
    /// Client ids whose metadata document was fetched.
    pub documents: Mutex<Vec<String>>,
    /// Dynamic registrations served.
    pub registrations: AtomicUsize,
    /// Tokens revoked.
    pub revoked: Mutex<Vec<String>>,
    /// Speak only the 2025 eras (sessions; questions asked during a call).
    pub legacy: AtomicBool,
    /// The progress tokens of the `chatty` calls in flight, of every session.
    pub chatty: Mutex<Vec<rmcp::model::ProgressToken>>,
    /// Offer the `added` tool too.
    pub extra: AtomicBool,
    /// `tools/list` requests served.
    pub tool_lists: AtomicUsize,
    /// `(user, uri)` of every subscription made (`resources/subscribe` or a listen stream's),
    /// and of every one ended.
    pub subscribed: Mutex<Vec<(String, String)>>,
    pub unsubscribed: Mutex<Vec<(String, String)>>,
    /// 2025-era sessions by user, to announce list changes on.
    sessions: Mutex<Vec<(String, rmcp::Peer<RoleServer>)>>,
    /// 2025-era subscriptions: `(user, uri, session)`.
    watchers: Mutex<Vec<(String, String, rmcp::Peer<RoleServer>)>>,
    /// What 2026-07-28 listen streams hear: `(user or None for all, event)`.
    events: std::sync::OnceLock<tokio::sync::broadcast::Sender<(Option<String>, Event)>>,
    clients: Mutex<HashMap<String, Option<String>>>,
    codes: Mutex<HashMap<String, Code>>,
    access: Mutex<HashMap<String, (String, Instant)>>,
    refresh: Mutex<HashMap<String, String>>,
}

/// What a listen stream may be told.
#[derive(Clone, Debug)]
enum Event {
    ToolsChanged,
    Updated(String),
}

struct Code {
    user: String,
    client_id: String,
    challenge: String,
    redirect_uri: String,
}

// === impl OAuthUpstream ===

impl OAuthUpstream {
    pub fn new() -> Arc<Self> {
        let upstream = Self::default();
        upstream.access_ttl.store(3600, Ordering::SeqCst);
        upstream
            .clients
            .lock()
            .unwrap()
            .insert(PRE_CLIENT.into(), Some(PRE_SECRET.into()));
        Arc::new(upstream)
    }

    pub fn base(&self) -> String {
        self.base.get().unwrap().clone()
    }

    /// The MCP server's URL.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base())
    }

    /// Serves everything on a loopback port until `stop`.
    pub async fn serve(self: &Arc<Self>, stop: CancellationToken) -> String {
        self.serve_at("127.0.0.1:0".parse().unwrap(), stop).await
    }

    /// Serves everything on `addr` until `stop`; returns the base URL.
    pub async fn serve_at(
        self: &Arc<Self>,
        addr: std::net::SocketAddr,
        stop: CancellationToken,
    ) -> String {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        self.base.set(base.clone()).unwrap();
        let handler = Handler(self.clone());
        let service = StreamableHttpService::new(
            move || Ok(handler.clone()),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
        );
        let mcp = Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(self.clone(), protect));
        let router = Router::new()
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(resource_metadata),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                get(server_metadata),
            )
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/register", post(register))
            .route("/revoke", post(revoke))
            .with_state(self.clone())
            .merge(mcp);
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .unwrap();
        });
        base
    }

    fn events(&self) -> &tokio::sync::broadcast::Sender<(Option<String>, Event)> {
        self.events
            .get_or_init(|| tokio::sync::broadcast::channel(8192).0)
    }

    /// Says `uri` changed, on `user`'s connections that subscribed to it only (whatever the
    /// URI: a careless upstream may announce one nobody subscribed to).
    pub async fn touch(&self, user: &str, uri: &str) {
        let _ = self
            .events()
            .send((Some(user.to_owned()), Event::Updated(uri.to_owned())));
        let watchers: Vec<_> = self
            .watchers
            .lock()
            .unwrap()
            .iter()
            .filter(|(who, _, _)| who == user)
            .map(|(_, _, peer)| peer.clone())
            .collect();
        for peer in watchers {
            let param = rmcp::model::ResourceUpdatedNotificationParam::new(uri);
            let _ = peer.notify_resource_updated(param).await;
        }
    }

    /// Adds the `added` tool and announces it on `user`'s connections only.
    pub async fn add_tool(&self, user: &str) {
        self.extra.store(true, Ordering::SeqCst);
        self.announce(Some(user)).await;
    }

    /// Says `count` times, as fast as it can, that its tools changed, on `user`'s connections
    /// (every user's for `None`), each notification sent on its own (a hostile upstream).
    pub async fn flood_list_changes(&self, user: Option<&str>, count: usize) {
        for _ in 0..count {
            self.announce(user).await;
            tokio::task::yield_now().await;
        }
    }

    async fn announce(&self, user: Option<&str>) {
        let _ = self
            .events()
            .send((user.map(str::to_owned), Event::ToolsChanged));
        let sessions: Vec<_> = self
            .sessions
            .lock()
            .unwrap()
            .iter()
            .filter(|(who, _)| user.is_none_or(|user| who == user))
            .map(|(_, peer)| peer.clone())
            .collect();
        for peer in sessions {
            let _ = peer.notify_tool_list_changed().await;
        }
    }

    /// A 2025-era session of `user` to announce list changes on.
    fn seen(&self, user: &str, context: &RequestContext<RoleServer>) {
        if !self.legacy.load(Ordering::SeqCst) {
            return;
        }
        let mut sessions = self.sessions.lock().unwrap();
        if sessions.len() < 64 {
            sessions.push((user.to_owned(), context.peer.clone()));
        }
    }

    /// The user `token` belongs to, while it is valid.
    pub fn user_of(&self, token: &str) -> Option<String> {
        let access = self.access.lock().unwrap();
        let (user, expires) = access.get(token)?;
        (Instant::now() < *expires).then(|| user.clone())
    }

    fn issue(&self, user: &str) -> Value {
        let access = format!("at-{user}-{}", rand_hex());
        let refresh = format!("rt-{user}-{}", rand_hex());
        let ttl = self.access_ttl.load(Ordering::SeqCst);
        self.access.lock().unwrap().insert(
            access.clone(),
            (user.to_owned(), Instant::now() + Duration::from_secs(ttl)),
        );
        self.refresh
            .lock()
            .unwrap()
            .insert(refresh.clone(), user.to_owned());
        json!({"access_token": access, "token_type": "Bearer", "expires_in": ttl,
               "refresh_token": refresh, "scope": "crm.read"})
    }

    /// Whether `client_id` may use `redirect_uri`: any URI for a registered client, the
    /// document's own for a client ID metadata document (fetched here, as a real server does).
    async fn check_client(&self, client_id: &str, redirect_uri: &str) -> bool {
        if self.clients.lock().unwrap().contains_key(client_id) {
            return true;
        }
        if !(client_id.starts_with("http://") || client_id.starts_with("https://"))
            || !self.cimd.load(Ordering::SeqCst)
        {
            return false;
        }
        self.documents.lock().unwrap().push(client_id.to_owned());
        let Ok(answer) = reqwest::get(client_id).await else {
            return false;
        };
        let Ok(document) = answer.json::<Value>().await else {
            return false;
        };
        document["client_id"] == client_id
            && document["redirect_uris"]
                .as_array()
                .is_some_and(|uris| uris.iter().any(|uri| uri == redirect_uri))
    }

    fn client_secret_ok(&self, client_id: &str, secret: Option<&str>) -> bool {
        match self.clients.lock().unwrap().get(client_id) {
            Some(Some(expected)) => secret == Some(expected.as_str()),
            // Public clients (dynamic, or by document) have no secret.
            _ => true,
        }
    }
}

/// The user a sign-in token names: `idp-<user>`, or a JWT's `sub` (this server trusts the
/// gateway's issuer; a real one would check the signature against its keys).
fn signed_in_user(token: &str) -> Option<String> {
    if let Some(user) = token.strip_prefix("idp-") {
        return Some(user.to_owned());
    }
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?,
    )
    .ok()?;
    claims["sub"].as_str().map(str::to_owned)
}

fn rand_hex() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>())
}

fn oauth_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
}

async fn resource_metadata(State(up): State<Arc<OAuthUpstream>>) -> Json<Value> {
    Json(
        json!({"resource": up.mcp_url(), "authorization_servers": [up.base()],
                "scopes_supported": ["crm.read"]}),
    )
}

async fn server_metadata(State(up): State<Arc<OAuthUpstream>>) -> Json<Value> {
    let base = up.base();
    let mut metadata = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "revocation_endpoint": format!("{base}/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": up.cimd.load(Ordering::SeqCst),
    });
    if up.dcr.load(Ordering::SeqCst) {
        metadata["registration_endpoint"] = json!(format!("{base}/register"));
    }
    Json(metadata)
}

async fn authorize(
    State(up): State<Arc<OAuthUpstream>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    if field("response_type") != "code" || field("code_challenge_method") != "S256" {
        return oauth_error("invalid_request");
    }
    if field("resource") != up.mcp_url() {
        return oauth_error("invalid_target");
    }
    let (client_id, redirect_uri) = (field("client_id"), field("redirect_uri"));
    if !up.check_client(&client_id, &redirect_uri).await {
        return oauth_error("unauthorized_client");
    }
    let user = query
        .get("login_hint")
        .cloned()
        .unwrap_or_else(|| "nobody".into());
    let code = format!("code-{}", rand_hex());
    up.codes.lock().unwrap().insert(
        code.clone(),
        Code {
            user,
            client_id,
            challenge: field("code_challenge"),
            redirect_uri: redirect_uri.clone(),
        },
    );
    let mut target = url::Url::parse(&redirect_uri).unwrap();
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &field("state"));
    Redirect::to(target.as_str()).into_response()
}

async fn token(
    State(up): State<Arc<OAuthUpstream>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let client_id = field("client_id");
    up.token_requests.lock().unwrap().push(json!({
        "grant_type": field("grant_type"), "client_id": client_id, "resource": field("resource"),
    }));
    if !up.client_secret_ok(&client_id, form.get("client_secret").map(String::as_str)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    // Exchanges are for the confidential, pre-registered client only.
    let signed_in = |token: String| signed_in_user(&token);
    let exchanged = match field("grant_type").as_str() {
        "urn:ietf:params:oauth:grant-type:token-exchange" => Some(
            (field("audience") == "crm" || field("resource") == up.mcp_url())
                .then(|| signed_in(field("subject_token")))
                .flatten(),
        ),
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => Some(
            (field("requested_token_use") == "on_behalf_of" && field("scope") == "crm.read")
                .then(|| signed_in(field("assertion")))
                .flatten(),
        ),
        _ => None,
    };
    if let Some(user) = exchanged {
        return match user {
            Some(user) if client_id == PRE_CLIENT => {
                let mut issued = up.issue(&user);
                issued.as_object_mut().unwrap().remove("refresh_token");
                Json(issued).into_response()
            }
            _ => oauth_error("invalid_grant"),
        };
    }
    if field("resource") != up.mcp_url() {
        return oauth_error("invalid_target");
    }
    let user = match field("grant_type").as_str() {
        "authorization_code" => {
            let Some(code) = up.codes.lock().unwrap().remove(&field("code")) else {
                return oauth_error("invalid_grant");
            };
            let challenge = {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(field("code_verifier").as_bytes()))
            };
            if challenge != code.challenge
                || code.client_id != client_id
                || code.redirect_uri != field("redirect_uri")
            {
                return oauth_error("invalid_grant");
            }
            code.user
        }
        // Rotation: the refresh token is good once.
        "refresh_token" => match up.refresh.lock().unwrap().remove(&field("refresh_token")) {
            Some(user) => user,
            None => return oauth_error("invalid_grant"),
        },
        _ => return oauth_error("unsupported_grant_type"),
    };
    Json(up.issue(&user)).into_response()
}

async fn register(State(up): State<Arc<OAuthUpstream>>, Json(body): Json<Value>) -> Response {
    if !up.dcr.load(Ordering::SeqCst) || body["redirect_uris"].as_array().is_none_or(Vec::is_empty)
    {
        return oauth_error("invalid_client_metadata");
    }
    let number = up.registrations.fetch_add(1, Ordering::SeqCst) + 1;
    let client_id = format!("dcr-{number}");
    up.clients.lock().unwrap().insert(client_id.clone(), None);
    (
        StatusCode::CREATED,
        Json(json!({"client_id": client_id, "redirect_uris": body["redirect_uris"]})),
    )
        .into_response()
}

async fn revoke(
    State(up): State<Arc<OAuthUpstream>>,
    Form(form): Form<HashMap<String, String>>,
) -> StatusCode {
    let token = form.get("token").cloned().unwrap_or_default();
    up.access.lock().unwrap().remove(&token);
    up.refresh.lock().unwrap().remove(&token);
    up.revoked.lock().unwrap().push(token);
    StatusCode::OK
}

/// `/mcp` only with a valid token of this server; the challenge otherwise.
async fn protect(State(up): State<Arc<OAuthUpstream>>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    up.authorizations.lock().unwrap().push(header.clone());
    let valid = header
        .strip_prefix("Bearer ")
        .and_then(|token| up.user_of(token))
        .is_some();
    let rejected = valid
        && up
            .reject
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if valid && !rejected {
        return next.run(request).await;
    }
    let challenge = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        up.base()
    );
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", challenge)],
        "unauthorized",
    )
        .into_response()
}

#[derive(Clone)]
struct Handler(Arc<OAuthUpstream>);

impl Handler {
    fn user(&self, context: &RequestContext<RoleServer>) -> String {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("authorization"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| self.0.user_of(token))
            .unwrap_or_default()
    }
}

impl Handler {
    /// Waits (up to 5 s) until two `chatty` calls are in flight, then, as a careless or hostile
    /// upstream might, sends progress under every call's token (the other session's too), a
    /// warning, and asks its own session's client for a name; answers with what it heard.
    async fn chatty(&self, context: &RequestContext<RoleServer>) -> CallToolResponse {
        let user = self.user(context);
        if let Some(token) = context.meta.get_progress_token() {
            self.0.chatty.lock().unwrap().push(token);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.0.chatty.lock().unwrap().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tokens = self.0.chatty.lock().unwrap().clone();
        for token in tokens {
            let mut progress = rmcp::model::ProgressNotificationParam::new(token, 1.0);
            progress.message = Some(format!("progress of {user}"));
            let _ = context.peer.notify_progress(progress).await;
        }
        let log = rmcp::model::LoggingMessageNotificationParam::new(
            rmcp::model::LoggingLevel::Warning,
            json!(format!("log of {user}")),
        );
        let _ = context.peer.notify_logging_message(log).await;
        let question: rmcp::model::ServerRequest = serde_json::from_value(json!({
            "method": "elicitation/create", "params": {"mode": "form",
            "message": format!("question for {user}"),
            "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}}))
        .unwrap();
        let answered = match context.peer.send_request(question).await {
            Ok(answer) => serde_json::to_value(answer).unwrap()["content"]["name"]
                .as_str()
                .unwrap_or("nobody")
                .to_owned(),
            Err(error) => format!("refused ({error})"),
        };
        let text = format!("{user} was answered by {answered}");
        CallToolResult::success(vec![ContentBlock::text(text)]).into()
    }
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_logging()
                .build(),
        )
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        if self.0.legacy.load(Ordering::SeqCst) {
            std::borrow::Cow::Owned(vec![ProtocolVersion::V_2025_11_25])
        } else {
            std::borrow::Cow::Owned(ProtocolVersion::KNOWN_VERSIONS.to_vec())
        }
    }

    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        let mut accepted = rmcp::model::SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.resource_subscriptions = requested.resource_subscriptions.clone();
        Some(accepted)
    }

    /// A 2026-07-28 listen stream of the user its token names: list changes announced to
    /// that user (or all), updates of that user's watched resources.
    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let user = self.user(context.request_context());
        let mut events = self.0.events().subscribe();
        let accepted = context.accepted().clone();
        let watched = accepted.resource_subscriptions.clone().unwrap_or_default();
        let pairs = || watched.iter().map(|uri| (user.clone(), uri.clone()));
        self.0.subscribed.lock().unwrap().extend(pairs());
        loop {
            let notification = tokio::select! {
                () = context.cancelled() => {
                    // The stream ending is how a 2026-07-28 client unsubscribes.
                    self.0.unsubscribed.lock().unwrap().extend(pairs());
                    return Ok(());
                }
                event = events.recv() => match event {
                    Ok((to, _)) if to.as_ref().is_some_and(|to| *to != user) => continue,
                    Ok((_, Event::ToolsChanged)) if accepted.tools_list_changed == Some(true) => {
                        rmcp::model::ServerNotification::ToolListChangedNotification(
                            rmcp::model::ToolListChangedNotification::default(),
                        )
                    }
                    Ok((_, Event::Updated(uri))) if watched.contains(&uri) => {
                        rmcp::model::ServerNotification::ResourceUpdatedNotification(
                            rmcp::model::ResourceUpdatedNotification::new(
                                rmcp::model::ResourceUpdatedNotificationParam::new(uri),
                            ),
                        )
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return Ok(()),
                },
            };
            if context.sink().send(notification).await.is_err() {
                return Ok(());
            }
        }
    }

    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let user = self.user(&context);
        self.0
            .subscribed
            .lock()
            .unwrap()
            .push((user.clone(), request.uri.clone()));
        self.0
            .watchers
            .lock()
            .unwrap()
            .push((user, request.uri, context.peer));
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let user = self.user(&context);
        self.0
            .watchers
            .lock()
            .unwrap()
            .retain(|(who, uri, _)| !(*who == user && *uri == request.uri));
        self.0
            .unsubscribed
            .lock()
            .unwrap()
            .push((user, request.uri));
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, McpError> {
        Ok(rmcp::model::ListResourcesResult::with_all_items(vec![
            rmcp::model::Resource::new("crm://me", "me"),
        ]))
    }

    /// `crm://me`: the record of the user the token belongs to.
    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, McpError> {
        if request.uri != "crm://me" {
            return Err(McpError::invalid_params("Resource not found", None));
        }
        let text = format!("record of {}", self.user(&context));
        let contents = rmcp::model::ResourceContents::text(text, request.uri);
        Ok(rmcp::model::ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.0.tool_lists.fetch_add(1, Ordering::SeqCst);
        self.0.seen(&self.user(&context), &context);
        let schema = json!({"type": "object", "properties": {}});
        let schema = Arc::new(schema.as_object().unwrap().clone());
        let mut tools = vec![
            Tool::new(
                "whoami",
                "The user this server knows the caller as",
                schema.clone(),
            ),
            Tool::new("chatty", "Reports progress, logs and asks", schema.clone()),
        ];
        if self.0.extra.load(Ordering::SeqCst) {
            tools.push(Tool::new("added", "Arrived later", schema));
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if request.name == "chatty" {
            return Ok(self.chatty(&context).await);
        }
        if request.name != "whoami" {
            return Err(McpError::invalid_params("unknown tool", None));
        }
        let user = self.user(&context);
        self.0.seen(&user, &context);
        self.0.calls.lock().unwrap().push(user.clone());
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("you are {user}"))]).into())
    }
}
