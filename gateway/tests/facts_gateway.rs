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
            Some("what this call would reach could not be read"),
        ),
        (
            "outlook_reply_message",
            reply("AAMkmsg-no-such-message", false),
            Some("what this call would reach could not be read"),
        ),
        // Forwards go to their `to`; a message with an outside participant is forwarded only
        // by admins (`no-forwarding-outside-threads`).
        (
            "outlook_forward_message",
            json!({"message_id": "AAMkmsg-facts-internal", "to": ["Bob <bob@example.com>"]}),
            None,
        ),
        (
            "outlook_forward_message",
            json!({"message_id": "AAMkmsg-facts-external-cc", "to": ["Bob <bob@example.com>"]}),
            Some("only admins may forward"),
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

// === Teams ===

/// The shipped quotas with the `send-mail` budget raised, so a test can send many allowed
/// variants; every guard stays as shipped.
fn roomy_quotas() -> String {
    include_str!("../../config/policies/quotas.toml")
        .replace("per_minute = 5\n", "per_minute = 1000\n")
        .replace("per_hour = 50\n", "per_hour = 10000\n")
}

fn demo_with_room() -> Demo {
    let quotas = roomy_quotas();
    assert!(quotas.contains("per_minute = 1000"), "the send quota moved");
    Demo::start_with_policies(&[], &[("quotas.toml", &quotas)])
}

/// Adds a chat of the emulator's `users` plus `members`, stored verbatim as Graph's
/// `conversationMember`s, to the demo's Graph emulator.
async fn add_chat(demo: &Demo, id: &str, users: &[&str], members: Vec<Value>) {
    let answer = reqwest::Client::new()
        .post(format!("{}/graph/_sandbox/chats", demo.sandbox_url))
        .json(&json!({"id": id, "users": users, "members": members}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201, "{id}");
}

/// A directory user of another tenant (or of ours) as a chat member, with the address Graph
/// lists for them.
fn aad_member(email: Value) -> Value {
    json!({"@odata.type": "#microsoft.graph.aadUserConversationMember", "id": "m-x",
        "displayName": "Someone", "roles": [], "userId": "u-x", "email": email,
        "tenantId": "9a8b7c6d-0000-4000-8000-00000000beef"})
}

/// Domains outside `example.com`: look-alikes of it, then names from a fixed pseudo-random
/// sequence (repeatable, so a failure names the same domain on every run).
fn outside_domains() -> Vec<String> {
    let mut domains: Vec<String> = [
        "partner.test",
        "example.com.evil.test",
        "mail.example.com",
        "exämple.com",
        "xn--exmple-cua.com",
        "example.co",
        "examp1e.com",
        "example.com-mail.test",
        "gmail.com",
    ]
    .map(str::to_owned)
    .to_vec();
    let (names, tlds) = (
        ["acme", "globex", "initech", "umbrella", "hooli"],
        ["test", "org", "net", "example", "co.uk"],
    );
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..10 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let n = (state >> 33) as usize;
        domains.push(format!(
            "{}{}.{}",
            names[n % names.len()],
            n % 1000,
            tlds[(n >> 8) % tlds.len()]
        ));
    }
    domains
}

/// Every request the demo's Graph emulator received, in its log's form.
async fn graph_requests(demo: &Demo) -> Vec<Value> {
    let log = format!("{}/graph/_sandbox/requests", demo.sandbox_url);
    reqwest::get(log).await.unwrap().json().await.unwrap()
}

/// `teams_send_chat_message` of `text` to `chat`; the call's `result`.
async fn send(demo: &Demo, token: &str, chat: &str, text: &str) -> Value {
    let arguments = json!({"chat_id": chat, "text": text});
    call(demo, token, "teams_send_chat_message", arguments).await
}

/// The newest message of `chat` as alice sees it, through the gateway.
async fn newest_chat_text(demo: &Demo, alice: &str, chat: &str) -> String {
    let listed = call(
        demo,
        alice,
        "teams_list_chat_messages",
        json!({"chat_id": chat, "limit": 1}),
    )
    .await;
    listed["structuredContent"]["messages"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{chat}: {listed}"))
        .to_owned()
}

#[tokio::test]
async fn chat_messages_are_decided_on_every_member_of_the_chat() {
    let demo = demo_with_room();
    let alice = demo.token("alice");
    // The demo's bob is staff only; as a writer he can send too.
    let bob = demo.token_with_groups("bob", &["writers"]);
    let outside_reason = "denied by policy: Teams messages may only reach example.com people";
    let unread = "what this call would reach could not be read";

    // A chat with one outside member, in every spelling, is denied; the chat id says nothing.
    let mut outside = Vec::new();
    for (n, domain) in outside_domains().iter().enumerate() {
        let forms = spellings("eve", domain);
        // Every form for the first look-alikes, one (plain or upper case) for the others.
        let take = if n < 3 { forms.len() } else { 1 };
        outside.extend(
            forms
                .into_iter()
                .skip(if n < 3 { 0 } else { n % 2 })
                .take(take),
        );
    }
    outside.extend(
        ["[10.0.0.1]", "10.0.0.1", "１０．０．０．１"]
            .iter()
            .map(|host| format!("eve@{host}")),
    );
    for (n, address) in outside.iter().enumerate() {
        let chat = format!("19:outside-{n:03}@thread.v2");
        let users: &[&str] = if n.is_multiple_of(2) {
            &["alice", "bob"]
        } else {
            &["alice"]
        };
        add_chat(&demo, &chat, users, vec![aad_member(json!(address))]).await;
        let result = send(&demo, &alice, &chat, "secret").await;
        assert_eq!(result["isError"], true, "{address:?}: {result}");
        assert_eq!(text_of(&result), outside_reason, "{address:?}");
    }
    // One outsider among 31 colleagues, on the second page of the member list.
    let result = send(
        &demo,
        &alice,
        "19:facts-all-hands-partner@thread.v2",
        "secret",
    )
    .await;
    assert_eq!(text_of(&result), outside_reason, "{result}");
    let seeded = send(&demo, &bob, "19:facts-partner@thread.v2", "secret").await;
    assert_eq!(text_of(&seeded), outside_reason, "{seeded}");

    // Members whose address cannot be read, and chats that cannot be read, deny.
    let unreadable = [
        aad_member(json!(null)),
        aad_member(json!("")),
        aad_member(json!("Eve <eve@evil.test>, bob@example.com")),
        aad_member(json!("bob@example.com; eve@evil.test")),
        json!({"@odata.type": "#microsoft.graph.anonymousGuestConversationMember", "id": "m-a",
            "displayName": "Guest", "anonymousGuestId": "g-1"}),
        json!({"@odata.type": "#microsoft.graph.phoneUserConversationMember", "id": "m-p",
            "displayName": "+1 555", "phoneNumber": "+15550100"}),
        json!({"@odata.type": "#microsoft.graph.microsoftAccountUserConversationMember",
            "id": "m-m", "displayName": "Personal", "userId": "u-msa"}),
        json!({"id": "m-u", "displayName": "Untyped", "email": "bob@example.com"}),
    ];
    for (n, member) in unreadable.into_iter().enumerate() {
        let chat = format!("19:unreadable-{n:03}@thread.v2");
        add_chat(&demo, &chat, &["alice"], vec![member.clone()]).await;
        let result = send(&demo, &alice, &chat, "secret").await;
        assert_eq!(result["isError"], true, "{member}: {result}");
        assert!(text_of(&result).contains(unread), "{member}: {result}");
    }
    // A seeded guest without an address, a chat that does not exist, one alice is not in.
    add_chat(&demo, "19:not-alice@thread.v2", &["bob"], vec![]).await;
    for chat in [
        "19:facts-guest-no-email@thread.v2",
        "19:no-such-chat@thread.v2",
        "19:not-alice@thread.v2",
    ] {
        let result = send(&demo, &alice, chat, "secret").await;
        assert_eq!(result["isError"], true, "{chat}: {result}");
        assert!(text_of(&result).contains(unread), "{chat}: {result}");
    }

    // Inside-only chats are allowed, in any spelling of example.com, and the message arrives.
    let mut inside: Vec<(String, &str)> = vec![
        ("19:chat-ab@unq.gbl.spaces".into(), "alice"),
        ("19:chat-group@thread.v2".into(), "bob"),
        ("19:facts-all-hands@thread.v2".into(), "alice"),
    ];
    for (n, address) in spellings("dan", "example.com")
        .iter()
        .step_by(2)
        .enumerate()
    {
        let chat = format!("19:inside-{n:03}@thread.v2");
        add_chat(
            &demo,
            &chat,
            &["alice", "bob"],
            vec![aad_member(json!(address))],
        )
        .await;
        inside.push((chat, if n.is_multiple_of(2) { "alice" } else { "bob" }));
    }
    for (chat, user) in &inside {
        let token = if *user == "alice" { &alice } else { &bob };
        let text = format!("for {chat} from {user}");
        let result = send(&demo, token, chat, &text).await;
        assert_eq!(result["isError"], false, "{chat}: {result}");
        assert_eq!(newest_chat_text(&demo, &alice, chat).await, text);
    }
    assert!(outside.len() >= 50, "{}", outside.len());

    // Nothing of a denied message reached Graph.
    let log = graph_requests(&demo).await;
    let posted = log
        .iter()
        .filter(|r| r["method"] == "POST" && r["body"]["body"]["content"] == "secret")
        .count();
    assert_eq!(posted, 0, "a denied chat message was sent");
}

/// `count` distinct spellings of `id` that differ only in the case of its letters: the id
/// itself, all upper case, then a fixed spread of mixed ones.
fn case_variants(id: &str, count: usize) -> Vec<String> {
    let letters: Vec<usize> = id
        .char_indices()
        .filter(|(_, c)| c.is_ascii_alphabetic())
        .map(|(i, _)| i)
        .collect();
    let all: u64 = (1 << letters.len()) - 1;
    let spelt = |mask: u64| {
        let mut bytes = id.as_bytes().to_vec();
        for (bit, at) in letters.iter().enumerate() {
            if mask & (1 << bit) != 0 {
                bytes[*at] = bytes[*at].to_ascii_uppercase();
            }
        }
        String::from_utf8(bytes).unwrap()
    };
    let mut masks = vec![0, all];
    let mut step: u64 = 0;
    while masks.len() < count.min(all as usize + 1) {
        step += 1;
        let mask = step.wrapping_mul(0x9e37_79b9_7f4a_7c15) & all;
        if !masks.contains(&mask) {
            masks.push(mask);
        }
    }
    masks.truncate(count);
    masks.into_iter().map(spelt).collect()
}

#[tokio::test]
async fn channel_posts_are_decided_on_the_team_graph_resolves_however_the_id_is_spelt() {
    let demo = demo_with_room();
    let alice = demo.token("alice");
    // The demo's bob is staff only; as a writer he can send too.
    let bob = demo.token_with_groups("bob", &["writers"]);
    let reason = "denied by policy: Teams channel posts are limited to the Engineering team";
    let general = |team: &str| format!("19:{team}-general@thread.tacv2");
    let post = |n: usize, team: &str, channel: &str, text: &str| {
        if n.is_multiple_of(2) {
            (
                "teams_post_channel_message",
                json!({"team_id": team, "channel_id": channel, "text": text}),
            )
        } else {
            (
                "teams_reply_to_channel_message",
                json!({"team_id": team, "channel_id": channel,
                    "message_id": "team-eng-general-002", "text": text}),
            )
        }
    };

    // The listed team in 24 case spellings, its channel in as many: allowed, and each post lands
    // in the one Engineering channel.
    let teams = case_variants("team-eng", 24);
    let channels = case_variants(&general("team-eng"), 24);
    let mut texts = Vec::new();
    for (n, (team, channel)) in teams.iter().zip(&channels).enumerate() {
        let text = format!("variant {n}: {team} {channel}");
        let (tool, args) = post(n, team, channel, &text);
        let token = if n.is_multiple_of(3) { &bob } else { &alice };
        let result = call(&demo, token, tool, args).await;
        assert_eq!(
            result["isError"], false,
            "{tool} {team} {channel}: {result}"
        );
        texts.push((n, text));
    }
    let listed = call(
        &demo,
        &alice,
        "teams_list_channel_messages",
        json!({"team_id": "team-eng", "channel_id": general("team-eng"), "limit": 50}),
    )
    .await;
    let threads = listed["structuredContent"]["messages"].as_array().unwrap();
    let landed: Vec<&str> = threads
        .iter()
        .flat_map(|t| {
            std::iter::once(&t["text"])
                .chain(t["replies"].as_array().unwrap().iter().map(|r| &r["text"]))
        })
        .filter_map(Value::as_str)
        .collect();
    for (n, text) in &texts {
        assert!(
            landed.contains(&text.as_str()),
            "post {n} did not land: {text}"
        );
    }

    // Alice's other team, in as many spellings: denied, whatever the case.
    let fin_channels = case_variants(&general("team-fin"), 24);
    for (n, (team, channel)) in case_variants("team-fin", 24)
        .iter()
        .zip(&fin_channels)
        .enumerate()
    {
        let (tool, args) = post(n, team, channel, "off limits");
        let result = call(&demo, &alice, tool, args).await;
        assert_eq!(text_of(&result), reason, "{tool} {team}: {result}");
    }

    // Teams and channels Graph cannot resolve for the caller deny: unknown ids, spellings Graph
    // does not match (full-width, encoded, padded), a channel of another team under the listed
    // one, and a team the caller is not in.
    let eng_general = general("team-eng");
    let fin_general = general("team-fin");
    let unresolvable = [
        ("alice", "team-engx", eng_general.as_str()),
        ("alice", "ｔｅａｍ-eng", eng_general.as_str()),
        ("alice", "team%2Deng", eng_general.as_str()),
        ("alice", "team-eng ", eng_general.as_str()),
        ("alice", "team-eng/..", eng_general.as_str()),
        ("alice", "team-eng", "19:team-eng-nope@thread.tacv2"),
        ("alice", "team-eng", fin_general.as_str()),
        ("bob", "team-fin", fin_general.as_str()),
        (
            "alice",
            "00000000-0000-0000-0000-000000000000",
            eng_general.as_str(),
        ),
    ];
    for (n, (user, team, channel)) in unresolvable.iter().enumerate() {
        let token = if *user == "alice" { &alice } else { &bob };
        let (tool, args) = post(n, team, channel, "off limits");
        let result = call(&demo, token, tool, args).await;
        assert_eq!(result["isError"], true, "{tool} {team} {channel}: {result}");
        assert!(
            text_of(&result).starts_with("denied by policy: "),
            "{tool} {team} {channel}: {result}"
        );
    }

    // Nothing denied was posted anywhere.
    let log = graph_requests(&demo).await;
    assert!(
        !log.iter()
            .any(|r| r["method"] == "POST" && r["body"]["body"]["content"] == "off limits"),
        "a denied post reached Graph"
    );
}
