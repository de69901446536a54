//! An upstream MCP server (rmcp, Streamable HTTP) whose tools ask the calling client questions:
//! elicitation, sampling and roots, one or several at once, over one or two rounds. A client of
//! protocol 2026-07-28 is asked by `input_required` rounds; a session of the 2025 eras on its
//! stream. `legacy` makes the server speak only the 2025 eras, so the gateway connects with a
//! session and is asked during its calls. `log_leaky` logs during its call instead (debug, info,
//! and a warning carrying a secret), at the level the gateway asked for: per request at
//! 2026-07-28, with `logging/setLevel` on a 2025-era session.
// Sampling, roots and logging are deprecated by SEP-2577, and still what these tests relay.
#![allow(dead_code, clippy::unwrap_used, deprecated)]

use std::{
    borrow::Cow,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
        CreateMessageRequestParams, InputRequest, InputRequests, InputRequiredResult,
        ListToolsResult, PaginatedRequestParams, ProtocolVersion, SamplingMessage,
        ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// What the server saw and how it behaves.
#[derive(Default)]
pub struct Asking {
    /// Speak only the 2025 eras (the gateway then keeps a session and is asked mid-call).
    pub legacy: AtomicBool,
    /// The client capabilities each call declared, as the server read them.
    pub declared: Mutex<Vec<Value>>,
    /// The `requestState` each retry brought back.
    pub states: Mutex<Vec<Option<String>>>,
    /// A session of the gateway, kept to ask it something outside any call.
    pub last_peer: Mutex<Option<Peer<RoleServer>>>,
    /// The log levels the gateway asked for: `setLevel:<level>` on a session, and
    /// `call:<level or none>` per `log_leaky` call at 2026-07-28.
    pub log_levels: Mutex<Vec<String>>,
}

fn elicit_name() -> Value {
    json!({"method": "elicitation/create", "params": {
        "mode": "form", "message": "What is your name?",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}})
}

/// An elicitation whose message carries a secret, as a careless upstream might send.
fn leaky() -> Value {
    json!({"method": "elicitation/create", "params": {
        "mode": "form", "message": "Confirm with key AKIAIOSFODNN7EXAMPLE?",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}})
}

fn sample() -> Value {
    json!({"method": "sampling/createMessage", "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": "Capital of France?"}}],
        "maxTokens": 20}})
}

fn roots() -> Value {
    json!({"method": "roots/list"})
}

/// The questions each tool asks, by key; `ask_twice` asks `name` in round one and `model` in
/// round two.
fn questions(tool: &str, round: usize) -> Vec<(&'static str, Value)> {
    match (tool, round) {
        ("ask_name", 1) => vec![("name", elicit_name())],
        ("ask_model", 1) => vec![("model", sample())],
        ("ask_roots", 1) => vec![("roots", roots())],
        ("ask_all", 1) => vec![
            ("name", elicit_name()),
            ("model", sample()),
            ("roots", roots()),
        ],
        ("ask_twice", 1) => vec![("name", elicit_name())],
        ("ask_twice", 2) => vec![("model", sample())],
        ("ask_leaky", 1) => vec![("name", leaky())],
        _ => vec![],
    }
}

/// The text of an answer to a question, as the tool reports it.
fn answer_text(key: &str, answer: &Value) -> String {
    match key {
        "name" => answer["content"]["name"].as_str().unwrap_or("?").to_owned(),
        "model" => answer["content"]["text"].as_str().unwrap_or("?").to_owned(),
        "roots" => answer["roots"][0]["uri"].as_str().unwrap_or("?").to_owned(),
        _ => "?".to_owned(),
    }
}

// === impl Asking ===

impl Asking {
    fn tools() -> Vec<Tool> {
        [
            "ask_name",
            "ask_model",
            "ask_roots",
            "ask_all",
            "ask_twice",
            "ask_leaky",
            "log_leaky",
        ]
        .into_iter()
        .map(|name| {
            Tool::new(
                name,
                "Asks the client",
                Arc::new(json!({"type": "object"}).as_object().unwrap().clone()),
            )
        })
        .collect()
    }

    /// Serves on a free loopback port; returns the `/mcp` URL.
    pub async fn serve(self: &Arc<Self>, stop: CancellationToken) -> String {
        let upstream = self.clone();
        let service = StreamableHttpService::new(
            move || Ok(Handler(upstream.clone())),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
        );
        let router = axum::Router::new().nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .unwrap();
        });
        format!("http://{addr}/mcp")
    }

    /// Asks the last session a sampling question now, outside any call.
    pub async fn ask_outside_a_call(&self) -> Result<(), String> {
        let peer = self.last_peer.lock().unwrap().clone().unwrap();
        let params: CreateMessageRequestParams =
            serde_json::from_value(sample()["params"].clone()).unwrap();
        peer.create_message(params)
            .await
            .map(drop)
            .map_err(|error| error.to_string())
    }
}

#[derive(Clone)]
struct Handler(Arc<Asking>);

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        )
    }

    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let level = serde_json::to_value(request.level).unwrap();
        self.0
            .log_levels
            .lock()
            .unwrap()
            .push(format!("setLevel:{}", level.as_str().unwrap_or_default()));
        Ok(())
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        if self.0.legacy.load(Ordering::SeqCst) {
            Cow::Owned(vec![
                ProtocolVersion::V_2025_11_25,
                ProtocolVersion::V_2025_06_18,
                ProtocolVersion::V_2025_03_26,
            ])
        } else {
            Cow::Owned(ProtocolVersion::KNOWN_VERSIONS.to_vec())
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(Asking::tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let declared = context
            .client_capabilities()
            .map(|capabilities| serde_json::to_value(capabilities).unwrap())
            .unwrap_or(Value::Null);
        self.0.declared.lock().unwrap().push(declared);
        *self.0.last_peer.lock().unwrap() = Some(context.peer.clone());
        let tool = request.name.to_string();
        if tool == "log_leaky" {
            return Ok(log_leaky(&self.0, &context).await);
        }
        if context.protocol_version() == Some(ProtocolVersion::V_2026_07_28) {
            return Ok(rounds(&self.0, &tool, &request));
        }
        // A session: asked on the stream, round after round.
        let mut said = Vec::new();
        for round in 1..=2 {
            for (key, question) in questions(&tool, round) {
                let answer = ask(&context.peer, &question).await.map_err(|error| {
                    McpError::internal_error(format!("asking the client failed: {error}"), None)
                });
                match answer {
                    Ok(answer) => said.push(format!("{key}={}", answer_text(key, &answer))),
                    Err(error) => {
                        return Ok(CallToolResult::error(vec![ContentBlock::text(
                            error.message.to_string(),
                        )])
                        .into());
                    }
                }
            }
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(said.join(" "))]).into())
    }
}

/// One round of a 2026-07-28 call: the questions of the round the state names, or the result
/// once every round is answered. The state is the round answered so far and what was said, in
/// the clear: the gateway must hand it back unchanged.
fn rounds(asking: &Asking, tool: &str, request: &CallToolRequestParams) -> CallToolResponse {
    asking
        .states
        .lock()
        .unwrap()
        .push(request.request_state.clone());
    let (mut round, mut said) = match request.request_state.as_deref() {
        Some(state) => {
            let (round, said) = state.split_once('|').unwrap_or(("1", ""));
            (round.parse::<usize>().unwrap_or(1), said.to_owned())
        }
        None => (1, String::new()),
    };
    let answers: Map<String, Value> = request
        .input_responses
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    loop {
        let asked = questions(tool, round);
        if asked.is_empty() {
            return CallToolResult::success(vec![ContentBlock::text(said.trim().to_owned())])
                .into();
        }
        if asked.iter().all(|(key, _)| answers.contains_key(*key))
            && request.input_responses.is_some()
        {
            for (key, _) in &asked {
                said.push_str(&format!(" {key}={}", answer_text(key, &answers[*key])));
            }
            round += 1;
            // The answers of this request are spent; the next round needs new ones.
            if !questions(tool, round).is_empty() {
                let next: InputRequests = questions(tool, round)
                    .into_iter()
                    .map(|(key, question)| (key.to_owned(), input_request(question)))
                    .collect();
                return InputRequiredResult::new(Some(next), Some(format!("{round}|{said}")))
                    .into();
            }
            continue;
        }
        let requests: InputRequests = asked
            .into_iter()
            .map(|(key, question)| (key.to_owned(), input_request(question)))
            .collect();
        return InputRequiredResult::new(Some(requests), Some(format!("{round}|{said}"))).into();
    }
}

/// Logs at debug, info and warning (the warning with a secret in it, as a careless upstream
/// might), then answers. At 2026-07-28 only what the request's `_meta` level admits, and nothing
/// without one; on a session all of it, as a server that ignores levels would.
async fn log_leaky(asking: &Asking, context: &RequestContext<RoleServer>) -> CallToolResponse {
    use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
    let modern = context.protocol_version() == Some(ProtocolVersion::V_2026_07_28);
    let requested = context.meta.log_level();
    if modern {
        let named = requested.map_or(Value::Null, |level| serde_json::to_value(level).unwrap());
        asking
            .log_levels
            .lock()
            .unwrap()
            .push(format!("call:{}", named.as_str().unwrap_or("none")));
    }
    let rank = |level: LoggingLevel| serde_json::to_value(level).unwrap();
    let order = ["debug", "info", "notice", "warning"];
    let admitted = |level: LoggingLevel| {
        if !modern {
            return true;
        }
        let Some(requested) = requested else {
            return false;
        };
        let at = |value: Value| order.iter().position(|name| value == *name);
        at(rank(level)) >= at(rank(requested))
    };
    let lines = [
        (LoggingLevel::Debug, json!("debug line")),
        (LoggingLevel::Info, json!("info line")),
        (
            LoggingLevel::Warning,
            json!({"message": "slow query", "key": "AKIAIOSFODNN7EXAMPLE"}),
        ),
    ];
    for (level, data) in lines {
        if admitted(level) {
            let message = LoggingMessageNotificationParam::new(level, data).with_logger("db");
            let _ = context.peer.notify_logging_message(message).await;
        }
    }
    CallToolResult::success(vec![ContentBlock::text("logged")]).into()
}

fn input_request(question: Value) -> InputRequest {
    serde_json::from_value(question).unwrap()
}

/// Asks a session's client `question` and returns its answer as JSON.
async fn ask(peer: &Peer<RoleServer>, question: &Value) -> Result<Value, String> {
    let request: rmcp::model::ServerRequest = serde_json::from_value(question.clone()).unwrap();
    let answer = peer
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(answer).unwrap())
}

/// A sampling answer as a client gives it.
pub fn sampled(text: &str) -> Value {
    serde_json::to_value(rmcp::model::CreateMessageResult::new(
        SamplingMessage::assistant_text(text),
        "test-model".into(),
    ))
    .unwrap()
}

// === a 2026-07-28 client's rounds, as raw HTTP ===

/// Longest one round may take through the gateway.
const ROUND_PROMPTLY: std::time::Duration = std::time::Duration::from_secs(10);

/// A 2026-07-28 `tools/call` of `tool` declaring `capabilities`, with the retry's fields.
pub fn round(
    tool: &str,
    capabilities: Value,
    retry: Option<(Value, &str)>,
) -> (String, [(&'static str, String); 3]) {
    let mut params = json!({
        "name": tool,
        "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": capabilities,
            "io.modelcontextprotocol/clientInfo": {"name": "rounds", "version": "1"}
        }
    });
    if let Some((responses, state)) = retry {
        params["inputResponses"] = responses;
        params["requestState"] = json!(state);
    }
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    (
        body.to_string(),
        [
            ("mcp-protocol-version", "2026-07-28".to_owned()),
            ("mcp-method", "tools/call".to_owned()),
            ("mcp-name", tool.to_owned()),
        ],
    )
}

/// Sends one round and returns its HTTP status and the answer to it.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    (body, headers): (String, [(&'static str, String); 3]),
) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, messages, text) =
        tokio::time::timeout(ROUND_PROMPTLY, super::post(client, url, &headers, &body))
            .await
            .expect("answered promptly");
    // The answer to the round (id 7), past any log notification before it.
    let message = messages
        .into_iter()
        .find(|message| message["id"] == 7)
        .unwrap_or_else(|| panic!("{status}: {text}"));
    (status.as_u16(), message)
}
