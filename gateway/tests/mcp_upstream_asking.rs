//! An upstream MCP server asking the calling client questions during a call — elicitation,
//! sampling, roots — through the gateway, for downstream clients of both eras and upstreams of
//! both eras: a 2025-era session is asked on its request's stream; a 2026-07-28 client answers
//! between rounds, with the upstream's state sealed by the gateway so any replica resumes the
//! call; a client that cannot answer gets -32021, never a hang; the upstream hears only of the
//! capabilities the client declared; a question outside any call is refused.
// Sampling and roots are deprecated by SEP-2577, and still what these tests relay.
#![allow(clippy::unwrap_used, deprecated)]

mod support;

use std::{path::Path, sync::Arc, time::Duration};

use rmcp::{
    ClientHandler, ErrorData as McpError, RoleClient, ServiceExt,
    model::{
        ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
        ElicitRequestParams, ElicitResult, ElicitationAction, Implementation, SamplingMessage,
    },
    service::RequestContext,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use support::{
    asking_mcp::{Asking, round, sampled, send},
    mcp_gateway::{call, connect, instance},
    post,
    process::GatewayProcess,
};
use tokio_util::sync::CancellationToken;

/// Both processes' keyring (`kid:base64url of 32 bytes`).
const SECRET_KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
/// Longest a call that must fail cleanly may take: far below the gateway's call timeout.
const PROMPTLY: Duration = Duration::from_secs(10);

/// A downstream client that answers: its name is Ada, its model says Paris, its root is
/// `file:///work`.
struct Answering;

impl ClientHandler for Answering {
    fn get_info(&self) -> ClientConfig {
        let capabilities = ClientCapabilities::builder()
            .enable_sampling()
            .enable_elicitation()
            .enable_roots()
            .build();
        ClientConfig::new(capabilities, Implementation::new("answering", "1"))
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("Paris"),
            "test-model".into(),
        ))
    }

    async fn create_elicitation(
        &self,
        _request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let mut result = ElicitResult::new(ElicitationAction::Accept);
        result.content = Some(json!({"name": "Ada"}));
        Ok(result)
    }

    #[allow(deprecated)] // roots: still part of the 2025 eras
    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ListRootsResult, McpError> {
        Ok(
            serde_json::from_value(json!({"roots": [{"uri": "file:///work", "name": "work"}]}))
                .unwrap(),
        )
    }
}

async fn asking_upstream(legacy: bool, stop: &CancellationToken) -> (Arc<Asking>, String) {
    let upstream = Arc::new(Asking::default());
    upstream
        .legacy
        .store(legacy, std::sync::atomic::Ordering::SeqCst);
    let url = upstream.serve(stop.clone()).await;
    (upstream, url)
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect()
}

#[tokio::test]
async fn a_session_client_is_asked_on_its_stream_whatever_era_the_upstream_speaks() {
    for legacy in [false, true] {
        let stop = CancellationToken::new();
        let (upstream, url) = asking_upstream(legacy, &stop).await;
        let gateway = support::start(&instance(&url, "")).await;
        // Waits for the tools, through a client of its own.
        let (lister, _) = connect(&gateway.url()).await;
        support::mcp_gateway::until_listed(&lister, "up_ask_all").await;
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(gateway.url()),
        );
        let client = Answering.serve(transport).await.unwrap();

        let all = client
            .call_tool(call("up_ask_all", json!({})))
            .await
            .unwrap();
        assert_eq!(all.is_error, Some(false), "legacy={legacy}: {all:?}");
        let text = text_of(&all);
        for said in ["name=Ada", "model=Paris", "roots=file:///work"] {
            assert!(text.contains(said), "legacy={legacy}: {text}");
        }
        let twice = client
            .call_tool(call("up_ask_twice", json!({})))
            .await
            .unwrap();
        assert_eq!(text_of(&twice), "name=Ada model=Paris", "legacy={legacy}");
        if !legacy {
            // A 2026-07-28 upstream hears, per request, exactly what the client declared.
            let declared = upstream.declared.lock().unwrap().last().cloned().unwrap();
            assert_eq!(
                declared,
                json!({"sampling": {}, "elicitation": {}, "roots": {}}),
                "{declared}"
            );
        }
        client.cancel().await.unwrap();
        lister.cancel().await.unwrap();
        gateway.running.shutdown.cancel();
        stop.cancel();
    }
}

#[tokio::test]
async fn a_session_client_that_cannot_answer_gets_the_missing_capability_never_a_hang() {
    for legacy in [false, true] {
        let stop = CancellationToken::new();
        let (_upstream, url) = asking_upstream(legacy, &stop).await;
        let gateway = support::start(&instance(&url, "")).await;
        // The support client declares no capability.
        let (client, _) = connect(&gateway.url()).await;
        support::mcp_gateway::until_listed(&client, "up_ask_name").await;
        let answer =
            tokio::time::timeout(PROMPTLY, client.call_tool(call("up_ask_name", json!({}))))
                .await
                .expect("answered promptly");
        if legacy {
            // A 2025-era upstream asked during its call and was refused; its call ends its way.
            let result = answer.unwrap();
            assert_eq!(result.is_error, Some(true), "{result:?}");
            assert!(
                text_of(&result).contains("asking the client failed"),
                "{result:?}"
            );
        } else {
            match answer {
                Err(rmcp::ServiceError::McpError(error)) => {
                    assert_eq!(error.code.0, -32021, "{error:?}");
                    assert_eq!(
                        error.data.unwrap()["requiredCapabilities"],
                        json!({"elicitation": {}})
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        client.cancel().await.unwrap();
        gateway.running.shutdown.cancel();
        stop.cancel();
    }
}

#[tokio::test]
async fn an_upstream_question_outside_any_call_is_refused() {
    let stop = CancellationToken::new();
    let (upstream, url) = asking_upstream(true, &stop).await;
    let gateway = support::start(&instance(&url, "")).await;
    let (lister, _) = connect(&gateway.url()).await;
    support::mcp_gateway::until_listed(&lister, "up_ask_name").await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(gateway.url()),
    );
    let client = Answering.serve(transport).await.unwrap();
    let named = client
        .call_tool(call("up_ask_name", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&named), "name=Ada");
    // The call is over: the same upstream session asking now reaches nobody.
    let refused = tokio::time::timeout(PROMPTLY, upstream.ask_outside_a_call())
        .await
        .expect("answered promptly");
    let error = refused.unwrap_err();
    assert!(error.contains("no call in progress"), "{error}");
    client.cancel().await.unwrap();
    lister.cancel().await.unwrap();
    gateway.running.shutdown.cancel();
    stop.cancel();
}

// === 2026-07-28 clients: rounds across replicas ===

fn config(dir: &Path, upstream: &str) -> std::path::PathBuf {
    let path = dir.join("manifold.toml");
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
allowed_origins = ["http://127.0.0.1:*"]
[storage]
data_dir = "{}"
{}"#,
        dir.display(),
        instance(upstream, "")
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_2026_client_answers_between_rounds_and_any_replica_resumes_the_call() {
    let stop = CancellationToken::new();
    let (upstream, url) = asking_upstream(false, &stop).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let env = [("MANIFOLD_SECRET_KEY", SECRET_KEY)];
    let replicas = [
        GatewayProcess::serve(&config, &env),
        GatewayProcess::serve(&config, &env),
    ];
    let (a, b) = (&replicas[0].url, &replicas[1].url);
    let client = reqwest::Client::new();
    let declared = json!({"elicitation": {}, "sampling": {}, "experimental": {"x": {}}});
    // The upstream's tools arrive after the gateway started.
    let mut first = Value::Null;
    for _ in 0..100 {
        let (_, answer) = send(&client, a, round("up_ask_twice", declared.clone(), None)).await;
        if answer.get("result").is_some() {
            first = answer;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert_eq!(
        result["inputRequests"]["name"]["method"],
        "elicitation/create"
    );
    let state = result["requestState"].as_str().unwrap().to_owned();
    assert!(
        !state.contains('|'),
        "the upstream's state is sealed: {state}"
    );
    // The upstream heard only the capabilities that can be relayed.
    assert_eq!(
        upstream.declared.lock().unwrap().last().cloned().unwrap(),
        json!({"elicitation": {}, "sampling": {}})
    );

    // Round two on the other replica.
    let answers = json!({"name": {"action": "accept", "content": {"name": "Ada"}}});
    let (status, second) = send(
        &client,
        b,
        round(
            "up_ask_twice",
            declared.clone(),
            Some((answers.clone(), &state)),
        ),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let result = &second["result"];
    assert_eq!(result["resultType"], "input_required", "{second}");
    assert_eq!(
        result["inputRequests"]["model"]["method"],
        "sampling/createMessage"
    );
    let state_two = result["requestState"].as_str().unwrap().to_owned();

    // A state altered, or brought to another tool, is refused and reaches no upstream.
    let calls_before = upstream.states.lock().unwrap().len();
    let mut tampered = state_two.clone();
    tampered.push('A');
    for (tool, state) in [
        ("up_ask_twice", tampered.as_str()),
        ("up_ask_name", state_two.as_str()),
    ] {
        let (status, refused) = send(
            &client,
            a,
            round(tool, declared.clone(), Some((answers.clone(), state))),
        )
        .await;
        assert_eq!(status, 200, "{refused}");
        assert_eq!(refused["error"]["code"], -32602, "{tool}: {refused}");
    }
    assert_eq!(upstream.states.lock().unwrap().len(), calls_before);

    // Round three back on the first replica completes the call.
    let (status, third) = send(
        &client,
        a,
        round(
            "up_ask_twice",
            declared.clone(),
            Some((json!({"model": sampled("Paris")}), &state_two)),
        ),
    )
    .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(
        third["result"]["content"][0]["text"], "name=Ada model=Paris",
        "{third}"
    );
    // The upstream got its own state back each round, unchanged.
    let states = upstream.states.lock().unwrap().clone();
    let tail: Vec<Option<String>> = states[states.len() - 3..].to_vec();
    assert_eq!(
        tail,
        [None, Some("1|".to_owned()), Some("2| name=Ada".to_owned())]
    );

    // A client that declared too little gets -32021 with HTTP 400.
    let (status, missing) = send(
        &client,
        b,
        round("up_ask_all", json!({"sampling": {}}), None),
    )
    .await;
    assert_eq!(status, 400, "{missing}");
    assert_eq!(missing["error"]["code"], -32021, "{missing}");
    stop.cancel();
}

#[tokio::test]
async fn a_2026_client_answers_a_2025_upstreams_mid_call_questions_while_the_gateway_holds_the_call()
 {
    let stop = CancellationToken::new();
    let (upstream, url) = asking_upstream(true, &stop).await;
    let gateway = support::start(&instance(&url, "")).await;
    let (lister, _) = connect(&gateway.url()).await;
    support::mcp_gateway::until_listed(&lister, "up_ask_twice").await;
    let client = reqwest::Client::new();
    let url = gateway.url();
    let declared = json!({"elicitation": {}, "sampling": {}});
    let retry = |answers: Option<Value>, state: &str| {
        let mut body = round("up_ask_twice", declared.clone(), Some((json!({}), state)));
        let mut parsed: Value = serde_json::from_str(&body.0).unwrap();
        match answers {
            Some(answers) => parsed["params"]["inputResponses"] = answers,
            None => {
                parsed["params"]
                    .as_object_mut()
                    .unwrap()
                    .remove("inputResponses");
            }
        }
        body.0 = parsed.to_string();
        body
    };
    let asked = |answer: &Value, method: &str| -> String {
        let result = &answer["result"];
        assert_eq!(result["resultType"], "input_required", "{answer}");
        assert_eq!(
            result["inputRequests"]["input"]["method"], method,
            "{answer}"
        );
        let state = result["requestState"].as_str().unwrap().to_owned();
        assert!(
            !state.contains("manifold-held:"),
            "the held call's state is sealed: {state}"
        );
        state
    };

    // The upstream asks mid-call: the round ends with its question, the call held upstream.
    let (_, first) = send(&client, &url, round("up_ask_twice", declared.clone(), None)).await;
    let state = asked(&first, "elicitation/create");
    // A retry without the answer is asked again.
    let (_, again) = send(&client, &url, retry(None, &state)).await;
    let state = asked(&again, "elicitation/create");
    let name = json!({"input": {"action": "accept", "content": {"name": "Ada"}}});
    // A retry asking something else does not resume the call, which stays held.
    let (body, headers) = retry(Some(name.clone()), &state);
    let mut other: Value = serde_json::from_str(&body).unwrap();
    other["params"]["arguments"] = json!({"note": "something else"});
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, _, messages, text) = post(&client, &url, &headers, &other.to_string()).await;
    let refused = messages
        .iter()
        .find(|m| m["id"] == 7)
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    assert!(refused.to_string().contains("same arguments"), "{refused}");
    // The answer resumes the held call, which asks its second question.
    let (_, second) = send(&client, &url, retry(Some(name.clone()), &state)).await;
    let state_two = asked(&second, "sampling/createMessage");
    let (status, done) = send(
        &client,
        &url,
        retry(Some(json!({"input": sampled("Paris")})), &state_two),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "name=Ada model=Paris",
        "{done}"
    );
    // One upstream call served all four rounds.
    assert_eq!(upstream.declared.lock().unwrap().len(), 1);
    // A round already answered names a call no longer held.
    let (body, headers) = retry(Some(name), &state);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, _, messages, text) = post(&client, &url, &headers, &body).await;
    let stale = messages
        .iter()
        .find(|m| m["id"] == 7)
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(stale["result"]["isError"], true, "{stale}");
    let text = stale["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("no longer waiting"), "{text}");
    lister.cancel().await.unwrap();
    gateway.running.shutdown.cancel();
    stop.cancel();
}

#[tokio::test]
async fn an_upstreams_question_passes_the_redaction_rules_in_both_eras() {
    const SECRET: &str = "AKIAIOSFODNN7EXAMPLE";
    let stop = CancellationToken::new();
    let (_upstream, url) = asking_upstream(false, &stop).await;
    let gateway = support::start(&instance(&url, "")).await;
    let (lister, _) = connect(&gateway.url()).await;
    support::mcp_gateway::until_listed(&lister, "up_ask_leaky").await;

    // 2026-07-28: the round the client gets is masked (its state is left as it is).
    let client = reqwest::Client::new();
    let (status, round_answer) = send(
        &client,
        &gateway.url(),
        round("up_ask_leaky", json!({"elicitation": {}}), None),
    )
    .await;
    assert_eq!(status, 200, "{round_answer}");
    let message = round_answer["result"]["inputRequests"]["name"]["params"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.starts_with("Confirm with key "), "{message}");
    assert!(!message.contains(SECRET), "{message}");

    // A 2025 session: the question asked on its stream is masked too.
    struct Seeing(tokio::sync::mpsc::UnboundedSender<String>);
    impl ClientHandler for Seeing {
        fn get_info(&self) -> ClientConfig {
            let capabilities = ClientCapabilities::builder().enable_elicitation().build();
            ClientConfig::new(capabilities, Implementation::new("seeing", "1"))
        }
        async fn create_elicitation(
            &self,
            request: ElicitRequestParams,
            _context: RequestContext<RoleClient>,
        ) -> Result<ElicitResult, McpError> {
            let seen = serde_json::to_value(&request).unwrap()["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let _ = self.0.send(seen);
            let mut result = ElicitResult::new(ElicitationAction::Accept);
            result.content = Some(json!({"name": "Ada"}));
            Ok(result)
        }
    }
    let (seen, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(gateway.url()),
    );
    let session = Seeing(seen).serve(transport).await.unwrap();
    let answered = session
        .call_tool(call("up_ask_leaky", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&answered), "name=Ada");
    let asked = heard.recv().await.unwrap();
    assert!(asked.starts_with("Confirm with key "), "{asked}");
    assert!(!asked.contains(SECRET), "{asked}");
    session.cancel().await.unwrap();
    lister.cancel().await.unwrap();
    gateway.running.shutdown.cancel();
    stop.cancel();
}
