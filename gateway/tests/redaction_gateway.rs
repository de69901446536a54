//! Redaction through the whole gateway, with the Dropbox and Box adapters against their
//! sandbox emulators: a document full of secrets read in generated windows from generated
//! offsets never shows a digit of them (every window is a piece of the redacted whole, and the
//! windows put together are the redacted whole); rules by kind and by instance reach the list,
//! get and read tools of a prefix-renamed instance alike; a tool rule that would turn
//! redaction off is refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use manifold::app;
use manifold_adapters::Registry;
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::{RoleClient, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};

const REDACTION: &str = r#"
# Nothing by default: what is masked below comes from the kind and instance rules.
[default]
enabled = false

[kind.dropbox]

[adapter.box]
builtins = ["credit_card", "iban", "us_ssn", "ca_sin"]
"#;

fn config(data_dir: &Path, policies: &Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[storage]
data_dir = "{}"

[policy]
dir = "{}"
watch = false

[adapters.dropbox]
kind = "dropbox"
prefix = "vault"
sandbox = true
[adapters.dropbox.credentials]
token = "{}"

[adapters.box]
kind = "box"
sandbox = true
[adapters.box.credentials]
token = "{}"
"#,
        data_dir.display(),
        policies.display(),
        manifold_adapters::dropbox::sandbox::DEMO_TOKEN,
        manifold_adapters::boxcom::sandbox::DEMO_TOKEN,
    )
}

struct Gateway {
    client: RunningService<RoleClient, ()>,
    running: app::RunningGateway,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// A gateway with `redaction` as its `redaction.toml`, or none at all.
async fn start(redaction: Option<&str>) -> Result<Gateway, String> {
    let (data, policies) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(
        policies.path().join("open.cedar"),
        "@id(\"open\")\n@reason(\"test\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    if let Some(redaction) = redaction {
        std::fs::write(policies.path().join("redaction.toml"), redaction).unwrap();
    }
    let registry = Registry::builtin();
    let source = config(data.path(), policies.path());
    let path = Path::new("redaction.toml");
    let config = manifold::config::load_str(&source, path, &registry, &[]).unwrap();
    let running = app::start(config, &source, path, &registry)
        .await
        .map_err(|e| e.to_string())?;
    let url = format!("http://{}/mcp", running.addr);
    let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();
    Ok(Gateway {
        client,
        running,
        _dirs: (data, policies),
    })
}

impl Gateway {
    async fn call(&self, name: &str, arguments: Value) -> CallToolResult {
        let params = CallToolRequestParams::new(name.to_owned())
            .with_arguments(arguments.as_object().unwrap().clone());
        self.client.call_tool(params).await.unwrap()
    }

    /// The call's `structuredContent`; it must succeed.
    async fn ok(&self, name: &str, arguments: Value) -> Value {
        let result = self.call(name, arguments).await;
        assert_ne!(result.is_error, Some(true), "{name}: {result:?}");
        result.structured_content.expect("structuredContent")
    }

    async fn stop(self) {
        self.client.cancel().await.unwrap();
        self.running.shutdown.cancel();
    }
}

/// The secrets in the document, each written as people and word processors write them.
const SECRETS: &[&str] = &[
    "4111 1111 1111 1111",
    "5500\u{00A0}0055\u{2009}5555\u{202F}5559",
    "４０１２ ８８８８ ８８８８ １８８１",
    "3782\u{200B}8224\u{200B}6310\u{200B}005",
    "6011-1111-1111-1117",
    "4222 \u{2013} 2222 \u{2013} 2222 \u{2013} 2",
    "DE89 3704 0044 0532 0130 00",
    "gb82 west 1234 5698 7654 32",
    "123-45-6789",
    "046 454 286",
];

/// A document of words without digits and the secrets between them, so any digit a reader
/// sees came from a secret.
fn document() -> String {
    let words = [
        "quarterly",
        "report",
        "for",
        "the",
        "board",
        "—",
        "payment",
        "details",
        "follow",
        "(see",
        "appendix)",
        "naïve",
        "日本",
    ];
    let mut text = String::new();
    for (i, secret) in SECRETS.iter().cycle().take(30).enumerate() {
        for w in 0..(3 + i % 5) {
            text.push_str(words[(i * 7 + w) % words.len()]);
            text.push(if w % 4 == 3 { '\n' } else { ' ' });
        }
        text.push_str(secret);
        text.push_str(if i % 3 == 0 { ".\n" } else { " " });
    }
    text
}

/// Every digit of `text`, of any script or width; full-width ones as ASCII.
fn digits(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_numeric())
        .map(|c| match c {
            '０'..='９' => char::from_u32(u32::from(c) - 0xFF10 + 0x30).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// A small deterministic generator (xorshift), so a failure names its case.
struct Cases(u64);

impl Cases {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Reads `file` through `tool` in generated windows; `arg` names the file.
async fn windows_never_show_a_secret(
    gw: &Gateway,
    tool: &str,
    file: (&str, &str),
    seed: u64,
    reads: usize,
) {
    let whole = gw
        .ok(tool, json!({ file.0: file.1, "max_chars": 50_000 }))
        .await;
    let whole: Vec<char> = whole["text"].as_str().unwrap().chars().collect();
    let whole_text: String = whole.iter().collect();
    assert!(
        whole_text.matches("[REDACTED:").count() >= 30,
        "{tool}: {whole_text}"
    );
    assert_eq!(digits(&whole_text), "", "{tool}: {whole_text}");
    let mut cases = Cases(seed);
    // Any window from any offset is the redacted whole's piece at that offset.
    for case in 0..reads {
        let max_chars = 1 + cases.below(40);
        let offset = cases.below(whole.len() + 5);
        let read = gw
            .ok(
                tool,
                json!({ file.0: file.1, "offset": offset, "max_chars": max_chars }),
            )
            .await;
        let text = read["text"].as_str().unwrap();
        let expected: String = whole.iter().skip(offset).take(max_chars).collect();
        assert_eq!(
            text, expected,
            "{tool} case {case}: offset {offset}, max_chars {max_chars}"
        );
        assert_eq!(digits(text), "", "{tool} case {case}: {text:?}");
        assert_eq!(read["total_chars"], whole.len());
    }
    // Windows of generated sizes, one after the other, put together are the redacted whole.
    let (mut joined, mut offset) = (String::new(), Some(0));
    while let Some(at) = offset {
        let max_chars = 1 + cases.below(120);
        let read = gw
            .ok(
                tool,
                json!({ file.0: file.1, "offset": at, "max_chars": max_chars }),
            )
            .await;
        joined.push_str(read["text"].as_str().unwrap());
        offset = read["next_offset"].as_u64();
    }
    assert_eq!(joined, whole_text, "{tool}: the windows put together");
}

#[tokio::test]
async fn windows_and_offsets_never_read_a_secret_in_pieces() {
    let gw = start(Some(REDACTION)).await.unwrap();
    let doc = document();
    assert!(digits(&doc).len() > 400, "the document holds the secrets");

    gw.ok(
        "vault_upload_file",
        json!({ "path": "/redact/statement.txt", "content": doc }),
    )
    .await;
    windows_never_show_a_secret(
        &gw,
        "vault_read_file",
        ("path", "/redact/statement.txt"),
        0x9E37_79B9_7F4A_7C15,
        120,
    )
    .await;

    let up = gw
        .ok(
            "box_upload_file",
            json!({ "folder_id": "0", "name": "statement.txt", "content": doc }),
        )
        .await;
    let id = up["entry"]["id"].as_str().unwrap().to_owned();
    windows_never_show_a_secret(
        &gw,
        "box_read_file",
        ("file_id", &id),
        0xD1B5_4A32_D192_ED03,
        60,
    )
    .await;
    gw.stop().await;
}

/// Fail closed: a policy directory without `redaction.toml` masks results with every built-in
/// detector, on every tool (not only error texts).
#[tokio::test]
async fn without_a_redaction_file_every_builtin_masks_results() {
    let gw = start(None).await.unwrap();
    let doc = document();
    gw.ok(
        "vault_upload_file",
        json!({ "path": "/redact/unconfigured.txt", "content": doc }),
    )
    .await;
    windows_never_show_a_secret(
        &gw,
        "vault_read_file",
        ("path", "/redact/unconfigured.txt"),
        0x2545_F491_4F6C_DD1D,
        40,
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn a_rule_reaches_the_list_get_and_read_tools_of_an_instance_alike() {
    let gw = start(Some(REDACTION)).await.unwrap();
    // A file named after a card: listed, looked up and read, the name is masked everywhere.
    let name = "card 4111 1111 1111 1111.txt";
    gw.ok(
        "vault_upload_file",
        json!({ "path": format!("/named/{name}"), "content": "iban DE89370400440532013000" }),
    )
    .await;
    let listed = gw
        .ok("vault_list_folder", json!({ "path": "/named" }))
        .await;
    let got = gw
        .ok(
            "vault_get_metadata",
            json!({ "path": format!("/named/{name}") }),
        )
        .await;
    let read = gw
        .ok(
            "vault_read_file",
            json!({ "path": format!("/named/{name}") }),
        )
        .await;
    for (tool, answer) in [
        ("vault_list_folder", &listed),
        ("vault_get_metadata", &got),
        ("vault_read_file", &read),
    ] {
        let text = answer.to_string();
        assert!(text.contains("[REDACTED:credit_card]"), "{tool}: {text}");
        assert!(
            !digits(&text).contains("4111111111111111"),
            "{tool}: {text}"
        );
    }
    assert!(read["text"].as_str().unwrap().contains("[REDACTED:iban]"));

    // Box: the instance rule masks cards in the list and get tools as in the read tool.
    let up = gw
        .ok(
            "box_upload_file",
            json!({ "folder_id": "0", "name": name, "content": "ssn 123-45-6789" }),
        )
        .await;
    let id = up["entry"]["id"].as_str().unwrap().to_owned();
    let listed = gw
        .ok("box_list_folder", json!({ "folder_id": "0", "limit": 100 }))
        .await;
    let got = gw.ok("box_get_item", json!({ "id": id })).await;
    let read = gw.ok("box_read_file", json!({ "file_id": id })).await;
    for (tool, answer) in [
        ("box_list_folder", &listed),
        ("box_get_item", &got),
        ("box_read_file", &read),
    ] {
        let text = answer.to_string();
        assert!(text.contains("[REDACTED:credit_card]"), "{tool}: {text}");
        assert!(
            !digits(&text).contains("4111111111111111"),
            "{tool}: {text}"
        );
    }
    assert_eq!(read["text"], "ssn [REDACTED:us_ssn]");

    gw.stop().await;
}

#[tokio::test]
async fn a_tool_rule_cannot_turn_redaction_off() {
    for refused in [
        "[tool.vault_list_folder]\nenabled = false\n",
        "[tool.vault_list_folder]\nbuiltins = [\"no_such_detector\"]\n",
    ] {
        let error = start(Some(refused)).await.err().expect("refused at start");
        assert!(error.contains("redaction.toml"), "{error}");
    }
}
