//! The relay floor: starts `manifold-relay` (built beside this binary) in front of the Linear
//! emulator, so a run through it shows what two loopback HTTP hops cost on this machine with the
//! gateway's own libraries — the part of the gateway's CPU per call no gateway work can remove.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
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
        let bin = binary()?;
        let mut child = Command::new(&bin)
            .arg(upstream)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("relay stdout is not piped")?;
        let (lines, found) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let mut relay = Self {
            child,
            url: String::new(),
            clock_ticks: clock_ticks(),
        };
        let line = found
            .recv_timeout(Duration::from_secs(30))
            .context("the relay did not print its address within 30 s")?;
        let Some(url) = line.strip_prefix(LISTENING_PREFIX) else {
            bail!("the relay printed `{line}` instead of its address");
        };
        relay.url = url.trim().to_owned();
        Ok(relay)
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

/// `manifold-relay` next to this executable (cargo builds both bins of this crate together).
fn binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot locate this executable")?;
    let bin = me.with_file_name("manifold-relay");
    if !bin.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p manifold-bench`",
            bin.display()
        );
    }
    Ok(bin)
}
