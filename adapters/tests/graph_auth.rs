//! The Graph tools with real OAuth tokens from the emulator's identity endpoints (expiry,
//! refresh-token rotation), and with Graph's 503 throttling: reads are resent after
//! `Retry-After`, writes are not.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod graph_support;

use std::time::{Duration, Instant};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use graph_support::{ALICE, Env};
use manifold_adapters::ToolError;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const VERIFIER: &str = "graph-pkce-code-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
const REDIRECT: &str = "http://127.0.0.1:1/callback";
const SCOPES: &str = "offline_access User.Read Team.ReadBasic.All Mail.Read Mail.Send";

/// Authorization code with PKCE (S256), as the token broker does it.
async fn authorize(env: &Env) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut url = reqwest::Url::parse(&format!("{}/oauth/authorize", env.base)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("client_id", "manifold"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("state", "s1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", SCOPES),
    ]);
    let response = client.get(url).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = reqwest::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let param = |key: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("s1"));
    param("code").expect("a code")
}

async fn token(env: &Env, form: &[(&str, &str)]) -> (u16, Value) {
    let response = env
        .http
        .post(format!("{}/oauth/token", env.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn expired_tokens_are_unauthorized_and_refresh_tokens_rotate() {
    let env = graph_support::start().await;
    let code = authorize(&env).await;
    let (status, body) = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "manifold"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(access.starts_with("graph_oauth_sandbox_"), "{access}");

    let teams = env.call_as("teams", "list_teams", json!({}), &access).await;
    assert_eq!(
        teams.expect("a fresh token works").structured["teams"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    env.control("/_sandbox/expire_tokens", json!({})).await;
    for (kind, tool) in [("teams", "list_teams"), ("outlook", "list_folders")] {
        let expired = env.call_as(kind, tool, json!({}), &access).await;
        assert!(
            matches!(expired, Err(ToolError::Unauthorized(ref m)) if m.contains("expired")),
            "{kind}.{tool}: {expired:?}"
        );
    }

    let (status, body) = token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "manifold"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["access_token"].as_str().unwrap().to_owned();
    let rotated = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(
        (fresh.as_str(), rotated.as_str()),
        (access.as_str(), refresh.as_str())
    );
    env.call_as("teams", "list_teams", json!({}), &fresh)
        .await
        .expect("the refreshed token works");
    // The granted Mail.Send makes the token a writer, as Graph's scope check would.
    env.call_as(
        "outlook",
        "send_message",
        json!({ "subject": "s", "body": "b", "to": ["bob@contoso.example"] }),
        &fresh,
    )
    .await
    .expect("Mail.Send was granted");

    // The old refresh token was single-use; the rotated one still works once.
    let (status, body) = token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "manifold"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rotated),
            ("client_id", "manifold"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn count(log: &[Value], method: &str, suffix: &str) -> usize {
    log.iter()
        .filter(|r| r["method"] == method && r["path"].as_str().unwrap().ends_with(suffix))
        .count()
}

#[tokio::test]
async fn reads_are_resent_after_503_and_writes_are_not() {
    let env = graph_support::start().await;
    let unavailable = json!({ "fail_next": 1, "retry_after_secs": 1 });

    // A read (GET, idempotent) waits Retry-After and is sent again.
    env.control("/_sandbox/unavailable", unavailable.clone())
        .await;
    let started = Instant::now();
    env.call_as("teams", "list_chats", json!({}), ALICE)
        .await
        .expect("the read succeeds once Graph is back");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(count(&env.requests().await, "GET", "/me/chats"), 2);

    // A write (POST, not idempotent) is sent once, and the error says it was not resent.
    let chat = env
        .call_as("teams", "list_chats", json!({}), ALICE)
        .await
        .unwrap();
    let chat = chat.structured["chats"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.control("/_sandbox/unavailable", unavailable.clone())
        .await;
    let sent = env
        .call_as(
            "teams",
            "send_chat_message",
            json!({ "chat_id": chat, "text": "once" }),
            ALICE,
        )
        .await;
    match &sent {
        Err(ToolError::Upstream {
            status: 503,
            message,
        }) => {
            assert!(message.contains("not resent"), "{message}");
            assert!(message.contains("1 s"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Ids go on the wire with every character outside RFC 3986 `unreserved` percent-encoded
    // (`19:…@thread.v2` as `19%3A…%40thread.v2`), as Graph's own SDKs send them.
    let encoded = percent_encoding::utf8_percent_encode(&chat, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2D", "-")
        .replace("%2E", ".")
        .replace("%5F", "_")
        .replace("%7E", "~");
    let path = format!("/chats/{encoded}/messages");
    assert_eq!(count(&env.requests().await, "POST", &path), 1);
    let lines = env
        .call_as(
            "teams",
            "list_chat_messages",
            json!({ "chat_id": chat, "limit": 5 }),
            ALICE,
        )
        .await
        .unwrap();
    assert_ne!(lines.structured["messages"][0]["text"], "once");

    // A 429 means Graph refused before acting: even the write is resent.
    env.control("/_sandbox/throttle", unavailable).await;
    env.call_as(
        "teams",
        "send_chat_message",
        json!({ "chat_id": chat, "text": "twice" }),
        ALICE,
    )
    .await
    .expect("resent after 429");
    assert_eq!(count(&env.requests().await, "POST", &path), 3);
}
