//! Shared set-up for the Drive tests: a sandbox server with the Drive emulator, an adapter
//! instance pointed at it, OAuth tokens with chosen scopes, and the emulator's request log.
#![allow(dead_code, clippy::expect_used)]

use std::sync::Arc;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use manifold_adapters::{
    Adapter, AdapterKind, CallContext, InstanceSettings, Registry, Secret, ToolError, ToolOutput,
    UpstreamClient, UpstreamConfig, drive::DriveKind, sandbox::SandboxServer,
};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

/// The emulator's static full-access token for alice.
pub const ALICE: &str = "ya29.sandbox-alice";
pub const BOB: &str = "ya29.sandbox-bob";

pub const FULL: &str = "https://www.googleapis.com/auth/drive";
pub const READONLY: &str = "https://www.googleapis.com/auth/drive.readonly";
pub const METADATA_READONLY: &str = "https://www.googleapis.com/auth/drive.metadata.readonly";
pub const FILE: &str = "https://www.googleapis.com/auth/drive.file";

pub struct Env {
    pub server: SandboxServer,
    pub adapter: Arc<dyn Adapter>,
    pub base: Url,
    pub http: reqwest::Client,
}

pub async fn start() -> Env {
    start_with(Map::new()).await
}

pub async fn start_with(settings: Map<String, Value>) -> Env {
    let mut registry = Registry::default();
    registry.register(Arc::new(DriveKind));
    let server = SandboxServer::start(&registry, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox starts");
    let base = server.base_url(DriveKind.sandbox_mount());
    let client = UpstreamClient::new(UpstreamConfig::default())
        .expect("client")
        .for_instance("drive", 8);
    let adapter = DriveKind
        .build(InstanceSettings {
            name: "drive".into(),
            base_url: base.clone(),
            client,
            settings,
            credentials: Default::default(),
        })
        .expect("adapter builds");
    Env {
        server,
        adapter,
        base,
        http: reqwest::Client::new(),
    }
}

pub fn ctx(credential: Option<&str>) -> CallContext {
    CallContext {
        credential: credential.map(Secret::new),
        ..CallContext::default()
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Calls a tool as alice (full access); a result must match the tool's output schema.
    pub async fn call(&self, tool: &str, args: Value) -> Result<ToolOutput, ToolError> {
        self.call_with(tool, args, &ctx(Some(ALICE))).await
    }

    pub async fn call_as(
        &self,
        token: &str,
        tool: &str,
        args: Value,
    ) -> Result<ToolOutput, ToolError> {
        self.call_with(tool, args, &ctx(Some(token))).await
    }

    pub async fn call_with(
        &self,
        tool: &str,
        args: Value,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let args = args.as_object().cloned().expect("arguments are an object");
        let spec = self
            .adapter
            .tools()
            .current()
            .into_iter()
            .find(|t| t.name == tool)
            .expect("tool exists");
        let input = jsonschema::validator_for(&Value::Object(spec.input_schema.clone()))
            .expect("input schema compiles");
        let problems: Vec<String> = input
            .iter_errors(&Value::Object(args.clone()))
            .map(|e| e.to_string())
            .collect();
        assert!(
            problems.is_empty(),
            "{tool} arguments violate the input schema: {problems:?}"
        );
        let result = self.adapter.call(tool, args, ctx).await;
        if let Ok(output) = &result {
            let schema = Value::Object(spec.output_schema);
            let validator = jsonschema::validator_for(&schema).expect("output schema compiles");
            let errors: Vec<String> = validator
                .iter_errors(&output.structured)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{tool} output violates its schema: {errors:?}\n{}",
                output.structured
            );
            assert!(!output.text.trim().is_empty());
        }
        result
    }

    pub async fn control(&self, path: &str, body: Value) {
        let status = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("control")
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }

    /// The requests the emulator received since the last [`Env::clear_requests`].
    pub async fn requests(&self) -> Vec<Value> {
        self.http
            .get(self.url("/_sandbox/requests"))
            .send()
            .await
            .expect("requests")
            .json()
            .await
            .expect("json")
    }

    pub async fn clear_requests(&self) {
        self.http
            .delete(self.url("/_sandbox/requests"))
            .send()
            .await
            .expect("clear");
    }

    /// An access token for `user` granted exactly `scopes`, through the emulator's OAuth flow
    /// (authorization code with PKCE).
    pub async fn token(&self, user: &str, scopes: &[&str]) -> String {
        let verifier = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefghij";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let redirect = "http://127.0.0.1:1/callback";
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let mut url = Url::parse(&self.url("/oauth/authorize")).expect("url");
        url.query_pairs_mut().extend_pairs([
            ("client_id", "manifold"),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("scope", &scopes.join(" ")),
            ("login_hint", user),
            ("access_type", "offline"),
            ("prompt", "consent"),
        ]);
        let answer = client.get(url).send().await.expect("authorize");
        let location =
            Url::parse(answer.headers()["location"].to_str().expect("location")).expect("redirect");
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code");
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect),
                ("client_id", "manifold"),
                ("code_verifier", verifier),
            ])
            .finish();
        let body: Value = self
            .http
            .post(self.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    /// The id of the item called `name` (found with the full-access token).
    pub async fn id_of(&self, name: &str) -> String {
        let out = self
            .call(
                "search_files",
                json!({ "query": name, "match": "name", "page_size": 100 }),
            )
            .await
            .expect("search")
            .structured;
        out["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["name"] == name)
            .and_then(|f| f["id"].as_str())
            .unwrap_or_else(|| panic!("no file named {name}"))
            .to_owned()
    }
}
