//! Admin operations behind `manifold policy check|explain|test|schema`: plain functions over the
//! engine so the CLI, the admin API and tests share them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::Summary;
use crate::schema::{PolicySchema, ToolDescriptor};
use crate::{
    Action, CedarEngine, Diagnostic, Explanation, Facts, ItemAction, ItemKind, ItemRef,
    LinkAudience, Principal, ToolRef,
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

/// Validates a policy directory against a schema without putting it in force.
pub fn check(dir: &Path, schema: &PolicySchema) -> Result<Summary, Vec<Diagnostic>> {
    CedarEngine::load_dir(dir, schema).map(|e| e.summary().clone())
}

/// Explains one decision (`manifold policy explain`).
pub fn explain(
    engine: &CedarEngine,
    principal: &Principal,
    action: Action,
    tool: &ToolRef<'_>,
    args: Option<&Value>,
) -> Explanation {
    engine.explain(principal, action, tool, args)
}

/// Reads YAML (`.yaml`/`.yml`) or JSON by extension.
fn read_doc<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, AdminError> {
    let text = std::fs::read_to_string(path).map_err(|source| AdminError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    let parsed = if is_json {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        yaml_serde::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|message| AdminError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

/// A tool catalog file: a list of [`ToolDescriptor`]s in YAML or JSON.
pub fn load_tools(path: &Path) -> Result<Vec<ToolDescriptor>, AdminError> {
    read_doc(path)
}

/// Expected outcome of a case; upper or lower case in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    #[serde(alias = "allow")]
    ALLOW,
    #[serde(alias = "deny")]
    DENY,
}

/// A principal in a test file: inline, or the name of an entry under `principals`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PrincipalSpec {
    Named(String),
    Inline(PrincipalDef),
}

#[derive(Debug, Clone, Default, Deserialize)]
struct PrincipalDef {
    user: Option<String>,
    email: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    client_id: Option<String>,
}

impl From<PrincipalDef> for Principal {
    fn from(d: PrincipalDef) -> Self {
        Principal {
            user: d.user,
            email: d.email,
            groups: d.groups,
            client_id: d.client_id,
        }
    }
}

/// The action of a case: a tool's (`list`, `call`, `fetch`), or a resource's or prompt's
/// (`list`, `read`, `get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CaseAction {
    List,
    Call,
    Fetch,
    Read,
    Get,
}

impl CaseAction {
    fn for_tool(self) -> Option<Action> {
        match self {
            CaseAction::List => Some(Action::List),
            CaseAction::Call => Some(Action::Call),
            CaseAction::Fetch => Some(Action::Fetch),
            CaseAction::Read | CaseAction::Get => None,
        }
    }

    fn for_item(self) -> Option<ItemAction> {
        match self {
            CaseAction::List => Some(ItemAction::List),
            CaseAction::Read => Some(ItemAction::Read),
            CaseAction::Get => Some(ItemAction::Get),
            CaseAction::Call | CaseAction::Fetch => None,
        }
    }
}

/// A case names exactly one of a tool (in the catalog), a resource (by its exposed URI) or a
/// prompt (by its exposed name); the last two with the `instance` that serves them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    principal: PrincipalSpec,
    action: CaseAction,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    /// The instance serving a resource or prompt.
    #[serde(default)]
    instance: Option<String>,
    /// The adapter kind of that instance (`mcp` unless said).
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    args: Option<Value>,
    expect: Expect,
    /// When given, the determining policy ids must be exactly these.
    #[serde(default)]
    policies: Option<Vec<String>>,
    /// What the tool's adapter resolves before the decision, as the gateway hands it to Cedar.
    #[serde(default)]
    resolved: Option<ResolvedSpec>,
}

/// Facts an adapter reads from stored state (`context.containers`, `context.link_audience`),
/// for cases of tools that resolve them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolvedSpec {
    #[serde(default)]
    containers: Vec<String>,
    /// `anyone`, `organization` or `invited`.
    #[serde(default)]
    link_audience: Option<String>,
}

// === impl ResolvedSpec ===

impl ResolvedSpec {
    /// The arguments' facts plus these, as the gateway's facts stage builds them.
    fn facts(&self, tool: &ToolDescriptor, args: Option<&Value>) -> Result<Facts, String> {
        let mut args = args
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        let mut facts =
            Facts::from_arguments(&tool.input_schema, &mut args).map_err(|e| e.to_string())?;
        for id in &self.containers {
            facts.add_container(id).map_err(|e| e.to_string())?;
        }
        if let Some(word) = &self.link_audience {
            facts.share_by_link(match word.as_str() {
                "anyone" => LinkAudience::Anyone,
                "organization" => LinkAudience::Organization,
                "invited" => LinkAudience::Invited,
                other => return Err(format!("unknown link_audience `{other}`")),
            });
        }
        Ok(facts)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct TestFile {
    #[serde(default)]
    principals: BTreeMap<String, PrincipalDef>,
    cases: Vec<Case>,
}

/// One case that did not come out as written.
/// The decision on what a case names, or why the case cannot be decided.
fn explain_case(
    engine: &CedarEngine,
    case: &Case,
    principal: &Principal,
) -> Result<Explanation, String> {
    let (kind, name) = match (&case.tool, &case.resource, &case.prompt) {
        (Some(tool), None, None) => return explain_tool_case(engine, case, principal, tool),
        (None, Some(uri), None) => (ItemKind::Resource, uri),
        (None, None, Some(name)) => (ItemKind::Prompt, name),
        _ => return Err("a case names exactly one of `tool`, `resource` or `prompt`".into()),
    };
    let action = case.action.for_item().ok_or_else(|| {
        "`call` and `fetch` apply to tools; resources take `list` and `read`, prompts `list` and `get`"
            .to_owned()
    })?;
    let instance = case
        .instance
        .as_deref()
        .ok_or("a resource or prompt case names the `instance` that serves it")?;
    let item = ItemRef {
        kind,
        name,
        instance,
        adapter_kind: case.kind.as_deref().unwrap_or("mcp"),
    };
    Ok(engine.explain_item(principal, action, &item))
}

fn explain_tool_case(
    engine: &CedarEngine,
    case: &Case,
    principal: &Principal,
    name: &str,
) -> Result<Explanation, String> {
    let action = case
        .action
        .for_tool()
        .ok_or("`read` and `get` apply to resources and prompts, not tools")?;
    let tool = engine
        .schema()
        .tools()
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("unknown tool `{name}`"))?;
    let tool_ref = ToolRef::from_descriptor(tool);
    Ok(match &case.resolved {
        None => engine.explain(principal, action, &tool_ref, case.args.as_ref()),
        Some(resolved) => {
            let facts = resolved.facts(tool, case.args.as_ref())?;
            engine.explain_with_facts(principal, action, &tool_ref, case.args.as_ref(), &facts)
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseFailure {
    pub name: String,
    pub message: String,
    pub explanation: Option<Explanation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TestReport {
    pub passed: usize,
    pub failed: Vec<CaseFailure>,
}

impl TestReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Runs admin-written ALLOW/DENY cases against an engine. Tools are looked up by name in the
/// engine's catalog, so cases exercise exactly the attributes the gateway would send.
pub fn run_tests(file: &Path, engine: &CedarEngine) -> Result<TestReport, AdminError> {
    let doc: TestFile = read_doc(file)?;
    let mut report = TestReport::default();
    for case in doc.cases {
        let fail = |message: String, explanation: Option<Explanation>| CaseFailure {
            name: case.name.clone(),
            message,
            explanation,
        };
        let principal: Principal = match &case.principal {
            PrincipalSpec::Inline(d) => d.clone().into(),
            PrincipalSpec::Named(n) => match doc.principals.get(n) {
                Some(d) => d.clone().into(),
                None => {
                    report
                        .failed
                        .push(fail(format!("unknown principal `{n}`"), None));
                    continue;
                }
            },
        };
        let ex = match explain_case(engine, &case, &principal) {
            Ok(ex) => ex,
            Err(message) => {
                report.failed.push(fail(message, None));
                continue;
            }
        };
        let got = if ex.decision.is_allowed() {
            Expect::ALLOW
        } else {
            Expect::DENY
        };
        if got != case.expect {
            report.failed.push(fail(
                format!("expected {:?}, got {got:?} ({:?})", case.expect, ex.reasons),
                Some(ex),
            ));
        } else if let Some(want) = &case.policies
            && {
                let mut w = want.clone();
                w.sort();
                w != ex.determining
            }
        {
            report.failed.push(fail(
                format!(
                    "expected determining policies {want:?}, got {:?}",
                    ex.determining
                ),
                Some(ex),
            ));
        } else {
            report.passed += 1;
        }
    }
    Ok(report)
}
