//! `manifold stdio` serves the same handler over stdin/stdout: a client that launches it as a
//! subprocess initializes, lists and calls tools, and gets JSON-RPC errors for bad lines.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
};

use serde_json::{Value, json};

#[test]
fn stdio_serves_initialize_list_and_call() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = {:?}\n[adapters.linear]\nkind = \"linear\"\nsandbox = true\n\
             [adapters.linear.credentials]\ntoken = \"lin_api_sandbox_alice\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(manifold_bin())
        .args(["stdio", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Sends one line; a request's answer is the next line read (notifications get none).
    let mut exchange = |message: Value| -> Value {
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
        if message.get("id").is_none() {
            return Value::Null;
        }
        let line = lines.next().unwrap().unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let init = exchange(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "manifold");
    exchange(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let list = exchange(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 9);
    let call = exchange(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "linear_list_teams", "arguments": {}}}));
    assert_eq!(call["result"]["isError"], false, "{call}");
    assert!(
        call["result"]["structuredContent"]["teams"].is_array(),
        "{call}"
    );
    let unknown = exchange(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "nope", "arguments": {}}}));
    assert_eq!(unknown["error"]["code"], -32602);
    // A line with a key repeated at any depth is a parse error and reaches no stage; the lines
    // around it are served as usual.
    let mut refused = |line: String| -> Value {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()
    };
    for depth in 0..24 {
        let mut arguments = r#"{"k":1,"k":2}"#.to_owned();
        for level in 0..depth {
            arguments = format!(r#"{{"n{level}":{arguments}}}"#);
        }
        let key = if depth % 2 == 0 {
            r#""name""#
        } else {
            r#""\u006eame""#
        };
        for line in [
            format!(
                r#"{{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{{"name":"linear_list_teams","arguments":{arguments}}}}}"#
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{{"name":"linear_list_teams",{key}:"x","arguments":{{}}}}}}"#
            ),
        ] {
            let answer = refused(line.clone());
            assert_eq!(answer["error"]["code"], -32700, "{line} -> {answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains("duplicate key"), "{message}");
        }
    }
    let after = refused(
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
               "params": {"name": "linear_list_teams", "arguments": {}}})
        .to_string(),
    );
    assert_eq!(after["id"], 5);
    assert_eq!(after["result"]["isError"], false, "{after}");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "stdio exits cleanly when stdin closes: {status}"
    );
}

/// The `manifold` binary under test: `MANIFOLD_BIN` when set (a checkout sharing its target
/// directory with others points it at its own build), else the one cargo built for this test.
fn manifold_bin() -> String {
    std::env::var("MANIFOLD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_manifold").to_owned())
}
