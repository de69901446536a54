//! Least privilege against Microsoft's permission map
//! (shared/contracts/microsoft-graph/graph-v1.0-connector-permissions.json): for every Graph
//! request a tool sends, the tool's declared scopes must include the least-privileged
//! DelegatedWork permission the map lists for it, or a stronger one this file documents why.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod graph_support;

use std::collections::{BTreeSet, HashSet};

use graph_support::paths;
use serde_json::Value;

/// Where a tool declares a stronger scope than the map's least-privileged one:
/// (least-privileged permission in the map, the declared scope standing in for it, why).
const STRONGER: &[(&str, &str, &str)] = &[
    (
        "Mail.ReadBasic",
        "Mail.Read",
        "Mail.ReadBasic omits body and bodyPreview, which list_messages and search_messages return",
    ),
    (
        "Files.Read",
        "Files.Read.All",
        "Files.Read reaches only the signed-in user's own OneDrive; SharePoint site libraries \
         and files shared with the user need Files.Read.All",
    ),
    (
        "Files.ReadWrite",
        "Files.ReadWrite.All",
        "Files.ReadWrite reaches only the user's own OneDrive; uploads into SharePoint libraries \
         need Files.ReadWrite.All",
    ),
    (
        "Mail.Read",
        "Chat.Read",
        "POST /search/query needs the permission of the entity type searched; the map names \
         Mail.Read (message search), but chatMessage search needs Chat.Read and \
         ChannelMessage.Read.All",
    ),
    (
        "Mail.Read",
        "Files.Read.All",
        "POST /search/query for driveItem/listItem/site needs Files.Read.All and Sites.Read.All, \
         not the Mail.Read the map names for message search",
    ),
];

/// Operations the map has no entry for: (method and OpenAPI path, the permission Graph's
/// documentation page for it names as least privileged, which page).
const UNMATCHED: &[(&str, &str, &str)] = &[(
    "GET /users/{user-id}/messages/{message-id}/attachments/{attachment-id}",
    "Mail.Read",
    "'Get attachment' (attachment-get) lists Mail.Read, as for the attachments collection",
)];

/// (least-privileged, all) DelegatedWork permissions the map lists for one operation.
fn permissions(map: &Value, method: &str, key: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let endpoint = map["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == method && e["path"] == key)
        .unwrap_or_else(|| panic!("{method} {key} is not in the permission map"));
    let (mut least, mut all) = (BTreeSet::new(), BTreeSet::new());
    for grants in endpoint["matched"].as_object().unwrap().values() {
        for grant in grants.as_array().unwrap() {
            let name = grant["permission"].as_str().unwrap().to_owned();
            let listed = |field: &str| {
                grant[field]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == "DelegatedWork")
            };
            if listed("least_privileged_for") {
                least.insert(name.clone());
            }
            if listed("schemes") {
                all.insert(name);
            }
        }
    }
    if least.is_empty() {
        let operation = format!("{method} {key}");
        let (_, permission, _) = UNMATCHED
            .iter()
            .find(|(op, _, _)| *op == operation)
            .unwrap_or_else(|| panic!("{operation}: the map lists no permission; document one"));
        least.insert((*permission).to_owned());
        all.insert((*permission).to_owned());
    }
    (least, all)
}

#[tokio::test]
async fn every_tool_declares_the_least_privileged_scopes_it_needs() {
    let spec = paths::contract("graph-v1.0-connector-subset.openapi.json");
    let map = paths::contract("graph-v1.0-connector-permissions.json");
    let env = graph_support::start().await;
    let recorded = env.run_every_tool().await;
    let (mut used_stronger, mut used_unmatched) = (HashSet::new(), HashSet::new());
    let mut failures = Vec::new();
    for call in &recorded {
        let scopes: BTreeSet<&str> = call.scopes.iter().map(String::as_str).collect();
        assert!(
            !scopes.is_empty(),
            "{}.{} declares no scopes",
            call.kind,
            call.tool
        );
        for request in &call.requests {
            let method = request["method"].as_str().unwrap();
            let path = request["path"].as_str().unwrap();
            if paths::is_upload_chunk(path) {
                continue; // pre-authorized upload URL: no Graph permission applies
            }
            let key = paths::template(&spec, path).expect("graph_contract checks the paths");
            let (least, all) = permissions(&map, method, &key);
            if UNMATCHED
                .iter()
                .any(|(op, _, _)| *op == format!("{method} {key}"))
            {
                used_unmatched.insert(format!("{method} {key}"));
            }
            let what = format!(
                "{}.{} ({method} {key}, scopes {scopes:?})",
                call.kind, call.tool
            );
            // The declared scopes must grant the request at all …
            if !all.iter().any(|p| scopes.contains(p.as_str())) {
                failures.push(format!(
                    "{what}: none of the permissions {all:?} is declared"
                ));
                continue;
            }
            // … and be the least-privileged one, or a documented stronger stand-in for it.
            if least.iter().any(|p| scopes.contains(p.as_str())) {
                continue;
            }
            let stand_in = STRONGER
                .iter()
                .position(|(weak, strong, _)| least.contains(*weak) && scopes.contains(strong));
            match stand_in {
                Some(index) => {
                    used_stronger.insert(index);
                }
                None => failures.push(format!(
                    "{what}: least privileged is {least:?}; declare it or document the stronger scope"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for (index, (weak, strong, _)) in STRONGER.iter().enumerate() {
        assert!(
            used_stronger.contains(&index),
            "exception {weak} -> {strong} is no longer needed: remove it"
        );
    }
    for (operation, _, _) in UNMATCHED {
        assert!(used_unmatched.contains(*operation), "{operation} is unused");
    }
}
