//! `tools/call` sent straight to an upstream that speaks Streamable HTTP at protocol 2026-07-28,
//! where every request is one stateless POST. rmcp's client would pass each call through its
//! service loop, a transport worker and a task per POST, decode the answer by trying every
//! variant of its untagged message enum, and the adapter would then serialize the result once
//! more to measure it: about 100 µs of CPU per call on the bench machine. Here the calling task
//! makes the POST itself with the connection's own reqwest client (same pool, same settings),
//! and the answer — one JSON body or an SSE stream — is decoded straight into the typed result
//! and measured as it arrives. rmcp keeps everything else: discovery, lists, subscriptions,
//! sessions, stdio and legacy SSE, and calls that need `Mcp-Param-*` headers.

use std::{
    borrow::Cow,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use bytes::BytesMut;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
#[allow(deprecated)] // MCP logging (SEP-2577): still sent by servers of every era
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::{
    RoleClient,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientRequest, ErrorData,
        InputRequiredResult, ProgressNotificationParam, ProgressToken, ProtocolVersion, RequestId,
        ServerResult,
    },
    service::Peer,
};
use serde::{Deserialize, Serialize, ser::SerializeMap};
use serde_json::{Map, Value, value::RawValue};
use url::Url;

use super::{connection::Shared, mcp_error, sse};
use crate::{CallContext, LogSink, ProgressSink, ToolError, ToolSpec};

/// Where this gateway's direct request ids begin: far above the ids rmcp's peer numbers its own
/// requests with on the same connection, so a `notifications/cancelled` for one of these can
/// never name one of rmcp's (lists, subscriptions) at the upstream.
const FIRST_ID: i64 = 1 << 40;
/// Why a call was abandoned, as the upstream hears it.
const CANCEL_REASON: &str = "the gateway's client cancelled the call";
/// The request `_meta` keys a call sets itself (rmcp's names for them).
const PROGRESS_TOKEN: &str = "progressToken";
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// One upstream's direct route: what every call's POST carries besides its own body.
pub struct Direct {
    instance: String,
    client: reqwest::Client,
    url: Url,
    /// `accept`, `mcp-protocol-version` and the instance credentials, as rmcp sends them.
    headers: HeaderMap,
    /// [`Self::headers`] with what every `tools/call` POST adds but its `mcp-name`.
    call_headers: HeaderMap,
    /// The era's required request `_meta` but the capabilities (each call sets its own): the
    /// protocol version and client info rmcp's peer adds to each request after
    /// `server/discover`, serialized once rather than cloned into every call's `_meta`.
    meta: Vec<(String, Box<RawValue>)>,
    max_response_bytes: usize,
    /// Request ids, also used as each call's own progress token.
    next_id: AtomicI64,
    /// Calls of these tools go through rmcp, which writes their `Mcp-Param-*` headers.
    param_header_tools: std::sync::Mutex<ParamHeaderTools>,
}

/// The tool list last seen, and the names in it whose input schema asks for `Mcp-Param-*`
/// headers (`x-mcp-header`).
#[derive(Default)]
struct ParamHeaderTools {
    list: Option<Arc<[ToolSpec]>>,
    names: Vec<String>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// A JSON-RPC request or notification as sent.
#[derive(Serialize)]
struct Outgoing<P> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    method: &'static str,
    params: P,
}

/// The parameters of `notifications/cancelled`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cancelled {
    request_id: i64,
    reason: &'static str,
}

/// A `tools/call`'s parameters as sent: the fields of rmcp's `CallToolRequestParams`, its
/// `_meta` written straight from its parts instead of being built as a map first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallParams<'a> {
    #[serde(rename = "_meta")]
    meta: CallMeta<'a>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_responses: Option<&'a rmcp::model::InputResponses>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_state: Option<&'a str>,
}

/// A call's request `_meta`: the adapter's own entries (the trace context), then the era's,
/// then the call's capabilities, progress token and log level; a later one of the same key
/// wins, as inserting them into one map in that order would have it.
struct CallMeta<'a> {
    own: Option<&'a Map<String, Value>>,
    era: &'a [(String, Box<RawValue>)],
    capabilities: ClientCapabilities,
    progress_token: i64,
    #[allow(deprecated)] // MCP logging (SEP-2577)
    log_level: Option<LoggingLevel>,
}

// === impl CallParams ===

impl<'a> CallParams<'a> {
    fn new(params: &'a CallToolRequestParams, meta: CallMeta<'a>) -> Self {
        Self {
            meta,
            name: &params.name,
            arguments: params.arguments.as_ref(),
            input_responses: params.input_responses.as_ref(),
            request_state: params.request_state.as_deref(),
        }
    }
}

// === impl CallMeta ===

impl CallMeta<'_> {
    /// Whether an entry under `key` is written later, by the era or the call.
    fn set_later(&self, key: &str) -> bool {
        matches!(key, PROGRESS_TOKEN | CLIENT_CAPABILITIES)
            || (key == LOG_LEVEL && self.log_level.is_some())
            || self.era.iter().any(|(era, _)| era == key)
    }
}

impl Serialize for CallMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.own.into_iter().flatten() {
            if !self.set_later(key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in self
            .era
            .iter()
            .filter(|(key, _)| key != CLIENT_CAPABILITIES)
        {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry(CLIENT_CAPABILITIES, &self.capabilities)?;
        map.serialize_entry(PROGRESS_TOKEN, &self.progress_token)?;
        if let Some(level) = &self.log_level {
            map.serialize_entry(LOG_LEVEL, level)?;
        }
        map.end()
    }
}

/// A JSON-RPC message from the upstream, its parts left undecoded until it is known to be the
/// answer (or a progress notification) of this call.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorData>,
}

/// One call in flight: its id, and where its progress and logs go.
struct Call<'a> {
    direct: &'a Direct,
    id: i64,
    /// The id as it appears in the upstream's JSON (`12345`).
    id_text: String,
    progress: Option<&'a ProgressSink>,
    log: Option<&'a LogSink>,
}

/// Tells the upstream a request was abandoned when the call's future is dropped (or cancelled)
/// before its answer came: a stateless `notifications/cancelled` POST of its own.
struct CancelOnDrop<'a> {
    direct: &'a Arc<Direct>,
    id: Option<i64>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let direct = self.direct.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { direct.cancel(id).await });
        }
    }
}

// === impl Direct ===

impl Direct {
    /// The direct route for a connection just made, when the upstream speaks Streamable HTTP at
    /// 2026-07-28 (stateless: no session to keep); `None` for any other era.
    pub fn for_peer(
        shared: &Shared,
        peer: &Peer<RoleClient>,
        client: reqwest::Client,
        url: &Url,
    ) -> Result<Option<Arc<Self>>, String> {
        let Some(version) = peer
            .peer_info()
            .map(|info| info.protocol_version.clone())
            .filter(|version| *version == ProtocolVersion::V_2026_07_28)
        else {
            return Ok(None);
        };
        let mut headers = sse::credential_headers(&shared.headers)?;
        // The order and values rmcp's Streamable HTTP client sends.
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream, application/json"),
        );
        headers.insert(
            HeaderName::from_static("mcp-protocol-version"),
            HeaderValue::try_from(version.as_str())
                .map_err(|_| "the negotiated protocol version is not a header value")?,
        );
        let config = super::connection::client_config();
        let mut meta = rmcp::model::RequestMetaObject::default();
        meta.set_protocol_version(version);
        meta.set_client_info(config.client_info);
        let meta = meta
            .0
            .0
            .into_iter()
            .map(|(key, value)| Ok((key, serde_json::value::to_raw_value(&value)?)))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|error| format!("the request _meta cannot be written: {error}"))?;
        let mut call_headers = headers.clone();
        call_headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        call_headers.insert(
            HeaderName::from_static("mcp-method"),
            HeaderValue::from_static("tools/call"),
        );
        Ok(Some(Arc::new(Self {
            instance: shared.name.clone(),
            client,
            url: url.clone(),
            headers,
            call_headers,
            meta,
            max_response_bytes: shared.settings.max_response_bytes,
            next_id: AtomicI64::new(FIRST_ID),
            param_header_tools: Default::default(),
        })))
    }

    /// The direct route for `request` on `shared`'s connection, when it has one and the
    /// request is a `tools/call` it can carry.
    pub fn route(shared: &Shared, request: &ClientRequest) -> Option<Arc<Self>> {
        let ClientRequest::CallToolRequest(call) = request else {
            return None;
        };
        let direct = shared.direct.borrow().clone()?;
        let name = &call.params.name;
        // A name that needs Base64 in `Mcp-Name` never reaches here (`valid_name`), but rmcp
        // encodes it right if one does.
        if !super::valid_name(name) || direct.needs_param_headers(&shared.tools.borrow(), name) {
            return None;
        }
        Some(direct)
    }

    /// Whether `name`'s input schema asks for `Mcp-Param-*` headers, from a set kept per tool
    /// list so that a call does not walk its schema.
    fn needs_param_headers(&self, tools: &Arc<[ToolSpec]>, name: &str) -> bool {
        let mut cached = self
            .param_header_tools
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !cached
            .list
            .as_ref()
            .is_some_and(|seen| Arc::ptr_eq(seen, tools))
        {
            *cached = ParamHeaderTools {
                list: Some(tools.clone()),
                names: tools
                    .iter()
                    .filter(|spec| has_param_header(&spec.input_schema))
                    .map(|spec| spec.name.clone())
                    .collect(),
            };
        }
        cached.names.iter().any(|tool| tool == name)
    }

    /// Sends the `tools/call` and returns its answer: a tool result, or an
    /// `InputRequiredResult` for the caller to handle as it does rmcp's. Progress under this
    /// call's own token (never the client's) goes to `ctx.progress`; `ctx.cancel` or dropping
    /// the future abandons the request and tells the upstream.
    pub async fn call_tool(
        self: Arc<Self>,
        request: ClientRequest,
        ctx: &CallContext,
    ) -> Result<ServerResult, ToolError> {
        let ClientRequest::CallToolRequest(request) = request else {
            return Err(ToolError::BadResponse("not a tool call".into()));
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let params = request.params;
        let meta = CallMeta {
            own: params.meta.as_ref().map(|meta| &meta.0.0),
            era: &self.meta,
            // What the calling client can answer, as rmcp's path sends it (`client_meta`).
            capabilities: ctx.client.relayable(),
            progress_token: id,
            // A 2026-07-28 upstream logs only when a request names a level: the caller's, when
            // it hears logs (as `client_meta` on rmcp's path).
            log_level: ctx.log.as_ref().map(|log| log.level),
        };
        let params = CallParams::new(&params, meta);
        let mut cancel = CancelOnDrop {
            direct: &self,
            id: Some(id),
        };
        let call = Call {
            direct: &self,
            id,
            id_text: id.to_string(),
            progress: ctx.progress.as_ref(),
            log: ctx.log.as_ref(),
        };
        let answer = tokio::select! {
            answer = call.send(&params) => answer,
            () = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
        };
        cancel.id = None;
        answer
    }

    /// Tells the upstream that request `id` is abandoned; its answer, if any, is not read.
    async fn cancel(&self, id: i64) {
        let body = Outgoing {
            jsonrpc: "2.0",
            id: None,
            method: "notifications/cancelled",
            params: Cancelled {
                request_id: id,
                reason: CANCEL_REASON,
            },
        };
        let Ok(body) = serde_json::to_vec(&body) else {
            return;
        };
        let sent = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                HeaderName::from_static("mcp-method"),
                "notifications/cancelled",
            )
            .body(body)
            .send()
            .await;
        if let Err(error) = sent {
            tracing::debug!(instance = %self.instance, error = %error.without_url(), "cancellation not delivered upstream");
        }
    }

    fn too_large(&self) -> ToolError {
        ToolError::BadResponse(format!(
            "the answer is larger than the {} bytes allowed for `{}` (max_response_bytes)",
            self.max_response_bytes, self.instance
        ))
    }
}

// === impl Call ===

impl Call<'_> {
    async fn send(&self, params: &CallParams<'_>) -> Result<ServerResult, ToolError> {
        let direct = self.direct;
        let body = serde_json::to_vec(&Outgoing {
            jsonrpc: "2.0",
            id: Some(self.id),
            method: "tools/call",
            params,
        })
        .map_err(|error| ToolError::InvalidArguments(error.to_string()))?;
        let name = HeaderValue::try_from(params.name)
            .map_err(|_| ToolError::UnknownTool(params.name.to_owned()))?;
        let mut request = reqwest::Request::new(Method::POST, direct.url.clone());
        let headers = request.headers_mut();
        headers.clone_from(&direct.call_headers);
        headers.insert(HeaderName::from_static("mcp-name"), name);
        *request.body_mut() = Some(body.into());
        let response = direct
            .client
            .execute(request)
            .await
            .map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        match status {
            StatusCode::UNAUTHORIZED => {
                return Err(ToolError::Unauthorized(format!(
                    "the MCP server `{}` refused the instance's credentials (HTTP 401)",
                    direct.instance
                )));
            }
            StatusCode::FORBIDDEN => {
                return Err(ToolError::Forbidden(format!(
                    "the MCP server `{}` refused the call (HTTP 403)",
                    direct.instance
                )));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse().ok())
                    .map(std::time::Duration::from_secs);
                return Err(ToolError::RateLimited { retry_after });
            }
            _ => {}
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            // A JSON-RPC error may come with a 4xx (rmcp's server answers a bad request with
            // 400 and its error): read it as the answer it is.
            "application/json" => self.json(response, status).await,
            "text/event-stream" if status.is_success() => self.events(response).await,
            _ if !status.is_success() => Err(ToolError::Upstream {
                status: 502,
                message: format!(
                    "the MCP server `{}` answered HTTP {}",
                    direct.instance,
                    status.as_u16()
                ),
            }),
            _ => Err(ToolError::BadResponse(format!(
                "the MCP server `{}` answered with `{}`, neither JSON nor an event stream",
                direct.instance,
                content_type.chars().take(64).collect::<String>()
            ))),
        }
    }

    /// A JSON answer, read up to `max_response_bytes`.
    async fn json(
        &self,
        mut response: reqwest::Response,
        status: StatusCode,
    ) -> Result<ServerResult, ToolError> {
        let max = self.direct.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > max as u64)
        {
            return Err(self.direct.too_large());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.unreachable(&error))?
        {
            if body.len() + chunk.len() > max {
                return Err(self.direct.too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let message = match serde_json::from_slice::<Incoming<'_>>(&body) {
            Ok(message) => message,
            Err(_) if !status.is_success() => {
                return Err(ToolError::Upstream {
                    status: 502,
                    message: format!(
                        "the MCP server `{}` answered HTTP {}",
                        self.direct.instance,
                        status.as_u16()
                    ),
                });
            }
            Err(error) => return Err(self.unreadable(&error)),
        };
        match self.answer(message)? {
            Some(answer) => Ok(answer),
            None => Err(ToolError::BadResponse(format!(
                "the MCP server `{}` answered with a message that is not this call's answer",
                self.direct.instance
            ))),
        }
    }

    /// An SSE answer: progress and log notifications of this call go to its sinks until the
    /// answer's event, each event bounded by `max_response_bytes`.
    async fn events(&self, response: reqwest::Response) -> Result<ServerResult, ToolError> {
        let mut events = sse::events(response.bytes_stream(), self.direct.max_response_bytes);
        while let Some(event) = events.next().await {
            let event = event.map_err(|error| match error {
                sse_stream::Error::Body(cause) if sse::is_too_large(cause.as_ref()) => {
                    self.direct.too_large()
                }
                other => ToolError::Unreachable(format!(
                    "the answer stream of the MCP server `{}` broke: {other}",
                    self.direct.instance
                )),
            })?;
            // An event without a name is a `message` event (the SSE default).
            if !matches!(event.event.as_deref(), None | Some("message")) {
                continue;
            }
            let Some(data) = event.data else { continue };
            let message = serde_json::from_str::<Incoming<'_>>(&data)
                .map_err(|error| self.unreadable(&error))?;
            if let Some(answer) = self.answer(message)? {
                return Ok(answer);
            }
        }
        Err(ToolError::Unreachable(format!(
            "the MCP server `{}` ended its answer stream without answering",
            self.direct.instance
        )))
    }

    /// This call's answer if `message` is it; progress or a log passed on if it is that.
    /// Anything else the upstream says on the stream is not for this call and is skipped.
    fn answer(&self, message: Incoming<'_>) -> Result<Option<ServerResult>, ToolError> {
        if let Some(method) = &message.method {
            match (method.as_ref(), message.params) {
                ("notifications/progress", Some(params)) => self.progress(params),
                ("notifications/message", Some(params)) => self.log(params),
                _ => {}
            }
            return Ok(None);
        }
        if message.id.is_none_or(|id| id.get() != self.id_text) {
            return Ok(None);
        }
        if let Some(error) = message.error {
            return Err(mcp_error(error));
        }
        let Some(result) = message.result else {
            return Err(ToolError::BadResponse(format!(
                "the MCP server `{}` answered with neither a result nor an error",
                self.direct.instance
            )));
        };
        match serde_json::from_str::<CallToolResult>(result.get()) {
            Ok(result) => Ok(Some(ServerResult::CallToolResult(result))),
            Err(error) => match serde_json::from_str::<InputRequiredResult>(result.get()) {
                Ok(input) => Ok(Some(ServerResult::InputRequiredResult(input))),
                Err(_) => Err(self.unreadable(&error)),
            },
        }
    }

    /// Progress under this call's own token (never another's) to its sink.
    fn progress(&self, params: &RawValue) {
        if let Some(sink) = self.progress
            && let Ok(progress) = serde_json::from_str::<ProgressNotificationParam>(params.get())
            && progress.progress_token == ProgressToken(RequestId::Number(self.id))
        {
            sink(progress.progress, progress.total, progress.message);
        }
    }

    /// A log the upstream sent on this call's answer stream, which carries this call alone, to
    /// its sink; one that cannot be read is skipped, as a log is advisory.
    #[allow(deprecated)] // MCP logging (SEP-2577)
    fn log(&self, params: &RawValue) {
        if let Some(sink) = self.log
            && let Ok(message) =
                serde_json::from_str::<LoggingMessageNotificationParam>(params.get())
        {
            sink.send(message);
        }
    }

    /// The upstream's bytes are not what a tool call answers with. The error's place and
    /// category are told, never the text around it (it may be the user's data).
    fn unreadable(&self, error: &serde_json::Error) -> ToolError {
        ToolError::BadResponse(format!(
            "the MCP server `{}` answered with something that is not a tool result \
             ({:?} error at line {}, column {})",
            self.direct.instance,
            error.classify(),
            error.line(),
            error.column()
        ))
    }

    fn unreachable(&self, error: &reqwest::Error) -> ToolError {
        if error.is_timeout() {
            return ToolError::Timeout;
        }
        // The cause alone: the error's own text names the URL, whose query may hold a
        // credential.
        ToolError::Unreachable(format!(
            "the MCP server `{}` could not be reached: {}",
            self.direct.instance,
            std::error::Error::source(error)
                .map_or_else(|| "request failed".to_owned(), ToString::to_string)
        ))
    }
}

/// Whether an input schema carries an `x-mcp-header` annotation anywhere.
fn has_param_header(schema: &Map<String, Value>) -> bool {
    schema.iter().any(|(key, value)| {
        key == "x-mcp-header"
            || match value {
                Value::Object(inner) => has_param_header(inner),
                Value::Array(items) => items
                    .iter()
                    .any(|item| item.as_object().is_some_and(has_param_header)),
                _ => false,
            }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_schema_with_an_x_mcp_header_anywhere_is_found() {
        let plain = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let nested = json!({"type": "object", "properties": {"a": {"type": "object",
            "properties": {"b": {"type": "string", "x-mcp-header": "B"}}}}});
        let in_list = json!({"anyOf": [{"x-mcp-header": "C"}]});
        assert!(!has_param_header(plain.as_object().unwrap()));
        assert!(has_param_header(nested.as_object().unwrap()));
        assert!(has_param_header(in_list.as_object().unwrap()));
    }

    fn direct() -> Direct {
        Direct {
            instance: "up".into(),
            client: reqwest::Client::new(),
            url: "http://127.0.0.1:9/mcp".parse().unwrap(),
            headers: HeaderMap::new(),
            call_headers: HeaderMap::new(),
            meta: Vec::new(),
            max_response_bytes: 1024,
            next_id: AtomicI64::new(FIRST_ID),
            param_header_tools: Default::default(),
        }
    }

    fn answer_to(call_id: i64, message: &str) -> Result<Option<ServerResult>, ToolError> {
        let direct = direct();
        let call = Call {
            direct: &direct,
            id: call_id,
            id_text: call_id.to_string(),
            progress: None,
            log: None,
        };
        call.answer(serde_json::from_str(message).unwrap())
    }

    #[test]
    fn an_input_required_answer_is_handed_over_as_rmcp_would_hand_it() {
        let answer = answer_to(
            5,
            r#"{"jsonrpc":"2.0","id":5,"result":{"resultType":"input_required","requestState":"s"}}"#,
        );
        match answer {
            Ok(Some(ServerResult::InputRequiredResult(input))) => {
                assert_eq!(input.request_state.as_deref(), Some("s"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_the_calls_own_answer_is_taken() {
        let result = r#""result":{"content":[{"type":"text","text":"t"}]}"#;
        assert!(matches!(
            answer_to(5, &format!(r#"{{"jsonrpc":"2.0","id":6,{result}}}"#)),
            Ok(None)
        ));
        assert!(matches!(
            answer_to(5, &format!(r#"{{"jsonrpc":"2.0","id":"5",{result}}}"#)),
            Ok(None)
        ));
        assert!(matches!(
            answer_to(5, &format!(r#"{{"jsonrpc":"2.0","id":5,{result}}}"#)),
            Ok(Some(ServerResult::CallToolResult(_)))
        ));
        assert!(matches!(
            answer_to(5, r#"{"jsonrpc":"2.0","id":5,"result":{"nothing":1}}"#),
            Err(ToolError::BadResponse(_))
        ));
    }

    #[test]
    #[allow(deprecated)] // MCP logging (SEP-2577)
    fn a_log_on_the_calls_stream_reaches_its_sink() {
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = {
            let heard = heard.clone();
            LogSink::new(rmcp::model::LoggingLevel::Info, move |message| {
                heard.lock().unwrap().push(message)
            })
        };
        let direct = direct();
        let call = Call {
            direct: &direct,
            id: 5,
            id_text: "5".into(),
            progress: None,
            log: Some(&sink),
        };
        let log = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"warning","logger":"db","data":{"rows":3}}}"#;
        assert!(matches!(
            call.answer(serde_json::from_str(log).unwrap()),
            Ok(None)
        ));
        let unreadable =
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"loud"}}"#;
        assert!(matches!(
            call.answer(serde_json::from_str(unreadable).unwrap()),
            Ok(None)
        ));
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len(), 1);
        assert_eq!(heard[0].logger.as_deref(), Some("db"));
        assert_eq!(heard[0].data, json!({"rows": 3}));
    }

    /// The `_meta` written from its parts is the map rmcp's setters would build, entry for
    /// entry, the adapter's own entries kept unless the era or the call sets them.
    #[test]
    #[allow(deprecated)] // MCP logging (SEP-2577)
    fn a_calls_meta_is_what_rmcps_setters_would_build() {
        let config = super::super::connection::client_config();
        let mut era = rmcp::model::RequestMetaObject::default();
        era.set_protocol_version(ProtocolVersion::V_2026_07_28);
        era.set_client_info(config.client_info);
        let era_raw: Vec<(String, Box<RawValue>)> = era
            .0
            .0
            .iter()
            .map(|(key, value)| (key.clone(), serde_json::value::to_raw_value(value).unwrap()))
            .collect();
        let mut own = rmcp::model::RequestMetaObject::default();
        own.0.0.insert("traceparent".into(), json!("00-abc-def-01"));
        own.0.0.insert(PROGRESS_TOKEN.into(), json!("the client's"));
        let mut capabilities = ClientCapabilities::default();
        capabilities.roots = config.capabilities.roots.clone();
        for log_level in [None, Some(LoggingLevel::Warning)] {
            let mut expected = own.clone();
            expected.0.0.extend(era.0.0.clone());
            expected.set_client_capabilities(capabilities.clone());
            expected.set_progress_token(ProgressToken(RequestId::Number(42)));
            if let Some(level) = log_level {
                expected.set_log_level(level);
            }
            let written = CallMeta {
                own: Some(&own.0.0),
                era: &era_raw,
                capabilities: capabilities.clone(),
                progress_token: 42,
                log_level,
            };
            let text = serde_json::to_string(&written).unwrap();
            for key in expected.0.0.keys() {
                assert_eq!(text.matches(&format!("\"{key}\":")).count(), 1, "{text}");
            }
            let written: Map<String, Value> = serde_json::from_str(&text).unwrap();
            assert_eq!(written, expected.0.0);
        }
    }

    #[test]
    fn an_incoming_message_keeps_its_result_undecoded() {
        let text = r#"{"jsonrpc":"2.0","id": 7,"result":{"content":[]}}"#;
        let message: Incoming<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(message.id.unwrap().get(), "7");
        assert_eq!(message.result.unwrap().get(), r#"{"content":[]}"#);
        assert!(message.method.is_none() && message.error.is_none());
    }
}
