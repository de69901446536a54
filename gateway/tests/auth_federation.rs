//! Federation with an identity provider this project did not write: `oauth2-mock-server` (npm)
//! as the `[auth.oidc]` issuer of a gateway in mode builtin. The whole flow over HTTP: DCR,
//! `/authorize` with PKCE, the provider's authorize (auto-approving), the gateway's callback
//! (code exchange, id_token checked against the provider's JWKS), consent, `/token`, then
//! `tools/list` on `/mcp` with the access token, whose email and groups are the provider's.
//! Needs `npm ci` in tests/e2e/node (`.ci/run` does it); fails without it.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{
    mock_idp::MockIdp,
    oauth::{self, REDIRECT},
};

async fn gateway(idp: &MockIdp) -> support::TestGateway {
    let auth = format!(
        "[auth]\nmode = \"builtin\"\n[auth.oidc]\nissuer = \"{}\"\nclient_id = \"manifold-gateway\"\n\
         scopes = [\"openid\", \"email\"]\n{}",
        idp.issuer,
        support::LOOPBACK_OUTBOUND
    );
    support::start_with_extra_server(&auth, "public_url = \"http://127.0.0.1:0\"").await
}

fn carol() -> Value {
    json!({
        "sub": "idp-user-7",
        "email": "carol@idp.example",
        "groups": ["engineering", "oncall"],
    })
}

/// `/authorize` for `client_id`, then the provider's authorize: the gateway's callback answer.
async fn through_the_provider(
    base: &str,
    idp: &MockIdp,
    client_id: &str,
) -> (reqwest::Response, String) {
    let http = oauth::client();
    let response = http
        .get(oauth::authorize_url(base, client_id, REDIRECT))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let binding = support::broker::binding_cookie(&response, "manifold_login_");
    let to_idp = oauth::location(&response);
    assert!(
        to_idp.starts_with(&format!("{}/authorize?", idp.issuer)),
        "sent to the provider's authorization endpoint: {to_idp}"
    );
    let sent = oauth::query(&to_idp);
    assert_eq!(sent["client_id"], "manifold-gateway");
    assert_eq!(sent["redirect_uri"], format!("{base}/oauth/callback"));
    assert_eq!(sent["code_challenge_method"], "S256");
    assert!(!sent["nonce"].is_empty());
    let back = http.get(&to_idp).send().await.unwrap();
    assert!(back.status().is_redirection(), "{}", back.status());
    let callback_url = oauth::location(&back);
    assert!(
        callback_url.starts_with(&format!("{base}/oauth/callback?")),
        "{callback_url}"
    );
    let callback = http
        .get(&callback_url)
        .header("cookie", binding)
        .send()
        .await
        .unwrap();
    (callback, callback_url)
}

#[tokio::test]
async fn users_of_a_third_party_provider_get_tokens_carrying_its_email_and_groups() {
    let idp = MockIdp::start(&carol());
    let gw = gateway(&idp).await;
    let base = gw.base();
    let client_id = oauth::register(&base, json!([REDIRECT])).await;

    let (callback, _) = through_the_provider(&base, &idp, &client_id).await;
    let to_client = oauth::approve(&base, callback).await;
    assert!(to_client.starts_with(REDIRECT), "{to_client}");
    let answer = oauth::query(&to_client);
    assert_eq!(answer["iss"], base);
    assert_eq!(answer["state"], "st");

    let (status, tokens) = oauth::exchange(&base, &client_id, &answer["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = oauth::jwt_claims(access);
    assert_eq!(claims["iss"], base.as_str());
    assert_eq!(claims["aud"], format!("{base}/mcp"));
    assert_eq!(claims["sub"], "idp-user-7");
    assert_eq!(claims["email"], "carol@idp.example");
    assert_eq!(claims["groups"], json!(["engineering", "oncall"]));
    assert_eq!(claims["client_id"], client_id.as_str());

    let tools = oauth::tools_list(&gw.url(), access).await;
    assert!(tools.contains(&"t_echo".to_owned()), "{tools:?}");
}

#[tokio::test]
async fn id_tokens_for_another_audience_or_with_another_nonce_are_refused() {
    for (what, forged) in [
        ("aud", json!({"aud": "some-other-client"})),
        ("nonce", json!({"nonce": "not-the-gateways-nonce"})),
        ("iss", json!({"iss": "http://127.0.0.1:9"})),
        ("exp", json!({"exp": 1_000_000_000})),
    ] {
        let mut claims = carol();
        claims.as_object_mut().unwrap().extend(
            forged
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let idp = MockIdp::start(&claims);
        let gw = gateway(&idp).await;
        let base = gw.base();
        let client_id = oauth::register(&base, json!([REDIRECT])).await;
        let (callback, _) = through_the_provider(&base, &idp, &client_id).await;
        assert_eq!(callback.status(), 403, "an id_token with a forged {what}");
        assert!(
            callback.headers().get("set-cookie").is_none(),
            "no session from an id_token with a forged {what}"
        );
    }
}
