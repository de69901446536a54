//! Turns Linear's GraphQL answers into the tools' structured results and their text form.

use std::fmt::Write as _;

use serde_json::Value;

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The `nodes` of the connection at `key`, borrowed (none when it is missing).
fn nodes<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(|connection| connection.get("nodes"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(crate) use crate::tool::object;

fn string(value: &Value, key: &str) -> Value {
    Value::String(text(value, key))
}

/// `{id, name}`, or null when Linear returned null (no assignee, no project).
fn reference(value: Option<&Value>) -> Value {
    match value {
        Some(v) if v.is_object() => object([("id", string(v, "id")), ("name", string(v, "name"))]),
        _ => Value::Null,
    }
}

fn references(value: &Value, key: &str) -> Value {
    Value::Array(
        nodes(value, key)
            .iter()
            .map(|n| reference(Some(n)))
            .collect(),
    )
}

fn team(value: Option<&Value>) -> Value {
    let v = value.unwrap_or(&Value::Null);
    object([
        ("id", string(v, "id")),
        ("key", string(v, "key")),
        ("name", string(v, "name")),
    ])
}

/// An issue summary; `detail` adds the description, `comments` the comment list.
pub(crate) fn issue(v: &Value, detail: bool, comments: bool) -> Value {
    let state = v.get("state").unwrap_or(&Value::Null);
    let mut out = object([
        ("id", string(v, "id")),
        ("identifier", string(v, "identifier")),
        ("title", string(v, "title")),
        ("url", string(v, "url")),
        // Linear types priority as Float but only uses 0..=4.
        (
            "priority",
            Value::from(
                v.get("priority")
                    .and_then(Value::as_f64)
                    .map_or(0, |p| p as i64),
            ),
        ),
        ("priority_label", string(v, "priorityLabel")),
        (
            "state",
            object([
                ("id", string(state, "id")),
                ("name", string(state, "name")),
                ("type", string(state, "type")),
            ]),
        ),
        ("team", team(v.get("team"))),
        ("assignee", reference(v.get("assignee"))),
        ("project", reference(v.get("project"))),
        ("labels", references(v, "labels")),
        ("created_at", string(v, "createdAt")),
        ("updated_at", string(v, "updatedAt")),
    ]);
    if detail {
        out["description"] = v.get("description").cloned().unwrap_or(Value::Null);
    }
    if comments {
        out["comments"] = nodes(v, "comments")
            .iter()
            .map(|c| {
                object([
                    ("id", string(c, "id")),
                    ("body", string(c, "body")),
                    ("created_at", string(c, "createdAt")),
                    ("author", reference(c.get("user"))),
                ])
            })
            .collect();
        out["more_comments"] = Value::Bool(
            v.pointer("/comments/pageInfo/hasNextPage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        );
    }
    out
}

pub(crate) fn comment(v: &Value) -> Value {
    let issue = v.get("issue").unwrap_or(&Value::Null);
    object([
        ("id", string(v, "id")),
        ("body", string(v, "body")),
        ("created_at", string(v, "createdAt")),
        ("url", string(v, "url")),
        ("author", reference(v.get("user"))),
        (
            "issue",
            object([
                ("id", string(issue, "id")),
                ("identifier", string(issue, "identifier")),
            ]),
        ),
    ])
}

pub(crate) fn team_entry(v: &Value) -> Value {
    object([
        ("id", string(v, "id")),
        ("key", string(v, "key")),
        ("name", string(v, "name")),
        (
            "description",
            v.get("description").cloned().unwrap_or(Value::Null),
        ),
        ("labels", references(v, "labels")),
        ("members", references(v, "members")),
    ])
}

pub(crate) fn project(v: &Value) -> Value {
    object([
        ("id", string(v, "id")),
        ("name", string(v, "name")),
        ("description", string(v, "description")),
        ("url", string(v, "url")),
        (
            "progress",
            Value::from(v.get("progress").and_then(Value::as_f64).unwrap_or(0.0)),
        ),
        (
            "target_date",
            v.get("targetDate").cloned().unwrap_or(Value::Null),
        ),
        (
            "status",
            Value::from(
                v.pointer("/status/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ),
        ),
        (
            "teams",
            Value::Array(nodes(v, "teams").iter().map(|t| team(Some(t))).collect()),
        ),
    ])
}

pub(crate) fn state(v: &Value) -> Value {
    object([
        ("id", string(v, "id")),
        ("name", string(v, "name")),
        ("type", string(v, "type")),
        ("color", string(v, "color")),
        (
            "position",
            Value::from(v.get("position").and_then(Value::as_f64).unwrap_or(0.0)),
        ),
        ("team", team(v.get("team"))),
    ])
}

fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

/// One line per issue: what a model needs to pick one and act on it.
pub(crate) fn issue_line(out: &mut String, i: &Value) {
    let _ = write!(
        out,
        "{} {} [{}, {}",
        text(i, "identifier"),
        text(i, "title"),
        i.pointer("/state/name")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        text(i, "priority_label"),
    );
    if let Some(name) = i.get("assignee").and_then(name_of) {
        let _ = write!(out, ", assignee {name}");
    }
    let labels: Vec<&str> = i
        .get("labels")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(name_of).collect())
        .unwrap_or_default();
    if !labels.is_empty() {
        let _ = write!(out, ", labels {}", labels.join("/"));
    }
    if let Some(project) = i.get("project").and_then(name_of) {
        let _ = write!(out, ", project {project}");
    }
    let _ = writeln!(out, "] id={} {}", text(i, "id"), text(i, "url"));
}

/// The closing line of a page: how to continue, or that there is nothing more.
pub(crate) fn page_footer(out: &mut String, next_cursor: &Value) {
    match next_cursor.as_str() {
        Some(cursor) => {
            let _ = writeln!(out, "More results: call again with cursor=\"{cursor}\".");
        }
        None => out.push_str("End of results.\n"),
    }
}

pub(crate) fn issue_detail(i: &Value) -> String {
    let mut out = String::new();
    issue_line(&mut out, i);
    let _ = writeln!(
        out,
        "Team {} · updated {}",
        text(&i["team"], "key"),
        text(i, "updated_at")
    );
    match i.get("description").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => {
            let _ = writeln!(out, "\n{d}");
        }
        _ => out.push_str("\n(no description)\n"),
    }
    if let Some(comments) = i.get("comments").and_then(Value::as_array) {
        let _ = writeln!(out, "\nComments ({}):", comments.len());
        for c in comments {
            let author = c.get("author").and_then(name_of).unwrap_or("unknown");
            let _ = writeln!(
                out,
                "- {author} at {}: {}",
                text(c, "created_at"),
                text(c, "body")
            );
        }
        if i.get("more_comments").and_then(Value::as_bool) == Some(true) {
            out.push_str("(older comments not shown)\n");
        }
    }
    out
}
