//! Argument rules see the real effect of a call, through `manifold demo` and its shipped
//! `mail-internal-only` guard: recipients written in any form mail software reads are read as
//! mail servers read them (an outside domain is denied however it is spelt, a value that is not
//! one address is refused), the emulator receives exactly the canonical addresses the policy saw,
//! and replies, forwards and draft sends are decided on whom the stored message makes them reach.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::demo::Demo;

/// Calls `tools/call` on the demo (stateless 2026-07-28) and returns `result`.
async fn call(demo: &Demo, token: &str, name: &str, arguments: Value) -> Value {
    demo.call_tool(token, name, arguments).await["result"].clone()
}

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn full_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '.' => '．',
            c if c.is_ascii_alphanumeric() => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// The forms of one mailbox at `domain` that mail software writes and reads as that mailbox.
fn spellings(local: &str, domain: &str) -> Vec<String> {
    vec![
        format!("{local}@{domain}"),
        format!(
            "{} <{local}@{}>",
            local.to_uppercase(),
            domain.to_uppercase()
        ),
        format!("\"Brown, Bob (bob@example.com)\" <{local}@{domain}>"),
        format!("{local}@{domain}."),
        format!("{local}@{}", full_width(domain)),
        format!("{local}@{}", domain.replace('.', "。")),
        format!("{local}@{}", domain.replace('.', "｡")),
        format!("(for bob@example.com) {local}(x)@{domain}"),
        format!("team: {local}@{domain};"),
        format!("\"{local}\"@{domain}"),
        format!("<{local}@{domain}>"),
    ]
}

fn audit_records(demo: &Demo) -> Vec<Value> {
    std::fs::read_to_string(demo.data_dir().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn outside_recipients_in_any_spelling_are_denied_and_inside_ones_arrive_canonical() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice");
    let mut denied = 0;
    // Outside domains, look-alikes and IP addresses, in `to` or `cc`, through both compose tools.
    let mut outside: Vec<String> = [
        "evil.test",
        "gmail.com",
        "example.com.evil.test",
        "mail.example.com",
        "exämple.com",
    ]
    .iter()
    .flat_map(|d| spellings("eve", d))
    .collect();
    outside.extend(
        [
            "[10.0.0.1]",
            "10.0.0.1",
            "0x0a.0.0.1",
            "[IPv6:::1]",
            "１０．０．０．１",
        ]
        .iter()
        .map(|host| format!("Eve <eve@{host}>")),
    );
    for (n, address) in outside.iter().enumerate() {
        let (tool, field) = match n % 3 {
            0 => ("outlook_send_message", "to"),
            1 => ("outlook_send_message", "cc"),
            _ => ("outlook_create_draft", "to"),
        };
        let mut args = json!({"to": ["bob@example.com"], "subject": "plans", "body": "x"});
        args[field] = json!([address]);
        let result = call(&demo, &alice, tool, args).await;
        assert_eq!(
            result["isError"], true,
            "{tool} {field} {address:?}: {result}"
        );
        assert_eq!(
            text_of(&result),
            "denied by policy: mail may only be sent to example.com addresses",
            "{tool} {field} {address:?}"
        );
        denied += 1;
    }
    // Values that are not exactly one address: refused before any policy, naming the argument.
    for bad in [
        "bob@example.com, eve@evil.test",
        "Eve <eve@evil.test>, x",
        "bob@example.com; eve@evil.test",
        "team: bob@example.com, eve@evil.test;",
        "undisclosed-recipients:;",
        "eve@evil.test bob@example.com",
        "<@relay.example.com:eve@evil.test>",
        "eve@[10.0.0.1",
        "eve＠evil.test",
        "bob@exa_mple.com",
    ] {
        let result = call(
            &demo,
            &alice,
            "outlook_send_message",
            json!({"to": ["bob@example.com"], "cc": [bad], "subject": "s", "body": "b"}),
        )
        .await;
        let text = text_of(&result);
        assert_eq!(result["isError"], true, "{bad:?}: {result}");
        assert!(
            text.starts_with(
                "denied by policy: argument `cc[0]` is not exactly one e-mail address"
            ),
            "{bad:?}: {text}"
        );
        assert!(
            !text.contains("evil"),
            "the denial echoes the value: {text}"
        );
        denied += 1;
    }
    // Inside ones pass, and the provider is sent exactly the canonical address.
    let inside = spellings("bob", "example.com");
    for address in &inside {
        let result = call(
            &demo,
            &alice,
            "outlook_create_draft",
            json!({"to": [address], "subject": "canonical", "body": "x"}),
        )
        .await;
        assert_eq!(result["isError"], false, "{address:?}: {result}");
        let to = &result["structuredContent"]["message"]["to"];
        assert_eq!(
            to,
            &json!([{"name": null, "address": "bob@example.com"}]),
            "{address:?}"
        );
    }
    let sent = call(
        &demo,
        &alice,
        "outlook_send_message",
        json!({"to": ["Bob <BOB@ＥＸＡＭＰＬＥ．com.>"], "cc": ["(x) \"dan\"@example.com"], "subject": "canonical-send", "body": "x"}),
    )
    .await;
    assert_eq!(sent["isError"], false, "{sent}");

    // Every denial is audited, with the canonical recipients in the arguments.
    let records = audit_records(&demo);
    let denials = records
        .iter()
        .filter(|r| r["decision"] == "deny" && r["user"] == "alice")
        .count();
    assert_eq!(denials, denied, "one audit record per denial");
    assert!(denied >= 60, "{denied}");
}

#[tokio::test]
async fn replies_forwards_and_draft_sends_are_decided_on_whom_they_really_reach() {
    let demo = Demo::start(&[]);
    let alice = demo.token("alice");
    let reply = |id: &str, all: bool| json!({"message_id": id, "comment": "ok", "reply_all": all});
    let cases = [
        // The stored message's people are all inside: allowed.
        (
            "outlook_reply_message",
            reply("AAMkmsg-facts-internal", false),
            None,
        ),
        (
            "outlook_reply_message",
            reply("AAMkmsg-facts-internal", true),
            None,
        ),
        // An outside cc is reached only by reply-all.
        (
            "outlook_reply_message",
            reply("AAMkmsg-facts-external-cc", false),
            None,
        ),
        (
            "outlook_reply_message",
            reply("AAMkmsg-facts-external-cc", true),
            Some("mail may only be sent to example.com addresses"),
        ),
        // An outside sender, in mixed case.
        (
            "outlook_reply_message",
            reply("AAMkmsg-facts-external-sender", false),
            Some("mail may only be sent to example.com addresses"),
        ),
        // The sender is inside but replies go to the full-width outside `replyTo`.
        (
            "outlook_reply_message",
            reply("AAMkmsg-facts-reply-to", false),
            Some("mail may only be sent to example.com addresses"),
        ),
        // A stored address that is not one address, and a message that does not exist.
        (
            "outlook_reply_message",
            reply("AAMkmsg-facts-unreadable", false),
            Some("whom this call reaches could not be read"),
        ),
        (
            "outlook_reply_message",
            reply("AAMkmsg-no-such-message", false),
            Some("whom this call reaches could not be read"),
        ),
        // Forwards go to their `to`.
        (
            "outlook_forward_message",
            json!({"message_id": "AAMkmsg-facts-external-cc", "to": ["Bob <bob@example.com>"]}),
            None,
        ),
        (
            "outlook_forward_message",
            json!({"message_id": "AAMkmsg-facts-internal", "to": ["Eve <eve@evil.test>"]}),
            Some("mail may only be sent to example.com addresses"),
        ),
        // A draft reaches its saved recipients, bcc included.
        (
            "outlook_send_draft",
            json!({"message_id": "AAMkmsg-draft-external-bcc"}),
            Some("mail may only be sent to example.com addresses"),
        ),
        (
            "outlook_send_draft",
            json!({"message_id": "AAMkmsg-facts-internal"}),
            Some("only drafts can be sent"),
        ),
        (
            "outlook_send_draft",
            json!({"message_id": "AAMkmsg-draft-internal"}),
            None,
        ),
    ];
    for (tool, args, denial) in cases {
        let result = call(&demo, &alice, tool, args.clone()).await;
        let text = text_of(&result);
        match denial {
            None => assert_eq!(result["isError"], false, "{tool} {args}: {text}"),
            Some(reason) => {
                assert_eq!(result["isError"], true, "{tool} {args}: allowed");
                assert!(
                    text.starts_with("denied by policy: "),
                    "{tool} {args}: {text}"
                );
                assert!(text.contains(reason), "{tool} {args}: {text}");
            }
        }
    }
    // The sent draft left Drafts for Sent Items; the outside one is still a draft.
    let sent = call(
        &demo,
        &alice,
        "outlook_list_messages",
        json!({"folder": "sentitems", "limit": 50}),
    )
    .await;
    let ids: Vec<&str> = sent["structuredContent"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"AAMkmsg-draft-internal"), "{ids:?}");
    assert!(!ids.contains(&"AAMkmsg-draft-external-bcc"), "{ids:?}");
    let records = audit_records(&demo);
    assert!(records.iter().any(|r| {
        r["decision"] == "deny"
            && r["tool"] == "outlook_reply_message"
            && r["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("could not be read")
    }));
}
