//! The processes under test: `manifold demo` hosting the provider emulators (the direct target),
//! and a separate `manifold serve` gateway pointed at them, so the gateway process's CPU time
//! (read from `/proc/<pid>/stat`) is the gateway's alone.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context, bail};

const MCP_PREFIX: &str = "MCP endpoint (Streamable HTTP):";
const SANDBOX_PREFIX: &str = "Sandbox provider emulators:";
const SERVE_PREFIX: &str = "Manifold is serving";

/// A running `manifold demo`, killed (and its data directory removed) on drop.
pub struct Gateway {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT/mcp`
    pub mcp_url: String,
    /// `http://127.0.0.1:SPORT` (no trailing slash)
    pub sandbox_url: String,
    data_dir: PathBuf,
    clock_ticks: u64,
}

impl Gateway {
    /// Starts `bin demo --listen 127.0.0.1:0` with a fresh data directory and waits (at most
    /// 60 s) for it to print its endpoints. Its log (stderr) goes to a file in the data directory.
    pub fn launch(bin: &Path) -> anyhow::Result<Self> {
        Self::start(bin, "demo", |_| Ok(vec!["demo".into()]), true)
    }

    /// Starts `bin serve` with a config whose Linear instance uses the emulators at
    /// `emulators` (as printed by a demo), logging only warnings. `signed_in` turns on the
    /// built-in OAuth server, as a deployment for ChatGPT has it: every call must then carry an
    /// access token (see [`Self::token`]).
    pub fn serve(bin: &Path, emulators: &str, signed_in: bool) -> anyhow::Result<Self> {
        let adapter = format!(
            "[adapters.linear]\nkind = \"linear\"\n\
             base_url = \"{emulators}/linear\"\nmax_concurrency = 256\n\
             [adapters.linear.credentials]\ntoken = \"lin_api_sandbox_alice\"\n"
        );
        Self::serve_with(bin, adapter, signed_in)
    }

    /// Starts `bin serve` in front of the upstream MCP server at `upstream`
    /// (`http://…/mcp`) as `[adapters.fixture] kind = "mcp"`, its tools under their own names
    /// (`prefix_mode = "never"`, as `.ci/run` has it for the conformance suite); otherwise as
    /// [`Self::serve`].
    pub fn serve_mcp(bin: &Path, upstream: &str, signed_in: bool) -> anyhow::Result<Self> {
        let adapter = format!(
            "[adapters.fixture]\nkind = \"mcp\"\nbase_url = \"{upstream}\"\n\
             prefix_mode = \"never\"\nmax_concurrency = 256\n"
        );
        Self::serve_with(bin, adapter, signed_in)
    }

    fn serve_with(bin: &Path, adapter: String, signed_in: bool) -> anyhow::Result<Self> {
        // The token's audience is the public URL, so a signed-in gateway needs its port now.
        let (server, auth) = if signed_in {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .context("cannot find a free port")?
                .port();
            (
                format!(
                    "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n"
                ),
                "[auth]\nmode = \"builtin\"\ndev_tokens = true\nsandbox_idp = true\n\
                 [outbound]\nallow_http = true\nallowed_cidrs = [\"127.0.0.0/8\"]\n",
            )
        } else {
            ("listen = \"127.0.0.1:0\"\n".to_owned(), "")
        };
        let write_config = move |dir: &Path| -> anyhow::Result<Vec<String>> {
            let config = dir.join("manifold.toml");
            let text = format!(
                "[server]\n{server}[storage]\ndata_dir = \"{dir}\"\n\
                 [log]\nfilter = \"warn\"\n{auth}{adapter}",
                dir = dir.display()
            );
            std::fs::write(&config, text)
                .with_context(|| format!("cannot write {}", config.display()))?;
            Ok(vec![
                "serve".into(),
                "--config".into(),
                config.display().to_string(),
            ])
        };
        Self::start(bin, "serve", write_config, false)
    }

    /// An access token for `user` from a signed-in gateway's keys (`manifold token`).
    pub fn token(&self, bin: &Path, user: &str) -> anyhow::Result<String> {
        let output = Command::new(bin)
            .args(["token", "--user", user, "--config"])
            .arg(self.data_dir.join("manifold.toml"))
            .output()
            .context("cannot run manifold token")?;
        if !output.status.success() {
            bail!(
                "manifold token failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    fn start(
        bin: &Path,
        role: &str,
        arguments: impl FnOnce(&Path) -> anyhow::Result<Vec<String>>,
        is_demo: bool,
    ) -> anyhow::Result<Self> {
        let data_dir =
            std::env::temp_dir().join(format!("manifold-bench-{}-{role}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let log_path = data_dir.join("gateway.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut args = arguments(&data_dir)?;
        if is_demo {
            args.extend(["--listen".into(), "127.0.0.1:0".into(), "--data-dir".into()]);
            args.push(data_dir.display().to_string());
        }
        let mut child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().context("gateway stdout is not piped")?;
        let (lines, found) = mpsc::channel::<String>();
        // Reads every line the gateway prints, for as long as it runs, so its stdout never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains(MCP_PREFIX)
                    || line.contains(SANDBOX_PREFIX)
                    || line.contains(SERVE_PREFIX)
                {
                    let _ = lines.send(line);
                }
            }
        });
        let mut gateway = Self {
            child,
            pid,
            mcp_url: String::new(),
            sandbox_url: String::new(),
            data_dir,
            clock_ticks: clock_ticks(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while gateway.mcp_url.is_empty() || (is_demo && gateway.sandbox_url.is_empty()) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = found.recv_timeout(left) else {
                let status = gateway.child.try_wait().ok().flatten();
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: String = tail.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                bail!(
                    "the gateway did not print its endpoints within 60 s (exit status: {status:?}); \
                     last log lines, newest first:\n{tail}"
                );
            };
            if let Some(rest) = line
                .split_once(MCP_PREFIX)
                .or_else(|| line.split_once(SERVE_PREFIX))
                .map(|(_, rest)| rest.trim())
            {
                gateway.mcp_url = rest.to_owned();
            } else if let Some(rest) = line.split_once(SANDBOX_PREFIX).map(|(_, rest)| rest.trim())
            {
                gateway.sandbox_url = rest.trim_end_matches('/').to_owned();
            }
        }
        Ok(gateway)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// User + system CPU time the gateway process (all its threads) has used so far.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        process_cpu(&format!("/proc/{}/stat", self.pid), self.clock_ticks)
    }

    /// Bytes the gateway has logged so far.
    pub fn log_bytes(&self) -> u64 {
        std::fs::metadata(self.data_dir.join("gateway.log")).map_or(0, |m| m.len())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// User + system CPU time of this benchmark process (the load generator).
pub fn own_cpu() -> anyhow::Result<Duration> {
    process_cpu("/proc/self/stat", clock_ticks())
}

/// `utime + stime` (fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks) as a duration.
pub fn process_cpu(path: &str, clock_ticks: u64) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: count from its end.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path}: unexpected format"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3 (state), so field N is at index N - 3.
    let tick = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("{path}: field {} is missing", index + 3))
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / clock_ticks.max(1),
    ))
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` (this crate forbids `unsafe`); 100 if that fails.
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}
