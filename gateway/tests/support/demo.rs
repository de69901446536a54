//! A `manifold demo` process with its printed endpoints, killed when dropped.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Demo {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/mcp`
    pub mcp_url: String,
    /// `http://127.0.0.1:SPORT` (the provider emulators, no trailing slash)
    pub sandbox_url: String,
}

impl Demo {
    /// Starts `manifold demo` on a free port with `extra` arguments.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
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
            _dir: dir,
            mcp_url,
            sandbox_url,
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `manifold` binary under test: `MANIFOLD_BIN` when set (a checkout sharing its target
/// directory with others points it at its own build), else the one cargo built for this test.
fn manifold_bin() -> String {
    std::env::var("MANIFOLD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_manifold").to_owned())
}
