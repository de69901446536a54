//! A downstream rmcp client of a gateway that has the test upstream (`upstream_mcp.rs`) behind
//! it as `[adapters.up] kind = "mcp"`: shared by the tests of the `mcp` kind.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation},
    service::NotificationContext,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{TestGateway, upstream_mcp::Upstream};

/// What the downstream client heard from the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    ToolsChanged,
    ResourcesChanged,
    PromptsChanged,
    Updated(String),
}

/// The downstream client: tells what it hears.
pub struct Client(pub mpsc::UnboundedSender<Heard>);

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("downstream", "1"),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.0.send(Heard::ToolsChanged);
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.0.send(Heard::ResourcesChanged);
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.0.send(Heard::PromptsChanged);
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(Heard::Updated(params.uri));
    }
}

pub fn instance(url: &str, extra: &str) -> String {
    format!(
        "\n[adapters.up]\nkind = \"mcp\"\nbase_url = \"{url}\"\n{extra}\n[adapters.up.credentials]\ntoken = \"upstream-secret\"\n"
    )
}

pub async fn tool_names(client: &rmcp::service::RunningService<RoleClient, Client>) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect()
}

/// Waits until the gateway lists `name`.
pub async fn until_listed(client: &rmcp::service::RunningService<RoleClient, Client>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !tool_names(client).await.iter().any(|n| n == name) {
        assert!(Instant::now() < deadline, "{name} never listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = arguments.as_object().cloned();
    params
}

pub async fn connect(
    url: &str,
) -> (
    rmcp::service::RunningService<RoleClient, Client>,
    mpsc::UnboundedReceiver<Heard>,
) {
    let (sender, changes) = mpsc::unbounded_channel();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    (Client(sender).serve(transport).await.unwrap(), changes)
}

/// The test upstream behind a gateway, and a downstream client of the gateway.
pub struct Setup {
    pub stop: CancellationToken,
    pub upstream: Arc<Upstream>,
    pub gateway: TestGateway,
    pub client: rmcp::service::RunningService<RoleClient, Client>,
    pub changes: mpsc::UnboundedReceiver<Heard>,
}

/// Serves the test upstream, puts a gateway in front of it (`settings`: extra TOML of the
/// instance) and connects once `up_<wait_for>` is listed.
pub async fn behind_gateway(settings: &str, wait_for: &str) -> Setup {
    let stop = CancellationToken::new();
    let upstream = Arc::new(Upstream::default());
    let url = upstream.serve(stop.clone()).await;
    let gateway = super::start(&instance(&url, settings)).await;
    let (client, changes) = connect(&gateway.url()).await;
    until_listed(&client, &format!("up_{wait_for}")).await;
    Setup {
        stop,
        upstream,
        gateway,
        client,
        changes,
    }
}

impl Setup {
    pub async fn end(self) {
        self.client.cancel().await.unwrap();
        self.gateway.running.shutdown.cancel();
        self.stop.cancel();
    }
}

/// The gateway's `/healthz` text.
pub async fn healthz(gateway: &TestGateway) -> String {
    reqwest::get(format!("{}/healthz", gateway.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
