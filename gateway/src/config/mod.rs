//! The gateway's configuration: TOML types (whose JSON Schema `manifold config-schema` prints),
//! loading with `MANIFOLD_*` environment overrides for secrets, and validation that names the
//! file, line and column of every problem.

mod env;
mod load;
mod outbound;
mod overrides;
mod types;
mod validate;
mod validate_auth;
mod validate_server;

pub use env::apply_env_overrides;
pub use load::{ConfigError, Problem, load_file, load_str};
pub use outbound::OutboundConfig;
pub use overrides::{AnnotationsConfig, ToolOverrideConfig, catalog_overrides};
pub use types::*;
pub use validate::validate;

/// The JSON Schema of the config file, for editors completing `manifold.toml`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
}
