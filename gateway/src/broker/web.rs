//! `/connections`: the page where a signed-in user connects, reconnects and disconnects each
//! provider, and the OAuth callback. Forms are POSTs with a CSRF token bound to the user; the
//! provider `state` is sealed, bound to the user, short-lived and single-use.

use std::{collections::HashMap, fmt::Write as _, sync::Arc};

use axum::{
    Form, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use crate::auth::binding::{Binding, Flow};

use super::{
    DevIdentity, UserBroker, WebIdentity, now,
    provider::split_scopes,
    state::{csrf_token, csrf_valid},
    user::ConnectError,
};

#[derive(Clone)]
struct Web {
    broker: Arc<UserBroker>,
    identity: Arc<dyn WebIdentity>,
    dev: Option<Arc<DevIdentity>>,
}

/// The routes; `dev` adds `/connections/dev-login` (demo and tests only).
pub fn routes(
    broker: Arc<UserBroker>,
    identity: Arc<dyn WebIdentity>,
    dev: Option<Arc<DevIdentity>>,
) -> Router {
    let mut router = Router::new()
        .route("/connections", get(page))
        .route("/connections/connect", get(confirm).post(connect))
        .route("/connections/callback", get(callback))
        .route("/connections/disconnect", axum::routing::post(disconnect))
        .route(
            super::upstream::registration::CLIENT_DOCUMENT_PATH,
            get(client_document),
        );
    if dev.is_some() {
        router = router.route("/connections/dev-login", get(dev_login));
    }
    router.with_state(Web {
        broker,
        identity,
        dev,
    })
}

/// The gateway's OAuth client metadata document, which authorization servers of upstream MCP
/// servers fetch when the gateway uses its URL as its client id.
async fn client_document(State(web): State<Web>) -> Response {
    let document = super::upstream::registration::client_document(web.broker.public_url());
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=3600")],
        axum::Json(document),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn layout(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{t}</title>\
         <meta name=viewport content=\"width=device-width\"><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.5rem;text-align:left}}\
         .broken{{color:#b00}}.connected{{color:#070}}form{{display:inline}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    // The page holds CSRF tokens: keep it out of caches and frames.
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert("x-frame-options", header::HeaderValue::from_static("DENY"));
    response
}

impl Web {
    fn user(&self, headers: &HeaderMap) -> Option<String> {
        self.identity.current_user(headers)?.user
    }

    fn sign_in(&self) -> Response {
        let hint = if self.dev.is_some() {
            "<p>Demo sign-in: <a href=\"/connections/dev-login?user=alice\">alice</a>, \
             <a href=\"/connections/dev-login?user=bob\">bob</a>, \
             <a href=\"/connections/dev-login?user=carol\">carol</a>.</p>"
        } else {
            "<p>Sign in to the gateway first.</p>"
        };
        layout(StatusCode::UNAUTHORIZED, "Sign in", hint)
    }
}

fn form(action: &str, csrf: &str, connection: &str, scopes: &str, label: &str) -> String {
    format!(
        "<form method=post action=\"{action}\"><input type=hidden name=csrf value=\"{}\">\
         <input type=hidden name=connection value=\"{}\"><input type=hidden name=scopes value=\"{}\">\
         <button type=submit>{label}</button></form>",
        escape(csrf),
        escape(connection),
        escape(scopes)
    )
}

async fn page(State(web): State<Web>, headers: HeaderMap) -> Response {
    let Some(user) = web.user(&headers) else {
        return web.sign_in();
    };
    let stored = match web.broker.store().list(&user).await {
        Ok(rows) => rows,
        Err(error) => {
            return layout(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Connections",
                &escape(&error.to_string()),
            );
        }
    };
    let csrf = csrf_token(web.broker.keyring(), &user, now());
    let mut body = format!(
        "<p>Signed in as <b id=user>{}</b>. Each provider is connected with your own account; \
         tools act as you.</p><table><tr><th>Provider</th><th>State</th><th>Account</th>\
         <th>Scopes</th><th>Expires</th><th></th></tr>",
        escape(&user)
    );
    for provider in web.broker.connections() {
        let id = &provider.connection;
        let row = stored.iter().find(|r| &r.connection == id);
        let (state, account, scopes, expires, actions) = match row {
            None => (
                "<span class=status>Not connected</span>".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                form("/connections/connect", &csrf, id, "", "Connect"),
            ),
            Some(row) => {
                let scopes = row.scopes.join(" ");
                let state = if row.broken {
                    "<span class=\"status broken\">Broken: reconnect</span>"
                } else {
                    "<span class=\"status connected\">Connected</span>"
                };
                let expires = row.expires_at.map_or_else(
                    || "never".to_owned(),
                    |at| format!("in {} min", (at - now()).max(0) / 60),
                );
                let actions = form("/connections/connect", &csrf, id, &scopes, "Reconnect")
                    + &form("/connections/disconnect", &csrf, id, "", "Disconnect");
                (
                    state.to_owned(),
                    escape(row.account.as_deref().unwrap_or("—")),
                    escape(&scopes),
                    expires,
                    actions,
                )
            }
        };
        let _ = write!(
            body,
            "<tr id=\"conn-{}\"><td>{}</td><td>{state}</td><td>{account}</td><td>{scopes}</td>\
             <td>{expires}</td><td>{actions}</td></tr>",
            escape(id),
            escape(&provider.display_name)
        );
    }
    body.push_str("</table>");
    layout(StatusCode::OK, "Connections", &body)
}

#[derive(Deserialize)]
struct ConnectQuery {
    connection: Option<String>,
    scopes: Option<String>,
}

/// The link in a tool error: confirms, then POSTs (starting OAuth is a state change).
async fn confirm(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(query): Query<ConnectQuery>,
) -> Response {
    let Some(user) = web.user(&headers) else {
        return web.sign_in();
    };
    let connection = query.connection.unwrap_or_default();
    let Some(provider) = web.broker.provider(&connection) else {
        return layout(StatusCode::NOT_FOUND, "Connect", "<p>Unknown provider.</p>");
    };
    let csrf = csrf_token(web.broker.keyring(), &user, now());
    let scopes = query.scopes.unwrap_or_default();
    let body = format!(
        "<p>Connect <b>{}</b> as {} with access: <code>{}</code>.</p>{}",
        escape(&provider.display_name),
        escape(&user),
        escape(if scopes.is_empty() {
            "(basic)"
        } else {
            &scopes
        }),
        form(
            "/connections/connect",
            &csrf,
            &connection,
            &scopes,
            "Connect"
        )
    );
    layout(StatusCode::OK, "Connect", &body)
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
    connection: String,
    #[serde(default)]
    scopes: String,
}

async fn connect(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(user) = web.user(&headers) else {
        return web.sign_in();
    };
    if !csrf_valid(web.broker.keyring(), &form.csrf, &user, now()) {
        return layout(
            StatusCode::FORBIDDEN,
            "Connect",
            "<p>The form expired; reload the page.</p>",
        );
    }
    let provider = web.broker.provider(&form.connection);
    let separator = provider.map_or(" ", |p| p.spec.scope_separator);
    // The emulators have nobody to ask who is logging in: they take the user from login_hint.
    let hint = provider.filter(|p| p.sandbox).map(|_| user.as_str());
    let scopes = split_scopes(&form.scopes, separator);
    let browser = Binding::new();
    match web
        .broker
        .start_connect(&user, &form.connection, &scopes, hint, &browser)
        .await
    {
        Ok(url) => bound_redirect(&url, &browser),
        Err(error) => layout(
            StatusCode::BAD_REQUEST,
            "Connect",
            &escape(&error.to_string()),
        ),
    }
}

async fn callback(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(user) = web.user(&headers) else {
        return web.sign_in();
    };
    if let Some(error) = query.get("error") {
        let text = format!("The provider did not connect: {error}");
        return layout(StatusCode::BAD_REQUEST, "Connect", &escape(&text));
    }
    let (Some(state), Some(code)) = (query.get("state"), query.get("code")) else {
        return layout(
            StatusCode::BAD_REQUEST,
            "Connect",
            "<p>Missing code or state.</p>",
        );
    };
    let nonce = Flow::Connect.nonce(&headers, state);
    match web.broker.finish_connect(&user, state, code, nonce).await {
        Ok(connection) => {
            let mut response =
                Redirect::to(&format!("/connections?connected={connection}")).into_response();
            // Clearing needs no Secure flag: an https page may overwrite a Secure cookie.
            if let Some(clear) = Flow::Connect.clear_cookie(state, false) {
                response.headers_mut().append(header::SET_COOKIE, clear);
            }
            response
        }
        Err(error) => {
            let status = match error {
                ConnectError::BadState | ConnectError::WrongUser | ConnectError::OtherBrowser => {
                    StatusCode::FORBIDDEN
                }
                _ => StatusCode::BAD_GATEWAY,
            };
            layout(
                status,
                "Connect",
                &format!("<p>{}</p>", escape(&error.to_string())),
            )
        }
    }
}

async fn disconnect(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(user) = web.user(&headers) else {
        return web.sign_in();
    };
    if !csrf_valid(web.broker.keyring(), &form.csrf, &user, now()) {
        return layout(
            StatusCode::FORBIDDEN,
            "Disconnect",
            "<p>The form expired; reload the page.</p>",
        );
    }
    match web.broker.disconnect(&user, &form.connection).await {
        Ok(()) => Redirect::to("/connections").into_response(),
        Err(error) => layout(
            StatusCode::BAD_REQUEST,
            "Disconnect",
            &escape(&error.to_string()),
        ),
    }
}

/// The redirect to the provider, setting the cookie that binds the connect to this browser.
/// The cookie is Secure when the provider will send the browser back to an https callback.
fn bound_redirect(authorize: &url::Url, browser: &Binding) -> Response {
    let param = |name: &str| {
        authorize
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let (Some(sealed), callback) = (param("state"), param("redirect_uri")) else {
        return layout(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Connect",
            "<p>The connect could not be started.</p>",
        );
    };
    let secure = callback.is_some_and(|uri| uri.starts_with("https://"));
    let max_age = 600;
    let mut response = Redirect::to(authorize.as_str()).into_response();
    match Flow::Connect.set_cookie(&sealed, &browser.nonce, secure, max_age) {
        Some(cookie) => {
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        None => layout(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Connect",
            "<p>The connect could not be started.</p>",
        ),
    }
}

#[derive(Deserialize)]
struct DevLogin {
    user: Option<String>,
}

/// DEMO/TESTS ONLY: signs the browser in as `user`.
async fn dev_login(State(web): State<Web>, Query(query): Query<DevLogin>) -> Response {
    let (Some(dev), Some(user)) = (
        &web.dev,
        query.user.filter(|u| !u.is_empty() && u.len() <= 64),
    ) else {
        return layout(
            StatusCode::BAD_REQUEST,
            "Sign in",
            "<p>Pass ?user=name.</p>",
        );
    };
    let mut response = Redirect::to("/connections").into_response();
    if let Ok(value) = header::HeaderValue::from_str(&dev.cookie_for(&user)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
