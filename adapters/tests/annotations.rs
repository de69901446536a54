//! Every native adapter tool's behaviour hints, decided tool by tool: `openWorldHint` is true
//! only for the tools that reach people or systems outside the company's workspace (mail to any
//! address, a chat across organizations, a share or link that may reach anyone); every other
//! tool only touches the workspace its provider account belongs to. A new tool must be placed
//! here on purpose: an unlisted open-world tool, or a listed one that is closed, fails.
#![allow(clippy::expect_used)]

use manifold_adapters::{InstanceSettings, Registry, UpstreamClient, UpstreamConfig};
use serde_json::Map;

/// `(kind, tool)` for every open-world native tool.
const OPEN_WORLD: &[(&str, &str)] = &[
    ("outlook", "send_message"),
    ("outlook", "reply_message"),
    ("outlook", "forward_message"),
    ("outlook", "send_draft"),
    ("teams", "send_chat_message"),
    ("drive", "share_file"),
    ("box", "create_share_link"),
    ("dropbox", "create_share_link"),
];

#[test]
fn open_world_is_true_exactly_for_tools_that_reach_outside_the_workspace() {
    let registry = Registry::builtin();
    let client = UpstreamClient::new(UpstreamConfig::default()).expect("client");
    let mut seen_open = Vec::new();
    let mut kinds = 0;
    for kind in registry.kinds() {
        // Upstream MCP servers keep the conservative defaults (`mcp/convert.rs`).
        if kind.id() == "mcp" {
            continue;
        }
        kinds += 1;
        let adapter = kind
            .build(InstanceSettings {
                name: kind.id().into(),
                base_url: kind.default_base_url().parse().expect("base url"),
                client: client.for_instance(kind.id(), 1),
                settings: Map::new(),
                credentials: Default::default(),
            })
            .unwrap_or_else(|e| panic!("{} builds with defaults: {e}", kind.id()));
        let tools = adapter.tools().current();
        assert!(!tools.is_empty(), "{}", kind.id());
        for tool in tools.iter() {
            let listed = OPEN_WORLD.contains(&(kind.id(), tool.name.as_str()));
            assert_eq!(
                tool.annotations.open_world,
                listed,
                "{}.{}: openWorldHint",
                kind.id(),
                tool.name
            );
            if listed {
                seen_open.push((kind.id(), tool.name.clone()));
                assert!(!tool.annotations.read_only, "{}", tool.name);
            }
            // Read-only tools change nothing, so they destroy nothing and repeat safely.
            if tool.annotations.read_only {
                assert!(
                    !tool.annotations.destructive && tool.annotations.idempotent,
                    "{}.{}",
                    kind.id(),
                    tool.name
                );
            }
        }
    }
    assert_eq!(kinds, 7, "every native kind was checked");
    assert_eq!(seen_open.len(), OPEN_WORLD.len(), "{seen_open:?}");
}
