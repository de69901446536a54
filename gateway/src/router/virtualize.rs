//! Tool virtualization: an admin's per-instance changes to how an adapter's tool is exposed
//! (`[adapters.<name>.overrides.<tool>]`): another name, title, description or hints, and
//! arguments hidden from the model and pinned to fixed values (one Linear team per instance).
//!
//! Two views of every tool. Clients see the *exposed* one: the new name and texts, and the input
//! schema without the pinned properties. Everything that decides or records sees the *original*
//! one, so a rename cannot walk around a rule and a pin cannot be talked out of: policies, quotas,
//! redaction and the audit `tool` name the tool as it would be exposed without the rename
//! (`<prefix>_<original>`), the adapter is called by its own name, and the arguments the policy
//! decides on are the caller's plus the pins, checked against the adapter's own schema. A caller
//! that sends a pinned argument is refused, never overridden in silence either way.
//!
//! Hints are the exception where the views meet: clients get the admin's hints, while the
//! read-only switch and policies take an override only where it is more cautious than the
//! adapter's own (marking a write tool read-only must not slip it past a read-only instance).

use std::collections::BTreeMap;

use manifold_adapters::{ToolAnnotations as Hints, ToolSpec};
use serde_json::{Map, Value};

use super::names::{MAX_TOOL_NAME, exposed_name};

/// One tool's overrides from the config, with the offsets errors point at.
#[derive(Debug, Clone, Default)]
pub struct ToolOverride {
    /// Where the override's section starts.
    pub offset: usize,
    /// The new adapter-local name and its offset.
    pub name: Option<(String, usize)>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub hints: HintOverrides,
    /// Pinned values by top-level property, each with its offset.
    pub pin: BTreeMap<String, (Value, usize)>,
}

/// Hints an override sets; `None` keeps the adapter's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HintOverrides {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

/// An override that cannot be applied: a config error for `manifold check`.
#[derive(Debug, thiserror::Error)]
pub enum VirtualizeError {
    #[error("adapter `{instance}` has no tool `{tool}` to override (it has: {known})")]
    UnknownTool {
        instance: String,
        tool: String,
        known: String,
        offset: usize,
    },
    #[error(
        "tool `{instance}.{tool}` is overridden but not exposed (it is not in the instance's `tools`)"
    )]
    NotExposed {
        instance: String,
        tool: String,
        offset: usize,
    },
    #[error(
        "tool `{instance}.{tool}` would be exposed as `{name}`: names must be 1-{MAX_TOOL_NAME} \
         characters of A-Z a-z 0-9 _ -"
    )]
    BadName {
        instance: String,
        tool: String,
        name: String,
        offset: usize,
    },
    #[error("tool `{instance}.{tool}` has no argument `{property}` to pin (it has: {known})")]
    UnknownArgument {
        instance: String,
        tool: String,
        property: String,
        known: String,
        offset: usize,
    },
    #[error(
        "the value pinned for `{instance}.{tool}` argument `{property}` does not fit its schema: {reason}"
    )]
    BadPin {
        instance: String,
        tool: String,
        property: String,
        reason: String,
        offset: usize,
    },
}

impl VirtualizeError {
    /// Byte offset in the config file the error points at.
    pub fn offset(&self) -> usize {
        match self {
            Self::UnknownTool { offset, .. }
            | Self::NotExposed { offset, .. }
            | Self::BadName { offset, .. }
            | Self::UnknownArgument { offset, .. }
            | Self::BadPin { offset, .. } => *offset,
        }
    }
}

/// What the catalog keeps of a tool's virtualization on its route.
#[derive(Debug)]
pub struct View {
    /// The name policies, quotas, redaction and the audit `tool` know the tool by: its exposed
    /// name without the rename. Equal to the exposed name when the tool is not renamed.
    pub policy_name: String,
    /// The hints enforcement uses: the adapter's, made more cautious, never less, by an override.
    pub enforced: Hints,
    /// Set on every call after the caller's arguments are checked.
    pins: Map<String, Value>,
    /// The adapter's own input schema, which the arguments must fit once pinned; `None` when
    /// nothing is pinned (the exposed schema is then the adapter's).
    original: Option<(Map<String, Value>, jsonschema::Validator)>,
}

/// A tool as it is exposed and as the catalog keeps it.
#[derive(Debug)]
pub struct Virtualized {
    /// The name clients call.
    pub exposed: String,
    /// The spec clients see: the adapter's with the override's texts, hints and schema.
    pub shown: ToolSpec,
    pub view: View,
    /// Where a collision of the new name is reported: the `name` key when renamed.
    pub name_offset: Option<usize>,
}

// === impl Virtualized ===

impl Virtualized {
    /// The exposed and policy views of `spec`, exposed as `exposed` when not renamed.
    pub fn build(
        instance: &str,
        prefix: Option<&str>,
        spec: &ToolSpec,
        over: Option<&ToolOverride>,
    ) -> Result<Self, Vec<VirtualizeError>> {
        let policy_name = exposed_name(prefix, &spec.name);
        let Some(over) = over else {
            return Ok(Self {
                exposed: policy_name.clone(),
                shown: spec.clone(),
                view: View::identity(policy_name, spec.annotations),
                name_offset: None,
            });
        };
        let mut errors = Vec::new();
        let exposed = match &over.name {
            None => policy_name.clone(),
            Some((name, offset)) => {
                // An admin's name is used as written, never shortened or cleaned like an
                // adapter's: a name they did not write would surprise them.
                let exposed = match prefix {
                    Some(prefix) => format!("{prefix}_{name}"),
                    None => name.clone(),
                };
                if !valid_name(&exposed) {
                    errors.push(VirtualizeError::BadName {
                        instance: instance.to_owned(),
                        tool: spec.name.clone(),
                        name: exposed.clone(),
                        offset: *offset,
                    });
                }
                exposed
            }
        };
        let pins = check_pins(instance, spec, &over.pin, &mut errors);
        let original = if pins.is_empty() {
            None
        } else {
            // The schema compiled for the catalog already; it compiles here too.
            jsonschema::validator_for(&Value::Object(spec.input_schema.clone()))
                .ok()
                .map(|validator| (spec.input_schema.clone(), validator))
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut shown = spec.clone();
        if let Some(title) = &over.title {
            shown.title.clone_from(title);
        }
        if let Some(description) = &over.description {
            shown.description.clone_from(description);
        }
        shown.annotations = over.hints.shown(spec.annotations);
        shown.input_schema = hide(&spec.input_schema, pins.keys());
        Ok(Self {
            exposed,
            shown,
            view: View {
                policy_name,
                enforced: over.hints.enforced(spec.annotations),
                pins,
                original,
            },
            name_offset: over.name.as_ref().map(|(_, offset)| *offset),
        })
    }
}

/// Overrides naming a tool the adapter does not have, or one the `tools` list leaves out.
pub fn unknown_overrides(
    instance: &str,
    tools: &[ToolSpec],
    only_tools: Option<&[(String, usize)]>,
    overrides: &BTreeMap<String, ToolOverride>,
) -> Vec<VirtualizeError> {
    overrides
        .iter()
        .filter_map(|(tool, over)| {
            if !tools.iter().any(|spec| &spec.name == tool) {
                return Some(VirtualizeError::UnknownTool {
                    instance: instance.to_owned(),
                    tool: tool.clone(),
                    known: tools
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    offset: over.offset,
                });
            }
            let listed = only_tools.is_none_or(|only| only.iter().any(|(name, _)| name == tool));
            (!listed).then(|| VirtualizeError::NotExposed {
                instance: instance.to_owned(),
                tool: tool.clone(),
                offset: over.offset,
            })
        })
        .collect()
}

/// The pins that name a property of the tool's schema and fit its schema; the others are
/// reported.
fn check_pins(
    instance: &str,
    spec: &ToolSpec,
    pin: &BTreeMap<String, (Value, usize)>,
    errors: &mut Vec<VirtualizeError>,
) -> Map<String, Value> {
    let properties = spec
        .input_schema
        .get("properties")
        .and_then(Value::as_object);
    let mut pins = Map::new();
    for (property, (value, offset)) in pin {
        let Some(schema) = properties.and_then(|p| p.get(property)) else {
            errors.push(VirtualizeError::UnknownArgument {
                instance: instance.to_owned(),
                tool: spec.name.clone(),
                property: property.clone(),
                known: properties
                    .map(|p| p.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
                offset: *offset,
            });
            continue;
        };
        if let Err(reason) = fits(&spec.input_schema, property, schema, value) {
            errors.push(VirtualizeError::BadPin {
                instance: instance.to_owned(),
                tool: spec.name.clone(),
                property: property.clone(),
                reason,
                offset: *offset,
            });
            continue;
        }
        pins.insert(property.clone(), value.clone());
    }
    pins
}

/// Checks `value` against the property's own schema, with the tool schema's definitions so a
/// `$ref` still resolves. Whether the pin fits the whole schema (`oneOf` across properties, …)
/// is only known with a call's arguments, and checked then.
fn fits(
    tool_schema: &Map<String, Value>,
    property: &str,
    schema: &Value,
    value: &Value,
) -> Result<(), String> {
    let mut probe = Map::new();
    for definitions in ["$defs", "definitions"] {
        if let Some(defs) = tool_schema.get(definitions) {
            probe.insert(definitions.to_owned(), defs.clone());
        }
    }
    probe.insert("type".into(), "object".into());
    let mut properties = Map::new();
    properties.insert(property.to_owned(), schema.clone());
    probe.insert("properties".into(), Value::Object(properties));
    let validator =
        jsonschema::validator_for(&Value::Object(probe)).map_err(|error| error.to_string())?;
    let mut arguments = Map::new();
    arguments.insert(property.to_owned(), value.clone());
    let reasons: Vec<String> = validator
        .iter_errors(&Value::Object(arguments))
        .take(5)
        .map(|error| error.to_string())
        .collect();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons.join("; "))
    }
}

/// `schema` without `hidden` in its `properties` and `required`.
fn hide<'a>(
    schema: &Map<String, Value>,
    hidden: impl Iterator<Item = &'a String> + Clone,
) -> Map<String, Value> {
    let mut shown = schema.clone();
    if let Some(Value::Object(properties)) = shown.get_mut("properties") {
        for property in hidden.clone() {
            properties.remove(property);
        }
    }
    if let Some(Value::Array(required)) = shown.get_mut("required") {
        let hidden: Vec<&String> = hidden.collect();
        required.retain(|name| {
            !name
                .as_str()
                .is_some_and(|n| hidden.iter().any(|h| *h == n))
        });
        if required.is_empty() {
            shown.remove("required");
        }
    }
    shown
}

/// `[A-Za-z0-9_-]{1,64}`: the function-name rule of OpenAI models.
fn valid_name(name: &str) -> bool {
    (1..=MAX_TOOL_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

// === impl HintOverrides ===

impl HintOverrides {
    /// What clients are told: the admin's hints over the adapter's.
    fn shown(self, adapter: Hints) -> Hints {
        Hints {
            read_only: self.read_only.unwrap_or(adapter.read_only),
            destructive: self.destructive.unwrap_or(adapter.destructive),
            idempotent: self.idempotent.unwrap_or(adapter.idempotent),
            open_world: self.open_world.unwrap_or(adapter.open_world),
        }
    }

    /// What enforcement uses: read-only and idempotent only if both say so, destructive and
    /// open-world if either does.
    fn enforced(self, adapter: Hints) -> Hints {
        let shown = self.shown(adapter);
        Hints {
            read_only: adapter.read_only && shown.read_only,
            destructive: adapter.destructive || shown.destructive,
            idempotent: adapter.idempotent && shown.idempotent,
            open_world: adapter.open_world || shown.open_world,
        }
    }
}

// === impl View ===

impl View {
    /// A tool without overrides.
    fn identity(policy_name: String, hints: Hints) -> Self {
        Self {
            policy_name,
            enforced: hints,
            pins: Map::new(),
            original: None,
        }
    }

    /// The pinned arguments (empty when none).
    pub fn pins(&self) -> &Map<String, Value> {
        &self.pins
    }

    /// Refuses a pinned argument sent by the caller. Checked before anything else: the exposed
    /// schema does not name it, and a schema open to other properties would let it through.
    pub fn refuse_pinned(&self, arguments: &Value) -> Result<(), Vec<String>> {
        let Value::Object(arguments) = arguments else {
            return Ok(()); // the schema refuses it
        };
        let sent: Vec<String> = self
            .pins
            .keys()
            .filter(|property| arguments.contains_key(*property))
            .map(|property| {
                format!(
                    "arguments/{property}: this argument is fixed by the gateway's configuration \
                     and may not be given"
                )
            })
            .collect();
        if sent.is_empty() { Ok(()) } else { Err(sent) }
    }

    /// Sets the pins on arguments already checked against the exposed schema, then checks the
    /// whole against the adapter's own schema (the provider receives these arguments).
    pub fn pin(&self, arguments: &mut Value) -> Result<(), Vec<String>> {
        let Some((schema, validator)) = &self.original else {
            return Ok(());
        };
        let Value::Object(map) = arguments else {
            return Err(vec!["arguments must be an object".to_owned()]);
        };
        for (property, value) in &self.pins {
            map.insert(property.clone(), value.clone());
        }
        // A pinned object may leave properties with defaults out, like a caller.
        super::defaults::complete(schema, arguments);
        let errors: Vec<String> = validator
            .iter_errors(arguments)
            .take(10)
            .map(|error| {
                format!(
                    "arguments{} (with the values the gateway fixes): {error}",
                    error.instance_path()
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
