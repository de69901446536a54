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
    let data_dir = overrides
        .data_dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("manifold-data"));
    let mut storage = section(&mut document, "storage");
    storage.insert("data_dir".into(), data_dir.display().to_string().into());
    document.insert("storage".into(), storage.into());
    // The demo's policies are copies of the shipped examples in the data directory, where an
    // admin can edit them and watch the change take effect.
    let mut policy = section(&mut document, "policy");
    policy.insert(
        "dir".into(),
        data_dir.join("policies").display().to_string().into(),
    );
    document.insert("policy".into(), policy.into());
    toml::to_string(&document).unwrap_or_else(|_| DEMO_CONFIG.to_owned())
}

/// The shipped example policies (`config/policies/`), compiled in for the demo.
const DEMO_POLICIES: &[(&str, &str)] = &[
    (
        "access.cedar",
        include_str!("../../config/policies/access.cedar"),
    ),
    (
        "guards.cedar",
        include_str!("../../config/policies/guards.cedar"),
    ),
    (
        "quotas.toml",
        include_str!("../../config/policies/quotas.toml"),
    ),
    (
        "redaction.toml",
        include_str!("../../config/policies/redaction.toml"),
    ),
];

/// Writes the example policies into `<data_dir>/policies`, keeping files an admin already has.
pub fn install_policies(data_dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let dir = data_dir.join("policies");
    std::fs::create_dir_all(&dir)?;
    for (name, text) in DEMO_POLICIES {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, text)?;
        }
    }
    Ok(dir)
}
