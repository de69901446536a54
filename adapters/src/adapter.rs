//! The two traits a backend implements: [`AdapterKind`] (builds instances from config) and
//! [`Adapter`] (one configured instance: its tools and how to call them).

use std::sync::Arc;

#[allow(deprecated)] // MCP logging (SEP-2577)
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::{
    BuildError, ClientLink, ResolveFacts, Secret, TextFilter, ToolAnswer, ToolError, ToolOutput,
    ToolSpec, upstream::InstanceClient,
};

/// Reports progress of a long call to the MCP client that asked for it (`progress`, `total`,
/// `message`). The gateway only hands one in when the client sent a `progressToken`.
pub type ProgressSink = Arc<dyn Fn(f64, Option<f64>, Option<String>) + Send + Sync>;

/// Passes the log notifications an upstream sends during a call on to the MCP client that made
/// it. The gateway hands one in only when the client can hear logs on the call's path; it drops
/// what is under the client's threshold, masks the rest by the tool's redaction rules and names
/// the instance in the `logger`, so an adapter passes every message as it came.
#[derive(Clone)]
#[allow(deprecated)] // MCP logging (SEP-2577): still sent by servers and heard by clients
pub struct LogSink {
    /// The least severe level the client wants: what an upstream is asked to send at least.
    pub level: LoggingLevel,
    send: Arc<dyn Fn(LoggingMessageNotificationParam) + Send + Sync>,
}

#[allow(deprecated)] // MCP logging (SEP-2577)
impl LogSink {
    pub fn new(
        level: LoggingLevel,
        send: impl Fn(LoggingMessageNotificationParam) + Send + Sync + 'static,
    ) -> Self {
        Self {
            level,
            send: Arc::new(send),
        }
    }

    pub fn send(&self, message: LoggingMessageNotificationParam) {
        (self.send)(message);
    }

    /// A sink that passes each message through `map` first (masking, naming), dropping the
    /// ones it returns `None` for.
    pub fn map(
        self,
        map: impl Fn(LoggingMessageNotificationParam) -> Option<LoggingMessageNotificationParam>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        let inner = self.send;
        Self {
            level: self.level,
            send: Arc::new(move |message| {
                if let Some(message) = map(message) {
                    inner(message);
                }
            }),
        }
    }
}

/// Everything one tool call needs besides its arguments.
#[derive(Clone, Default)]
pub struct CallContext {
    /// The credential for the provider on behalf of the calling user (from the token broker).
    /// Never the MCP client's own token.
    pub credential: Option<Secret>,
    /// Who the credential belongs to (the caller's `sub`), for adapters that keep a connection
    /// per user (an upstream MCP server that authenticates each user).
    pub user: Option<String>,
    /// Cancelled when the client sends `notifications/cancelled` or goes away. Adapters pass it to
    /// [`InstanceClient::send`], which abandons the upstream request and any retry wait.
    pub cancel: CancellationToken,
    pub progress: Option<ProgressSink>,
    /// Where the upstream's log notifications during the call go, when the client hears them.
    pub log: Option<LogSink>,
    /// W3C trace context of the inbound request, continued on every upstream request.
    pub traceparent: Option<String>,
    /// The gateway's redaction for this tool: applied to a document's whole text before a
    /// window or snippet is cut from it (see [`TextFilter`]).
    pub text_filter: TextFilter,
    /// The calling client, for what an upstream asks of it during the call (sampling,
    /// elicitation, roots): what it declared, how it answers, and its answers to a last round.
    pub client: ClientLink,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("credential", &self.credential)
            .field("user", &self.user)
            .field("cancelled", &self.cancel.is_cancelled())
            .field("progress", &self.progress.is_some())
            .field("log", &self.log.as_ref().map(|sink| sink.level))
            .field("traceparent", &self.traceparent)
            .field("text_filter", &self.text_filter)
            .field("client_can_be_asked", &self.client.can_be_asked())
            .finish()
    }
}

impl CallContext {
    /// The user's provider token, trimmed, or the error every adapter gives without one.
    /// `provider` is the name the user knows (`Box`, `Google Drive`), used in that error.
    pub fn bearer(&self, provider: &str) -> Result<&str, ToolError> {
        self.credential
            .as_ref()
            .map(|secret| secret.expose().trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ToolError::Unauthorized(format!(
                    "no {provider} account is connected for this user; connect {provider} first"
                ))
            })
    }

    pub fn report_progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        if let Some(sink) = &self.progress {
            sink(progress, total, message);
        }
    }
}

/// What the gateway's config gives one adapter instance.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    /// The instance's name in the config (`[adapters.<name>]`).
    pub name: String,
    /// The provider's API root (the sandbox's address in the demo).
    pub base_url: Url,
    /// The HTTP client for this instance: shared pool, this instance's concurrency limit.
    pub client: InstanceClient,
    /// Kind-specific settings (`[adapters.<name>.settings]`), validated by the kind's `build`.
    pub settings: Map<String, Value>,
    /// The instance's static credentials (`[adapters.<name>.credentials]`, usually from
    /// `MANIFOLD_ADAPTERS__<NAME>__CREDENTIALS__…`), for kinds that use them beyond the per-call
    /// credential (an upstream MCP server's headers). Never logged.
    pub credentials: std::collections::BTreeMap<String, Secret>,
}

/// The tools an instance offers: fixed when it is built (native adapters), or live (an upstream
/// MCP server, whose list arrives after it connects and changes when it says so). The catalog
/// is rebuilt and swapped whenever a live list changes.
#[derive(Debug, Clone)]
pub enum Tools {
    Static(Vec<ToolSpec>),
    Live(tokio::sync::watch::Receiver<Arc<[ToolSpec]>>),
}

impl Tools {
    /// The tools offered right now.
    pub fn current(&self) -> Vec<ToolSpec> {
        match self {
            Tools::Static(tools) => tools.clone(),
            Tools::Live(live) => live.borrow().to_vec(),
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Tools::Live(_))
    }
}

/// One configured backend instance (a Linear workspace, a Drive tenant, an upstream MCP server).
#[async_trait::async_trait]
pub trait Adapter: Send + Sync {
    /// The tools this instance offers, with adapter-local names.
    fn tools(&self) -> Tools;

    /// Runs one tool. `arguments` were already validated against the tool's input schema by the
    /// gateway. Dropping the returned future abandons the call.
    async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError>;

    /// Runs one tool for the gateway, which serves the answer whole: an upstream MCP server's
    /// result passes through with every part it has. A native adapter's is its rendered
    /// [`Adapter::call`] output.
    async fn answer(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<ToolAnswer, ToolError> {
        self.call(tool, arguments, ctx).await.map(ToolAnswer::from)
    }

    /// Starts the instance's background work (connecting to an upstream server and keeping the
    /// connection), once, when the gateway starts serving; never from `manifold check`. Ends
    /// when `shutdown` is cancelled.
    fn start(&self, _shutdown: CancellationToken) {}

    /// The call needs the user's (or the instance's) credential from the gateway's broker.
    /// `false` for an adapter whose connection carries the instance's own credential (an
    /// upstream MCP server with its headers), so a missing one is not an error.
    fn needs_credential(&self) -> bool {
        true
    }

    /// Lists the instance's tools, resources and prompts with a user's credential (`ctx`), for
    /// an instance whose upstream authenticates each user and so has no connection of its own
    /// to list them with. The gateway calls it at start and after a user connects.
    async fn list_as(&self, _ctx: &CallContext) -> Result<(), ToolError> {
        Ok(())
    }

    /// How the instance is doing, for `/healthz` and `/metrics`: `None` when it has no
    /// connection of its own to report on (native adapters call their provider per request).
    fn health(&self) -> Option<Health> {
        None
    }

    /// Resolves, before the policy decision, the stored state that the tools whose spec says
    /// `resolves_facts` depend on; `None` when no tool of this instance needs it. The catalog
    /// refuses a tool that needs facts from an adapter without this capability.
    fn facts(&self) -> Option<&dyn ResolveFacts> {
        None
    }

    /// The instance's upstream may ask the calling client questions during a call (an upstream
    /// MCP server's sampling, elicitation, roots), so a transport path that cannot relay them
    /// must leave such calls of a client that can answer to a path that can.
    fn asks_client(&self) -> bool {
        false
    }

    /// Resources and resource templates (an upstream MCP server's); `None` when the instance
    /// offers none, so the gateway neither lists nor routes any to it.
    fn resources(&self) -> Option<&dyn crate::Resources> {
        None
    }

    /// Prompts (an upstream MCP server's); `None` when the instance offers none.
    fn prompts(&self) -> Option<&dyn crate::Prompts> {
        None
    }

    /// Calls held open between a client's rounds (an upstream of the 2025 eras asking a
    /// 2026-07-28 client mid-call), which a retry reaching another replica resumes through the
    /// gateway's relay; `None` when the instance holds none.
    fn held(&self) -> Option<&dyn HeldCalls> {
        None
    }
}

/// Calls an instance holds open between its client's rounds. A retry names the instance that
/// holds its call ([`HeldCalls::holder`]); when that instance is on another replica, the
/// gateway relays the retry there ([`crate::RelayRetry`]) and hands it to this capability.
#[async_trait::async_trait]
pub trait HeldCalls: Send + Sync {
    /// The name this instance's held calls carry: random per instance and process, so a
    /// retry's replica can tell whether it holds the call.
    fn holder(&self) -> &str;

    /// Whether any call is held here now; while one is, the gateway takes the retries other
    /// replicas relay to [`HeldCalls::holder`].
    fn holding(&self) -> bool;

    /// Resumes a held call with a retry relayed from another replica, and returns what goes
    /// back there. Both are the instance's own encoding: the gateway only carries them.
    async fn resume_relayed(&self, retry: Value) -> Value;
}

/// The state of an instance that keeps a connection (an upstream MCP server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Connected and serving.
    Up,
    /// Not connected: calls get a tool error saying so, and its tools are missing until it
    /// comes up. `reason` is safe to show (no credentials).
    Degraded { reason: String },
}

/// A kind of backend (`linear`, `drive`, …): the registry holds one of each.
pub trait AdapterKind: Send + Sync {
    /// The name used as `kind = "…"` in the config.
    fn id(&self) -> &'static str;
    /// One line for `manifold --help` and the config schema.
    fn summary(&self) -> &'static str;
    /// The provider's public API root, used when the config gives no `base_url`.
    fn default_base_url(&self) -> &'static str;
    /// Builds an instance. Does no network I/O, so `manifold check` can call it.
    fn build(&self, settings: InstanceSettings) -> Result<Arc<dyn Adapter>, BuildError>;

    /// How users connect this kind's provider, for the token broker; `None` when the provider
    /// takes no per-user OAuth (a static API key or no credential at all).
    fn oauth(&self) -> Option<OAuthSpec> {
        None
    }

    /// Where the kind's emulator is served: `/<mount>` on the sandbox server. Kinds that share
    /// one provider (Outlook, Teams and SharePoint on Microsoft Graph) return the same mount, and
    /// only one of them returns a router from [`AdapterKind::sandbox`].
    fn sandbox_mount(&self) -> &'static str {
        self.id()
    }

    /// The kind's local emulator of the provider API, served under `/<sandbox_mount>`.
    #[cfg(feature = "sandbox")]
    fn sandbox(&self) -> Option<axum::Router> {
        None
    }
}

/// A provider's OAuth 2.0 authorization-code endpoints and habits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSpec {
    /// The connection a user makes once (`microsoft` for Outlook, Teams and SharePoint alike).
    pub connection: &'static str,
    /// Shown on the connections page.
    pub display_name: &'static str,
    pub authorize_url: &'static str,
    pub token_url: &'static str,
    pub revoke_url: Option<&'static str>,
    /// Scopes asked for on every connect besides the tools' own (`offline_access`, …).
    pub base_scopes: &'static [&'static str],
    /// Extra authorize parameters (`access_type=offline`, `token_access_type=offline`, …).
    pub extra_authorize_params: &'static [(&'static str, &'static str)],
    /// Every refresh returns a new refresh token and invalidates the old one (Box, Microsoft):
    /// the broker must store the new one before anyone else refreshes.
    pub rotating_refresh_tokens: bool,
    /// Separator of the `scope` parameter (space for most, comma for some).
    pub scope_separator: &'static str,
    /// The emulator's authorize and token paths under its sandbox mount, so the demo runs the
    /// same flow offline.
    pub sandbox_authorize_path: &'static str,
    pub sandbox_token_path: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(credential: Option<&str>) -> CallContext {
        CallContext {
            credential: credential.map(Secret::new),
            ..CallContext::default()
        }
    }

    #[test]
    fn bearer_is_the_trimmed_token_or_a_connect_error() {
        assert_eq!(with(Some("  tok-1\n")).bearer("Box").ok(), Some("tok-1"));
        for missing in [None, Some(""), Some(" \t ")] {
            match with(missing).bearer("Google Drive") {
                Err(ToolError::Unauthorized(message)) => {
                    assert!(message.contains("connect Google Drive"), "{message}");
                }
                other => panic!("{missing:?}: {other:?}"),
            }
        }
    }
}
