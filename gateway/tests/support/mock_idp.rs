//! `oauth2-mock-server` (npm), an OpenID provider this project did not write, run by
//! `tests/e2e/node/mock_idp.mjs` on a free loopback port and stopped when dropped. `.ci/run`
//! installs it (`npm ci` in `tests/e2e/node`); without it the tests fail, never skip.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

pub struct MockIdp {
    child: Child,
    /// `http://127.0.0.1:<port>`, as its discovery document and tokens name it.
    pub issuer: String,
}

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/node")
}

impl MockIdp {
    /// Starts the provider; every token it signs carries `claims` (sub, email, groups, ...).
    pub fn start(claims: &Value) -> Self {
        let dir = node_dir();
        let installed = dir.join("node_modules/oauth2-mock-server/package.json");
        assert!(
            installed.is_file(),
            "{} is missing: run `.ci/run` (it runs `npm ci` in tests/e2e/node), or \
             `(cd tests/e2e/node && npm ci)`",
            installed.display()
        );
        let mut child = Command::new("node")
            .arg("mock_idp.mjs")
            .current_dir(&dir)
            .env("MOCK_IDP_CLAIMS", claims.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (needed by .ci/run's tests): {e}"));
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("MOCK_IDP_ISSUER=") {
                    let _ = sender.send(url.to_owned());
                }
            }
        });
        let issuer = match receiver.recv_timeout(Duration::from_secs(20)) {
            Ok(issuer) => issuer,
            Err(_) => {
                let _ = child.kill();
                panic!("mock_idp.mjs did not print its issuer: {:?}", child.wait());
            }
        };
        Self { child, issuer }
    }

    /// An access token from its token endpoint (client_credentials) for `audience`; `claims`
    /// and `header` are merged into the JWT last (see mock_idp.mjs).
    pub async fn token(&self, audience: &str, claims: &Value, header: &Value) -> String {
        use super::oauth::FormBody;
        let response = super::oauth::client()
            .post(format!("{}/token", self.issuer))
            .form_body(&[
                ("grant_type", "client_credentials"),
                ("client_id", "external-test"),
                ("scope", "mcp"),
                ("aud", audience),
                ("mock_claims", &claims.to_string()),
                ("mock_header", &header.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The key id it signs with.
    pub async fn kid(&self) -> String {
        let jwks: Value = reqwest::get(format!("{}/jwks", self.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"][0]["kid"].as_str().unwrap().to_owned()
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
