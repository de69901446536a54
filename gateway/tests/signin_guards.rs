//! Sign-in fails closed, through the real gateway: a login callback replayed into another
//! browser signs no one in (login CSRF), `return_to` sends the browser only to same-origin
//! paths, `/authorize` errors before the client and its redirect URI are known are pages (never
//! redirects), and client metadata document URLs pointing at non-public addresses are not
//! fetched.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::Response;
use support::{
    broker::binding_cookie,
    oauth::{self, location},
};

const AUTH: &str = "[auth]\nmode = \"builtin\"\nsandbox_idp = true\n";

async fn gateway() -> support::TestGateway {
    let extra = format!("{AUTH}{}", support::LOOPBACK_OUTBOUND);
    support::start_with_extra_server(&extra, "public_url = \"http://127.0.0.1:0\"").await
}

/// `/login?return_to=…` up to the sandbox IdP's redirect back: the callback URL and the
/// binding cookie (`name=value`) the starting browser got.
async fn login_until_callback(base: &str, return_to: &str) -> (String, String) {
    let http = oauth::client();
    let start =
        url::Url::parse_with_params(&format!("{base}/login"), &[("return_to", return_to)]).unwrap();
    let started = http.get(start).send().await.unwrap();
    assert!(started.status().is_redirection(), "{}", started.status());
    let binding = binding_cookie(&started, "manifold_login_");
    let picked = oauth::pick_user(&http, base, &location(&started), "alice").await;
    (location(&picked), binding)
}

async fn get_with(url: &str, cookie: Option<&str>) -> Response {
    let mut request = oauth::client().get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

fn signs_in(response: &Response) -> bool {
    response.headers().get_all("set-cookie").iter().any(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("manifold_session=")
    })
}

#[tokio::test]
async fn a_login_callback_replayed_into_another_browser_signs_no_one_in() {
    let gw = gateway().await;
    let base = gw.base();
    for round in 0..4 {
        let (callback, binding) = login_until_callback(&base, "/connections").await;
        // The attacker's own, different login in their browser.
        let (_, other) = login_until_callback(&base, "/").await;
        let name = binding.split('=').next().unwrap();
        let forged_value = format!("{name}=AAAA{round}");
        let renamed_other = format!("{name}={}", other.split_once('=').unwrap().1);
        for (what, cookie) in [
            ("no cookie", None),
            ("another login's cookie", Some(other.as_str())),
            (
                "a forged value under the right name",
                Some(forged_value.as_str()),
            ),
            (
                "another browser's nonce under this name",
                Some(renamed_other.as_str()),
            ),
            ("an unrelated cookie", Some("manifold_session=x")),
        ] {
            let replayed = get_with(&callback, cookie).await;
            assert_eq!(replayed.status(), 403, "{what}");
            assert!(!signs_in(&replayed), "{what} signed someone in");
            let page = replayed.text().await.unwrap();
            assert!(page.contains("another browser"), "{what}: {page}");
        }
        // The browser that started it still can (the refusals consumed nothing).
        let done = get_with(&callback, Some(&binding)).await;
        assert_eq!(done.status(), 302);
        assert!(signs_in(&done));
        assert_eq!(location(&done), "/connections");
        let cleared = done
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.starts_with(&format!("{name}=;")) && v.contains("Max-Age=0"));
        assert!(cleared, "the binding cookie is cleared once used");
    }
}

#[tokio::test]
async fn return_to_sends_the_browser_only_to_same_origin_paths() {
    let gw = gateway().await;
    let base = gw.base();
    let hosts = ["evil.example", "127.0.0.1:9", "[::1]", "0x7f000001"];
    let mut cases: Vec<(String, String)> = Vec::new();
    for host in hosts {
        for shape in [
            "//{h}/x",
            "/\\{h}",
            "\\\\{h}",
            "/\t/{h}",
            "/\r\n/{h}",
            "https:{h}",
            "https://{h}",
            "/%2f{h}",
            "/%5C{h}",
            "/%252f%252f{h}",
            "/a/../..//{h}",
            "/\u{ff0f}{h}",
            "{h}",
        ] {
            cases.push((shape.replace("{h}", host), "/".into()));
        }
    }
    for kept in ["/connections", "/connections?connected=linear", "/a/b"] {
        cases.push((kept.into(), kept.into()));
    }
    assert!(cases.len() >= 50);
    for (return_to, expected) in cases {
        let (callback, binding) = login_until_callback(&base, &return_to).await;
        let done = get_with(&callback, Some(&binding)).await;
        assert_eq!(done.status(), 302, "{return_to:?}");
        assert_eq!(location(&done), expected, "{return_to:?}");
    }
}

#[tokio::test]
async fn authorize_errors_before_the_client_is_known_are_pages_not_redirects() {
    let gw = gateway().await;
    let base = gw.base();
    let client_id = oauth::register(&base, serde_json::json!([oauth::REDIRECT])).await;
    let evil = "https://evil.example/cb";
    let mut tried = 0;
    let unknown = [
        "",
        "nope",
        "00000000-0000-0000-0000-000000000000",
        "javascript:x",
    ];
    for id in unknown {
        for redirect in [evil, oauth::REDIRECT, ""] {
            let url = oauth::authorize_url(&base, id, redirect);
            let answer = oauth::client().get(url).send().await.unwrap();
            assert_eq!(answer.status(), 400, "client {id:?} redirect {redirect:?}");
            assert!(answer.headers().get("location").is_none());
            tried += 1;
        }
    }
    // A known client with a redirect URI it did not register: still a page, for every variant
    // of the registered one (case, trailing characters, encodings, another port).
    for redirect in [
        evil,
        "http://127.0.0.1:9/cb/",
        "http://127.0.0.1:9/cb?x=1",
        "http://127.0.0.1:9/CB",
        "http://127.0.0.1:99/cb",
        "http://127.0.0.1:9/cb#f",
        "http://127.0.0.1:9/%63b",
        "http://localhost:9/cb",
        "http://127.0.0.1:9//evil.example/cb",
        "HTTP://127.0.0.1:9/cb",
    ] {
        let url = oauth::authorize_url(&base, &client_id, redirect);
        let answer = oauth::client().get(url).send().await.unwrap();
        assert_eq!(answer.status(), 400, "{redirect}");
        assert!(answer.headers().get("location").is_none(), "{redirect}");
        tried += 1;
    }
    assert!(tried >= 20);
}

#[tokio::test]
async fn client_metadata_urls_on_non_public_addresses_are_not_fetched() {
    // Strict [outbound] (the defaults): https and public addresses only.
    let extra = format!("{AUTH}allow_insecure_client_metadata = true\n");
    let gw = support::start_with_extra_server(&extra, "public_url = \"http://127.0.0.1:0\"").await;
    let base = gw.base();
    let port = gw.running.addr.port();
    for id in [
        format!("https://127.0.0.1:{port}/client.json"),
        format!("https://localhost:{port}/client.json"),
        format!("https://[::ffff:127.0.0.1]:{port}/client.json"),
        format!("https://2130706433:{port}/client.json"),
        "https://169.254.169.254/latest/meta-data/client.json".into(),
        "https://10.0.0.1/client.json".into(),
        "https://[fd00::1]/client.json".into(),
        "https://100.64.0.1/client.json".into(),
        // http is refused by the guard even with allow_insecure_client_metadata.
        "http://93.184.215.14/client.json".into(),
    ] {
        let url = oauth::authorize_url(&base, &id, oauth::REDIRECT);
        let answer = oauth::client().get(url).send().await.unwrap();
        assert_eq!(answer.status(), 400, "{id}");
        assert!(answer.headers().get("location").is_none(), "{id}");
        let page = answer.text().await.unwrap();
        assert!(page.contains("could not be fetched"), "{id}: {page}");
    }
}

/// `POST /register` as the client `forwarded_for` (through the test's own "proxy", the
/// loopback peer): the status.
async fn register_as(base: &str, forwarded_for: Option<&str>) -> u16 {
    let mut request = oauth::client()
        .post(format!("{base}/register"))
        .header("content-type", "application/json")
        .body(r#"{"client_name":"t","redirect_uris":["https://app.example/cb"]}"#);
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn registration_gateway(trusted_proxies: &str) -> support::TestGateway {
    let extra = format!(
        "{AUTH}[auth.registration]\nper_minute = 12\nper_address_per_minute = 3\n\
         trusted_proxies = [{trusted_proxies}]\n{}",
        support::LOOPBACK_OUTBOUND
    );
    support::start_with_extra_server(&extra, "public_url = \"http://127.0.0.1:0\"").await
}

#[tokio::test]
async fn one_address_at_its_registration_limit_leaves_others_registering() {
    let gw = registration_gateway("\"127.0.0.1\"").await;
    let base = gw.base();
    // The global bucket (12 a minute) gains a token every 5 s: on a loaded machine the run can
    // take that long, and the final check allows exactly the tokens that time refilled.
    let started = std::time::Instant::now();
    for caller in 1..=3 {
        let client = format!("203.0.113.{caller}");
        for attempt in 0..3 {
            assert_eq!(
                register_as(&base, Some(&client)).await,
                201,
                "{client} #{attempt}"
            );
        }
        for _ in 0..3 {
            assert_eq!(
                register_as(&base, Some(&client)).await,
                429,
                "{client} over"
            );
        }
    }
    // 9 of the ceiling of 12 used: a new caller still registers, even behind a chain.
    assert_eq!(register_as(&base, Some("1.2.3.4, 198.51.100.1")).await, 201);
    assert_eq!(register_as(&base, Some("198.51.100.1")).await, 201);
    assert_eq!(register_as(&base, Some("198.51.100.1")).await, 201);
    // The ceiling holds for everyone: new callers get 429, but for the tokens refilled meanwhile.
    let mut refilled_used: u64 = 0;
    for caller in 2..40 {
        match register_as(&base, Some(&format!("198.51.100.{caller}"))).await {
            201 => refilled_used += 1,
            429 => break,
            other => panic!("unexpected status {other}"),
        }
    }
    let refilled = started.elapsed().as_secs() / 5;
    assert!(
        refilled_used <= refilled,
        "{refilled_used} registrations past the ceiling, {refilled} tokens refilled"
    );
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_buy_more_registrations() {
    let gw = registration_gateway("").await;
    let base = gw.base();
    for attempt in 0..3 {
        let spoofed = format!("203.0.113.{attempt}");
        assert_eq!(register_as(&base, Some(&spoofed)).await, 201);
    }
    for attempt in 0..10 {
        let spoofed = format!("198.51.100.{attempt}");
        assert_eq!(register_as(&base, Some(&spoofed)).await, 429, "{spoofed}");
    }
    assert_eq!(register_as(&base, None).await, 429);
}
