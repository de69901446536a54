//! `[adapters.<name>.overrides.<tool>]`: an admin's changes to how one adapter-local tool is
//! exposed (another name, title, description or hints, and arguments pinned to fixed values and
//! hidden from the model). Keyed by the adapter's own tool name, like `tools` and `tool_tags`.
//!
//! Only what the config alone can tell is checked here (the name's characters); whether the tool
//! and the pinned properties exist, and whether a pinned value fits, needs the adapter's specs and
//! is checked when the catalog is built (`router/virtualize.rs`), which `manifold check` runs too.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::router::{HintOverrides, ToolOverride};

/// One tool's overrides.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolOverrideConfig {
    /// Exposed as `<prefix>_<name>` instead of `<prefix>_<tool>`; policies, quotas and redaction
    /// rules keep using the original name. Only `[A-Za-z0-9_-]`, 64 characters with the prefix.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// Replaces the tool's title.
    pub title: Option<String>,
    /// Replaces the tool's description.
    pub description: Option<String>,
    /// Replaces the hints clients see. Enforcement (the read-only switch, policies) takes them
    /// only where they are more cautious than the adapter's own.
    #[serde(default)]
    pub annotations: AnnotationsConfig,
    /// Top-level arguments fixed to these values: hidden from the exposed input schema, refused
    /// when a caller sends them, and set on every call before the policy decides.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub pin: BTreeMap<String, Spanned<toml::Value>>,
}

/// `annotations = { … }` of an override; each hint left out keeps the adapter's.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnotationsConfig {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

// === impl ToolOverrideConfig ===

impl ToolOverrideConfig {
    /// The catalog's form of this override; `offset` is where its section starts.
    pub fn to_override(&self, offset: usize) -> ToolOverride {
        ToolOverride {
            offset,
            name: self
                .name
                .as_ref()
                .map(|name| (name.get_ref().clone(), name.span().start)),
            title: self.title.clone(),
            description: self.description.clone(),
            hints: HintOverrides {
                read_only: self.annotations.read_only,
                destructive: self.annotations.destructive,
                idempotent: self.annotations.idempotent,
                open_world: self.annotations.open_world,
            },
            pin: self
                .pin
                .iter()
                .map(|(property, value)| {
                    // A TOML value always has a JSON form (dates become strings, which a
                    // property's schema then judges like any other value).
                    let json = serde_json::to_value(value.get_ref()).unwrap_or_default();
                    (property.clone(), (json, value.span().start))
                })
                .collect(),
        }
    }
}

/// The overrides of one instance as the catalog takes them, by adapter-local tool name.
pub fn catalog_overrides(
    overrides: &BTreeMap<Spanned<String>, ToolOverrideConfig>,
) -> BTreeMap<String, ToolOverride> {
    overrides
        .iter()
        .map(|(tool, config)| {
            (
                tool.get_ref().clone(),
                config.to_override(tool.span().start),
            )
        })
        .collect()
}

/// Problems the config alone shows: a new name outside `[A-Za-z0-9_-]`.
pub(super) fn problems(
    overrides: &BTreeMap<Spanned<String>, ToolOverrideConfig>,
    at: &mut impl FnMut(usize, String),
) {
    for (tool, config) in overrides {
        if let Some(name) = &config.name
            && !super::validate::is_name(name.get_ref())
        {
            at(
                name.span().start,
                format!(
                    "overrides.{}.name `{}` may only use A-Z a-z 0-9 _ -",
                    tool.get_ref(),
                    name.get_ref()
                ),
            );
        }
    }
}
