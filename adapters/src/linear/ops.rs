//! What each tool does: arguments to GraphQL variables, the call, the answer to a [`ToolOutput`].

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use serde::Deserialize;

use super::{
    LinearAdapter, client, cursor,
    model::{CommentPayload, Connection, Issue, IssuePayload},
    queries, render,
};
use crate::{CallContext, ToolError, ToolOutput, upstream::UpstreamResponse};

type Args = Map<String, Value>;

fn opt_str<'a>(args: &'a Args, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn req_str<'a>(args: &'a Args, key: &str) -> Result<&'a str, ToolError> {
    opt_str(args, key).ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` is required")))
}

fn page_size(args: &Args, default: u64) -> Result<u64, ToolError> {
    match args.get("first") {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
            ToolError::InvalidArguments("`first` must be an integer from 1 to 100".into())
        }),
    }
}

/// Linear ids are UUIDs; anything else given for a filter is a key or a name.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn team_filter(value: &str) -> Value {
    if is_uuid(value) {
        json!({ "id": { "eq": value } })
    } else {
        json!({ "or": [{ "key": { "eqIgnoreCase": value } }, { "name": { "eqIgnoreCase": value } }] })
    }
}

fn issue_filter(args: &Args) -> Option<Value> {
    let mut filter = Map::new();
    if let Some(team) = opt_str(args, "team") {
        filter.insert("team".into(), team_filter(team));
    }
    if let Some(who) = opt_str(args, "assignee") {
        let f = if who.eq_ignore_ascii_case("me") {
            json!({ "isMe": { "eq": true } })
        } else if is_uuid(who) {
            json!({ "id": { "eq": who } })
        } else {
            json!({ "or": [{ "name": { "eqIgnoreCase": who } }, { "displayName": { "eqIgnoreCase": who } },
                           { "email": { "eqIgnoreCase": who } }] })
        };
        filter.insert("assignee".into(), f);
    }
    if let Some(state) = opt_str(args, "state") {
        let f = if is_uuid(state) {
            json!({ "id": { "eq": state } })
        } else {
            json!({ "or": [{ "name": { "eqIgnoreCase": state } }, { "type": { "eq": state.to_ascii_lowercase() } }] })
        };
        filter.insert("state".into(), f);
    }
    if let Some(label) = opt_str(args, "label") {
        let key = if is_uuid(label) {
            json!({ "id": { "eq": label } })
        } else {
            json!({ "name": { "eqIgnoreCase": label } })
        };
        filter.insert("labels".into(), json!({ "some": key }));
    }
    if let Some(project) = opt_str(args, "project") {
        let f = if is_uuid(project) {
            json!({ "id": { "eq": project } })
        } else {
            json!({ "name": { "eqIgnoreCase": project } })
        };
        filter.insert("project".into(), f);
    }
    (!filter.is_empty()).then_some(Value::Object(filter))
}

/// The root field a query must answer, or BadResponse.
fn required<T>(value: Option<T>, root: &str) -> Result<T, ToolError> {
    value.ok_or_else(|| ToolError::BadResponse(format!("Linear's answer has no `{root}`")))
}

/// The model-facing cursor of the page after `connection`, or null on the last page.
fn next_cursor<T>(tool: &str, args: &Args, connection: &Connection<'_, T>) -> Value {
    connection.next().map_or(Value::Null, |end| {
        Value::String(cursor::encode(tool, args, end))
    })
}

/// One page of a list query's root connection: each node rendered, a text line per item, and
/// the next page's cursor.
fn rendered_page<'a, T: Deserialize<'a>>(
    tool: &str,
    args: &Args,
    response: &'a UpstreamResponse,
    root: &str,
    render: fn(&T) -> Value,
    line: fn(&Value) -> String,
) -> Result<(Vec<Value>, String, Value), ToolError> {
    let page: Connection<T> = required(client::decode(response, root)?, root)?;
    let mut text = String::new();
    let items = page
        .nodes
        .iter()
        .map(|node| {
            let item = render(node);
            let _ = writeln!(text, "{}", line(&item));
            item
        })
        .collect();
    Ok((items, text, next_cursor(tool, args, &page)))
}

impl LinearAdapter {
    pub(crate) async fn issues_page(
        &self,
        tool: &str,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let after = cursor::decode(tool, args)?;
        let first = page_size(args, 25)?;
        let (operation, document, root, variables) = if tool == "search_issues" {
            let vars = json!({ "term": req_str(args, "query")?, "first": first, "after": after,
                               "includeComments": args.get("include_comments").and_then(Value::as_bool).unwrap_or(false) });
            ("SearchIssues", queries::SEARCH_ISSUES, "searchIssues", vars)
        } else {
            let vars = json!({ "first": first, "after": after, "filter": issue_filter(args) });
            ("ListIssues", queries::LIST_ISSUES, "issues", vars)
        };
        let response = self
            .graphql
            .execute(operation, document, variables, ctx)
            .await?;
        let page: Connection<Issue> = required(client::decode(&response, root)?, root)?;
        let next = next_cursor(tool, args, &page);
        let issues: Vec<Value> = page
            .nodes
            .iter()
            .map(|n| render::issue(n, false, false))
            .collect();
        let mut text = format!("{} issue(s):\n", issues.len());
        for issue in &issues {
            render::issue_line(&mut text, issue);
        }
        render::page_footer(&mut text, &next);
        Ok(ToolOutput {
            structured: render::object([("issues", Value::Array(issues)), ("next_cursor", next)]),
            text,
        })
    }

    pub(crate) async fn get_issue(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let id = req_str(args, "id")?;
        let response = self
            .graphql
            .execute(
                "GetIssue",
                queries::GET_ISSUE,
                json!({ "id": id, "commentsFirst": 50 }),
                ctx,
            )
            .await?;
        let issue: Issue = client::decode(&response, "issue")?
            .ok_or_else(|| ToolError::NotFound(format!("no Linear issue `{id}`")))?;
        let issue = render::issue(&issue, true, true);
        Ok(ToolOutput {
            text: render::issue_detail(&issue),
            structured: render::object([("issue", issue)]),
        })
    }

    pub(crate) async fn write_issue(
        &self,
        tool: &str,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let mut input = Map::new();
        for (arg, linear) in [
            ("title", "title"),
            ("description", "description"),
            ("state_id", "stateId"),
            ("assignee_id", "assigneeId"),
            ("priority", "priority"),
            ("label_ids", "labelIds"),
            ("project_id", "projectId"),
            ("team_id", "teamId"),
        ] {
            if let Some(value) = args.get(arg) {
                input.insert(linear.into(), value.clone());
            }
        }
        let (operation, document, root, variables, verb) = if tool == "create_issue" {
            req_str(args, "team_id")?;
            req_str(args, "title")?;
            (
                "CreateIssue",
                queries::CREATE_ISSUE,
                "issueCreate",
                json!({ "input": input }),
                "Created",
            )
        } else {
            let id = req_str(args, "id")?;
            input.remove("teamId");
            input.remove("projectId");
            if input.is_empty() {
                return Err(ToolError::InvalidArguments(
                    "pass at least one field to change besides `id`".into(),
                ));
            }
            (
                "UpdateIssue",
                queries::UPDATE_ISSUE,
                "issueUpdate",
                json!({ "id": id, "input": input }),
                "Updated",
            )
        };
        let response = self
            .graphql
            .execute(operation, document, variables, ctx)
            .await?;
        let payload: IssuePayload = required(client::decode(&response, root)?, root)?;
        let issue = payload.issue.filter(|_| payload.success).ok_or_else(|| {
            ToolError::BadResponse(format!("Linear reported `{root}` as unsuccessful"))
        })?;
        let issue = render::issue(&issue, true, false);
        let mut text = format!("{verb} ");
        render::issue_line(&mut text, &issue);
        Ok(ToolOutput {
            structured: render::object([("issue", issue)]),
            text,
        })
    }

    pub(crate) async fn add_comment(
        &self,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let input =
            json!({ "issueId": req_str(args, "issue_id")?, "body": req_str(args, "body")? });
        let response = self
            .graphql
            .execute(
                "AddComment",
                queries::ADD_COMMENT,
                json!({ "input": input }),
                ctx,
            )
            .await?;
        let payload: CommentPayload =
            required(client::decode(&response, "commentCreate")?, "commentCreate")?;
        let comment = payload
            .comment
            .ok_or_else(|| ToolError::BadResponse("Linear returned no comment".into()))?;
        let comment = render::comment(&comment);
        let text = format!(
            "Commented on {}: {}\n",
            comment["issue"]["identifier"].as_str().unwrap_or(""),
            comment["url"].as_str().unwrap_or("")
        );
        Ok(ToolOutput {
            structured: render::object([("comment", comment)]),
            text,
        })
    }

    pub(crate) async fn list_simple(
        &self,
        tool: &str,
        args: &Args,
        ctx: &CallContext,
    ) -> Result<ToolOutput, ToolError> {
        let after = cursor::decode(tool, args)?;
        let first = page_size(args, 50)?;
        let team = opt_str(args, "team").map(team_filter);
        let (operation, document, root, key, filter): (_, _, _, _, Option<Value>) = match tool {
            "list_teams" => ("ListTeams", queries::LIST_TEAMS, "teams", "teams", None),
            "list_projects" => (
                "ListProjects",
                queries::LIST_PROJECTS,
                "projects",
                "projects",
                team.map(|t| json!({ "accessibleTeams": { "some": t } })),
            ),
            _ => (
                "ListWorkflowStates",
                queries::LIST_WORKFLOW_STATES,
                "workflowStates",
                "states",
                team.map(|t| json!({ "team": t })),
            ),
        };
        let mut variables = json!({ "first": first, "after": after });
        if let Some(filter) = filter {
            variables["filter"] = filter;
        }
        let response = self
            .graphql
            .execute(operation, document, variables, ctx)
            .await?;
        let (items, text, next) = match key {
            "teams" => rendered_page(tool, args, &response, root, render::team_entry, |item| {
                format!(
                    "{} {} id={} ({} labels, {} members)",
                    item["key"].as_str().unwrap_or(""),
                    item["name"].as_str().unwrap_or(""),
                    item["id"].as_str().unwrap_or(""),
                    item["labels"].as_array().map_or(0, Vec::len),
                    item["members"].as_array().map_or(0, Vec::len)
                )
            })?,
            "projects" => rendered_page(tool, args, &response, root, render::project, |item| {
                format!(
                    "{} [{}, {:.0}% done] id={}",
                    item["name"].as_str().unwrap_or(""),
                    item["status"].as_str().unwrap_or(""),
                    item["progress"].as_f64().unwrap_or(0.0) * 100.0,
                    item["id"].as_str().unwrap_or("")
                )
            })?,
            _ => rendered_page(tool, args, &response, root, render::state, |item| {
                format!(
                    "{} {} ({}) id={}",
                    item["team"]["key"].as_str().unwrap_or(""),
                    item["name"].as_str().unwrap_or(""),
                    item["type"].as_str().unwrap_or(""),
                    item["id"].as_str().unwrap_or("")
                )
            })?,
        };
        let mut out = format!("{} {key}:\n{text}", items.len());
        render::page_footer(&mut out, &next);
        Ok(ToolOutput {
            structured: render::object([(key, Value::Array(items)), ("next_cursor", next)]),
            text: out,
        })
    }
}
