//! The Cedar engine: a validated policy set plus an index that keeps decisions cheap. Cedar
//! evaluates every policy it is handed, so with a thousand policies in force the engine hands it
//! only those whose scope (principal, action, resource heads) can match the request, and caches
//! that subset per (action, tool, groups) — the cache lives in the immutable snapshot, so a reload
//! drops it with the old policies.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Effect, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint, Request, ResourceConstraint,
    RestrictedExpression, ValidationMode, Validator,
};
use serde::Serialize;
use serde_json::Value;

use crate::diag::{Diagnostic, from_miette};
use crate::schema::PolicySchema;
use crate::{Action, Decision, PolicyEngine, Principal, ToolRef, context};

/// The reason a default deny carries.
pub const DEFAULT_DENY_REASON: &str = "no policy allows this";

/// Bound on cached policy subsets; past it the cache starts over (cheap to rebuild).
const CACHE_CAP: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("policy directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// What a successful load found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub files: usize,
    pub policies: usize,
    pub permits: usize,
    pub forbids: usize,
    /// Validator warnings (e.g. a policy that can never apply), with positions.
    pub warnings: Vec<String>,
}

/// A decision with everything that went into it: what `manifold policy explain` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub decision: Decision,
    /// Ids of the policies that determined the decision.
    pub determining: Vec<String>,
    /// Their `@reason` annotations, in the same order.
    pub reasons: Vec<String>,
    /// Policies that failed to evaluate (Cedar skips them) and request-building errors.
    pub errors: Vec<String>,
    /// How many policies were evaluated after scope filtering.
    pub evaluated: usize,
}

#[derive(Debug, Clone)]
struct Meta {
    reason: Option<String>,
    file: PathBuf,
}

#[derive(Debug, Clone)]
struct Scoped {
    policy: Policy,
    principal: PrincipalConstraint,
    action: ActionConstraint,
    resource: ResourceConstraint,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    action: Action,
    tool: String,
    instance: String,
    groups: Vec<String>,
}

#[derive(Debug)]
struct Types {
    user: EntityTypeName,
    group: EntityTypeName,
    tool: EntityTypeName,
    adapter: EntityTypeName,
    actions: [EntityUid; 3],
}

impl Types {
    fn new() -> Option<Self> {
        let action_ty = EntityTypeName::from_str("Action").ok()?;
        let act = |id: &str| EntityUid::from_type_name_and_id(action_ty.clone(), EntityId::new(id));
        Some(Types {
            user: EntityTypeName::from_str("User").ok()?,
            group: EntityTypeName::from_str("Group").ok()?,
            tool: EntityTypeName::from_str("Tool").ok()?,
            adapter: EntityTypeName::from_str("Adapter").ok()?,
            actions: [act("list"), act("call"), act("fetch")],
        })
    }

    fn action(&self, a: Action) -> &EntityUid {
        match a {
            Action::List => &self.actions[0],
            Action::Call => &self.actions[1],
            Action::Fetch => &self.actions[2],
        }
    }

    fn uid(&self, ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// A loaded, validated policy set. Immutable: reloading builds a new one.
pub struct CedarEngine {
    schema: PolicySchema,
    all: PolicySet,
    meta: HashMap<String, Meta>,
    scoped: Vec<Scoped>,
    types: Types,
    authorizer: Authorizer,
    cache: RwLock<HashMap<CacheKey, Arc<PolicySet>>>,
    summary: Summary,
}

impl std::fmt::Debug for CedarEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CedarEngine")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

/// The `*.cedar` files of a directory, sorted so ids and diagnostics come out stable.
pub(crate) fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let rd = std::fs::read_dir(dir).map_err(|source| EngineError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn diag_at(file: &Path, src: &str, needle: &str, message: String) -> Diagnostic {
    let (line, column) = src
        .find(needle)
        .map_or((0, 0), |o| crate::diag::line_col(src, o));
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column,
        message,
    }
}

impl CedarEngine {
    /// Loads and validates every `*.cedar` file in `dir`.
    pub fn load_dir(dir: &Path, schema: &PolicySchema) -> Result<Self, Vec<Diagnostic>> {
        let files = policy_files(dir).map_err(|e| {
            vec![Diagnostic {
                file: dir.to_path_buf(),
                line: 0,
                column: 0,
                message: e.to_string(),
            }]
        })?;
        let mut sources = Vec::with_capacity(files.len());
        let mut diags = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(text) => sources.push((f, text)),
                Err(e) => diags.push(Diagnostic {
                    file: f,
                    line: 0,
                    column: 0,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        Self::from_sources(&sources, schema)
    }

    /// Parses and validates policy texts (file name, contents). Every policy needs a unique id:
    /// its `@id("…")` annotation, or `<file>#<n>` when it has none.
    pub fn from_sources(
        sources: &[(PathBuf, String)],
        schema: &PolicySchema,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let mut all = PolicySet::new();
        let mut meta: HashMap<String, Meta> = HashMap::new();
        for (file, src) in sources {
            let set = match PolicySet::from_str(src) {
                Ok(s) => s,
                Err(errs) => {
                    diags.extend(errs.iter().map(|e| from_miette(file, src, e)));
                    continue;
                }
            };
            if let Some(t) = set.templates().next() {
                diags.push(from_miette_or(
                    file,
                    src,
                    "templates are not supported; write static policies",
                    t.annotation("id"),
                ));
            }
            let stem = file
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            for (n, p) in set.policies().enumerate() {
                let id = p
                    .annotation("id")
                    .map_or_else(|| format!("{stem}#{n}"), str::to_string);
                if let Some(prev) = meta.get(&id) {
                    diags.push(diag_at(
                        file,
                        src,
                        &format!("\"{id}\""),
                        format!(
                            "duplicate policy id `{id}` (first in {})",
                            prev.file.display()
                        ),
                    ));
                    continue;
                }
                let policy = p.new_id(PolicyId::new(&id));
                if let Err(e) = all.add(policy) {
                    diags.push(diag_at(file, src, &format!("\"{id}\""), e.to_string()));
                    continue;
                }
                meta.insert(
                    id,
                    Meta {
                        reason: p.annotation("reason").map(str::to_string),
                        file: file.clone(),
                    },
                );
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }

        let result = Validator::new(schema.schema.clone()).validate(&all, ValidationMode::Strict);
        let src_of = |id: &PolicyId| -> Option<&(PathBuf, String)> {
            let file = &meta.get(id.to_string().as_str())?.file;
            sources.iter().find(|(f, _)| f == file)
        };
        for e in result.validation_errors() {
            let d = match src_of(e.policy_id()) {
                Some((f, src)) => {
                    let mut d = from_miette(f, src, e);
                    d.message = format!("policy `{}`: {}", e.policy_id(), d.message);
                    d
                }
                None => Diagnostic {
                    file: PathBuf::new(),
                    line: 0,
                    column: 0,
                    message: e.to_string(),
                },
            };
            diags.push(d);
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let warnings = result
            .validation_warnings()
            .map(|w| match src_of(w.policy_id()) {
                Some((f, src)) => from_miette(f, src, w).to_string(),
                None => w.to_string(),
            })
            .collect();

        let scoped: Vec<Scoped> = all
            .policies()
            .map(|p| Scoped {
                policy: p.clone(),
                principal: p.principal_constraint(),
                action: p.action_constraint(),
                resource: p.resource_constraint(),
            })
            .collect();
        let permits = scoped
            .iter()
            .filter(|s| s.policy.effect() == Effect::Permit)
            .count();
        let summary = Summary {
            files: sources.len(),
            policies: scoped.len(),
            permits,
            forbids: scoped.len() - permits,
            warnings,
        };
        let types = Types::new().ok_or_else(|| {
            vec![Diagnostic {
                file: PathBuf::new(),
                line: 0,
                column: 0,
                message: "internal: entity type names did not parse".into(),
            }]
        })?;
        Ok(CedarEngine {
            schema: schema.clone(),
            all,
            meta,
            scoped,
            types,
            authorizer: Authorizer::new(),
            cache: RwLock::new(HashMap::new()),
            summary,
        })
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn schema(&self) -> &PolicySchema {
        &self.schema
    }

    /// All policies in force.
    pub fn policy_set(&self) -> &PolicySet {
        &self.all
    }

    /// The `@reason` of a policy.
    pub fn reason_of(&self, id: &str) -> Option<&str> {
        self.meta.get(id).and_then(|m| m.reason.as_deref())
    }

    /// Whether a policy's scope can match this request. Sound, not exact: it only drops
    /// policies whose heads name another principal, action or resource; conditions stay Cedar's.
    fn in_scope(
        &self,
        s: &Scoped,
        action: &EntityUid,
        tool: &ToolRef<'_>,
        groups: &[String],
    ) -> bool {
        let t = &self.types;
        let action_ok = match &s.action {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(a) => a == action,
            ActionConstraint::In(list) => list.contains(action),
        };
        let tool_uid = || t.uid(&t.tool, tool.name);
        let adapter_uid = || t.uid(&t.adapter, tool.instance);
        let res_in = |u: &EntityUid| *u == tool_uid() || *u == adapter_uid();
        let resource_ok = match &s.resource {
            ResourceConstraint::Any => true,
            ResourceConstraint::Eq(u) => *u == tool_uid(),
            ResourceConstraint::In(u) => res_in(u),
            ResourceConstraint::Is(ty) => *ty == t.tool,
            ResourceConstraint::IsIn(ty, u) => *ty == t.tool && res_in(u),
        };
        // User-specific heads stay in (the cache is per group set, not per user); Cedar's own
        // scope check rejects them cheaply.
        let princ_in = |u: &EntityUid| {
            u.type_name() == &t.user
                || (u.type_name() == &t.group && groups.iter().any(|g| g == u.id().unescaped()))
        };
        let principal_ok = match &s.principal {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::Eq(u) => u.type_name() == &t.user,
            PrincipalConstraint::In(u) => princ_in(u),
            PrincipalConstraint::Is(ty) => *ty == t.user,
            PrincipalConstraint::IsIn(ty, u) => *ty == t.user && princ_in(u),
        };
        action_ok && resource_ok && principal_ok
    }

    fn subset(&self, principal: &Principal, action: Action, tool: &ToolRef<'_>) -> Arc<PolicySet> {
        let mut groups = principal.groups.clone();
        groups.sort_unstable();
        groups.dedup();
        let key = CacheKey {
            action,
            tool: tool.name.to_string(),
            instance: tool.instance.to_string(),
            groups,
        };
        if let Ok(cache) = self.cache.read()
            && let Some(s) = cache.get(&key)
        {
            return Arc::clone(s);
        }
        let action_uid = self.types.action(action);
        let mut set = PolicySet::new();
        for s in &self.scoped {
            if self.in_scope(s, action_uid, tool, &key.groups) {
                // Ids are unique in `all`, so adding to a fresh set cannot collide.
                let _ = set.add(s.policy.clone());
            }
        }
        let set = Arc::new(set);
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
            cache.insert(key, Arc::clone(&set));
        }
        set
    }

    fn user_entity(&self, principal: &Principal) -> Result<Entity, String> {
        let t = &self.types;
        let uid = t.uid(&t.user, principal.user.as_deref().unwrap_or(""));
        let parents: HashSet<EntityUid> = principal
            .groups
            .iter()
            .map(|g| t.uid(&t.group, g))
            .collect();
        let attrs = HashMap::from([
            (
                "email".to_string(),
                RestrictedExpression::new_string(principal.email.clone().unwrap_or_default()),
            ),
            (
                "domain".to_string(),
                RestrictedExpression::new_string(principal.domain()),
            ),
            (
                "groups".to_string(),
                RestrictedExpression::new_set(
                    principal
                        .groups
                        .iter()
                        .map(|g| RestrictedExpression::new_string(g.clone())),
                ),
            ),
        ]);
        Entity::new(uid, attrs, parents).map_err(|e| e.to_string())
    }

    fn tool_entities(
        &self,
        tool: &ToolRef<'_>,
        out: &mut Vec<Entity>,
        adapters: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        let t = &self.types;
        let adapter = t.uid(&t.adapter, tool.instance);
        let s = |v: &str| RestrictedExpression::new_string(v.to_string());
        let attrs = HashMap::from([
            ("name".to_string(), s(tool.name)),
            ("kind".to_string(), s(tool.kind)),
            ("instance".to_string(), s(tool.instance)),
            (
                "read_only".to_string(),
                RestrictedExpression::new_bool(tool.read_only),
            ),
            (
                "destructive".to_string(),
                RestrictedExpression::new_bool(tool.destructive),
            ),
            (
                "tags".to_string(),
                RestrictedExpression::new_set(tool.tags.iter().map(|x| s(x))),
            ),
        ]);
        out.push(
            Entity::new(
                t.uid(&t.tool, tool.name),
                attrs,
                HashSet::from([adapter.clone()]),
            )
            .map_err(|e| e.to_string())?,
        );
        if adapters.insert(tool.instance.to_string()) {
            let attrs = HashMap::from([
                ("kind".to_string(), s(tool.kind)),
                ("instance".to_string(), s(tool.instance)),
            ]);
            out.push(Entity::new(adapter, attrs, HashSet::new()).map_err(|e| e.to_string())?);
        }
        Ok(())
    }

    fn entities(&self, principal: &Principal, tools: &[ToolRef<'_>]) -> Result<Entities, String> {
        let mut list = Vec::with_capacity(2 + tools.len());
        list.push(self.user_entity(principal)?);
        let mut adapters = BTreeSet::new();
        for tool in tools {
            self.tool_entities(tool, &mut list, &mut adapters)?;
        }
        Entities::from_entities(list, None).map_err(|e| e.to_string())
    }

    fn context(&self, principal: &Principal, args: Option<&Value>) -> Result<Context, String> {
        context::build(
            args,
            &self.schema.args,
            principal.client_id.as_deref().unwrap_or(""),
        )
    }

    /// Runs Cedar for one tool against prepared entities and context.
    fn run(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        entities: &Entities,
        context: Context,
    ) -> Explanation {
        let t = &self.types;
        let subset = self.subset(principal, action, tool);
        let request = match Request::new(
            t.uid(&t.user, principal.user.as_deref().unwrap_or("")),
            t.action(action).clone(),
            t.uid(&t.tool, tool.name),
            context,
            None,
        ) {
            Ok(r) => r,
            Err(e) => return self.failed(e.to_string()),
        };
        let response = self.authorizer.is_authorized(&request, &subset, entities);
        let mut determining: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|p| p.to_string())
            .collect();
        determining.sort();
        let reasons: Vec<String> = determining
            .iter()
            .map(|id| {
                self.reason_of(id)
                    .map_or_else(|| format!("policy {id}"), str::to_string)
            })
            .collect();
        let errors = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        let decision = match response.decision() {
            cedar_policy::Decision::Allow => Decision::Allow {
                policies: determining.clone(),
            },
            cedar_policy::Decision::Deny => Decision::Deny {
                reason: reasons
                    .first()
                    .cloned()
                    .unwrap_or_else(|| DEFAULT_DENY_REASON.to_string()),
                policies: determining.clone(),
            },
        };
        Explanation {
            decision,
            determining,
            reasons,
            errors,
            evaluated: subset.num_of_policies(),
        }
    }

    /// A request that could not even be put to Cedar: denied, with the error for `explain`.
    fn failed(&self, error: String) -> Explanation {
        Explanation {
            decision: Decision::Deny {
                reason: format!("request could not be evaluated: {error}"),
                policies: Vec::new(),
            },
            determining: Vec::new(),
            reasons: Vec::new(),
            errors: vec![error],
            evaluated: 0,
        }
    }

    /// The decision and everything that went into it.
    pub fn explain(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        args: Option<&Value>,
    ) -> Explanation {
        let entities = match self.entities(principal, std::slice::from_ref(tool)) {
            Ok(e) => e,
            Err(e) => return self.failed(e),
        };
        let context = match self.context(principal, args) {
            Ok(c) => c,
            Err(e) => return self.failed(e),
        };
        self.run(principal, action, tool, &entities, context)
    }

    /// `tools/list` filtering: one decision per tool with the `list` action, sharing the
    /// entities and context across tools. Returns one flag per input tool.
    pub fn filter_list(&self, principal: &Principal, tools: &[ToolRef<'_>]) -> Vec<bool> {
        let (Ok(entities), Ok(context)) = (
            self.entities(principal, tools),
            self.context(principal, None),
        ) else {
            return vec![false; tools.len()];
        };
        tools
            .iter()
            .map(|tool| {
                self.run(principal, Action::List, tool, &entities, context.clone())
                    .decision
                    .is_allowed()
            })
            .collect()
    }
}

/// Diagnostic for a template, positioned at its `@id` when it has one.
fn from_miette_or(file: &Path, src: &str, msg: &str, id: Option<&str>) -> Diagnostic {
    match id {
        Some(id) => diag_at(file, src, &format!("\"{id}\""), msg.to_string()),
        None => diag_at(file, src, "?principal", msg.to_string()),
    }
}

impl PolicyEngine for CedarEngine {
    fn decide(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        arguments: Option<&Value>,
    ) -> Decision {
        self.explain(principal, action, tool, arguments).decision
    }
}
