//! The sandbox OAuth server as mounted by the Linear emulator: PKCE, refresh rotation, expiry.
#![allow(clippy::expect_used)]

mod common;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use manifold_adapters::ToolError;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const VERIFIER: &str = "a-very-long-pkce-code-verifier-0123456789-abcdefghijklmnop";
const REDIRECT: &str = "http://127.0.0.1:1/callback";

async fn authorize(env: &common::Env, method: &str) -> reqwest::Url {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut url = reqwest::Url::parse(&env.url("/oauth/authorize")).expect("url");
    url.query_pairs_mut().extend_pairs([
        ("client_id", "demo"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("state", "xyz"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", method),
        ("scope", "read write"),
    ]);
    let response = client.get(url).send().await.expect("authorize");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().expect("location");
    reqwest::Url::parse(location).expect("redirect url")
}

fn param(url: &reqwest::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn token(env: &common::Env, form: &[(&str, &str)]) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = env
        .http
        .post(env.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

#[tokio::test]
async fn code_flow_with_pkce_refresh_rotation_and_expiry() {
    let env = common::start().await;
    let redirect = authorize(&env, "S256").await;
    assert_eq!(param(&redirect, "state").as_deref(), Some("xyz"));
    let code = param(&redirect, "code").expect("code");

    let (status, body) = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "demo"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["expires_in"].as_u64().expect("expires_in") > 0);
    let access = body["access_token"].as_str().expect("access").to_owned();
    let refresh = body["refresh_token"].as_str().expect("refresh").to_owned();

    // The OAuth token works through the adapter as a Bearer token.
    let ctx = common::ctx(Some(&access));
    env.call_with("list_teams", json!({}), &ctx)
        .await
        .expect("bearer token accepted");

    // The code is single-use.
    let (status, body) = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "demo"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Expired access tokens are an authentication error.
    env.control("/_sandbox/expire_tokens", json!({})).await;
    assert!(matches!(
        env.call_with("list_teams", json!({}), &ctx).await,
        Err(ToolError::Unauthorized(_))
    ));

    // Refresh rotates: the new pair works, the old refresh token is rejected.
    let (status, body) = token(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "demo"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rotated = body["refresh_token"].as_str().expect("refresh");
    assert_ne!(rotated, refresh);
    let fresh = common::ctx(body["access_token"].as_str());
    env.call_with("list_teams", json!({}), &fresh)
        .await
        .expect("refreshed token accepted");
    let (status, body) = token(
        &env,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn wrong_verifier_and_plain_pkce_are_rejected() {
    let env = common::start().await;
    let code = param(&authorize(&env, "S256").await, "code").expect("code");
    let (status, body) = token(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "demo"),
            ("code_verifier", "not-the-verifier"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let plain = authorize(&env, "plain").await;
    assert_eq!(param(&plain, "error").as_deref(), Some("invalid_request"));
    assert!(param(&plain, "code").is_none());
    let (status, body) = token(&env, &[("grant_type", "password")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}
