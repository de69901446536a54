//! The authorization server and resource server refusing what they must: missing, expired,
//! forged, foreign tokens; replayed codes (which revoke their tokens); redirect URI and PKCE
//! mismatches; reused and revoked refresh tokens; registration abuse; another user on a session.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;

use manifold::auth::{AuthState, keys::AccessClaims};
use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};

/// `application/x-www-form-urlencoded` bodies (reqwest's `form` feature is not enabled).
trait FormBody {
    fn form_body<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const VERIFIER: &str = "verifier-verifier-verifier-verifier-verifier-0123";
const AUTH: &str = "[auth]\nmode = \"builtin\"\nsandbox_idp = true\ndev_tokens = true\n\
                    [outbound]\nallow_http = true\nallowed_cidrs = [\"127.0.0.0/8\"]\n";

async fn gateway() -> support::TestGateway {
    support::start_with_extra_server(AUTH, "public_url = \"http://127.0.0.1:0\"").await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

async fn register(base: &str, uris: Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{base}/register"))
        .json(&json!({"client_name": "t", "redirect_uris": uris}))
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

/// Runs the browser leg as `user` and returns the code (or the redirect's query on errors).
async fn authorize(base: &str, client_id: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let http = client();
    let challenge = s256(VERIFIER);
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("state", "st"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (key, value) in extra {
        params.retain(|(k, _)| k != key);
        params.push((key, value));
    }
    let url = url::Url::parse_with_params(&format!("{base}/authorize"), &params).unwrap();
    let response = http.get(url).send().await.unwrap();
    let to_idp = location(&response);
    if to_idp.starts_with(REDIRECT) {
        return query(&to_idp);
    }
    let binding = support::broker::binding_cookie(&response, "manifold_login_");
    let login = support::oauth::pick_user(&http, base, &to_idp, "alice").await;
    let callback = http
        .get(location(&login))
        .header("cookie", binding)
        .send()
        .await
        .unwrap();
    if callback.status().is_redirection() {
        // Consented before: straight back with a code.
        return query(&location(&callback));
    }
    let cookie = callback.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let consent = callback.text().await.unwrap();
    let approved = http
        .post(format!("{base}/authorize/consent"))
        .header("cookie", cookie)
        .form_body(&[
            ("request", hidden(&consent, "request")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    query(&location(&approved))
}

async fn token(base: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{base}/token"))
        .form_body(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn mcp_status(gw: &support::TestGateway, token: &str, session: Option<&str>) -> StatusCode {
    let mut request = client()
        .post(gw.url())
        .header("content-type", "application/json")
        .header("accept", support::ACCEPT)
        .header("authorization", format!("Bearer {token}"));
    let body = match session {
        Some(id) => {
            request = request
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-06-18");
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#.to_owned()
        }
        None => support::initialize_body("2025-06-18"),
    };
    request.body(body).send().await.unwrap().status()
}

/// A client, a code for alice, and its exchange.
async fn full_grant(base: &str) -> (String, Value) {
    let (_, registered) = register(base, json!([REDIRECT])).await;
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let code = authorize(base, &client_id, &[]).await["code"].clone();
    let (status, tokens) = token(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    (client_id, json!({"code": code, "tokens": tokens}))
}

async fn state_for(gw: &support::TestGateway, public_url: &str) -> std::sync::Arc<AuthState> {
    let source = support::config(
        gw.dir.path(),
        AUTH,
        &format!("public_url = \"{public_url}\""),
    );
    let registry = support::registry(&gw.probe);
    let config =
        manifold::config::load_str(&source, std::path::Path::new("t.toml"), &registry, &[])
            .unwrap();
    let storage = manifold::storage::Storage::open(None, gw.dir.path())
        .await
        .unwrap();
    AuthState::from_config(&config, storage, public_url)
        .unwrap()
        .unwrap()
}

fn claims(iss: &str, aud: &str, exp_offset: i64) -> AccessClaims {
    let now = manifold::auth::store::now();
    AccessClaims {
        iss: iss.into(),
        sub: "alice".into(),
        aud: aud.into(),
        exp: now + exp_offset,
        iat: now,
        jti: "j".into(),
        client_id: "c".into(),
        scope: "mcp".into(),
        email: None,
        email_verified: false,
        groups: vec![],
        fid: None,
    }
}

#[tokio::test]
async fn tokens_missing_expired_forged_or_for_another_resource_or_issuer_are_refused() {
    let gw = gateway().await;
    let base = gw.base();
    let response = client().post(gw.url()).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains(&format!(
        "resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
    )));
    let state = state_for(&gw, &base).await;
    let good = state
        .sign(&claims(&base, &format!("{base}/mcp"), 60))
        .await
        .unwrap();
    assert_eq!(mcp_status(&gw, &good, None).await, 200);
    let expired = state
        .sign(&claims(&base, &format!("{base}/mcp"), -120))
        .await
        .unwrap();
    assert_eq!(mcp_status(&gw, &expired, None).await, 401);
    let other_aud = state
        .sign(&claims(&base, "https://other.example/mcp", 60))
        .await
        .unwrap();
    assert_eq!(mcp_status(&gw, &other_aud, None).await, 401);
    let other_iss = state
        .sign(&claims("https://evil.example", &format!("{base}/mcp"), 60))
        .await
        .unwrap();
    assert_eq!(mcp_status(&gw, &other_iss, None).await, 401);
    let mut forged = good.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(mcp_status(&gw, &forged, None).await, 401);
}

#[tokio::test]
async fn replayed_code_is_refused_and_revokes_its_tokens() {
    let gw = gateway().await;
    let base = gw.base();
    let (client_id, grant) = full_grant(&base).await;
    let access = grant["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&gw, access, None).await, 200);
    let code = grant["code"].as_str().unwrap();
    let (status, body) = token(
        &base,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(mcp_status(&gw, access, None).await, 401);
    let refresh = grant["tokens"]["refresh_token"].as_str().unwrap();
    let (status, _) = token(
        &base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn redirect_mismatch_and_pkce_problems_are_refused() {
    let gw = gateway().await;
    let base = gw.base();
    let (_, registered) = register(&base, json!([REDIRECT])).await;
    let client_id = registered["client_id"].as_str().unwrap();
    let url = format!(
        "{base}/authorize?response_type=code&client_id={client_id}&redirect_uri=http://127.0.0.1:9/other&code_challenge={}&code_challenge_method=S256",
        s256(VERIFIER)
    );
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 400, "no redirect to an unregistered URI");
    let plain = authorize(&base, client_id, &[("code_challenge_method", "plain")]).await;
    assert_eq!(plain["error"], "invalid_request");
    let code = authorize(&base, client_id, &[]).await["code"].clone();
    let exchange = |verifier: Option<&'static str>, code: String| {
        let base = base.clone();
        let client_id = client_id.to_owned();
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT.to_owned()),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v.to_owned()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token(&base, &form).await
        }
    };
    let (status, body) = exchange(None, code).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = authorize(&base, client_id, &[]).await["code"].clone();
    let wrong = "wrong-verifier-wrong-verifier-wrong-verifier-0000";
    let (status, body) = exchange(Some(wrong), code).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn refresh_reuse_revokes_the_family_and_revoked_refresh_fails() {
    let gw = gateway().await;
    let base = gw.base();
    let (client_id, grant) = full_grant(&base).await;
    let first = grant["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = |token_value: String| {
        let base = base.clone();
        let client_id = client_id.clone();
        async move {
            token(
                &base,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token_value),
                    ("client_id", &client_id),
                ],
            )
            .await
        }
    };
    let (status, rotated) = refresh(first.clone()).await;
    assert_eq!(status, 200);
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let (status, retried) = refresh(first.clone()).await;
    assert_eq!(
        (status, &retried),
        (StatusCode::OK, &rotated),
        "one retry within auth.refresh_retry_grace gets the same pair (chatgpt_signin.rs)"
    );
    let (status, _) = refresh(first).await;
    assert_eq!(status, 400, "reuse refused");
    let (status, _) = refresh(second).await;
    assert_eq!(status, 400, "the whole family is revoked");

    let (_, grant) = full_grant(&base).await;
    let refresh_token = grant["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = client()
        .post(format!("{base}/revoke"))
        .form_body(&[("token", refresh_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let access = grant["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&gw, access, None).await, 401);
}

#[tokio::test]
async fn registration_abuse_is_refused() {
    let gw = gateway().await;
    let base = gw.base();
    let many: Vec<String> = (0..6).map(|i| format!("https://a.example/{i}")).collect();
    assert_eq!(register(&base, json!(many)).await.0, 400);
    assert_eq!(register(&base, json!([])).await.0, 400);
    assert_eq!(
        register(&base, json!(["http://evil.example/cb"])).await.0,
        400
    );
    assert_eq!(register(&base, json!(["javascript:alert(1)"])).await.0, 400);
    let long = format!("https://a.example/{}", "x".repeat(600));
    assert_eq!(register(&base, json!([long])).await.0, 400);
    let chatgpt = json!([
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "https://chatgpt.com/connector/oauth/abc"
    ]);
    assert_eq!(register(&base, chatgpt).await.0, 201);
}

#[tokio::test]
async fn a_session_of_alice_refuses_bobs_token() {
    let gw = gateway().await;
    let base = gw.base();
    let state = state_for(&gw, &base).await;
    let alice = state
        .sign(&claims(&base, &format!("{base}/mcp"), 60))
        .await
        .unwrap();
    let mut bob_claims = claims(&base, &format!("{base}/mcp"), 60);
    bob_claims.sub = "bob".into();
    let bob = state.sign(&bob_claims).await.unwrap();
    let response = client()
        .post(gw.url())
        .header("content-type", "application/json")
        .header("accept", support::ACCEPT)
        .header("authorization", format!("Bearer {alice}"))
        .body(support::initialize_body("2025-06-18"))
        .send()
        .await
        .unwrap();
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(mcp_status(&gw, &bob, Some(&session)).await, 403);
    assert_ne!(mcp_status(&gw, &alice, Some(&session)).await, 403);
}
