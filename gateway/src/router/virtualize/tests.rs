use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::router::{Catalog, CatalogError, CatalogInstance, Route};

use crate::router::catalog::tests::Offers;

/// Linear's `create_issue`, reduced to what the tests need.
fn create_issue() -> ToolSpec {
    ToolSpec::new(
        "create_issue",
        "Create a Linear issue",
        "Creates an issue in a team.",
        Hints::CREATE,
        json!({
            "type": "object",
            "properties": {
                "team_id": {"type": "string", "minLength": 1},
                "title": {"type": "string", "minLength": 1},
                "priority": {"type": "integer", "minimum": 0, "maximum": 4, "default": 0},
                "urgent": {"type": "boolean"},
            },
            "required": ["team_id", "title"],
        }),
        json!({"type": "object"}),
    )
}

fn list_issues() -> ToolSpec {
    ToolSpec::new(
        "list_issues",
        "List issues",
        "Lists issues.",
        Hints::READ,
        json!({"type": "object", "properties": {"team": {"type": "string"}}}),
        json!({"type": "object"}),
    )
}

fn instance(overrides: BTreeMap<String, ToolOverride>) -> CatalogInstance {
    CatalogInstance {
        name: "linear".into(),
        kind: "linear".into(),
        prefix: Some("linear".into()),
        only_tools: None,
        offset: 3,
        adapter: Arc::new(Offers(vec![create_issue(), list_issues()])),
        read_only: false,
        tool_tags: Default::default(),
        overrides,
    }
}

fn overriding(tool: &str, over: ToolOverride) -> BTreeMap<String, ToolOverride> {
    BTreeMap::from([(tool.to_owned(), over)])
}

fn pinned(property: &str, value: Value) -> ToolOverride {
    ToolOverride {
        offset: 11,
        pin: BTreeMap::from([(property.to_owned(), (value, 13))]),
        ..ToolOverride::default()
    }
}

fn build(overrides: BTreeMap<String, ToolOverride>) -> Result<Catalog, Vec<CatalogError>> {
    Catalog::build(vec![instance(overrides)])
}

fn route(catalog: &Catalog, name: &str) -> Arc<Route> {
    catalog.get(name).unwrap().clone()
}

#[test]
fn a_renamed_tool_is_called_by_its_new_name_while_policies_and_the_adapter_keep_the_original() {
    let over = ToolOverride {
        name: Some(("file_bug".into(), 20)),
        ..ToolOverride::default()
    };
    let catalog = build(overriding("create_issue", over)).unwrap();
    assert!(catalog.get("linear_create_issue").is_none());
    let route = route(&catalog, "linear_file_bug");
    assert_eq!(route.tool.name, "linear_file_bug");
    assert_eq!(route.view.policy_name, "linear_create_issue");
    assert_eq!(
        route.spec.name, "create_issue",
        "the adapter is called by its own name"
    );
    let descriptors = crate::policy::descriptors(&catalog);
    assert!(descriptors.iter().any(|d| d.name == "linear_create_issue"));
    assert!(!descriptors.iter().any(|d| d.name == "linear_file_bug"));
    assert_eq!(crate::policy::tool_ref(&route).name, "linear_create_issue");
    let plain = catalog.get("linear_list_issues").unwrap();
    assert_eq!(plain.view.policy_name, plain.exposed);
}

#[test]
fn title_and_description_overrides_reach_the_listed_tool_only() {
    let over = ToolOverride {
        title: Some("File a bug".into()),
        description: Some("Files a bug for the platform team.".into()),
        ..ToolOverride::default()
    };
    let catalog = build(overriding("create_issue", over)).unwrap();
    let route = route(&catalog, "linear_create_issue");
    assert_eq!(route.tool.title.as_deref(), Some("File a bug"));
    assert_eq!(
        route.tool.annotations.as_ref().unwrap().title.as_deref(),
        Some("File a bug")
    );
    assert_eq!(
        route.tool.description.as_deref(),
        Some("Files a bug for the platform team.")
    );
    assert_eq!(route.spec.title, "Create a Linear issue");
}

#[test]
fn hint_overrides_are_shown_as_written_but_enforced_only_where_more_cautious() {
    let over = ToolOverride {
        hints: HintOverrides {
            read_only: Some(true),
            destructive: Some(true),
            idempotent: Some(true),
            open_world: Some(false),
        },
        ..ToolOverride::default()
    };
    let mut instance = instance(overriding("create_issue", over));
    instance.read_only = true;
    let catalog = Catalog::build(vec![instance]).unwrap();
    let route = route(&catalog, "linear_create_issue");
    let shown = route.tool.annotations.as_ref().unwrap();
    assert_eq!(shown.read_only_hint, Some(true));
    assert_eq!(shown.destructive_hint, Some(true));
    assert_eq!(shown.idempotent_hint, Some(true));
    assert_eq!(shown.open_world_hint, Some(false));
    // Calling a write tool read-only does not get it past a read-only instance or a policy.
    assert!(!route.view.enforced.read_only);
    assert!(route.blocked_by_read_only);
    assert!(route.view.enforced.destructive);
    assert!(!route.view.enforced.idempotent);
    // Open world is enforced if either says so: Linear's issues stay in the company's
    // workspace, so the adapter's own `false` stands with the admin's.
    assert!(!route.spec.annotations.open_world);
    assert!(!route.view.enforced.open_world);
    assert!(crate::policy::tool_ref(&route).destructive);
}

#[test]
fn a_pinned_argument_leaves_the_exposed_schema_and_is_set_on_every_call() {
    let catalog = build(overriding(
        "create_issue",
        pinned("team_id", json!("TEAM-ENG")),
    ))
    .unwrap();
    let route = route(&catalog, "linear_create_issue");
    let schema = &route.tool.input_schema;
    assert!(schema["properties"].get("team_id").is_none());
    assert_eq!(schema["required"], json!(["title"]));
    assert!(
        route.spec.input_schema["properties"]
            .get("team_id")
            .is_some()
    );
    let mut arguments = json!({"title": "Crash on start"});
    route.check_arguments(&mut arguments).unwrap();
    assert_eq!(
        arguments,
        json!({"title": "Crash on start", "team_id": "TEAM-ENG", "priority": 0})
    );
}

#[test]
fn a_caller_sending_a_pinned_argument_is_refused_even_with_the_pinned_value() {
    let catalog = build(overriding(
        "create_issue",
        pinned("team_id", json!("TEAM-ENG")),
    ))
    .unwrap();
    let route = route(&catalog, "linear_create_issue");
    for sent in [json!("TEAM-OPS"), json!("TEAM-ENG"), json!(null)] {
        let mut arguments = json!({"title": "x", "team_id": sent});
        let errors = route.check_arguments(&mut arguments).unwrap_err();
        assert!(
            errors[0].starts_with("arguments/team_id: this argument is fixed"),
            "{errors:?}"
        );
    }
}

#[test]
fn a_pin_that_fits_its_property_but_not_the_whole_schema_refuses_the_call() {
    let mut spec = list_issues();
    spec.input_schema = json!({
        "type": "object",
        "properties": {"team": {"type": "string"}, "state": {"type": "string"}},
        "dependentRequired": {"team": ["state"]},
    })
    .as_object()
    .unwrap()
    .clone();
    let mut instance = instance(overriding("list_issues", pinned("team", json!("ENG"))));
    instance.adapter = Arc::new(Offers(vec![spec]));
    let catalog = Catalog::build(vec![instance]).unwrap();
    let route = route(&catalog, "linear_list_issues");
    let errors = route.check_arguments(&mut json!({})).unwrap_err();
    assert!(
        errors[0].contains("with the values the gateway fixes"),
        "{errors:?}"
    );
    let mut arguments = json!({"state": "open"});
    route.check_arguments(&mut arguments).unwrap();
    assert_eq!(arguments, json!({"state": "open", "team": "ENG"}));
}

#[test]
fn a_renamed_tool_colliding_with_another_is_reported_at_its_name() {
    let over = ToolOverride {
        offset: 11,
        name: Some(("list_issues".into(), 42)),
        ..ToolOverride::default()
    };
    let errors = build(overriding("create_issue", over)).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.contains("`linear_list_issues`")
            && text.contains("linear.create_issue")
            && text.contains("linear.list_issues"),
        "{text}"
    );
    assert_eq!(errors[0].offset(), 42);
}

#[test]
fn no_tool_may_take_the_name_policies_know_a_renamed_tool_by() {
    // `list_issues` exposed as `linear_create_issue` while `create_issue`, renamed, is still
    // `linear_create_issue` to the policies: a rule on that name would mean two tools.
    let overrides = BTreeMap::from([
        (
            "create_issue".to_owned(),
            ToolOverride {
                name: Some(("file_bug".into(), 20)),
                ..ToolOverride::default()
            },
        ),
        (
            "list_issues".to_owned(),
            ToolOverride {
                name: Some(("create_issue".into(), 30)),
                ..ToolOverride::default()
            },
        ),
    ]);
    let errors = build(overrides).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].to_string().contains("`linear_create_issue`"));
    assert_eq!(errors[0].offset(), 30);
}

#[test]
fn overrides_of_unknown_tools_and_arguments_and_ill_typed_pins_are_config_errors() {
    let mut overrides = overriding("create_issues", ToolOverride::default());
    overrides.insert(
        "create_issue".into(),
        ToolOverride {
            offset: 11,
            name: Some(("x".repeat(60), 20)),
            pin: BTreeMap::from([
                ("team".to_owned(), (json!("ENG"), 30)),
                ("priority".to_owned(), (json!("high"), 40)),
                ("urgent".to_owned(), (json!(true), 50)),
            ]),
            ..ToolOverride::default()
        },
    );
    let errors = build(overrides).unwrap_err();
    let found: Vec<(usize, String)> = errors.iter().map(|e| (e.offset(), e.to_string())).collect();
    assert_eq!(found.len(), 4, "{found:?}");
    let at = |offset: usize| {
        found
            .iter()
            .find(|(o, _)| *o == offset)
            .map(|(_, text)| text.as_str())
            .unwrap_or_else(|| panic!("nothing at {offset}: {found:?}"))
    };
    assert!(at(0).contains("no tool `create_issues`"), "{found:?}");
    assert!(at(20).contains("names must be 1-64"), "{found:?}");
    assert!(at(30).contains("no argument `team`"), "{found:?}");
    assert!(
        at(40).contains("argument `priority` does not fit"),
        "{found:?}"
    );
}

#[test]
fn an_override_of_a_tool_the_tools_list_leaves_out_is_reported() {
    let mut instance = instance(overriding("create_issue", pinned("team_id", json!("E"))));
    instance.only_tools = Some(vec![("list_issues".into(), 5)]);
    let errors = Catalog::build(vec![instance]).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].to_string().contains("not exposed"));
    assert_eq!(errors[0].offset(), 11);
}

/// A value of the pinned property's type, and the property.
fn pin_strategy() -> impl Strategy<Value = (&'static str, Value)> {
    prop_oneof![
        "[A-Za-z0-9-]{1,12}".prop_map(|team| ("team_id", json!(team))),
        (0i64..=4).prop_map(|priority| ("priority", json!(priority))),
        any::<bool>().prop_map(|urgent| ("urgent", json!(urgent))),
    ]
}

/// Any JSON scalar or small container, for a caller's value of the hidden argument.
fn any_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
        prop::collection::vec(any::<i32>(), 0..3).prop_map(|v| json!(v)),
        Just(json!({"nested": true})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the caller sends, a call goes ahead only without the pinned argument and only
    /// with the pinned value in place; sending the argument, with any value, is refused.
    #[test]
    fn no_caller_arguments_override_a_pin(
        (property, value) in pin_strategy(),
        title in proptest::option::of("[a-z ]{1,10}"),
        team in proptest::option::of("[A-Z]{1,5}"),
        priority in proptest::option::of(0i64..=4),
        urgent in proptest::option::of(any::<bool>()),
        sent in proptest::option::of(any_json()),
    ) {
        let catalog = build(overriding("create_issue", pinned(property, value.clone()))).unwrap();
        let route = route(&catalog, "linear_create_issue");
        let mut arguments = Map::new();
        if let Some(title) = &title { arguments.insert("title".into(), json!(title)); }
        // The caller's valid values of the other properties.
        for (name, given) in [
            ("team_id", team.clone().map(Value::from)),
            ("priority", priority.map(Value::from)),
            ("urgent", urgent.map(Value::from)),
        ] {
            if let (true, Some(given)) = (name != property, given) {
                arguments.insert(name.into(), given);
            }
        }
        let caller_needs_team = property != "team_id";
        let sent_pinned = sent.is_some();
        if let Some(sent) = sent { arguments.insert(property.into(), sent); }
        let mut arguments = Value::Object(arguments);
        let result = route.check_arguments(&mut arguments);
        let expected_ok = !sent_pinned
            && title.is_some()
            && (!caller_needs_team || team.is_some());
        prop_assert_eq!(result.is_ok(), expected_ok, "{:?} -> {:?}", arguments, result);
        if sent_pinned {
            let errors = result.unwrap_err();
            let refusal = format!("arguments/{property}: this argument is fixed");
            prop_assert!(errors.iter().any(|e| e.starts_with(&refusal)), "{:?}", errors);
        } else if result.is_ok() {
            prop_assert_eq!(&arguments[property], &value);
        }
    }

    /// A pin is accepted at build time exactly when it fits its property's schema.
    #[test]
    fn a_pin_is_accepted_exactly_when_it_fits_its_property(value in any_json()) {
        let fits = value.as_i64().is_some_and(|p| (0..=4).contains(&p));
        let built = build(overriding("create_issue", pinned("priority", value)));
        prop_assert_eq!(built.is_ok(), fits);
    }
}
