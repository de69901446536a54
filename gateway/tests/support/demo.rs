//! A `manifold demo` process with its printed endpoints, killed when dropped.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

pub struct Demo {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/mcp`
    pub mcp_url: String,
    /// `http://127.0.0.1:SPORT` (the provider emulators, no trailing slash)
    pub sandbox_url: String,
}

impl Demo {
    /// Starts `manifold demo` on a free port with `extra` arguments.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with_policies(extra, &[])
    }

    /// [`Demo::start`] with `policies` (file name, text) already in the data directory's
    /// `policies/`, where the demo keeps an admin's files over the shipped ones.
    pub fn start_with_policies(extra: &[&str], policies: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if !policies.is_empty() {
            let policy_dir = dir.path().join("policies");
            std::fs::create_dir_all(&policy_dir).unwrap();
            for (name, text) in policies {
                std::fs::write(policy_dir.join(name), text).unwrap();
            }
        }
        let mut child = Command::new(manifold_bin())
            .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let (mut mcp_url, mut sandbox_url) = (String::new(), String::new());
        let deadline = Instant::now() + Duration::from_secs(30);
        while mcp_url.is_empty() || sandbox_url.is_empty() {
            assert!(Instant::now() < deadline, "manifold demo did not start");
            let Ok(line) = receiver.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            if let Some((_, url)) = line.split_once("MCP endpoint (Streamable HTTP):") {
                mcp_url = url.trim().to_owned();
            } else if let Some((_, url)) = line.split_once("Sandbox provider emulators:") {
                sandbox_url = url.trim().trim_end_matches('/').to_owned();
            }
        }
        Self {
            child,
            dir,
            mcp_url,
            sandbox_url,
        }
    }

    /// The demo's data directory (its policies, audit log and keys).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A bearer token for `user`, minted by `manifold token` with this demo's keys.
    pub fn token(&self, user: &str) -> String {
        self.token_with_groups(user, &[])
    }

    /// A bearer token for `user` with extra `groups`.
    pub fn token_with_groups(&self, user: &str, groups: &[&str]) -> String {
        token(self.dir.path(), &self.mcp_url, user, groups)
    }

    /// One stateless (2026-07-28) request with `_meta` and the `Mcp-*` headers; the JSON-RPC
    /// message that answers it (from a JSON or an SSE answer).
    pub async fn rpc_message(&self, token: &str, method: &str, params: Value) -> Value {
        rpc(&self.mcp_url, token, method, params).await
    }

    /// `tools/call` of `name`; the whole JSON-RPC message.
    pub async fn call_tool(&self, token: &str, name: &str, arguments: Value) -> Value {
        call_tool(&self.mcp_url, token, name, arguments).await
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bearer token for `user` with extra `groups`, minted by `manifold token` with the keys in
/// `data_dir` for the demo config served at `mcp_url`.
pub fn token(data_dir: &std::path::Path, mcp_url: &str, user: &str, groups: &[&str]) -> String {
    let public_url = mcp_url.trim_end_matches("/mcp");
    let mut command = Command::new(manifold_bin());
    command.args(["token", "--user", user, "--public-url", public_url]);
    for group in groups {
        command.args(["--group", group]);
    }
    let output = command.arg("--data-dir").arg(data_dir).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// One stateless (2026-07-28) request to `mcp_url` with `_meta` and the `Mcp-*` headers; the
/// JSON-RPC message that answers it (from a JSON or an SSE answer).
pub async fn rpc(mcp_url: &str, token: &str, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "manifold-test", "version": "1"}
    });
    let mut request = reqwest::Client::new()
        .post(mcp_url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        request = request.header("mcp-name", name.to_owned());
    }
    let body = request
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .chain(std::iter::once(body.as_str()))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|m| m.get("id") == Some(&json!(1)))
        .unwrap_or_else(|| panic!("no answer to {method}: {body}"))
}

/// A stateless `tools/call` of `name` to `mcp_url`; the whole JSON-RPC message.
pub async fn call_tool(mcp_url: &str, token: &str, name: &str, arguments: Value) -> Value {
    let params = json!({"name": name, "arguments": arguments});
    rpc(mcp_url, token, "tools/call", params).await
}

/// The `manifold` binary under test: `MANIFOLD_BIN` when set (a checkout sharing its target
/// directory with others points it at its own build), else the one cargo built for this test.
fn manifold_bin() -> String {
    std::env::var("MANIFOLD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_manifold").to_owned())
}
