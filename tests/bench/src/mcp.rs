//! The MCP backend (`--backend mcp`): the upstream is `mcp-fixture` (rmcp, Streamable HTTP), a
//! process of its own so its CPU is never counted as the gateway's, and the tool is its cheapest,
//! `test_simple_text` (one fixed text part, no arguments). The direct and relay lanes post the
//! `tools/call` the gateway's `kind = "mcp"` adapter sends upstream: the gateway negotiates the
//! newest era the upstream offers (`server/discover`, 2026-07-28), so every upstream call is one
//! stateless POST with no session, and so is the direct one.

use std::{
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use reqwest::header::{HeaderMap, HeaderValue};

use crate::{
    floor::{sibling, spawn_announcing},
    gateway::{clock_ticks, process_cpu},
    load::{self, Expect, Plan, Target, ToolCall},
};

/// The fixture tool every call of this backend invokes.
pub const TOOL: &str = "test_simple_text";
/// What it answers, the first (and only) content part of every successful call.
pub const TEXT: &str = "This is a simple text response for testing.";
/// The JSON-RPC id of the direct request (the same body is sent on every call).
const DIRECT_ID: u64 = 1;
const LISTENING_PREFIX: &str = "listening on ";

/// The upstream's protocol revision as the gateway negotiates it with the fixture.
const UPSTREAM_VERSION: &str = "2026-07-28";

/// What every answer of this backend must hold: the fixture's text, under the direct request's
/// id for the direct and relay lanes.
pub const EXPECT: Expect = Expect::Text {
    id: DIRECT_ID,
    text: TEXT,
};

/// A running `mcp-fixture --http`, killed on drop.
pub struct Fixture {
    child: Child,
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    clock_ticks: u64,
}

impl Fixture {
    /// Starts the fixture (`bin`, or `mcp-fixture` beside this executable) on a free loopback
    /// port and waits for its address.
    pub fn start(bin: Option<&Path>) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(bin) => bin.to_owned(),
            None => sibling("mcp-fixture")?,
        };
        let (child, url) = spawn_announcing(&bin, &["--http", "127.0.0.1:0"], LISTENING_PREFIX)?;
        Ok(Self {
            child,
            url,
            clock_ticks: clock_ticks(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time the fixture has used so far (shown in the notes, never charged to
    /// a lane).
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        process_cpu(&format!("/proc/{}/stat", self.pid()), self.clock_ticks)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of the upstream `tools/call` the gateway's adapter sends, as seen on the wire
/// (`strace -e writev` on the gateway): rmcp's client on a 2026-07-28 connection puts the
/// version, client info and capabilities in the request's own `_meta` (there is no session to
/// hold them), with a progress token of its own.
pub fn direct_body() -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{DIRECT_ID},"method":"tools/call","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"{UPSTREAM_VERSION}","io.modelcontextprotocol/clientInfo":{{"name":"manifold","version":"0.1.0"}},"io.modelcontextprotocol/clientCapabilities":{{}},"progressToken":{DIRECT_ID}}},"name":"{TOOL}","arguments":{{}}}}}}"#
    )
}

/// The headers that go with [`direct_body`], in the gateway's order: the Streamable HTTP ones
/// rmcp's client sends on a 2026-07-28 request (SEP-2243's `Mcp-Method` and `Mcp-Name`
/// included).
pub fn direct_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("accept", "text/event-stream, application/json"),
        ("mcp-method", "tools/call"),
        ("mcp-name", TOOL),
        ("mcp-protocol-version", UPSTREAM_VERSION),
        ("content-type", "application/json"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

/// The direct (or, with the relay's URL, the relayed) lane's target.
pub fn direct(url: &str) -> Target {
    Target::Direct {
        url: url.to_owned(),
        body: direct_body(),
        headers: direct_headers(),
        expect: EXPECT,
    }
}

/// Waits (at most 60 s) until a stateless call of [`TOOL`] through the gateway succeeds: the
/// gateway serves before its upstream connection is up and the fixture's tools are listed.
pub async fn wait_until_served(mcp_url: &str, bearer: Option<String>) -> anyhow::Result<()> {
    let probe = Target::Stateless(ToolCall {
        url: mcp_url.to_owned(),
        bearer,
        tool: TOOL,
        expect: EXPECT,
    });
    let plan = Plan {
        warmup: 0,
        calls: 1,
        duration: None,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = match load::run(&probe, 1, plan, || Ok(Duration::ZERO)).await {
            Ok(run) if run.failures == 0 => return Ok(()),
            Ok(run) => run.first_failure.unwrap_or_default(),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            bail!("the gateway did not serve {TOOL} from the fixture within 60 s: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One direct call, checked, before any lane starts: a fixture that does not answer the
/// gateway's request shape fails here with its answer rather than in every slice.
pub async fn check_direct(url: &str) -> anyhow::Result<()> {
    let plan = Plan {
        warmup: 0,
        calls: 1,
        duration: None,
    };
    let run = load::run(&direct(url), 1, plan, || Ok(Duration::ZERO))
        .await
        .context("the first direct call to the fixture failed")?;
    if run.failures > 0 {
        bail!(
            "the first direct call to the fixture failed: {}",
            run.first_failure.unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn the_direct_body_is_a_stateless_tools_call_of_the_fixture_tool() {
        let body: Value = serde_json::from_str(&direct_body()).expect("JSON");
        assert_eq!(body["method"], "tools/call");
        assert_eq!(body["id"], DIRECT_ID);
        assert_eq!(body["params"]["name"], TOOL);
        assert_eq!(
            body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            UPSTREAM_VERSION
        );
    }

    #[test]
    fn the_direct_headers_name_the_method_and_tool_the_body_calls() {
        let headers = direct_headers();
        assert_eq!(headers["mcp-method"], "tools/call");
        assert_eq!(headers["mcp-name"], TOOL);
        assert_eq!(headers["mcp-protocol-version"], UPSTREAM_VERSION);
    }
}
