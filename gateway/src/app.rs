//! Assembles a running gateway from a config: adapters and their catalog, storage, the handler,
//! and the HTTP server.

use std::{collections::HashMap, net::SocketAddr, path::Path, sync::Arc};

use axum::serve::ListenerExt;
use manifold_adapters::{
    InstanceSettings, Registry, Secret, UpstreamClient, UpstreamConfig, upstream::RetryPolicy,
};
use manifold_policy::AllowAll;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::{
    broker::StaticCredentials,
    config::{Config, PrefixMode, Problem},
    handler::{Gateway, HandlerSettings},
    router::{Catalog, CatalogInstance},
    session::SqlSessionStore,
    storage::{Storage, StorageError},
    transport::{
        HostGuard,
        http::{self, HttpSettings},
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
        });
    }
    match Catalog::build(instances) {
        Ok(catalog) if problems.is_empty() => Ok((catalog, StaticCredentials::new(tokens))),
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
    /// Keeps the emulators alive as long as the gateway runs.
    #[cfg(feature = "sandbox")]
    pub sandbox: Option<manifold_adapters::sandbox::SandboxServer>,
}

/// Starts the sandbox emulators (when any instance asks for them) and builds the handler state.
pub async fn prepare(
    config: &Config,
    source: &str,
    path: &Path,
    registry: &Registry,
) -> Result<Prepared, StartError> {
    #[cfg(feature = "sandbox")]
    let sandbox = if config.adapters.values().any(|i| i.sandbox && i.enabled) {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = manifold_adapters::sandbox::SandboxServer::start(registry, loopback)
            .await
            .map_err(StartError::Sandbox)?;
        Some(server)
    } else {
        None
    };
    #[cfg(feature = "sandbox")]
    let urls = sandbox
        .as_ref()
        .map(|server| move |kind: &str| server.base_url(kind));
    #[cfg(feature = "sandbox")]
    let urls_ref: Option<SandboxUrls<'_>> = urls.as_ref().map(|f| f as SandboxUrls<'_>);
    #[cfg(not(feature = "sandbox"))]
    let urls_ref: Option<SandboxUrls<'_>> = None;

    let (catalog, credentials) =
        build_catalog(config, source, registry, urls_ref).map_err(|problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("{}:{p}", path.display()))
                .collect();
            StartError::Config(lines.join("\n"))
        })?;
    let tools = catalog.len();
    // The sender is dropped: the catalog is fixed for the life of this process until config
    // reload keeps it.
    let (_catalog_tx, catalog_rx) = watch::channel(Arc::new(catalog));
    let gateway = Gateway::new(
        catalog_rx,
        Arc::new(AllowAll),
        Arc::new(credentials),
        HandlerSettings {
            tools_page_size: config.server.tools_page_size,
            call_timeout: config.server.call_timeout,
        },
    );
    Ok(Prepared {
        gateway,
        tools,
        #[cfg(feature = "sandbox")]
        sandbox,
    })
}

/// Prepares the gateway, opens storage and serves HTTP on `[server] listen`.
pub async fn start(
    config: Config,
    source: &str,
    path: &Path,
    registry: &Registry,
) -> Result<RunningGateway, StartError> {
    let prepared = prepare(&config, source, path, registry).await?;
    let storage = Storage::open(
        config.storage.url.as_ref().map(Secret::expose),
        &config.storage.data_dir,
    )
    .await?;
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
    let public_url = config
        .server
        .public_url
        .as_deref()
        .map(|url| effective_public_url(url, addr));
    let auth = match &public_url {
        Some(url) => crate::auth::AuthState::from_config(&config, storage.clone(), url)?,
        None => None,
    };
    let mut allowed_origins = config.server.allowed_origins.clone();
    if let (Some(url), false) = (&public_url, allowed_origins.is_empty()) {
        // The consent form posts from the gateway's own origin.
        let origin = url::Url::parse(url).map(|u| u.origin().ascii_serialization());
        if let Ok(origin) = origin {
            allowed_origins.push(origin);
        }
    }
    let shutdown = CancellationToken::new();
    let settings = HttpSettings {
        guard: HostGuard::new(&config.server.allowed_hosts, &allowed_origins),
        max_body_bytes: config.server.max_body_bytes,
        sse_keep_alive: config.server.sse_keep_alive,
        legacy_sse: config.server.legacy_sse,
        session_idle_timeout: config.server.session_idle_timeout,
    };
    let sessions = Arc::new(SqlSessionStore::new(storage));
    spawn_session_sweep(
        sessions.clone(),
        config.server.session_idle_timeout,
        shutdown.clone(),
    );
    let auth = auth.map(|state| (state, config.auth.sandbox_idp));
    let router = http::router(
        prepared.gateway,
        sessions,
        &settings,
        shutdown.clone(),
        auth,
    );
    let stop = shutdown.clone();
    // Answers are small and written in pieces (SSE); without NODELAY, Nagle's algorithm holds
    // the last piece for the client's delayed ACK (~40 ms).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    Ok(RunningGateway {
        addr,
        shutdown,
        tools: prepared.tools,
        #[cfg(feature = "sandbox")]
        sandbox: prepared.sandbox,
        server,
    })
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
            match sessions.sweep(idle).await {
                Ok(0) => {}
                Ok(swept) => tracing::info!(swept, "ended idle sessions"),
                Err(error) => tracing::warn!(%error, "idle session sweep failed"),
            }
        }
    });
}
