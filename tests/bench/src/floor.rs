//! The relay floor: starts `manifold-relay` (built beside this binary) in front of the backend
//! (the Linear emulator, or the upstream MCP server), so a run through it shows what two loopback
//! HTTP hops cost on this machine with the gateway's own libraries — the part of the gateway's CPU
//! per call no gateway work can remove.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context, bail};

use crate::gateway::{clock_ticks, process_cpu};

const LISTENING_PREFIX: &str = "relay listening on ";

/// A running `manifold-relay`, killed on drop.
pub struct Relay {
    child: Child,
    /// `http://127.0.0.1:PORT` — any path is forwarded to the upstream URL.
    pub url: String,
    clock_ticks: u64,
}

impl Relay {
    /// Starts the relay forwarding to `upstream` and waits (at most 30 s) for its address.
    pub fn start(upstream: &str) -> anyhow::Result<Self> {
        let (child, url) =
            spawn_announcing(&sibling("manifold-relay")?, &[upstream], LISTENING_PREFIX)?;
        Ok(Self {
            child,
            url,
            clock_ticks: clock_ticks(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time the relay process has used so far.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        process_cpu(&format!("/proc/{}/stat", self.pid()), self.clock_ticks)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bin args…` and waits (at most 30 s) for the line starting with `prefix` that it
/// prints once it listens; returns the child and the rest of that line (its URL). Its later
/// output is read and dropped, so its stdout never fills; its stderr is this process's.
pub fn spawn_announcing(
    bin: &Path,
    args: &[&str],
    prefix: &str,
) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child.stdout.take().context("stdout is not piped")?;
    let (lines, found) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(line);
        }
    });
    // Killed on every early return, so a failed start leaves no process behind.
    let fail = |mut child: Child, error: anyhow::Error| {
        let _ = child.kill();
        let _ = child.wait();
        Err(error)
    };
    let line = match found.recv_timeout(Duration::from_secs(30)) {
        Ok(line) => line,
        Err(_) => {
            let error = anyhow::anyhow!("{} did not print its address within 30 s", bin.display());
            return fail(child, error);
        }
    };
    let Some(url) = line.strip_prefix(prefix) else {
        let error = anyhow::anyhow!("{} printed `{line}` instead of its address", bin.display());
        return fail(child, error);
    };
    Ok((child, url.trim().to_owned()))
}

/// The binary `name` next to this executable (cargo builds this crate's bins together, and
/// `-p mcp-fixture` puts the fixture's beside them).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot locate this executable")?;
    let bin = me.with_file_name(name);
    if !bin.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p manifold-bench \
             -p manifold-mcp-fixture`",
            bin.display()
        );
    }
    Ok(bin)
}
