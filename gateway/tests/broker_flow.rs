//! The per-user token broker end to end over HTTP against the Linear emulator: connecting at
//! `/connections`, state checks, URL elicitation, refresh after expiry (single-flight),
//! invalid_grant, and user isolation.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use manifold::app;
use manifold_adapters::Registry;
use serde_json::json;
use support::broker::{BrokerClient, assert_ok, refreshes, rejections, text};

struct Demo {
    client: BrokerClient,
    dir: tempfile::TempDir,
    _running: app::RunningGateway,
}

impl std::ops::Deref for Demo {
    type Target = BrokerClient;
    fn deref(&self) -> &BrokerClient {
        &self.client
    }
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
        client: BrokerClient::new(&format!("http://{}", running.addr), &emulator),
        dir,
        _running: running,
    }
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

    let (callback, browser) = demo.authorize(&carol).await;
    assert!(callback.starts_with(&format!("{}/connections/callback", demo.base)));
    let done = demo.get(&browser, &callback).await;
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
    // Disconnecting revoked carol's grant at the provider, not only forgot it here.
    let log = demo.oauth_log().await;
    let revoked = log["token_requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["grant_type"] == "revoke" && r["user"] == "carol" && r["outcome"] == "ok")
        .count();
    assert!(revoked >= 1, "no revocation reached the provider: {log}");
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
    let (callback, browser) = demo.authorize(&carol).await;
    let bob = demo.login("bob").await;
    assert_eq!(
        demo.get(&bob, &callback).await.status(),
        403,
        "another user's state"
    );
    let tampered = callback.replacen("state=v1.", "state=v1.x", 1);
    assert_eq!(demo.get(&browser, &tampered).await.status(), 403);
    assert_eq!(
        demo.get(&carol, &callback).await.status(),
        403,
        "carol's session in a browser without the connect's cookie"
    );
    // Carol's other browser, holding the binding of a connect it started itself.
    let (_, other_browser) = demo.authorize(&carol).await;
    assert_eq!(
        demo.get(&other_browser, &callback).await.status(),
        403,
        "a browser bound to another connect"
    );
    assert_eq!(
        demo.get(&browser, &callback).await.status(),
        303,
        "first use"
    );
    assert_eq!(demo.get(&browser, &callback).await.status(), 403, "replay");
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

#[tokio::test]
async fn expired_tokens_refresh_once_for_twenty_concurrent_calls() {
    let demo = start().await;
    let alice = demo.login("alice").await;
    let warm = demo.call(&alice, json!({}), "linear_list_teams").await;
    assert_ne!(warm["result"]["isError"], true, "{warm}");
    demo.control("/_sandbox/expire_tokens", json!(null)).await;
    let before = refreshes(&demo.oauth_log().await).len();
    let calls = (0..20).map(|_| demo.call(&alice, json!({}), "linear_list_teams"));
    for answer in futures::future::join_all(calls).await {
        assert_ne!(answer["result"]["isError"], true, "{answer}");
    }
    assert_eq!(refreshes(&demo.oauth_log().await).len() - before, 1);
}

#[tokio::test]
async fn tokens_inside_the_refresh_skew_are_refreshed_before_use() {
    let demo = start().await;
    // carol's first access token lives 2 s: well inside the broker's 60 s refresh skew.
    demo.control("/_sandbox/token_lifetime", json!({"seconds": 2}))
        .await;
    let carol = demo.login("carol").await;
    demo.connect(&carol).await;
    demo.control("/_sandbox/token_lifetime", json!({"seconds": 3600}))
        .await;
    // Past its lifetime at the provider too: sent as it is, it would draw a 401 (and a refresh
    // after it), which is not "before use".
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let before = demo.oauth_log().await;
    assert_ok(&demo.call(&carol, json!({}), "linear_list_teams").await);
    let after = demo.oauth_log().await;
    assert_eq!(
        refreshes(&after).len() - refreshes(&before).len(),
        1,
        "{after}"
    );
    assert_eq!(
        rejections(&after),
        rejections(&before),
        "the provider refused a token: the broker did not refresh before use: {after}"
    );
    // The refreshed token lasts an hour: the next call uses it without refreshing.
    assert_ok(&demo.call(&carol, json!({}), "linear_list_teams").await);
    let last = demo.oauth_log().await;
    assert_eq!(refreshes(&last).len(), refreshes(&after).len(), "{last}");
    assert_eq!(
        last["bearer_users"].as_array().unwrap().last().unwrap(),
        "carol"
    );
}

#[tokio::test]
async fn invalid_grant_marks_the_connection_broken() {
    let demo = start().await;
    let bob = demo.login("bob").await;
    demo.control("/_sandbox/revoke_tokens", json!(null)).await;
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

/// Connects carol to Linear with exactly `scopes` through the browser flow.
async fn connect_with(demo: &Demo, cookie: &str, scopes: &str) {
    let started = demo
        .form_with_scopes(cookie, "connect", "linear", scopes)
        .await;
    assert_eq!(started.status(), 303);
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    let browser = format!(
        "{cookie}; {}",
        support::broker::binding_cookie(&started, "manifold_connect_")
    );
    // The provider is asked for exactly these scopes (Linear separates them with commas).
    let parsed = url::Url::parse(&authorize).unwrap();
    let asked = parsed
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .unwrap()
        .1
        .into_owned();
    for scope in scopes.split(' ') {
        assert!(
            asked.split([',', ' ']).any(|s| s == scope),
            "{scope} not asked in {authorize}"
        );
    }
    let approved = demo.http.get(&authorize).send().await.unwrap();
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(demo.get(&browser, &callback).await.status(), 303);
}

#[tokio::test]
async fn a_tool_needing_an_ungranted_scope_asks_for_more_and_works_after_reconnect() {
    let demo = start().await;
    let carol = demo.login("carol").await;
    connect_with(&demo, &carol, "read").await;
    assert_ok(&demo.call(&carol, json!({}), "linear_list_teams").await);

    let session = demo.session(&carol, json!({})).await;
    let teams = demo.call_in(&carol, &session, "linear_list_teams").await;
    let team_id = teams["result"]["structuredContent"]["teams"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "linear_create_issue", "arguments": {"team_id": team_id, "title": "needs more"}}});
    let refused = demo.mcp(&carol, Some(&session), &create).await.1;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let message = text(&refused);
    assert!(
        message.contains("issues:create"),
        "names the missing scope: {message}"
    );
    let url = message
        .split_whitespace()
        .find(|w| w.contains("/connections/connect?"))
        .unwrap()
        .trim_end_matches(['.', ',']);
    let parsed = url::Url::parse(url).unwrap();
    let asked: String = parsed
        .query_pairs()
        .find(|(k, _)| k == "scopes")
        .unwrap()
        .1
        .into_owned();
    let asked: Vec<&str> = asked.split(' ').collect();
    assert!(
        asked.contains(&"read") && asked.contains(&"issues:create"),
        "the union: {asked:?}"
    );

    connect_with(&demo, &carol, &asked.join(" ")).await;
    let created = demo.mcp(&carol, Some(&session), &create).await.1;
    assert_ne!(created["result"]["isError"], true, "{created}");
}
