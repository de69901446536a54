//! The `/connections` page in a real browser: a gateway with the dev sign-in and the Linear
//! emulator, driven by tests/browser/connections.mjs (playwright-core over Debian's headless
//! Chromium) through sign-in, connect, the emulator's approval, and disconnect. The screenshot
//! of the connected page is left at target/test-artifacts/connections.png.
//!
//! Needs /usr/bin/chromium (`apt-get install chromium`) and tests/browser/node_modules (`npm ci`
//! there); `.ci/run` installs both. Without them this test fails: it never skips.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use manifold::app;
use manifold_adapters::Registry;

const CHROMIUM: &str = "/usr/bin/chromium";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The cargo target directory this test was built in (…/target/debug/deps/<test>).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_disconnect_in_chromium() {
    let scripts = repo_root().join("tests/browser");
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium package as .ci/run does \
         (apt-get install -y chromium)"
    );
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "{}/node_modules is missing: run `npm ci` there as .ci/run does",
        scripts.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let source = format!(
        r#"
[server]
listen = "127.0.0.1:0"
allowed_origins = ["http://127.0.0.1:*"]
[storage]
data_dir = "{}"
[broker]
dev_login = true
[adapters.linear]
kind = "linear"
sandbox = true
"#,
        dir.path().display()
    );
    let registry = Registry::builtin();
    let path = Path::new("browser.toml");
    let config = manifold::config::load_str(&source, path, &registry, &[]).unwrap();
    let running = app::start(config, &source, path, &registry).await.unwrap();

    let artifacts = target_dir().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("connections.png");
    let _ = std::fs::remove_file(&screenshot);
    let run = tokio::process::Command::new("node")
        .arg(scripts.join("connections.mjs"))
        .current_dir(&scripts)
        .env("GATEWAY_URL", format!("http://{}", running.addr))
        .env("SCREENSHOT", &screenshot)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("the browser script did not finish in 120 s")
        .expect("cannot run node: install Node.js as .ci/run does");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "connections.mjs failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("connect and disconnect work"),
        "{stdout}\n{stderr}"
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 2000,
        "no screenshot"
    );
}
