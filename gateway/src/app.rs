//! Assembles a running gateway from a config: adapters and their catalog, storage, the handler,
//! and the HTTP server.

use std::{collections::HashMap, net::SocketAddr, path::Path, sync::Arc};

use manifold_adapters::{
    InstanceSettings, Registry, Secret, UpstreamClient, UpstreamConfig, upstream::RetryPolicy,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::{
    audit::AuditStage,
    broker::{BrokerSettings, CredentialBroker, DevIdentity, StaticCredentials, UserBroker},
    config::{Config, OperatorListen, PrefixMode, Problem},
    handler::{Gateway, HandlerSettings, Stages},
    keyring::{Keyring, KeyringError},
    policy::PolicyStage,
    redact::RedactStage,
    router::{Catalog, CatalogInstance},
    session::{SessionTiming, SharedSessionManager, SignalRelay, SqlSessionStore},
    storage::{Storage, StorageError},
    transport::{
        HostGuard,
        http::{self, HttpSettings},
        operator,
        server::{self, ConnectionLimits},
        shared_streams::SharedStreams,
    },
};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error("cannot start the sandbox emulators: {0}")]
    Sandbox(std::io::Error),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditStageError),
    #[error("demo connections failed: {0}")]
    DemoConnect(String),
}

/// Where sandboxed instances send their requests: the emulators' base URL for a kind.
pub type SandboxUrls<'a> = &'a dyn Fn(&str) -> Url;

/// Builds every adapter instance and the catalog. Does no network I/O, so `check` runs it too.
/// Problems are located in `source`, the config text.
pub fn build_catalog(
    config: &Config,
    source: &str,
    registry: &Registry,
    sandbox_urls: Option<SandboxUrls<'_>>,
) -> Result<(Catalog, StaticCredentials), Vec<Problem>> {
    let upstream = upstream_client(config).map_err(|error| vec![Problem::at(source, 0, error)])?;
    let mut problems = Vec::new();
    let mut instances = Vec::new();
    let mut tokens: HashMap<String, Secret> = HashMap::new();
    for (name, instance) in &config.adapters {
        if !instance.enabled {
            continue;
        }
        let offset = name.span().start;
        let Some(kind) = registry.get(instance.kind.get_ref()) else {
            continue; // reported by config validation
        };
        let base_url = match (&instance.base_url, instance.sandbox, sandbox_urls) {
            (_, true, Some(urls)) => urls(kind.sandbox_mount()),
            (_, true, None) => Url::parse(&format!("http://127.0.0.1:9/{}", kind.sandbox_mount()))
                .unwrap_or_else(|_| unreachable!("static URL")),
            (Some(url), false, _) => match Url::parse(url.get_ref()) {
                Ok(url) => url,
                Err(_) => continue, // reported by config validation
            },
            (None, false, _) => match Url::parse(kind.default_base_url()) {
                Ok(url) => url,
                Err(error) => {
                    problems.push(Problem::at(
                        source,
                        offset,
                        format!("bad default URL: {error}"),
                    ));
                    continue;
                }
            },
        };
        let settings = InstanceSettings {
            name: name.get_ref().clone(),
            base_url,
            client: upstream.for_instance(name.get_ref(), instance.max_concurrency),
            settings: toml_to_json(&instance.settings),
            credentials: instance.credentials.clone(),
        };
        let adapter = match kind.build(settings) {
            Ok(adapter) => adapter,
            Err(error) => {
                problems.push(Problem::at(
                    source,
                    offset,
                    format!("adapter `{}`: {error}", name.get_ref()),
                ));
                continue;
            }
        };
        if let Some(token) = instance.credentials.get("token") {
            tokens.insert(name.get_ref().clone(), token.clone());
        }
        let prefix = match instance.prefix_mode {
            PrefixMode::Never => None,
            PrefixMode::Always => Some(
                instance
                    .prefix
                    .as_ref()
                    .map_or_else(|| name.get_ref().clone(), |p| p.get_ref().clone()),
            ),
        };
        instances.push(CatalogInstance {
            name: name.get_ref().as_str().into(),
            kind: kind.id().into(),
            prefix,
            only_tools: instance.tools.as_ref().map(|tools| {
                tools
                    .iter()
                    .map(|t| (t.get_ref().clone(), t.span().start))
                    .collect()
            }),
            offset,
            adapter,
            read_only: instance.read_only,
            tool_tags: instance.tool_tags.clone(),
            overrides: crate::config::catalog_overrides(&instance.overrides),
        });
    }
    let mut credentials = StaticCredentials::new(tokens);
    for instance in instances.iter().filter(|i| !i.adapter.needs_credential()) {
        credentials = credentials.self_credentialed(instance.name.to_string());
    }
    match Catalog::build(instances) {
        Ok(catalog) if problems.is_empty() => Ok((catalog, credentials)),
        Ok(_) => Err(problems),
        Err(errors) => {
            problems.extend(
                errors
                    .iter()
                    .map(|e| Problem::at(source, e.offset(), e.to_string())),
            );
            Err(problems)
        }
    }
}

fn upstream_client(config: &Config) -> Result<UpstreamClient, String> {
    let section = &config.upstream;
    UpstreamClient::new(UpstreamConfig {
        connect_timeout: section.connect_timeout,
        request_timeout: section.request_timeout,
        retry: RetryPolicy {
            max_attempts: section.retry.max_attempts,
            budget: section.retry.budget,
            initial_backoff: section.retry.initial_backoff,
            max_backoff: section.retry.max_backoff,
        },
        ..UpstreamConfig::default()
    })
    .map_err(|error| error.to_string())
}

fn toml_to_json(table: &toml::Table) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(table) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

/// A gateway listening for clients.
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// Where the operator endpoints (`/metrics`) listen, when on a listener of their own.
    pub operator_addr: Option<SocketAddr>,
    pub shutdown: CancellationToken,
    pub tools: usize,
    /// Keeps the emulators alive as long as the gateway runs.
    #[cfg(feature = "sandbox")]
    pub sandbox: Option<manifold_adapters::sandbox::SandboxServer>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningGateway {
    /// Waits until the server stops (after `shutdown` is cancelled).
    pub async fn wait(self) -> std::io::Result<()> {
        self.server.await.map_err(std::io::Error::other)?
    }
}

/// A gateway's handler state with its emulators, before any transport is attached.
pub struct Prepared {
    pub gateway: Arc<Gateway>,
    pub tools: usize,
    /// Stops the background work the gateway started (upstream connections, catalog upkeep).
    pub shutdown: CancellationToken,
    /// The per-user broker, when any instance connects users with OAuth.
    pub broker: Option<Arc<UserBroker>>,
    /// Opened when the broker or the audit checkpoints needed it.
    pub storage: Option<Storage>,
    /// Loaded when the broker, the audit chain or an instance asking its clients needs it.
    pub keyring: Option<Arc<Keyring>>,
    /// Keeps the emulators alive as long as the gateway runs.
    #[cfg(feature = "sandbox")]
    pub sandbox: Option<manifold_adapters::sandbox::SandboxServer>,
}

/// Starts the sandbox emulators (when any instance asks for them and `[sandbox] url` names
/// none) and builds the handler state. `public_url` is where browsers reach the gateway.
pub async fn prepare(
    config: &Config,
    source: &str,
    path: &Path,
    registry: &Registry,
    public_url: &Url,
) -> Result<Prepared, StartError> {
    let shared_sandbox = config
        .sandbox
        .url
        .as_deref()
        .map(|url| Url::parse(url).map_err(|e| StartError::Config(format!("[sandbox] url: {e}"))))
        .transpose()?;
    #[cfg(feature = "sandbox")]
    let sandbox =
        if shared_sandbox.is_none() && config.adapters.values().any(|i| i.sandbox && i.enabled) {
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let server = manifold_adapters::sandbox::SandboxServer::start(registry, loopback)
                .await
                .map_err(StartError::Sandbox)?;
            Some(server)
        } else {
            None
        };
    let shared_urls = shared_sandbox.as_ref().map(|base| {
        move |kind: &str| {
            let root = base.as_str().trim_end_matches('/');
            Url::parse(&format!("{root}/{kind}")).unwrap_or_else(|_| base.clone())
        }
    });
    #[cfg(feature = "sandbox")]
    let urls = sandbox
        .as_ref()
        .map(|server| move |kind: &str| server.base_url(kind));
    #[cfg(feature = "sandbox")]
    let urls_ref: Option<SandboxUrls<'_>> = match (&shared_urls, &urls) {
        (Some(shared), _) => Some(shared as SandboxUrls<'_>),
        (None, Some(own)) => Some(own as SandboxUrls<'_>),
        (None, None) => None,
    };
    #[cfg(not(feature = "sandbox"))]
    let urls_ref: Option<SandboxUrls<'_>> = shared_urls.as_ref().map(|f| f as SandboxUrls<'_>);

    let (catalog, credentials) =
        build_catalog(config, source, registry, urls_ref).map_err(|problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("{}:{p}", path.display()))
                .collect();
            StartError::Config(lines.join("\n"))
        })?;
    let providers = crate::broker::setup::providers(config, registry, urls_ref, public_url)
        .map_err(StartError::Config)?;
    let exchangers = crate::broker::upstream::exchangers(config).map_err(StartError::Config)?;
    // Upstream MCP servers whose authorization servers are discovered at run time.
    let discovered: Vec<(String, Arc<crate::broker::provider::Provider>)> = providers
        .iter()
        .filter(|(_, provider)| provider.is_discovered())
        .cloned()
        .collect();
    // The keyring seals broker tokens, keys the audit chain, and seals the `requestState` of
    // calls whose upstream asks the client (`handler/input_state.rs`); storage holds the first two.
    let per_user = !providers.is_empty() || !exchangers.is_empty();
    let asks_clients = catalog
        .instances()
        .iter()
        .any(|instance| instance.adapter.asks_client());
    let keyed = (per_user || config.policy.audit || asks_clients)
        .then(|| {
            Keyring::load(
                std::env::var("MANIFOLD_SECRET_KEY").ok().as_deref(),
                &config.storage.data_dir.join("secret.key"),
                true,
            )
            .map(Arc::new)
        })
        .transpose()?;
    let shared_storage = if per_user || config.policy.audit {
        Some(open_storage(config).await?)
    } else {
        None
    };
    let exchanging: Vec<String> = exchangers.iter().map(|(name, _)| name.clone()).collect();
    let (broker, storage): (Arc<dyn CredentialBroker>, _) = if !per_user {
        (Arc::new(credentials), None)
    } else {
        let (Some(storage), Some(keyring)) = (shared_storage.clone(), keyed.clone()) else {
            return Err(StartError::Config(
                "the broker needs storage and keys".into(),
            ));
        };
        let mut tool_scopes: HashMap<String, Vec<String>> = HashMap::new();
        for route in catalog.routes() {
            if let Some((_, provider)) = providers.iter().find(|(i, _)| **i == *route.instance) {
                let scopes = tool_scopes.entry(provider.connection.clone()).or_default();
                scopes.extend(provider.base_scopes.iter().cloned());
                scopes.extend(route.spec.scopes.iter().cloned());
                scopes.sort();
                scopes.dedup();
            }
        }
        let broker = Arc::new(
            UserBroker::new(
                credentials,
                providers,
                crate::broker::store::TokenStore::new(storage.clone(), keyring.clone()),
                keyring,
                BrokerSettings {
                    public_url: public_url.clone(),
                    anonymous_user: config.broker.anonymous_user.clone(),
                    refresh_skew: config.broker.refresh_skew,
                    connect_timeout: config.broker.connect_timeout,
                },
                tool_scopes,
            )
            .with_exchangers(exchangers),
        );
        crate::broker::demo::connect_users(&broker, &config.broker.demo_users)
            .await
            .map_err(|e| StartError::DemoConnect(e.to_string()))?;
        (
            broker.clone() as Arc<dyn CredentialBroker>,
            Some((broker, storage)),
        )
    };
    let tools = catalog.len();
    let audit_keys = keyed.as_ref().map(|keyring| keyring.audit_keys());
    let checkpoints = shared_storage.clone().map(crate::audit::Checkpoints::new);
    let stages = stages(config, &catalog, audit_keys, checkpoints).await?;
    // Instances with a connection of their own (upstream MCP servers) start connecting now;
    // their tools join the catalog as they arrive, each change swapped in whole once the
    // policy validates against it (`router::live`).
    let shutdown = CancellationToken::new();
    for instance in catalog.instances().iter() {
        instance.adapter.start(shutdown.clone());
    }
    if let Some((broker, _)) = &storage {
        crate::broker::upstream::warm_up(&discovered, &shutdown);
        let per_user = catalog
            .instances()
            .iter()
            .filter(|i| {
                discovered.iter().any(|(name, _)| **name == *i.name)
                    || exchanging.iter().any(|name| **name == *i.name)
            })
            .map(|i| (i.name.to_string(), i.adapter.clone()))
            .collect();
        crate::broker::upstream::list_offers(broker.clone(), per_user, shutdown.clone());
    }
    let policy_store = stages.policy.store().cloned();
    let (catalog_tx, catalog_rx) = watch::channel(Arc::new(catalog));
    crate::router::live::spawn(
        catalog_tx,
        Box::new(move |catalog| match &policy_store {
            Some(store) => store
                .set_tools(&crate::policy::descriptors(catalog))
                .map(drop)
                .map_err(|error| error.to_string()),
            None => Ok(()),
        }),
        shutdown.clone(),
    );
    let gateway = Gateway::new(
        catalog_rx,
        stages,
        broker,
        HandlerSettings {
            tools_page_size: config.server.tools_page_size,
            call_timeout: config.server.call_timeout,
        },
        crate::handler::InputState::new(keyed.clone()),
    );
    let (broker, storage) = storage.map_or((None, shared_storage), |(b, s)| (Some(b), Some(s)));
    Ok(Prepared {
        gateway,
        tools,
        shutdown,
        broker,
        storage,
        keyring: keyed,
        #[cfg(feature = "sandbox")]
        sandbox,
    })
}

/// The policy, redaction and audit stages from `[policy]`; the audit chain keyed with
/// `audit_keys` and checkpointed in `checkpoints`.
async fn stages(
    config: &Config,
    catalog: &Catalog,
    audit_keys: Option<manifold_policy::audit::AuditKeys>,
    checkpoints: Option<crate::audit::Checkpoints>,
) -> Result<Stages, StartError> {
    let section = &config.policy;
    let (policy, redact) = match &section.dir {
        Some(dir) => (
            PolicyStage::load(
                dir,
                section.watch,
                catalog,
                config.storage.redis_url.as_ref().map(|url| url.expose()),
            )
            .await
            .map_err(|e| StartError::Config(e.to_string()))?,
            RedactStage::load(dir).map_err(|e| StartError::Config(e.to_string()))?,
        ),
        None => (PolicyStage::allow_all(), RedactStage::default()),
    };
    let audit = if section.audit {
        let path = section
            .audit_file
            .clone()
            .unwrap_or_else(|| config.storage.data_dir.join("audit.jsonl"));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StartError::Config(format!("{}: {e}", dir.display())))?;
        }
        let options = manifold_policy::audit::AuditOptions {
            fsync: section.audit_fsync,
            include_args: section.audit_include_args,
            keys: audit_keys,
        };
        let checkpoints = checkpoints.map(|store| (store, section.audit_checkpoint_interval));
        AuditStage::open(&path, options, checkpoints).await?
    } else {
        AuditStage::default()
    };
    Ok(Stages {
        policy,
        redact,
        audit,
    })
}

async fn open_storage(config: &Config) -> Result<Storage, StorageError> {
    Storage::open(
        config.storage.url.as_ref().map(Secret::expose),
        &config.storage.data_dir,
    )
    .await
}

/// Where browsers reach the gateway: `[server] public_url`, else the address it listens on.
pub fn public_url(config: &Config, addr: SocketAddr) -> Result<Url, StartError> {
    let text = config.server.public_url.as_deref().map_or_else(
        || format!("http://{addr}"),
        |url| effective_public_url(url, addr),
    );
    Url::parse(&text).map_err(|e| StartError::Config(format!("[server] public_url: {e}")))
}

/// Prepares the gateway, opens storage and serves HTTP on `[server] listen`.
pub async fn start(
    config: Config,
    source: &str,
    path: &Path,
    registry: &Registry,
) -> Result<RunningGateway, StartError> {
    // Bound first: the broker's callback URL and the OAuth issuer name the real port.
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.server.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.server.listen,
        source,
    })?;
    let public_url = public_url(&config, addr)?;
    let prepared = prepare(&config, source, path, registry, &public_url).await?;
    let storage = match prepared.storage.clone() {
        Some(storage) => storage,
        None => open_storage(&config).await?,
    };
    let auth = crate::auth::AuthState::from_config(
        &config,
        storage.clone(),
        public_url.as_str().trim_end_matches('/'),
    )?;
    let mut allowed_origins = config.server.allowed_origins.clone();
    if !allowed_origins.is_empty() {
        // The consent and connections forms post from the gateway's own origin.
        allowed_origins.push(public_url.origin().ascii_serialization());
    }
    let shutdown = prepared.shutdown.clone();
    let settings = HttpSettings {
        guard: HostGuard::new(&config.server.allowed_hosts, &allowed_origins),
        max_body_bytes: config.server.max_body_bytes,
        sse_keep_alive: config.server.sse_keep_alive,
        legacy_sse: config.server.legacy_sse,
        max_sessions_per_user: config.server.max_sessions_per_user,
        max_streams_per_session: config.server.max_streams_per_session,
        shared_streams: config
            .storage
            .redis_url
            .as_ref()
            .map(SharedStreams::connect)
            .transpose()
            .map_err(|error| StartError::Config(error.to_string()))?,
        operator_on_main: match config.server.operator_listen {
            OperatorListen::Main => config.server.operator_token.clone(),
            OperatorListen::Address(_) => None,
        },
    };
    let relay = Arc::new(
        SignalRelay::new(storage.clone(), prepared.keyring.clone())
            .with_call_timeout(config.server.call_timeout),
    );
    prepared.gateway.relay_retries_through(relay.clone());
    let sessions = Arc::new(SqlSessionStore::new(
        storage,
        SessionTiming {
            idle_timeout: config.server.session_idle_timeout,
            recheck: config.server.session_recheck,
        },
    ));
    let live_sessions = Arc::new(SharedSessionManager::new(sessions.clone()));
    relay.clone().spawn(
        live_sessions.clone(),
        prepared.gateway.catalog_changes(),
        shutdown.clone(),
    );
    spawn_session_sweep(
        sessions.clone(),
        prepared.gateway.clone(),
        config.server.session_idle_timeout,
        shutdown.clone(),
    );
    if let (Some(auth), Some(broker)) = (&auth, &prepared.broker) {
        auth.share_sign_ins(broker.sign_ins().clone());
    }
    let auth_routes = auth.clone().map(|state| (state, config.auth.sandbox_idp));
    let operator_gateway = prepared.gateway.clone();
    let mut router = http::router(
        prepared.gateway,
        sessions,
        live_sessions,
        relay,
        &settings,
        shutdown.clone(),
        auth_routes,
    );
    if let Some(broker) = &prepared.broker {
        // DEMO/TESTS: the dev sign-in, when enabled, stands in for the identity provider.
        let dev = config
            .broker
            .dev_login
            .then(|| Arc::new(DevIdentity::new(broker.keyring_arc())));
        let identity: Arc<dyn crate::broker::WebIdentity> = match (&dev, &auth) {
            (Some(dev), _) => dev.clone(),
            (None, Some(auth)) => Arc::new(SignedInUser(auth.clone())),
            (None, None) => Arc::new(NoWebIdentity),
        };
        router = router.merge(
            crate::broker::web::routes(broker.clone(), identity, dev.clone()).layer(
                axum::middleware::from_fn_with_state(
                    settings.guard.clone(),
                    crate::transport::guard::enforce,
                ),
            ),
        );
        if let Some(dev) = dev {
            router = router.layer(axum::middleware::from_fn_with_state(
                dev,
                crate::broker::identity::dev_principal,
            ));
        }
    }
    let limits = ConnectionLimits {
        header_read_timeout: config.server.header_read_timeout,
        idle_timeout: config.server.idle_timeout,
        body_read_timeout: config.server.body_read_timeout,
    };
    let operator_addr = match config.server.operator_listen {
        OperatorListen::Main => None,
        OperatorListen::Address(operator_listen) => {
            let listener = tokio::net::TcpListener::bind(operator_listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: operator_listen,
                    source,
                })?;
            let operator_addr = listener.local_addr().map_err(|source| StartError::Listen {
                addr: operator_listen,
                source,
            })?;
            let routes = operator::router(
                operator_gateway,
                settings.guard.with_ip_literals(),
                config.server.operator_token.as_ref(),
            );
            tracing::info!(url = %format!("http://{operator_addr}/metrics"), "operator endpoints");
            tokio::spawn(server::serve(listener, routes, limits, shutdown.clone()));
            Some(operator_addr)
        }
    };
    let server = tokio::spawn(server::serve(listener, router, limits, shutdown.clone()));
    Ok(RunningGateway {
        addr,
        operator_addr,
        shutdown,
        tools: prepared.tools,
        #[cfg(feature = "sandbox")]
        sandbox: prepared.sandbox,
        server,
    })
}

/// No browser sign-in configured (auth mode `none`, no dev login): `/connections` asks to sign in.
struct NoWebIdentity;

impl crate::broker::WebIdentity for NoWebIdentity {
    fn current_user(&self, _: &axum::http::HeaderMap) -> Option<manifold_policy::Principal> {
        None
    }
}

/// The user signed in through the identity provider (the auth module's browser session).
struct SignedInUser(Arc<crate::auth::AuthState>);

impl crate::broker::WebIdentity for SignedInUser {
    fn current_user(&self, headers: &axum::http::HeaderMap) -> Option<manifold_policy::Principal> {
        crate::auth::cookie::signed_in_user(&self.0, headers)
    }
}

/// `public_url` with port 0 replaced by the port actually bound (the demo on `--listen …:0`).
pub fn effective_public_url(url: &str, addr: SocketAddr) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.port() == Some(0) => {
            let _ = parsed.set_port(Some(addr.port()));
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        _ => url.trim_end_matches('/').to_owned(),
    }
}

/// Ends idle sessions every few minutes (on every replica; the deletes are idempotent).
fn spawn_session_sweep(
    sessions: Arc<SqlSessionStore>,
    gateway: Arc<Gateway>,
    idle: std::time::Duration,
    stop: CancellationToken,
) {
    let every = (idle / 10).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(600),
    );
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => return,
            }
            gateway.session_logs().prune(idle);
            match sessions.sweep(idle).await {
                Ok(0) => {}
                Ok(swept) => tracing::info!(swept, "ended idle sessions"),
                Err(error) => tracing::warn!(%error, "idle session sweep failed"),
            }
        }
    });
}
