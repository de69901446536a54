//! Shared set-up for the Graph contract and permission tests: the three adapters against one
//! Graph emulator, and a script that calls every tool once while the emulator's request log
//! (`/_sandbox/requests`) records which Graph requests each tool sent.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use manifold_adapters::{
    Adapter, AdapterKind, CallContext, InstanceSettings, Registry, Secret, ToolError, ToolOutput,
    UpstreamClient, UpstreamConfig,
    graph::{OutlookKind, SharePointKind, TeamsKind},
    sandbox::SandboxServer,
};
use serde_json::{Map, Value};

pub mod paths;
mod script;

pub const ALICE: &str = "graph_sandbox_alice";

pub struct Env {
    pub server: SandboxServer,
    pub base: String,
    pub http: reqwest::Client,
    pub kinds: Vec<(&'static str, Arc<dyn Adapter>)>,
}

/// What one tool call sent: the emulator's log entries (`method`, `path`, `query`, `body`).
#[derive(Debug)]
pub struct Recorded {
    pub kind: &'static str,
    pub tool: String,
    pub scopes: Vec<String>,
    pub requests: Vec<Value>,
}

pub async fn start() -> Env {
    let registry = Registry::builtin();
    let server = SandboxServer::start(&registry, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = server.base_url("graph");
    let build = |kind: &dyn AdapterKind| {
        let client = UpstreamClient::new(UpstreamConfig::default())
            .unwrap()
            .for_instance(kind.id(), 8);
        kind.build(InstanceSettings {
            name: kind.id().into(),
            base_url: base.clone(),
            client,
            settings: Map::new(),
            credentials: Default::default(),
        })
        .unwrap()
    };
    let kinds = vec![
        ("outlook", build(&OutlookKind)),
        ("teams", build(&TeamsKind)),
        ("sharepoint", build(&SharePointKind)),
    ];
    Env {
        base: base.to_string().trim_end_matches('/').to_owned(),
        server,
        http: reqwest::Client::new(),
        kinds,
    }
}

pub fn ctx(token: &str) -> CallContext {
    CallContext {
        credential: Some(Secret::new(token)),
        ..CallContext::default()
    }
}

impl Env {
    pub fn adapter(&self, kind: &str) -> &Arc<dyn Adapter> {
        &self.kinds.iter().find(|(k, _)| *k == kind).unwrap().1
    }

    pub async fn call_as(
        &self,
        kind: &str,
        tool: &str,
        args: Value,
        token: &str,
    ) -> Result<ToolOutput, ToolError> {
        let args = args.as_object().cloned().unwrap();
        self.adapter(kind).call(tool, args, &ctx(token)).await
    }

    pub async fn control(&self, path: &str, body: Value) {
        let status = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }

    pub async fn requests(&self) -> Vec<Value> {
        let url = format!("{}/_sandbox/requests", self.base);
        let log: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log.as_array().unwrap().clone()
    }

    async fn clear_requests(&self) {
        let url = format!("{}/_sandbox/requests", self.base);
        let status = self.http.delete(url).send().await.unwrap().status();
        assert!(status.is_success());
    }

    /// Calls `tool` as alice (it must succeed) and returns its result with what it sent.
    pub(crate) async fn record(
        &self,
        kind: &'static str,
        tool: &str,
        args: Value,
    ) -> (Value, Recorded) {
        self.clear_requests().await;
        let out = self
            .call_as(kind, tool, args, ALICE)
            .await
            .unwrap_or_else(|e| panic!("{kind}.{tool}: {e}"));
        let spec = self
            .adapter(kind)
            .tools()
            .current()
            .into_iter()
            .find(|t| t.name == tool)
            .unwrap();
        let requests = self.requests().await;
        assert!(!requests.is_empty(), "{kind}.{tool} sent nothing");
        let recorded = Recorded {
            kind,
            tool: tool.into(),
            scopes: spec.scopes,
            requests,
        };
        (out.structured, recorded)
    }
}
