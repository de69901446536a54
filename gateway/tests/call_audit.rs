//! Every `tools/call` attempt leaves exactly one audit record, whichever transport carried it
//! and whatever stopped it: names that match no tool, tools hidden from the caller (by policy or
//! a read-only instance), arguments that fail the schema, denials. A hidden tool is answered
//! exactly as an unknown name — same status, same body but for the name — so a caller learns
//! nothing of a tool they may not list. Generated names and arguments, through the real gateway
//! on each of its three call paths (stateless fast path, session fast path, rmcp's service); a
//! call whose client goes away is recorded as `abandoned`.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{Value, json};
use support::{TestGateway, open_session, post, start};

/// Hides `t_fail` from everyone; denies `t_slow` calls of more than 100 s; allows the rest.
const POLICY: &str = r#"
@id("open")
@reason("test")
permit (principal, action, resource);

@id("hide-fail")
@reason("t_fail is for admins")
forbid (principal, action, resource) when { resource.name == "t_fail" };

@id("no-long-waits")
@reason("waits are limited to 100 s")
forbid (principal, action == Action::"call", resource)
when { resource.name == "t_slow" && context.args has millis && context.args.millis > 100000 };
"#;

/// A secret the redaction stage knows (an AWS access key id): it must not reach the audit log.
const SECRET: &str = "AKIAIOSFODNN7EXAMPLE";

/// How a call reaches the gateway.
#[derive(Debug, Clone, Copy)]
enum Lane {
    /// Protocol 2026-07-28, no session: the stateless fast path.
    Stateless,
    /// A 2025-11-25 session without a progress token: the session fast path.
    Session,
    /// A session call with a progress token: rmcp's service.
    Rmcp,
}

/// What a generated call is, and so what the gateway must answer and record.
#[derive(Debug, Clone)]
enum Attempt {
    /// A name no tool has.
    Unknown(String),
    /// A tool hidden from the caller, with any arguments (even ones its schema refuses).
    Hidden(&'static str, Value),
    /// A visible tool with arguments its schema refuses.
    Malformed(&'static str, Value),
    /// A visible tool whose call the policy denies.
    Denied(Value),
}

struct Fixture {
    gw: TestGateway,
    _policies: tempfile::TempDir,
    session: String,
    client: reqwest::Client,
}

async fn fixture() -> Fixture {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("test.cedar"), POLICY).unwrap();
    // `[default]` with no list: every built-in detector, API keys included.
    std::fs::write(policies.path().join("redaction.toml"), "[default]\n").unwrap();
    let extra = format!(
        "[adapters.ro]\nkind = \"test\"\nread_only = true\n[adapters.ro.credentials]\ntoken = \"x\"\n\
         [policy]\ndir = \"{}\"\nwatch = false\n",
        policies.path().display()
    );
    let gw = start(&extra).await;
    let client = reqwest::Client::new();
    let session = open_session(&client, &gw.url(), "2025-11-25").await;
    Fixture {
        gw,
        _policies: policies,
        session,
        client,
    }
}

// === impl Fixture ===

impl Fixture {
    /// Sends one `tools/call` on `lane`; returns the HTTP status and the JSON-RPC answer to it
    /// as the gateway serialised it.
    async fn call(&self, lane: Lane, name: &str, arguments: &Value) -> (u16, String) {
        let mut params = json!({"name": name, "arguments": arguments});
        let mut headers: Vec<(&str, String)> = Vec::new();
        match lane {
            Lane::Stateless => {
                params["_meta"] = json!({
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "io.modelcontextprotocol/clientInfo": {"name": "audit-test", "version": "1"}
                });
                headers.push(("mcp-protocol-version", "2026-07-28".into()));
                headers.push(("mcp-method", "tools/call".into()));
                headers.push(("mcp-name", header_value(name)));
            }
            Lane::Session | Lane::Rmcp => {
                if matches!(lane, Lane::Rmcp) {
                    params["_meta"] = json!({"progressToken": "p"});
                }
                headers.push(("mcp-session-id", self.session.clone()));
                headers.push(("mcp-protocol-version", "2025-11-25".into()));
            }
        }
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, messages, text) =
            post(&self.client, &self.gw.url(), &headers, &body.to_string()).await;
        let answer = messages
            .iter()
            .find(|m| m["id"] == json!(7))
            .unwrap_or_else(|| panic!("no answer on {lane:?}: {text}"));
        (status.as_u16(), answer.to_string())
    }

    fn audit_path(&self) -> std::path::PathBuf {
        self.gw.dir.path().join("audit.jsonl")
    }
}

/// `value` as SEP-2243 sends it in a header: bare when it can travel so, else Base64-wrapped.
fn header_value(value: &str) -> String {
    use base64::Engine;
    let bare = value.bytes().all(|b| (0x21..0x7f).contains(&b));
    if bare {
        value.to_owned()
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        format!("=?base64?{encoded}?=")
    }
}

fn records(path: &Path) -> Vec<Value> {
    records_from(path, 0)
}

/// The records after the first `skip`.
fn records_from(path: &Path, skip: usize) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .skip(skip)
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn count(path: &Path) -> usize {
    std::fs::read(path)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn lane() -> impl Strategy<Value = Lane> {
    prop_oneof![Just(Lane::Stateless), Just(Lane::Session), Just(Lane::Rmcp)]
}

/// Arguments of every shape, including ones no schema accepts.
fn any_arguments() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        "[a-z]{1,8}".prop_map(|key| json!({ key: 1 })),
        any::<i64>().prop_map(|n| json!({"text": n, "millis": n})),
        "\\PC{0,40}".prop_map(|text| json!({"text": text})),
        Just(json!({"text": format!("{SECRET} {}", "x".repeat(120))})),
    ]
}

fn attempt() -> impl Strategy<Value = Attempt> {
    let known = [
        "t_echo", "t_slow", "t_fail", "ro_echo", "ro_slow", "ro_fail",
    ];
    let unknown = prop_oneof![
        "[A-Za-z0-9_-]{1,64}",
        "\\PC{1,80}",
        Just(SECRET.to_owned()),
        Just(format!("send {SECRET} now")),
        Just("T_ECHO".to_owned()),
        Just("t_echo ".to_owned()),
    ]
    .prop_filter("a name the catalog has", move |name| {
        !known.contains(&name.as_str())
    })
    .prop_map(Attempt::Unknown);
    let hidden = (
        prop_oneof![Just("t_fail"), Just("ro_fail")],
        any_arguments(),
    )
        .prop_map(|(tool, arguments)| Attempt::Hidden(tool, arguments));
    let malformed = prop_oneof![
        // t_echo: `text` is a required string of at most 100 characters, nothing else.
        Just(("t_echo", json!({}))),
        any::<i64>().prop_map(|n| ("t_echo", json!({"text": n}))),
        "[a-z]{1,8}".prop_map(|key| ("t_echo", json!({"text": "x", format!("x{key}"): true}))),
        "\\PC{101,140}".prop_map(|text| ("t_echo", json!({"text": text}))),
        Just((
            "t_echo",
            json!({"text": format!("{SECRET} {}", "x".repeat(120))})
        )),
        // t_slow: `millis` is a required integer ≥ 0.
        (i64::MIN..0).prop_map(|n| ("t_slow", json!({"millis": n}))),
        "\\PC{0,20}".prop_map(|text| ("ro_slow", json!({"millis": text}))),
    ]
    .prop_map(|(tool, arguments)| Attempt::Malformed(tool, arguments));
    let denied =
        (100_001i64..i64::MAX).prop_map(|millis| Attempt::Denied(json!({"millis": millis})));
    prop_oneof![unknown, hidden, malformed, denied]
}

/// `answer` with every occurrence of `name` (as it appears in JSON) replaced by a placeholder.
fn without_name(answer: &str, name: &str) -> String {
    let quoted = Value::String(name.to_owned()).to_string();
    let inner = &quoted[1..quoted.len() - 1];
    answer.replace(inner, "\u{0}NAME\u{0}")
}

async fn check(fixture: &Fixture, lane: Lane, attempt: &Attempt) -> Result<(), TestCaseError> {
    let path = fixture.audit_path();
    let before = count(&path);
    let (name, arguments) = match attempt {
        Attempt::Unknown(name) => (name.as_str(), json!({})),
        Attempt::Hidden(tool, arguments) | Attempt::Malformed(tool, arguments) => {
            (*tool, arguments.clone())
        }
        Attempt::Denied(arguments) => ("t_slow", arguments.clone()),
    };
    let (status, answer) = fixture.call(lane, name, &arguments).await;
    let after = records_from(&path, before);
    prop_assert_eq!(after.len(), 1, "one record per attempt: {}", answer);
    let record = &after[0];
    prop_assert_eq!(&record["action"], "call");
    prop_assert_eq!(&record["decision"], "deny", "{}", record);
    prop_assert!(
        !record.to_string().contains(SECRET),
        "a secret in the audit log: {}",
        record
    );
    match attempt {
        Attempt::Unknown(name) => {
            prop_assert_eq!(&record["outcome"], "unknown_tool");
            let plausible = name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if plausible && name != SECRET {
                prop_assert_eq!(&record["tool"], name.as_str());
            } else if !plausible {
                prop_assert_eq!(&record["tool"], "<not a tool name>");
            }
            let error: Value = serde_json::from_str(&answer).unwrap();
            prop_assert_eq!(&error["error"]["code"], -32602);
            prop_assert_eq!(
                error["error"]["message"].as_str().unwrap(),
                format!("Unknown tool: {name}")
            );
        }
        Attempt::Hidden(tool, arguments) => {
            prop_assert_eq!(&record["outcome"], "denied");
            prop_assert_eq!(&record["tool"], *tool);
            // The same call of a name that matches nothing answers the same bytes.
            let stand_in = format!("{}_{}", &tool[..1], "nosuchtool");
            let (unknown_status, unknown) = fixture.call(lane, &stand_in, arguments).await;
            prop_assert_eq!(status, unknown_status);
            prop_assert_eq!(
                without_name(&answer, tool),
                without_name(&unknown, &stand_in)
            );
            prop_assert_eq!(count(&path), before + 2);
        }
        Attempt::Malformed(tool, _) => {
            prop_assert_eq!(&record["outcome"], "invalid_arguments");
            prop_assert_eq!(&record["tool"], *tool);
            // A tool execution error the model can read (MCP 2025-11-25), not -32602.
            let result: Value = serde_json::from_str(&answer).unwrap();
            prop_assert_eq!(&result["result"]["isError"], true, "{}", answer);
            let message = result["result"]["content"][0]["text"].as_str().unwrap();
            prop_assert!(message.starts_with("invalid arguments for "), "{}", message);
        }
        Attempt::Denied(_) => {
            prop_assert_eq!(&record["outcome"], "denied");
            prop_assert_eq!(&record["policies"], &json!(["no-long-waits"]));
            let result: Value = serde_json::from_str(&answer).unwrap();
            prop_assert_eq!(&result["result"]["isError"], true);
            prop_assert_eq!(
                &result["result"]["content"][0]["text"],
                "denied by policy: waits are limited to 100 s"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_call_is_audited_once_and_hidden_tools_answer_as_unknown_ones() {
    let fixture = fixture().await;
    let config = proptest::test_runner::Config {
        cases: 400,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    };
    let mut runner = TestRunner::new(config);
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::block_in_place(|| {
        runner
            .run(&(lane(), attempt()), |(lane, attempt)| {
                handle.block_on(check(&fixture, lane, &attempt))
            })
            .map_err(|error| error.to_string())
    });
    if let Err(error) = outcome {
        panic!("{error}");
    }
    // The chain the gateway wrote verifies.
    let verify = std::process::Command::new(support::manifold_bin())
        .args(["audit", "verify"])
        .arg(fixture.audit_path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test]
async fn allowed_calls_and_failures_are_audited_with_their_outcome() {
    let fixture = fixture().await;
    for lane in [Lane::Stateless, Lane::Session, Lane::Rmcp] {
        let before = records(&fixture.audit_path()).len();
        let (_, ok) = fixture
            .call(lane, "t_echo", &json!({"text": "hello"}))
            .await;
        assert!(ok.contains("hello"), "{ok}");
        let (_, hidden_read) = fixture.call(lane, "ro_echo", &json!({"text": "x"})).await;
        assert!(hidden_read.contains("\"isError\":false"), "{hidden_read}");
        let after = records(&fixture.audit_path());
        assert_eq!(after.len(), before + 2);
        assert_eq!(after[before]["outcome"], "ok");
        assert_eq!(after[before]["decision"], "allow");
        assert_eq!(after[before]["policies"], json!(["open"]));
        assert_eq!(after[before + 1]["tool"], "ro_echo");
    }
}

#[tokio::test]
async fn a_call_whose_client_goes_away_is_still_audited_once() {
    let fixture = fixture().await;
    let path = fixture.audit_path();
    let before = count(&path);
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
    "name": "t_slow", "arguments": {"millis": 1500},
    "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "audit-test", "version": "1"}
    }}});
    let gone = reqwest::Client::new()
        .post(fixture.gw.url())
        .header("accept", support::ACCEPT)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "t_slow")
        .json(&body)
        .timeout(std::time::Duration::from_millis(200))
        .send()
        .await;
    assert!(gone.is_err(), "the client was meant to give up first");
    // The gateway drops the call with the connection; its record says so (were the call to
    // run on, it would finish as `ok` after 1.5 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while count(&path) == before && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let after = records_from(&path, before);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["outcome"], "abandoned", "{}", after[0]);
    assert_eq!(after[0]["decision"], "allow", "{}", after[0]);
}
