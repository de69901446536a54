//! Executes GraphQL against the store by walking the selection set: one generic object type
//! resolves fields from an entity's JSON (plain values, `<field>Id` references, embedded objects,
//! connections), so no operation is answered by hand.

use std::cell::RefCell;

use apollo_compiler::{
    Schema,
    resolvers::{FieldError, ObjectValue, ResolveInfo, ResolvedValue},
    response::JsonValue,
    validation::Valid,
};
use serde_json::{Map, Value, json};

use super::{
    mutate,
    store::{Entity, Store},
};

/// Per-request state shared by every resolver.
pub(crate) struct Ctx<'s> {
    pub(crate) store: RefCell<&'s mut Store>,
    pub(crate) schema: &'s Valid<Schema>,
    /// The authenticated user's id (`viewer`, `isMe`, comment authors).
    pub(crate) viewer: String,
}

pub(crate) fn field_error(message: impl Into<String>) -> FieldError {
    FieldError {
        message: message.into(),
    }
}

fn leaf<'a>(value: Value) -> ResolvedValue<'a> {
    ResolvedValue::leaf(serde_json::from_value::<JsonValue>(value).unwrap_or(JsonValue::Null))
}

fn args_of(info: &ResolveInfo<'_>) -> Map<String, Value> {
    serde_json::to_value(info.arguments())
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// A resolvable object: a root, an entity, a connection, an edge or a page info.
pub(crate) enum Obj<'c, 's> {
    Query(&'c Ctx<'s>),
    Mutation(&'c Ctx<'s>),
    Entity {
        ty: String,
        data: Entity,
        ctx: &'c Ctx<'s>,
    },
    Connection {
        ty: String,
        node_ty: String,
        items: Vec<Entity>,
        has_next: bool,
        ctx: &'c Ctx<'s>,
    },
    Edge {
        node_ty: String,
        item: Entity,
        ctx: &'c Ctx<'s>,
    },
}

impl<'c, 's> Obj<'c, 's> {
    fn type_of(&self) -> &str {
        match self {
            Obj::Query(_) => "Query",
            Obj::Mutation(_) => "Mutation",
            Obj::Entity { ty, .. } | Obj::Connection { ty, .. } => ty,
            Obj::Edge { node_ty, .. } => {
                if node_ty == "IssueSearchResult" {
                    "IssueSearchResultEdge"
                } else {
                    edge_name(node_ty)
                }
            }
        }
    }
}

fn edge_name(node_ty: &str) -> &'static str {
    match node_ty {
        "Issue" => "IssueEdge",
        "Team" => "TeamEdge",
        "Project" => "ProjectEdge",
        "WorkflowState" => "WorkflowStateEdge",
        "Comment" => "CommentEdge",
        "IssueLabel" => "IssueLabelEdge",
        _ => "UserEdge",
    }
}

/// The named type a field returns (list and non-null stripped).
fn field_type<'a>(schema: &'a Schema, ty: &str, field: &str) -> Option<&'a str> {
    let object = schema.get_object(ty)?;
    Some(object.fields.get(field)?.ty.inner_named_type().as_str())
}

/// A connection over `items` after Linear's `filter`, `orderBy`, `after` and `first`.
pub(crate) fn connection<'c, 's>(
    ctx: &'c Ctx<'s>,
    ty: &str,
    node_ty: &str,
    mut items: Vec<Entity>,
    args: &Map<String, Value>,
) -> Result<Obj<'c, 's>, FieldError> {
    if let Some(filter) = args.get("filter").filter(|f| f.is_object()) {
        let store = ctx.store.borrow();
        items.retain(|item| matches(ctx, &store, node_ty, item, filter));
    }
    let order = args
        .get("orderBy")
        .and_then(Value::as_str)
        .unwrap_or("createdAt")
        .to_owned();
    let key = |e: &Entity| {
        (
            e.get(&order)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            e.get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )
    };
    items.sort_by_key(|e| std::cmp::Reverse(key(e)));
    if let Some(after) = args.get("after").and_then(Value::as_str) {
        let position = items
            .iter()
            .position(|e| e.get("id").and_then(Value::as_str) == Some(after))
            .ok_or_else(|| {
                field_error("Argument Validation Error - after must be a valid cursor")
            })?;
        items.drain(..=position);
    }
    let first = args.get("first").and_then(Value::as_i64).unwrap_or(50);
    if !(0..=250).contains(&first) {
        return Err(field_error(
            "Argument Validation Error - first must not be greater than 250",
        ));
    }
    let first = usize::try_from(first).unwrap_or(50);
    let has_next = items.len() > first;
    items.truncate(first);
    Ok(Obj::Connection {
        ty: ty.to_owned(),
        node_ty: node_ty.to_owned(),
        items,
        has_next,
        ctx,
    })
}

/// Linear's filter semantics for the subset of comparators the schema copy declares.
fn matches(ctx: &Ctx<'_>, store: &Store, ty: &str, item: &Entity, filter: &Value) -> bool {
    let Some(filter) = filter.as_object() else {
        return true;
    };
    filter.iter().all(|(key, cond)| match key.as_str() {
        "and" => cond
            .as_array()
            .is_none_or(|all| all.iter().all(|f| matches(ctx, store, ty, item, f))),
        "or" => cond
            .as_array()
            .is_none_or(|any| any.iter().any(|f| matches(ctx, store, ty, item, f))),
        "isMe" => {
            let is_me = item.get("id").and_then(Value::as_str) == Some(ctx.viewer.as_str());
            cond.get("eq")
                .and_then(Value::as_bool)
                .is_none_or(|want| want == is_me)
        }
        _ => {
            // Linear's ProjectFilter names the `teams` relation `accessibleTeams`.
            let key = if key == "accessibleTeams" {
                "teams"
            } else {
                key.as_str()
            };
            let target = field_type(ctx.schema, ty, key).unwrap_or_default();
            if target.ends_with("Connection") {
                let related = store.related(ty, key, item);
                let node_ty = field_type(ctx.schema, target, "nodes").unwrap_or_default();
                let Some(cond) = cond.as_object() else {
                    return true;
                };
                cond.iter().all(|(op, sub)| match op.as_str() {
                    "every" => related.iter().all(|r| matches(ctx, store, node_ty, r, sub)),
                    "some" => related.iter().any(|r| matches(ctx, store, node_ty, r, sub)),
                    _ => related
                        .iter()
                        .any(|r| matches(ctx, store, node_ty, r, &json!({ op: sub }))),
                })
            } else if ctx.schema.get_object(target).is_some() {
                let reference = item
                    .get(format!("{key}Id").as_str())
                    .and_then(Value::as_str)
                    .and_then(|id| store.get(target, id));
                let wants_null = cond.get("null").and_then(Value::as_bool);
                match reference {
                    None => wants_null == Some(true),
                    Some(_) if wants_null == Some(true) => false,
                    Some(r) => {
                        let mut rest = cond.clone();
                        if let Some(map) = rest.as_object_mut() {
                            map.remove("null");
                        }
                        matches(ctx, store, target, r, &rest)
                    }
                }
            } else {
                compare(item.get(key).unwrap_or(&Value::Null), cond)
            }
        }
    })
}

fn compare(value: &Value, cond: &Value) -> bool {
    let Some(ops) = cond.as_object() else {
        return true;
    };
    let lower = |v: &Value| v.as_str().map(str::to_lowercase);
    ops.iter().all(|(op, operand)| match op.as_str() {
        "eq" => {
            value == operand || (value.as_f64().is_some() && value.as_f64() == operand.as_f64())
        }
        "neq" => value != operand,
        "in" => operand.as_array().is_some_and(|list| list.contains(value)),
        "nin" => operand.as_array().is_none_or(|list| !list.contains(value)),
        "eqIgnoreCase" => lower(value).is_some() && lower(value) == lower(operand),
        "containsIgnoreCase" => lower(value)
            .zip(lower(operand))
            .is_some_and(|(v, o)| v.contains(&o)),
        "null" => operand.as_bool() == Some(value.is_null()),
        _ => false,
    })
}

impl<'c, 's> Obj<'c, 's> {
    fn entity(&self, ty: &str, data: Entity) -> Self {
        Obj::Entity {
            ty: ty.to_owned(),
            data,
            ctx: self.ctx(),
        }
    }

    fn ctx(&self) -> &'c Ctx<'s> {
        match self {
            Obj::Query(ctx) | Obj::Mutation(ctx) => ctx,
            Obj::Entity { ctx, .. } | Obj::Connection { ctx, .. } | Obj::Edge { ctx, .. } => ctx,
        }
    }

    fn resolve_root<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
        ctx: &'c Ctx<'s>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let args = args_of(info);
        let name = info.field_name();
        let ty = info.field_definition().ty.inner_named_type().as_str();
        if matches!(self, Obj::Mutation(_)) {
            let data = mutate::run(ctx, name, &args)?;
            return Ok(ResolvedValue::object(self.entity(ty, data)));
        }
        match name {
            "issue" | "team" => {
                let id = args.get("id").and_then(Value::as_str).unwrap_or_default();
                let found = ctx.store.borrow().get(ty, id).cloned();
                let data = found.ok_or_else(|| field_error(format!("Entity not found: {ty}")))?;
                Ok(ResolvedValue::object(self.entity(ty, data)))
            }
            "viewer" => {
                let found = ctx.store.borrow().get("User", &ctx.viewer).cloned();
                Ok(ResolvedValue::object(
                    self.entity("User", found.unwrap_or_default()),
                ))
            }
            "searchIssues" => {
                let term = args
                    .get("term")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_lowercase();
                let with_comments = args
                    .get("includeComments")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let items: Vec<Entity> = {
                    let store = ctx.store.borrow();
                    store
                        .all("Issue")
                        .iter()
                        .filter(|issue| {
                            let mut haystack = format!(
                                "{} {}",
                                issue.get("title").and_then(Value::as_str).unwrap_or(""),
                                issue
                                    .get("description")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                            )
                            .to_lowercase();
                            if with_comments {
                                for c in store.related("Issue", "comments", issue) {
                                    haystack.push(' ');
                                    haystack.push_str(
                                        &c.get("body")
                                            .and_then(Value::as_str)
                                            .unwrap_or("")
                                            .to_lowercase(),
                                    );
                                }
                            }
                            term.split_whitespace().all(|word| haystack.contains(word))
                        })
                        .cloned()
                        .collect()
                };
                Ok(ResolvedValue::object(connection(
                    ctx,
                    ty,
                    "IssueSearchResult",
                    items,
                    &args,
                )?))
            }
            _ if ty.ends_with("Connection") => {
                let node_ty = field_type(ctx.schema, ty, "nodes")
                    .unwrap_or_default()
                    .to_owned();
                let items = ctx.store.borrow().all(&node_ty).to_vec();
                Ok(ResolvedValue::object(connection(
                    ctx, ty, &node_ty, items, &args,
                )?))
            }
            _ => Err(self.unknown_field_error(info)),
        }
    }
}

impl ObjectValue for Obj<'_, '_> {
    fn type_name(&self) -> &str {
        self.type_of()
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let name = info.field_name();
        match self {
            Obj::Query(ctx) | Obj::Mutation(ctx) => self.resolve_root(info, ctx),
            Obj::Connection {
                node_ty,
                items,
                has_next,
                ctx,
                ..
            } => match name {
                "nodes" => {
                    Ok(ResolvedValue::list(items.iter().map(|i| {
                        ResolvedValue::object(self.entity(node_ty, i.clone()))
                    })))
                }
                "edges" => Ok(ResolvedValue::list(items.iter().map(|i| {
                    ResolvedValue::object(Obj::Edge {
                        node_ty: node_ty.clone(),
                        item: i.clone(),
                        ctx,
                    })
                }))),
                "pageInfo" => {
                    let id = |e: Option<&Entity>| {
                        e.and_then(|e| e.get("id")).cloned().unwrap_or(Value::Null)
                    };
                    let info = json!({ "hasNextPage": has_next, "hasPreviousPage": false,
                                       "startCursor": id(items.first()), "endCursor": id(items.last()) });
                    Ok(ResolvedValue::object(self.entity(
                        "PageInfo",
                        info.as_object().cloned().unwrap_or_default(),
                    )))
                }
                "totalCount" => Ok(leaf(json!(items.len()))),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::Edge { node_ty, item, .. } => match name {
                "cursor" => Ok(leaf(item.get("id").cloned().unwrap_or(Value::Null))),
                "node" => Ok(ResolvedValue::object(self.entity(node_ty, item.clone()))),
                _ => Err(self.unknown_field_error(info)),
            },
            Obj::Entity { ty, data, ctx } => {
                let target = info.field_definition().ty.inner_named_type().as_str();
                let is_object = ctx.schema.get_object(target).is_some();
                if target.ends_with("Connection") {
                    let node_ty = field_type(ctx.schema, target, "nodes")
                        .unwrap_or_default()
                        .to_owned();
                    let items = ctx.store.borrow().related(ty, name, data);
                    return Ok(ResolvedValue::object(connection(
                        ctx,
                        target,
                        &node_ty,
                        items,
                        &args_of(info),
                    )?));
                }
                if is_object {
                    if let Some(Value::Object(embedded)) = data.get(name) {
                        return Ok(ResolvedValue::object(self.entity(target, embedded.clone())));
                    }
                    let id = data.get(&format!("{name}Id")).and_then(Value::as_str);
                    let found = id.and_then(|id| ctx.store.borrow().get(target, id).cloned());
                    return Ok(match found {
                        Some(entity) => ResolvedValue::object(self.entity(target, entity)),
                        None => ResolvedValue::null(),
                    });
                }
                match (name, data.get(name)) {
                    ("priorityLabel", _) => Ok(leaf(json!(priority_label(data.get("priority"))))),
                    (_, Some(value)) => Ok(leaf(value.clone())),
                    (_, None) if !info.field_definition().ty.is_non_null() => {
                        Ok(ResolvedValue::null())
                    }
                    _ => Err(self.unknown_field_error(info)),
                }
            }
        }
    }
}

fn priority_label(priority: Option<&Value>) -> &'static str {
    match priority.and_then(Value::as_f64).map(|p| p as i64) {
        Some(1) => "Urgent",
        Some(2) => "High",
        Some(3) => "Medium",
        Some(4) => "Low",
        _ => "No priority",
    }
}
