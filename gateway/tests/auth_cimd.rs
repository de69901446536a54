//! Client ID Metadata Documents: a client whose `client_id` is the URL of its metadata document
//! (served here by a small axum server on loopback, accepted over http only with
//! `allow_insecure_client_metadata`) authorizes with a redirect URI its document lists, and
//! exchanges the code for a token that works on `/mcp`. A redirect URI outside the document, an
//! oversized document (declared or streamed), a non-JSON document and one naming another
//! client_id are refused, without any redirect.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, body::Body, http::header, response::IntoResponse, routing::get};
use bytes::Bytes;
use serde_json::json;
use support::oauth::{self, REDIRECT};

/// The document server: its base URL and how many requests it answered.
async fn documents() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let json = |body: String| ([(header::CONTENT_TYPE, "application/json")], body);
    let client = json!({
        "client_id": format!("{base}/client.json"),
        "client_name": "CIMD test client",
        "redirect_uris": [REDIRECT],
    })
    .to_string();
    let mismatch = json!({
        "client_id": format!("{base}/client.json"),
        "redirect_uris": [REDIRECT],
    })
    .to_string();
    // A valid document padded past the gateway's 64 KiB limit.
    let big = json!({
        "client_id": format!("{base}/big.json"),
        "client_name": "x".repeat(100 * 1024),
        "redirect_uris": [REDIRECT],
    })
    .to_string();
    let router = Router::new()
        .route("/client.json", get(move || async move { json(client) }))
        .route("/mismatch.json", get(move || async move { json(mismatch) }))
        .route("/big.json", get(move || async move { json(big) }))
        .route(
            "/streamed.json",
            get(|| async {
                // No Content-Length: the limit must hold while reading.
                let chunks =
                    (0..100).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1024])));
                let body = Body::from_stream(futures::stream::iter(chunks));
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            }),
        )
        .route(
            "/page.html",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html>hello</html>") }),
        )
        .layer(axum::middleware::from_fn({
            let hits = hits.clone();
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    next.run(request).await
                }
            }
        }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, hits)
}

async fn gateway(allow_http_documents: bool) -> support::TestGateway {
    let auth = format!(
        "[auth]\nmode = \"builtin\"\nsandbox_idp = true\n\
         allow_insecure_client_metadata = {allow_http_documents}\n{}",
        support::LOOPBACK_OUTBOUND
    );
    support::start_with_extra_server(&auth, "public_url = \"http://127.0.0.1:0\"").await
}

/// `/authorize` for `client_id` and `redirect_uri`: refused on the gateway's own error page.
async fn refused(base: &str, client_id: &str, redirect_uri: &str) -> String {
    let response = oauth::client()
        .get(oauth::authorize_url(base, client_id, redirect_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "{client_id} with {redirect_uri}");
    assert!(
        response.headers().get("location").is_none(),
        "no redirect for {client_id}"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_client_named_by_its_metadata_document_authorizes_with_a_listed_redirect() {
    let (documents, hits) = documents().await;
    let gw = gateway(true).await;
    let base = gw.base();
    let client_id = format!("{documents}/client.json");

    let to_client = oauth::sandbox_authorize(
        &base,
        oauth::authorize_url(&base, &client_id, REDIRECT),
        "alice",
    )
    .await;
    assert!(to_client.starts_with(REDIRECT), "{to_client}");
    assert!(hits.load(Ordering::SeqCst) >= 1, "the document was fetched");
    let answer = oauth::query(&to_client);
    assert_eq!(answer["iss"], base);
    let (status, tokens) = oauth::exchange(&base, &client_id, &answer["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(oauth::jwt_claims(access)["client_id"], client_id.as_str());
    let tools = oauth::tools_list(&gw.url(), access).await;
    assert!(tools.contains(&"t_echo".to_owned()), "{tools:?}");
}

#[tokio::test]
async fn unlisted_redirects_and_bad_documents_are_refused() {
    let (documents, hits) = documents().await;
    let gw = gateway(true).await;
    let base = gw.base();
    let client_id = format!("{documents}/client.json");

    let page = refused(&base, &client_id, "http://127.0.0.1:9/elsewhere").await;
    assert!(page.contains("redirect_uri does not match"), "{page}");
    let page = refused(&base, &format!("{documents}/big.json"), REDIRECT).await;
    assert!(page.contains("larger than"), "{page}");
    let page = refused(&base, &format!("{documents}/streamed.json"), REDIRECT).await;
    assert!(page.contains("larger than"), "{page}");
    let page = refused(&base, &format!("{documents}/page.html"), REDIRECT).await;
    assert!(page.contains("invalid"), "{page}");
    let page = refused(&base, &format!("{documents}/mismatch.json"), REDIRECT).await;
    assert!(page.contains("does not match its URL"), "{page}");
    let page = refused(&base, &format!("{documents}/missing.json"), REDIRECT).await;
    assert!(page.contains("could not be fetched"), "{page}");

    // Without the test switch, http documents are not even fetched.
    let strict = gateway(false).await;
    let before = hits.load(Ordering::SeqCst);
    let page = refused(&strict.base(), &client_id, REDIRECT).await;
    assert!(page.contains("https only"), "{page}");
    assert_eq!(hits.load(Ordering::SeqCst), before);
}
