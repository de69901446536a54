//! Turns Linear's typed GraphQL answers into the tools' structured results and their text form.

use std::fmt::Write as _;

use serde_json::Value;

use super::model::{
    Comment, Connection, Issue, Project, Reference, StateRef, Team, TeamRef, Text, WorkflowState,
};

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

pub(crate) use crate::tool::object;

fn string(value: &Text<'_>) -> Value {
    Value::String(value.as_str().to_owned())
}

/// A string Linear may send as `null`, kept as `null`.
fn nullable(value: Option<&Text<'_>>) -> Value {
    value.map_or(Value::Null, string)
}

/// `{id, name}`, or null when Linear returned null (no assignee, no project).
fn reference(value: Option<&Reference<'_>>) -> Value {
    match value {
        Some(v) => object([("id", string(&v.id)), ("name", string(&v.name))]),
        None => Value::Null,
    }
}

/// The nodes of a connection (none when it is missing).
fn nodes<'c, T>(connection: Option<&'c Connection<'_, T>>) -> &'c [T] {
    connection.map_or(&[], |c| c.nodes.as_slice())
}

fn references(connection: Option<&Connection<'_, Reference<'_>>>) -> Value {
    Value::Array(
        nodes(connection)
            .iter()
            .map(|n| reference(Some(n)))
            .collect(),
    )
}

fn team(value: Option<&TeamRef<'_>>) -> Value {
    let empty = TeamRef::default();
    let v = value.unwrap_or(&empty);
    object([
        ("id", string(&v.id)),
        ("key", string(&v.key)),
        ("name", string(&v.name)),
    ])
}

/// An issue summary; `detail` adds the description, `comments` the comment list.
pub(crate) fn issue(v: &Issue<'_>, detail: bool, comments: bool) -> Value {
    let empty = StateRef::default();
    let state = v.state.as_ref().unwrap_or(&empty);
    let mut out = object([
        ("id", string(&v.id)),
        ("identifier", string(&v.identifier)),
        ("title", string(&v.title)),
        ("url", string(&v.url)),
        // Linear types priority as Float but only uses 0..=4.
        ("priority", Value::from(v.priority.map_or(0, |p| p as i64))),
        ("priority_label", string(&v.priority_label)),
        (
            "state",
            object([
                ("id", string(&state.id)),
                ("name", string(&state.name)),
                ("type", string(&state.kind)),
            ]),
        ),
        ("team", team(v.team.as_ref())),
        ("assignee", reference(v.assignee.as_ref())),
        ("project", reference(v.project.as_ref())),
        ("labels", references(v.labels.as_ref())),
        ("created_at", string(&v.created_at)),
        ("updated_at", string(&v.updated_at)),
    ]);
    if detail {
        out["description"] = nullable(v.description.as_ref());
    }
    if comments {
        out["comments"] = nodes(v.comments.as_ref())
            .iter()
            .map(|c| {
                object([
                    ("id", string(&c.id)),
                    ("body", string(&c.body)),
                    ("created_at", string(&c.created_at)),
                    ("author", reference(c.user.as_ref())),
                ])
            })
            .collect();
        let more = v
            .comments
            .as_ref()
            .and_then(|c| c.page_info.as_ref())
            .is_some_and(|info| info.has_next_page);
        out["more_comments"] = Value::Bool(more);
    }
    out
}

pub(crate) fn comment(v: &Comment<'_>) -> Value {
    let (id, identifier) = v
        .issue
        .as_ref()
        .map_or(("", ""), |i| (i.id.as_str(), i.identifier.as_str()));
    object([
        ("id", string(&v.id)),
        ("body", string(&v.body)),
        ("created_at", string(&v.created_at)),
        ("url", string(&v.url)),
        ("author", reference(v.user.as_ref())),
        (
            "issue",
            object([
                ("id", Value::from(id)),
                ("identifier", Value::from(identifier)),
            ]),
        ),
    ])
}

pub(crate) fn team_entry(v: &Team<'_>) -> Value {
    object([
        ("id", string(&v.id)),
        ("key", string(&v.key)),
        ("name", string(&v.name)),
        ("description", nullable(v.description.as_ref())),
        ("labels", references(v.labels.as_ref())),
        ("members", references(v.members.as_ref())),
    ])
}

pub(crate) fn project(v: &Project<'_>) -> Value {
    object([
        ("id", string(&v.id)),
        ("name", string(&v.name)),
        ("description", string(&v.description)),
        ("url", string(&v.url)),
        ("progress", Value::from(v.progress.unwrap_or(0.0))),
        ("target_date", nullable(v.target_date.as_ref())),
        (
            "status",
            Value::from(v.status.as_ref().map_or("", |s| s.name.as_str())),
        ),
        (
            "teams",
            Value::Array(
                nodes(v.teams.as_ref())
                    .iter()
                    .map(|t| team(Some(t)))
                    .collect(),
            ),
        ),
    ])
}

pub(crate) fn state(v: &WorkflowState<'_>) -> Value {
    object([
        ("id", string(&v.id)),
        ("name", string(&v.name)),
        ("type", string(&v.kind)),
        ("color", string(&v.color)),
        ("position", Value::from(v.position.unwrap_or(0.0))),
        ("team", team(v.team.as_ref())),
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
