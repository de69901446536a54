//! The Cedar engine against the demo policies in `config/policies`: the shipped ALLOW/DENY cases,
//! reasons on denials, schema validation with positions, and `tools/list` filtering.

use std::path::PathBuf;

use manifold_policy::admin::{check, load_tools, run_tests};
use manifold_policy::{
    Action, CedarEngine, DEFAULT_DENY_REASON, Decision, PolicyEngine, PolicySchema, Principal,
    ToolRef, schema_text,
};
use serde_json::json;

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/policies")
}

fn demo_schema() -> PolicySchema {
    let tools = load_tools(&policies_dir().join("tests/tools.yaml")).expect("demo tools load");
    PolicySchema::from_tools(&tools).expect("schema")
}

fn demo_engine() -> CedarEngine {
    match CedarEngine::load_dir(&policies_dir(), &demo_schema()) {
        Ok(e) => e,
        Err(d) => panic!("demo policies invalid: {d:#?}"),
    }
}

fn user(name: &str, groups: &[&str]) -> Principal {
    Principal {
        user: Some(name.into()),
        email: Some(format!("{name}@example.com")),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        client_id: Some("cli".into()),
    }
}

#[test]
fn shipped_demo_cases_pass() {
    let engine = demo_engine();
    let report = run_tests(&policies_dir().join("tests/demo.yaml"), &engine).expect("test file");
    assert!(report.ok(), "failures: {:#?}", report.failed);
    assert!(report.passed >= 15, "only {} cases ran", report.passed);
}

#[test]
fn a_wrong_expectation_is_reported() {
    let engine = demo_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("t.json");
    std::fs::write(
        &f,
        r#"{"cases":[{"name":"wrong","principal":{"user":"x","groups":[]},"action":"call","tool":"linear_list_issues","expect":"DENY"}]}"#,
    )
    .expect("write");
    let report = run_tests(&f, &engine).expect("runs");
    assert_eq!(report.passed, 0);
    assert_eq!(report.failed.len(), 1);
}

#[test]
fn a_case_that_cannot_be_decided_is_a_failure_not_a_pass() {
    let engine = demo_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("t.yaml");
    std::fs::write(
        &f,
        r#"
principals:
  ada: {user: ada, groups: [admins]}
cases:
  - {name: two things, principal: ada, action: list, tool: linear_list_issues, prompt: p, instance: x, expect: ALLOW}
  - {name: nothing, principal: ada, action: list, expect: ALLOW}
  - {name: read on a tool, principal: ada, action: read, tool: linear_list_issues, expect: ALLOW}
  - {name: call on a resource, principal: ada, action: call, resource: "manifold://x/y", instance: x, expect: ALLOW}
  - {name: no instance, principal: ada, action: read, resource: "manifold://x/y", expect: ALLOW}
  - {name: admins read, principal: ada, action: read, resource: "manifold://x/y", instance: x, expect: ALLOW}
"#,
    )
    .expect("write");
    let report = run_tests(&f, &engine).expect("runs");
    let failed: Vec<&str> = report.failed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        failed,
        [
            "two things",
            "nothing",
            "read on a tool",
            "call on a resource",
            "no instance"
        ],
        "{:#?}",
        report.failed
    );
    assert_eq!(report.passed, 1);
}

#[test]
fn denials_carry_the_policy_reason_or_the_default() {
    let engine = demo_engine();
    let schema = demo_schema();
    let send = schema
        .tools()
        .iter()
        .find(|t| t.name == "outlook_send_mail")
        .expect("tool");
    let d = engine.decide(
        &user("w", &["staff", "writers"]),
        Action::Call,
        &ToolRef::from_descriptor(send),
        Some(&json!({"to": ["x@outside.test"]})),
    );
    assert_eq!(
        d,
        Decision::Deny {
            reason: "mail may only be sent to example.com addresses".into(),
            policies: vec!["mail-internal-only".into()],
        }
    );
    let d = engine.decide(
        &user("n", &[]),
        Action::Call,
        &ToolRef::from_descriptor(send),
        None,
    );
    assert_eq!(
        d,
        Decision::Deny {
            reason: DEFAULT_DENY_REASON.into(),
            policies: vec![],
        }
    );
}

#[test]
fn explain_lists_determining_policies_and_reasons() {
    let engine = demo_engine();
    let schema = demo_schema();
    let t = schema
        .tools()
        .iter()
        .find(|t| t.name == "linear_list_issues")
        .expect("tool");
    let ex = engine.explain(
        &user("a", &["staff", "admins"]),
        Action::Call,
        &ToolRef::from_descriptor(t),
        None,
    );
    assert!(ex.decision.is_allowed());
    assert_eq!(ex.determining, vec!["admins-all", "everyone-reads"]);
    assert_eq!(ex.reasons.len(), 2);
    assert!(ex.errors.is_empty());
}

#[test]
fn list_filtering_matches_single_decisions() {
    let engine = demo_engine();
    let schema = demo_schema();
    let tools: Vec<ToolRef<'_>> = schema
        .tools()
        .iter()
        .map(ToolRef::from_descriptor)
        .collect();
    for p in [
        user("a", &["staff"]),
        user("c", &["staff", "contractors"]),
        user("n", &[]),
    ] {
        let flags = engine.filter_list(&p, &tools);
        for (t, f) in tools.iter().zip(&flags) {
            assert_eq!(
                *f,
                engine.decide(&p, Action::List, t, None).is_allowed(),
                "{} for {:?}",
                t.name,
                p.groups
            );
        }
    }
    let c = engine.filter_list(&user("c", &["staff", "contractors"]), &tools);
    let visible: Vec<&str> = tools
        .iter()
        .zip(&c)
        .filter(|(_, f)| **f)
        .map(|(t, _)| t.name)
        .collect();
    assert!(
        !visible.iter().any(|n| n.starts_with("outlook")),
        "{visible:?}"
    );
    assert!(visible.contains(&"linear_list_issues"));
}

#[test]
fn check_reports_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("ok.cedar"),
        "@id(\"a\")\npermit(principal, action, resource);\n",
    )
    .expect("write");
    // Parse error on line 3.
    std::fs::write(
        dir.path().join("bad.cedar"),
        "// broken\n@id(\"b\")\npermit(principal, action, resource) when { resource.read_only &&& true };\n",
    )
    .expect("write");
    let diags = check(dir.path(), &demo_schema()).expect_err("must fail");
    let d = &diags[0];
    assert!(d.file.ends_with("bad.cedar"), "{d}");
    assert_eq!(d.line, 3, "{d}");
    assert!(d.column > 1, "{d}");

    // A validation (type) error: unknown attribute, positioned in its file.
    std::fs::write(
        dir.path().join("bad.cedar"),
        "@id(\"b\")\npermit(principal, action, resource)\n  when { resource.colour == \"red\" };\n",
    )
    .expect("write");
    let diags = check(dir.path(), &demo_schema()).expect_err("must fail");
    assert!(diags[0].file.ends_with("bad.cedar"), "{}", diags[0]);
    assert_eq!(diags[0].line, 3, "{}", diags[0]);
    assert!(diags[0].message.contains("`b`"), "{}", diags[0]);

    std::fs::remove_file(dir.path().join("bad.cedar")).expect("rm");
    let summary = check(dir.path(), &demo_schema()).expect("valid");
    assert_eq!(summary.policies, 1);
}

#[test]
fn duplicate_ids_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = "@id(\"same\")\npermit(principal, action, resource);\n";
    std::fs::write(dir.path().join("a.cedar"), p).expect("write");
    std::fs::write(dir.path().join("b.cedar"), p).expect("write");
    let diags = check(dir.path(), &demo_schema()).expect_err("dup");
    assert!(diags[0].message.contains("duplicate"), "{}", diags[0]);
    assert_eq!(diags[0].line, 1);
}

#[test]
fn schema_text_is_what_cedar_accepts() {
    let text = schema_text(demo_schema().tools());
    assert!(text.contains("entity Tool in [Adapter]"));
    assert!(text.contains("\"team_id\"?: String"));
    assert!(text.contains("\"to\"?: Set<String>"));
    assert!(cedar_policy::Schema::from_cedarschema_str(&text).is_ok());
}

#[test]
fn shipped_quota_and_redaction_configs_parse() {
    let q = std::fs::read_to_string(policies_dir().join("quotas.toml")).expect("read");
    let cfg = manifold_policy::quota::QuotaConfig::from_toml(&q).expect("quotas.toml");
    assert_eq!(cfg.rules.len(), 3);
    let r = std::fs::read_to_string(policies_dir().join("redaction.toml")).expect("read");
    let cfg = manifold_policy::redact::RedactionConfig::from_toml(&r).expect("redaction.toml");
    let red = manifold_policy::redact::Redactor::new(&cfg).expect("redactor");
    let target = manifold_policy::redact::Target {
        instance: "drive",
        kind: "drive",
        tool: "x",
        tags: &[],
    };
    assert_eq!(red.redact_text(&target, "EMP-123456").1, 1);
}

#[test]
fn recipients_the_guard_cannot_read_or_that_are_external_in_any_spelling_are_denied() {
    let engine = demo_engine();
    let schema = demo_schema();
    let send = schema
        .tools()
        .iter()
        .find(|t| t.name == "outlook_send_mail")
        .expect("tool");
    let writer = user("w", &["staff", "writers"]);
    let decide = |to: &str, cc: &str| {
        engine.decide(
            &writer,
            Action::Call,
            &ToolRef::from_descriptor(send),
            Some(&json!({"to": [to], "cc": [cc]})),
        )
    };
    let spellings = |domain: &str| {
        let wide: String = domain
            .chars()
            .map(|c| match c {
                '.' => '．',
                c if c.is_ascii_alphanumeric() => {
                    char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)
                }
                c => c,
            })
            .collect();
        [
            format!("eve@{domain}"),
            format!("Eve <eve@{}>", domain.to_uppercase()),
            format!("\"Bob, bob@example.com\" <eve@{domain}>"),
            format!("eve@{domain}."),
            format!("eve@{wide}"),
            format!("eve@{}", domain.replace('.', "。")),
            format!("(bob@example.com) eve(x)@{domain}"),
            format!("team: eve@{domain};"),
            format!("\"eve\"@{domain}"),
        ]
    };
    let mut checked = 0;
    for domain in [
        "evil.test",
        "gmail.com",
        "example.com.evil.test",
        "mail.example.com",
    ] {
        for outside in spellings(domain) {
            for (to, cc) in [
                ("bob@example.com", outside.as_str()),
                (outside.as_str(), "bob@example.com"),
            ] {
                let d = decide(to, cc);
                assert!(!d.is_allowed(), "{to:?} / {cc:?} allowed");
                assert_eq!(d.policies(), ["mail-internal-only"], "{to:?} / {cc:?}");
                checked += 1;
            }
        }
    }
    for inside in spellings("example.com") {
        assert!(
            decide(&inside, "bob@example.com").is_allowed(),
            "{inside:?} denied"
        );
        checked += 1;
    }
    // Not exactly one address: refused before any policy, naming the argument, not its value.
    for bad in [
        "bob@example.com, eve@evil.test",
        "Eve <eve@evil.test>, x",
        "bob@example.com; eve@evil.test",
        "eve@[10.0.0.1",
        "undisclosed-recipients:;",
        "nobody",
    ] {
        let d = decide("bob@example.com", bad);
        let Decision::Deny { reason, policies } = &d else {
            panic!("{bad:?} allowed");
        };
        assert!(policies.is_empty(), "{bad:?}: {policies:?}");
        assert!(
            reason.starts_with("argument `cc[0]` is not exactly one e-mail address"),
            "{reason}"
        );
        assert!(!reason.contains("evil"), "{reason}");
        checked += 1;
    }
    assert!(checked >= 80, "{checked}");
}
