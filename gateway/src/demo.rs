//! `manifold demo`: the embedded default config (sandbox providers, SQLite, no credentials).

use std::{net::SocketAddr, path::PathBuf};

/// The shipped demo config, compiled in so `demo` needs no file.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// Command-line changes to the demo config.
#[derive(Debug, Clone, Default)]
pub struct DemoOverrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub tools_page_size: Option<usize>,
    /// The public URL (issuer), when it differs from `http://<listen>`.
    pub public_url: Option<String>,
}

/// The demo config text with `overrides` applied, still TOML so it is validated like any file.
pub fn config_text(overrides: &DemoOverrides) -> String {
    let mut document: toml::Table = toml::from_str(DEMO_CONFIG).unwrap_or_default();
    let section = |document: &mut toml::Table, name: &str| -> toml::Table {
        document
            .get(name)
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default()
    };
    let mut server = section(&mut document, "server");
    if let Some(listen) = overrides.listen {
        server.insert("listen".into(), listen.to_string().into());
        // The demo may be reached on the port it was moved to.
        let origins = toml::Value::Array(vec![
            "http://localhost:*".into(),
            "http://127.0.0.1:*".into(),
        ]);
        server.insert("allowed_origins".into(), origins);
        // The OAuth issuer and resource follow the address (port 0 is fixed up after binding).
        server.insert("public_url".into(), format!("http://{listen}").into());
    }
    if let Some(url) = &overrides.public_url {
        server.insert("public_url".into(), url.clone().into());
    }
    if let Some(size) = overrides.tools_page_size {
        server.insert(
            "tools_page_size".into(),
            i64::try_from(size).unwrap_or(i64::MAX).into(),
        );
    }
    document.insert("server".into(), server.into());
    if let Some(dir) = &overrides.data_dir {
        let mut storage = section(&mut document, "storage");
        storage.insert("data_dir".into(), dir.display().to_string().into());
        document.insert("storage".into(), storage.into());
    }
    toml::to_string(&document).unwrap_or_else(|_| DEMO_CONFIG.to_owned())
}
