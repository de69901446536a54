//! Upstream tool descriptions into the gateway's [`ToolSpec`]s: names checked, annotations
//! treated as claims unless the instance trusts them, the original kept for pass-through.

use std::sync::Arc;

use rmcp::model::Tool;
use serde_json::{Map, Value};

use crate::{ToolAnnotations, ToolSpec};

/// What an upstream tool is taken as when its annotations are not trusted: a write that may
/// destroy something and reaches the outside world. An admin marks it otherwise.
pub const UNTRUSTED: ToolAnnotations = ToolAnnotations {
    read_only: false,
    destructive: true,
    idempotent: false,
    open_world: true,
};

/// Why an upstream tool was not taken; logged with the instance's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("tool name {0:?} is not 1-64 characters of [A-Za-z0-9_-]")]
    Name(String),
    #[error("tool `{0}` is listed twice")]
    Duplicate(String),
    #[error("tool `{0}` has an input schema that is not an object schema")]
    Schema(String),
    #[error("more than {0} tools; the rest are not taken")]
    TooMany(usize),
}

/// A name every client accepts (OpenAI's function-name rule), so prefixing cannot produce one
/// that a model refuses, and nothing an upstream sends can smuggle separators into routing.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The specs of the upstream's `tools`, and the reasons for each tool refused. The rest of the
/// list stays whatever one tool does wrong.
pub fn specs(
    tools: Vec<Tool>,
    trust_annotations: bool,
    max: usize,
) -> (Vec<ToolSpec>, Vec<Refused>) {
    let mut specs: Vec<ToolSpec> = Vec::new();
    let mut refused = Vec::new();
    for tool in tools {
        if specs.len() == max {
            refused.push(Refused::TooMany(max));
            break;
        }
        match spec(tool, trust_annotations) {
            Ok(spec) if specs.iter().any(|s| s.name == spec.name) => {
                refused.push(Refused::Duplicate(spec.name));
            }
            Ok(spec) => specs.push(spec),
            Err(reason) => refused.push(reason),
        }
    }
    (specs, refused)
}

fn spec(tool: Tool, trust_annotations: bool) -> Result<ToolSpec, Refused> {
    let name = tool.name.to_string();
    if !valid_name(&name) {
        return Err(Refused::Name(name.chars().take(80).collect()));
    }
    let input_schema: Map<String, Value> = (*tool.input_schema).clone();
    if input_schema
        .get("type")
        .is_some_and(|kind| kind != &Value::String("object".into()))
    {
        return Err(Refused::Schema(name));
    }
    let hints = tool.annotations.as_ref();
    let annotations = match hints {
        Some(hints) if trust_annotations => ToolAnnotations {
            // A hint left out means the worst case, as the MCP spec says.
            read_only: hints.read_only_hint.unwrap_or(false),
            destructive: hints.destructive_hint.unwrap_or(true),
            idempotent: hints.idempotent_hint.unwrap_or(false),
            open_world: hints.open_world_hint.unwrap_or(true),
        },
        _ => UNTRUSTED,
    };
    let title = tool
        .title
        .clone()
        .or_else(|| hints.and_then(|h| h.title.clone()))
        .unwrap_or_else(|| name.clone());
    let output_schema = tool
        .output_schema
        .as_ref()
        .map(|schema| (**schema).clone())
        .unwrap_or_default();
    Ok(ToolSpec {
        name,
        title,
        description: tool.description.as_deref().unwrap_or_default().to_owned(),
        input_schema,
        output_schema,
        annotations,
        scopes: Vec::new(),
        resolves_facts: false,
        upstream: Some(Arc::new(tool)),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use rmcp::model::ToolAnnotations as Hints;
    use serde_json::json;

    use super::*;

    fn tool(name: &str) -> Tool {
        serde_json::from_value(json!({
            "name": name,
            "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
            "annotations": {"readOnlyHint": true, "destructiveHint": false},
        }))
        .unwrap()
    }

    #[test]
    fn annotations_are_claims_unless_the_instance_trusts_them() {
        let (untrusted, _) = specs(vec![tool("search")], false, 10);
        assert_eq!(untrusted[0].annotations, UNTRUSTED);
        let (trusted, _) = specs(vec![tool("search")], true, 10);
        assert!(trusted[0].annotations.read_only && !trusted[0].annotations.destructive);
        // Trust does not invent hints the upstream left out.
        let mut bare = tool("bare");
        bare.annotations = Some(Hints::default());
        let (bare, _) = specs(vec![bare], true, 10);
        assert_eq!(bare[0].annotations, UNTRUSTED);
    }

    #[test]
    fn bad_duplicate_and_excess_tools_are_refused_and_the_rest_stay() {
        let mut array_schema = tool("arrays");
        array_schema.input_schema = Arc::new(json!({"type": "array"}).as_object().unwrap().clone());
        let tools = vec![
            tool("ok"),
            tool("has.dot"),
            tool("ok"),
            array_schema,
            tool(&"x".repeat(65)),
            tool("second"),
            tool("third"),
        ];
        let (taken, refused) = specs(tools, false, 2);
        let names: Vec<_> = taken.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ok", "second"]);
        assert_eq!(refused.len(), 5, "{refused:?}");
        assert!(matches!(refused[0], Refused::Name(_)));
        assert!(matches!(refused[1], Refused::Duplicate(_)));
        assert!(matches!(refused[2], Refused::Schema(_)));
        assert!(matches!(refused[4], Refused::TooMany(2)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// Whatever name an upstream sends, a taken tool's name fits every client's rule.
        #[test]
        fn every_taken_name_fits_the_client_rule(name in "\\PC{0,70}") {
            let (taken, refused) = specs(vec![tool(&name)], false, 10);
            prop_assert_eq!(taken.len() + refused.len(), 1);
            for spec in taken {
                prop_assert!(valid_name(&spec.name));
                prop_assert_eq!(spec.name, name.clone());
            }
        }
    }
}
