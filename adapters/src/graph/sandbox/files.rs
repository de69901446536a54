//! Emulated SharePoint sites and drives: items by id or by path (`root:/a/b:`), children,
//! content download, simple upload, upload sessions and new folders.

use axum::{
    Json,
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    Caller, Req, error, not_found,
    store::{self, Item, Store, Upload},
};

/// What a drive path addresses.
enum Target {
    Found(usize),
    /// A not yet existing child `name` of folder `parent` (uploads create it).
    Missing {
        parent: String,
        name: String,
    },
}

fn root_id(drive: &str) -> String {
    format!("root-{drive}")
}

fn position(store: &Store, drive: &str, id: &str) -> Option<usize> {
    store
        .items
        .iter()
        .position(|i| i.drive == drive && i.value["id"] == id)
}

fn child(store: &Store, drive: &str, parent: &str, name: &str) -> Option<usize> {
    store.items.iter().position(|i| {
        i.drive == drive
            && i.parent.as_deref() == Some(parent)
            && i.value["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// Resolves `rest` (after `/drives/{d}`) to a target and the remaining segments.
fn resolve<'r>(
    store: &Store,
    drive: &str,
    rest: &'r [&'r str],
) -> Result<(Target, &'r [&'r str]), Response> {
    let (base, after) = match rest {
        ["root", tail @ ..] => {
            return Ok((
                Target::Found(
                    position(store, drive, &root_id(drive)).ok_or_else(|| not_found("item"))?,
                ),
                tail,
            ));
        }
        ["root:", tail @ ..] => (root_id(drive), tail),
        ["items", id, tail @ ..] if id.ends_with(':') => {
            (id.trim_end_matches(':').to_owned(), tail)
        }
        ["items", id, tail @ ..] => {
            return Ok((
                Target::Found(position(store, drive, id).ok_or_else(|| not_found("item"))?),
                tail,
            ));
        }
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Unsupported drive path.",
            ));
        }
    };
    position(store, drive, &base).ok_or_else(|| not_found("item"))?;
    let end = after.iter().position(|s| s.ends_with(':')).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unterminated path address.",
        )
    })?;
    let names: Vec<&str> = after[..=end]
        .iter()
        .map(|s| s.trim_end_matches(':'))
        .collect();
    let mut current = base;
    for (index, name) in names.iter().enumerate() {
        match child(store, drive, &current, name) {
            Some(i) => {
                current = store.items[i].value["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            }
            None if index == names.len() - 1 => {
                return Ok((
                    Target::Missing {
                        parent: current,
                        name: (*name).to_owned(),
                    },
                    &after[end + 1..],
                ));
            }
            None => return Err(not_found("item")),
        }
    }
    Ok((
        Target::Found(position(store, drive, &current).ok_or_else(|| not_found("item"))?),
        &after[end + 1..],
    ))
}

fn mime(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        Some("md") => "text/markdown",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Adds (or with `replace`, overwrites) a file or folder; returns its index.
pub(crate) fn put(
    store: &mut Store,
    drive: &str,
    parent: &str,
    name: &str,
    content: Option<Vec<u8>>,
    conflict: &str,
) -> Result<usize, Response> {
    let mut name = name.to_owned();
    if let Some(existing) = child(store, drive, parent, &name) {
        match conflict {
            "replace" if content.is_some() => {
                let bytes = content.unwrap_or_default();
                let item = &mut store.items[existing];
                item.value["size"] = json!(bytes.len());
                item.content = bytes;
                return Ok(existing);
            }
            "rename" => name = format!("{} 1", name),
            _ => {
                return Err(error(
                    StatusCode::CONFLICT,
                    "nameAlreadyExists",
                    "The specified item name already exists.",
                ));
            }
        }
    }
    let id = store.id("01ITEM");
    let parent_path = store
        .items
        .iter()
        .find(|i| i.value["id"] == parent)
        .and_then(|i| {
            i.value["parentReference"]["path"]
                .as_str()
                .map(|p| format!("{p}/{}", i.value["name"].as_str().unwrap_or_default()))
        })
        .unwrap_or_else(|| "/drive/root:".into());
    let mut value = json!({ "id": id, "name": name, "size": content.as_ref().map_or(0, Vec::len), "webUrl": format!("https://contoso.sharepoint.com/{drive}/{name}"),
        "lastModifiedDateTime": "2026-11-20T12:00:00Z", "parentReference": { "driveId": drive, "id": parent, "path": parent_path.replace(":/", ":").replace("root:/", "root:") } });
    if content.is_some() {
        value["file"] = json!({ "mimeType": mime(&name) });
    } else {
        value["folder"] = json!({ "childCount": 0 });
    }
    store.items.push(Item {
        drive: drive.to_owned(),
        parent: Some(parent.to_owned()),
        value,
        content: content.unwrap_or_default(),
    });
    Ok(store.items.len() - 1)
}

pub(crate) fn handle(
    store: &mut Store,
    _caller: &Caller,
    req: &Req<'_>,
) -> Result<Response, Response> {
    let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (req.method, segments.as_slice()) {
        (&Method::GET, ["sites"]) => {
            let words = store::words(req.param("search").unwrap_or("*"));
            let sites: Vec<Value> = store
                .sites
                .iter()
                .filter(|s| {
                    let t = s.to_string().to_lowercase();
                    words.iter().all(|w| t.contains(w.as_str()))
                })
                .cloned()
                .collect();
            store::collection(req, &sites, 20)
        }
        (&Method::GET, ["sites", id]) => store
            .sites
            .iter()
            .find(|s| s["id"] == *id)
            .map_or_else(|| Err(not_found("site")), |s| store::one(req, s)),
        (&Method::GET, ["sites", id, "drives"]) => {
            if !store.sites.iter().any(|s| s["id"] == *id) {
                return Err(not_found("site"));
            }
            let drives: Vec<Value> = store
                .drives
                .iter()
                .filter(|(s, _)| s == id)
                .map(|(_, d)| d.clone())
                .collect();
            store::collection(req, &drives, 50)
        }
        (method, ["drives", drive, rest @ ..]) => {
            if !store.drives.iter().any(|(_, d)| d["id"] == *drive) {
                return Err(not_found("drive"));
            }
            let (target, tail) = resolve(store, drive, rest)?;
            let conflict = req
                .param("@microsoft.graph.conflictBehavior")
                .unwrap_or("replace")
                .to_owned();
            match (method, target, tail) {
                (&Method::GET, Target::Found(i), []) => store::one(req, &store.items[i].value),
                (&Method::GET, Target::Found(i), ["children"]) => {
                    let id = store.items[i].value["id"].clone();
                    let children: Vec<Value> = store
                        .items
                        .iter()
                        .filter(|c| c.drive == *drive && c.parent.as_deref() == id.as_str())
                        .map(|c| c.value.clone())
                        .collect();
                    store::collection(req, &children, 200)
                }
                (&Method::GET, Target::Found(i), ["content"]) => {
                    let item = &store.items[i];
                    let content_type = item
                        .value
                        .pointer("/file/mimeType")
                        .and_then(Value::as_str)
                        .unwrap_or("application/octet-stream")
                        .to_owned();
                    Ok(
                        ([(header::CONTENT_TYPE, content_type)], item.content.clone())
                            .into_response(),
                    )
                }
                (&Method::POST, Target::Found(i), ["children"]) => {
                    let body = req.json()?;
                    let name = body["name"].as_str().unwrap_or_default().to_owned();
                    if name.is_empty() || body.get("folder").is_none() {
                        return Err(error(
                            StatusCode::BAD_REQUEST,
                            "invalidRequest",
                            "A folder needs a name and a folder facet.",
                        ));
                    }
                    let parent = store.items[i].value["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let behavior = body["@microsoft.graph.conflictBehavior"]
                        .as_str()
                        .unwrap_or("fail")
                        .to_owned();
                    let index = put(store, drive, &parent, &name, None, &behavior)?;
                    store::created(&store.items[index].value.clone())
                }
                (&Method::PUT, Target::Missing { parent, name }, ["content"]) => {
                    let index = put(
                        store,
                        drive,
                        &parent,
                        &name,
                        Some(req.body.to_vec()),
                        &conflict,
                    )?;
                    store::created(&store.items[index].value.clone())
                }
                (&Method::PUT, Target::Found(i), ["content"]) => {
                    if conflict == "fail" {
                        return Err(error(
                            StatusCode::CONFLICT,
                            "nameAlreadyExists",
                            "The specified item name already exists.",
                        ));
                    }
                    let (parent, name) = (
                        store.items[i].parent.clone().unwrap_or_default(),
                        store.items[i].value["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    let index = put(
                        store,
                        drive,
                        &parent,
                        &name,
                        Some(req.body.to_vec()),
                        &conflict,
                    )?;
                    store::one(req, &store.items[index].value.clone())
                }
                (&Method::POST, target, ["createUploadSession"]) => {
                    let behavior = req
                        .json()?
                        .pointer("/item/@microsoft.graph.conflictBehavior")
                        .and_then(Value::as_str)
                        .unwrap_or("replace")
                        .to_owned();
                    let (parent, name) = match target {
                        Target::Missing { parent, name } => (parent, name),
                        Target::Found(_) if behavior == "fail" => {
                            return Err(error(
                                StatusCode::CONFLICT,
                                "nameAlreadyExists",
                                "The specified item name already exists.",
                            ));
                        }
                        Target::Found(i) => (
                            store.items[i].parent.clone().unwrap_or_default(),
                            store.items[i].value["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                    };
                    let session = store.id("upload");
                    store.uploads.insert(
                        session.clone(),
                        Upload {
                            drive: (*drive).to_owned(),
                            parent,
                            name,
                            data: Vec::new(),
                        },
                    );
                    Ok(Json(json!({ "uploadUrl": format!("{}/_upload/{session}", req.base), "expirationDateTime": "2026-11-21T12:00:00Z", "nextExpectedRanges": ["0-"] })).into_response())
                }
                (_, Target::Missing { .. }, _) => Err(not_found("item")),
                _ => Err(error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Unsupported request {} {}", req.method, req.path),
                )),
            }
        }
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Unsupported request {} {}", req.method, req.path),
        )),
    }
}

/// `PUT /_upload/{session}` with `Content-Range: bytes a-b/total`; the last piece creates the file.
pub(crate) fn upload_chunk(store: &mut Store, req: &Req<'_>, headers: &HeaderMap) -> Response {
    let Some(session) = req.segments.get(1).cloned() else {
        return not_found("upload session");
    };
    let range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parsed = range
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
        .and_then(|(span, total)| {
            let (a, b) = span.split_once('-')?;
            Some((
                a.parse::<usize>().ok()?,
                b.parse::<usize>().ok()?,
                total.parse::<usize>().ok()?,
            ))
        });
    let Some((start, end, total)) = parsed else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalidRange",
            "Content-Range is missing or malformed.",
        );
    };
    let Some(upload) = store.uploads.get_mut(&session) else {
        return not_found("upload session");
    };
    if start != upload.data.len() || end + 1 - start != req.body.len() {
        return error(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "invalidRange",
            "The uploaded fragment does not match the expected range.",
        );
    }
    upload.data.extend_from_slice(req.body);
    if upload.data.len() < total {
        return (StatusCode::ACCEPTED, Json(json!({ "expirationDateTime": "2026-11-21T12:00:00Z", "nextExpectedRanges": [format!("{}-", upload.data.len())] }))).into_response();
    }
    let Some(done) = store.uploads.remove(&session) else {
        return not_found("upload session");
    };
    match put(
        store,
        &done.drive,
        &done.parent,
        &done.name,
        Some(done.data),
        "replace",
    ) {
        Ok(index) => (StatusCode::CREATED, Json(store.items[index].value.clone())).into_response(),
        Err(response) => response,
    }
}
