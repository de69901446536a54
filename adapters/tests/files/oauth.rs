//! The code flow with PKCE against an emulator's shared OAuth server (`/oauth/authorize`,
//! `/oauth/token`): a real access and refresh token for alice.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::Env;

pub const VERIFIER: &str = "files-pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
pub const REDIRECT: &str = "http://127.0.0.1:1/callback";

/// Posts a form to the token endpoint; returns the status and JSON body.
pub async fn token(env: &Env, form: &[(&str, &str)]) -> (u16, Value) {
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

/// Authorizes with an S256 challenge, exchanges the code; returns (access, refresh).
pub async fn tokens(env: &Env, scope: &str) -> (String, String) {
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
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", scope),
    ]);
    let response = client.get(url).send().await.expect("authorize");
    let location =
        reqwest::Url::parse(response.headers()["location"].to_str().expect("loc")).expect("url");
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let (status, body) = token(
        env,
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
    (
        body["access_token"].as_str().expect("at").to_owned(),
        body["refresh_token"].as_str().expect("rt").to_owned(),
    )
}
