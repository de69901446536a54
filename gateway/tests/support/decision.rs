//! How one `tools/call` through `manifold demo` was decided, checked against its answer and the
//! audit log's record of it: the one reading of "allowed", "denied by this guard" and "denied
//! because what it acts on could not be read" the policy tests share.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::Value;

use super::demo::Demo;

/// The audit log's last record.
pub fn last_record(demo: &Demo) -> Value {
    let text = std::fs::read_to_string(demo.data_dir().join("audit.jsonl")).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// How one call must be decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Want {
    Allow,
    /// Denied by this policy, with a reason in the answer.
    Denied(&'static str),
    /// Denied because what the call acts on could not be read (a path that names nothing).
    Unreadable,
}

/// Calls `tool` and checks the decision the audit log recorded and the answer; returns the
/// answer.
pub async fn decided(demo: &Demo, token: &str, tool: &str, arguments: Value, want: Want) -> Value {
    let answer = demo.call_tool(token, tool, arguments.clone()).await;
    let record = last_record(demo);
    let case = format!("{tool} {arguments} {want:?}: {answer} / {record}");
    assert_eq!(record["tool"], tool, "{case}");
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("");
    match want {
        Want::Allow => assert_eq!(record["decision"], "allow", "{case}"),
        Want::Denied(policy) => {
            assert_eq!(record["decision"], "deny", "{case}");
            let policies = record["policies"].as_array().unwrap();
            assert!(policies.iter().any(|p| p == policy), "{case}");
            assert!(text.starts_with("denied by policy: "), "{case}");
        }
        Want::Unreadable => {
            assert_eq!(record["decision"], "deny", "{case}");
            assert!(
                text.starts_with("denied by policy: what this call would reach could not be read"),
                "{case}"
            );
        }
    }
    answer
}
