//! The config file's types. Every struct denies unknown keys so a typo is an error, not a
//! silently ignored setting.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use manifold_adapters::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// `manifold.toml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub upstream: UpstreamSection,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub broker: BrokerConfig,
    #[serde(default)]
    pub sandbox: SandboxSection,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub policy: PolicySection,
    /// What fetches a request can trigger (client metadata, identity provider) may reach.
    #[serde(default)]
    pub outbound: super::OutboundConfig,
    /// Adapter instances by name. The name is the default tool prefix.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, AdapterInstance>")]
    pub adapters: BTreeMap<Spanned<String>, AdapterInstance>,
}

/// `[server]`: the public MCP endpoint.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    #[schemars(with = "String")]
    pub listen: SocketAddr,
    /// The URL clients use to reach this gateway (printed by `demo`, later the OAuth issuer).
    pub public_url: Option<String>,
    /// `Host` header values (host or host:port) accepted; anything else gets 403. Empty accepts
    /// every host (only behind a proxy that checks it).
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted (scheme://host[:port], `:*` for any port); a request with any
    /// other `Origin` gets 403. Requests without `Origin` (non-browser clients) pass.
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted; larger bodies get 413.
    pub max_body_bytes: usize,
    /// How many tools one `tools/list` page holds.
    pub tools_page_size: usize,
    /// Upper bound for one tool call, upstream retries included. Below ChatGPT's own limit of
    /// about 60 s, so the model reads the gateway's answer (what to narrow) instead of a client
    /// timeout.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub call_timeout: Duration,
    /// SSE keep-alive interval on open streams.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub sse_keep_alive: Duration,
    /// Also serve the 2024-11-05 HTTP+SSE transport (`GET /sse`, `POST /messages`).
    pub legacy_sse: bool,
    /// A session unused this long is ended (its next request gets 404).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub session_idle_timeout: Duration,
    /// How long a replica trusts its last look at a session in the shared database before
    /// asking again. A session ended on this replica is gone here at once; one ended on another
    /// replica is gone here within this time. `0s` asks the database on every request.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub session_recheck: Duration,
    /// A new connection must send its first complete request within this time, and on HTTP/1
    /// every request's headers must arrive within it; else the connection is closed (slowloris).
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub header_read_timeout: Duration,
    /// A connection with no request in progress for this long is closed (an open SSE stream is a
    /// request in progress).
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub idle_timeout: Duration,
    /// A request's body must have arrived within this time after its headers; a slower one gets
    /// 408 (a body trickled a byte at a time).
    #[serde(default = "default_body_read_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub body_read_timeout: Duration,
    /// Sessions one signed-in user may have open at once, across all replicas; the next
    /// `initialize` gets 429 with a JSON-RPC error until one ends. Legacy `GET /sse` streams
    /// live in one process and are counted per replica, against the same number.
    #[serde(default = "default_max_sessions_per_user")]
    pub max_sessions_per_user: usize,
    /// Requests one session may have in progress at once (GET streams and POSTs whose answer is
    /// still being sent); more get 429 with a JSON-RPC error. Counted across replicas with
    /// `storage.redis_url`, else on each replica.
    #[serde(default = "default_max_streams_per_session")]
    pub max_streams_per_session: usize,
    /// Where the operator endpoints (`/metrics`) are served: an address of their own (default
    /// `127.0.0.1:0`: loopback, on a port chosen at start and logged; set a fixed port for a
    /// scraper), or `"main"`: on `listen`, which then requires `operator_token`.
    #[serde(default)]
    pub operator_listen: OperatorListen,
    /// When set, the operator endpoints require `Authorization: Bearer <token>` wherever they are
    /// served. Keep it out of the file: `MANIFOLD_SERVER__OPERATOR_TOKEN`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub operator_token: Option<Secret>,
}

/// Where the operator endpoints listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(with = "String")]
pub enum OperatorListen {
    /// A listener of their own.
    Address(SocketAddr),
    /// The main listener (`server.listen`), behind `operator_token`.
    Main,
}

impl Default for OperatorListen {
    fn default() -> Self {
        Self::Address(SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

impl TryFrom<String> for OperatorListen {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        if value == "main" {
            return Ok(Self::Main);
        }
        value
            .parse()
            .map(Self::Address)
            .map_err(|_| format!("`{value}` is neither an address (host:port) nor \"main\""))
    }
}

impl From<OperatorListen> for String {
    fn from(listen: OperatorListen) -> Self {
        match listen {
            OperatorListen::Address(addr) => addr.to_string(),
            OperatorListen::Main => "main".into(),
        }
    }
}

fn default_header_read_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_body_read_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(120)
}

fn default_max_sessions_per_user() -> usize {
    100
}

fn default_max_streams_per_session() -> usize {
    32
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: vec![],
            max_body_bytes: 4 * 1024 * 1024,
            tools_page_size: 100,
            call_timeout: Duration::from_secs(45),
            sse_keep_alive: Duration::from_secs(15),
            legacy_sse: true,
            session_idle_timeout: Duration::from_secs(24 * 3600),
            session_recheck: Duration::from_secs(1),
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            body_read_timeout: default_body_read_timeout(),
            max_sessions_per_user: default_max_sessions_per_user(),
            max_streams_per_session: default_max_streams_per_session(),
            operator_listen: OperatorListen::default(),
            operator_token: None,
        }
    }
}

/// `[storage]`: where sessions and (later) tokens and audit records live.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://path/to/file.db` (the default, under `data_dir`) or `postgres://…` for several
    /// replicas. May carry a password: override with `MANIFOLD_STORAGE__URL`.
    #[schemars(with = "Option<String>")]
    pub url: Option<Secret>,
    /// Directory for the SQLite file and generated keys.
    pub data_dir: PathBuf,
    /// `redis://…`: counts what every replica must see at once, today the requests in progress
    /// per session (`server.max_streams_per_session`). Without it each replica counts its own.
    /// May carry a password: override with `MANIFOLD_STORAGE__REDIS_URL`. Quotas name their
    /// Redis in `quotas.toml`.
    #[schemars(with = "Option<String>")]
    pub redis_url: Option<Secret>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from("manifold-data"),
            redis_url: None,
        }
    }
}

/// `[upstream]`: the HTTP client adapters use to reach providers.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSection {
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    pub retry: RetrySection,
}

impl Default for UpstreamSection {
    fn default() -> Self {
        let defaults = manifold_adapters::UpstreamConfig::default();
        Self {
            connect_timeout: defaults.connect_timeout,
            request_timeout: defaults.request_timeout,
            retry: RetrySection::default(),
        }
    }
}

/// `[upstream.retry]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySection {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// No retry starts past this much time since the first attempt.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub budget: Duration,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub max_backoff: Duration,
}

impl Default for RetrySection {
    fn default() -> Self {
        let defaults = manifold_adapters::upstream::RetryPolicy::default();
        Self {
            max_attempts: defaults.max_attempts,
            budget: defaults.budget,
            initial_backoff: defaults.initial_backoff,
            max_backoff: defaults.max_backoff,
        }
    }
}

/// `[policy]`: Cedar policies, quotas and redaction (files in `dir`), and the audit log.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Directory of `*.cedar` policies, with optional `quotas.toml` and `redaction.toml`. Without
    /// it every caller may use every tool (a plain proxy); with it, default deny.
    pub dir: Option<PathBuf>,
    /// Reload the directory when its files change (a broken change is refused, the last good
    /// policy stays in force).
    pub watch: bool,
    /// Append-only, hash-chained audit log; `<data_dir>/audit.jsonl` when not set.
    pub audit_file: Option<PathBuf>,
    /// Turn the audit log off (not recommended).
    pub audit: bool,
    /// fsync after every record (survives power loss, not only a killed process).
    pub audit_fsync: bool,
    /// Keep raw tool arguments in the audit log next to their digest.
    pub audit_include_args: bool,
    /// How often the audit log's head (record count, last hash) is checkpointed in the database,
    /// so a truncated log is refused at the next start and by `manifold audit verify`.
    #[serde(
        with = "humantime_serde",
        default = "default_audit_checkpoint_interval"
    )]
    #[schemars(with = "String")]
    pub audit_checkpoint_interval: Duration,
}

fn default_audit_checkpoint_interval() -> Duration {
    Duration::from_secs(10)
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            dir: None,
            watch: true,
            audit_file: None,
            audit: true,
            audit_fsync: false,
            audit_include_args: false,
            audit_checkpoint_interval: default_audit_checkpoint_interval(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `manifold=debug`; `MANIFOLD_LOG` overrides it.
    pub filter: String,
    /// One JSON object a line instead of human-readable text.
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            json: false,
        }
    }
}

/// `[broker]`: per-user provider connections (OAuth) made at `/connections`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// DEMO AND TESTS ONLY: serve `/connections/dev-login?user=<name>`, which signs anyone in as
    /// anyone with a sealed cookie. Replaced by the real login of the authentication module.
    pub dev_login: bool,
    /// DEMO ONLY: the user an unauthenticated MCP caller acts as (its provider tokens are used).
    /// Leave unset in production: anonymous callers then get no per-user credentials.
    pub anonymous_user: Option<String>,
    /// Users connected to every sandbox provider at start by running the authorization-code
    /// flow headlessly against the emulators (the demo connects `alice` and `bob`).
    pub demo_users: Vec<String>,
    /// Access tokens this close to expiry are refreshed before use.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub refresh_skew: Duration,
    /// How long a started connect may take before its `state` is refused.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub connect_timeout: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            dev_login: false,
            anonymous_user: None,
            demo_users: Vec::new(),
            refresh_skew: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(600),
        }
    }
}

/// `[sandbox]`: where `sandbox = true` instances find their emulators.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// An already running sandbox server to use instead of starting one in this process, so
    /// several gateway processes (replica tests) share one emulated provider.
    pub url: Option<String>,
}

/// How an instance's tool names are exposed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrefixMode {
    /// `<prefix>_<tool>`.
    #[default]
    Always,
    /// The tool's own name: for proxying a single upstream unchanged.
    Never,
}

/// `[adapters.<name>]`: one backend instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdapterInstance {
    /// The adapter kind (`linear`, …).
    #[schemars(with = "String")]
    pub kind: Spanned<String>,
    /// Tool-name prefix; defaults to the instance name. Only `[A-Za-z0-9_-]`.
    #[schemars(with = "Option<String>")]
    pub prefix: Option<Spanned<String>>,
    #[serde(default)]
    pub prefix_mode: PrefixMode,
    /// The provider API root; defaults to the kind's public API.
    #[schemars(with = "Option<String>")]
    pub base_url: Option<Spanned<String>>,
    /// Point this instance at the kind's built-in emulator (demo and tests only; needs a build
    /// with the `sandbox` feature).
    #[serde(default)]
    pub sandbox: bool,
    /// Most requests in flight to this provider at once.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Hide and deny every tool of this instance that is not read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Tags per adapter-local tool name, visible to policies as `resource.tags`.
    #[serde(default)]
    pub tool_tags: BTreeMap<String, Vec<String>>,
    /// Hide this instance without deleting its section.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Only these adapter-local tool names are exposed (all when absent).
    #[schemars(with = "Option<Vec<String>>")]
    pub tools: Option<Vec<Spanned<String>>>,
    /// Per adapter-local tool name: another exposed name, title, description or hints, and
    /// arguments pinned to fixed values and hidden from the model (`config/overrides.rs`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, super::ToolOverrideConfig>")]
    pub overrides: BTreeMap<Spanned<String>, super::ToolOverrideConfig>,
    /// Credentials for the provider: `token` (one shared credential for every caller), or
    /// `client_id` and `client_secret` of the provider OAuth app through which each user connects
    /// their own account at `/connections` (sandbox instances need neither). Override each with
    /// `MANIFOLD_ADAPTERS__<NAME>__CREDENTIALS__<KEY>`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub credentials: BTreeMap<String, Secret>,
    /// Kind-specific settings.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: toml::Table,
}

fn default_max_concurrency() -> usize {
    32
}

fn default_true() -> bool {
    true
}

/// Who may call `/mcp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Anyone who reaches the gateway (an anonymous principal): only behind another gate.
    #[default]
    None,
    /// The gateway is its own OAuth 2.1 authorization server; users log in at `[auth.oidc]`.
    Builtin,
    /// Access tokens come from another authorization server (`[auth.external]`).
    External,
}

/// `[auth]`: inbound authorization of MCP clients.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Lifetime of the JWT access tokens the gateway issues.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token (each refresh rotates it).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub refresh_token_ttl: Duration,
    /// A refresh token used again within this time of its first use (a client retrying after
    /// a lost answer, as ChatGPT does) gets the same new token pair once, instead of revoking
    /// every token of the grant; a reuse later than this, or a second one, still revokes them.
    /// `0s` revokes on any reuse.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub refresh_retry_grace: Duration,
    /// A new signing key is made this often; the previous one stays valid for verification.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub signing_key_rotation: Duration,
    /// How long a replica trusts its last check that a token's grant is not revoked. A grant
    /// revoked on this replica stops working here at once, on another within this time; `0s`
    /// asks the database on every request.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub revocation_recheck: Duration,
    /// Scopes the gateway grants (and names in its 401 challenge).
    pub scopes: Vec<String>,
    /// Allows `manifold token` to mint tokens from this config (the demo always may).
    pub dev_tokens: bool,
    /// Serve the built-in sandbox OpenID provider at `/sandbox-idp` and log users in there
    /// (demo and tests; needs the `sandbox` feature). Used when `[auth.oidc]` is absent.
    pub sandbox_idp: bool,
    /// Accept `http://` client metadata document URLs (tests only; `[outbound]` must also allow
    /// http and the address).
    pub allow_insecure_client_metadata: bool,
    /// The upstream OpenID Connect identity provider users log in with (mode `builtin`).
    pub oidc: Option<OidcConfig>,
    /// The external authorization server (mode `external`).
    pub external: Option<ExternalAuthConfig>,
    pub registration: RegistrationConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            access_token_ttl: Duration::from_secs(600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_retry_grace: Duration::from_secs(30),
            signing_key_rotation: Duration::from_secs(24 * 3600),
            revocation_recheck: Duration::from_secs(1),
            scopes: vec!["mcp".into()],
            dev_tokens: false,
            sandbox_idp: false,
            allow_insecure_client_metadata: false,
            oidc: None,
            external: None,
            registration: RegistrationConfig::default(),
        }
    }
}

/// `[auth.oidc]`: the identity provider users log in with.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Issuer URL; discovery is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Override with `MANIFOLD_AUTH__OIDC__CLIENT_SECRET`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub client_secret: Option<Secret>,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

/// `[auth.external]`: an authorization server whose access tokens (JWTs) are accepted.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalAuthConfig {
    pub issuer: String,
    pub jwks_url: String,
    /// Required `aud`; defaults to `<public_url>/mcp`.
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

/// `[auth.registration]`: limits of dynamic client registration.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Serve `/register` (RFC 7591).
    pub enabled: bool,
    pub max_redirect_uris: usize,
    pub max_redirect_uri_length: usize,
    pub max_client_name_length: usize,
    /// Registrations accepted per minute, across all callers of this replica (the ceiling).
    pub per_minute: u32,
    pub max_body_bytes: usize,
    /// Registrations accepted per minute from one client address (an IPv6 caller's /64), so one
    /// caller cannot use up the ceiling for everyone.
    #[serde(default = "default_per_address_per_minute")]
    pub per_address_per_minute: u32,
    /// Proxies (CIDRs) whose `X-Forwarded-For` names the client address; from any other peer
    /// the header is ignored and the TCP peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

fn default_per_address_per_minute() -> u32 {
    10
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_redirect_uris: 5,
            max_redirect_uri_length: 512,
            max_client_name_length: 100,
            per_minute: 60,
            max_body_bytes: 16 * 1024,
            per_address_per_minute: default_per_address_per_minute(),
            trusted_proxies: Vec::new(),
        }
    }
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

fn default_email_claim() -> String {
    "email".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}
