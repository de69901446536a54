//! The mutations the emulator supports; each changes the store and returns its payload entity
//! (`success`, `lastSyncId` and a `<field>Id` reference the generic resolver follows).

use serde_json::{Map, Value, json};

use super::{
    resolve::{Ctx, field_error},
    store::uuid,
};
use apollo_compiler::resolvers::FieldError;

type Entity = Map<String, Value>;

fn input_error(message: &str) -> FieldError {
    field_error(format!("Argument Validation Error - {message}"))
}

pub(crate) fn run(
    ctx: &Ctx<'_>,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Entity, FieldError> {
    let input = args
        .get("input")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut store = ctx.store.borrow_mut();
    let exists = |store: &super::store::Store, ty: &str, key: &str| -> Result<(), FieldError> {
        match input.get(key) {
            Some(Value::String(id)) if store.get(ty, id).is_none() => {
                Err(field_error(format!("Entity not found: {ty}")))
            }
            _ => Ok(()),
        }
    };
    if let Some(p) = input.get("priority").and_then(Value::as_i64)
        && !(0..=4).contains(&p)
    {
        return Err(input_error("priority must be between 0 and 4"));
    }
    for (ty, key) in [
        ("User", "assigneeId"),
        ("WorkflowState", "stateId"),
        ("Project", "projectId"),
    ] {
        exists(&store, ty, key)?;
    }
    for label in input
        .get("labelIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if store
            .get("IssueLabel", label.as_str().unwrap_or_default())
            .is_none()
        {
            return Err(field_error("Entity not found: IssueLabel"));
        }
    }
    if input
        .get("title")
        .and_then(Value::as_str)
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(input_error("title should not be empty"));
    }
    let now = store.tick();
    let sync = store.sync_id;
    match name {
        "issueCreate" => {
            let team_id = input
                .get("teamId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let team = store
                .get("Team", &team_id)
                .cloned()
                .ok_or_else(|| field_error("Entity not found: Team"))?;
            let title = input
                .get("title")
                .and_then(Value::as_str)
                .ok_or_else(|| input_error("title should not be empty"))?;
            let key = team.get("key").and_then(Value::as_str).unwrap_or_default();
            let number = store
                .all("Issue")
                .iter()
                .filter(|i| i.get("teamId") == Some(&json!(team_id)))
                .count()
                + 1;
            let default_state = store
                .all("WorkflowState")
                .iter()
                .find(|s| {
                    s.get("teamId") == Some(&json!(team_id))
                        && s.get("type") == Some(&json!("unstarted"))
                })
                .and_then(|s| s.get("id").cloned())
                .unwrap_or(Value::Null);
            let state = input.get("stateId").cloned().unwrap_or(default_state);
            if store
                .get("WorkflowState", state.as_str().unwrap_or_default())
                .and_then(|s| s.get("teamId"))
                != Some(&json!(team_id))
            {
                return Err(input_error(
                    "stateId must be a workflow state of the issue's team",
                ));
            }
            let id = uuid(7, store.all("Issue").len() + 1000);
            let issue = json!({
                "id": id, "number": number as f64, "identifier": format!("{key}-{number}"), "title": title,
                "description": input.get("description").cloned().unwrap_or(Value::Null),
                "priority": input.get("priority").and_then(Value::as_f64).unwrap_or(0.0),
                "url": format!("https://linear.app/sandbox/issue/{key}-{number}"), "createdAt": now, "updatedAt": now,
                "teamId": team_id, "stateId": state, "assigneeId": input.get("assigneeId").cloned().unwrap_or(Value::Null),
                "projectId": input.get("projectId").cloned().unwrap_or(Value::Null),
                "labelIds": input.get("labelIds").cloned().unwrap_or(json!([])),
            });
            store.insert("Issue", issue.as_object().cloned().unwrap_or_default());
            Ok(payload(sync, "issueId", &id))
        }
        "issueUpdate" => {
            let id = args.get("id").and_then(Value::as_str).unwrap_or_default();
            let issue = store
                .get_mut("Issue", id)
                .ok_or_else(|| field_error("Entity not found: Issue"))?;
            for (key, value) in &input {
                let value = if key == "priority" {
                    json!(value.as_f64().unwrap_or(0.0))
                } else {
                    value.clone()
                };
                issue.insert(key.clone(), value);
            }
            issue.insert("updatedAt".into(), json!(now));
            let id = issue
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Ok(payload(sync, "issueId", &id))
        }
        "commentCreate" => {
            let issue = input
                .get("issueId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let issue_id = store
                .get("Issue", issue)
                .and_then(|i| i.get("id").cloned())
                .ok_or_else(|| field_error("Entity not found: Issue"))?;
            let body = input
                .get("body")
                .and_then(Value::as_str)
                .filter(|b| !b.trim().is_empty())
                .ok_or_else(|| input_error("body should not be empty"))?;
            let id = uuid(8, store.all("Comment").len() + 1000);
            let comment = json!({
                "id": id, "body": body, "issueId": issue_id, "userId": ctx.viewer, "createdAt": now, "updatedAt": now,
                "url": format!("https://linear.app/sandbox/comment/{id}"),
            });
            store.insert("Comment", comment.as_object().cloned().unwrap_or_default());
            Ok(payload(sync, "commentId", &id))
        }
        other => Err(field_error(format!(
            "Cannot query field \"{other}\" on type \"Mutation\"."
        ))),
    }
}

fn payload(sync: u64, key: &str, id: &str) -> Entity {
    json!({ "success": true, "lastSyncId": sync as f64, key: id })
        .as_object()
        .cloned()
        .unwrap_or_default()
}
