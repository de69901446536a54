//! The client and browser side of the OAuth flows, as plain HTTP: registration, the authorize
//! leg (following redirects by hand), consent, the token endpoint and an MCP `tools/list` with
//! the resulting token.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;

use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};

/// A redirect URI on loopback (nothing listens there: the tests read the redirect, never follow).
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
pub const VERIFIER: &str = "verifier-verifier-verifier-verifier-verifier-0123";

/// `application/x-www-form-urlencoded` bodies (reqwest's `form` feature is not enabled).
pub trait FormBody {
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

/// A client that does not follow redirects, so each hop can be checked.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on a {} response", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The value of the hidden form field `name` in `html`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

/// The payload of a JWT, not verified (the gateway already accepted or refused it).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `POST /register` with `redirect_uris`: the new client_id.
pub async fn register(base: &str, uris: Value) -> String {
    let response = client()
        .post(format!("{base}/register"))
        .json(&json!({"client_name": "federation test", "redirect_uris": uris}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["client_id"].as_str().unwrap().to_owned()
}

/// The `/authorize` URL for `client_id` with PKCE S256 over [`VERIFIER`] and state `st`.
pub fn authorize_url(base: &str, client_id: &str, redirect_uri: &str) -> url::Url {
    url::Url::parse_with_params(
        &format!("{base}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("state", "st"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap()
}

/// The gateway's `/oauth/callback` answer (login finished): approves the consent page it shows
/// and returns the client's redirect (with `code`, `iss`, `state`).
pub async fn approve(base: &str, callback: reqwest::Response) -> String {
    assert_eq!(
        callback.status(),
        200,
        "the callback shows the consent page"
    );
    let cookie = callback.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let consent = callback.text().await.unwrap();
    let approved = client()
        .post(format!("{base}/authorize/consent"))
        .header("cookie", cookie)
        .form_body(&[
            ("request", hidden(&consent, "request")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    assert!(approved.status().is_redirection(), "{}", approved.status());
    location(&approved)
}

/// Opens the sandbox IdP's page at `to_idp` and picks `user` there; the answer redirects to the
/// gateway's login callback.
pub async fn pick_user(
    http: &reqwest::Client,
    base: &str,
    to_idp: &str,
    user: &str,
) -> reqwest::Response {
    let page = http.get(to_idp).send().await.unwrap().text().await.unwrap();
    let mut form: Vec<(String, String)> = [
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "code_challenge",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), hidden(&page, k)))
    .collect();
    form.push(("user".into(), user.into()));
    http.post(format!("{base}/sandbox-idp/authorize"))
        .form_body(&form)
        .send()
        .await
        .unwrap()
}

/// The browser leg through the sandbox identity provider, signed in as `user`, up to the
/// client's redirect.
pub async fn sandbox_authorize(base: &str, authorize: url::Url, user: &str) -> String {
    let http = client();
    let response = http.get(authorize).send().await.unwrap();
    let binding = super::broker::binding_cookie(&response, "manifold_login_");
    let login = pick_user(&http, base, &location(&response), user).await;
    let callback = http
        .get(location(&login))
        .header("cookie", binding)
        .send()
        .await
        .unwrap();
    approve(base, callback).await
}

/// `POST /token` exchanging `code` for `client_id` with [`VERIFIER`].
pub async fn exchange(base: &str, client_id: &str, code: &str) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{base}/token"))
        .form_body(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// `initialize` on `/mcp` with `token`: the status only.
pub async fn mcp_status(mcp_url: &str, token: &str) -> StatusCode {
    client()
        .post(mcp_url)
        .header("content-type", "application/json")
        .header("accept", super::ACCEPT)
        .header("authorization", format!("Bearer {token}"))
        .body(super::initialize_body("2025-06-18"))
        .send()
        .await
        .unwrap()
        .status()
}

/// A session opened with `token`, then `tools/list`: the tool names.
pub async fn tools_list(mcp_url: &str, token: &str) -> Vec<String> {
    let http = client();
    let auth = format!("Bearer {token}");
    let (status, headers, _, body) = super::post(
        &http,
        mcp_url,
        &[("authorization", &auth)],
        &super::initialize_body("2025-06-18"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    let session_headers = [
        ("authorization", auth.as_str()),
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let (status, ..) = super::post(
        &http,
        mcp_url,
        &session_headers,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(status, 202);
    let (status, _, messages, body) = super::post(
        &http,
        mcp_url,
        &session_headers,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    messages[0]["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {body}"))
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}
