//! Sign-in as ChatGPT does it (REFERENCE.md, "ChatGPT as a client"): a Client ID Metadata
//! Document served on loopback (fetched once, then cached; its redirect URIs are the only
//! ones); RFC 9207 `iss` on every authorization response, errors included, byte-identical to
//! the issuer of the metadata; no `scope` gets the default scopes; the UserInfo endpoint; and a
//! refresh retried within the grace window getting the same pair instead of revoking the grant,
//! while a reuse outside it (or a second retry) still revokes it.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, http::header, routing::get};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::oauth::{self, FormBody, REDIRECT, VERIFIER};

const CHATGPT_REDIRECT: &str = "https://chatgpt.com/connector_platform_oauth_redirect";

async fn gateway(extra_auth: &str) -> support::TestGateway {
    let auth = format!(
        "[auth]\nmode = \"builtin\"\nsandbox_idp = true\ndev_tokens = true\n\
         allow_insecure_client_metadata = true\n{extra_auth}{}",
        support::LOOPBACK_OUTBOUND
    );
    support::start_with_extra_server(&auth, "public_url = \"http://127.0.0.1:0\"").await
}

async fn metadata(base: &str) -> Value {
    oauth::client()
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Parameters changed from the defaults of [`authorize_url`]; `None` drops one.
type Changes<'a> = Vec<(&'a str, Option<&'a str>)>;

/// `/authorize` for `client_id` with these parameters over the defaults (PKCE S256, state `st`,
/// [`REDIRECT`]); `None` drops a default.
fn authorize_url(base: &str, client_id: &str, changes: &[(&str, Option<&str>)]) -> url::Url {
    let challenge = oauth::s256(VERIFIER);
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    for (key, value) in changes {
        params.retain(|(k, _)| k != key);
        if let Some(value) = value {
            params.push((key, value));
        }
    }
    url::Url::parse_with_params(&format!("{base}/authorize"), &params).unwrap()
}

/// The raw `iss` of a redirect's query, percent-decoded: what a client compares byte for byte.
fn iss_of(location: &str) -> String {
    let query = oauth::query(location);
    query
        .get("iss")
        .cloned()
        .unwrap_or_else(|| panic!("no iss in {location}"))
}

/// The browser leg as alice, up to the client's redirect: consent is asked the first time only.
async fn sign_in(base: &str, authorize: url::Url) -> String {
    let http = oauth::client();
    let response = http.get(authorize).send().await.unwrap();
    let binding = support::broker::binding_cookie(&response, "manifold_login_");
    let login = oauth::pick_user(&http, base, &oauth::location(&response), "alice").await;
    let callback = http
        .get(oauth::location(&login))
        .header("cookie", binding)
        .send()
        .await
        .unwrap();
    if callback.status().is_redirection() {
        return oauth::location(&callback);
    }
    oauth::approve(base, callback).await
}

/// A client's full grant for alice (login, consent, code exchange): the tokens.
async fn tokens_for(base: &str, client_id: &str, changes: &[(&str, Option<&str>)]) -> Value {
    let to_client = sign_in(base, authorize_url(base, client_id, changes)).await;
    let answer = oauth::query(&to_client);
    let (status, tokens) = oauth::exchange(base, client_id, &answer["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn refresh(base: &str, client_id: &str, token: &str) -> (StatusCode, Value) {
    let response = oauth::client()
        .post(format!("{base}/token"))
        .form_body(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn iss_is_on_every_authorization_response_byte_identical_to_the_metadata_issuer() {
    let gw = gateway("").await;
    let base = gw.base();
    let meta = metadata(&base).await;
    let issuer = meta["issuer"].as_str().unwrap().to_owned();
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    let client_id = oauth::register(&base, json!([REDIRECT, CHATGPT_REDIRECT])).await;

    // Refusals sent back to the client: each with `iss`, `state` and its error.
    let refusals: Vec<(Changes, &str)> = vec![
        (
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (vec![("response_type", None)], "unsupported_response_type"),
        (vec![("code_challenge", None)], "invalid_request"),
        (
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (vec![("code_challenge", Some("short"))], "invalid_request"),
        (
            vec![("resource", Some("https://other.example/mcp"))],
            "invalid_target",
        ),
        (vec![("scope", Some("mcp admin"))], "invalid_scope"),
    ];
    for (changes, error) in refusals {
        let response = oauth::client()
            .get(authorize_url(&base, &client_id, &changes))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "{changes:?}");
        let location = oauth::location(&response);
        assert!(location.starts_with(REDIRECT), "{location}");
        let query = oauth::query(&location);
        assert_eq!(query["error"], error, "{changes:?}");
        assert_eq!(query["state"], "st");
        assert_eq!(
            iss_of(&location).as_bytes(),
            issuer.as_bytes(),
            "{changes:?}"
        );
    }

    // The user denying consent: an error redirect, with `iss`.
    let http = oauth::client();
    let started = http
        .get(authorize_url(&base, &client_id, &[]))
        .send()
        .await
        .unwrap();
    let binding = support::broker::binding_cookie(&started, "manifold_login_");
    let login = oauth::pick_user(&http, &base, &oauth::location(&started), "bob").await;
    let callback = http
        .get(oauth::location(&login))
        .header("cookie", binding)
        .send()
        .await
        .unwrap();
    let cookie = callback.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let consent = callback.text().await.unwrap();
    let denied = http
        .post(format!("{base}/authorize/consent"))
        .header("cookie", cookie)
        .form_body(&[
            ("request", oauth::hidden(&consent, "request")),
            ("decision", "deny".into()),
        ])
        .send()
        .await
        .unwrap();
    let location = oauth::location(&denied);
    assert_eq!(oauth::query(&location)["error"], "access_denied");
    assert_eq!(iss_of(&location).as_bytes(), issuer.as_bytes());

    // And the success, to ChatGPT's stable redirect.
    let to_client = oauth::sandbox_authorize(
        &base,
        authorize_url(
            &base,
            &client_id,
            &[("redirect_uri", Some(CHATGPT_REDIRECT))],
        ),
        "alice",
    )
    .await;
    assert!(to_client.starts_with(CHATGPT_REDIRECT), "{to_client}");
    assert!(oauth::query(&to_client).contains_key("code"));
    assert_eq!(iss_of(&to_client).as_bytes(), issuer.as_bytes());
}

#[tokio::test]
async fn an_authorization_request_without_scope_gets_the_default_scopes() {
    let gw = gateway("scopes = [\"mcp\", \"openid\", \"email\"]\n").await;
    let base = gw.base();
    let client_id = oauth::register(&base, json!([REDIRECT])).await;
    for changes in [vec![("scope", None)], vec![("scope", Some(""))]] {
        let tokens = tokens_for(&base, &client_id, &changes).await;
        assert_eq!(tokens["scope"], "mcp openid email", "{changes:?}");
        let claims = oauth::jwt_claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(claims["scope"], "mcp openid email");
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(oauth::mcp_status(&gw.url(), access).await, 200);
    }
    // A narrower request stays narrower.
    let tokens = tokens_for(&base, &client_id, &[("scope", Some("mcp"))]).await;
    assert_eq!(tokens["scope"], "mcp");
}

#[tokio::test]
async fn userinfo_names_the_user_of_a_bearer_token_with_email_and_email_verified() {
    let gw = gateway("").await;
    let base = gw.base();
    let meta = metadata(&base).await;
    let endpoint = meta["userinfo_endpoint"].as_str().unwrap().to_owned();
    assert_eq!(endpoint, format!("{base}/userinfo"));
    let openid: Value = oauth::client()
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openid["userinfo_endpoint"], endpoint.as_str());

    let client_id = oauth::register(&base, json!([REDIRECT])).await;
    let tokens = tokens_for(&base, &client_id, &[]).await;
    let access = tokens["access_token"].as_str().unwrap();
    for post in [false, true] {
        let request = if post {
            oauth::client().post(&endpoint)
        } else {
            oauth::client().get(&endpoint)
        };
        let response = request.bearer_auth(access).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"sub": "alice", "email": "alice@example.com", "email_verified": true})
        );
    }

    // No token, a broken one, a revoked grant: 401 with the RFC 6750 challenge.
    let missing = oauth::client().get(&endpoint).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert!(missing.headers().contains_key("www-authenticate"));
    let broken = format!("{access}x");
    let refused = oauth::client()
        .get(&endpoint)
        .bearer_auth(&broken)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let revoked = oauth::client()
        .post(format!("{base}/revoke"))
        .form_body(&[("token", tokens["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let after = oauth::client()
        .get(&endpoint)
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "a revoked grant's token names no one");
}

#[tokio::test]
async fn a_refresh_retried_within_the_grace_window_gets_the_same_pair_once() {
    let gw = gateway("").await;
    let base = gw.base();
    let client_id = oauth::register(&base, json!([REDIRECT])).await;
    let tokens = tokens_for(&base, &client_id, &[]).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();

    let (status, rotated) = refresh(&base, &client_id, &first).await;
    assert_eq!(status, 200, "{rotated}");
    // The answer was lost on the way; the client retries with the same token.
    let (status, retried) = refresh(&base, &client_id, &first).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried, rotated, "the same pair again");
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(oauth::mcp_status(&gw.url(), access).await, 200);

    // Another client may not take the retry.
    let other = oauth::register(&base, json!([REDIRECT])).await;
    let tokens = tokens_for(&base, &client_id, &[]).await;
    let token = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&base, &client_id, &token).await.0, 200);
    let (status, body) = refresh(&base, &other, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(oauth::mcp_status(&gw.url(), access).await, 401, "revoked");

    // The rotated token goes on working; a second retry of the first is a replay, which
    // revokes the whole family.
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = refresh(&base, &client_id, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = refresh(&base, &client_id, &second).await;
    assert_eq!(status, 400, "the family is revoked");
    assert_eq!(oauth::mcp_status(&gw.url(), access).await, 401);
}

#[tokio::test]
async fn a_refresh_reused_outside_the_grace_window_revokes_the_family() {
    let gw = gateway("refresh_retry_grace = \"1s\"\n").await;
    let base = gw.base();
    let client_id = oauth::register(&base, json!([REDIRECT])).await;
    let tokens = tokens_for(&base, &client_id, &[]).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = refresh(&base, &client_id, &first).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let (status, body) = refresh(&base, &client_id, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let second = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&base, &client_id, second).await.0, 400, "revoked");
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(oauth::mcp_status(&gw.url(), access).await, 401);

    // With the window off, any reuse revokes.
    let strict = gateway("refresh_retry_grace = \"0s\"\n").await;
    let base = strict.base();
    let client_id = oauth::register(&base, json!([REDIRECT])).await;
    let tokens = tokens_for(&base, &client_id, &[]).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (_, rotated) = refresh(&base, &client_id, &first).await;
    assert_eq!(refresh(&base, &client_id, &first).await.0, 400);
    let second = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&base, &client_id, second).await.0, 400);
}

/// A ChatGPT-style document (`…/oauth/client.json`) on loopback, counting its fetches.
async fn chatgpt_document() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let document = json!({
        "client_id": format!("{base}/oauth/client.json"),
        "client_name": "ChatGPT",
        "client_uri": "https://chatgpt.com",
        "redirect_uris": [CHATGPT_REDIRECT, REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
    .to_string();
    let counter = hits.clone();
    let router = Router::new().route(
        "/oauth/client.json",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let document = document.clone();
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "public, max-age=600"),
                    ],
                    document,
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, hits)
}

#[tokio::test]
async fn a_chatgpt_style_metadata_document_is_fetched_once_and_its_redirects_are_the_only_ones() {
    let (documents, hits) = chatgpt_document().await;
    let gw = gateway("").await;
    let base = gw.base();
    assert_eq!(
        metadata(&base).await["client_id_metadata_document_supported"],
        true
    );
    let client_id = format!("{documents}/oauth/client.json");

    let tokens = tokens_for(&base, &client_id, &[]).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(oauth::jwt_claims(access)["client_id"], client_id.as_str());
    let fetched = hits.load(Ordering::SeqCst);
    assert!(fetched >= 1);

    // Again, to ChatGPT's redirect: served from the cache.
    let again = oauth::client()
        .get(authorize_url(
            &base,
            &client_id,
            &[("redirect_uri", Some(CHATGPT_REDIRECT))],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 302);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        fetched,
        "cached, not fetched again"
    );

    // A redirect the document does not list: refused on the gateway's page, never followed.
    for redirect in [
        "https://chatgpt.com/connector/oauth/abc",
        "https://chatgpt.com/connector_platform_oauth_redirect/",
        "https://evil.example/cb",
    ] {
        let refused = oauth::client()
            .get(authorize_url(
                &base,
                &client_id,
                &[("redirect_uri", Some(redirect))],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{redirect}");
        assert!(refused.headers().get("location").is_none(), "{redirect}");
    }
}
