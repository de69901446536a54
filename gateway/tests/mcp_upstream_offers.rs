//! The resources, resource templates, prompts and completions of an upstream MCP server behind
//! the gateway: namespaced reversibly, read and got through the policy (Cedar's `Resource` and
//! `Prompt` with `list`, `read`, `get`), redacted, audited, subscribed to per session with the
//! upstream subscription shared, and refused clearly when a URI is not in plain form.
#![allow(clippy::unwrap_used, deprecated)]

mod support;

use std::time::{Duration, Instant};

use rmcp::{
    model::{
        ArgumentInfo, CompleteRequestParams, GetPromptRequestParams, PromptReference,
        ProtocolVersion, ReadResourceRequestParams, Reference, ResourceContents,
        ResourceTemplateReference, ServerNotification, SubscribeRequestParams, SubscriptionFilter,
        UnsubscribeRequestParams,
    },
    service::{ClientLifecycleMode, ClientServiceExt},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Map, Value, json};
use support::mcp_gateway::{Client, Heard, Setup, behind_gateway, connect};
use tokio::sync::mpsc;

const DOC: &str = "manifold://up/test://doc/1";
const SECRET: &str = "manifold://up/test://secret/key";

fn read(uri: &str) -> ReadResourceRequestParams {
    ReadResourceRequestParams::new(uri)
}

fn text_of(contents: &ResourceContents) -> (&str, &str) {
    match contents {
        ResourceContents::TextResourceContents { uri, text, .. } => (uri, text),
        ResourceContents::BlobResourceContents { uri, blob, .. } => (uri, blob),
        _ => panic!("unexpected contents"),
    }
}

fn audit_lines(setup: &Setup) -> Vec<Value> {
    std::fs::read_to_string(setup.gateway.dir.path().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The URIs the gateway lists.
async fn resource_uris(
    client: &rmcp::service::RunningService<rmcp::RoleClient, Client>,
) -> Vec<String> {
    client
        .list_all_resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uri)
        .collect()
}

/// Waits until the gateway lists the upstream's resources.
async fn until_resources(setup: &Setup) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while setup.client.list_all_resources().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "resources never listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn error_of(error: rmcp::ServiceError) -> rmcp::ErrorData {
    match error {
        rmcp::ServiceError::McpError(error) => error,
        other => panic!("not an MCP error: {other}"),
    }
}

#[tokio::test]
async fn resources_and_prompts_are_namespaced_read_redacted_completed_and_audited() {
    let setup = behind_gateway("", "echo").await;
    until_resources(&setup).await;
    let client = &setup.client;

    let uris = resource_uris(client).await;
    assert_eq!(
        uris,
        [DOC, SECRET, "manifold://up/test://blob/1"],
        "prefixed reversibly"
    );
    let templates = client.list_all_resource_templates().await.unwrap();
    assert_eq!(templates[0].uri_template, "manifold://up/test://doc/{id}");

    // A listed URI and a template-made one reach the upstream under its own URIs, and come
    // back under the exposed ones.
    for (uri, expected) in [(DOC, "doc 1"), ("manifold://up/test://doc/7", "doc 7")] {
        let read = client.read_resource(read(uri)).await.unwrap();
        assert_eq!(text_of(&read.contents[0]), (uri, expected));
    }
    assert_eq!(
        *setup.upstream.reads.lock().unwrap(),
        ["test://doc/1", "test://doc/7"]
    );

    // Text is redacted; binary payloads are not rewritten.
    let secret = client.read_resource(read(SECRET)).await.unwrap();
    let (_, text) = text_of(&secret.contents[0]);
    assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
    let blob = client
        .read_resource(read("manifold://up/test://blob/1"))
        .await
        .unwrap();
    assert_eq!(text_of(&blob.contents[0]).1, "AKIAIOSFODNN7EXAMPLE");

    // What an upstream might read as another path is refused before it, and unknown URIs
    // are -32602 with the URI (SEP-2164).
    for odd in [
        "manifold://up/test://doc/../secret/key",
        "manifold://up/test://doc/%2e%2e/secret/key",
        "manifold://up/test://doc/1\n",
    ] {
        let error = error_of(client.read_resource(read(odd)).await.unwrap_err());
        assert_eq!(error.code.0, -32602, "{odd:?}: {error:?}");
    }
    for unknown in ["test://doc/1", "manifold://nobody/test://doc/1"] {
        let error = error_of(client.read_resource(read(unknown)).await.unwrap_err());
        assert_eq!(error.code.0, -32602);
        assert_eq!(error.data.unwrap()["uri"], unknown);
    }
    assert_eq!(
        setup.upstream.reads.lock().unwrap().len(),
        4,
        "no odd URI went upstream"
    );

    // Prompts: namespaced like tools, arguments passed, answers redacted.
    let prompts = client.list_all_prompts().await.unwrap();
    assert_eq!(prompts[0].name, "up_greet");
    let mut get = GetPromptRequestParams::new("up_greet");
    get.arguments = Some(Map::from_iter([("name".into(), json!("alice"))]));
    let greeting = client.get_prompt(get).await.unwrap();
    let said = serde_json::to_string(&greeting.messages).unwrap();
    assert!(
        said.contains("Hello alice") && !said.contains("AKIAIOSFODNN7EXAMPLE"),
        "{said}"
    );
    let error = error_of(
        client
            .get_prompt(GetPromptRequestParams::new("greet"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        error.code.0, -32602,
        "the upstream's own name is not exposed"
    );

    // Completions go to the owner of the prompt or template, under its own names.
    let complete = |reference: Reference, argument: &str, value: &str| {
        CompleteRequestParams::new(reference, ArgumentInfo::new(argument, value))
    };
    let names = client
        .complete(complete(
            Reference::Prompt(PromptReference::new("up_greet")),
            "name",
            "al",
        ))
        .await
        .unwrap();
    assert_eq!(names.completion.values, ["alice", "albert"]);
    let ids = client
        .complete(complete(
            Reference::Resource(ResourceTemplateReference::new(
                "manifold://up/test://doc/{id}",
            )),
            "id",
            "1",
        ))
        .await
        .unwrap();
    assert_eq!(ids.completion.values, ["1", "12"]);

    // One record per read and get, refusals included; never the secret.
    let audit = audit_lines(&setup);
    let reads: Vec<&Value> = audit.iter().filter(|r| r["action"] == "read").collect();
    assert_eq!(reads.len(), 9, "{reads:?}");
    assert!(
        reads
            .iter()
            .any(|r| r["tool"] == DOC && r["instance"] == "up" && r["outcome"] == "ok")
    );
    assert!(reads.iter().any(|r| r["outcome"] == "unknown_item"));
    let gets: Vec<&Value> = audit.iter().filter(|r| r["action"] == "get").collect();
    assert_eq!(gets.len(), 2);
    assert!(
        gets.iter()
            .any(|r| r["tool"] == "up_greet" && r["outcome"] == "ok")
    );
    let raw = serde_json::to_string(&audit).unwrap();
    assert!(!raw.contains("AKIAIOSFODNN7EXAMPLE"));
    setup.end().await;
}

#[tokio::test]
async fn a_policy_hides_resources_and_prompts_and_denies_what_it_does_not_permit() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("access.cedar"),
        r#"
permit (principal, action in [Action::"list", Action::"call"], resource);
permit (principal, action == Action::"read", resource is Resource);
@id("no-secrets") @reason("secrets stay upstream")
forbid (principal, action, resource is Resource) when { resource.uri like "manifold://up/test://secret/*" };
"#,
    )
    .unwrap();
    let settings = format!(
        "[policy]\ndir = \"{}\"\nwatch = false\n",
        policies.path().display()
    );
    let setup = behind_gateway(&settings, "echo").await;
    until_resources(&setup).await;
    let client = &setup.client;

    let uris = resource_uris(client).await;
    assert!(
        uris.contains(&DOC.to_owned()) && !uris.contains(&SECRET.to_owned()),
        "{uris:?}"
    );
    client.read_resource(read(DOC)).await.unwrap();

    // Hidden: answered as a resource that does not exist, for reads and subscriptions alike;
    // a template-made URI under the forbidden prefix too.
    for hidden in [SECRET, "manifold://up/test://secret/other"] {
        let error = error_of(client.read_resource(read(hidden)).await.unwrap_err());
        assert_eq!(
            (error.code.0, error.message.as_ref()),
            (-32602, "Resource not found")
        );
        let error = error_of(
            client
                .subscribe(SubscribeRequestParams::new(hidden))
                .await
                .unwrap_err(),
        );
        assert_eq!(error.code.0, -32602);
    }
    assert!(
        !setup
            .upstream
            .reads
            .lock()
            .unwrap()
            .iter()
            .any(|uri| uri.contains("secret"))
    );

    // No policy permits `get`: prompts are listed but not got, nor completed.
    assert_eq!(client.list_all_prompts().await.unwrap().len(), 1);
    let error = error_of(
        client
            .get_prompt(GetPromptRequestParams::new("up_greet"))
            .await
            .unwrap_err(),
    );
    assert!(error.message.contains("Denied by policy"), "{error:?}");
    let error = error_of(
        client
            .complete(CompleteRequestParams::new(
                Reference::Prompt(PromptReference::new("up_greet")),
                ArgumentInfo::new("name", "a"),
            ))
            .await
            .unwrap_err(),
    );
    assert!(error.message.contains("Denied by policy"), "{error:?}");
    let audit = audit_lines(&setup);
    assert!(audit.iter().any(|r| r["action"] == "read"
        && r["tool"] == SECRET
        && r["outcome"] == "denied"
        && r["policies"] == json!(["no-secrets"])));
    setup.end().await;
}

/// Waits for what the client hears, skipping list changes.
async fn next_update(
    changes: &mut mpsc::UnboundedReceiver<Heard>,
    within: Duration,
) -> Option<String> {
    tokio::time::timeout(within, async {
        loop {
            match changes.recv().await {
                Some(Heard::Updated(uri)) => return Some(uri),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test]
async fn subscriptions_forward_only_their_resource_and_share_one_upstream_subscription() {
    let mut setup = behind_gateway("", "echo").await;
    until_resources(&setup).await;
    let upstream = setup.upstream.clone();

    setup
        .client
        .subscribe(SubscribeRequestParams::new(DOC))
        .await
        .unwrap();
    assert_eq!(*upstream.subscribed.lock().unwrap(), ["test://doc/1"]);
    upstream.touch("test://doc/2").await;
    upstream.touch("test://doc/1").await;
    assert_eq!(
        next_update(&mut setup.changes, Duration::from_secs(10))
            .await
            .as_deref(),
        Some(DOC),
        "only the subscribed resource, under its exposed URI"
    );

    // A second session shares the upstream subscription.
    let (second, mut second_changes) = connect(&setup.gateway.url()).await;
    second
        .subscribe(SubscribeRequestParams::new(DOC))
        .await
        .unwrap();
    assert_eq!(upstream.subscribed.lock().unwrap().len(), 1);
    setup
        .client
        .unsubscribe(UnsubscribeRequestParams::new(DOC))
        .await
        .unwrap();
    upstream.touch("test://doc/1").await;
    assert_eq!(
        next_update(&mut second_changes, Duration::from_secs(10))
            .await
            .as_deref(),
        Some(DOC)
    );
    assert_eq!(
        next_update(&mut setup.changes, Duration::from_millis(500)).await,
        None
    );
    assert!(
        upstream.unsubscribed.lock().unwrap().is_empty(),
        "still wanted by the second"
    );

    // The last subscriber's session ends: the upstream hears it.
    second.cancel().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.unsubscribed.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the upstream subscription was never released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(*upstream.unsubscribed.lock().unwrap(), ["test://doc/1"]);

    // A 2026-07-28 client names its resources on its listen stream.
    let (sender, _heard) = mpsc::unbounded_channel();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(setup.gateway.url()),
    );
    let modern = Client(sender)
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let mut filter = SubscriptionFilter::new();
    filter.resource_subscriptions = Some(vec![DOC.to_owned(), SECRET.to_owned()]);
    let mut stream = modern.peer().listen(filter).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let heard = loop {
        upstream.touch("test://doc/1").await;
        if let Ok(next) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
            break next.unwrap().expect("the stream ended");
        }
        assert!(Instant::now() < deadline, "no update on the listen stream");
    };
    match heard {
        ServerNotification::ResourceUpdatedNotification(update) => {
            assert_eq!(update.params.uri, DOC)
        }
        other => panic!("{other:?}"),
    }
    drop(stream);
    modern.cancel().await.unwrap();
    setup.end().await;
}

#[tokio::test]
async fn a_new_upstream_resource_is_announced_as_a_resource_list_change_only() {
    let mut setup = behind_gateway("", "echo").await;
    until_resources(&setup).await;
    while setup.changes.try_recv().is_ok() {}
    setup.upstream.add_resource().await;
    let heard = tokio::time::timeout(Duration::from_secs(10), setup.changes.recv())
        .await
        .expect("no list change from the gateway");
    assert_eq!(heard, Some(Heard::ResourcesChanged));
    let uris = resource_uris(&setup.client).await;
    assert!(
        uris.contains(&"manifold://up/test://doc/new".to_owned()),
        "{uris:?}"
    );
    // The tools did not change, so their list is not said to have.
    let more = tokio::time::timeout(Duration::from_millis(700), setup.changes.recv()).await;
    assert!(more.is_err(), "{more:?}");
    setup.end().await;
}
