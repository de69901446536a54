//! The caps on what one caller holds open hold across replicas, not only within one process:
//! bursts of `initialize` spread over two or three `manifold serve` processes on one database
//! (SQLite file, or PostgreSQL when `MANIFOLD_TEST_POSTGRES_URL` is set) never leave a user with
//! more sessions than `server.max_sessions_per_user`, and with Redis
//! (`MANIFOLD_TEST_REDIS_URL`) slow requests of one session spread over two processes never
//! have more than `server.max_streams_per_session` in progress. CI sets both URLs, and a test
//! that needs one fails there without it.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use manifold::storage::Storage;
use manifold_adapters::{Registry, sandbox::SandboxServer};
use serde_json::{Value, json};
use support::{
    in_session, initialize_body, post,
    process::{GatewayProcess, postgres_url, redis_url, token},
};

/// Sessions each user may hold in the session-cap tests.
const SESSION_CAP: usize = 3;

/// Requests in progress each session may have in the stream-cap test.
const STREAM_CAP: usize = 3;

/// How long the emulator holds each answer in the stream-cap test: far longer than a burst
/// takes to arrive.
const SLOW_ANSWER: Duration = Duration::from_secs(3);

/// The replicas' shared config: sign-in with dev tokens (one public URL for every replica, so
/// one issuer), Linear on the sandbox (the in-process emulator, or the one at `sandbox`).
fn config(dir: &Path, server: &str, sandbox: Option<SocketAddr>) -> std::path::PathBuf {
    let path = dir.join("manifold.toml");
    let shared_sandbox = sandbox.map_or_else(String::new, |addr| {
        format!("[sandbox]\nurl = \"http://{addr}\"\n")
    });
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:9"
call_timeout = "60s"
{server}
[storage]
data_dir = "{}"
[auth]
mode = "builtin"
sandbox_idp = true
dev_tokens = true
{shared_sandbox}[adapters.linear]
kind = "linear"
sandbox = true
[adapters.linear.credentials]
token = "lin_api_sandbox_alice"
"#,
        dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `count` `manifold serve` processes of one config, started one after the other (the first
/// creates the signing key the others use).
fn replicas(config: &Path, env: &[(&str, &str)], count: usize) -> Vec<GatewayProcess> {
    (0..count)
        .map(|_| GatewayProcess::serve(config, env))
        .collect()
}

// === Sessions per user ===

/// The live sessions of `user`, as the cap counts them.
async fn live_sessions(storage: &Storage, user: &str) -> i64 {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM auth_session_owners o JOIN mcp_sessions s ON s.id = o.session_id
         WHERE o.sub = $1",
    )
    .bind(user)
    .fetch_one(storage.pool())
    .await
    .unwrap();
    count
}

/// Bursts of concurrent initializes, the i-th on replica i mod n, for several burst sizes, each
/// repeated: exactly min(burst, cap) open, the rest get 429, and the database never holds more
/// than the cap of the user's sessions, sampled throughout. The sessions are then ended (on the
/// replicas in turn) so the next repeat starts from none.
async fn bursts_stay_within_the_session_cap(
    env: &[(&str, &str)],
    database: Option<&str>,
    count: usize,
) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &format!("max_sessions_per_user = {SESSION_CAP}"),
        None,
    );
    let replicas = replicas(&config, env, count);
    let storage = Storage::open(database, dir.path()).await.unwrap();
    let client = reqwest::Client::new();
    let version = VERSION;
    let run = uuid::Uuid::new_v4().simple().to_string();
    for burst in [2usize, 4, 7, 12] {
        let user = format!("burst{burst}-{run}");
        let bearer = format!("Bearer {}", token(&config, env, &user));
        for repeat in 0..3 {
            let most = Arc::new(AtomicI64::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let sampler = tokio::spawn({
                let (storage, user, most, done) =
                    (storage.clone(), user.clone(), most.clone(), done.clone());
                async move {
                    while !done.load(Ordering::SeqCst) {
                        most.fetch_max(live_sessions(&storage, &user).await, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            });
            let attempts = (0..burst).map(|i| {
                let (client, url, bearer) = (
                    client.clone(),
                    replicas[i % count].url.clone(),
                    bearer.clone(),
                );
                async move {
                    let auth = [("authorization", bearer.as_str())];
                    let (status, headers, answer, _) =
                        post(&client, &url, &auth, &initialize_body(version)).await;
                    let session = headers
                        .get("mcp-session-id")
                        .map(|id| id.to_str().unwrap().to_owned());
                    (status.as_u16(), session, answer, i % count)
                }
            });
            let answers = futures::future::join_all(attempts).await;
            done.store(true, Ordering::SeqCst);
            sampler.await.unwrap();
            let opened: Vec<_> = answers
                .iter()
                .filter(|(status, ..)| *status == 200)
                .filter_map(|(_, session, _, replica)| Some((session.clone()?, *replica)))
                .collect();
            let statuses: Vec<_> = answers.iter().map(|(status, ..)| *status).collect();
            let expected = burst.min(SESSION_CAP);
            let context = format!("{count} replicas, burst {burst}, repeat {repeat}");
            assert_eq!(opened.len(), expected, "{context}: {statuses:?}");
            for (status, session, answer, _) in &answers {
                if *status == 429 {
                    assert!(session.is_none(), "{context}");
                    assert_eq!(answer[0]["error"]["code"], -32000, "{context}");
                } else {
                    assert_eq!(*status, 200, "{context}: {statuses:?}");
                }
            }
            let live = live_sessions(&storage, &user).await;
            assert_eq!(live, i64::try_from(expected).unwrap(), "{context}");
            let most = most.load(Ordering::SeqCst);
            assert!(
                most <= i64::try_from(SESSION_CAP).unwrap(),
                "{context}: {most} live at once"
            );
            for (n, (session, _)) in opened.iter().enumerate() {
                let ended = client
                    .delete(&replicas[n % count].url)
                    .header("authorization", &bearer)
                    .header("mcp-session-id", session)
                    .header("mcp-protocol-version", version)
                    .send()
                    .await
                    .unwrap();
                assert!(ended.status().is_success(), "{context}: {}", ended.status());
            }
            assert_eq!(live_sessions(&storage, &user).await, 0, "{context}");
        }
    }
}

/// A database of its own on the server of `url`, so no other test's signing keys (sealed with
/// another data directory's secret) are in it. Dropped by [`drop_database`].
async fn fresh_database(url: &str) -> (String, String) {
    sqlx::any::install_default_drivers();
    let name = format!("manifold_caps_{}", uuid::Uuid::new_v4().simple());
    let server = sqlx::AnyPool::connect(url).await.unwrap();
    // `name` is ours: a prefix and a UUID.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&server)
        .await
        .unwrap();
    server.close().await;
    let (base, _) = url.rsplit_once('/').unwrap();
    (format!("{base}/{name}"), name)
}

async fn drop_database(url: &str, name: &str) {
    let server = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&server)
    .await
    .unwrap();
}

async fn on_postgres(count: usize) {
    let Some(server) = postgres_url() else { return };
    let (url, name) = fresh_database(&server).await;
    bursts_stay_within_the_session_cap(&[("MANIFOLD_STORAGE__URL", &url)], Some(&url), count).await;
    drop_database(&server, &name).await;
}

#[tokio::test]
async fn initialize_bursts_over_three_replicas_on_postgres_never_pass_the_session_cap() {
    on_postgres(3).await;
}

#[tokio::test]
async fn initialize_bursts_over_two_replicas_on_postgres_never_pass_the_session_cap() {
    on_postgres(2).await;
}

#[tokio::test]
async fn initialize_bursts_over_two_replicas_on_one_sqlite_file_never_pass_the_session_cap() {
    bursts_stay_within_the_session_cap(&[], None, 2).await;
}

// === Streams per session ===

/// Replicas sharing one Linear emulator, with a session alice opened on the first.
struct OneSession {
    _dir: tempfile::TempDir,
    _sandbox: SandboxServer,
    emulator: String,
    replicas: Vec<GatewayProcess>,
    client: reqwest::Client,
    bearer: String,
    session: String,
}

const VERSION: &str = "2025-11-25";

impl OneSession {
    /// `count` replicas with `server` settings and `env`, and the session.
    async fn start(server: &str, env: &[(&str, &str)], count: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox =
            SandboxServer::start(&Registry::builtin(), SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .unwrap();
        let emulator = format!("http://{}/linear", sandbox.addr());
        let config = config(dir.path(), server, Some(sandbox.addr()));
        let replicas = replicas(&config, env, count);
        let client = reqwest::Client::new();
        let bearer = format!("Bearer {}", token(&config, env, "alice"));
        let session = open_session_as(&client, &replicas[0].url, &bearer, VERSION).await;
        Self {
            _dir: dir,
            _sandbox: sandbox,
            emulator,
            replicas,
            client,
            bearer,
            session,
        }
    }

    fn control(&self, path: &str) -> String {
        format!("{}/_sandbox/{path}", self.emulator)
    }

    /// Makes the emulator hold every answer this long.
    async fn slow_answers(&self, delay: Duration) {
        let delay = json!({"millis": delay.as_millis()});
        let set = self.client.post(self.control("delay")).json(&delay).send();
        assert!(set.await.unwrap().status().is_success());
    }

    /// How many calls reached the emulator since the last [`Self::forget_calls`].
    async fn calls_reached(&self) -> usize {
        let log: Value = self
            .client
            .get(self.control("requests"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log.as_array().unwrap().len()
    }

    async fn forget_calls(&self) {
        let cleared = self.client.delete(self.control("requests")).send().await;
        assert!(cleared.unwrap().status().is_success());
    }

    /// The headers of a request in the session.
    fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = in_session(&self.session, VERSION).to_vec();
        headers.push(("authorization", &self.bearer));
        headers
    }

    /// `count` concurrent Linear calls, the i-th on replica (i + `first`) mod n: status and
    /// messages of each.
    async fn calls(&self, count: usize, first: usize) -> Vec<(u16, Vec<Value>)> {
        let calls = (0..count).map(|i| {
            let url = &self.replicas[(i + first) % self.replicas.len()].url;
            async move {
                let call = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                    "params": {"name": "linear_list_teams", "arguments": {}}});
                let (status, _, answer, _) =
                    post(&self.client, url, &self.headers(), &call.to_string()).await;
                (status.as_u16(), answer)
            }
        });
        futures::future::join_all(calls).await
    }

    /// A ping on every replica, until each answers 200 or `within` has passed.
    async fn ping_everywhere(&self, within: Duration) {
        let ping = r#"{"jsonrpc":"2.0","id":99,"method":"ping"}"#;
        let deadline = Instant::now() + within;
        for replica in &self.replicas {
            loop {
                let (status, ..) = post(&self.client, &replica.url, &self.headers(), ping).await;
                if status == 200 {
                    break;
                }
                assert_eq!(status, 429);
                assert!(Instant::now() < deadline, "the slots never came back");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Rounds of concurrent slow calls in one session, alternating between two replicas: exactly
/// the cap reach the emulator and answer 200, the rest get 429 at once; every round starts with
/// the slots of the last one given back.
#[tokio::test]
async fn slow_requests_of_one_session_over_two_replicas_never_pass_the_stream_cap_with_redis() {
    let Some(redis) = redis_url() else { return };
    let env = [("MANIFOLD_STORAGE__REDIS_URL", redis.as_str())];
    let server = format!("max_streams_per_session = {STREAM_CAP}");
    let one = OneSession::start(&server, &env, 2).await;
    one.slow_answers(SLOW_ANSWER).await;
    for (round, burst) in [8usize, 5, 12].into_iter().enumerate() {
        one.forget_calls().await;
        let answers = one.calls(burst, round).await;
        let statuses: Vec<_> = answers.iter().map(|(status, _)| *status).collect();
        let served = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(served, STREAM_CAP, "round {round}: {statuses:?}");
        for (status, answer) in &answers {
            if *status == 429 {
                assert_eq!(answer[0]["error"]["code"], -32000, "round {round}");
            } else {
                assert_eq!(*status, 200, "round {round}: {statuses:?}");
            }
        }
        assert_eq!(
            one.calls_reached().await,
            STREAM_CAP,
            "round {round}: calls in progress at once"
        );
    }
    // Answered requests gave their slots back on both replicas.
    one.ping_everywhere(Duration::ZERO).await;
}

/// A request whose client went away gives its slot back when the gateway drops it, long before
/// the emulator would have answered: the next requests of the session are served, on either
/// replica.
#[tokio::test]
async fn a_request_dropped_by_its_client_gives_its_redis_slot_back() {
    let Some(redis) = redis_url() else { return };
    let env = [("MANIFOLD_STORAGE__REDIS_URL", redis.as_str())];
    let one = OneSession::start("max_streams_per_session = 2", &env, 2).await;
    one.slow_answers(Duration::from_secs(20)).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "linear_list_teams", "arguments": {}}})
    .to_string();
    // Two calls that fill the cap, abandoned by a client that stops waiting.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let abandoned = one.replicas.iter().map(|replica| {
        let mut request = impatient
            .post(&replica.url)
            .header("content-type", "application/json")
            .header("accept", support::ACCEPT)
            .body(call.clone());
        for (name, value) in one.headers() {
            request = request.header(name, value);
        }
        request.send()
    });
    for result in futures::future::join_all(abandoned).await {
        assert!(result.unwrap_err().is_timeout());
    }
    one.ping_everywhere(Duration::from_secs(5)).await;
}

/// With Redis unreachable the gateway still serves, and counts each session's requests on the
/// replica alone.
#[tokio::test]
async fn while_redis_is_unreachable_the_streams_are_counted_per_replica() {
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("redis://{}", closed.local_addr().unwrap());
    drop(closed);
    let env = [("MANIFOLD_STORAGE__REDIS_URL", unreachable.as_str())];
    let one = OneSession::start("max_streams_per_session = 1", &env, 1).await;
    one.slow_answers(Duration::from_millis(1500)).await;
    let mut statuses: Vec<_> = one.calls(3, 0).await.into_iter().map(|(s, _)| s).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429, 429]);
}

/// Without Redis each replica counts alone: the documented limit of the per-replica count.
#[tokio::test]
async fn without_redis_each_replica_counts_the_streams_of_a_session_alone() {
    let one = OneSession::start("max_streams_per_session = 1", &[], 2).await;
    one.slow_answers(Duration::from_millis(1500)).await;
    let statuses: Vec<_> = one.calls(2, 0).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(statuses, [200, 200]);
}

/// Initializes a session as `bearer` and sends `notifications/initialized`.
async fn open_session_as(
    client: &reqwest::Client,
    url: &str,
    bearer: &str,
    version: &str,
) -> String {
    let (status, headers, ..) = post(
        client,
        url,
        &[("authorization", bearer)],
        &initialize_body(version),
    )
    .await;
    assert_eq!(status, 200);
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    let mut in_it = in_session(&session, version).to_vec();
    in_it.push(("authorization", bearer));
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let (status, ..) = post(client, url, &in_it, initialized).await;
    assert_eq!(status, 202);
    session
}
