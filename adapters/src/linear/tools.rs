//! The Linear tools as the model sees them: names, descriptions, input and output schemas.

use serde_json::{Value, json};

use crate::{ToolAnnotations, ToolSpec};

/// Linear's page size ceiling is 250; 100 keeps one answer small enough for a model's context.
const MAX_PAGE: u64 = 100;

fn first(default: u64) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": default,
            "description": "Page size (1-100)." })
}

fn cursor() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 2048,
            "description": "`next_cursor` from the previous call with the same other arguments; omit for the first page." })
}

fn next_cursor() -> Value {
    json!({ "type": ["string", "null"], "description": "Pass as `cursor` to get the next page; null when this is the last page." })
}

fn reference() -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": ["id", "name"],
            "properties": { "id": { "type": "string" }, "name": { "type": "string" } } })
}

fn nullable_reference() -> Value {
    json!({ "anyOf": [reference(), { "type": "null" }] })
}

fn team_ref() -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": ["id", "key", "name"],
            "properties": { "id": { "type": "string" }, "key": { "type": "string" }, "name": { "type": "string" } } })
}

fn issue_schema(with_description: bool, with_comments: bool) -> Value {
    let mut properties = json!({
        "id": { "type": "string" },
        "identifier": { "type": "string", "description": "Team key and number, e.g. ENG-12." },
        "title": { "type": "string" },
        "url": { "type": "string" },
        "priority": { "type": "integer", "minimum": 0, "maximum": 4 },
        "priority_label": { "type": "string" },
        "state": { "type": "object", "additionalProperties": false, "required": ["id", "name", "type"],
                   "properties": { "id": { "type": "string" }, "name": { "type": "string" }, "type": { "type": "string" } } },
        "team": team_ref(),
        "assignee": nullable_reference(),
        "project": nullable_reference(),
        "labels": { "type": "array", "items": reference() },
        "created_at": { "type": "string" },
        "updated_at": { "type": "string" },
    });
    let mut required = vec![
        "id",
        "identifier",
        "title",
        "url",
        "priority",
        "priority_label",
        "state",
        "team",
        "assignee",
        "project",
        "labels",
        "created_at",
        "updated_at",
    ];
    if with_description {
        properties["description"] = json!({ "type": ["string", "null"] });
        required.push("description");
    }
    if with_comments {
        properties["comments"] = json!({ "type": "array", "items": {
            "type": "object", "additionalProperties": false, "required": ["id", "body", "created_at", "author"],
            "properties": { "id": { "type": "string" }, "body": { "type": "string" },
                            "created_at": { "type": "string" }, "author": nullable_reference() } } });
        properties["more_comments"] = json!({ "type": "boolean", "description": "True when the issue has more comments than shown." });
        required.extend(["comments", "more_comments"]);
    }
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

fn issue_page() -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": ["issues", "next_cursor"],
            "properties": { "issues": { "type": "array", "items": issue_schema(false, false) },
                            "next_cursor": next_cursor() } })
}

fn single(key: &str, item: Value) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": [key], "properties": { key: item } })
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

const ID_OR_KEY: &str = "An id, or a key or name (case-insensitive).";

fn search_issues() -> ToolSpec {
    ToolSpec::new(
        "search_issues",
        "Search Linear issues",
        "Full-text search over Linear issue titles and descriptions (optionally comments), ranked \
         by relevance. Use it when you have words to look for; use list_issues to filter by team, \
         assignee, state, label or project instead. Returns issue summaries (identifier, title, \
         state, assignee, labels, url) without descriptions; call get_issue for the full text. \
         Paged: pass `next_cursor` back as `cursor` for more.",
        ToolAnnotations::READ,
        object(
            json!({
                "query": { "type": "string", "minLength": 1, "maxLength": 256, "description": "Words to search for." },
                "include_comments": { "type": "boolean", "default": false, "description": "Also match comment text." },
                "first": first(25), "cursor": cursor(),
            }),
            &["query"],
        ),
        issue_page(),
    )
}

fn list_issues() -> ToolSpec {
    let filter = |what: &str| json!({ "type": "string", "minLength": 1, "maxLength": 200, "description": format!("{what} {ID_OR_KEY}") });
    ToolSpec::new(
        "list_issues",
        "List Linear issues",
        "Lists Linear issues, most recently updated first, narrowed by any combination of team, \
         assignee, workflow state, label and project. Use for questions like \"what is assigned to \
         me\" or \"open bugs in ENG\"; use search_issues to find issues by words. Returns issue \
         summaries without descriptions. Paged: pass `next_cursor` back as `cursor` (with the same \
         filters) for more.",
        ToolAnnotations::READ,
        object(
            json!({
                "team": filter("Team: its key (ENG), name or id."),
                "assignee": filter("Assignee: `me`, a user's name, display name, email or id."),
                "state": filter("Workflow state: its name (In Progress), type (backlog, unstarted, started, completed, canceled) or id."),
                "label": filter("Label name or id."),
                "project": filter("Project name or id."),
                "first": first(25), "cursor": cursor(),
            }),
            &[],
        ),
        issue_page(),
    )
}

fn get_issue() -> ToolSpec {
    ToolSpec::new(
        "get_issue",
        "Get a Linear issue",
        "Fetches one Linear issue by its identifier (ENG-12) or id, with its description and its \
         first 50 comments. Use after search_issues or list_issues to read an issue in full.",
        ToolAnnotations::READ,
        object(
            json!({ "id": { "type": "string", "minLength": 1, "maxLength": 100, "description": "Identifier like ENG-12, or the issue id." } }),
            &["id"],
        ),
        single("issue", issue_schema(true, true)),
    )
}

fn create_issue() -> ToolSpec {
    ToolSpec::new(
        "create_issue",
        "Create a Linear issue",
        "Creates a new issue in a Linear team. Needs the team's id (from list_teams); state, label \
         and assignee ids come from list_workflow_states and list_teams, project ids from \
         list_projects. Each call creates another issue, so do not retry a call that succeeded. \
         Returns the created issue with its identifier and url.",
        ToolAnnotations::CREATE,
        object(
            json!({
                "team_id": { "type": "string", "minLength": 1, "description": "Team id (list_teams)." },
                "title": { "type": "string", "minLength": 1, "maxLength": 255 },
                "description": { "type": "string", "maxLength": 100000, "description": "Markdown." },
                "priority": { "type": "integer", "minimum": 0, "maximum": 4, "description": "0 none, 1 urgent, 2 high, 3 normal, 4 low." },
                "assignee_id": { "type": "string", "minLength": 1, "description": "User id (list_teams members)." },
                "state_id": { "type": "string", "minLength": 1, "description": "Workflow state id of the same team; default is the team's default state." },
                "label_ids": { "type": "array", "maxItems": 20, "uniqueItems": true, "items": { "type": "string", "minLength": 1 } },
                "project_id": { "type": "string", "minLength": 1 },
            }),
            &["team_id", "title"],
        ),
        single("issue", issue_schema(true, false)),
    )
}

fn update_issue() -> ToolSpec {
    // Setting fields to given values is idempotent, but it overwrites what was there (a title,
    // a description, the whole label set), so it is honestly marked destructive.
    ToolSpec::new(
        "update_issue",
        "Update a Linear issue",
        "Changes fields of an existing Linear issue: title, description, workflow state, assignee \
         (null to unassign), priority or labels. Only the fields you pass change; `label_ids` \
         replaces the whole label set and `description` replaces the whole text. Returns the \
         updated issue.",
        ToolAnnotations::UPDATE,
        json!({ "type": "object", "additionalProperties": false, "required": ["id"], "minProperties": 2,
            "properties": {
                "id": { "type": "string", "minLength": 1, "maxLength": 100, "description": "Identifier like ENG-12, or the issue id." },
                "title": { "type": "string", "minLength": 1, "maxLength": 255 },
                "description": { "type": "string", "maxLength": 100000 },
                "state_id": { "type": "string", "minLength": 1 },
                "assignee_id": { "type": ["string", "null"], "minLength": 1 },
                "priority": { "type": "integer", "minimum": 0, "maximum": 4 },
                "label_ids": { "type": "array", "maxItems": 20, "uniqueItems": true, "items": { "type": "string", "minLength": 1 } },
            } }),
        single("issue", issue_schema(true, false)),
    )
}

fn add_comment() -> ToolSpec {
    let comment = object(
        json!({
            "id": { "type": "string" }, "body": { "type": "string" }, "created_at": { "type": "string" },
            "url": { "type": "string" }, "author": nullable_reference(),
            "issue": { "type": "object", "additionalProperties": false, "required": ["id", "identifier"],
                       "properties": { "id": { "type": "string" }, "identifier": { "type": "string" } } },
        }),
        &["id", "body", "created_at", "url", "author", "issue"],
    );
    ToolSpec::new(
        "add_comment",
        "Comment on a Linear issue",
        "Adds a Markdown comment to a Linear issue, as the connected user. Each call adds another \
         comment. Returns the comment with its url.",
        ToolAnnotations::CREATE,
        object(
            json!({
                "issue_id": { "type": "string", "minLength": 1, "maxLength": 100, "description": "Identifier like ENG-12, or the issue id." },
                "body": { "type": "string", "minLength": 1, "maxLength": 100000, "description": "Markdown." },
            }),
            &["issue_id", "body"],
        ),
        single("comment", comment),
    )
}

fn list_teams() -> ToolSpec {
    let team = object(
        json!({
            "id": { "type": "string" }, "key": { "type": "string" }, "name": { "type": "string" },
            "description": { "type": ["string", "null"] },
            "labels": { "type": "array", "items": reference() },
            "members": { "type": "array", "items": reference() },
        }),
        &["id", "key", "name", "description", "labels", "members"],
    );
    ToolSpec::new(
        "list_teams",
        "List Linear teams",
        "Lists the Linear teams the user can see, with each team's key (the ENG in ENG-12), its \
         labels and its members (up to 50 each) and their ids, which create_issue and \
         update_issue need. Paged with `cursor`/`next_cursor`.",
        ToolAnnotations::READ,
        object(json!({ "first": first(50), "cursor": cursor() }), &[]),
        object(
            json!({ "teams": { "type": "array", "items": team }, "next_cursor": next_cursor() }),
            &["teams", "next_cursor"],
        ),
    )
}

fn list_projects() -> ToolSpec {
    let project = object(
        json!({
            "id": { "type": "string" }, "name": { "type": "string" }, "description": { "type": "string" },
            "url": { "type": "string" }, "progress": { "type": "number" },
            "target_date": { "type": ["string", "null"] }, "status": { "type": "string" },
            "teams": { "type": "array", "items": team_ref() },
        }),
        &[
            "id",
            "name",
            "description",
            "url",
            "progress",
            "target_date",
            "status",
            "teams",
        ],
    );
    ToolSpec::new(
        "list_projects",
        "List Linear projects",
        "Lists Linear projects (name, status, progress 0-1, target date, teams), optionally only \
         those of one team. Use it to find a project id for create_issue or a project name for \
         list_issues. Paged with `cursor`/`next_cursor`.",
        ToolAnnotations::READ,
        object(
            json!({
                "team": { "type": "string", "minLength": 1, "maxLength": 200, "description": format!("Only projects of this team. {ID_OR_KEY}") },
                "first": first(50), "cursor": cursor(),
            }),
            &[],
        ),
        object(
            json!({ "projects": { "type": "array", "items": project }, "next_cursor": next_cursor() }),
            &["projects", "next_cursor"],
        ),
    )
}

fn list_workflow_states() -> ToolSpec {
    let state = object(
        json!({
            "id": { "type": "string" }, "name": { "type": "string" },
            "type": { "type": "string", "description": "triage, backlog, unstarted, started, completed or canceled." },
            "color": { "type": "string" }, "position": { "type": "number" }, "team": team_ref(),
        }),
        &["id", "name", "type", "color", "position", "team"],
    );
    ToolSpec::new(
        "list_workflow_states",
        "List Linear workflow states",
        "Lists the workflow states (issue statuses such as Todo, In Progress, Done) with their ids \
         and types, optionally for one team; each team has its own states. Use it to find the \
         `state_id` for create_issue or update_issue. Paged with `cursor`/`next_cursor`.",
        ToolAnnotations::READ,
        object(
            json!({
                "team": { "type": "string", "minLength": 1, "maxLength": 200, "description": format!("Only this team's states. {ID_OR_KEY}") },
                "first": first(50), "cursor": cursor(),
            }),
            &[],
        ),
        object(
            json!({ "states": { "type": "array", "items": state }, "next_cursor": next_cursor() }),
            &["states", "next_cursor"],
        ),
    )
}

/// Every tool, in the order tools/list shows them, with the Linear OAuth scopes each needs
/// (least privilege: `issues:create` and `comments:create` rather than `write` where they do).
pub(crate) fn all() -> Vec<ToolSpec> {
    vec![
        search_issues().with_scopes(&["read"]),
        list_issues().with_scopes(&["read"]),
        get_issue().with_scopes(&["read"]),
        create_issue().with_scopes(&["read", "issues:create"]),
        update_issue().with_scopes(&["read", "write"]),
        add_comment().with_scopes(&["read", "comments:create"]),
        list_teams().with_scopes(&["read"]),
        list_projects().with_scopes(&["read"]),
        list_workflow_states().with_scopes(&["read"]),
    ]
}
