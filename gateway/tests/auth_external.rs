//! Mode external: access tokens of another authorization server (`oauth2-mock-server` from npm,
//! a server this project did not write) are accepted on `/mcp` when signed by a key of its JWKS
//! for the right issuer and audience and not expired; every other token gets 401. Needs
//! `npm ci` in tests/e2e/node (`.ci/run` does it); fails without it.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{mock_idp::MockIdp, oauth};

fn user() -> Value {
    json!({"sub": "ext-user-1", "email": "dana@as.example", "groups": ["ops"]})
}

async fn gateway(issuer: &str) -> support::TestGateway {
    let auth = format!(
        "[auth]\nmode = \"external\"\n[auth.external]\nissuer = \"{issuer}\"\n\
         jwks_url = \"{issuer}/jwks\"\n{}",
        support::LOOPBACK_OUTBOUND
    );
    support::start_with_extra_server(&auth, "public_url = \"http://127.0.0.1:0\"").await
}

#[tokio::test]
async fn tokens_of_the_external_server_are_accepted_and_foreign_ones_refused() {
    let server = MockIdp::start(&user());
    let gw = gateway(&server.issuer).await;
    let mcp = gw.url();
    let audience = format!("{}/mcp", gw.base());
    let none = json!({});

    let good = server.token(&audience, &none, &none).await;
    assert_eq!(oauth::jwt_claims(&good)["iss"], server.issuer.as_str());
    assert_eq!(oauth::mcp_status(&mcp, &good).await, 200);
    let tools = oauth::tools_list(&mcp, &good).await;
    assert!(tools.contains(&"t_echo".to_owned()), "{tools:?}");

    let other_audience = server
        .token("https://other.example/mcp", &none, &none)
        .await;
    let other_issuer = server
        .token(&audience, &json!({"iss": "http://127.0.0.1:9"}), &none)
        .await;
    let now = manifold::auth::store::now();
    let expired = server
        .token(
            &audience,
            &json!({"iat": now - 600, "exp": now - 120}),
            &none,
        )
        .await;
    let no_subject = server.token(&audience, &json!({"sub": null}), &none).await;
    let empty_subject = server.token(&audience, &json!({"sub": ""}), &none).await;
    for (what, token) in [
        ("another audience", &other_audience),
        ("another issuer", &other_issuer),
        ("expired", &expired),
        ("no subject", &no_subject),
        ("an empty subject", &empty_subject),
    ] {
        assert_eq!(oauth::mcp_status(&mcp, token).await, 401, "{what}");
    }

    // Another server's key, claiming to be the trusted issuer: by its own key id, and by the
    // trusted server's key id.
    let impostor = MockIdp::start(&user());
    let claims = json!({"iss": server.issuer});
    let unknown_key = impostor.token(&audience, &claims, &none).await;
    let borrowed_kid = impostor
        .token(&audience, &claims, &json!({"kid": server.kid().await}))
        .await;
    assert_eq!(oauth::mcp_status(&mcp, &unknown_key).await, 401);
    assert_eq!(oauth::mcp_status(&mcp, &borrowed_kid).await, 401);

    // Unsigned, and a token that is not a JWT at all.
    let mut parts: Vec<&str> = good.split('.').collect();
    let unsigned_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    parts[0] = unsigned_header;
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(oauth::mcp_status(&mcp, &unsigned).await, 401);
    assert_eq!(oauth::mcp_status(&mcp, "not-a-jwt").await, 401);

    assert_eq!(oauth::mcp_status(&mcp, &good).await, 200, "still accepted");
}
