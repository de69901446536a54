//! The `mcp` kind: an existing MCP server (Streamable HTTP, legacy HTTP+SSE, or a stdio child
//! process) put behind the gateway like any provider. Its tools, resources and prompts arrive
//! live from the upstream ([`Tools::Live`], `offers.rs`); the gateway namespaces them, applies
//! policy, quota and redaction, and passes each answer through whole ([`ToolAnswer::Mcp`]).

/// Questions the upstream asks the calling client during a call, in both eras.
mod asking;
/// The calls in flight on one connection, for what the upstream sends during them.
mod calls;
mod connection;
mod convert;
/// `tools/call` as one plain POST to a 2026-07-28 Streamable HTTP upstream.
mod direct;
mod held;
mod offers;
/// Upstream connections per user, for `settings.auth = "oauth"` or `"token_exchange"`.
mod pool;
/// The kind's emulator for the demo: an MCP server of company notes.
#[cfg(feature = "sandbox")]
pub mod sandbox;
mod settings;
/// The legacy HTTP+SSE transport (2024-11-05), which rmcp does not have.
mod sse;

use std::sync::{Arc, Mutex};

use rmcp::{
    RoleClient,
    model::{CallToolRequest, CallToolRequestParams, ClientRequest, ErrorData, ServerResult},
    service::{Peer, PeerRequestOptions, ServiceError},
};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use convert::{UNTRUSTED, valid_name};
pub use settings::{
    DEFAULT_MAX_RESPONSE_BYTES, Endpoint, ExchangeGrant, ExchangeSettings, McpSettings,
    OAuthSettings, UpstreamAuth,
};

use self::connection::Shared;
use crate::{
    Adapter, AdapterKind, BuildError, CallContext, Health, InstanceSettings, ToolAnswer, ToolError,
    ToolOutput, Tools,
};

/// Scheduler turns a call on rmcp's path waits after its answer for its logs (`settle`).
const SETTLE_TURNS: usize = 4;
/// Resource updates buffered for slow sessions; a session further behind misses some (an
/// update says only "read it again", so the next one covers it).
const UPDATES_BUFFER: usize = 256;

/// The kind: `kind = "mcp"`.
#[derive(Debug, Default)]
pub struct McpKind;

impl AdapterKind for McpKind {
    fn id(&self) -> &'static str {
        "mcp"
    }

    fn summary(&self) -> &'static str {
        "An upstream MCP server (Streamable HTTP at base_url, legacy SSE with settings.transport = \"sse\", or settings.command over stdio)"
    }

    /// No public default: an instance names its server's URL or its command. This placeholder
    /// stands for "none given" and is refused unless `settings.command` is set.
    fn default_base_url(&self) -> &'static str {
        "stdio:"
    }

    /// `sandbox = true` makes the instance's `base_url` `http://127.0.0.1:<port>/mcp-notes`:
    /// an http URL, so the instance speaks Streamable HTTP to the notes server there.
    fn sandbox_mount(&self) -> &'static str {
        "mcp-notes"
    }

    /// The notes server (`sandbox/mcp`), an upstream MCP server the demo starts itself.
    #[cfg(feature = "sandbox")]
    fn sandbox(&self) -> Option<axum::Router> {
        Some(sandbox::router())
    }

    fn build(&self, settings: InstanceSettings) -> Result<Arc<dyn Adapter>, BuildError> {
        let parsed = McpSettings::parse(&settings.base_url, settings.settings)?;
        let per_user = parsed.auth.per_user();
        let headers = if per_user {
            pool::check_credentials(&settings.credentials)?;
            Vec::new()
        } else {
            credential_headers(&settings.credentials)?
        };
        let (tools, _) = watch::channel(Arc::<[crate::ToolSpec]>::from(Vec::new()));
        let (peer, _) = watch::channel(None);
        let (resources, _) = watch::channel(Arc::from(Vec::new()));
        let (templates, _) = watch::channel(Arc::from(Vec::new()));
        let (prompts, _) = watch::channel(Arc::from(Vec::new()));
        Ok(Arc::new(McpAdapter {
            shared: Arc::new(Shared {
                name: settings.name,
                settings: parsed,
                headers,
                peer,
                tools,
                resources,
                templates,
                prompts,
                updates: tokio::sync::broadcast::channel(UPDATES_BUFFER).0,
                subscriptions: Mutex::new(Default::default()),
                health: Mutex::new(Health::Degraded {
                    reason: if per_user {
                        "no user connected yet".into()
                    } else {
                        "not connected yet".into()
                    },
                }),
                refresh: tokio::sync::Notify::new(),
                calls: Arc::default(),
                direct: watch::channel(None).0,
            }),
            started: std::sync::Once::new(),
            pool: per_user.then(Arc::default),
            holds: held::Holds::default(),
        }))
    }
}

/// The instance credentials as request headers: `token` is the bearer token (rmcp sends it as
/// `Authorization: Bearer <token>`), `header_<name>` is sent as `<name>` with `-` for `_`
/// (`header_x_api_key` as `x-api-key`). Both come from the environment, never from the config
/// file; any other key is refused, so a misspelt one is not silently dropped.
fn credential_headers(
    credentials: &std::collections::BTreeMap<String, crate::Secret>,
) -> Result<Vec<(String, crate::Secret)>, BuildError> {
    credentials
        .iter()
        .map(|(key, value)| {
            let name = match (key.as_str(), key.strip_prefix("header_")) {
                ("token", _) => "authorization".to_owned(),
                (_, Some(header)) if !header.is_empty() => header.replace('_', "-"),
                _ => {
                    return Err(BuildError::Setting {
                        key: format!("credentials.{key}"),
                        reason: "an mcp instance takes `token` or `header_<name>`".into(),
                    });
                }
            };
            Ok((name, value.clone()))
        })
        .collect()
}

/// One upstream MCP server.
pub struct McpAdapter {
    shared: Arc<Shared>,
    started: std::sync::Once,
    /// Per-user connections, when the upstream authenticates each user (`pool.rs`).
    pool: Option<Arc<pool::Pool>>,
    /// Calls held open between a 2026-07-28 client's rounds (`held.rs`).
    holds: held::Holds,
}

/// Tells the upstream a request was abandoned when the call's future is dropped before its
/// answer came.
type CancelOnDrop = crate::Withdraw<RoleClient>;

/// Why the gateway withdraws an upstream call.
const CLIENT_CANCELLED: &str = "the gateway's client cancelled the call";

#[async_trait::async_trait]
impl Adapter for McpAdapter {
    fn tools(&self) -> Tools {
        Tools::Live(self.shared.tools.subscribe())
    }

    fn start(&self, shutdown: CancellationToken) {
        // A per-user instance has no connection of its own (`pool.rs`), only the refreshes its
        // users' connections ask for.
        self.started.call_once(|| {
            if let Some(pool) = &self.pool {
                tokio::spawn(
                    pool.clone()
                        .refresh_on_changes(self.shared.clone(), shutdown),
                );
                return;
            }
            tokio::spawn(self.shared.clone().run(shutdown));
        });
    }

    /// Sampling, elicitation and roots requests of the upstream reach the calling client
    /// (`asking.rs`).
    fn asks_client(&self) -> bool {
        true
    }

    /// The instance's credentials travel on its connection (see [`McpKind::build`]), unless
    /// the upstream authenticates each user (`pool.rs`).
    fn needs_credential(&self) -> bool {
        self.pool.is_some()
    }

    async fn list_as(&self, ctx: &CallContext) -> Result<(), ToolError> {
        self.list_with(ctx).await
    }

    fn health(&self) -> Option<Health> {
        Some(
            self.shared
                .health
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// The answer flattened to text and `structuredContent`, for callers that want a rendered
    /// output; the gateway serves [`Adapter::answer`].
    async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let ToolAnswer::Mcp(result) = self.answer(tool, arguments, ctx).await? else {
            return Err(ToolError::BadResponse("not an MCP answer".into()));
        };
        let text = result
            .content
            .iter()
            .filter_map(|block| block.as_text().map(|text| text.text.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        Ok(ToolOutput {
            structured: result.structured_content.clone().unwrap_or(Value::Null),
            text,
        })
    }

    async fn answer(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<ToolAnswer, ToolError> {
        let answer = self
            .rounds(ctx, |input_responses, request_state| {
                let mut params = CallToolRequestParams::new(tool.to_owned());
                params.arguments = Some(arguments.clone());
                params.meta = request_meta(ctx);
                params.input_responses = input_responses;
                params.request_state = request_state;
                ClientRequest::CallToolRequest(CallToolRequest::new(params))
            })
            .await?;
        match answer {
            ServerResult::CallToolResult(result) => Ok(ToolAnswer::Mcp(Box::new(result))),
            _ => Err(ToolError::BadResponse(
                "the server answered with something other than a tool result".into(),
            )),
        }
    }

    fn resources(&self) -> Option<&dyn crate::Resources> {
        Some(self)
    }

    fn prompts(&self) -> Option<&dyn crate::Prompts> {
        Some(self)
    }

    fn held(&self) -> Option<&dyn crate::HeldCalls> {
        Some(self)
    }
}

// === impl McpAdapter ===

impl McpAdapter {
    /// The connection in force, or the tool error a call gets while there is none.
    fn peer(&self) -> Result<Peer<RoleClient>, ToolError> {
        if let Some(peer) = self.shared.peer.borrow().clone() {
            return Ok(peer);
        }
        let reason = match self.health() {
            Some(Health::Degraded { reason }) => reason,
            _ => "not connected".into(),
        };
        Err(ToolError::Unreachable(format!(
            "the MCP server `{}` is not available: {reason}",
            self.shared.name
        )))
    }

    /// Sends one request upstream on behalf of a downstream call and waits for its answer:
    /// progress routed to the call, a dropped future cancelled upstream, an answer over the
    /// instance's `max_response_bytes` refused.
    async fn send(
        &self,
        request: ClientRequest,
        ctx: &CallContext,
    ) -> Result<ServerResult, ToolError> {
        let shared = &self.shared;
        // A retry answering the question of a call held for it (`held.rs`), here or on the
        // replica whose instance holds it.
        if let Some((holder, handle)) = held::resumed(ctx) {
            let fingerprint = held::fingerprint(&request);
            if !holder.is_empty() && holder != self.holds.holder() {
                let result =
                    held::resume_elsewhere(&request, holder, handle, fingerprint, ctx).await?;
                return finish(shared, Ok(result));
            }
            return finish(shared, self.holds.resume(handle, fingerprint, ctx).await?);
        }
        // The instance's own connection's direct route (never a per-user one, `connection.rs`).
        if let Some(direct) = direct::Direct::route(shared, &request) {
            return direct.call_tool(request, ctx).await;
        }
        let (peer, calls) = self.peer_for(ctx).await?;
        // rmcp gives every request a progress token of its own (never the client's, so one
        // client's token cannot reach another's call); progress under it goes to this call.
        let mut options = PeerRequestOptions::no_options();
        options.meta = Some(client_meta(ctx));
        let fingerprint = held::holds_for(ctx).then(|| held::fingerprint(&request));
        let handle = peer
            .send_request_with_option(request, options)
            .await
            .map_err(service_error)?;
        // A client answering between rounds is asked by holding the call (`held.rs`).
        if let Some(fingerprint) = fingerprint {
            let pending = held::Pending::start(&calls, peer, handle, fingerprint, ctx);
            return finish(shared, pending.wait(&self.holds).await?);
        }
        // What the upstream sends during the call reaches it (`calls.rs`): its progress, its
        // logs, and a 2025-era upstream's questions for the client (`asking.rs`).
        let _entered = calls.enter(handle.id.clone(), handle.progress_token.clone(), ctx);
        // Dropping this future (the client cancelled, the call timed out) tells the upstream.
        let mut cancel = CancelOnDrop::new(peer.clone(), handle.id.clone(), CLIENT_CANCELLED);
        let response = handle.await_response().await;
        cancel.answered();
        if ctx.log.is_some() {
            settle().await;
        }
        finish(shared, response)
    }
}

/// The upstream's answer to a call, refused when over the instance's `max_response_bytes`.
fn finish(
    shared: &Shared,
    response: Result<ServerResult, ServiceError>,
) -> Result<ServerResult, ToolError> {
    let result = response.map_err(service_error)?;
    let size = encoded_len(&result);
    if size > shared.settings.max_response_bytes {
        return Err(ToolError::BadResponse(format!(
            "the answer of {size} bytes is larger than the {} bytes allowed for `{}`",
            shared.settings.max_response_bytes, shared.name
        )));
    }
    Ok(result)
}

/// Lets the upstream's last notifications before its answer reach the call before it stops
/// taking them. rmcp handles each notification in a task of its own but an answer in its
/// service loop, and a 2025-era server sends its logs on the session's stream, not the call's:
/// an upstream that logs and then answers may have its logs still in flight when the answer is
/// in. The tasks already spawned run within these turns; a log later than that is only traced.
async fn settle() {
    for _ in 0..SETTLE_TURNS {
        tokio::task::yield_now().await;
    }
}

/// The request `_meta` the gateway sends upstream: the trace context only, never the client's
/// own `_meta` (its progress token and anything else stay downstream).
fn request_meta(ctx: &CallContext) -> Option<rmcp::model::RequestMetaObject> {
    let traceparent = ctx.traceparent.as_ref()?;
    let mut meta = rmcp::model::RequestMetaObject::default();
    meta.0
        .0
        .insert("traceparent".into(), Value::String(traceparent.clone()));
    Some(meta)
}

/// The request `_meta` every upstream request carries besides its own: the client
/// capabilities the gateway can relay to on this call's path (`io.modelcontextprotocol/
/// clientCapabilities`, read by a 2026-07-28 upstream per request), so an upstream asks only
/// what the calling client can answer. rmcp sets the connection's own declaration first; this
/// one replaces it. With them the log level the calling client wants
/// (`io.modelcontextprotocol/logLevel`), when it hears logs: a 2026-07-28 upstream sends none
/// without it. 2025-era upstreams ignore it and log at the connection's level
/// (`Shared::ask_for_logs`).
fn client_meta(ctx: &CallContext) -> rmcp::model::RequestMetaObject {
    let mut meta = rmcp::model::RequestMetaObject::default();
    meta.set_client_capabilities(ctx.client.relayable());
    if let Some(log) = &ctx.log {
        meta.set_log_level(log.level);
    }
    meta
}

/// The bytes `result` takes as JSON, counted without building the text.
fn encoded_len(result: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, result) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// An upstream failure as the model should read it; never the upstream's credentials.
fn service_error(error: ServiceError) -> ToolError {
    match error {
        // The user's token was refused (expired, revoked): the gateway renews it once.
        error if error.is_authorization_required() => {
            ToolError::Unauthorized("the MCP server refused the token".into())
        }
        ServiceError::McpError(error) => mcp_error(error),
        ServiceError::Timeout { .. } => ToolError::Timeout,
        ServiceError::Cancelled { .. } => ToolError::Cancelled,
        // The transport also closes on an answer beyond its own bound (four times the cap).
        ServiceError::TransportClosed => ToolError::Unreachable(
            "the connection to the MCP server closed during the call (it also closes on an \
             answer far over the instance's max_response_bytes)"
                .into(),
        ),
        other => ToolError::Unreachable(other.to_string()),
    }
}

/// An upstream's JSON-RPC error as the model should read it, whichever path brought it.
fn mcp_error(error: ErrorData) -> ToolError {
    match error.code.0 {
        -32602 => ToolError::InvalidArguments(error.message.to_string()),
        // The upstream needs a client capability (sampling, elicitation, roots) the calling
        // client did not declare (`client_meta`): the caller hears it as its own missing one.
        -32021 => {
            let capability = error
                .data
                .as_ref()
                .and_then(|data| data.get("requiredCapabilities"))
                .and_then(Value::as_object)
                .and_then(|required| required.keys().next().cloned())
                .filter(|name| name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric()))
                .unwrap_or_else(|| "unspecified".to_owned());
            ToolError::MissingClientCapability { capability }
        }
        _ => ToolError::Upstream {
            status: 502,
            message: format!("MCP error {}: {}", error.code.0, error.message),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::Secret;

    fn credentials(keys: &[&str]) -> BTreeMap<String, Secret> {
        keys.iter()
            .map(|key| ((*key).to_owned(), Secret::new(format!("value-of-{key}"))))
            .collect()
    }

    #[test]
    fn the_token_and_header_credentials_become_headers_and_other_keys_are_refused() {
        let headers = credential_headers(&credentials(&["token", "header_x_api_key"])).unwrap();
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["x-api-key", "authorization"]);
        assert_eq!(headers[1].1.expose(), "value-of-token");
        for bad in ["api_key", "header_", "tokens"] {
            match credential_headers(&credentials(&[bad])) {
                Err(BuildError::Setting { key, .. }) => {
                    assert_eq!(key, format!("credentials.{bad}"))
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
