//! Every tool of every adapter that puts an id or a name in a provider URL, fed generated
//! hostile values (random Unicode, `/ ? # % ;`, `..` and its encoded, full-width, padded and
//! invisible spellings, control characters): the request that leaves has exactly the expected
//! path segments, each id segment decoding to the value given, or the call is refused before any
//! request leaves. A raw TCP server captures the request line as sent, so nothing between the
//! adapter and the wire (reqwest, hyper) can hide a rewrite.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use manifold_adapters::{
    Adapter, AdapterKind, CallContext, InstanceSettings, Secret, ToolError, UpstreamClient,
    UpstreamConfig,
    boxcom::BoxKind,
    drive::DriveKind,
    dropbox::DropboxKind,
    graph::{OutlookKind, SharePointKind, TeamsKind},
    linear::LinearKind,
};
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpListener,
};
use url::Url;

// === the capture server ===

/// Answers every request `404 {}` and keeps each request target (path and query) as sent.
struct Capture {
    base: Url,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Capture {
    async fn start(prefix: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
                        let mut length = 0;
                        loop {
                            let mut header = String::new();
                            if stream.read_line(&mut header).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if header == "\r\n" {
                                break;
                            }
                            if let Some((name, value)) = header.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if stream.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        log.lock().unwrap().push(target);
                        let answer = "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\
                                      content-length: 2\r\n\r\n{}";
                        if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            base: Url::parse(&format!("http://{address}{prefix}")).unwrap(),
            seen,
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

// === what each tool may send ===

/// One expected path segment, decoded: a literal of the API, or the generated value.
#[derive(Debug, Clone, Copy)]
enum Seg {
    Fixed(&'static str),
    Value,
    /// The value followed by `:` (Graph's path addressing).
    ValueColon,
}

/// A tool call with the generated value in one argument, and the paths (after the base path) it
/// may request. `parts` spreads the value over several segments (a SharePoint `path`).
struct Case {
    tool: &'static str,
    args: fn(&str) -> Value,
    paths: &'static [&'static [Seg]],
    parts: bool,
}

use Seg::{Fixed as F, Value as V, ValueColon as VC};

const fn case(
    tool: &'static str,
    args: fn(&str) -> Value,
    paths: &'static [&'static [Seg]],
) -> Case {
    Case {
        tool,
        args,
        paths,
        parts: false,
    }
}

const OUTLOOK: &[Case] = &[
    case(
        "get_message",
        |v| json!({ "message_id": v }),
        &[
            &[F("me"), F("messages"), V],
            &[F("me"), F("messages"), V, F("attachments")],
        ],
    ),
    case(
        "read_attachment",
        |v| json!({ "message_id": v, "attachment_id": "a1" }),
        &[&[F("me"), F("messages"), V, F("attachments"), F("a1")]],
    ),
    case(
        "read_attachment",
        |v| json!({ "message_id": "m1", "attachment_id": v }),
        &[&[F("me"), F("messages"), F("m1"), F("attachments"), V]],
    ),
    case(
        "reply_message",
        |v| json!({ "message_id": v, "comment": "ok" }),
        &[
            &[F("me"), F("messages"), V, F("reply")],
            &[F("me"), F("messages"), V],
        ],
    ),
    case(
        "reply_message",
        |v| json!({ "message_id": v, "comment": "ok", "reply_all": true }),
        &[
            &[F("me"), F("messages"), V, F("replyAll")],
            &[F("me"), F("messages"), V],
        ],
    ),
    case(
        "forward_message",
        |v| json!({ "message_id": v, "to": ["a@example.com"] }),
        &[
            &[F("me"), F("messages"), V, F("forward")],
            &[F("me"), F("messages"), V],
        ],
    ),
    case(
        "move_message",
        |v| json!({ "message_id": v, "destination": "archive" }),
        &[&[F("me"), F("messages"), V, F("move")]],
    ),
    case(
        "list_messages",
        |v| json!({ "folder": v }),
        &[&[F("me"), F("mailFolders"), V, F("messages")]],
    ),
];

const TEAMS: &[Case] = &[
    case(
        "list_channels",
        |v| json!({ "team_id": v }),
        &[&[F("teams"), V, F("channels")]],
    ),
    case(
        "list_channel_messages",
        |v| json!({ "team_id": v, "channel_id": "c1" }),
        &[&[F("teams"), V, F("channels"), F("c1"), F("messages")]],
    ),
    case(
        "list_channel_messages",
        |v| json!({ "team_id": "t1", "channel_id": v }),
        &[&[F("teams"), F("t1"), F("channels"), V, F("messages")]],
    ),
    case(
        "list_chat_messages",
        |v| json!({ "chat_id": v }),
        &[&[F("chats"), V, F("messages")]],
    ),
    case(
        "get_thread",
        |v| json!({ "team_id": "t1", "channel_id": "c1", "message_id": v }),
        &[&[
            F("teams"),
            F("t1"),
            F("channels"),
            F("c1"),
            F("messages"),
            V,
        ]],
    ),
    case(
        "send_chat_message",
        |v| json!({ "chat_id": v, "text": "hi" }),
        &[&[F("chats"), V, F("messages")], &[F("chats"), V]],
    ),
    case(
        "post_channel_message",
        |v| json!({ "team_id": v, "channel_id": "c1", "text": "hi" }),
        &[
            &[F("teams"), V, F("channels"), F("c1"), F("messages")],
            &[F("teams"), V],
            &[F("teams"), V, F("channels"), F("c1")],
        ],
    ),
    case(
        "reply_to_channel_message",
        |v| json!({ "team_id": "t1", "channel_id": "c1", "message_id": v, "text": "hi" }),
        &[
            &[
                F("teams"),
                F("t1"),
                F("channels"),
                F("c1"),
                F("messages"),
                V,
                F("replies"),
            ],
            &[F("teams"), F("t1")],
            &[F("teams"), F("t1"), F("channels"), F("c1")],
        ],
    ),
];

const SHAREPOINT: &[Case] = &[
    case("get_site", |v| json!({ "site_id": v }), &[&[F("sites"), V]]),
    case(
        "list_drives",
        |v| json!({ "site_id": v }),
        &[&[F("sites"), V, F("drives")]],
    ),
    case(
        "get_item",
        |v| json!({ "drive_id": v }),
        &[&[F("drives"), V, F("root")]],
    ),
    case(
        "get_item",
        |v| json!({ "drive_id": "d1", "item_id": v }),
        &[&[F("drives"), F("d1"), F("items"), V]],
    ),
    case(
        "list_items",
        |v| json!({ "drive_id": "d1", "item_id": v }),
        &[&[F("drives"), F("d1"), F("items"), V, F("children")]],
    ),
    case(
        "read_file",
        |v| json!({ "drive_id": "d1", "item_id": v }),
        &[&[F("drives"), F("d1"), F("items"), V]],
    ),
    case(
        "upload_file",
        |v| json!({ "drive_id": "d1", "name": v, "content": "x" }),
        &[&[F("drives"), F("d1"), F("root:"), VC, F("content")]],
    ),
    case(
        "upload_file",
        |v| json!({ "drive_id": "d1", "folder_item_id": v, "name": "n.txt", "content": "x" }),
        &[&[
            F("drives"),
            F("d1"),
            F("items"),
            VC,
            F("n.txt:"),
            F("content"),
        ]],
    ),
    case(
        "create_folder",
        |v| json!({ "drive_id": "d1", "parent_item_id": v, "name": "f" }),
        &[&[F("drives"), F("d1"), F("items"), V, F("children")]],
    ),
    case(
        "create_folder",
        |v| json!({ "drive_id": v, "name": "f" }),
        &[&[F("drives"), V, F("root"), F("children")]],
    ),
    Case {
        tool: "get_item",
        args: |v| json!({ "drive_id": "d1", "path": v }),
        paths: &[],
        parts: true,
    },
];

const BOX: &[Case] = &[
    case(
        "get_item",
        |v| json!({ "id": v }),
        &[&[F("2.0"), F("files"), V]],
    ),
    case(
        "get_item",
        |v| json!({ "id": v, "type": "folder" }),
        &[&[F("2.0"), F("folders"), V]],
    ),
    case(
        "read_file",
        |v| json!({ "file_id": v }),
        &[&[F("2.0"), F("files"), V]],
    ),
    case(
        "list_folder",
        |v| json!({ "folder_id": v }),
        &[&[F("2.0"), F("folders"), V, F("items")]],
    ),
    case(
        "move_file",
        |v| json!({ "file_id": v, "name": "n" }),
        &[&[F("2.0"), F("files"), V]],
    ),
    case(
        "delete_file",
        |v| json!({ "file_id": v }),
        &[&[F("2.0"), F("files"), V]],
    ),
    case(
        "create_share_link",
        |v| json!({ "file_id": v }),
        &[&[F("2.0"), F("files"), V]],
    ),
];

/// Drive trims the reference and looks up anything that is not an id by name (`files.list`,
/// the name in the query); only ids reach the path.
const DRIVE_LIST: &[Seg] = &[F("drive"), F("v3"), F("files")];
/// An empty reference, `/` or `root` (any case) is My Drive's root.
const DRIVE_ROOT: &[Seg] = &[F("drive"), F("v3"), F("files"), F("root")];
const DRIVE: &[Case] = &[
    case(
        "get_file",
        |v| json!({ "file": v }),
        &[
            &[F("drive"), F("v3"), F("files"), V],
            DRIVE_LIST,
            DRIVE_ROOT,
        ],
    ),
    case(
        "read_file",
        |v| json!({ "file": v }),
        &[
            &[F("drive"), F("v3"), F("files"), V],
            DRIVE_LIST,
            DRIVE_ROOT,
        ],
    ),
    case(
        "delete_file",
        |v| json!({ "file": v }),
        &[
            &[F("drive"), F("v3"), F("files"), V],
            DRIVE_LIST,
            DRIVE_ROOT,
        ],
    ),
    case(
        "move_file",
        |v| json!({ "file": v, "new_name": "n" }),
        &[
            &[F("drive"), F("v3"), F("files"), V],
            DRIVE_LIST,
            DRIVE_ROOT,
        ],
    ),
    case(
        "share_file",
        |v| json!({ "file": v, "email": "a@example.com", "role": "reader" }),
        &[
            &[F("drive"), F("v3"), F("files"), V, F("permissions")],
            &[F("drive"), F("v3"), F("files"), F("root"), F("permissions")],
            &[F("drive"), F("v3"), F("files"), V],
            DRIVE_LIST,
            DRIVE_ROOT,
        ],
    ),
    case(
        "list_folder",
        |v| json!({ "folder": v }),
        &[
            &[F("drive"), F("v3"), F("files"), V],
            DRIVE_LIST,
            DRIVE_ROOT,
        ],
    ),
];

/// Dropbox paths travel in the body or `Dropbox-API-Arg`: the URL is always the route.
const DROPBOX: &[Case] = &[
    case(
        "get_metadata",
        |v| json!({ "path": v }),
        &[&[F("2"), F("files"), F("get_metadata")]],
    ),
    case(
        "read_file",
        |v| json!({ "path": v }),
        &[
            &[F("content"), F("2"), F("files"), F("download")],
            &[F("2"), F("files"), F("get_metadata")],
        ],
    ),
    case(
        "list_folder",
        |v| json!({ "path": v }),
        &[&[F("2"), F("files"), F("list_folder")]],
    ),
    case(
        "delete_item",
        |v| json!({ "path": v }),
        &[&[F("2"), F("files"), F("delete_v2")]],
    ),
    case(
        "create_share_link",
        |v| json!({ "path": v }),
        &[&[F("2"), F("sharing"), F("create_shared_link_with_settings")]],
    ),
];

/// Linear is GraphQL: ids go in the body, the path is fixed.
const LINEAR: &[Case] = &[
    case("get_issue", |v| json!({ "id": v }), &[&[F("graphql")]]),
    case(
        "add_comment",
        |v| json!({ "issue_id": v, "body": "hi" }),
        &[&[F("graphql")]],
    ),
    case(
        "update_issue",
        |v| json!({ "id": v, "title": "t" }),
        &[&[F("graphql")]],
    ),
];

// === the check ===

/// Every segment on the wire is unreserved characters and `%XX` escapes, a `:` allowed only at
/// the end (Graph's `root:` and `{name}:`).
fn wire_is_plain(segment: &str) -> bool {
    let body = segment.strip_suffix(':').unwrap_or(segment);
    let bytes = body.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if bytes
                .get(index + 1..index + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
            {
                index += 3
            }
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => index += 1,
            _ => return false,
        }
    }
    true
}

fn decoded(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// The expected decoded segments of one template for `value`, `None` when the template holds the
/// value but the value may not be placed in a path (`must_refuse`).
fn expected(template: &[Seg], value: &str, must_refuse: bool) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for seg in template {
        match seg {
            Seg::Fixed(text) => out.push((*text).to_owned()),
            Seg::Value | Seg::ValueColon if must_refuse => return None,
            Seg::Value => out.push(value.to_owned()),
            Seg::ValueColon => out.push(format!("{value}:")),
        }
    }
    Some(out)
}

/// The templates of a `parts` case: `drives/d1/root:/a/b:` from the value's `/`-separated parts.
fn part_paths(value: &str, must_refuse: bool) -> Vec<Vec<String>> {
    let parts: Vec<&str> = value.split('/').filter(|p| !p.is_empty()).collect();
    let mut path: Vec<String> = ["drives", "d1"].map(str::to_owned).to_vec();
    if parts.is_empty() {
        path.push("root".into());
        return vec![path];
    }
    if must_refuse {
        return Vec::new();
    }
    path.push("root:".into());
    let last = parts.len() - 1;
    for (index, part) in parts.iter().enumerate() {
        path.push(if index == last {
            format!("{part}:")
        } else {
            (*part).to_owned()
        });
    }
    vec![path]
}

/// Runs one case with `value` and checks what was sent. Returns whether a request left.
async fn check_case(
    adapter: &dyn Adapter,
    capture: &Capture,
    case: &Case,
    value: &str,
    must_refuse: bool,
    trims: bool,
) -> Result<bool, TestCaseError> {
    let args = match (case.args)(value) {
        Value::Object(args) => args,
        other => {
            return Err(TestCaseError::fail(format!(
                "arguments {other} are not an object"
            )));
        }
    };
    let ctx = CallContext {
        credential: Some(Secret::new("token-1")),
        ..CallContext::default()
    };
    let result = tokio::time::timeout(Duration::from_secs(10), adapter.call(case.tool, args, &ctx))
        .await
        .map_err(|_| TestCaseError::fail(format!("{} timed out", case.tool)))?;
    let sent = capture.take();
    if sent.is_empty() {
        // Nothing left: the adapter refused the value, with an answer that says so.
        prop_assert!(
            matches!(result, Err(ToolError::InvalidArguments(_))),
            "{} sent nothing for {:?} but answered {:?}",
            case.tool,
            value,
            result
        );
        return Ok(false);
    }
    let value = if trims { value.trim() } else { value };
    let allowed: Vec<Vec<String>> = if case.parts {
        part_paths(value, must_refuse)
    } else {
        case.paths
            .iter()
            .filter_map(|t| expected(t, value, must_refuse))
            .collect()
    };
    let prefix = capture.base.path().trim_end_matches('/');
    for target in &sent {
        let path = target.split('?').next().unwrap_or_default();
        let rest = path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/'));
        prop_assert!(
            rest.is_some(),
            "{}: {:?} left the base path {}",
            case.tool,
            target,
            prefix
        );
        let wire: Vec<&str> = rest.unwrap_or_default().split('/').collect();
        for segment in &wire {
            prop_assert!(
                wire_is_plain(segment),
                "{}: segment {:?} of {:?} is not plain",
                case.tool,
                segment,
                target
            );
        }
        let got: Vec<String> = wire.iter().map(|s| decoded(s)).collect();
        prop_assert!(
            allowed.contains(&got),
            "{} with {:?} sent {:?} (decoded {:?}); allowed {:?}",
            case.tool,
            value,
            target,
            got,
            allowed
        );
    }
    Ok(true)
}

// === generated values ===

/// Spellings of `.` that a client or a provider may turn into a plain dot.
const DOTS: &[&str] = &[
    ".", "%2e", "%2E", "%252e", "\u{FF0E}", "\u{2024}", "\u{FE52}", "\u{3002}", "\u{FF61}",
];
/// What a normalising server may strip around a segment.
const PADDING: &[&str] = &[
    "", " ", "%20", "\u{00A0}", "\u{200B}", "\u{FEFF}", "\u{00AD}", "\u{2060}", "\t", "\n",
];

/// A dot segment in some spelling, padded: every one must be refused wherever it would reach a
/// path.
fn dot_segment() -> impl Strategy<Value = String> {
    let dot = || prop::sample::select(DOTS);
    let pad = || prop::sample::select(PADDING);
    (
        pad(),
        dot(),
        prop::option::of(dot()),
        pad(),
        prop::sample::select(&["", ";x", "/", "\\"][..]),
    )
        .prop_map(|(before, first, second, after, tail)| {
            format!("{before}{first}{}{after}{tail}", second.unwrap_or(""))
        })
}

/// Anything: ordinary ids, separators, escapes, random Unicode and controls, mixed.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[A-Za-z0-9_-]{1,12}",
        2 => "[0-9]{1,12}",
        1 => prop::sample::select(&["/", "?", "#", "%", ";", "..", ".", " ", "\\", ":", "@", "+", "&", "="][..]).prop_map(str::to_owned),
        1 => "%[0-9a-fA-F]{2}",
        1 => prop::sample::select(DOTS).prop_map(str::to_owned),
        1 => prop::sample::select(PADDING).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

/// Ids as providers issue them: digits (Box), letters and digits, dashes and underscores.
const PLAIN: &[&str] = &["123456789", "1", "abcDEF123", "a-b_c-9", "0000000000000001"];

/// A value and whether it must be refused wherever it would become a path segment.
fn value() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        1 => "[0-9]{1,12}".prop_map(|v| (v, false)),
        3 => hostile().prop_map(|v| (v, false)),
        1 => dot_segment().prop_map(|v| (v, true)),
    ]
}

fn build(kind: &dyn AdapterKind, base: &Url) -> Arc<dyn Adapter> {
    let client = UpstreamClient::new(UpstreamConfig::default())
        .unwrap()
        .for_instance(kind.id(), 4);
    kind.build(InstanceSettings {
        name: kind.id().into(),
        base_url: base.clone(),
        client,
        settings: Map::new(),
        credentials: Default::default(),
    })
    .unwrap()
}

/// Feeds `cases` generated values through `kind` against a capture server at `prefix`.
fn run(kind: &dyn AdapterKind, prefix: &str, cases: &[Case], trims: bool, count: u32) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let capture = runtime.block_on(Capture::start(prefix));
    let adapter = runtime.block_on(async { build(kind, &capture.base) });
    let sent_some = std::cell::Cell::new(0_u32);
    // Plain ids first, so that whatever the generator draws, the test sees requests that left.
    for plain in PLAIN {
        for case in cases {
            match runtime.block_on(check_case(&*adapter, &capture, case, plain, false, trims)) {
                Ok(true) => sent_some.set(sent_some.get() + 1),
                Ok(false) => {}
                Err(error) => panic!("{}: plain id {plain:?}: {error}", kind.id()),
            }
        }
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: count,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&value(), |(value, must_refuse)| {
        for case in cases {
            if runtime.block_on(check_case(
                &*adapter,
                &capture,
                case,
                &value,
                must_refuse,
                trims,
            ))? {
                sent_some.set(sent_some.get() + 1);
            }
        }
        Ok(())
    });
    if let Err(error) = outcome {
        panic!("{}: {error}", kind.id());
    }
    // The test must also see requests that left, or it proves only that everything was refused.
    assert!(
        sent_some.get() > 0,
        "{}: no generated value ever reached the provider",
        kind.id()
    );
}

#[test]
fn outlook_paths_hold_exactly_the_ids() {
    run(&OutlookKind, "/graph/v1.0", OUTLOOK, false, 256);
}

#[test]
fn teams_paths_hold_exactly_the_ids() {
    run(&TeamsKind, "/graph/v1.0", TEAMS, false, 256);
}

#[test]
fn sharepoint_paths_hold_exactly_the_ids() {
    run(&SharePointKind, "/graph/v1.0", SHAREPOINT, false, 256);
}

#[test]
fn box_paths_hold_exactly_the_ids() {
    run(&BoxKind, "/box", BOX, false, 256);
}

#[test]
fn drive_paths_hold_exactly_the_ids() {
    run(&DriveKind, "/drive", DRIVE, true, 256);
}

#[test]
fn dropbox_paths_are_only_routes() {
    run(&DropboxKind, "/dropbox", DROPBOX, false, 256);
}

#[test]
fn linear_path_is_only_the_endpoint() {
    run(&LinearKind, "/linear", LINEAR, false, 256);
}
