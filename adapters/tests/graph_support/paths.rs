//! Request paths as the Graph OpenAPI subset names them: `/me/…` is `/users/{user-id}/…`,
//! path-addressed items (`root:/a/b:`) are `items/{driveItem-id}`, `search(q='…')` is the
//! templated function, and concrete segments match `{…}` templates (literal segments win).

use serde_json::Value;

/// Where the contract files live, next to the repository checkout.
pub fn contract(name: &str) -> Value {
    let path = format!(
        "{}/../../shared/contracts/microsoft-graph/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// True for upload-session chunk URLs: pre-authorized storage URLs Graph hands out, not Graph
/// API paths, so they are not in the OpenAPI description.
pub fn is_upload_chunk(path: &str) -> bool {
    path.starts_with("/_upload/")
}

/// The segments of a request path in the OpenAPI subset's vocabulary (still concrete ids).
pub fn normalise(path: &str) -> Vec<String> {
    let mut segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    if segments.first().map(String::as_str) == Some("me") {
        segments.splice(0..1, ["users".to_owned(), "{user-id}".to_owned()]);
    }
    // `root:/a/b:` arrives as the segments `root:`, `a`, `b:`; relative to a folder it is
    // `items/{id}:/a/b:` (segments `items`, `{id}:`, `a`, `b:`). Either names one drive item.
    let opening = (0..segments.len()).find(|&i| {
        segments[i] == "root:"
            || (i > 0 && segments[i - 1] == "items" && segments[i].ends_with(':'))
    });
    if let Some(open) = opening {
        let start = if segments[open] == "root:" {
            open
        } else {
            open - 1
        };
        let end = (open + 1..segments.len())
            .find(|&i| segments[i].ends_with(':'))
            .unwrap_or_else(|| panic!("unterminated path-addressed item in {path}"));
        segments.splice(
            start..=end,
            ["items".to_owned(), "{driveItem-id}".to_owned()],
        );
    }
    for segment in &mut segments {
        if segment.starts_with("search(q=") {
            *segment = "search(q='{q}')".to_owned();
        }
    }
    segments
}

/// The OpenAPI path key (e.g. `/users/{user-id}/messages/{message-id}`) a request path is an
/// instance of, preferring the key with the most literal segments (`delta()` over `{id}`).
pub fn template(spec: &Value, path: &str) -> Option<String> {
    let segments = normalise(path);
    let paths = spec["paths"].as_object()?;
    let mut best: Option<(usize, &String)> = None;
    for key in paths.keys() {
        let parts: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let fits = parts.iter().zip(&segments).all(|(part, segment)| {
            if part.starts_with('{') && part.ends_with('}') {
                true
            } else {
                literal += 1;
                part == segment
            }
        });
        if fits && best.is_none_or(|(score, _)| literal > score) {
            best = Some((literal, key));
        }
    }
    best.map(|(_, key)| key.clone())
}

#[test]
fn normalises_the_graph_address_forms() {
    let spec = contract("graph-v1.0-connector-subset.openapi.json");
    let cases = [
        (
            "/me/messages/AAMk1/attachments",
            "/users/{user-id}/messages/{message-id}/attachments",
        ),
        (
            "/me/mailFolders/inbox/messages",
            "/users/{user-id}/mailFolders/{mailFolder-id}/messages",
        ),
        (
            "/drives/b!x/root:/Reports/plan.docx:",
            "/drives/{drive-id}/items/{driveItem-id}",
        ),
        (
            "/drives/b!x/root:/Reports:/children",
            "/drives/{drive-id}/items/{driveItem-id}/children",
        ),
        (
            "/drives/b!x/root:/a%2Fb.txt:/content",
            "/drives/{drive-id}/items/{driveItem-id}/content",
        ),
        (
            "/drives/b!x/root/children",
            "/drives/{drive-id}/root/children",
        ),
        (
            "/drives/b!x/items/01A:/big.txt:/createUploadSession",
            "/drives/{drive-id}/items/{driveItem-id}/createUploadSession",
        ),
        (
            "/drives/b!x/search(q='plan')",
            "/drives/{drive-id}/search(q='{q}')",
        ),
        (
            "/users/u1/messages/delta()",
            "/users/{user-id}/messages/delta()",
        ),
        (
            "/me/messages/m1/$value",
            "/users/{user-id}/messages/{message-id}/$value",
        ),
        ("/sites/getAllSites()", "/sites/getAllSites()"),
    ];
    for (path, expected) in cases {
        assert_eq!(template(&spec, path).as_deref(), Some(expected), "{path}");
    }
    assert_eq!(template(&spec, "/me/nope"), None);
    assert_eq!(template(&spec, "/me/messages/m1/unknownAction"), None);
}
