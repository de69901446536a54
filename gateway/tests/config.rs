//! Config loading: every shipped config validates, and every kind of mistake is reported with
//! its file, line and column, by the library and by `manifold check`.
#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command};

use manifold::config::{ConfigError, Problem, load_str};
use manifold_adapters::Registry;

fn problems(source: &str) -> Vec<Problem> {
    problems_with_env(source, &[])
}

fn problems_with_env(source: &str, env: &[(String, String)]) -> Vec<Problem> {
    let registry = Registry::builtin();
    match load_str(source, Path::new("m.toml"), &registry, env) {
        Ok(config) => match manifold::app::build_catalog(&config, source, &registry, None) {
            Ok(_) => vec![],
            Err(problems) => problems,
        },
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("unexpected {other}"),
    }
}

fn one(source: &str) -> Problem {
    let found = problems(source);
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn every_shipped_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let source = std::fs::read_to_string(&path).unwrap();
            assert_eq!(problems(&source), vec![], "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 2, "expected demo.toml and manifold.example.toml");
    let demo = manifold::demo::config_text(&manifold::demo::DemoOverrides {
        listen: Some("127.0.0.1:9999".parse().unwrap()),
        data_dir: Some("/tmp/x".into()),
        tools_page_size: Some(3),
        public_url: None,
    });
    assert_eq!(problems(&demo), vec![]);
}

/// The config block of a Helm values file (`config: |` and its indented lines).
fn helm_config(values: &str) -> String {
    let mut lines = values
        .lines()
        .skip_while(|line| *line != "config: |")
        .skip(1);
    let mut block = String::new();
    for line in lines.by_ref() {
        match line.strip_prefix("  ") {
            Some(inner) => block.extend([inner, "\n"]),
            None if line.trim().is_empty() => block.push('\n'),
            None => break,
        }
    }
    block
}

#[test]
fn the_helm_charts_config_is_valid_and_its_operator_port_matches() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/helm/manifold");
    let values = std::fs::read_to_string(root.join("values.yaml")).unwrap();
    let config = helm_config(&values);
    assert!(config.contains("[server]"), "{config}");
    assert_eq!(problems(&config), vec![], "{config}");
    // The operator listener the config names is the port the chart declares and annotates.
    let port = values
        .lines()
        .skip_while(|line| *line != "operator:")
        .find_map(|line| line.trim().strip_prefix("port: "))
        .expect("operator.port");
    assert!(
        config.contains(&format!("operator_listen = \"0.0.0.0:{port}\"")),
        "{config}"
    );
    let deployment = std::fs::read_to_string(root.join("templates/deployment.yaml")).unwrap();
    assert!(deployment.contains("name: operator, containerPort: {{ .Values.operator.port }}"));
    let service = std::fs::read_to_string(root.join("templates/service.yaml")).unwrap();
    assert!(
        !service.contains("operator"),
        "the Service must not expose /metrics"
    );
}

#[test]
fn unknown_keys_are_located() {
    let problem = one("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
    assert_eq!((problem.line, problem.column), (3, 1));
    assert!(
        problem.message.contains("unknown field `lisen`"),
        "{}",
        problem.message
    );

    let problem = one("[adapters.l]\nkind = \"linear\"\n  colour = \"red\"\n");
    assert_eq!((problem.line, problem.column), (3, 3));
}

#[test]
fn bad_values_are_located() {
    let problem = one("[server]\n\nlisten = \"not an address\"\n");
    assert_eq!(problem.line, 3);
    let problem = one("[server]\ncall_timeout = \"soon\"\n");
    assert_eq!(problem.line, 2);
    let problem = one("[adapters.l]\nkind = \"linear\"\nbase_url = \"ftp://x\"\n");
    assert_eq!((problem.line, problem.column), (3, 12));
    let problem = one("[adapters.l]\nkind = \"linear\"\nprefix = \"has.dot\"\n");
    assert_eq!((problem.line, problem.column), (3, 10));
    let problem = one("[server]\ntools_page_size = 0\n");
    assert!(problem.message.contains("tools_page_size"));
    let problem = one("[server\n");
    assert_eq!(problem.line, 1);
}

#[test]
fn references_to_undefined_things_are_located() {
    let problem = one("\n[adapters.l]\nkind = \"jira\"\n");
    assert_eq!((problem.line, problem.column), (3, 8));
    assert!(problem.message.contains("unknown adapter kind `jira`"));
    assert!(problem.message.contains("linear"), "lists the known kinds");

    let problem = one("[adapters.l]\nkind = \"linear\"\ntools = [\"get_issue\", \"fly\"]\n");
    assert_eq!((problem.line, problem.column), (3, 23));
    assert!(problem.message.contains("no tool `fly`"));
}

#[test]
fn tool_name_collisions_are_config_errors() {
    let source = "[adapters.a]\nkind = \"linear\"\nprefix = \"work\"\n\n[adapters.b]\nkind = \"linear\"\nprefix = \"work\"\n";
    let found = problems(source);
    assert_eq!(found.len(), 9, "one per colliding tool: {found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.message.contains("`work_search_issues`")),
        "{found:?}"
    );
    assert_eq!(found[0].line, 5, "points at the second instance");

    let never = "[adapters.a]\nkind = \"linear\"\nprefix_mode = \"never\"\n\n[adapters.b]\nkind = \"linear\"\nprefix_mode = \"never\"\n";
    assert!(
        !problems(never).is_empty(),
        "unprefixed instances of one kind collide"
    );
    let one_never = "[adapters.a]\nkind = \"linear\"\nprefix_mode = \"never\"\n";
    assert_eq!(problems(one_never), vec![]);
}

#[test]
fn environment_overrides_set_secrets_and_reject_typos() {
    let registry = Registry::builtin();
    let source = "[adapters.my-linear]\nkind = \"linear\"\n";
    let env = vec![(
        "MANIFOLD_ADAPTERS__MY_LINEAR__CREDENTIALS__TOKEN".to_owned(),
        "lin_api_from_env".to_owned(),
    )];
    let config = load_str(source, Path::new("m.toml"), &registry, &env).unwrap();
    let instance = config.adapters.values().next().unwrap();
    assert_eq!(instance.credentials["token"].expose(), "lin_api_from_env");

    let typo = vec![(
        "MANIFOLD_ADAPTERS__MY_LINAER__CREDENTIALS__TOKEN".to_owned(),
        "secretvalue123".to_owned(),
    )];
    let found = problems_with_env(source, &typo);
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .message
            .contains("MANIFOLD_ADAPTERS__MY_LINAER__CREDENTIALS__TOKEN")
    );
    assert!(!found[0].message.contains("secretvalue123"), "value echoed");
}

#[test]
fn errors_never_echo_secrets() {
    let source = "[storage]\nurl = \"mysql://admin:hunter2@db/x\"\n";
    let found = problems(source);
    assert_eq!(found.len(), 1);
    assert!(
        !found[0].message.contains("hunter2"),
        "{}",
        found[0].message
    );
}

#[test]
fn check_command_reports_file_line_column_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[adapters.l]\nkind = \"linear\"\nmax_concurency = 3\n",
    )
    .unwrap();
    let output = Command::new(manifold_bin())
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:3:1:", bad.display())),
        "{stderr}"
    );

    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/manifold.example.toml");
    let output = Command::new(manifold_bin())
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("13 tools"));

    let missing = Command::new(manifold_bin())
        .args(["check", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

#[test]
fn tool_overrides_that_do_not_fit_the_adapter_are_located() {
    let source = "[adapters.linear]\nkind = \"linear\"\n\n\
                  [adapters.linear.overrides.create_issues]\ntitle = \"File a bug\"\n\n\
                  [adapters.linear.overrides.create_issue]\nname = \"file_bug\"\n\
                  pin.team = \"ENG\"\npin.priority = \"high\"\n";
    let found = problems(source);
    let at = |line: usize| {
        found
            .iter()
            .find(|p| p.line == line)
            .unwrap_or_else(|| panic!("nothing on line {line}: {found:?}"))
            .message
            .clone()
    };
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        at(4).contains("no tool `create_issues` to override"),
        "{found:?}"
    );
    assert!(at(9).contains("no argument `team` to pin"), "{found:?}");
    assert!(at(9).contains("team_id"), "lists the arguments: {found:?}");
    assert!(at(10).contains("`priority` does not fit"), "{found:?}");

    let problem =
        one("[adapters.l]\nkind = \"linear\"\noverrides.get_issue.name = \"get.issue\"\n");
    assert_eq!(problem.line, 3);
    assert!(problem.message.contains("A-Z a-z 0-9 _ -"), "{problem:?}");
    let problem = one("[adapters.l]\nkind = \"linear\"\noverrides.get_issue.annotation = {}\n");
    assert!(
        problem.message.contains("unknown field `annotation`"),
        "{problem:?}"
    );

    let good = "[adapters.linear]\nkind = \"linear\"\n\n\
                [adapters.linear.overrides.create_issue]\nname = \"file_bug\"\n\
                annotations = { destructive = false }\npin = { team_id = \"TEAM-ENG\" }\n";
    assert_eq!(problems(good), vec![]);
}

#[test]
fn check_command_locates_a_pin_of_the_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("pins.toml");
    std::fs::write(
        &bad,
        "[adapters.linear]\nkind = \"linear\"\n\n[adapters.linear.overrides.create_issue]\npin = { priority = 9 }\n",
    )
    .unwrap();
    let output = Command::new(manifold_bin())
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:5:20:", bad.display()))
            && stderr.contains("`linear.create_issue` argument `priority` does not fit"),
        "{stderr}"
    );
}

#[test]
fn config_schema_command_prints_the_schema() {
    let output = Command::new(manifold_bin())
        .arg("config-schema")
        .output()
        .unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(schema["properties"]["server"].is_object(), "{schema}");
    assert!(schema["properties"]["adapters"].is_object());
    let text = serde_json::to_string(&schema).unwrap();
    assert!(text.contains("allowed_origins") && text.contains("prefix_mode"));
}

/// The `manifold` binary under test: `MANIFOLD_BIN` when set (a checkout sharing its target
/// directory with others points it at its own build), else the one cargo built for this test.
fn manifold_bin() -> String {
    std::env::var("MANIFOLD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_manifold").to_owned())
}
