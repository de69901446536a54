//! The per-user token broker end to end over HTTP against the Linear emulator: connecting at
//! `/connections`, state checks, URL elicitation, refresh after expiry (single-flight),
//! invalid_grant, and user isolation.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use manifold::app;
use manifold_adapters::Registry;
use serde_json::{Value, json};

struct Demo {
    base: String,
    emulator: String,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    _running: app::RunningGateway,
}

async fn start() -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let source = format!(
        r#"
[server]
listen = "127.0.0.1:0"
allowed_origins = ["http://127.0.0.1:*"]
call_timeout = "10s"
[storage]
data_dir = "{}"
[broker]
dev_login = true
demo_users = ["alice", "bob"]
[adapters.linear]
kind = "linear"
sandbox = true
"#,
        dir.path().display()
    );
    let registry = Registry::builtin();
    let path = Path::new("broker.toml");
    let config = manifold::config::load_str(&source, path, &registry, &[]).unwrap();
    let running = app::start(config, &source, path, &registry).await.unwrap();
    let emulator = format!("http://{}/linear", running.sandbox.as_ref().unwrap().addr());
    Demo {
        base: format!("http://{}", running.addr),
        emulator,
        dir,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _running: running,
    }
}

impl Demo {
    async fn login(&self, user: &str) -> String {
        let answer = self
            .http
            .get(format!("{}/connections/dev-login?user={user}", self.base))
            .send()
            .await
            .unwrap();
        let cookie = answer.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn page(&self, cookie: &str) -> String {
        self.http
            .get(format!("{}/connections", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// One stateless-style call on a fresh session declaring `capabilities`.
    async fn call(&self, cookie: &str, capabilities: Value, tool: &str) -> Value {
        let url = format!("{}/mcp", self.base);
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities,
            "clientInfo": {"name": "t", "version": "1"}}});
        let answer = self.mcp(&url, cookie, None, &init).await;
        let session = answer.0.unwrap();
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.mcp(&url, cookie, Some(&session), &note).await;
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": tool, "arguments": {}}});
        self.mcp(&url, cookie, Some(&session), &call).await.1
    }

    async fn mcp(
        &self,
        url: &str,
        cookie: &str,
        session: Option<&str>,
        body: &Value,
    ) -> (Option<String>, Value) {
        let mut request = self
            .http
            .post(url)
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
        let message = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .chain(std::iter::once(text.as_str()))
            .find_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .unwrap_or(Value::Null);
        (session, message)
    }

    async fn oauth_log(&self) -> Value {
        self.http
            .get(format!("{}/_sandbox/oauth_log", self.emulator))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn control(&self, path: &str) {
        let answer = self
            .http
            .post(format!("{}{path}", self.emulator))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }

    /// Connect/disconnect form POST; returns the response.
    async fn form(&self, cookie: &str, action: &str, connection: &str) -> reqwest::Response {
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
                        ("scopes", ""),
                    ])
                    .finish(),
            )
            .send()
            .await
            .unwrap()
    }

    /// Starts a connect and follows the emulator's authorize; returns the callback URL.
    async fn authorize(&self, cookie: &str) -> String {
        let started = self.form(cookie, "connect", "linear").await;
        assert_eq!(started.status(), 303);
        let authorize = started.headers()["location"].to_str().unwrap().to_owned();
        assert!(authorize.starts_with(&self.emulator), "{authorize}");
        let approved = self.http.get(&authorize).send().await.unwrap();
        approved.headers()["location"].to_str().unwrap().to_owned()
    }

    async fn get(&self, cookie: &str, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }
}

fn text(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn carol_connects_calls_and_disconnects() {
    let demo = start().await;
    let carol = demo.login("carol").await;
    let page = demo.page(&carol).await;
    assert!(page.contains("id=\"conn-linear\""), "{page}");
    assert!(page.contains("Not connected"), "{page}");
    let before = demo.call(&carol, json!({}), "linear_list_teams").await;
    assert_eq!(before["result"]["isError"], true, "{before}");
    assert!(
        text(&before).contains("/connections/connect?connection=linear"),
        "{before}"
    );

    let callback = demo.authorize(&carol).await;
    assert!(callback.starts_with(&format!("{}/connections/callback", demo.base)));
    let done = demo.get(&carol, &callback).await;
    assert_eq!(done.status(), 303);
    assert!(demo.page(&carol).await.contains("Connected"));
    let after = demo.call(&carol, json!({}), "linear_list_teams").await;
    assert_ne!(after["result"]["isError"], true, "{after}");
    let log = demo.oauth_log().await;
    assert_eq!(
        log["bearer_users"].as_array().unwrap().last().unwrap(),
        "carol"
    );

    let gone = demo.form(&carol, "disconnect", "linear").await;
    assert_eq!(gone.status(), 303);
    let again = demo.call(&carol, json!({}), "linear_list_teams").await;
    assert!(
        text(&again).contains("/connections/connect?connection=linear"),
        "{again}"
    );
}

#[tokio::test]
async fn state_replayed_tampered_or_foreign_is_refused() {
    let demo = start().await;
    let carol = demo.login("carol").await;
    let callback = demo.authorize(&carol).await;
    let bob = demo.login("bob").await;
    assert_eq!(
        demo.get(&bob, &callback).await.status(),
        403,
        "another user's state"
    );
    let tampered = callback.replacen("state=v1.", "state=v1.x", 1);
    assert_eq!(demo.get(&carol, &tampered).await.status(), 403);
    assert_eq!(demo.get(&carol, &callback).await.status(), 303, "first use");
    assert_eq!(demo.get(&carol, &callback).await.status(), 403, "replay");
}

#[tokio::test]
async fn url_elicitation_only_for_clients_that_declare_it() {
    let demo = start().await;
    let carol = demo.login("carol").await;
    let caps = json!({"elicitation": {"url": {}}});
    let answer = demo.call(&carol, caps, "linear_list_teams").await;
    assert_eq!(answer["error"]["code"], -32042, "{answer}");
    let elicitation = &answer["error"]["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    assert!(
        elicitation["url"]
            .as_str()
            .unwrap()
            .contains("/connections/connect?connection=linear")
    );
    assert!(elicitation["elicitationId"].is_string());
    let plain = demo.call(&carol, json!({}), "linear_list_teams").await;
    assert!(plain.get("error").is_none());
    assert!(text(&plain).contains("/connections/connect"), "{plain}");
}

fn refreshes(log: &Value) -> usize {
    log["token_requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["grant_type"] == "refresh_token")
        .count()
}

#[tokio::test]
async fn expired_tokens_refresh_once_for_twenty_concurrent_calls() {
    let demo = start().await;
    let alice = demo.login("alice").await;
    let warm = demo.call(&alice, json!({}), "linear_list_teams").await;
    assert_ne!(warm["result"]["isError"], true, "{warm}");
    demo.control("/_sandbox/expire_tokens").await;
    let before = refreshes(&demo.oauth_log().await);
    let calls = (0..20).map(|_| demo.call(&alice, json!({}), "linear_list_teams"));
    for answer in futures::future::join_all(calls).await {
        assert_ne!(answer["result"]["isError"], true, "{answer}");
    }
    assert_eq!(refreshes(&demo.oauth_log().await) - before, 1);
}

#[tokio::test]
async fn invalid_grant_marks_the_connection_broken() {
    let demo = start().await;
    let bob = demo.login("bob").await;
    demo.control("/_sandbox/revoke_tokens").await;
    let answer = demo.call(&bob, json!({}), "linear_list_teams").await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(text(&answer).contains("Reconnect at"), "{answer}");
    assert!(text(&answer).contains("/connections/connect?connection=linear"));
    assert!(demo.page(&bob).await.contains("Broken"));
}

#[tokio::test]
async fn users_never_get_each_others_tokens() {
    let demo = start().await;
    let (alice, bob) = (demo.login("alice").await, demo.login("bob").await);
    demo.call(&bob, json!({}), "linear_list_teams").await;
    let log = demo.oauth_log().await;
    assert_eq!(
        log["bearer_users"].as_array().unwrap().last().unwrap(),
        "bob"
    );
    demo.call(&alice, json!({}), "linear_list_teams").await;
    let log = demo.oauth_log().await;
    assert_eq!(
        log["bearer_users"].as_array().unwrap().last().unwrap(),
        "alice"
    );

    // alice's sealed row copied to carol does not open for carol.
    let storage = manifold::storage::Storage::open(None, demo.dir.path())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO broker_tokens (user_sub, connection, sealed, kid, scopes, account, expires_at, status, updated_at)
         SELECT 'carol', connection, sealed, kid, scopes, account, expires_at, status, updated_at
         FROM broker_tokens WHERE user_sub = 'alice'",
    )
    .execute(storage.pool())
    .await
    .unwrap();
    let carol = demo.login("carol").await;
    let seen = demo.oauth_log().await["bearer_users"]
        .as_array()
        .unwrap()
        .len();
    let answer = demo.call(&carol, json!({}), "linear_list_teams").await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(text(&answer).contains("Reconnect"), "{answer}");
    assert_eq!(
        demo.oauth_log().await["bearer_users"]
            .as_array()
            .unwrap()
            .len(),
        seen
    );
}
