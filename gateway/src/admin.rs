//! Admin commands over a config: `manifold policy check|schema|explain|test` and
//! `manifold audit verify`. Each returns the text to print and whether it succeeded, so the
//! binary only prints and sets the exit code.

use std::path::Path;

use manifold_adapters::Registry;
use manifold_policy::{
    Action, CedarEngine, PolicySchema, Principal, ToolDescriptor, ToolRef, admin, audit,
    schema_text,
};
use serde_json::Value;

use crate::{app, config::Config, policy::descriptors};

/// What a command prints, and whether it succeeded (exit code 0).
#[derive(Debug)]
pub struct Report {
    pub ok: bool,
    pub text: String,
}

impl Report {
    fn ok(text: String) -> Self {
        Self { ok: true, text }
    }

    fn failed(text: String) -> Self {
        Self { ok: false, text }
    }
}

/// The tools a config exposes, as the policy layer describes them.
fn tools_of(
    config: &Config,
    source: &str,
    registry: &Registry,
) -> Result<Vec<ToolDescriptor>, Report> {
    match app::build_catalog(config, source, registry, None) {
        Ok((catalog, _)) => Ok(descriptors(&catalog)),
        Err(problems) => Err(Report::failed(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

fn policy_dir(config: &Config) -> Result<&Path, Report> {
    config
        .policy
        .dir
        .as_deref()
        .ok_or_else(|| Report::failed("this config has no [policy] dir".into()))
}

fn schema(tools: &[ToolDescriptor]) -> Result<PolicySchema, Report> {
    PolicySchema::from_tools(tools).map_err(|e| Report::failed(format!("schema: {e}")))
}

fn engine(dir: &Path, tools: &[ToolDescriptor]) -> Result<CedarEngine, Report> {
    CedarEngine::load_dir(dir, &schema(tools)?).map_err(|diagnostics| {
        Report::failed(
            diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

fn flatten(result: Result<Report, Report>) -> Report {
    result.unwrap_or_else(|report| report)
}

/// `manifold policy schema`: the Cedar schema generated from the configured tools.
pub fn policy_schema(config: &Config, source: &str, registry: &Registry) -> Report {
    flatten(tools_of(config, source, registry).map(|tools| Report::ok(schema_text(&tools))))
}

/// `manifold policy check`: parse and validate every policy file, `file:line:column` on error.
pub fn policy_check(config: &Config, source: &str, registry: &Registry) -> Report {
    flatten((|| {
        let tools = tools_of(config, source, registry)?;
        let dir = policy_dir(config)?;
        match admin::check(dir, &schema(&tools)?) {
            Ok(summary) => {
                let mut text = format!(
                    "{}: ok ({} files, {} policies: {} permit, {} forbid)",
                    dir.display(),
                    summary.files,
                    summary.policies,
                    summary.permits,
                    summary.forbids
                );
                for warning in &summary.warnings {
                    text.push_str(&format!("\nwarning: {warning}"));
                }
                Ok(Report::ok(text))
            }
            Err(diagnostics) => Err(Report::failed(
                diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )),
        }
    })())
}

/// The caller `explain` asks about.
#[derive(Debug, Clone)]
pub struct Asker {
    pub user: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

/// `manifold policy explain`: the decision for one call and the policies that made it.
pub fn policy_explain(
    config: &Config,
    source: &str,
    registry: &Registry,
    asker: &Asker,
    tool: &str,
    action: &str,
    args: Option<&str>,
) -> Report {
    flatten((|| {
        let tools = tools_of(config, source, registry)?;
        let engine = engine(policy_dir(config)?, &tools)?;
        let descriptor = tools
            .iter()
            .find(|t| t.name == tool)
            .ok_or_else(|| Report::failed(format!("no tool `{tool}` in this config")))?;
        let action = match action {
            "call" => Action::Call,
            "list" => Action::List,
            "fetch" => Action::Fetch,
            other => {
                return Err(Report::failed(format!(
                    "unknown action `{other}` (call, list, fetch)"
                )));
            }
        };
        let args: Option<Value> = match args {
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|e| Report::failed(format!("--args is not JSON: {e}")))?,
            ),
            None => None,
        };
        let principal = Principal {
            user: Some(asker.user.clone()),
            email: asker.email.clone(),
            groups: asker.groups.clone(),
            client_id: None,
        };
        let explanation = admin::explain(
            &engine,
            &principal,
            action,
            &ToolRef::from_descriptor(descriptor),
            args.as_ref(),
        );
        let verdict = if explanation.decision.is_allowed() {
            "ALLOW"
        } else {
            "DENY"
        };
        let mut text = format!(
            "{verdict} {} {tool} for {}",
            action_name(action),
            asker.user
        );
        for (id, reason) in explanation.determining.iter().zip(&explanation.reasons) {
            text.push_str(&format!("\n  {id}: {reason}"));
        }
        if explanation.determining.is_empty() {
            text.push_str(&format!("\n  {}", manifold_policy::DEFAULT_DENY_REASON));
        }
        for error in &explanation.errors {
            text.push_str(&format!("\n  error: {error}"));
        }
        Ok(Report::ok(text))
    })())
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::List => "list",
        Action::Call => "call",
        Action::Fetch => "fetch",
    }
}

/// `manifold policy test FILE`: admin-written ALLOW/DENY cases; `tools` (a tool catalog file)
/// replaces the config's catalog, as the shipped cases do.
pub fn policy_test(
    config: &Config,
    source: &str,
    registry: &Registry,
    file: &Path,
    tools: Option<&Path>,
) -> Report {
    flatten((|| {
        let tools = match tools {
            Some(path) => admin::load_tools(path).map_err(|e| Report::failed(e.to_string()))?,
            None => tools_of(config, source, registry)?,
        };
        let engine = engine(policy_dir(config)?, &tools)?;
        let report = admin::run_tests(file, &engine).map_err(|e| Report::failed(e.to_string()))?;
        let mut text = format!(
            "{}: {} passed, {} failed",
            file.display(),
            report.passed,
            report.failed.len()
        );
        for failure in &report.failed {
            text.push_str(&format!("\nFAIL {}: {}", failure.name, failure.message));
        }
        Ok(if report.ok() {
            Report::ok(text)
        } else {
            Report::failed(text)
        })
    })())
}

/// `manifold audit verify FILE`: the chain is intact (keyed records' MACs under `keys`) and
/// reaches `checkpoint`, or the first line that breaks it.
pub fn audit_verify(
    path: &Path,
    keys: Option<&audit::AuditKeys>,
    checkpoint: Option<&audit::Checkpoint>,
) -> Report {
    match audit::verify_with(path, keys, checkpoint) {
        Ok(report) => {
            let mut notes = Vec::new();
            if report.torn_tail {
                notes.push("torn last line".to_owned());
            }
            let unkeyed = report.records - report.keyed;
            if unkeyed > 0 {
                notes.push(format!(
                    "{unkeyed} unkeyed records, written before the chain was keyed: their hashes \
                     prove order, not origin"
                ));
            }
            notes.push(match checkpoint {
                Some(c) => format!("reaches the database checkpoint of {} records", c.records),
                None => "no checkpoint to check truncation against".to_owned(),
            });
            Report::ok(format!(
                "{}: ok ({} records, {} keyed; {})",
                path.display(),
                report.records,
                report.keyed,
                notes.join("; ")
            ))
        }
        Err(error) => Report::failed(format!("{}: {error}", path.display())),
    }
}
