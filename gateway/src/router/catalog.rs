//! The catalog: every exposed tool with its route to an adapter instance, its compiled argument
//! validator and its MCP description, in a stable order for paging.

use std::{collections::HashMap, sync::Arc};

use manifold_adapters::{Adapter, ToolSpec};
use rmcp::model::{Tool, ToolAnnotations};
use serde_json::Value;

use super::virtualize::{self, ToolOverride, View, Virtualized};

/// Where one exposed tool goes.
pub struct Route {
    /// The name clients call.
    pub exposed: String,
    /// The adapter instance's config name.
    pub instance: Arc<str>,
    /// The adapter kind (`linear`, …), for policy and audit.
    pub kind: Arc<str>,
    pub spec: ToolSpec,
    pub adapter: Arc<dyn Adapter>,
    /// Tags from the config, seen by policies as `resource.tags`.
    pub tags: Vec<String>,
    /// The instance is switched read-only and this tool is not read-only: hidden and denied.
    pub blocked_by_read_only: bool,
    /// The description sent in `tools/list`.
    pub tool: Tool,
    /// The admin's overrides (`virtualize.rs`): the name policies see, pins, enforced hints.
    pub view: View,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("exposed", &self.exposed)
            .field("instance", &self.instance)
            .field("tool", &self.spec.name)
            .finish()
    }
}

/// One adapter instance as the catalog sees it.
#[derive(Clone)]
pub struct CatalogInstance {
    pub name: Arc<str>,
    pub kind: Arc<str>,
    /// `None` exposes the tools' own names (prefix mode `never`).
    pub prefix: Option<String>,
    /// Only these adapter-local tools (all when `None`), with their offsets in the config file.
    pub only_tools: Option<Vec<(String, usize)>>,
    /// Offset of the instance's section in the config, for errors.
    pub offset: usize,
    pub adapter: Arc<dyn Adapter>,
    /// The `read_only` switch of the instance.
    pub read_only: bool,
    /// `tool_tags` of the instance, by adapter-local tool name.
    pub tool_tags: std::collections::BTreeMap<String, Vec<String>>,
    /// `overrides` of the instance (`virtualize.rs`), by adapter-local tool name.
    pub overrides: std::collections::BTreeMap<String, ToolOverride>,
}

impl std::fmt::Debug for CatalogInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogInstance")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A catalog that cannot be built: a config error for `manifold check`.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "tool name `{name}` is produced by both `{first}` and `{second}`; give one instance another prefix"
    )]
    Collision {
        name: String,
        first: String,
        second: String,
        offset: usize,
    },
    #[error("adapter `{instance}` has no tool `{tool}` (it has: {known})")]
    UnknownTool {
        instance: String,
        tool: String,
        known: String,
        offset: usize,
    },
    #[error("tool `{instance}.{tool}` has an invalid input schema: {reason}")]
    BadSchema {
        instance: String,
        tool: String,
        reason: String,
        offset: usize,
    },
    #[error(
        "tool `{instance}.{tool}` needs facts resolved before the policy decides, but its adapter cannot resolve any"
    )]
    NoFacts {
        instance: String,
        tool: String,
        offset: usize,
    },
    #[error(transparent)]
    Override(#[from] virtualize::VirtualizeError),
}

impl CatalogError {
    /// Byte offset in the config file the error points at.
    pub fn offset(&self) -> usize {
        match self {
            Self::Collision { offset, .. }
            | Self::UnknownTool { offset, .. }
            | Self::BadSchema { offset, .. }
            | Self::NoFacts { offset, .. } => *offset,
            Self::Override(error) => error.offset(),
        }
    }
}

/// All exposed tools, looked up by exact name.
#[derive(Debug, Default)]
pub struct Catalog {
    routes: Vec<Arc<Route>>,
    by_name: HashMap<String, usize>,
    /// What it was built from, to build the next one when a live instance's tools change.
    instances: Arc<[CatalogInstance]>,
    /// The resources and prompts of the instances (`offers.rs`).
    offers: super::offers::Offers,
}

// === impl Catalog ===

impl Catalog {
    /// Builds the catalog, reporting every collision and unknown tool rather than the first.
    /// Those are config errors; what a live instance (an upstream MCP server) offers is not the
    /// config's fault, so its refused tools are logged and left out instead (see
    /// [`Catalog::assemble`]).
    pub fn build(instances: Vec<CatalogInstance>) -> Result<Self, Vec<CatalogError>> {
        let (catalog, errors) = Self::assemble(instances.into());
        let errors: Vec<CatalogError> = errors
            .into_iter()
            .filter_map(|(error, live)| {
                if live {
                    tracing::warn!(%error, "upstream tool refused");
                    None
                } else {
                    Some(error)
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(errors)
        }
    }

    /// Every tool that can be routed, and every refusal with whether it came from a live
    /// instance's tools. Names of fixed tools are claimed first, so an upstream that starts
    /// offering a native tool's name cannot take it over: its tool is the one refused.
    pub fn assemble(instances: Arc<[CatalogInstance]>) -> (Self, Vec<(CatalogError, bool)>) {
        let mut errors = Vec::new();
        let mut catalog = Catalog {
            instances: instances.clone(),
            ..Catalog::default()
        };
        // Who has each name, and where its rename is when it was renamed (`virtualize.rs`).
        let mut owner: HashMap<String, (String, Option<usize>)> = HashMap::new();
        let offered: Vec<(Vec<ToolSpec>, bool)> = instances
            .iter()
            .map(|instance| {
                let tools = instance.adapter.tools();
                (tools.current(), tools.is_live())
            })
            .collect();
        // The names fixed tools take (exposed and policy names), whatever order they come in.
        let fixed: HashMap<String, String> = instances
            .iter()
            .zip(&offered)
            .filter(|(_, (_, live))| !live)
            .flat_map(|(instance, (tools, _))| {
                tools.iter().filter_map(|spec| {
                    let virtualized = Virtualized::build(
                        &instance.name,
                        instance.prefix.as_deref(),
                        spec,
                        instance.overrides.get(&spec.name),
                    )
                    .ok()?;
                    let source = format!("{}.{}", instance.name, spec.name);
                    Some([
                        (virtualized.exposed, source.clone()),
                        (virtualized.view.policy_name, source),
                    ])
                })
            })
            .flatten()
            .collect();
        for (instance, (tools, live)) in instances.iter().zip(offered) {
            let mut push = |error: CatalogError| errors.push((error, live));
            if let Some(only) = instance.only_tools.as_ref().filter(|_| !live) {
                for (wanted, offset) in only {
                    if !tools.iter().any(|tool| &tool.name == wanted) {
                        push(CatalogError::UnknownTool {
                            instance: instance.name.to_string(),
                            tool: wanted.clone(),
                            known: tools
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            offset: *offset,
                        });
                    }
                }
            }
            // An upstream not connected yet offers nothing: its overrides wait for its tools.
            if !live {
                for error in virtualize::unknown_overrides(
                    &instance.name,
                    &tools,
                    instance.only_tools.as_deref(),
                    &instance.overrides,
                ) {
                    push(CatalogError::from(error));
                }
            }
            for spec in tools {
                if let Some(only) = &instance.only_tools
                    && !only.iter().any(|(name, _)| name == &spec.name)
                {
                    continue;
                }
                // Tool virtualization (`virtualize.rs`): the exposed name and description, and
                // the name policies see, which must be unique too.
                let virtualized = match Virtualized::build(
                    &instance.name,
                    instance.prefix.as_deref(),
                    &spec,
                    instance.overrides.get(&spec.name),
                ) {
                    Ok(virtualized) => virtualized,
                    Err(failed) => {
                        for error in failed {
                            push(CatalogError::from(error));
                        }
                        continue;
                    }
                };
                let Virtualized {
                    exposed,
                    shown,
                    view,
                    name_offset,
                } = virtualized;
                let names = [exposed.as_str(), view.policy_name.as_str()];
                let source = format!("{}.{}", instance.name, spec.name);
                let claimed = names.iter().find_map(|name| {
                    owner
                        .get(*name)
                        .map(|(first, at)| (*name, first.clone(), *at))
                        .or_else(|| {
                            fixed
                                .get(*name)
                                .filter(|_| live)
                                .map(|first| (*name, first.clone(), None))
                        })
                });
                if let Some((name, first, renamed_at)) = claimed {
                    push(CatalogError::Collision {
                        name: name.to_owned(),
                        first,
                        second: source,
                        // A rename is the likelier mistake: point at it.
                        offset: name_offset.or(renamed_at).unwrap_or(instance.offset),
                    });
                    continue;
                }
                let validator =
                    match jsonschema::validator_for(&Value::Object(shown.input_schema.clone())) {
                        Ok(validator) => validator,
                        Err(error) => {
                            push(CatalogError::BadSchema {
                                instance: instance.name.to_string(),
                                tool: spec.name.clone(),
                                reason: error.to_string(),
                                offset: instance.offset,
                            });
                            continue;
                        }
                    };
                // An address the facts stage would not read reaches the provider undecided on.
                let unreadable =
                    manifold_policy::facts::unreadable_declarations(&spec.input_schema);
                if !unreadable.is_empty() {
                    push(CatalogError::BadSchema {
                        instance: instance.name.to_string(),
                        tool: spec.name.clone(),
                        reason: format!(
                            "it declares e-mail addresses where the policy cannot read them ({}); \
                             declare them as properties or array items",
                            unreadable.join(", ")
                        ),
                        offset: instance.offset,
                    });
                    continue;
                }
                // A policy that cannot learn whom the call reaches must not decide without it.
                if spec.resolves_facts && instance.adapter.facts().is_none() {
                    push(CatalogError::NoFacts {
                        instance: instance.name.to_string(),
                        tool: spec.name.clone(),
                        offset: instance.offset,
                    });
                    continue;
                }
                for name in names {
                    owner.insert(name.to_owned(), (source.clone(), name_offset));
                }
                let tool = describe(&exposed, &shown);
                catalog
                    .by_name
                    .insert(exposed.clone(), catalog.routes.len());
                catalog.routes.push(Arc::new(Route {
                    exposed,
                    instance: instance.name.clone(),
                    kind: instance.kind.clone(),
                    tags: instance
                        .tool_tags
                        .get(&spec.name)
                        .cloned()
                        .unwrap_or_default(),
                    blocked_by_read_only: instance.read_only && !view.enforced.read_only,
                    spec,
                    adapter: instance.adapter.clone(),
                    tool,
                    view,
                    validator,
                }));
            }
        }
        catalog.offers = super::offers::Offers::assemble(&instances);
        (catalog, errors)
    }

    /// Whether the tools clients see differ from `other`'s.
    pub fn tools_differ(&self, other: &Catalog) -> bool {
        self.len() != other.len()
            || self
                .routes()
                .iter()
                .zip(other.routes())
                .any(|(a, b)| a.tool != b.tool || a.instance != b.instance)
    }

    /// The resources, resource templates and prompts, namespaced.
    pub fn offers(&self) -> &super::offers::Offers {
        &self.offers
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Route>> {
        self.by_name.get(name).map(|&index| &self.routes[index])
    }

    /// The instances the catalog was built from.
    pub fn instances(&self) -> &Arc<[CatalogInstance]> {
        &self.instances
    }

    /// Every route in catalog order (config order of instances, adapter order of tools).
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

// === impl Route ===

impl Route {
    /// Checks call arguments against the tool's input schema, then makes them explicit
    /// (`defaults.rs`: left-out properties take their schema default, whole floats declared
    /// `integer` become integers), so the policy, the audit record and the adapter all see the
    /// arguments the provider will act on. The messages name each failing location (JSON
    /// pointer) so a model can correct its call.
    pub fn check_arguments(&self, arguments: &mut Value) -> Result<(), Vec<String>> {
        self.view.refuse_pinned(arguments)?;
        self.validate(arguments)?;
        if super::defaults::complete(&self.tool.input_schema, arguments) {
            // A default that does not fit its own schema is the tool's fault, not the caller's,
            // but the call still must not go ahead on arguments the schema refuses.
            self.validate(arguments)?;
        }
        // Pinned arguments go in last, checked against the adapter's own schema (`virtualize.rs`).
        self.view.pin(arguments)
    }

    fn validate(&self, arguments: &Value) -> Result<(), Vec<String>> {
        let errors: Vec<String> = self
            .validator
            .iter_errors(arguments)
            .take(10)
            .map(|error| {
                let path = error.instance_path().to_string();
                let at = if path.is_empty() {
                    "arguments".to_owned()
                } else {
                    format!("arguments{path}")
                };
                format!("{at}: {error}")
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn describe(exposed: &str, spec: &ToolSpec) -> Tool {
    let hints = spec.annotations;
    if let Some(upstream) = &spec.upstream {
        // An upstream's description passes through whole (icons, `_meta`, its output schema or
        // none) under the gateway's name, with the hints the gateway's policy acts on.
        let mut tool = (**upstream).clone();
        tool.name = exposed.to_owned().into();
        let mut annotations = tool.annotations.take().unwrap_or_default();
        annotations.read_only_hint = Some(hints.read_only);
        annotations.destructive_hint = Some(hints.destructive);
        annotations.idempotent_hint = Some(hints.idempotent);
        annotations.open_world_hint = Some(hints.open_world);
        tool.annotations = Some(annotations);
        return tool;
    }
    let mut annotations = ToolAnnotations::default();
    annotations.title = Some(spec.title.clone());
    annotations.read_only_hint = Some(hints.read_only);
    annotations.destructive_hint = Some(hints.destructive);
    annotations.idempotent_hint = Some(hints.idempotent);
    annotations.open_world_hint = Some(hints.open_world);
    let mut tool = Tool::new(
        exposed.to_owned(),
        spec.description.clone(),
        Arc::new(spec.input_schema.clone()),
    );
    tool.title = Some(spec.title.clone());
    tool.output_schema = Some(Arc::new(spec.output_schema.clone()));
    tool.annotations = Some(annotations);
    tool
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use manifold_adapters::{CallContext, ToolAnnotations as Hints, ToolError, ToolOutput};
    use serde_json::{Map, json};

    use super::*;

    /// An adapter offering the given tools; never called.
    pub(crate) struct Offers(pub(crate) Vec<ToolSpec>);

    #[async_trait::async_trait]
    impl Adapter for Offers {
        fn tools(&self) -> manifold_adapters::Tools {
            manifold_adapters::Tools::Static(self.0.clone())
        }
        async fn call(
            &self,
            tool: &str,
            _arguments: Map<String, Value>,
            _ctx: &CallContext,
        ) -> Result<ToolOutput, ToolError> {
            Err(ToolError::UnknownTool(tool.to_owned()))
        }
    }

    pub(crate) fn instance(tools: Vec<ToolSpec>) -> CatalogInstance {
        CatalogInstance {
            name: "mail".into(),
            kind: "test".into(),
            prefix: Some("mail".into()),
            only_tools: None,
            offset: 7,
            adapter: Arc::new(Offers(tools)),
            read_only: false,
            tool_tags: Default::default(),
            overrides: Default::default(),
        }
    }

    /// The route of one tool of an adapter that is never called, for tests of later stages.
    pub(crate) fn route_of(spec: ToolSpec) -> Arc<Route> {
        let catalog = Catalog::build(vec![instance(vec![spec])]).unwrap();
        catalog.routes()[0].clone()
    }

    pub(crate) fn tool(name: &str, input: Value) -> ToolSpec {
        ToolSpec::new(
            name,
            name,
            name,
            Hints::CREATE,
            input,
            json!({"type": "object"}),
        )
    }

    #[test]
    fn a_tool_declaring_addresses_the_policy_cannot_read_is_refused_and_the_rest_stay() {
        let email = json!({"type": "string", "format": "email"});
        let tools = vec![
            tool(
                "send",
                json!({"type": "object", "properties": {"to": {"type": "array", "items": email}}}),
            ),
            tool(
                "sneaky",
                json!({"type": "object", "properties": {"to": {"anyOf": [email, {"type": "null"}]}}}),
            ),
        ];
        let errors = Catalog::build(vec![instance(tools.clone())]).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        assert!(
            text.contains("mail.sneaky") && text.contains("to/anyOf/0"),
            "{text}"
        );
        assert_eq!(errors[0].offset(), 7);
        let readable = Catalog::build(vec![instance(tools[..1].to_vec())]).unwrap();
        assert!(readable.get("mail_send").is_some());
    }
}
