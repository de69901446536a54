//! The MCP server handler: `tools/list` (filtered by policy, paged) and `tools/call` (route →
//! validate arguments → policy → credential → adapter), written by hand because the tool set comes
//! from config.

use std::{sync::Arc, time::Instant};

use manifold_adapters::{CallContext, ToolError};
use manifold_policy::{Action, Decision, PolicyEngine, Principal, ToolRef};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock as Content,
        Implementation, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
        ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::{
    broker::{BrokerError, CredentialBroker},
    router::{Catalog, Route},
};

mod cursor;
mod logging;

use logging::ClientLog;

/// Settings the handler needs from `[server]`.
#[derive(Debug, Clone)]
pub struct HandlerSettings {
    pub tools_page_size: usize,
    pub call_timeout: std::time::Duration,
}

/// State shared by every session of one gateway process.
pub struct Gateway {
    catalog: watch::Receiver<Arc<Catalog>>,
    policy: Arc<dyn PolicyEngine>,
    broker: Arc<dyn CredentialBroker>,
    settings: HandlerSettings,
}

/// The handler one MCP session (or one stateless request) talks to.
#[derive(Clone)]
pub struct McpHandler {
    gateway: Arc<Gateway>,
    log: ClientLog,
}

// === impl Gateway ===

impl Gateway {
    pub fn new(
        catalog: watch::Receiver<Arc<Catalog>>,
        policy: Arc<dyn PolicyEngine>,
        broker: Arc<dyn CredentialBroker>,
        settings: HandlerSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            policy,
            broker,
            settings,
        })
    }

    /// A fresh handler for a new session.
    pub fn handler(self: &Arc<Self>) -> McpHandler {
        McpHandler {
            gateway: self.clone(),
            log: ClientLog::default(),
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }
}

fn tool_ref(route: &Route) -> ToolRef<'_> {
    ToolRef {
        name: &route.exposed,
        instance: &route.instance,
        kind: &route.kind,
        read_only: route.spec.annotations.read_only,
        destructive: route.spec.annotations.destructive,
    }
}

/// The caller, as the authentication stage left it in the request's extensions.
fn principal(context: &RequestContext<RoleServer>) -> Principal {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>())
        .cloned()
        .unwrap_or_default()
}

/// A tool call that failed before (broker) or in (adapter) the provider call.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Tool(#[from] ToolError),
}

/// The client declared `capabilities.elicitation.url`.
fn supports_url_elicitation(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .and_then(|capabilities| capabilities.elicitation)
        .is_some_and(|elicitation| elicitation.url.is_some())
}

/// JSON-RPC error -32042 (`URLElicitationRequiredError`, MCP 2025-11-25): the client shows the
/// user `url`, and the user retries the call after connecting there.
fn url_elicitation(connection: &str, url: &str, error: &BrokerError) -> McpError {
    McpError::new(
        rmcp::model::ErrorCode(-32042),
        "This request requires connecting a provider account.",
        Some(json!({
            "elicitations": [{
                "mode": "url",
                "elicitationId": format!("connect-{connection}-{}", uuid::Uuid::new_v4()),
                "url": url,
                "message": error.to_string(),
            }]
        })),
    )
}

fn traceparent(context: &RequestContext<RoleServer>) -> Option<String> {
    let from_meta = context
        .meta
        .get("traceparent")
        .and_then(Value::as_str)
        .map(str::to_owned);
    from_meta.or_else(|| {
        context
            .extensions
            .get::<http::request::Parts>()?
            .headers
            .get("traceparent")?
            .to_str()
            .ok()
            .map(str::to_owned)
    })
}

// === impl McpHandler ===

impl McpHandler {
    /// Forwards adapter progress to the client in order, when it asked for progress.
    fn progress_sink(
        context: &RequestContext<RoleServer>,
    ) -> Option<(manifold_adapters::ProgressSink, tokio::task::JoinHandle<()>)> {
        let token = context.meta.get_progress_token()?;
        let (sender, mut receiver) =
            mpsc::unbounded_channel::<(f64, Option<f64>, Option<String>)>();
        let peer = context.peer.clone();
        let forward = tokio::spawn(async move {
            while let Some((progress, total, message)) = receiver.recv().await {
                let mut param = ProgressNotificationParam::new(token.clone(), progress);
                param.total = total;
                param.message = message;
                if peer.notify_progress(param).await.is_err() {
                    break;
                }
            }
        });
        let sink: manifold_adapters::ProgressSink = Arc::new(move |progress, total, message| {
            let _ = sender.send((progress, total, message));
        });
        Some((sink, forward))
    }

    /// Runs the tool with the caller's credential; when the provider rejects it (401), renews
    /// it once and retries once.
    async fn run_tool(
        &self,
        route: &Arc<Route>,
        arguments: serde_json::Map<String, Value>,
        context: &RequestContext<RoleServer>,
        principal: &Principal,
    ) -> Result<CallToolResult, CallError> {
        let broker = &self.gateway.broker;
        let credential = broker
            .credential(principal, &route.instance, &route.spec.scopes)
            .await?;
        let first = self
            .call_once(route, arguments.clone(), context, credential.clone())
            .await;
        match (first, credential) {
            (Err(ToolError::Unauthorized(reason)), Some(rejected)) => {
                match broker.renew(principal, &route.instance, &rejected).await? {
                    Some(renewed) => Ok(self
                        .call_once(route, arguments, context, Some(renewed))
                        .await?),
                    None => Err(ToolError::Unauthorized(reason).into()),
                }
            }
            (outcome, _) => Ok(outcome?),
        }
    }

    async fn call_once(
        &self,
        route: &Arc<Route>,
        arguments: serde_json::Map<String, Value>,
        context: &RequestContext<RoleServer>,
        credential: Option<manifold_adapters::Secret>,
    ) -> Result<CallToolResult, ToolError> {
        let gateway = &self.gateway;
        let progress = Self::progress_sink(context);
        let ctx = CallContext {
            credential,
            cancel: context.ct.child_token(),
            progress: progress.as_ref().map(|(sink, _)| sink.clone()),
            traceparent: traceparent(context),
        };
        // Tells the client the call started; adapters report their own steps from there on.
        ctx.report_progress(0.0, None, Some(format!("calling {}", route.exposed)));
        let call = route.adapter.call(&route.spec.name, arguments, &ctx);
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(gateway.settings.call_timeout, call) => {
                outcome.unwrap_or(Err(ToolError::Timeout))
            }
            () = ctx.cancel.cancelled() => Err(ToolError::Cancelled),
        };
        drop(ctx);
        if let Some((sink, forward)) = progress {
            drop(sink);
            // Progress must reach the client before the result does.
            let _ = forward.await;
        }
        let output = outcome?;
        let mut result = CallToolResult::success(vec![Content::text(output.text)]);
        result.structured_content = Some(output.structured);
        Ok(result)
    }
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        let capabilities = logging::with_logging(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        );
        let mut info = ServerConfig::new(capabilities);
        let mut implementation = Implementation::new("manifold", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("Manifold MCP gateway".into());
        info.server_info = implementation;
        info.instructions = Some(
            "Manifold connects your company's tools (Linear and more) behind one endpoint. \
             Tool names are `<service>_<action>`, e.g. `linear_search_issues`. List and search \
             tools are read-only and page with an opaque `cursor`; pass the `next_cursor` you got \
             back to continue."
                .into(),
        );
        info
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.gateway
            .catalog()
            .get(name)
            .map(|route| route.tool.clone())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = principal(&context);
        let catalog = self.gateway.catalog();
        let offset = match request.and_then(|r| r.cursor) {
            Some(cursor) => cursor::decode(&cursor).ok_or_else(|| {
                McpError::invalid_params("invalid cursor: pass a next_cursor from tools/list", None)
            })?,
            None => 0,
        };
        let page_size = self.gateway.settings.tools_page_size;
        // Filtering happens inside the listing so pages hold only callable tools and cursors stay
        // valid for this principal.
        let visible = catalog.routes().iter().filter(|route| {
            self.gateway
                .policy
                .decide(&principal, Action::List, &tool_ref(route), None)
                .is_allowed()
        });
        let mut tools: Vec<Tool> = visible
            .skip(offset)
            .take(page_size + 1)
            .map(|route| route.tool.clone())
            .collect();
        let mut result = ListToolsResult::default();
        if tools.len() > page_size {
            tools.truncate(page_size);
            result.next_cursor = Some(cursor::encode(offset + page_size));
        }
        result.tools = tools;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let started = Instant::now();
        let catalog = self.gateway.catalog();
        let Some(route) = catalog.get(&request.name) else {
            return Err(McpError::invalid_params(
                format!("Unknown tool: {}", request.name),
                Some(json!({ "tool": request.name })),
            ));
        };
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        if let Err(errors) = route.check_arguments(&arguments) {
            return Err(McpError::invalid_params(
                format!(
                    "invalid arguments for {}: {}",
                    route.exposed,
                    errors.join("; ")
                ),
                Some(json!({ "tool": route.exposed, "errors": errors })),
            ));
        }
        let principal = principal(&context);
        let decision = self.gateway.policy.decide(
            &principal,
            Action::Call,
            &tool_ref(route),
            Some(&arguments),
        );
        if let Decision::Deny { reason, .. } = decision {
            return Ok(CallToolResult::error(vec![Content::text(format!(
                "denied by policy: {reason}"
            ))])
            .into());
        }
        let Value::Object(arguments) = arguments else {
            return Err(McpError::internal_error("arguments changed shape", None));
        };
        let outcome = self.run_tool(route, arguments, &context, &principal).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = match outcome {
            Ok(result) => Ok(result),
            Err(CallError::Tool(error)) => Err(error),
            Err(CallError::Broker(error)) => {
                tracing::info!(tool = %route.exposed, %error, "no provider credential");
                if let Some((connection, url)) = error.user_action()
                    && supports_url_elicitation(&context)
                {
                    return Err(url_elicitation(connection, url, &error));
                }
                return Ok(CallToolResult::error(vec![Content::text(error.to_string())]).into());
            }
        };
        match outcome {
            Ok(result) => {
                tracing::debug!(tool = %route.exposed, elapsed_ms, "tool call succeeded");
                Ok(result.into())
            }
            Err(ToolError::Cancelled) => {
                tracing::info!(tool = %route.exposed, elapsed_ms, "tool call cancelled by the client");
                Err(McpError::internal_error("request cancelled", None))
            }
            Err(error) => {
                tracing::info!(tool = %route.exposed, elapsed_ms, %error, "tool call failed");
                self.log
                    .warning(
                        &context,
                        json!({ "tool": route.exposed, "error": error.to_string() }),
                    )
                    .await;
                Ok(CallToolResult::error(vec![Content::text(error.to_string())]).into())
            }
        }
    }

    #[allow(deprecated)] // logging/setLevel: still part of every protocol version we serve
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.log.set_level(request.level);
        Ok(())
    }
}
