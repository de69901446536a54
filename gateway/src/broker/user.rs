//! The per-user broker: each caller's own provider tokens, connected once at `/connections`,
//! refreshed before they expire and after a provider 401, single-flight per (user, connection)
//! in this process (an async mutex) and across replicas (a refresh lease, see [`refresh`]), so a
//! rotating refresh token is used exactly once.

use crate::auth::binding::Binding;
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use dashmap::DashMap;
use manifold_adapters::Secret;
use manifold_policy::Principal;
use url::Url;

use super::{
    BrokerError, CredentialBroker, StaticCredentials, now,
    provider::{Provider, ProviderError},
    refresh::{self, Refreshed},
    state::{self, ConnectState},
    store::{Connection, StoreError, TokenStore},
    upstream::{exchange::Exchanger, sign_ins::SignIns},
};
use crate::keyring::Keyring;

/// Settings from `[broker]` and `[server]`.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// Where browsers reach this gateway (`/connections` lives under it).
    pub public_url: Url,
    pub anonymous_user: Option<String>,
    pub refresh_skew: Duration,
    pub connect_timeout: Duration,
}

/// A provider callback that cannot complete.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the connect request is invalid, expired or was already used; start again")]
    BadState,
    #[error("this connect was started by another user")]
    WrongUser,
    #[error("this connect was started in another browser (or its cookie expired); start again")]
    OtherBrowser,
    #[error("unknown provider connection")]
    UnknownConnection,
    #[error("the provider refused the connection: {0}")]
    Provider(#[from] ProviderError),
    #[error("token storage failed: {0}")]
    Storage(#[from] StoreError),
}

/// Per-user OAuth tokens, with static tokens for the instances configured with one.
pub struct UserBroker {
    statics: StaticCredentials,
    /// Instance name → its provider connection.
    instances: HashMap<String, Arc<Provider>>,
    /// Connection id → provider, one per connection however many instances share it.
    connections: BTreeMap<String, Arc<Provider>>,
    store: TokenStore,
    keyring: Arc<Keyring>,
    flights: DashMap<(String, String), Arc<tokio::sync::Mutex<()>>>,
    settings: BrokerSettings,
    /// Connection id → every scope its tools may need (the demo grants them all).
    tool_scopes: HashMap<String, Vec<String>>,
    /// Bumped on every completed connect, for whoever waits for a user's first connection
    /// (listing an upstream MCP server's offers, `upstream::list_offers`).
    connects: tokio::sync::watch::Sender<u64>,
    /// Instance → its token exchange (`auth = "token_exchange"` upstream MCP servers).
    exchangers: HashMap<String, Arc<Exchanger>>,
    /// The sign-in tokens the exchanges trade, filled by `/mcp`'s authentication.
    sign_ins: Arc<SignIns>,
}

impl UserBroker {
    pub fn new(
        statics: StaticCredentials,
        instances: Vec<(String, Arc<Provider>)>,
        store: TokenStore,
        keyring: Arc<Keyring>,
        settings: BrokerSettings,
        tool_scopes: HashMap<String, Vec<String>>,
    ) -> Self {
        let mut connections = BTreeMap::new();
        for (_, provider) in &instances {
            connections
                .entry(provider.connection.clone())
                .or_insert_with(|| provider.clone());
        }
        Self {
            statics,
            instances: instances.into_iter().collect(),
            connections,
            store,
            keyring,
            flights: DashMap::new(),
            settings,
            tool_scopes,
            connects: tokio::sync::watch::Sender::new(0),
            exchangers: HashMap::new(),
            sign_ins: Arc::default(),
        }
    }

    /// Instances whose calls trade the caller's sign-in token for an upstream token.
    pub fn with_exchangers(mut self, exchangers: Vec<(String, Arc<Exchanger>)>) -> Self {
        if !exchangers.is_empty() {
            self.sign_ins.enable();
        }
        self.exchangers = exchangers.into_iter().collect();
        self
    }

    /// Where `/mcp`'s authentication leaves the sign-in tokens for exchange.
    pub fn sign_ins(&self) -> &Arc<SignIns> {
        &self.sign_ins
    }

    /// `instance` trades sign-in tokens (nothing to connect at `/connections`).
    pub fn exchanges(&self, instance: &str) -> bool {
        self.exchangers.contains_key(instance)
    }

    /// The upstream token for the caller on an exchanging instance.
    async fn exchanged(
        &self,
        principal: &Principal,
        exchanger: &Exchanger,
        rejected: Option<&Secret>,
    ) -> Result<Secret, BrokerError> {
        let display = || exchanger.display_name.clone();
        let user = self
            .user_for(principal)
            .ok_or_else(|| BrokerError::NoUser { display: display() })?;
        let subject = self
            .sign_ins
            .get(&user)
            .ok_or_else(|| BrokerError::NoSignIn { display: display() })?;
        exchanger
            .token(&user, &subject, rejected)
            .await
            .map_err(|reason| BrokerError::Provider {
                display: display(),
                reason,
            })
    }

    /// Changes on every completed connect.
    pub fn connects(&self) -> tokio::sync::watch::Receiver<u64> {
        self.connects.subscribe()
    }

    /// Every scope the tools of `connection` may need.
    pub fn all_tool_scopes(&self, connection: &str) -> Vec<String> {
        self.tool_scopes
            .get(connection)
            .cloned()
            .unwrap_or_default()
    }

    /// The instance's connection id, when its calls use per-user tokens.
    pub fn connection_of(&self, instance: &str) -> Option<&str> {
        if self.statics.get(instance).is_some() {
            return None;
        }
        self.instances.get(instance).map(|p| p.connection.as_str())
    }

    pub fn connections(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.connections.values()
    }

    pub fn provider(&self, connection: &str) -> Option<&Arc<Provider>> {
        self.connections.get(connection)
    }

    /// Where browsers (and authorization servers fetching the client document) reach the
    /// gateway.
    pub fn public_url(&self) -> &Url {
        &self.settings.public_url
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn keyring_arc(&self) -> Arc<Keyring> {
        self.keyring.clone()
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    /// The page that starts (re)connecting `connection` with `scopes`.
    pub fn connect_url(&self, connection: &str, scopes: &[String]) -> String {
        let mut url = self.settings.public_url.clone();
        url.set_path("/connections/connect");
        url.query_pairs_mut()
            .append_pair("connection", connection)
            .append_pair("scopes", &scopes.join(" "));
        url.to_string()
    }

    /// The caller's `sub`, or the demo's anonymous user.
    fn user_for(&self, principal: &Principal) -> Option<String> {
        principal
            .user
            .clone()
            .or_else(|| self.settings.anonymous_user.clone())
    }

    /// Begins a connect for `user`: records a single-use `state` and returns the provider's
    /// authorize URL asking for `scopes` ∪ the base scopes ∪ what is already granted.
    pub async fn start_connect(
        &self,
        user: &str,
        connection: &str,
        scopes: &[String],
        login_hint: Option<&str>,
        binding: &Binding,
    ) -> Result<Url, ConnectError> {
        let provider = self
            .provider(connection)
            .ok_or(ConnectError::UnknownConnection)?;
        let mut wanted: Vec<String> = provider.base_scopes.clone();
        if let Ok(Some(existing)) = self.store.get(user, connection).await {
            wanted.extend(existing.scopes);
        }
        wanted.extend(scopes.iter().cloned());
        wanted.sort();
        wanted.dedup();
        let expires_at =
            now() + i64::try_from(self.settings.connect_timeout.as_secs()).unwrap_or(600);
        // The sealed state carries the PKCE verifier to the callback; nothing else stores it.
        let connect = ConnectState {
            nonce: state::nonce(),
            user: user.to_owned(),
            connection: connection.to_owned(),
            verifier: Provider::new_verifier(),
            scopes: wanted.clone(),
            binding: binding.hash.clone(),
            expires_at,
        };
        let sealed = state::seal_state(&self.keyring, &connect);
        let url = provider
            .authorize(&wanted, &sealed, login_hint, &connect.verifier)
            .await?;
        self.store
            .remember_state(&connect.nonce, user, expires_at)
            .await?;
        Ok(url)
    }

    /// Completes a connect from the provider's callback. `user` is who is signed in now and
    /// `browser_nonce` the binding nonce this browser holds: a state started by someone else or
    /// in another browser is refused (login CSRF), as is a replayed one.
    pub async fn finish_connect(
        &self,
        user: &str,
        sealed_state: &str,
        code: &str,
        browser_nonce: Option<&str>,
    ) -> Result<String, ConnectError> {
        let connect =
            state::open_state(&self.keyring, sealed_state, now()).ok_or(ConnectError::BadState)?;
        if connect.user != user {
            return Err(ConnectError::WrongUser);
        }
        // Checked before the state is consumed, so the browser that did start it can finish.
        if !Binding::matches(browser_nonce, &connect.binding) {
            return Err(ConnectError::OtherBrowser);
        }
        if !self.store.take_state(&connect.nonce, user).await? {
            return Err(ConnectError::BadState);
        }
        let provider = self
            .provider(&connect.connection)
            .ok_or(ConnectError::UnknownConnection)?;
        let tokens = provider.exchange(code, &connect.verifier).await?;
        let scopes = tokens.scopes.clone().unwrap_or(connect.scopes);
        self.store
            .put(user, &connect.connection, &tokens, &scopes)
            .await?;
        tracing::info!(user, connection = %connect.connection, "provider connected");
        self.connects.send_modify(|count| *count += 1);
        Ok(connect.connection)
    }

    /// Forgets `user`'s connection, revoking its tokens at the provider where possible.
    pub async fn disconnect(&self, user: &str, connection: &str) -> Result<(), ConnectError> {
        let provider = self
            .provider(connection)
            .ok_or(ConnectError::UnknownConnection)?;
        let removed = self.store.delete(user, connection).await?;
        // RFC 7009 wherever the provider (or its emulator) has a revocation endpoint.
        if let Some(removed) = removed {
            let (token, hint) = match &removed.refresh {
                Some(refresh) => (refresh, "refresh_token"),
                None => (&removed.access, "access_token"),
            };
            if let Err(error) = provider.revoke(token, hint).await {
                tracing::warn!(connection, %error, "revocation at the provider failed");
            }
        }
        tracing::info!(user, connection, "provider disconnected");
        Ok(())
    }

    /// Incremental consent: the error asking for `scopes` when the grant lacks some.
    fn missing_scopes(
        &self,
        provider: &Provider,
        connection: &Connection,
        scopes: &[String],
    ) -> Option<BrokerError> {
        let missing: Vec<String> = scopes
            .iter()
            .filter(|s| !connection.scopes.contains(s))
            .cloned()
            .collect();
        (!missing.is_empty()).then(|| BrokerError::MissingScopes {
            connection: provider.connection.clone(),
            display: provider.display_name.clone(),
            missing: missing.join(", "),
            url: self.connect_url(&provider.connection, &union(&connection.scopes, scopes)),
        })
    }

    fn reconnect(&self, provider: &Provider, scopes: &[String]) -> BrokerError {
        BrokerError::Broken {
            connection: provider.connection.clone(),
            display: provider.display_name.clone(),
            url: self.connect_url(&provider.connection, scopes),
        }
    }

    /// A fresh access token, refreshing at most once for all concurrent callers of every
    /// replica. `rejected` is the token the provider just refused (after a 401); without it,
    /// refresh only if expiring.
    async fn refreshed(
        &self,
        user: &str,
        provider: &Arc<Provider>,
        rejected: Option<&Secret>,
    ) -> Result<Secret, BrokerError> {
        // Callers in this process queue here instead of polling the database.
        let key = (user.to_owned(), provider.connection.clone());
        let gate = self.flights.entry(key).or_default().clone();
        let _single_flight = gate.lock_owned().await;
        let outcome = refresh::refresh(
            &self.store,
            provider,
            user,
            rejected,
            self.settings.refresh_skew,
        )
        .await;
        match outcome {
            Refreshed::Fresh(access) => Ok(access),
            Refreshed::NotConnected => Err(BrokerError::NotConnected {
                connection: provider.connection.clone(),
                display: provider.display_name.clone(),
                url: self.connect_url(&provider.connection, &[]),
            }),
            Refreshed::Broken(scopes) => Err(self.reconnect(provider, &scopes)),
            Refreshed::Failed(reason) => Err(BrokerError::Provider {
                display: provider.display_name.clone(),
                reason,
            }),
            Refreshed::Storage(error) => Err(BrokerError::Storage(error)),
        }
    }
}

#[async_trait::async_trait]
impl CredentialBroker for UserBroker {
    async fn credential(
        &self,
        principal: &Principal,
        instance: &str,
        scopes: &[String],
    ) -> Result<Option<Secret>, BrokerError> {
        // An upstream MCP server's credential travels on the adapter's own connection: with
        // per-user connections configured too, its calls still take nothing from here.
        if self.statics.is_self_credentialed(instance) {
            return Ok(None);
        }
        if let Some(token) = self.statics.get(instance) {
            return Ok(Some(token.clone()));
        }
        if let Some(exchanger) = self.exchangers.get(instance) {
            return self.exchanged(principal, exchanger, None).await.map(Some);
        }
        let Some(provider) = self.instances.get(instance) else {
            return Err(BrokerError::NotConfigured(instance.to_owned()));
        };
        let user = self
            .user_for(principal)
            .ok_or_else(|| BrokerError::NoUser {
                display: provider.display_name.clone(),
            })?;
        let connection = match self.store.get(&user, &provider.connection).await {
            Ok(Some(connection)) => connection,
            Ok(None) => {
                return Err(BrokerError::NotConnected {
                    connection: provider.connection.clone(),
                    display: provider.display_name.clone(),
                    url: self.connect_url(&provider.connection, scopes),
                });
            }
            Err(StoreError::Sealed) => return Err(self.reconnect(provider, scopes)),
            Err(error) => return Err(BrokerError::Storage(error.to_string())),
        };
        if connection.broken {
            return Err(self.reconnect(provider, &union(&connection.scopes, scopes)));
        }
        if let Some(error) = self.missing_scopes(provider, &connection, scopes) {
            return Err(error);
        }
        if refresh::expiring(&connection, self.settings.refresh_skew) {
            return self.refreshed(&user, provider, None).await.map(Some);
        }
        Ok(Some(connection.access))
    }

    async fn renew(
        &self,
        principal: &Principal,
        instance: &str,
        rejected: &Secret,
    ) -> Result<Option<Secret>, BrokerError> {
        if self.statics.get(instance).is_some() {
            return Ok(None);
        }
        if let Some(exchanger) = self.exchangers.get(instance) {
            return self
                .exchanged(principal, exchanger, Some(rejected))
                .await
                .map(Some);
        }
        let (Some(provider), Some(user)) = (self.instances.get(instance), self.user_for(principal))
        else {
            return Ok(None);
        };
        self.refreshed(&user, provider, Some(rejected))
            .await
            .map(Some)
    }
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut all: Vec<String> = a.iter().chain(b).cloned().collect();
    all.sort();
    all.dedup();
    all
}
