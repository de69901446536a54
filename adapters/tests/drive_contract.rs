//! Contract tests against Google's Discovery document for Drive v3
//! (shared/contracts/google-drive/drive.v3.discovery.json):
//! - every request the adapter sent (as the emulator recorded it) is a Drive method: its HTTP
//!   method and path (`resources.*.methods.*`, or `mediaUpload.protocols.simple.path` for
//!   uploads), its parameters' names, locations, types and enums, its required parameters, and
//!   the names in its `fields` selection;
//! - each tool's declared OAuth scope is one every method it calls accepts;
//! - the emulator's answers (File, FileList, Permission) validate against the document's schemas,
//!   converted to JSON Schema as contracts/README.md explains, with unknown properties refused;
//! - its error answers have Google's error shape.
#![allow(clippy::expect_used)]

mod drive_support;

use std::collections::BTreeSet;

use drive_support::ALICE;
use manifold_adapters::{AdapterKind, drive::DriveKind};
use serde_json::{Map, Value, json};

fn discovery() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/contracts/google-drive/drive.v3.discovery.json"
    );
    let text = std::fs::read_to_string(path)
        .expect("Drive's discovery document is checked out next to the repo");
    serde_json::from_str(&text).expect("discovery JSON")
}

/// Every method of every resource (nested resources included).
fn methods(doc: &Value) -> Vec<Value> {
    fn walk(resources: &Value, out: &mut Vec<Value>) {
        for resource in resources.as_object().into_iter().flat_map(|r| r.values()) {
            for method in resource["methods"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                out.push(method.clone());
            }
            if resource.get("resources").is_some() {
                walk(&resource["resources"], out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&doc["resources"], &mut out);
    out
}

/// Matches a concrete path against a template with `{param}` segments.
fn matches_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

/// The Discovery method a recorded request is an instance of.
fn method_of<'m>(methods: &'m [Value], request: &Value) -> &'m Value {
    let http = request["method"].as_str().expect("method");
    let path = request["path"].as_str().expect("path");
    let found: Vec<&Value> = if let Some(relative) = path.strip_prefix("/drive/v3/") {
        methods
            .iter()
            .filter(|m| m["httpMethod"] == http)
            .filter(|m| matches_template(m["path"].as_str().unwrap_or_default(), relative))
            .collect()
    } else {
        methods
            .iter()
            .filter(|m| m["httpMethod"] == http)
            .filter(|m| {
                m.pointer("/mediaUpload/protocols/simple/path")
                    .and_then(Value::as_str)
                    .is_some_and(|upload| matches_template(upload, path))
            })
            .collect()
    };
    assert_eq!(
        found.len(),
        1,
        "{http} {path} is not exactly one Drive method: {found:?}"
    );
    found[0]
}

/// A `fields` selection as name paths (`files/owners/emailAddress`).
fn field_paths(text: &str) -> Vec<Vec<String>> {
    fn parse(chars: &[char], at: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        loop {
            let start = *at;
            while *at < chars.len() && !matches!(chars[*at], ',' | '(' | ')') {
                *at += 1;
            }
            let name: String = chars[start..*at].iter().collect();
            let mut path = prefix.to_vec();
            path.extend(name.split('/').map(str::to_owned));
            if *at < chars.len() && chars[*at] == '(' {
                *at += 1;
                parse(chars, at, &path, out);
                *at += 1; // ')'
            } else {
                out.push(path);
            }
            if *at < chars.len() && chars[*at] == ',' {
                *at += 1;
            } else {
                return;
            }
        }
    }
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    parse(&chars, &mut 0, &[], &mut out);
    out
}

/// Whether `path` names properties of schema `name` (following `$ref`s and arrays).
fn schema_has(doc: &Value, name: &str, path: &[String]) -> bool {
    let mut schema = &doc["schemas"][name];
    for segment in path {
        while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            schema = &doc["schemas"][reference];
        }
        if schema["type"] == "array" {
            schema = &schema["items"];
            while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                schema = &doc["schemas"][reference];
            }
        }
        if schema.get("additionalProperties").is_some() && schema.get("properties").is_none() {
            return true; // a map: any key
        }
        match schema.pointer(&format!("/properties/{segment}")) {
            Some(inner) => schema = inner,
            None => return false,
        }
    }
    true
}

/// Checks one recorded request against its Discovery method; returns the method's id.
fn check_request(doc: &Value, methods: &[Value], request: &Value) -> String {
    let method = method_of(methods, request);
    let id = method["id"].as_str().expect("id").to_owned();
    let parameters = &method["parameters"];
    let query = request["query"].as_object().cloned().unwrap_or_default();
    let path = request["path"].as_str().expect("path");
    for (name, value) in &query {
        let spec = parameters
            .get(name)
            .or_else(|| doc["parameters"].get(name))
            .unwrap_or_else(|| {
                panic!("{id}: `{name}` is not a parameter of the method or a global one")
            });
        assert_eq!(
            spec["location"], "query",
            "{id}: `{name}` is not a query parameter"
        );
        let value = value.as_str().expect("query values are strings");
        match spec["type"].as_str() {
            Some("boolean") => assert!(["true", "false"].contains(&value), "{id}: {name}={value}"),
            Some("integer") => {
                let n: i64 = value
                    .parse()
                    .unwrap_or_else(|_| panic!("{id}: {name}={value}"));
                for (bound, ok) in [("minimum", n >= 0), ("maximum", true)] {
                    if let Some(limit) = spec[bound].as_str().and_then(|s| s.parse::<i64>().ok()) {
                        let within = if bound == "minimum" {
                            n >= limit
                        } else {
                            n <= limit
                        };
                        assert!(within && ok, "{id}: {name}={value} outside {bound} {limit}");
                    }
                }
            }
            _ => {}
        }
        if let Some(allowed) = spec["enum"].as_array() {
            assert!(
                allowed.iter().any(|a| a == value),
                "{id}: {name}={value} not in {allowed:?}"
            );
        }
    }
    for (name, spec) in parameters.as_object().into_iter().flatten() {
        if spec["required"] == true && spec["location"] == "query" {
            assert!(query.contains_key(name), "{id}: required `{name}` missing");
        }
    }
    // Path parameters: the template's placeholders are the method's path parameters.
    let template = if path.starts_with("/upload/") {
        method
            .pointer("/mediaUpload/protocols/simple/path")
            .and_then(Value::as_str)
            .expect("upload path")
            .to_owned()
    } else {
        method["path"].as_str().expect("path").to_owned()
    };
    for segment in template.split('/').filter(|s| s.starts_with('{')) {
        let name = segment.trim_matches(|c| c == '{' || c == '}' || c == '+');
        assert_eq!(parameters[name]["location"], "path", "{id}: {name}");
    }
    if path.starts_with("/upload/") {
        let kind = query
            .get("uploadType")
            .and_then(Value::as_str)
            .expect("uploadType");
        assert_eq!(kind, "multipart", "{id}");
        assert_eq!(
            method.pointer("/mediaUpload/protocols/simple/multipart"),
            Some(&json!(true))
        );
        assert!(
            request["content_type"]
                .as_str()
                .expect("type")
                .starts_with("multipart/related; boundary=")
        );
    }
    if let Some(fields) = query.get("fields").and_then(Value::as_str) {
        let response = method
            .pointer("/response/$ref")
            .and_then(Value::as_str)
            .expect("a response schema");
        for field in field_paths(fields) {
            assert!(
                schema_has(doc, response, &field),
                "{id}: `fields` names {} which {response} lacks",
                field.join("/")
            );
        }
    }
    if query.get("alt").and_then(Value::as_str) == Some("media") {
        assert_eq!(method["supportsMediaDownload"], true, "{id}");
    }
    id
}

#[tokio::test]
async fn every_request_and_scope_matches_the_discovery_document() {
    let doc = discovery();
    let methods = methods(&doc);
    let known_scopes: Vec<&String> = doc["auth"]["oauth2"]["scopes"]
        .as_object()
        .expect("scopes")
        .keys()
        .collect();
    let env = drive_support::start().await;
    let tools = env.adapter.tools().current();
    let calls = [
        ("list_folder", json!({})),
        (
            "list_folder",
            json!({ "folder": "/Archive", "page_size": 20 }),
        ),
        (
            "search_files",
            json!({ "query": "ledger", "kind": "document", "folder": "/Projects" }),
        ),
        (
            "search_files",
            json!({ "query": "log", "match": "name", "page_size": 5 }),
        ),
        ("get_file", json!({ "file": "/Projects/Budget 2026.xlsx" })),
        ("read_file", json!({ "file": "/Projects/Q3 Plan.docx" })),
        (
            "read_file",
            json!({ "file": "/Projects/Forecast", "max_chars": 100 }),
        ),
        ("read_file", json!({ "file": "/Projects/Roadmap" })),
        ("read_file", json!({ "file": "/Projects/All-hands March" })),
        ("create_folder", json!({ "name": "Contract" })),
        (
            "upload_file",
            json!({ "name": "c.txt", "content": "contract", "folder": "/Contract", "description": "d" }),
        ),
        (
            "move_file",
            json!({ "file": "/Contract/c.txt", "new_parent": "root", "new_name": "c2.txt" }),
        ),
        (
            "share_file",
            json!({ "file": "/c2.txt", "email": "bob@example.com", "role": "reader", "message": "hi" }),
        ),
        (
            "share_file",
            json!({ "file": "/c2.txt", "email": "carol@example.com", "role": "writer", "notify": false }),
        ),
        ("delete_file", json!({ "file": "/c2.txt" })),
        (
            "delete_file",
            json!({ "file": "/Contract", "permanently": true }),
        ),
    ];
    let mut used = BTreeSet::new();
    for (tool, args) in calls {
        let spec = tools.iter().find(|t| t.name == tool).expect("tool");
        for scope in &spec.scopes {
            assert!(
                known_scopes.contains(&scope),
                "{tool}: {scope} is not a Drive scope"
            );
        }
        env.clear_requests().await;
        env.call(tool, args.clone())
            .await
            .unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
        let requests = env.requests().await;
        assert!(!requests.is_empty(), "{tool} sent nothing");
        for request in &requests {
            let id = check_request(&doc, &methods, request);
            let method = methods
                .iter()
                .find(|m| m["id"] == id.as_str())
                .expect("method");
            let accepted = method["scopes"].as_array().expect("scopes");
            for scope in &spec.scopes {
                assert!(
                    accepted.iter().any(|s| s == scope.as_str()),
                    "{tool} declares {scope}, which {id} does not accept ({accepted:?})"
                );
            }
            used.insert(id);
        }
    }
    let expected: BTreeSet<String> = [
        "drive.files.list",
        "drive.files.get",
        "drive.files.export",
        "drive.files.create",
        "drive.files.update",
        "drive.files.delete",
        "drive.permissions.create",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(used, expected);
}

/// Discovery schemas as JSON Schema: `$ref: "File"` → `#/definitions/File`, Discovery-only
/// keys dropped, and (stricter than Discovery) no properties it does not list.
fn json_schema(doc: &Value, root: &str) -> Value {
    fn convert(schema: &Value) -> Value {
        let Some(map) = schema.as_object() else {
            return schema.clone();
        };
        let mut out = Map::new();
        for (key, value) in map {
            match key.as_str() {
                "id" | "annotations" | "location" | "repeated" => {}
                "required" if value.is_boolean() => {}
                "type" if value == "any" => {}
                "$ref" => {
                    out.insert(
                        key.clone(),
                        json!(format!(
                            "#/definitions/{}",
                            value.as_str().unwrap_or_default()
                        )),
                    );
                }
                "properties" => {
                    let properties: Map<String, Value> = value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(name, inner)| (name.clone(), convert(inner)))
                        .collect();
                    out.insert(key.clone(), Value::Object(properties));
                }
                "items" | "additionalProperties" => {
                    out.insert(key.clone(), convert(value));
                }
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        if out.contains_key("properties") && !out.contains_key("additionalProperties") {
            out.insert("additionalProperties".into(), json!(false));
        }
        Value::Object(out)
    }
    let definitions: Map<String, Value> = doc["schemas"]
        .as_object()
        .expect("schemas")
        .iter()
        .map(|(name, schema)| (name.clone(), convert(schema)))
        .collect();
    json!({ "definitions": definitions, "$ref": format!("#/definitions/{root}") })
}

fn assert_valid(doc: &Value, schema: &str, value: &Value, what: &str) {
    let validator = jsonschema::validator_for(&json_schema(doc, schema)).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} is not a valid {schema}: {errors:?}\n{value}"
    );
}

#[tokio::test]
async fn emulator_answers_validate_against_the_discovery_schemas() {
    let doc = discovery();
    let env = drive_support::start().await;
    let drive = |path: &str| env.url(&format!("/drive/v3{path}"));
    let get = |url: String| {
        let http = env.http.clone();
        async move {
            let response = http.get(url).bearer_auth(ALICE).send().await.expect("get");
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.expect("json")
        }
    };
    let every_page =
        "supportsAllDrives=true&includeItemsFromAllDrives=true&corpora=allDrives&pageSize=1000";
    for fields in ["*", "nextPageToken,files(*)", ""] {
        let url = format!("{}?{every_page}&fields={fields}", drive("/files"));
        let list = get(url).await;
        assert_valid(
            &doc,
            "FileList",
            &list,
            &format!("files.list fields={fields}"),
        );
        assert!(
            list["files"].as_array().expect("files").len() > 170,
            "every seeded item"
        );
    }
    let all = get(format!("{}?{every_page}&fields=files(id)", drive("/files"))).await;
    let ids: Vec<String> = all["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_owned())
        .collect();
    let mut kinds = BTreeSet::new();
    for id in ids.iter().chain([&"root".to_owned()]) {
        let file = get(format!(
            "{}?fields=*&supportsAllDrives=true",
            drive(&format!("/files/{id}"))
        ))
        .await;
        assert_valid(&doc, "File", &file, &format!("files.get {id}"));
        kinds.insert(file["mimeType"].as_str().expect("mime").to_owned());
        let default = get(format!(
            "{}?supportsAllDrives=true",
            drive(&format!("/files/{id}"))
        ))
        .await;
        assert_eq!(
            default
                .as_object()
                .expect("object")
                .keys()
                .cloned()
                .collect::<BTreeSet<_>>(),
            ["id", "kind", "mimeType", "name"].map(str::to_owned).into(),
            "Drive's default fields"
        );
    }
    assert!(kinds.len() >= 10, "{kinds:?}");

    let created: Value = env
        .http
        .post(format!(
            "{}?fields=*&supportsAllDrives=true",
            drive("/files")
        ))
        .bearer_auth(ALICE)
        .json(
            &json!({ "name": "Contract folder", "mimeType": "application/vnd.google-apps.folder" }),
        )
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_valid(&doc, "File", &created, "files.create");
    let folder = created["id"].as_str().expect("id");
    let body = format!(
        "--xx\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx--\r\n",
        json!({ "name": "hello.txt", "parents": [folder] })
    );
    let uploaded: Value = env
        .http
        .post(
            env.url("/upload/drive/v3/files?uploadType=multipart&fields=*&supportsAllDrives=true"),
        )
        .bearer_auth(ALICE)
        .header("content-type", "multipart/related; boundary=xx")
        .body(body)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    assert_valid(&doc, "File", &uploaded, "files.create (upload)");
    assert_eq!(uploaded["size"], "5");
    let file = uploaded["id"].as_str().expect("id");
    let updated: Value = env
        .http
        .patch(format!(
            "{}?fields=*&supportsAllDrives=true",
            drive(&format!("/files/{file}"))
        ))
        .bearer_auth(ALICE)
        .json(&json!({ "name": "renamed.txt", "description": "x" }))
        .send()
        .await
        .expect("update")
        .json()
        .await
        .expect("json");
    assert_valid(&doc, "File", &updated, "files.update");
    assert_eq!(updated["version"], "2");
    for fields in ["*", ""] {
        let permission: Value = env
            .http
            .post(format!(
                "{}?fields={fields}&sendNotificationEmail=false",
                drive(&format!("/files/{file}/permissions"))
            ))
            .bearer_auth(ALICE)
            .json(&json!({ "type": "user", "role": "reader", "emailAddress": "bob@example.com" }))
            .send()
            .await
            .expect("permission")
            .json()
            .await
            .expect("json");
        assert_valid(&doc, "Permission", &permission, "permissions.create");
    }
}

#[tokio::test]
async fn emulator_errors_have_googles_shape() {
    let env = drive_support::start().await;
    let shape = json!({
        "type": "object", "required": ["error"],
        "properties": { "error": {
            "type": "object", "required": ["code", "message", "errors"],
            "properties": {
                "code": { "type": "integer" }, "message": { "type": "string" },
                "errors": { "type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["message", "domain", "reason"],
                    "properties": { "message": { "type": "string" }, "domain": { "type": "string" }, "reason": { "type": "string" },
                                    "location": { "type": "string" }, "locationType": { "type": "string" } } } } } } } });
    let validator = jsonschema::validator_for(&shape).expect("compiles");
    let scoped = env
        .token(
            "alice",
            &["https://www.googleapis.com/auth/drive.metadata.readonly"],
        )
        .await;
    let cases = [
        ("/drive/v3/files/nope", Some(ALICE), 404, "notFound"),
        ("/drive/v3/files", Some("ya29.forged"), 401, "authError"),
        ("/drive/v3/files", None, 401, "required"),
        ("/drive/v3/files?q=name%20%3D", Some(ALICE), 400, "invalid"),
        (
            "/drive/v3/files?bogus=1",
            Some(ALICE),
            400,
            "invalidParameter",
        ),
        (
            "/drive/v3/files?fields=files(nope)",
            Some(ALICE),
            400,
            "invalidParameter",
        ),
        (
            "/drive/v3/files?q=fullText%20contains%20%27x%27&orderBy=name",
            Some(ALICE),
            400,
            "invalid",
        ),
        (
            "/drive/v3/files?corpora=allDrives",
            Some(ALICE),
            400,
            "invalid",
        ),
        (
            "/drive/v3/files/root?alt=media",
            Some(ALICE),
            403,
            "fileNotDownloadable",
        ),
        (
            "/drive/v3/files/root/export?mimeType=text/plain",
            Some(ALICE),
            403,
            "fileNotExportable",
        ),
        (
            "/drive/v3/files/root/export?mimeType=text/plain",
            Some(scoped.as_str()),
            403,
            "insufficientPermissions",
        ),
    ];
    for (path, token, status, reason) in cases {
        let mut request = env.http.get(env.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status().as_u16(), status, "{path}");
        if status == 401 {
            assert!(response.headers().contains_key("www-authenticate"));
        }
        let body: Value = response.json().await.expect("json");
        assert!(validator.is_valid(&body), "{path}: {body}");
        assert_eq!(body["error"]["code"], status);
        assert_eq!(
            body["error"]["errors"][0]["reason"], reason,
            "{path}: {body}"
        );
    }
    // A shared drive item is invisible without supportsAllDrives.
    let listed: Value = env
        .http
        .get(env.url("/drive/v3/files?q=name%20%3D%20%27Oncall.md%27&corpora=allDrives&includeItemsFromAllDrives=true&supportsAllDrives=true&fields=files(id)"))
        .bearer_auth(ALICE)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let id = listed["files"][0]["id"].as_str().expect("id");
    let hidden = env
        .http
        .get(env.url(&format!("/drive/v3/files/{id}")))
        .bearer_auth(ALICE)
        .send()
        .await
        .expect("get");
    assert_eq!(hidden.status(), 404);
}

#[test]
fn oauth_spec_is_googles() {
    let spec = DriveKind.oauth().expect("drive uses OAuth");
    assert_eq!(
        spec.authorize_url,
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(spec.token_url, "https://oauth2.googleapis.com/token");
    assert_eq!(
        spec.revoke_url,
        Some("https://oauth2.googleapis.com/revoke")
    );
    assert!(
        spec.extra_authorize_params
            .contains(&("access_type", "offline"))
    );
    assert!(spec.extra_authorize_params.contains(&("prompt", "consent")));
    assert_eq!(spec.scope_separator, " ");
    assert!(!spec.rotating_refresh_tokens);
    assert_eq!(DriveKind.default_base_url(), "https://www.googleapis.com");
    let doc = discovery();
    assert_eq!(doc["rootUrl"], "https://www.googleapis.com/");
    assert_eq!(doc["servicePath"], "drive/v3/");
}

// The checks above must be able to fail: requests and answers that break the contract.

fn check_alone(request: Value) {
    let doc = discovery();
    check_request(&doc, &methods(&doc), &request);
}

#[test]
#[should_panic(expected = "is not a parameter")]
fn an_unknown_parameter_breaks_the_contract() {
    check_alone(
        json!({ "method": "GET", "path": "/drive/v3/files", "query": { "folderId": "x" } }),
    );
}

#[test]
#[should_panic(expected = "is not exactly one Drive method")]
fn an_unknown_path_breaks_the_contract() {
    check_alone(json!({ "method": "POST", "path": "/drive/v3/files/abc/move", "query": {} }));
}

#[test]
#[should_panic(expected = "which FileList lacks")]
fn an_unknown_field_breaks_the_contract() {
    check_alone(
        json!({ "method": "GET", "path": "/drive/v3/files", "query": { "fields": "files(id,folder)" } }),
    );
}

#[test]
#[should_panic(expected = "required `mimeType` missing")]
fn a_missing_required_parameter_breaks_the_contract() {
    check_alone(json!({ "method": "GET", "path": "/drive/v3/files/abc/export", "query": {} }));
}

#[test]
fn invented_or_mistyped_properties_fail_validation() {
    let doc = discovery();
    let validator = jsonschema::validator_for(&json_schema(&doc, "File")).expect("compiles");
    assert!(validator.is_valid(
        &json!({ "id": "1", "name": "a", "size": "3", "owners": [{ "emailAddress": "a@b" }] })
    ));
    assert!(!validator.is_valid(&json!({ "id": "1", "sizeBytes": "3" })));
    assert!(!validator.is_valid(&json!({ "id": "1", "size": 3 })));
    assert!(!validator.is_valid(&json!({ "owners": [{ "email": "a@b" }] })));
}
