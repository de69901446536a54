//! Shared set-up for the Linear tests: a sandbox server with the Linear emulator and an adapter
//! instance pointed at it.
#![allow(dead_code, clippy::expect_used)]

use std::sync::Arc;

use manifold_adapters::{
    Adapter, AdapterKind, CallContext, InstanceSettings, Registry, Secret, ToolError, ToolOutput,
    UpstreamClient, UpstreamConfig, linear::LinearKind, sandbox::SandboxServer,
};
use serde_json::{Map, Value};
use url::Url;

pub const ALICE: &str = "lin_api_sandbox_alice";

pub struct Env {
    pub server: SandboxServer,
    pub adapter: Arc<dyn Adapter>,
    pub base: Url,
    pub http: reqwest::Client,
}

pub async fn start() -> Env {
    let mut registry = Registry::default();
    registry.register(Arc::new(LinearKind));
    let server = SandboxServer::start(&registry, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox starts");
    let base = server.base_url("linear");
    let client = UpstreamClient::new(UpstreamConfig::default())
        .expect("client")
        .for_instance("linear", 8);
    let adapter = LinearKind
        .build(InstanceSettings {
            name: "linear".into(),
            base_url: base.clone(),
            client,
            settings: Map::new(),
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

    /// Calls a tool as alice; a successful result must match the tool's output schema.
    pub async fn call(&self, tool: &str, args: Value) -> Result<ToolOutput, ToolError> {
        self.call_with(tool, args, &ctx(Some(ALICE))).await
    }

    pub async fn call_with(
        &self,
        tool: &str,
        args: Value,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let args = args.as_object().cloned().expect("arguments are an object");
        let result = self.adapter.call(tool, args, ctx).await;
        if let Ok(output) = &result {
            let spec = self
                .adapter
                .tools()
                .current()
                .into_iter()
                .find(|t| t.name == tool)
                .expect("tool exists");
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
}
