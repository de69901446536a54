//! Shared set-up for the Dropbox and Box tests: a sandbox server with one kind's emulator, an
//! adapter pointed at it, and calls whose results are checked against the tool's output schema.
#![allow(dead_code, clippy::expect_used)]

pub mod oauth;
pub mod record;

use std::sync::Arc;

use manifold_adapters::{
    Adapter, AdapterKind, CallContext, InstanceSettings, Registry, Secret, ToolError, ToolOutput,
    UpstreamClient, UpstreamConfig, sandbox::SandboxServer,
};
use serde_json::{Map, Value};
use url::Url;

pub struct Env {
    pub server: Option<SandboxServer>,
    /// What the emulator answered, when started with [`start_recording`].
    pub answers: record::Answers,
    served: Option<record::Served>,
    pub adapter: Arc<dyn Adapter>,
    pub base: Url,
    pub http: reqwest::Client,
    pub token: &'static str,
}

pub async fn start(kind: Arc<dyn AdapterKind>, token: &'static str) -> Env {
    let mut registry = Registry::default();
    registry.register(kind.clone());
    let server = SandboxServer::start(&registry, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox starts");
    let base = server.base_url(kind.sandbox_mount());
    let mut env = build(kind, token, base);
    env.server = Some(server);
    env
}

/// Like [`start`], with every answer of the emulator kept in `Env::answers`.
pub async fn start_recording(kind: Arc<dyn AdapterKind>, token: &'static str) -> Env {
    let (addr, answers, served) = record::serve(kind.as_ref()).await;
    let base = Url::parse(&format!("http://{addr}/{}", kind.sandbox_mount())).expect("base");
    let mut env = build(kind, token, base);
    env.answers = answers;
    env.served = Some(served);
    env
}

fn build(kind: Arc<dyn AdapterKind>, token: &'static str, base: Url) -> Env {
    let client = UpstreamClient::new(UpstreamConfig::default())
        .expect("client")
        .for_instance(kind.id(), 8);
    let adapter = kind
        .build(InstanceSettings {
            name: kind.id().into(),
            base_url: base.clone(),
            client,
            settings: Map::new(),
            credentials: Default::default(),
        })
        .expect("adapter builds");
    Env {
        server: None,
        answers: record::Answers::default(),
        served: None,
        adapter,
        base,
        http: reqwest::Client::new(),
        token,
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

    pub async fn call(&self, tool: &str, args: Value) -> Result<ToolOutput, ToolError> {
        self.call_with(tool, args, &ctx(Some(self.token))).await
    }

    /// Calls a tool; its arguments must match the input schema and a success the output schema.
    pub async fn call_with(
        &self,
        tool: &str,
        args: Value,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let spec = self
            .adapter
            .tools()
            .current()
            .into_iter()
            .find(|t| t.name == tool)
            .expect("tool exists");
        let input = jsonschema::validator_for(&Value::Object(spec.input_schema.clone()))
            .expect("input schema");
        assert!(
            input.is_valid(&args),
            "{tool}: test arguments violate the input schema: {args}"
        );
        let result = self
            .adapter
            .call(tool, args.as_object().cloned().expect("object"), ctx)
            .await;
        if let Ok(output) = &result {
            let validator = jsonschema::validator_for(&Value::Object(spec.output_schema))
                .expect("output schema");
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

    pub async fn recorded(&self) -> Vec<Value> {
        self.http
            .get(self.url("/_sandbox/requests"))
            .send()
            .await
            .expect("requests")
            .json()
            .await
            .expect("json")
    }

    /// Follows `next_cursor` from `first` to the end; returns every item's id and the page count.
    pub async fn page_all(&self, tool: &str, args: Value, key: &str) -> (Vec<String>, usize) {
        let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, Value::Null);
        loop {
            let mut page_args = args.clone();
            if !cursor.is_null() {
                page_args["cursor"] = cursor.clone();
            }
            let out = self.call(tool, page_args).await.expect("page").structured;
            pages += 1;
            for item in out[key].as_array().expect("items") {
                ids.push(item["id"].as_str().expect("id").to_owned());
            }
            cursor = out["next_cursor"].clone();
            if cursor.is_null() {
                return (ids, pages);
            }
        }
    }
}

/// Office documents are read by the shared extractor once it supports them; until then it must
/// say so clearly. Either outcome passes; anything else (a crash, a wrong error) fails.
pub fn text_or_unsupported(result: Result<ToolOutput, ToolError>, expected: &str) {
    match result {
        Ok(out) => assert!(
            out.structured["text"]
                .as_str()
                .expect("text")
                .contains(expected),
            "{}",
            out.structured
        ),
        Err(ToolError::InvalidArguments(message)) => {
            assert!(message.contains("cannot read"), "{message}")
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}
