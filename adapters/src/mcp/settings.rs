//! `[adapters.<name>]` settings of the `mcp` kind, checked at build time so `manifold check`
//! reports them without touching the network.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::BuildError;

/// How the gateway reaches the upstream server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Streamable HTTP at this URL (`base_url`).
    Http(Url),
    /// The legacy HTTP+SSE transport (2024-11-05): the event stream at this URL (`base_url`).
    Sse(Url),
    /// A child process speaking MCP on stdin/stdout; the command comes only from the config.
    Stdio {
        command: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
}

/// The `settings` table of an `mcp` instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `streamable-http` (default with a `base_url`), `sse` (a legacy HTTP+SSE server at
    /// `base_url`) or `stdio` (default with a `command`).
    transport: Option<String>,
    command: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    /// Believe the upstream's tool annotations (read-only, destructive, …) for policy.
    #[serde(default)]
    trust_annotations: bool,
    /// Seconds between tool list refreshes besides the upstream's change notifications.
    refresh_interval_secs: Option<u64>,
    /// Largest answer accepted from the upstream, in bytes.
    max_response_bytes: Option<usize>,
    /// Most tools taken from the upstream; the rest are refused with a logged reason.
    max_tools: Option<usize>,
    /// `static` (default: `credentials.token` / `header_*`, or none) or `oauth` (each user
    /// connects the upstream at `/connections`).
    auth: Option<String>,
    /// A client id registered with the upstream's authorization server beforehand (its secret,
    /// if any, is `credentials.client_secret`); without it the gateway registers itself.
    oauth_client_id: Option<String>,
    /// Scopes asked for on every connect.
    #[serde(default)]
    oauth_scopes: Vec<String>,
    /// The name users see on `/connections` (default: the instance name).
    display_name: Option<String>,
    /// `auth = "token_exchange"`: `{ grant = "rfc8693" | "entra_obo", audience = "…" }`.
    token_exchange: Option<RawExchange>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExchange {
    grant: String,
    audience: Option<String>,
}

/// How the gateway authenticates to the upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UpstreamAuth {
    /// The instance's own credentials (or none), one connection for every caller.
    #[default]
    Static,
    /// Each user's own OAuth token, from the broker: one connection per user.
    OAuth(OAuthSettings),
    /// The user's sign-in token exchanged for an upstream token by the broker: one connection
    /// per user, nothing to connect by hand.
    TokenExchange(ExchangeSettings),
}

/// `auth = "token_exchange"`: the gateway is a pre-registered confidential client of the
/// upstream's authorization server (discovered like `oauth`'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeSettings {
    pub client_id: String,
    pub grant: ExchangeGrant,
    pub scopes: Vec<String>,
}

/// The grant the upstream's authorization server takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeGrant {
    /// RFC 8693 token exchange, for `audience` when given.
    Rfc8693 { audience: Option<String> },
    /// Microsoft Entra on-behalf-of (`jwt-bearer`, `requested_token_use=on_behalf_of`).
    EntraObo,
}

/// `auth = "oauth"`: the authorization server is discovered from the upstream's 401 (RFC 9728).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OAuthSettings {
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub display_name: Option<String>,
}

// === impl UpstreamAuth ===

impl UpstreamAuth {
    /// Calls carry the user's own credential (from the broker) rather than the instance's.
    pub fn per_user(&self) -> bool {
        matches!(self, Self::OAuth(_) | Self::TokenExchange(_))
    }
}

/// Checked settings of one `mcp` instance.
#[derive(Debug, Clone)]
pub struct McpSettings {
    pub endpoint: Endpoint,
    pub trust_annotations: bool,
    pub refresh_interval: Duration,
    pub max_response_bytes: usize,
    pub max_tools: usize,
    pub auth: UpstreamAuth,
}

/// The default answer cap: generous for documents, small enough that one upstream cannot fill
/// the gateway's memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

// === impl McpSettings ===

impl McpSettings {
    /// Reads `settings` for an instance whose `base_url` is `base_url` (the kind's placeholder
    /// `stdio:` when the config gives none).
    pub fn parse(base_url: &Url, settings: Map<String, Value>) -> Result<Self, BuildError> {
        let raw: Raw = serde_json::from_value(Value::Object(settings)).map_err(|error| {
            BuildError::Setting {
                key: "settings".into(),
                reason: error.to_string(),
            }
        })?;
        let setting = |key: &str, reason: &str| BuildError::Setting {
            key: key.into(),
            reason: reason.into(),
        };
        let http = matches!(base_url.scheme(), "http" | "https");
        let transport = match (raw.transport.as_deref(), &raw.command) {
            (Some("stdio"), _) | (None, Some(_)) => "stdio",
            (Some("streamable-http") | None, None) => "streamable-http",
            (Some("sse"), None) => "sse",
            (Some(named @ ("streamable-http" | "sse")), Some(_)) => {
                return Err(setting(
                    "command",
                    &format!("a command is for transport = \"stdio\", not {named}"),
                ));
            }
            (Some(other), _) => {
                return Err(setting(
                    "transport",
                    &format!("unknown transport `{other}`: use streamable-http, sse or stdio"),
                ));
            }
        };
        let endpoint = if transport == "stdio" {
            let command = raw
                .command
                .filter(|command| command.first().is_some_and(|program| !program.is_empty()))
                .ok_or_else(|| {
                    setting(
                        "command",
                        "stdio needs a command: [\"program\", \"arg\", …]",
                    )
                })?;
            if http {
                return Err(setting(
                    "command",
                    "give either a base_url (Streamable HTTP) or a command (stdio), not both",
                ));
            }
            Endpoint::Stdio {
                command,
                env: raw.env,
                cwd: raw.cwd,
            }
        } else {
            if !http && transport == "sse" {
                return Err(setting(
                    "base_url",
                    "transport = \"sse\" needs the server's event stream URL: base_url = \
                     \"https://…/sse\"",
                ));
            }
            if !http {
                return Err(setting(
                    "base_url",
                    "an mcp instance needs base_url = \"https://…/mcp\" or settings.command",
                ));
            }
            if !raw.env.is_empty() || raw.cwd.is_some() {
                return Err(setting("env", "env and cwd are for stdio upstreams"));
            }
            if transport == "sse" {
                Endpoint::Sse(base_url.clone())
            } else {
                Endpoint::Http(base_url.clone())
            }
        };
        let auth = match raw.auth.as_deref() {
            None | Some("static") => {
                if raw.oauth_client_id.is_some()
                    || !raw.oauth_scopes.is_empty()
                    || raw.token_exchange.is_some()
                {
                    return Err(setting(
                        "oauth_client_id",
                        "oauth_client_id, oauth_scopes and token_exchange are for auth = \"oauth\" \
                         or \"token_exchange\"",
                    ));
                }
                UpstreamAuth::Static
            }
            Some("oauth") => {
                // Per-user tokens ride on Streamable HTTP requests; a stdio child has no
                // per-user channel and the legacy SSE stream is one per instance.
                if !matches!(endpoint, Endpoint::Http(_)) {
                    return Err(setting(
                        "auth",
                        "auth = \"oauth\" needs a Streamable HTTP upstream (an https base_url)",
                    ));
                }
                UpstreamAuth::OAuth(OAuthSettings {
                    client_id: raw.oauth_client_id.filter(|id| !id.trim().is_empty()),
                    scopes: raw.oauth_scopes,
                    display_name: raw.display_name,
                })
            }
            Some("token_exchange") => {
                if !matches!(endpoint, Endpoint::Http(_)) {
                    return Err(setting(
                        "auth",
                        "auth = \"token_exchange\" needs a Streamable HTTP upstream (an https \
                         base_url)",
                    ));
                }
                let client_id = raw
                    .oauth_client_id
                    .filter(|id| !id.trim().is_empty())
                    .ok_or_else(|| {
                        setting(
                            "oauth_client_id",
                            "token exchange needs the client id (and credentials.client_secret) \
                             the gateway is registered with at the upstream's authorization server",
                        )
                    })?;
                let exchange = raw.token_exchange.ok_or_else(|| {
                    setting(
                        "token_exchange",
                        "give token_exchange = { grant = \"rfc8693\" } or { grant = \"entra_obo\" }",
                    )
                })?;
                let grant = match exchange.grant.as_str() {
                    "rfc8693" => ExchangeGrant::Rfc8693 {
                        audience: exchange.audience,
                    },
                    "entra_obo" if exchange.audience.is_none() => ExchangeGrant::EntraObo,
                    "entra_obo" => {
                        return Err(setting(
                            "token_exchange",
                            "on-behalf-of names its target by oauth_scopes, not an audience",
                        ));
                    }
                    other => {
                        return Err(setting(
                            "token_exchange",
                            &format!("unknown grant `{other}`: use rfc8693 or entra_obo"),
                        ));
                    }
                };
                UpstreamAuth::TokenExchange(ExchangeSettings {
                    client_id,
                    grant,
                    scopes: raw.oauth_scopes,
                })
            }
            Some(other) => {
                return Err(setting(
                    "auth",
                    &format!("unknown auth `{other}`: use static, oauth or token_exchange"),
                ));
            }
        };
        let refresh_interval = Duration::from_secs(raw.refresh_interval_secs.unwrap_or(300));
        if refresh_interval < Duration::from_secs(1) {
            return Err(setting("refresh_interval_secs", "must be at least 1"));
        }
        Ok(Self {
            endpoint,
            trust_annotations: raw.trust_annotations,
            refresh_interval,
            max_response_bytes: raw
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES)
                .max(1024),
            max_tools: raw.max_tools.unwrap_or(1000).max(1),
            auth,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(base: &str, settings: Value) -> Result<McpSettings, BuildError> {
        let Value::Object(map) = settings else {
            panic!("object")
        };
        McpSettings::parse(&Url::parse(base).unwrap(), map)
    }

    #[test]
    fn a_base_url_means_streamable_http_unless_sse_is_asked_and_a_command_means_stdio() {
        let http = parse("https://crm.example/mcp", json!({})).unwrap();
        assert!(matches!(http.endpoint, Endpoint::Http(_)));
        let sse = parse("https://crm.example/sse", json!({"transport": "sse"})).unwrap();
        assert!(matches!(sse.endpoint, Endpoint::Sse(ref url) if url.path() == "/sse"));
        let stdio = parse(
            "stdio:",
            json!({"command": ["notes-mcp", "--stdio"], "env": {"A": "1"}}),
        )
        .unwrap();
        assert!(
            matches!(stdio.endpoint, Endpoint::Stdio { ref command, .. } if command.len() == 2)
        );
    }

    #[test]
    fn auth_oauth_takes_a_client_id_and_scopes_and_makes_calls_per_user() {
        let oauth = parse(
            "https://crm.example/mcp",
            json!({"auth": "oauth", "oauth_client_id": "gw", "oauth_scopes": ["crm.read"]}),
        )
        .unwrap();
        assert!(oauth.auth.per_user());
        let UpstreamAuth::OAuth(settings) = oauth.auth else {
            panic!("oauth")
        };
        assert_eq!(settings.client_id.as_deref(), Some("gw"));
        assert_eq!(settings.scopes, ["crm.read"]);
        let exchange = parse(
            "https://crm.example/mcp",
            json!({"auth": "token_exchange", "oauth_client_id": "gw",
                   "token_exchange": {"grant": "rfc8693", "audience": "crm"}}),
        )
        .unwrap();
        assert!(exchange.auth.per_user());
        assert!(matches!(
            exchange.auth,
            UpstreamAuth::TokenExchange(ExchangeSettings {
                grant: ExchangeGrant::Rfc8693 { audience: Some(_) },
                ..
            })
        ));
        let plain = parse("https://crm.example/mcp", json!({})).unwrap();
        assert!(!plain.auth.per_user());
    }

    #[test]
    fn contradictory_or_unknown_settings_are_refused_with_the_key() {
        for (base, settings, key) in [
            ("stdio:", json!({}), "base_url"),
            ("stdio:", json!({"command": []}), "command"),
            ("https://x/mcp", json!({"command": ["a"]}), "command"),
            (
                "https://x/mcp",
                json!({"transport": "carrier-pigeon"}),
                "transport",
            ),
            ("stdio:", json!({"transport": "sse"}), "base_url"),
            (
                "https://x/sse",
                json!({"transport": "sse", "command": ["a"]}),
                "command",
            ),
            (
                "https://x/sse",
                json!({"transport": "sse", "cwd": "/tmp"}),
                "env",
            ),
            ("https://x/mcp", json!({"env": {"A": "1"}}), "env"),
            ("https://x/mcp", json!({"colour": "red"}), "settings"),
            ("https://x/mcp", json!({"auth": "magic"}), "auth"),
            ("stdio:", json!({"command": ["a"], "auth": "oauth"}), "auth"),
            (
                "https://x/sse",
                json!({"transport": "sse", "auth": "oauth"}),
                "auth",
            ),
            (
                "https://x/mcp",
                json!({"oauth_client_id": "abc"}),
                "oauth_client_id",
            ),
            (
                "https://x/mcp",
                json!({"auth": "token_exchange", "token_exchange": {"grant": "rfc8693"}}),
                "oauth_client_id",
            ),
            (
                "https://x/mcp",
                json!({"auth": "token_exchange", "oauth_client_id": "gw"}),
                "token_exchange",
            ),
            (
                "https://x/mcp",
                json!({"auth": "token_exchange", "oauth_client_id": "gw",
                       "token_exchange": {"grant": "saml"}}),
                "token_exchange",
            ),
            (
                "https://x/mcp",
                json!({"auth": "token_exchange", "oauth_client_id": "gw",
                       "token_exchange": {"grant": "entra_obo", "audience": "x"}}),
                "token_exchange",
            ),
            (
                "https://x/mcp",
                json!({"refresh_interval_secs": 0}),
                "refresh_interval_secs",
            ),
        ] {
            match parse(base, settings.clone()) {
                Err(BuildError::Setting { key: got, .. }) => assert_eq!(got, key, "{settings}"),
                other => panic!("{settings}: {other:?}"),
            }
        }
    }
}
