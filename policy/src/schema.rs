//! Generates the Cedar schema from the configured tools. The entity shapes are fixed (users,
//! groups, adapters, tools, and the resources and prompts of MCP servers); only `context.args` depends on the catalog: it is the union of every
//! tool's input properties, all optional, so one policy can constrain `context.args.team_id`
//! without knowing which tools take it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A tool as the schema generator and the test runner see it: the gateway builds these from the
/// adapter catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolDescriptor {
    pub name: String,
    pub instance: String,
    pub kind: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub destructive: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The tool's JSON Schema for its arguments (`{"type":"object","properties":{…}}`).
    #[serde(default)]
    pub input_schema: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Cedar refused the generated text: a bug here, or a tool name Cedar cannot quote.
    #[error("generated Cedar schema is invalid: {0}")]
    Invalid(String),
}

/// The scalar Cedar types an argument can have; anything else (objects, floats) is left out of
/// the schema, so policies cannot reference it and the context builder drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prim {
    String,
    Long,
    Bool,
}

/// The Cedar type of one `context.args` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgType {
    One(Prim),
    Set(Prim),
}

impl ArgType {
    fn cedar(self) -> String {
        let p = |p: Prim| match p {
            Prim::String => "String",
            Prim::Long => "Long",
            Prim::Bool => "Bool",
        };
        match self {
            ArgType::One(x) => p(x).to_string(),
            ArgType::Set(x) => format!("Set<{}>", p(x)),
        }
    }

    /// Two tools that disagree: a scalar and a set of the same scalar become the set (the context
    /// builder wraps a lone value), so `to: "a@x"` and `to: ["a@x"]` both stay usable.
    fn unify(self, other: ArgType) -> Option<ArgType> {
        match (self, other) {
            (a, b) if a == b => Some(a),
            (ArgType::One(a), ArgType::Set(b)) | (ArgType::Set(a), ArgType::One(b)) if a == b => {
                Some(ArgType::Set(a))
            }
            _ => None,
        }
    }
}

fn prim_of(schema: &serde_json::Value) -> Option<Prim> {
    // `"type": ["string", "null"]` is common for optional fields: the non-null member counts.
    let ty = match schema.get("type")? {
        serde_json::Value::String(s) => s.as_str(),
        serde_json::Value::Array(a) => {
            a.iter().filter_map(|v| v.as_str()).find(|s| *s != "null")?
        }
        _ => return None,
    };
    match ty {
        "string" => Some(Prim::String),
        "integer" => Some(Prim::Long),
        "boolean" => Some(Prim::Bool),
        _ => None,
    }
}

fn arg_type_of(schema: &serde_json::Value) -> Option<ArgType> {
    if let Some(p) = prim_of(schema) {
        return Some(ArgType::One(p));
    }
    let is_array = match schema.get("type") {
        Some(serde_json::Value::String(s)) => s == "array",
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v == "array"),
        _ => false,
    };
    if is_array {
        return schema.get("items").and_then(prim_of).map(ArgType::Set);
    }
    None
}

/// Attribute names Cedar can carry quoted without escaping worries.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
}

/// The union of all tools' argument properties with their unified Cedar types.
pub(crate) fn arg_types(tools: &[ToolDescriptor]) -> BTreeMap<String, ArgType> {
    let mut out: BTreeMap<String, Option<ArgType>> = BTreeMap::new();
    for tool in tools {
        let Some(props) = tool
            .input_schema
            .get("properties")
            .and_then(|p| p.as_object())
        else {
            continue;
        };
        for (name, prop) in props {
            if !plain_name(name) {
                continue;
            }
            let Some(ty) = arg_type_of(prop) else {
                // An argument whose type Cedar cannot express poisons the name for everyone, so
                // no policy silently compares against a value the builder would drop.
                out.insert(name.clone(), None);
                continue;
            };
            let merged = match out.get(name) {
                None => Some(ty),
                Some(None) => None,
                Some(Some(prev)) => prev.unify(ty),
            };
            out.insert(name.clone(), merged);
        }
    }
    out.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// The Cedar schema (human syntax) for the given tools: what `manifold policy schema` prints.
pub fn schema_text(tools: &[ToolDescriptor]) -> String {
    let mut args = String::new();
    for (name, ty) in arg_types(tools) {
        let _ = writeln!(args, "  \"{name}\"?: {},", ty.cedar());
    }
    format!(
        r#"// Generated by manifold-policy from the configured adapters; do not edit.
entity Group;
entity User in [Group] {{
  email: String,
  domain: String,
  groups: Set<String>,
}};
entity Adapter {{
  kind: String,
  instance: String,
}};
entity Tool in [Adapter] {{
  name: String,
  kind: String,
  instance: String,
  read_only: Bool,
  destructive: Bool,
  tags: Set<String>,
}};
// Every argument any tool takes, all optional: test with `has` before use.
type Args = {{
{args}}};
type RequestContext = {{
  args: Args,
  // Everyone the call sends to — the declared address arguments (`"format": "email"`) and,
  // for tools that resolve stored state first, the implicit ones (a reply's addressees, a
  // draft's recipients) — canonical (`local@domain`, the domain IDNA-normalised, `[10.0.0.1]`
  // for an IP address), and their domains.
  recipients: Set<String>,
  recipient_domains: Set<String>,
  // Everyone the call gives access to (a file share's grantee), and their domains.
  grantees: Set<String>,
  grantee_domains: Set<String>,
  // The sender and recipients of the stored message a reply or forward quotes.
  participants: Set<String>,
  participant_domains: Set<String>,
  // The places the call acts within, as the provider names them, for tools that resolve them
  // before the decision: a Drive item's folder and every folder above it, a Teams channel's
  // team. Empty for other tools.
  containers: Set<String>,
  // Whom a link the call shares works for: "anyone", "organization", "invited", or "none" when
  // the call shares no link.
  link_audience: String,
  client_id: String,
}};
// What an MCP server behind the gateway offers besides tools. `name` is the name the gateway
// exposes (a resource's URI or URI template, a prompt's name); both count as read-only.
entity Resource in [Adapter] {{
  name: String,
  uri: String,
  kind: String,
  instance: String,
  read_only: Bool,
  destructive: Bool,
  tags: Set<String>,
}};
entity Prompt in [Adapter] {{
  name: String,
  kind: String,
  instance: String,
  read_only: Bool,
  destructive: Bool,
  tags: Set<String>,
}};
action "list" appliesTo {{
  principal: [User],
  resource: [Tool, Resource, Prompt],
  context: RequestContext,
}};
action "call", "fetch" appliesTo {{
  principal: [User],
  resource: [Tool],
  context: RequestContext,
}};
// `read`: resources/read and resources/subscribe; `get`: prompts/get.
action "read" appliesTo {{
  principal: [User],
  resource: [Resource],
  context: RequestContext,
}};
action "get" appliesTo {{
  principal: [User],
  resource: [Prompt],
  context: RequestContext,
}};
"#
    )
}

/// A parsed schema plus what was needed to build it.
#[derive(Debug, Clone)]
pub struct PolicySchema {
    pub(crate) schema: cedar_policy::Schema,
    pub(crate) text: String,
    pub(crate) tools: Vec<ToolDescriptor>,
    pub(crate) args: BTreeMap<String, ArgType>,
}

impl PolicySchema {
    pub fn from_tools(tools: &[ToolDescriptor]) -> Result<Self, SchemaError> {
        let text = schema_text(tools);
        let (schema, _warnings) = cedar_policy::Schema::from_cedarschema_str(&text)
            .map_err(|e| SchemaError::Invalid(e.to_string()))?;
        Ok(PolicySchema {
            schema,
            text,
            tools: tools.to_vec(),
            args: arg_types(tools),
        })
    }

    /// The Cedar schema text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The tools the schema was built from.
    pub fn tools(&self) -> &[ToolDescriptor] {
        &self.tools
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, props: serde_json::Value) -> ToolDescriptor {
        ToolDescriptor {
            name: name.into(),
            instance: "x".into(),
            kind: "x".into(),
            input_schema: json!({"type": "object", "properties": props}),
            ..ToolDescriptor::default()
        }
    }

    #[test]
    fn args_are_the_union_and_scalars_widen_to_sets() {
        let tools = [
            tool(
                "a",
                json!({"to": {"type": "string"}, "n": {"type": "integer"}}),
            ),
            tool(
                "b",
                json!({"to": {"type": "array", "items": {"type": "string"}}, "n": {"type": "string"}, "q": {"type": ["string", "null"]}}),
            ),
        ];
        let args = arg_types(&tools);
        assert_eq!(args.get("to"), Some(&ArgType::Set(Prim::String)));
        assert_eq!(args.get("n"), None, "conflicting types are dropped");
        assert_eq!(args.get("q"), Some(&ArgType::One(Prim::String)));
        let schema = PolicySchema::from_tools(&tools).expect("schema parses");
        assert!(schema.text().contains("\"to\"?: Set<String>"));
    }
}
