//! Logging: `tracing` to stderr (stdout belongs to the stdio transport), filtered by
//! `MANIFOLD_LOG` or the config's `[log] filter`; and the per-tool call metrics of `/metrics`.

mod calls;

pub use calls::CallMetrics;

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber; a second call is a no-op.
pub fn init(filter: &str, json: bool) {
    let filter = std::env::var("MANIFOLD_LOG")
        .ok()
        .and_then(|value| EnvFilter::try_new(value).ok())
        .or_else(|| EnvFilter::try_new(format!("{filter},rmcp=warn")).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
