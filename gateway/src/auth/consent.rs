//! The per-client consent page: the user approves each new client once. The form carries the
//! pending request sealed with the keyring and bound to the browser session's random id, which
//! makes it its own CSRF token: a form made for one session does not open in another.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    AuthState, UserInfo,
    authorize::{self, Pending, error_page},
    cookie,
    store::now,
};

/// How long a consent form stays valid.
const FORM_SECS: i64 = 600;

#[derive(Serialize, Deserialize)]
struct Form {
    pending: Pending,
    sub: String,
    exp: i64,
}

fn context(sid: &str) -> String {
    format!("consent:{sid}")
}

/// HTML-escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The consent page for `pending`.
pub(crate) fn page(state: &AuthState, user: &UserInfo, sid: &str, pending: &Pending) -> Response {
    let Some(builtin) = state.builtin() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let form = Form {
        pending: pending.clone(),
        sub: user.sub.clone(),
        exp: now() + FORM_SECS,
    };
    let Ok(json) = serde_json::to_vec(&form) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server error");
    };
    let sealed = builtin.keyring.seal(&json, &context(sid));
    let host = url::Url::parse(&pending.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let who = user.email.as_deref().unwrap_or(&user.sub);
    let body = format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Allow access?</title></head>
<body>
<h1>Allow {name} to use Manifold as you?</h1>
<p>Signed in as <b>{who}</b>.</p>
<p><b>{name}</b> (<code>{client_id}</code>) will receive access to your tools at
<code>{resource}</code> with scope <code>{scope}</code>, and will be sent back to
<b>{host}</b>.</p>
<form method="post" action="/authorize/consent">
<input type="hidden" name="request" value="{sealed}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>"#,
        name = escape(&pending.client_name),
        client_id = escape(&pending.client_id),
        who = escape(who),
        resource = escape(&pending.resource),
        scope = escape(&pending.scope),
        host = escape(&host),
        sealed = escape(&sealed),
    );
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        Html(body),
    )
        .into_response()
}

/// `POST /authorize/consent`: approve or deny.
pub async fn decide(
    State(state): State<Arc<AuthState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(builtin) = state.builtin() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let fields: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(session) = cookie::session(&state, &headers) else {
        return error_page(
            StatusCode::FORBIDDEN,
            "not signed in (or the session expired)",
        );
    };
    let form = fields
        .get("request")
        .and_then(|sealed| builtin.keyring.open(sealed, &context(&session.sid)).ok())
        .and_then(|json| serde_json::from_slice::<Form>(&json).ok());
    let Some(form) = form else {
        return error_page(
            StatusCode::FORBIDDEN,
            "the consent form is not valid for this session",
        );
    };
    if form.exp <= now() || form.sub != session.user.sub {
        return error_page(StatusCode::FORBIDDEN, "the consent form has expired");
    }
    let pending = form.pending;
    if fields.get("decision").map(String::as_str) != Some("approve") {
        return authorize::redirect_error(
            &state,
            &pending.redirect_uri,
            pending.state.as_deref(),
            "access_denied",
            "the user denied access",
        );
    }
    if let Err(error) = state
        .store
        .grant_consent(&session.user.sub, &pending.client_id)
        .await
    {
        tracing::error!(%error, "cannot store consent");
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server error");
    }
    authorize::issue_code(&state, &session.user, pending).await
}
