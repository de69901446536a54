//! A tiny OpenID Connect provider for the demo and tests, mounted at `/sandbox-idp`: pick a user
//! (alice, bob, carol) on a plain HTML page, no password. Authorization code with PKCE S256 and
//! nonce, ES256 id_tokens with a key made at start. Only redirect URIs on this gateway are
//! accepted. Never for production: anyone can be anyone.

use std::{collections::HashMap, sync::Arc, time::Instant};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use dashmap::DashMap;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{authorize::see_other, consent::escape, store::now};

/// The sandbox users: id, email, groups.
pub const USERS: &[(&str, &str, &[&str])] = &[
    ("alice", "alice@example.com", &["staff", "writers"]),
    ("bob", "bob@example.com", &["staff"]),
    ("carol", "carol@example.com", &["contractors"]),
];

/// The sandbox user `name` as the gateway sees a logged-in user.
pub fn user(name: &str) -> Option<super::UserInfo> {
    USERS
        .iter()
        .find(|(id, ..)| *id == name)
        .map(|(id, email, groups)| super::UserInfo {
            sub: (*id).to_owned(),
            email: Some((*email).to_owned()),
            // The sandbox's own addresses, which it vouches for.
            email_verified: true,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        })
}

struct Code {
    user: &'static str,
    client_id: String,
    redirect_uri: String,
    nonce: Option<String>,
    challenge: String,
    at: Instant,
}

struct Idp {
    issuer: String,
    gateway: String,
    key: EncodingKey,
    jwk: Value,
    codes: DashMap<String, Code>,
}

/// The provider's routes, to nest under `/sandbox-idp` of the gateway at `gateway`.
pub fn routes(gateway: &str) -> Router {
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .ok()
        .and_then(|pkcs8| {
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).ok()?;
            let point = pair.public_key().as_ref().to_vec();
            Some((pkcs8, point))
        });
    let Some((pkcs8, point)) = pair else {
        tracing::error!("sandbox IdP: cannot generate a key; not mounted");
        return Router::new();
    };
    let x = URL_SAFE_NO_PAD.encode(point.get(1..33).unwrap_or_default());
    let y = URL_SAFE_NO_PAD.encode(point.get(33..65).unwrap_or_default());
    let idp = Arc::new(Idp {
        issuer: format!("{gateway}/sandbox-idp"),
        gateway: gateway.to_owned(),
        key: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
                               "kid": "sandbox", "x": x, "y": y}]}),
        codes: DashMap::new(),
    });
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(login_page).post(login))
        .route("/token", axum::routing::post(token))
        .route(
            "/jwks",
            get(|State(idp): State<Arc<Idp>>| async move { Json(idp.jwk.clone()) }),
        )
        .with_state(idp)
}

async fn discovery(State(idp): State<Arc<Idp>>) -> Json<Value> {
    let issuer = &idp.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}

/// The user picker; the original request rides along in hidden fields.
async fn login_page(
    State(idp): State<Arc<Idp>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let redirect = query.get("redirect_uri").cloned().unwrap_or_default();
    if !redirect.starts_with(&format!("{}/", idp.gateway)) {
        return bad("redirect_uri is not on this gateway");
    }
    let hidden: String = [
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "code_challenge",
    ]
    .iter()
    .filter_map(|key| {
        query.get(*key).map(|value| {
            format!(
                r#"<input type="hidden" name="{key}" value="{}">"#,
                escape(value)
            )
        })
    })
    .collect();
    let buttons: String = USERS
        .iter()
        .map(|(id, email, groups)| {
            format!(
                r#"<p><button type="submit" name="user" value="{id}">Sign in as {id}</button> {email} ({})</p>"#,
                groups.join(", ")
            )
        })
        .collect();
    Html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Sandbox sign-in</title></head>
<body><h1>Sandbox identity provider</h1><p>Demo only: pick a user, no password.</p>
<form method="post" action="/sandbox-idp/authorize">{hidden}{buttons}</form></body></html>"#
    ))
    .into_response()
}

async fn login(State(idp): State<Arc<Idp>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(&(user, ..)) = USERS
        .iter()
        .find(|(id, ..)| form.get("user").is_some_and(|u| u == id))
    else {
        return bad("unknown user");
    };
    let redirect = form.get("redirect_uri").cloned().unwrap_or_default();
    let Some(challenge) = form.get("code_challenge").cloned() else {
        return bad("PKCE is required");
    };
    let Ok(mut url) = url::Url::parse(&redirect) else {
        return bad("bad redirect_uri");
    };
    if !redirect.starts_with(&format!("{}/", idp.gateway)) {
        return bad("redirect_uri is not on this gateway");
    }
    idp.codes
        .retain(|_, code| code.at.elapsed().as_secs() < 120);
    let code = super::random_token();
    idp.codes.insert(
        code.clone(),
        Code {
            user,
            client_id: form.get("client_id").cloned().unwrap_or_default(),
            redirect_uri: redirect,
            nonce: form.get("nonce").cloned(),
            challenge,
            at: Instant::now(),
        },
    );
    url.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = form.get("state") {
        url.query_pairs_mut().append_pair("state", state);
    }
    see_other(url.as_str())
}

async fn token(State(idp): State<Arc<Idp>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |key: &str| form.get(key).map(String::as_str).unwrap_or_default();
    let Some((_, code)) = idp.codes.remove(get("code")) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    if code.at.elapsed().as_secs() >= 120
        || code.client_id != get("client_id")
        || code.redirect_uri != get("redirect_uri")
        || super::s256(get("code_verifier")) != code.challenge
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let Some(info) = user(code.user) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let now = now();
    let claims = json!({
        "iss": idp.issuer, "sub": info.sub, "aud": code.client_id, "iat": now, "exp": now + 300,
        "nonce": code.nonce, "email": info.email, "email_verified": info.email_verified,
        "groups": info.groups,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("sandbox".into());
    match jsonwebtoken::encode(&header, &claims, &idp.key) {
        Ok(id_token) => Json(json!({
            "access_token": super::random_token(), "token_type": "Bearer", "expires_in": 300,
            "id_token": id_token,
        }))
        .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
