//! Per-user OAuth to an upstream MCP server (`settings.auth = "oauth"`) end to end: the gateway
//! discovers the upstream's authorization server from its 401, becomes its client (metadata
//! document, dynamic registration, or a pre-registered id and secret), each user connects at
//! `/connections`, and each user's calls reach the upstream as that user; refresh on expiry and
//! after a 401 (once), disconnect with revocation (discovery's SSRF guard is in
//! `mcp_upstream_discovery.rs`). Each user's connection relays the upstream's progress, logs and
//! questions to that user's calls alone, its resource updates to that user's subscribed sessions
//! alone, and its list changes to every session, in a bounded number of refreshes.
// Logging and the 2025 eras' mid-call questions are deprecated by SEP-2577, and still tested.
#![allow(clippy::unwrap_used, deprecated)]

mod support;

use std::{
    path::Path,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use manifold::app;
use manifold_adapters::{
    Registry,
    outbound::{Outbound, OutboundSettings},
};
use serde_json::{Value, json};
use support::{
    broker::{BrokerClient, binding_cookie, text},
    upstream_oauth::{OAuthUpstream, PRE_CLIENT, PRE_SECRET},
};
use tokio_util::sync::CancellationToken;

struct Env {
    client: BrokerClient,
    up: Arc<OAuthUpstream>,
    _dir: tempfile::TempDir,
    _running: app::RunningGateway,
    _stop: tokio_util::sync::DropGuard,
}

impl std::ops::Deref for Env {
    type Target = BrokerClient;
    fn deref(&self) -> &BrokerClient {
        &self.client
    }
}

/// The upstream configured by `configure`, and a gateway with it as `[adapters.crm]` with
/// `settings` besides `auth = "oauth"`, and `env` overrides.
async fn start(
    configure: impl FnOnce(&OAuthUpstream),
    settings: &str,
    env: &[(&str, &str)],
) -> Env {
    let up = OAuthUpstream::new();
    configure(&up);
    let stop = CancellationToken::new();
    up.serve(stop.clone()).await;
    let mcp_url = up.mcp_url();
    start_with(up, &mcp_url, stop, settings, env).await
}

/// [`start`] with `up` at `mcp_url`, served or not yet.
async fn start_with(
    up: Arc<OAuthUpstream>,
    mcp_url: &str,
    stop: CancellationToken,
    settings: &str,
    env: &[(&str, &str)],
) -> Env {
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
[adapters.crm]
kind = "mcp"
base_url = "{}"
[adapters.crm.settings]
auth = "oauth"
{settings}
"#,
        dir.path().display(),
        mcp_url
    );
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let registry = Registry::builtin();
    let path = Path::new("upstream-oauth.toml");
    let config = manifold::config::load_str(&source, path, &registry, &env).unwrap();
    let running = app::start(config, &source, path, &registry).await.unwrap();
    Env {
        client: BrokerClient::new(&format!("http://{}", running.addr), ""),
        up,
        _dir: dir,
        _running: running,
        _stop: stop.drop_guard(),
    }
}

impl Env {
    /// Connects `crm` for the user of `cookie` through the browser flow; the authorization
    /// server learns the user from the `login_hint` the "browser" adds.
    async fn connect_crm(&self, cookie: &str, user: &str) {
        let started = self.form(cookie, "connect", "mcp-crm").await;
        assert_eq!(started.status(), 303, "{:?}", started.text().await);
        let authorize = started.headers()["location"].to_str().unwrap().to_owned();
        assert!(authorize.starts_with(&self.up.base()), "{authorize}");
        let binding = binding_cookie(&started, "manifold_connect_");
        let approved = self
            .http
            .get(format!("{authorize}&login_hint={user}"))
            .send()
            .await
            .unwrap();
        assert_eq!(approved.status(), 303, "{:?}", approved.text().await);
        let callback = approved.headers()["location"].to_str().unwrap().to_owned();
        let done = self.get(&format!("{cookie}; {binding}"), &callback).await;
        assert_eq!(done.status(), 303, "{:?}", done.text().await);
    }

    async fn call_whoami(&self, cookie: &str) -> Value {
        self.call(cookie, json!({}), "crm_whoami").await
    }

    /// `crm_whoami` as the user of `cookie`, once it is listed (the catalog is filled from the
    /// first connected user's list).
    async fn whoami(&self, cookie: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let answer = self.call_whoami(cookie).await;
            let unknown = answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("unknown tool") || m.contains("Unknown tool"));
            if !unknown || tokio::time::Instant::now() > deadline {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn grants(&self, grant: &str) -> Vec<Value> {
        self.up
            .token_requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["grant_type"] == grant)
            .cloned()
            .collect()
    }
}

fn is_error(answer: &Value) -> bool {
    answer["result"]["isError"] == true || answer.get("error").is_some()
}

#[tokio::test]
async fn users_connect_through_a_client_metadata_document_and_reach_the_upstream_as_themselves() {
    let env = start(|up| up.cimd.store(true, Ordering::SeqCst), "", &[]).await;
    let alice = env.login("alice").await;
    env.connect_crm(&alice, "alice").await;
    // The gateway's own document was its client id, fetched by the authorization server.
    let documents = env.up.documents.lock().unwrap().clone();
    assert_eq!(
        documents,
        [format!("{}/connections/client-metadata.json", env.base)]
    );
    let answer = env.whoami(&alice).await;
    assert_eq!(text(&answer), "you are alice", "{answer}");

    // Bob has not connected: the tool error carries the link, as for native providers.
    let bob = env.login("bob").await;
    let refused = env.call_whoami(&bob).await;
    assert!(is_error(&refused), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("/connections/connect?connection=mcp-crm"),
        "{refused}"
    );
    // A client that takes URL elicitation is sent to connect that way.
    let caps = json!({"elicitation": {"url": {}}});
    let elicited = env.call(&bob, caps, "crm_whoami").await;
    assert_eq!(elicited["error"]["code"], -32042, "{elicited}");
    let elicitation = &elicited["error"]["data"]["elicitations"][0];
    assert!(
        elicitation["url"]
            .as_str()
            .unwrap()
            .contains("/connections/connect?connection=mcp-crm"),
        "{elicited}"
    );
    // Resources too are read as the caller, and not without a connection.
    let read = json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
        "params": {"uri": "manifold://crm/crm://me"}});
    let session = env.session(&alice, json!({})).await;
    let (_, answer) = env.mcp(&alice, Some(&session), &read).await;
    env.end(&alice, &session).await;
    assert_eq!(
        answer["result"]["contents"][0]["text"], "record of alice",
        "{answer}"
    );
    let session = env.session(&bob, json!({})).await;
    let (_, answer) = env.mcp(&bob, Some(&session), &read).await;
    env.end(&bob, &session).await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("connection=mcp-crm")),
        "{answer}"
    );
    env.connect_crm(&bob, "bob").await;
    assert_eq!(text(&env.whoami(&bob).await), "you are bob");
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
    assert_eq!(
        *env.up.calls.lock().unwrap(),
        ["alice", "bob", "alice"],
        "each call reached the upstream as its own user"
    );

    // Code exchanges named the upstream as the resource (RFC 8707) and the document as client.
    let exchanges = env.grants("authorization_code");
    assert_eq!(exchanges.len(), 2);
    for exchange in &exchanges {
        assert_eq!(exchange["resource"], env.up.mcp_url());
        assert_eq!(exchange["client_id"], documents[0]);
    }
    // Only the upstream's own tokens (or none, on the discovery probe) reached it: never the
    // gateway's sign-in cookie or any other client credential.
    for header in env.up.authorizations.lock().unwrap().iter() {
        assert!(
            header.is_empty() || header.starts_with("Bearer at-"),
            "{header}"
        );
    }
}

#[tokio::test]
async fn each_users_connection_relays_progress_logs_and_questions_to_that_users_calls_only() {
    let env = start(
        |up| {
            up.cimd.store(true, Ordering::SeqCst);
            up.legacy.store(true, Ordering::SeqCst);
        },
        "",
        &[],
    )
    .await;
    let alice = env.login("alice").await;
    env.connect_crm(&alice, "alice").await;
    let bob = env.login("bob").await;
    env.connect_crm(&bob, "bob").await;
    // Each user's connection is made, and the tools are listed.
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
    assert_eq!(text(&env.whoami(&bob).await), "you are bob");

    let (alices, alice_heard) = env.hearing(&alice, "alice").await;
    let (bobs, bob_heard) = env.hearing(&bob, "bob").await;
    let chatty = || {
        let mut params = rmcp::model::CallToolRequestParams::new("crm_chatty");
        params.arguments = Some(serde_json::Map::new());
        params
    };
    // At once: the upstream sends each session progress under both calls' tokens.
    let (for_alice, for_bob) = tokio::join!(alices.call_tool(chatty()), bobs.call_tool(chatty()));
    let said = |result: rmcp::model::CallToolResult| -> String {
        result
            .content
            .iter()
            .filter_map(|block| block.as_text().map(|text| text.text.clone()))
            .collect()
    };
    assert_eq!(said(for_alice.unwrap()), "alice was answered by alice");
    assert_eq!(said(for_bob.unwrap()), "bob was answered by bob");

    for (user, other, heard) in [("alice", "bob", &alice_heard), ("bob", "alice", &bob_heard)] {
        let expected = [
            format!("progress of {user}"),
            format!("log of {user}"),
            format!("question for {user}"),
        ];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !expected
            .iter()
            .all(|line| heard.lock().unwrap().contains(line))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{user} heard only {:?}",
                heard.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let heard = heard.lock().unwrap().clone();
        assert!(
            heard.iter().all(|line| !line.contains(other)),
            "{user} heard {other}'s: {heard:?}"
        );
    }
    alices.cancel().await.unwrap();
    bobs.cancel().await.unwrap();
}

#[tokio::test]
async fn an_upstream_down_at_start_is_discovered_once_it_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let up = OAuthUpstream::new();
    up.cimd.store(true, Ordering::SeqCst);
    let stop = CancellationToken::new();
    let mcp_url = format!("http://127.0.0.1:{port}/mcp");
    let env = start_with(up.clone(), &mcp_url, stop.clone(), "", &[]).await;
    let alice = env.login("alice").await;
    // Nothing to discover yet: the connect cannot start.
    let early = env.form(&alice, "connect", "mcp-crm").await;
    assert_ne!(early.status(), 303);
    up.serve_at(([127, 0, 0, 1], port).into(), stop).await;
    env.connect_crm(&alice, "alice").await;
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
}

#[tokio::test]
async fn without_documents_the_gateway_registers_dynamically() {
    let env = start(|up| up.dcr.store(true, Ordering::SeqCst), "", &[]).await;
    let alice = env.login("alice").await;
    env.connect_crm(&alice, "alice").await;
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
    assert_eq!(env.up.registrations.load(Ordering::SeqCst), 1);
    assert!(env.up.documents.lock().unwrap().is_empty());
    assert_eq!(env.grants("authorization_code")[0]["client_id"], "dcr-1");
}

#[tokio::test]
async fn a_preregistered_client_uses_its_id_and_secret() {
    let env = start(
        |_| {},
        &format!("oauth_client_id = \"{PRE_CLIENT}\""),
        &[(
            "MANIFOLD_ADAPTERS__CRM__CREDENTIALS__CLIENT_SECRET",
            PRE_SECRET,
        )],
    )
    .await;
    let alice = env.login("alice").await;
    env.connect_crm(&alice, "alice").await;
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
    assert_eq!(env.up.registrations.load(Ordering::SeqCst), 0);
    assert_eq!(env.grants("authorization_code")[0]["client_id"], PRE_CLIENT);
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_before_the_call() {
    // Tokens live 30 s, inside the broker's 60 s refresh skew: each call refreshes first.
    let env = start(
        |up| {
            up.cimd.store(true, Ordering::SeqCst);
            up.access_ttl.store(30, Ordering::SeqCst);
        },
        "",
        &[],
    )
    .await;
    let alice = env.login("alice").await;
    env.connect_crm(&alice, "alice").await;
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
    let refreshes = env.grants("refresh_token");
    assert!(!refreshes.is_empty());
    assert!(refreshes.iter().all(|r| r["resource"] == env.up.mcp_url()));
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_and_the_call_made_once_more() {
    let env = start(|up| up.cimd.store(true, Ordering::SeqCst), "", &[]).await;
    let alice = env.login("alice").await;
    env.connect_crm(&alice, "alice").await;
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
    let before = env.grants("refresh_token").len();

    // The upstream refuses a valid token once: one refresh, and the call goes through.
    env.up.reject.store(1, Ordering::SeqCst);
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
    assert_eq!(env.grants("refresh_token").len(), before + 1);

    // Refused again after the renewal: the call fails, after exactly one more refresh.
    env.up.reject.store(100, Ordering::SeqCst);
    let refused = env.call_whoami(&alice).await;
    assert!(is_error(&refused), "{refused}");
    assert_eq!(env.grants("refresh_token").len(), before + 2);

    // A resource read follows the same rule: one refusal, one refresh, and the read goes
    // through; refused again after the renewal, it fails after exactly one more refresh.
    let read = json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
        "params": {"uri": "manifold://crm/crm://me"}});
    let session = env.session(&alice, json!({})).await;
    env.up.reject.store(1, Ordering::SeqCst);
    let (_, answer) = env.mcp(&alice, Some(&session), &read).await;
    assert_eq!(
        answer["result"]["contents"][0]["text"], "record of alice",
        "{answer}"
    );
    assert_eq!(env.grants("refresh_token").len(), before + 3);
    env.up.reject.store(100, Ordering::SeqCst);
    let (_, refused) = env.mcp(&alice, Some(&session), &read).await;
    assert!(refused.get("error").is_some(), "{refused}");
    assert_eq!(env.grants("refresh_token").len(), before + 4);
    env.end(&alice, &session).await;
}

#[tokio::test]
async fn disconnecting_revokes_at_the_upstream_and_calls_ask_to_connect_again() {
    let env = start(|up| up.cimd.store(true, Ordering::SeqCst), "", &[]).await;
    let alice = env.login("alice").await;
    env.connect_crm(&alice, "alice").await;
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
    let done = env.form(&alice, "disconnect", "mcp-crm").await;
    assert_eq!(done.status(), 303);
    let revoked = env.up.revoked.lock().unwrap().clone();
    assert_eq!(revoked.len(), 1);
    assert!(revoked[0].starts_with("rt-alice-"), "{revoked:?}");
    let refused = env.call_whoami(&alice).await;
    assert!(is_error(&refused), "{refused}");
    assert!(
        refused.to_string().contains("connection=mcp-crm"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_client_metadata_document_is_published_on_the_public_url() {
    let env = start(|up| up.cimd.store(true, Ordering::SeqCst), "", &[]).await;
    let document: Value = env
        .http
        .get(format!("{}/connections/client-metadata.json", env.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        document["client_id"],
        format!("{}/connections/client-metadata.json", env.base)
    );
    assert_eq!(
        document["redirect_uris"],
        json!([format!("{}/connections/callback", env.base)])
    );
}

// === subscriptions and list changes on users' connections ===

/// The `crm://me` resource as the gateway exposes it.
const ME: &str = "manifold://crm/crm://me";

/// Waits (up to 10 s) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Heard = Arc<std::sync::Mutex<Vec<String>>>;

fn count(heard: &Heard, line: &str) -> usize {
    heard.lock().unwrap().iter().filter(|l| *l == line).count()
}

/// A gateway in front of the upstream (2025 eras with sessions when `legacy`, else
/// 2026-07-28), with Alice and Bob connected and their tools listed.
async fn two_users(legacy: bool) -> (Env, String, String) {
    let env = start(
        |up| {
            up.cimd.store(true, Ordering::SeqCst);
            up.legacy.store(legacy, Ordering::SeqCst);
        },
        "",
        &[],
    )
    .await;
    let (alice, bob) = (env.login("alice").await, env.login("bob").await);
    env.connect_crm(&alice, "alice").await;
    env.connect_crm(&bob, "bob").await;
    assert_eq!(text(&env.whoami(&alice).await), "you are alice");
    assert_eq!(text(&env.whoami(&bob).await), "you are bob");
    (env, alice, bob)
}

#[tokio::test]
async fn each_users_subscription_is_on_their_connection_and_its_updates_reach_them_alone() {
    use rmcp::model::{SubscribeRequestParams, UnsubscribeRequestParams};
    for legacy in [true, false] {
        let (env, alice, bob) = two_users(legacy).await;
        let (alices, alice_heard) = env.hearing(&alice, "alice").await;
        let (bobs, bob_heard) = env.hearing(&bob, "bob").await;
        alices
            .subscribe(SubscribeRequestParams::new(ME))
            .await
            .unwrap();
        bobs.subscribe(SubscribeRequestParams::new(ME))
            .await
            .unwrap();
        // Each on that user's own connection (the upstream knows who subscribed by the token).
        let pair = |user: &str| (user.to_owned(), "crm://me".to_owned());
        let subscribed = || env.up.subscribed.lock().unwrap().clone();
        until("both subscribed upstream", || {
            subscribed().contains(&pair("alice")) && subscribed().contains(&pair("bob"))
        })
        .await;

        // Three updates on Alice's connection, one on Bob's, one of a resource nobody
        // subscribed to: each hears their own, and the stray one reaches nobody.
        let updated = format!("updated {ME}");
        for _ in 0..3 {
            env.up.touch("alice", "crm://me").await;
        }
        env.up.touch("alice", "crm://other").await;
        env.up.touch("bob", "crm://me").await;
        until("alice hears her three", || {
            count(&alice_heard, &updated) == 3
        })
        .await;
        until("bob hears his one", || count(&bob_heard, &updated) == 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            count(&bob_heard, &updated),
            1,
            "legacy {legacy}: {bob_heard:?}"
        );
        assert_eq!(
            count(&alice_heard, &updated),
            3,
            "legacy {legacy}: {alice_heard:?}"
        );
        for heard in [&alice_heard, &bob_heard] {
            let heard = heard.lock().unwrap();
            assert!(heard.iter().all(|l| !l.contains("other")), "{heard:?}");
        }

        // Alice unsubscribes: the upstream hears it on her connection, and she hears no more,
        // while Bob still does.
        alices
            .unsubscribe(UnsubscribeRequestParams::new(ME))
            .await
            .unwrap();
        until("alice unsubscribed upstream", || {
            env.up.unsubscribed.lock().unwrap().contains(&pair("alice"))
        })
        .await;
        assert!(!env.up.unsubscribed.lock().unwrap().contains(&pair("bob")));
        env.up.touch("alice", "crm://me").await;
        env.up.touch("bob", "crm://me").await;
        until("bob hears his second", || count(&bob_heard, &updated) == 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            count(&alice_heard, &updated),
            3,
            "legacy {legacy}: {alice_heard:?}"
        );

        // Bob's token is refused once: renewed, a new connection, and his subscription is
        // made again on it, where the next update comes.
        let before = subscribed().iter().filter(|p| **p == pair("bob")).count();
        env.up.reject.store(1, Ordering::SeqCst);
        assert_eq!(text(&env.whoami(&bob).await), "you are bob");
        until("bob's subscription renewed", || {
            subscribed().iter().filter(|p| **p == pair("bob")).count() > before
        })
        .await;
        env.up.touch("bob", "crm://me").await;
        until("bob hears on his new connection", || {
            count(&bob_heard, &updated) >= 3
        })
        .await;

        // Bob's session ends: his subscription is released upstream.
        bobs.cancel().await.unwrap();
        until("bob unsubscribed upstream", || {
            env.up.unsubscribed.lock().unwrap().contains(&pair("bob"))
        })
        .await;
        alices.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_list_change_on_a_users_connection_reaches_every_session() {
    for legacy in [true, false] {
        let (env, alice, bob) = two_users(legacy).await;
        let (alices, alice_heard) = env.hearing(&alice, "alice").await;
        let (_bobs, bob_heard) = env.hearing(&bob, "bob").await;
        // Announced on Bob's connection only: the gateway lists again, and every session of
        // the gateway hears its own list change.
        env.up.add_tool("bob").await;
        for heard in [&alice_heard, &bob_heard] {
            until("tools/list_changed from the gateway", || {
                count(heard, "tools changed") >= 1
            })
            .await;
        }
        let tools = alices.list_all_tools().await.unwrap();
        assert!(
            tools.iter().any(|tool| tool.name == "crm_added"),
            "legacy {legacy}: {:?}",
            tools.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
        alices.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_flood_of_list_changes_on_users_connections_makes_a_bounded_number_of_refreshes() {
    for legacy in [true, false] {
        let (env, _alice, _bob) = two_users(legacy).await;
        // Let the connections' list-change streams open (2026-07-28).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = env.up.tool_lists.load(Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        env.up.flood_list_changes(None, 2_000).await;
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let refreshes = env.up.tool_lists.load(Ordering::SeqCst) - before;
        // One refresh per 500 ms gap at most, across both users' connections, plus the one
        // in progress when the flood began.
        let bound = (started.elapsed().as_millis() / 500) as usize + 2;
        assert!(
            (1..=bound).contains(&refreshes),
            "legacy {legacy}: {refreshes} tools/list for 2 x 2000 notifications in {:?} \
             (bound {bound})",
            started.elapsed()
        );
    }
}

// === token exchange ===

#[tokio::test]
async fn a_sign_in_token_is_exchanged_for_the_users_upstream_token_by_either_grant() {
    use manifold::broker::upstream::{
        discovery,
        exchange::{Exchange, ExchangeError, Grant},
        outbound_for,
    };
    use manifold_adapters::Secret;
    let up = OAuthUpstream::new();
    let stop = CancellationToken::new();
    up.serve(stop.clone()).await;
    let url = url::Url::parse(&up.mcp_url()).unwrap();
    let outbound = Outbound::new(outbound_for(&url, &OutboundSettings::default())).unwrap();
    let found = discovery::discover(&outbound, &url).await.unwrap();
    let exchange = |grant: Grant, secret: &str| Exchange {
        token_url: url::Url::parse(found.server.token_endpoint.as_deref().unwrap()).unwrap(),
        client_id: PRE_CLIENT.into(),
        client_secret: Some(Secret::new(secret.to_owned())),
        grant,
        scopes: vec!["crm.read".into()],
        resource: Some(up.mcp_url()),
    };
    let carol = Secret::new("idp-carol".to_owned());
    for grant in [
        Grant::Rfc8693 {
            audience: Some("crm".into()),
        },
        Grant::EntraObo,
    ] {
        grant.offered_by(&found.server).unwrap();
        let exchanged = exchange(grant.clone(), PRE_SECRET)
            .exchange(&outbound, &carol)
            .await
            .unwrap();
        assert_eq!(
            up.user_of(exchanged.access.expose()).as_deref(),
            Some("carol"),
            "{grant:?}"
        );
        assert!(exchanged.expires_at.is_some());
        // A wrong client secret, or a token that is no sign-in token, gets nothing.
        let refused = exchange(grant.clone(), "wrong")
            .exchange(&outbound, &carol)
            .await;
        assert!(
            matches!(refused, Err(ExchangeError::Refused(ref code)) if code == "invalid_client"),
            "{refused:?}"
        );
        let refused = exchange(grant, PRE_SECRET)
            .exchange(&outbound, &Secret::new("at-carol-x".to_owned()))
            .await;
        assert!(
            matches!(refused, Err(ExchangeError::Refused(ref code)) if code == "invalid_grant"),
            "{refused:?}"
        );
    }
    let requests = up.token_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 6);
    stop.cancel();
}

/// A gateway whose users sign in with its own bearer tokens (`dev_tokens`), with `crm` on
/// `up` exchanging them by `grant`; and a way to mint a user's token.
async fn exchanging_gateway(
    up: &OAuthUpstream,
    exchange: &str,
) -> (
    app::RunningGateway,
    tempfile::TempDir,
    manifold::config::Config,
) {
    let dir = tempfile::tempdir().unwrap();
    let source = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:9"
call_timeout = "10s"
[storage]
data_dir = "{}"
[auth]
mode = "builtin"
sandbox_idp = true
dev_tokens = true
[adapters.crm]
kind = "mcp"
base_url = "{}"
[adapters.crm.settings]
auth = "token_exchange"
oauth_client_id = "{PRE_CLIENT}"
oauth_scopes = ["crm.read"]
token_exchange = {exchange}
"#,
        dir.path().display(),
        up.mcp_url()
    );
    let env = [(
        "MANIFOLD_ADAPTERS__CRM__CREDENTIALS__CLIENT_SECRET".to_owned(),
        PRE_SECRET.to_owned(),
    )];
    let registry = Registry::builtin();
    let path = Path::new("exchange.toml");
    let config = manifold::config::load_str(&source, path, &registry, &env).unwrap();
    let running = app::start(config, &source, path, &registry).await.unwrap();
    let config = manifold::config::load_str(&source, path, &registry, &env).unwrap();
    (running, dir, config)
}

/// A bearer token of the gateway for `user`.
async fn sign_in(config: &manifold::config::Config, dir: &Path, user: &str) -> String {
    let storage = manifold::storage::Storage::open(None, dir).await.unwrap();
    let state = manifold::auth::AuthState::from_config(config, storage, "http://127.0.0.1:9")
        .unwrap()
        .unwrap();
    let info = manifold::auth::UserInfo {
        sub: user.to_owned(),
        email: None,
        email_verified: false,
        groups: vec![],
    };
    state.dev_token(&info).await.unwrap()
}

#[tokio::test]
async fn with_token_exchange_each_user_reaches_the_upstream_as_themselves_without_connecting() {
    for exchange in [
        r#"{ grant = "rfc8693", audience = "crm" }"#,
        r#"{ grant = "entra_obo" }"#,
    ] {
        let up = OAuthUpstream::new();
        let stop = CancellationToken::new();
        up.serve(stop.clone()).await;
        let (running, dir, config) = exchanging_gateway(&up, exchange).await;
        let mcp = format!("http://{}/mcp", running.addr);
        let carol = sign_in(&config, dir.path(), "carol").await;
        let dave = sign_in(&config, dir.path(), "dave").await;
        // Carol's first request is what the gateway lists the upstream's tools with.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let answer = loop {
            let answer = support::demo::call_tool(&mcp, &carol, "crm_whoami", json!({})).await;
            let unknown = answer.to_string().contains("Unknown tool");
            if !unknown || tokio::time::Instant::now() > deadline {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(text(&answer), "you are carol", "{exchange}: {answer}");
        let answer = support::demo::call_tool(&mcp, &dave, "crm_whoami", json!({})).await;
        assert_eq!(text(&answer), "you are dave", "{exchange}: {answer}");
        // Exchanged once per user (then kept), and no code flow at all.
        let grants: Vec<Value> = up.token_requests.lock().unwrap().clone();
        assert_eq!(grants.len(), 2, "{exchange}: {grants:?}");
        assert!(grants.iter().all(|g| g["client_id"] == PRE_CLIENT));
        // The upstream refuses Carol's exchanged token once: traded again, the call goes on.
        up.reject.store(1, Ordering::SeqCst);
        let answer = support::demo::call_tool(&mcp, &carol, "crm_whoami", json!({})).await;
        assert_eq!(text(&answer), "you are carol", "{exchange}: {answer}");
        assert_eq!(up.token_requests.lock().unwrap().len(), 3, "{exchange}");
        // The sign-in tokens went to the authorization server only, never to the upstream.
        for header in up.authorizations.lock().unwrap().iter() {
            assert!(
                !header.contains(&carol) && !header.contains(&dave),
                "{header}"
            );
            assert!(
                header.is_empty() || header.starts_with("Bearer at-"),
                "{header}"
            );
        }
        stop.cancel();
        running.shutdown.cancel();
    }
}
