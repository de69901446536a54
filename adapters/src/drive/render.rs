//! Drive's File resources as the tools return them, and as short text for the model.

use std::fmt::Write as _;

use serde_json::{Value, json};

pub(crate) const FOLDER: &str = "application/vnd.google-apps.folder";
pub(crate) const GOOGLE_DOC: &str = "application/vnd.google-apps.document";
pub(crate) const GOOGLE_SHEET: &str = "application/vnd.google-apps.spreadsheet";
pub(crate) const GOOGLE_SLIDES: &str = "application/vnd.google-apps.presentation";

fn text(file: &Value, key: &str) -> Value {
    file.get(key)
        .and_then(Value::as_str)
        .map_or(Value::Null, |s| Value::String(s.to_owned()))
}

/// The tools' kind of a MIME type.
pub(crate) fn kind(mime_type: &str) -> &'static str {
    match mime_type {
        FOLDER => "folder",
        GOOGLE_DOC => "google_doc",
        GOOGLE_SHEET => "google_sheet",
        GOOGLE_SLIDES => "google_slides",
        other if other.starts_with("application/vnd.google-apps.") => "google_other",
        _ => "file",
    }
}

/// A Drive File (as selected by `client::FILE_FIELDS`) in the tools' shape.
pub(crate) fn file(file: &Value) -> Value {
    let mime_type = file.get("mimeType").and_then(Value::as_str).unwrap_or("");
    // Drive sends `size` as a string (int64 in JSON).
    let size = file.get("size").and_then(|size| match size {
        Value::String(s) => s.parse::<u64>().ok(),
        other => other.as_u64(),
    });
    let owners: Vec<Value> = file
        .get("owners")
        .and_then(Value::as_array)
        .map(|owners| {
            owners
                .iter()
                .map(|owner| json!({ "name": text(owner, "displayName"), "email": text(owner, "emailAddress") }))
                .collect()
        })
        .unwrap_or_default();
    let parents: Vec<Value> = file
        .get("parents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let flag = |key: &str| file.get(key).and_then(Value::as_bool).unwrap_or(false);
    json!({
        "id": file.get("id").and_then(Value::as_str).unwrap_or_default(),
        "name": file.get("name").and_then(Value::as_str).unwrap_or_default(),
        "mime_type": mime_type,
        "kind": kind(mime_type),
        "size_bytes": size,
        "created_time": text(file, "createdTime"),
        "modified_time": text(file, "modifiedTime"),
        "parents": parents,
        "web_view_link": text(file, "webViewLink"),
        "owners": owners,
        "shared": flag("shared"),
        "trashed": flag("trashed"),
        "drive_id": text(file, "driveId"),
        "description": text(file, "description"),
    })
}

/// One line per file: `- name (kind, size, modified) id`.
pub(crate) fn file_line(out: &mut String, file: &Value) {
    let name = file["name"].as_str().unwrap_or_default();
    let kind = file["kind"].as_str().unwrap_or_default();
    let _ = write!(out, "- {name}");
    if kind == "folder" {
        out.push('/');
    }
    let mut details = vec![kind.replace('_', " ")];
    if let Some(size) = file["size_bytes"].as_u64() {
        details.push(human_size(size));
    }
    if let Some(modified) = file["modified_time"].as_str() {
        details.push(format!(
            "modified {}",
            modified.get(..10).unwrap_or(modified)
        ));
    }
    let _ = writeln!(
        out,
        " ({}) id: {}",
        details.join(", "),
        file["id"].as_str().unwrap_or_default()
    );
}

/// Full details of one file, a line per field.
pub(crate) fn file_details(file: &Value) -> String {
    let mut out = String::new();
    let field = |out: &mut String, label: &str, value: &Value| {
        if let Some(text) = value.as_str().filter(|s| !s.is_empty()) {
            let _ = writeln!(out, "{label}: {text}");
        }
    };
    field(&mut out, "Name", &file["name"]);
    field(&mut out, "Id", &file["id"]);
    let _ = writeln!(
        out,
        "Kind: {} ({})",
        file["kind"].as_str().unwrap_or_default().replace('_', " "),
        file["mime_type"].as_str().unwrap_or_default()
    );
    if let Some(size) = file["size_bytes"].as_u64() {
        let _ = writeln!(out, "Size: {} ({size} bytes)", human_size(size));
    }
    field(&mut out, "Created", &file["created_time"]);
    field(&mut out, "Modified", &file["modified_time"]);
    let owners: Vec<String> = file["owners"]
        .as_array()
        .map(|owners| {
            owners
                .iter()
                .map(|o| match (o["name"].as_str(), o["email"].as_str()) {
                    (Some(name), Some(email)) => format!("{name} <{email}>"),
                    (Some(one), None) | (None, Some(one)) => one.to_owned(),
                    (None, None) => String::new(),
                })
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !owners.is_empty() {
        let _ = writeln!(out, "Owners: {}", owners.join(", "));
    }
    let parents: Vec<&str> = file["parents"]
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !parents.is_empty() {
        let _ = writeln!(out, "Parent folder ids: {}", parents.join(", "));
    }
    field(&mut out, "Shared drive", &file["drive_id"]);
    let _ = writeln!(
        out,
        "Shared: {}",
        if file["shared"] == true { "yes" } else { "no" }
    );
    if file["trashed"] == true {
        out.push_str("In the trash\n");
    }
    field(&mut out, "Description", &file["description"]);
    field(&mut out, "Link", &file["web_view_link"]);
    out.trim_end().to_owned()
}

pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_drive_files() {
        let drive = json!({ "id": "1a", "name": "Plan", "mimeType": GOOGLE_DOC, "size": "2048",
                            "owners": [{ "displayName": "Alice", "emailAddress": "alice@example.com" }],
                            "parents": ["0root"], "modifiedTime": "2026-03-04T05:06:07.000Z" });
        let file = file(&drive);
        assert_eq!(file["kind"], "google_doc");
        assert_eq!(file["size_bytes"], 2048);
        assert_eq!(file["drive_id"], Value::Null);
        let mut line = String::new();
        file_line(&mut line, &file);
        assert_eq!(
            line,
            "- Plan (google doc, 2.0 KB, modified 2026-03-04) id: 1a\n"
        );
        assert!(file_details(&file).contains("Owners: Alice <alice@example.com>"));
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MB");
    }
}
