//! A browser-less user of one gateway's broker: dev sign-in, the `/connections` forms, MCP
//! calls carrying the sign-in cookie (and an rmcp session of one user that tells what it hears),
//! and the Linear emulator's test controls.
// Logging and the 2025 eras' mid-call questions are deprecated by SEP-2577, and still tested.
#![allow(dead_code, clippy::unwrap_used, deprecated)]

use std::sync::Arc;

use serde_json::{Value, json};

pub struct BrokerClient {
    /// The gateway, e.g. `http://127.0.0.1:4321`.
    pub base: String,
    /// The Linear emulator, e.g. `http://127.0.0.1:4322/linear`.
    pub emulator: String,
    pub http: reqwest::Client,
}

impl BrokerClient {
    pub fn new(base: &str, emulator: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            emulator: emulator.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// A session of the gateway as the user of `cookie`, and what it hears.
    pub async fn hearing(
        &self,
        cookie: &str,
        user: &'static str,
    ) -> (
        rmcp::service::RunningService<rmcp::RoleClient, Hearing>,
        Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use rmcp::{
            ServiceExt,
            transport::{
                StreamableHttpClientTransport,
                streamable_http_client::StreamableHttpClientTransportConfig,
            },
        };
        let headers = std::collections::HashMap::from([(
            http::HeaderName::from_static("cookie"),
            http::HeaderValue::from_str(cookie).unwrap(),
        )]);
        let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", self.base))
            .custom_headers(headers);
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let client = Hearing {
            user,
            heard: heard.clone(),
        }
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap();
        (client, heard)
    }

    /// Signs `user` in; returns the `Cookie` header value.
    pub async fn login(&self, user: &str) -> String {
        let answer = self
            .http
            .get(format!("{}/connections/dev-login?user={user}", self.base))
            .send()
            .await
            .unwrap();
        let cookie = answer.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    pub async fn page(&self, cookie: &str) -> String {
        self.get(cookie, &format!("{}/connections", self.base))
            .await
            .text()
            .await
            .unwrap()
    }

    /// An initialized MCP session declaring `capabilities`.
    pub async fn session(&self, cookie: &str, capabilities: Value) -> String {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities,
            "clientInfo": {"name": "t", "version": "1"}}});
        let session = self
            .mcp(cookie, None, &init)
            .await
            .0
            .expect("initialize opened no session (is the user at the session cap?)");
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.mcp(cookie, Some(&session), &note).await;
        session
    }

    /// `tool` with no arguments on an open session; the JSON-RPC answer.
    pub async fn call_in(&self, cookie: &str, session: &str, tool: &str) -> Value {
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": tool, "arguments": {}}});
        self.mcp(cookie, Some(session), &call).await.1
    }

    /// One call on a fresh session declaring `capabilities`; the session is ended afterwards,
    /// so runs against a shared database do not pile up sessions against the user's cap.
    pub async fn call(&self, cookie: &str, capabilities: Value, tool: &str) -> Value {
        let session = self.session(cookie, capabilities).await;
        let answer = self.call_in(cookie, &session, tool).await;
        self.end(cookie, &session).await;
        answer
    }

    /// Ends `session` (DELETE), as a well-behaved client does.
    pub async fn end(&self, cookie: &str, session: &str) {
        let status = self
            .http
            .delete(format!("{}/mcp", self.base))
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", session)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "ending the session: {status}");
    }

    pub async fn mcp(
        &self,
        cookie: &str,
        session: Option<&str>,
        body: &Value,
    ) -> (Option<String>, Value) {
        let mut request = self
            .http
            .post(format!("{}/mcp", self.base))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .header("cookie", cookie)
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        let answer = request.send().await.unwrap();
        let session = answer
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = answer.text().await.unwrap();
        // The answer, past any notifications sent before it on the stream.
        let messages: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .chain(std::iter::once(text.as_str()))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .collect();
        let message = messages
            .iter()
            .find(|m| m.get("id").is_some())
            .or(messages.first())
            .cloned()
            .unwrap_or(Value::Null);
        (session, message)
    }

    pub async fn oauth_log(&self) -> Value {
        self.http
            .get(format!("{}/_sandbox/oauth_log", self.emulator))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// POSTs an emulator control, with a JSON body when `body` is not null.
    pub async fn control(&self, path: &str, body: Value) {
        let mut request = self.http.post(format!("{}{path}", self.emulator));
        if !body.is_null() {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
    }

    /// Connect/disconnect form POST; returns the response.
    pub async fn form(&self, cookie: &str, action: &str, connection: &str) -> reqwest::Response {
        self.form_with_scopes(cookie, action, connection, "").await
    }

    /// The same form asking for exactly `scopes` (space-separated; empty for the defaults).
    pub async fn form_with_scopes(
        &self,
        cookie: &str,
        action: &str,
        connection: &str,
        scopes: &str,
    ) -> reqwest::Response {
        let page = self.page(cookie).await;
        let csrf = page
            .split("name=csrf value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        self.http
            .post(format!("{}/connections/{action}", self.base))
            .header("cookie", cookie)
            .header("origin", &self.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([
                        ("csrf", csrf.as_str()),
                        ("connection", connection),
                        ("scopes", scopes),
                    ])
                    .finish(),
            )
            .send()
            .await
            .unwrap()
    }

    /// Starts a connect and follows the emulator's authorize; returns the callback URL and the
    /// `Cookie` value of the browser that started it (`cookie` plus the connect's binding).
    pub async fn authorize(&self, cookie: &str) -> (String, String) {
        let started = self.form(cookie, "connect", "linear").await;
        assert_eq!(started.status(), 303);
        let authorize = started.headers()["location"].to_str().unwrap().to_owned();
        assert!(authorize.starts_with(&self.emulator), "{authorize}");
        let binding = binding_cookie(&started, "manifold_connect_");
        let approved = self.http.get(&authorize).send().await.unwrap();
        let callback = approved.headers()["location"].to_str().unwrap().to_owned();
        (callback, format!("{cookie}; {binding}"))
    }

    /// Connects Linear for the signed-in user through the whole browser flow.
    pub async fn connect(&self, cookie: &str) {
        let (callback, browser) = self.authorize(cookie).await;
        assert_eq!(self.get(&browser, &callback).await.status(), 303);
    }

    pub async fn get(&self, cookie: &str, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }
}

/// The `name=value` of the cookie starting with `prefix` that `response` sets.
pub fn binding_cookie(response: &reqwest::Response, prefix: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} cookie set"))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The first text content of a tool result.
pub fn text(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The refresh-token grants in an emulator OAuth log.
pub fn refreshes(log: &Value) -> Vec<Value> {
    log["token_requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["grant_type"] == "refresh_token")
        .cloned()
        .collect()
}

/// How many bearer tokens the emulator refused.
pub fn rejections(log: &Value) -> usize {
    log["bearer_rejections"].as_array().unwrap().len()
}

/// Asserts a `tools/call` answer is a successful tool result.
pub fn assert_ok(answer: &Value) {
    assert!(answer.get("error").is_none(), "{answer}");
    assert!(answer["result"].is_object(), "{answer}");
    assert_ne!(answer["result"]["isError"], true, "{answer}");
}

/// A downstream session of one signed-in user: tells the progress messages, logs, questions,
/// resource updates (`updated <uri>`) and tool list changes (`tools changed`) it hears, and
/// answers a question with its user's name.
pub struct Hearing {
    pub user: &'static str,
    pub heard: Arc<std::sync::Mutex<Vec<String>>>,
}

impl rmcp::ClientHandler for Hearing {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let capabilities = rmcp::model::ClientCapabilities::builder()
            .enable_elicitation()
            .build();
        rmcp::model::ClientConfig::new(
            capabilities,
            rmcp::model::Implementation::new(self.user, "1"),
        )
    }

    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.heard
            .lock()
            .unwrap()
            .extend(params.message.filter(|m| m.contains(" of ")));
    }

    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        let data = params.data.as_str().unwrap_or_default().to_owned();
        self.heard.lock().unwrap().push(data);
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.heard
            .lock()
            .unwrap()
            .push(format!("updated {}", params.uri));
    }

    async fn on_tool_list_changed(
        &self,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.heard.lock().unwrap().push("tools changed".into());
    }

    async fn create_elicitation(
        &self,
        request: rmcp::model::ElicitRequestParams,
        _context: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        let message = serde_json::to_value(&request).unwrap()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.heard.lock().unwrap().push(message);
        let mut result = rmcp::model::ElicitResult::new(rmcp::model::ElicitationAction::Accept);
        result.content = Some(json!({"name": self.user}));
        Ok(result)
    }
}
