//! Runs the Python end-to-end suite (`tests/e2e`, the official MCP Python SDK against a real
//! `manifold demo`) so `cargo test` / `cargo nextest run` cover it too. The venv comes from
//! `.ci/run`; without it this test fails rather than skipping.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
};

/// Prints every line of `stream` as it arrives (through libtest's capture, shown on failure).
fn relay(stream: impl Read + Send + 'static, to_stderr: bool) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    })
}

#[test]
fn python_sdk_end_to_end() {
    let repo: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = repo.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `.ci/run` (it creates the venv from tests/e2e/requirements.txt), or \
         `python3 -m venv .venv && .venv/bin/pip install -r tests/e2e/requirements.txt`",
        python.display()
    );
    let mut child = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e"])
        .current_dir(&repo)
        .env("MANIFOLD_BIN", manifold_bin())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let out = relay(child.stdout.take().unwrap(), false);
    let err = relay(child.stderr.take().unwrap(), true);
    let status = child.wait().unwrap();
    out.join().unwrap();
    err.join().unwrap();
    assert!(
        status.success(),
        "the Python SDK suite failed ({status}); output above"
    );
}

/// The `manifold` binary under test: `MANIFOLD_BIN` when set (a checkout sharing its target
/// directory with others points it at its own build), else the one cargo built for this test.
fn manifold_bin() -> String {
    std::env::var("MANIFOLD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_manifold").to_owned())
}
