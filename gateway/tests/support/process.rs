//! A `manifold` process started by a test, killed when dropped.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct GatewayProcess {
    child: Child,
    pub url: String,
}

impl GatewayProcess {
    /// Runs `manifold serve --config <config>` and waits for its "serving" line.
    pub fn serve(config: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(manifold_bin());
        command
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Manifold is serving ") {
                    let _ = sender.send(url.to_owned());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            if let Ok(url) = receiver.recv_timeout(Duration::from_millis(100)) {
                break url;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("manifold exited early: {status}");
            }
            assert!(Instant::now() < deadline, "manifold did not start in time");
        };
        Self { child, url }
    }
}

impl Drop for GatewayProcess {
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

/// The PostgreSQL database of the multi-process tests (`MANIFOLD_TEST_POSTGRES_URL`), which CI
/// must provide; outside CI the run is skipped (`None`) with a note.
pub fn postgres_url() -> Option<String> {
    url_from_ci("MANIFOLD_TEST_POSTGRES_URL", "PostgreSQL")
}

/// The Redis of the multi-process tests (`MANIFOLD_TEST_REDIS_URL`), likewise.
pub fn redis_url() -> Option<String> {
    url_from_ci("MANIFOLD_TEST_REDIS_URL", "Redis")
}

/// The URL in `variable`: required under CI, else its absence skips the run with a note.
fn url_from_ci(variable: &str, service: &str) -> Option<String> {
    let Ok(url) = std::env::var(variable) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide {variable}"
        );
        eprintln!("{variable} not set: {service} run skipped outside CI");
        return None;
    };
    Some(url)
}

/// A bearer token for `user`, minted by `manifold token` with the keys of `config` (which must
/// allow dev tokens), in the database `env` names.
pub fn token(config: &Path, env: &[(&str, &str)], user: &str) -> String {
    let mut command = Command::new(manifold_bin());
    command
        .args(["token", "--user", user, "--config"])
        .arg(config);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
