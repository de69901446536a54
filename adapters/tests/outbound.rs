//! The SSRF-guarded outbound client against real sockets: literal and resolved non-public
//! addresses are refused before any byte reaches them, a rebinding resolver cannot slip a second
//! answer past the check, redirects are checked hop by hop, bodies and time are capped, and the
//! cache keeps what `Cache-Control` allows.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use manifold_adapters::outbound::{
    AddressRules, Cidr, Fetch, Lookup, Outbound, OutboundError, OutboundSettings,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

type Handler = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A one-file HTTP/1.1 server on `ip`: `handler(path)` gives the whole raw response (`None`:
/// never answer). Counts the requests it read.
struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn serve(ip: Ipv4Addr, handler: Handler) -> Server {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let handler = handler.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&request);
                let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                match handler(&path) {
                    Some(response) => {
                        let _ = socket.write_all(response.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    Server { addr, hits }
}

fn ok(body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn redirect(location: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// Names to addresses, from a table whose answers may change between lookups.
#[derive(Default)]
struct Table {
    answers: Mutex<HashMap<String, Vec<Vec<IpAddr>>>>,
    lookups: AtomicUsize,
}

impl Table {
    /// `host` answers each list in turn, then the last one forever.
    fn set(&self, host: &str, answers: Vec<Vec<IpAddr>>) {
        self.answers
            .lock()
            .unwrap()
            .insert(host.to_owned(), answers);
    }
}

impl Lookup for Table {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap();
        let found = answers.get_mut(&host).map(|list| {
            if list.len() > 1 {
                list.remove(0)
            } else {
                list.first().cloned().unwrap_or_default()
            }
        });
        Box::pin(async move { found.ok_or_else(|| io::Error::other("unknown host")) })
    }
}

fn loopback_one() -> AddressRules {
    AddressRules {
        allow_private: false,
        allowed_cidrs: vec!["127.0.0.1/32".parse::<Cidr>().unwrap()],
    }
}

fn client(rules: AddressRules, table: &Arc<Table>) -> Outbound {
    let settings = OutboundSettings {
        allow_http: true,
        rules,
        max_body_bytes: 4096,
        timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_millis(500),
        ..OutboundSettings::default()
    };
    Outbound::with_lookup(settings, table.clone()).unwrap()
}

const FOLLOW: Fetch = Fetch {
    max_bytes: None,
    timeout: None,
    follow_redirects: true,
};

fn is_blocked(result: &Result<impl std::fmt::Debug, OutboundError>) -> bool {
    matches!(result, Err(OutboundError::Blocked { .. }))
}

/// Spellings of `v4` a URL host may use; every one parses to the same address.
fn spellings(v4: Ipv4Addr) -> Vec<String> {
    let n = u32::from(v4);
    let [a, b, c, d] = v4.octets();
    vec![
        v4.to_string(),
        n.to_string(),
        format!("0x{n:x}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!(
            "{a}.{}",
            (u32::from(b) << 16) | (u32::from(c) << 8) | u32::from(d)
        ),
        format!("[::ffff:{v4}]"),
        format!("[::ffff:{:x}:{:x}]", n >> 16, n & 0xffff),
        format!("[64:ff9b::{v4}]"),
    ]
}

#[tokio::test]
async fn non_public_addresses_are_refused_literal_or_resolved_before_any_request() {
    let server = serve(Ipv4Addr::LOCALHOST, Arc::new(|_| Some(ok("{}", "")))).await;
    let port = server.addr.port();
    let table = Arc::new(Table::default());
    let strict = client(AddressRules::default(), &table);
    // A generated list: hosts of each blocked network, in each spelling, literal and behind a
    // name; none may be fetched, and nothing reaches the listening server.
    let networks: [(u32, u32); 12] = [
        (0x7f00_0000, 8),  // loopback
        (0x0a00_0000, 8),  // 10/8
        (0xac10_0000, 12), // 172.16/12
        (0xc0a8_0000, 16), // 192.168/16
        (0xa9fe_0000, 16), // link-local, metadata
        (0x6440_0000, 10), // CGNAT
        (0x0000_0000, 8),  // 0/8
        (0xe000_0000, 4),  // multicast
        (0xffff_ffff, 32), // broadcast
        (0xc000_0200, 24), // TEST-NET-1
        (0xc633_6400, 24), // TEST-NET-2
        (0xcb00_7100, 24), // TEST-NET-3
    ];
    let mut tried = 0;
    for (net, prefix) in networks {
        for i in 0u32..12 {
            let host_bits = i.wrapping_mul(0x9e37_79b9) & (u32::MAX >> prefix.min(31));
            let v4 = Ipv4Addr::from(net | if prefix == 32 { 0 } else { host_bits });
            for spelling in spellings(v4) {
                let url = format!("http://{spelling}:{port}/doc");
                let result = strict.get(&url, "application/json", FOLLOW).await;
                assert!(is_blocked(&result), "{url}: {result:?}");
                tried += 1;
            }
            let name = format!("n{tried}.test");
            table.set(&name, vec![vec![IpAddr::V4(v4)]]);
            let result = strict
                .get(&format!("http://{name}:{port}/doc"), "*/*", FOLLOW)
                .await;
            assert!(is_blocked(&result), "{name} -> {v4}: {result:?}");
            tried += 1;
        }
    }
    for v6 in [
        "::1",
        "fe80::1",
        "fc00::5",
        "fd12:3456::1",
        "ff02::1",
        "::",
        "2001:db8::1",
    ] {
        let url = format!("http://[{v6}]:{port}/doc");
        assert!(is_blocked(&strict.get(&url, "*/*", FOLLOW).await), "{url}");
        tried += 1;
    }
    assert!(tried > 1000, "{tried} variants");
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        0,
        "a refused fetch reached the server"
    );

    // The same server is reachable once the operator allows exactly its address.
    let allowed = client(loopback_one(), &table);
    let fetched = allowed
        .get(&format!("http://127.0.0.1:{port}/doc"), "*/*", FOLLOW)
        .await
        .unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http_credentials_and_other_schemes_are_refused() {
    let table = Arc::new(Table::default());
    let settings = OutboundSettings::default();
    let strict = Outbound::with_lookup(settings, table.clone()).unwrap();
    for (url, ok) in [
        ("http://example.com/x", false),
        ("ftp://example.com/x", false),
        ("file:///etc/passwd", false),
        ("gopher://example.com/", false),
        ("https://user:pw@example.com/x", false),
        ("https://user@example.com/x", false),
        ("https://example.com/x", true),
    ] {
        let parsed = url::Url::parse(url).unwrap();
        assert_eq!(strict.check(&parsed).is_ok(), ok, "{url}");
    }
}

#[tokio::test]
async fn a_rebinding_resolver_cannot_get_a_second_answer_past_the_check() {
    let server = serve(Ipv4Addr::LOCALHOST, Arc::new(|_| Some(ok("{}", "")))).await;
    let port = server.addr.port();
    let table = Arc::new(Table::default());
    let allowed = client(loopback_one(), &table);
    // First lookup: the allowed address; every later one: another loopback address, which the
    // rules refuse. Each connection is resolved once, and what is resolved is what is checked.
    let later = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    table.set(
        "rebind.test",
        vec![vec![IpAddr::V4(Ipv4Addr::LOCALHOST)], vec![later]],
    );
    let url = format!("http://rebind.test:{port}/doc");
    assert_eq!(allowed.get(&url, "*/*", FOLLOW).await.unwrap().status, 200);
    for _ in 0..5 {
        let result = allowed.get(&url, "*/*", FOLLOW).await;
        assert!(is_blocked(&result), "{result:?}");
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    // A public record next to a private one is refused as a whole, whatever the order.
    for order in [
        vec![IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14)), later],
        vec![later, IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14))],
    ] {
        table.set("mixed.test", vec![order]);
        let result = allowed
            .get(&format!("http://mixed.test:{port}/"), "*/*", FOLLOW)
            .await;
        assert!(is_blocked(&result), "{result:?}");
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn redirects_are_checked_at_every_hop() {
    let target = serve(Ipv4Addr::LOCALHOST, Arc::new(|_| Some(ok("{}", "")))).await;
    let target_port = target.addr.port();
    let handler: Handler = Arc::new(move |path: &str| {
        let to = match path {
            "/metadata" => "http://169.254.169.254/latest/meta-data/".to_owned(),
            "/private" => "http://10.0.0.1/admin".to_owned(),
            "/mapped" => "http://[::ffff:127.0.0.2]/".to_owned(),
            "/named" => "http://inside.test/".to_owned(),
            "/scheme" => "file:///etc/passwd".to_owned(),
            "/loop" => "/loop".to_owned(),
            "/fine" => format!("http://127.0.0.1:{target_port}/doc"),
            _ => return Some(ok("{}", "")),
        };
        Some(redirect(&to))
    });
    let server = serve(Ipv4Addr::LOCALHOST, handler).await;
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let table = Arc::new(Table::default());
    table.set(
        "inside.test",
        vec![vec![IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1))]],
    );
    let allowed = client(loopback_one(), &table);
    for path in ["/metadata", "/private", "/mapped", "/named"] {
        let result = allowed.get(&format!("{base}{path}"), "*/*", FOLLOW).await;
        assert!(is_blocked(&result), "{path}: {result:?}");
    }
    let scheme = allowed.get(&format!("{base}/scheme"), "*/*", FOLLOW).await;
    assert!(matches!(scheme, Err(OutboundError::Scheme)), "{scheme:?}");
    let looped = allowed.get(&format!("{base}/loop"), "*/*", FOLLOW).await;
    assert!(
        matches!(looped, Err(OutboundError::TooManyRedirects)),
        "{looped:?}"
    );
    let fine = allowed
        .get(&format!("{base}/fine"), "*/*", FOLLOW)
        .await
        .unwrap();
    assert_eq!(fine.status, 200);
    assert_eq!(target.hits.load(Ordering::SeqCst), 1);
    // Without following, the redirect itself is the answer.
    let kept = allowed
        .get(&format!("{base}/metadata"), "*/*", Fetch::default())
        .await
        .unwrap();
    assert_eq!(kept.status, 302);
}

#[tokio::test]
async fn bodies_and_time_are_capped() {
    let handler: Handler = Arc::new(|path: &str| match path {
        "/declared" => Some(ok(&"x".repeat(5000), "")),
        "/chunked" => {
            let chunk = "x".repeat(1000);
            let chunks: String = (0..6).map(|_| format!("3e8\r\n{chunk}\r\n")).collect();
            Some(format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunks}0\r\n\r\n"
            ))
        }
        "/small" => Some(ok("[1]", "")),
        _ => None,
    });
    let server = serve(Ipv4Addr::LOCALHOST, handler).await;
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let table = Arc::new(Table::default());
    let allowed = client(loopback_one(), &table);
    for path in ["/declared", "/chunked"] {
        let result = allowed.get(&format!("{base}{path}"), "*/*", FOLLOW).await;
        assert!(
            matches!(result, Err(OutboundError::TooLarge(4096))),
            "{path}: {result:?}"
        );
    }
    let small = Fetch {
        max_bytes: Some(2),
        ..FOLLOW
    };
    let result = allowed.get(&format!("{base}/small"), "*/*", small).await;
    assert!(
        matches!(result, Err(OutboundError::TooLarge(2))),
        "{result:?}"
    );
    let started = Instant::now();
    let silent = allowed.get(&format!("{base}/silent"), "*/*", FOLLOW).await;
    assert!(matches!(silent, Err(OutboundError::Timeout)), "{silent:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn the_cache_keeps_what_cache_control_allows() {
    let handler: Handler = Arc::new(|path: &str| match path {
        "/plain" => Some(ok("{\"a\":1}", "")),
        "/max-age" => Some(ok("{}", "Cache-Control: public, max-age=600\r\n")),
        "/no-store" => Some(ok("{}", "Cache-Control: no-store\r\n")),
        "/zero" => Some(ok("{}", "Cache-Control: max-age=0\r\n")),
        _ => {
            Some("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into())
        }
    });
    let server = serve(Ipv4Addr::LOCALHOST, handler).await;
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let table = Arc::new(Table::default());
    let allowed = client(loopback_one(), &table);
    let mut expected = 0;
    for (path, kept) in [
        ("/plain", true),
        ("/max-age", true),
        ("/no-store", false),
        ("/zero", false),
    ] {
        for _ in 0..3 {
            let body = allowed
                .get_cached(&format!("{base}{path}"), "*/*", FOLLOW)
                .await;
            assert!(body.is_ok(), "{path}: {body:?}");
        }
        expected += if kept { 1 } else { 3 };
        assert_eq!(server.hits.load(Ordering::SeqCst), expected, "{path}");
    }
    // Failures are not cached.
    for _ in 0..2 {
        assert!(
            allowed
                .get_cached(&format!("{base}/gone"), "*/*", FOLLOW)
                .await
                .is_err()
        );
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), expected + 2);
}
