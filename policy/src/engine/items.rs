//! Decisions on the resources and prompts of MCP servers behind the gateway. They go straight
//! to Cedar with the whole policy set: unlike tools they are not in the catalog the engine was
//! loaded with (an upstream's lists change without a reload), so there are no per-item entities
//! or caches to reuse, and Cedar's own scope check drops the policies that cannot match.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Entities, Entity, Request, RestrictedExpression};

use super::{CedarEngine, Explanation, Types};
use crate::{Facts, ItemAction, ItemKind, ItemRef, Principal};

impl CedarEngine {
    /// The decision on a resource or prompt, and what went into it.
    pub fn explain_item(
        &self,
        principal: &Principal,
        action: ItemAction,
        item: &ItemRef<'_>,
    ) -> Explanation {
        if !action.applies_to(item.kind) {
            return self.failed(format!(
                "action `{}` does not apply to a {}",
                action.as_str(),
                kind_word(item.kind)
            ));
        }
        let pe = match self.principal(principal) {
            Ok(pe) => pe,
            Err(e) => return self.failed(e),
        };
        let t = &self.types;
        let built = item_entities(t, item).and_then(|(item_e, adapter_e)| {
            Entities::from_entities([pe.entity.clone(), item_e, adapter_e], None)
                .map_err(|e| e.to_string())
        });
        let entities = match built {
            Ok(entities) => entities,
            Err(e) => return self.failed(e),
        };
        let context = match self.context(principal, None, &Facts::default()) {
            Ok(c) => c,
            Err(e) => return self.failed(e),
        };
        let request = match Request::new(
            pe.entity.uid(),
            t.item_action(action).clone(),
            t.uid(t.item_type(item.kind), item.name),
            context,
            None,
        ) {
            Ok(r) => r,
            Err(e) => return self.failed(e.to_string()),
        };
        self.authorize(&request, &self.all, &entities)
    }
}

fn kind_word(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Resource => "resource",
        ItemKind::Prompt => "prompt",
    }
}

/// A resource's or prompt's entity and its adapter's. Both count as read-only and not
/// destructive: listing, reading and getting change nothing upstream.
fn item_entities(t: &Types, item: &ItemRef<'_>) -> Result<(Entity, Entity), String> {
    let adapter = t.uid(&t.adapter, item.instance);
    let s = |v: &str| RestrictedExpression::new_string(v.to_string());
    let mut attrs = HashMap::from([
        ("name".to_string(), s(item.name)),
        ("kind".to_string(), s(item.adapter_kind)),
        ("instance".to_string(), s(item.instance)),
        (
            "read_only".to_string(),
            RestrictedExpression::new_bool(true),
        ),
        (
            "destructive".to_string(),
            RestrictedExpression::new_bool(false),
        ),
        (
            "tags".to_string(),
            RestrictedExpression::new_set(std::iter::empty()),
        ),
    ]);
    if item.kind == ItemKind::Resource {
        attrs.insert("uri".to_string(), s(item.name));
    }
    let item_e = Entity::new(
        t.uid(t.item_type(item.kind), item.name),
        attrs,
        HashSet::from([adapter.clone()]),
    )
    .map_err(|e| e.to_string())?;
    let attrs = HashMap::from([
        ("kind".to_string(), s(item.adapter_kind)),
        ("instance".to_string(), s(item.instance)),
    ]);
    let adapter_e = Entity::new(adapter, attrs, HashSet::new()).map_err(|e| e.to_string())?;
    Ok((item_e, adapter_e))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;
    use crate::{Decision, PolicyEngine, PolicySchema};

    const POLICIES: &str = r#"
@id("staff-list")
permit (principal in Group::"staff", action == Action::"list", resource);
@id("staff-read-crm")
permit (principal in Group::"staff", action == Action::"read", resource in Adapter::"crm");
@id("no-secrets") @reason("crm secrets are not for the gateway")
forbid (principal, action, resource is Resource) when { resource.uri like "manifold://crm/secret/*" };
@id("eng-prompts")
permit (principal in Group::"eng", action == Action::"get", resource is Prompt);
@id("no-mcp-for-contractors")
forbid (principal in Group::"contractors", action, resource) when { resource.kind == "mcp" };
"#;

    fn engine(policies: &str) -> CedarEngine {
        let schema = PolicySchema::from_tools(&[]).expect("schema");
        CedarEngine::from_sources(&[(PathBuf::from("t.cedar"), policies.to_string())], &schema)
            .expect("policies validate against the schema")
    }

    fn member(groups: &[&str]) -> Principal {
        Principal {
            user: Some("u".into()),
            email: Some("u@example.com".into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            client_id: None,
        }
    }

    fn resource(uri: &str) -> ItemRef<'_> {
        ItemRef {
            kind: ItemKind::Resource,
            name: uri,
            instance: "crm",
            adapter_kind: "mcp",
        }
    }

    fn prompt(name: &str) -> ItemRef<'_> {
        ItemRef {
            kind: ItemKind::Prompt,
            name,
            instance: "crm",
            adapter_kind: "mcp",
        }
    }

    #[test]
    fn resources_and_prompts_follow_their_allow_and_deny_table() {
        let engine = engine(POLICIES);
        let staff = member(&["staff"]);
        let eng = member(&["eng"]);
        let both = member(&["staff", "eng", "contractors"]);
        let doc = resource("manifold://crm/docs/a.txt");
        let secret = resource("manifold://crm/secret/keys.txt");
        let summarize = prompt("crm_summarize");
        let table: &[(&Principal, ItemAction, &ItemRef<'_>, bool)] = &[
            (&staff, ItemAction::List, &doc, true),
            (&staff, ItemAction::Read, &doc, true),
            (&staff, ItemAction::List, &secret, false),
            (&staff, ItemAction::Read, &secret, false),
            (&eng, ItemAction::Read, &doc, false),
            (&eng, ItemAction::Get, &summarize, true),
            (&staff, ItemAction::Get, &summarize, false),
            (&staff, ItemAction::List, &summarize, true),
            (&both, ItemAction::Read, &doc, false),
            (&both, ItemAction::Get, &summarize, false),
            // `read` is for resources and `get` for prompts, whatever the policies say.
            (&staff, ItemAction::Get, &doc, false),
            (&eng, ItemAction::Read, &summarize, false),
        ];
        for (i, (who, action, item, allowed)) in table.iter().enumerate() {
            let decision = engine.decide_item(who, *action, item);
            assert_eq!(
                decision.is_allowed(),
                *allowed,
                "row {i}: {:?} {action:?} {item:?} -> {decision:?}",
                who.groups
            );
        }
        let denied = engine.decide_item(&staff, ItemAction::Read, &secret);
        assert!(
            matches!(&denied, Decision::Deny { reason, .. } if reason.contains("not for the gateway")),
            "{denied:?}"
        );
    }

    #[test]
    fn tool_policies_do_not_open_resources() {
        // A blanket permit on tools' `call` says nothing about reading resources.
        let engine = engine("permit (principal, action == Action::\"call\", resource);");
        let anyone = member(&[]);
        let doc = resource("manifold://crm/a");
        assert!(
            !engine
                .decide_item(&anyone, ItemAction::Read, &doc)
                .is_allowed()
        );
        assert!(
            !engine
                .decide_item(&anyone, ItemAction::List, &doc)
                .is_allowed()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The forbid holds for every URI under the prefix it names, whatever follows.
        #[test]
        fn a_forbidden_prefix_is_denied_for_every_uri_under_it(tail in "\\PC{0,40}") {
            let engine = engine(POLICIES);
            let staff = member(&["staff"]);
            let uri = format!("manifold://crm/secret/{tail}");
            for action in [ItemAction::List, ItemAction::Read] {
                prop_assert!(!engine.decide_item(&staff, action, &resource(&uri)).is_allowed());
            }
        }
    }
}
