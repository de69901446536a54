//! The Cedar engine: a validated policy set plus an index that keeps decisions cheap. Cedar
//! evaluates every policy it is handed, so with a thousand policies in force the engine hands it
//! only those whose scope (principal, action, resource heads) can match the request, and caches
//! that subset per (action, tool, groups) — the cache lives in the immutable snapshot, so a reload
//! drops it with the old policies.
//!
//! Further per-snapshot work that keeps a decision cheap:
//! - the tool and adapter entities of the catalog are built once, at load, as one small entity
//!   set per tool; a decision adds the user to it, so Cedar only closes the user's ancestors;
//! - the user entity is built once per principal (user, e-mail, groups, client id);
//! - a subset with no policy at all is a default deny, and a subset of unconditional permits
//!   (no forbid, no `when`/`unless`) is decided by its scope heads alone: Cedar is not called;
//! - `list` decisions without arguments are cached per (principal, catalog tool): they depend on
//!   nothing else, as long as no condition dereferences an entity literal (checked at load).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher, RandomState};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock, RwLock};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Effect, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint, Request, ResourceConstraint,
    RestrictedExpression, ValidationMode, Validator,
};
use serde::Serialize;
use serde_json::Value;

use crate::diag::{Diagnostic, from_miette};
use crate::facts::{Facts, FactsError};
use crate::schema::PolicySchema;
use crate::{
    Action, Decision, ItemAction, ItemKind, ItemRef, PolicyEngine, Principal, ToolRef, context,
};

mod items;

/// The reason a default deny carries.
pub const DEFAULT_DENY_REASON: &str = "no policy allows this";

/// Bound on cached policy subsets; past it the cache starts over (cheap to rebuild).
const CACHE_CAP: usize = 8192;

/// Bound on cached principals (user entity, `list` decisions, entity sets); past it the cache
/// starts over.
const PRINCIPAL_CAP: usize = 512;

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
    permit: bool,
    /// Has a `when` or `unless` clause.
    conditional: bool,
}

/// The policies whose scope can match one (action, tool, group set), and how to decide them.
#[derive(Debug)]
struct Subset {
    action: Action,
    tool: String,
    instance: String,
    groups: Vec<String>,
    set: PolicySet,
    /// Indices into `scoped` when every policy is an unconditional permit (decided by scope
    /// heads alone); `None` when Cedar has to evaluate. Empty for an empty subset.
    heads_only: Option<Vec<usize>>,
}

impl Subset {
    fn is(&self, action: Action, tool: &ToolRef<'_>, groups: &[&str]) -> bool {
        self.action == action
            && self.tool == tool.name
            && self.instance == tool.instance
            && self.groups.len() == groups.len()
            && self.groups.iter().zip(groups).all(|(a, b)| a == b)
    }
}

/// A catalog tool with its entities, built once per snapshot.
#[derive(Debug)]
struct Slot {
    name: String,
    instance: String,
    kind: String,
    read_only: bool,
    destructive: bool,
    tags: Vec<String>,
    /// The tool's input schema: which arguments carry addresses (see [`crate::facts`]).
    input_schema: Value,
    tool: Entity,
    adapter: Entity,
    /// Just the tool and its adapter.
    entities: Entities,
}

impl Slot {
    /// Whether `t` describes exactly this tool (so its entities are the ones built here).
    fn matches(&self, t: &ToolRef<'_>) -> bool {
        self.name == t.name
            && self.instance == t.instance
            && self.kind == t.kind
            && self.read_only == t.read_only
            && self.destructive == t.destructive
            && self.tags == t.tags
    }
}

/// What a principal contributes to a decision, built once per snapshot. Identified by everything
/// a policy can see of it: user id, e-mail (and so its domain), the group set and the client id.
#[derive(Debug)]
struct PrincipalEntry {
    user: String,
    email: String,
    groups: Vec<String>,
    client_id: String,
    entity: Entity,
    /// `list` decisions without arguments, one per catalog slot.
    list: OnceLock<Box<[OnceLock<Decision>]>>,
}

impl PrincipalEntry {
    fn is(&self, k: &PrincipalKey<'_>) -> bool {
        self.user == k.user
            && self.email == k.email
            && self.client_id == k.client_id
            && self.groups.len() == k.groups.len()
            && self.groups.iter().zip(&k.groups).all(|(a, b)| a == b)
    }

    fn groups(&self) -> Vec<&str> {
        self.groups.iter().map(String::as_str).collect()
    }
}

/// A principal's identity, borrowed; groups sorted and deduplicated.
struct PrincipalKey<'a> {
    user: &'a str,
    email: &'a str,
    groups: Vec<&'a str>,
    client_id: &'a str,
}

impl<'a> PrincipalKey<'a> {
    fn of(p: &'a Principal) -> Self {
        let mut groups: Vec<&str> = p.groups.iter().map(String::as_str).collect();
        groups.sort_unstable();
        groups.dedup();
        PrincipalKey {
            user: p.user.as_deref().unwrap_or(""),
            email: p.email.as_deref().unwrap_or(""),
            groups,
            client_id: p.client_id.as_deref().unwrap_or(""),
        }
    }
}

#[derive(Debug)]
struct Types {
    user: EntityTypeName,
    group: EntityTypeName,
    tool: EntityTypeName,
    adapter: EntityTypeName,
    resource: EntityTypeName,
    prompt: EntityTypeName,
    actions: [EntityUid; 3],
    /// `read` and `get`, the actions on resources and prompts besides `list`.
    item_actions: [EntityUid; 2],
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
            resource: EntityTypeName::from_str("Resource").ok()?,
            prompt: EntityTypeName::from_str("Prompt").ok()?,
            actions: [act("list"), act("call"), act("fetch")],
            item_actions: [act("read"), act("get")],
        })
    }

    fn item_action(&self, a: ItemAction) -> &EntityUid {
        match a {
            ItemAction::List => &self.actions[0],
            ItemAction::Read => &self.item_actions[0],
            ItemAction::Get => &self.item_actions[1],
        }
    }

    fn item_type(&self, kind: ItemKind) -> &EntityTypeName {
        match kind {
            ItemKind::Resource => &self.resource,
            ItemKind::Prompt => &self.prompt,
        }
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
    /// Catalog tools with prebuilt entities, and their index by name.
    slots: Vec<Slot>,
    slot_of: HashMap<String, usize>,
    /// Some condition dereferences a user, tool or adapter literal, so a decision may depend on
    /// which other entities are present: `list` decisions are then neither cached nor computed
    /// per tool.
    literal_sensitive: bool,
    hasher: RandomState,
    cache: RwLock<HashMap<u64, Arc<Subset>>>,
    principals: RwLock<HashMap<u64, Arc<PrincipalEntry>>>,
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

        let types = Types::new().ok_or_else(|| {
            vec![Diagnostic {
                file: PathBuf::new(),
                line: 0,
                column: 0,
                message: "internal: entity type names did not parse".into(),
            }]
        })?;
        let entity_type = |u: &EntityUid| {
            let ty = u.type_name();
            *ty == types.user || *ty == types.tool || *ty == types.adapter
        };
        let mut literal_sensitive = false;
        let scoped: Vec<Scoped> = all
            .policies()
            .map(|p| {
                let principal = p.principal_constraint();
                let resource = p.resource_constraint();
                let conditional = p.has_non_scope_constraint();
                if conditional {
                    // Literals in the scope heads are harmless (membership is read off the
                    // request's own entities); any further one is in a condition.
                    let head = |u: Option<&EntityUid>| u.is_some_and(entity_type);
                    let in_heads = usize::from(head(principal_head(&principal)))
                        + usize::from(head(resource_head(&resource)));
                    let all_lits = p
                        .entity_literals()
                        .iter()
                        .filter(|u| entity_type(u))
                        .count();
                    literal_sensitive |= all_lits > in_heads;
                }
                Scoped {
                    policy: p.clone(),
                    principal,
                    action: p.action_constraint(),
                    resource,
                    permit: p.effect() == Effect::Permit,
                    conditional,
                }
            })
            .collect();
        let permits = scoped.iter().filter(|s| s.permit).count();
        let summary = Summary {
            files: sources.len(),
            policies: scoped.len(),
            permits,
            forbids: scoped.len() - permits,
            warnings,
        };
        let mut slots = Vec::with_capacity(schema.tools.len());
        let mut slot_of = HashMap::with_capacity(schema.tools.len());
        for d in &schema.tools {
            if slot_of.contains_key(&d.name) {
                continue;
            }
            let (tool, adapter) =
                tool_entities(&types, &ToolRef::from_descriptor(d)).map_err(|e| {
                    vec![Diagnostic {
                        file: PathBuf::new(),
                        line: 0,
                        column: 0,
                        message: format!("internal: entities of tool `{}`: {e}", d.name),
                    }]
                })?;
            let entities =
                Entities::from_entities([tool.clone(), adapter.clone()], None).map_err(|e| {
                    vec![Diagnostic {
                        file: PathBuf::new(),
                        line: 0,
                        column: 0,
                        message: format!("internal: entities of tool `{}`: {e}", d.name),
                    }]
                })?;
            slot_of.insert(d.name.clone(), slots.len());
            slots.push(Slot {
                name: d.name.clone(),
                instance: d.instance.clone(),
                kind: d.kind.clone(),
                read_only: d.read_only,
                destructive: d.destructive,
                tags: d.tags.clone(),
                input_schema: d.input_schema.clone(),
                tool,
                adapter,
                entities,
            });
        }
        Ok(CedarEngine {
            schema: schema.clone(),
            all,
            meta,
            scoped,
            types,
            authorizer: Authorizer::new(),
            slots,
            slot_of,
            literal_sensitive,
            hasher: RandomState::new(),
            cache: RwLock::new(HashMap::new()),
            principals: RwLock::new(HashMap::new()),
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
        groups: &[&str],
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
                || (u.type_name() == &t.group && groups.iter().any(|g| *g == u.id().unescaped()))
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

    /// Whether an unconditional policy applies: its scope heads evaluated exactly as Cedar does
    /// for this request (the user's ancestors are its groups, the tool's its adapter, actions
    /// have none).
    fn heads_match(&self, s: &Scoped, user: &str, groups: &[String], tool: &ToolRef<'_>) -> bool {
        let t = &self.types;
        let is_user = |u: &EntityUid| u.type_name() == &t.user && u.id().unescaped() == user;
        let princ_in = |u: &EntityUid| {
            is_user(u)
                || (u.type_name() == &t.group && groups.iter().any(|g| g == u.id().unescaped()))
        };
        let principal_ok = match &s.principal {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::Eq(u) => is_user(u),
            PrincipalConstraint::In(u) => princ_in(u),
            PrincipalConstraint::Is(ty) => *ty == t.user,
            PrincipalConstraint::IsIn(ty, u) => *ty == t.user && princ_in(u),
        };
        let is_tool = |u: &EntityUid| u.type_name() == &t.tool && u.id().unescaped() == tool.name;
        let res_in = |u: &EntityUid| {
            is_tool(u) || (u.type_name() == &t.adapter && u.id().unescaped() == tool.instance)
        };
        let resource_ok = match &s.resource {
            ResourceConstraint::Any => true,
            ResourceConstraint::Eq(u) => is_tool(u),
            ResourceConstraint::In(u) => res_in(u),
            ResourceConstraint::Is(ty) => *ty == t.tool,
            ResourceConstraint::IsIn(ty, u) => *ty == t.tool && res_in(u),
        };
        // The action head was checked when the subset was built (`in_scope` is exact there).
        principal_ok && resource_ok
    }

    fn hash_of(&self, f: impl FnOnce(&mut DefaultHasher)) -> u64 {
        let mut h = self.hasher.build_hasher();
        f(&mut h);
        h.finish()
    }

    /// The scope-filtered subset for (action, tool, groups); `groups` sorted and deduplicated.
    fn subset(&self, action: Action, tool: &ToolRef<'_>, groups: &[&str]) -> Arc<Subset> {
        let key = self.hash_of(|h| {
            action.hash(h);
            tool.name.hash(h);
            tool.instance.hash(h);
            groups.hash(h);
        });
        if let Ok(cache) = self.cache.read()
            && let Some(s) = cache.get(&key)
            && s.is(action, tool, groups)
        {
            return Arc::clone(s);
        }
        let action_uid = self.types.action(action);
        let mut set = PolicySet::new();
        let mut members = Vec::new();
        for (i, s) in self.scoped.iter().enumerate() {
            if self.in_scope(s, action_uid, tool, groups) {
                // Ids are unique in `all`, so adding to a fresh set cannot collide.
                let _ = set.add(s.policy.clone());
                members.push(i);
            }
        }
        let heads_only = members
            .iter()
            .all(|&i| self.scoped[i].permit && !self.scoped[i].conditional)
            .then_some(members);
        let subset = Arc::new(Subset {
            action,
            tool: tool.name.to_string(),
            instance: tool.instance.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            set,
            heads_only,
        });
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
            cache.insert(key, Arc::clone(&subset));
        }
        subset
    }

    /// The cached entry of a principal, built on first sight.
    fn principal(&self, principal: &Principal) -> Result<Arc<PrincipalEntry>, String> {
        let k = PrincipalKey::of(principal);
        let key = self.hash_of(|h| {
            k.user.hash(h);
            k.email.hash(h);
            k.groups.hash(h);
            k.client_id.hash(h);
        });
        if let Ok(map) = self.principals.read()
            && let Some(e) = map.get(&key)
            && e.is(&k)
        {
            return Ok(Arc::clone(e));
        }
        let entry = Arc::new(PrincipalEntry {
            user: k.user.to_string(),
            email: k.email.to_string(),
            groups: k.groups.iter().map(|g| g.to_string()).collect(),
            client_id: k.client_id.to_string(),
            entity: self.user_entity(principal)?,
            list: OnceLock::new(),
        });
        if let Ok(mut map) = self.principals.write() {
            if map.len() >= PRINCIPAL_CAP {
                map.clear();
            }
            map.insert(key, Arc::clone(&entry));
        }
        Ok(entry)
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

    /// The catalog slot `tool` is, if it is exactly a catalog tool.
    fn slot(&self, tool: &ToolRef<'_>) -> Option<usize> {
        self.slot_of
            .get(tool.name)
            .copied()
            .filter(|&i| self.slots[i].matches(tool))
    }

    /// Entities of every given tool plus the user: the `list` filter's shared set when the
    /// decision may depend on other entities than the request's own.
    fn entities(&self, user: &Entity, tools: &[ToolRef<'_>]) -> Result<Entities, String> {
        let mut list = Vec::with_capacity(2 + tools.len());
        list.push(user.clone());
        let mut adapters = BTreeSet::new();
        for tool in tools {
            match self.slot(tool) {
                Some(i) => {
                    list.push(self.slots[i].tool.clone());
                    if adapters.insert(tool.instance) {
                        list.push(self.slots[i].adapter.clone());
                    }
                }
                None => {
                    let (t, a) = tool_entities(&self.types, tool)?;
                    list.push(t);
                    if adapters.insert(tool.instance) {
                        list.push(a);
                    }
                }
            }
        }
        Entities::from_entities(list, None).map_err(|e| e.to_string())
    }

    /// The user, the tool and its adapter: all a single decision's entities. For a catalog tool
    /// the user is added to the slot's prebuilt set, so Cedar only closes the user's ancestors.
    fn entities_one(&self, pe: &PrincipalEntry, tool: &ToolRef<'_>) -> Result<Entities, String> {
        let built = match self.slot(tool) {
            Some(i) => self.slots[i]
                .entities
                .clone()
                .add_entities([pe.entity.clone()], None),
            None => {
                let (t, a) = tool_entities(&self.types, tool)?;
                Entities::from_entities([pe.entity.clone(), t, a], None)
            }
        };
        built.map_err(|e| e.to_string())
    }

    fn context(
        &self,
        principal: &Principal,
        args: Option<&Value>,
        facts: &Facts,
    ) -> Result<Context, String> {
        context::build(
            args,
            &self.schema.args,
            principal.client_id.as_deref().unwrap_or(""),
            facts,
        )
    }

    /// The facts in the arguments alone, read by the catalog tool's declared address
    /// arguments (a tool outside the catalog declares none).
    fn facts_of(&self, tool: &ToolRef<'_>, args: Option<&Value>) -> Result<Facts, FactsError> {
        match (args, self.slot(tool)) {
            (Some(args), Some(i)) => {
                Facts::from_arguments(&self.slots[i].input_schema, &mut args.clone())
            }
            _ => Ok(Facts::default()),
        }
    }

    /// A call whose facts could not be read: denied before any policy runs, so no rule can
    /// mistake an unreadable recipient for no recipient.
    fn refused(&self, error: &FactsError) -> Explanation {
        Explanation {
            decision: Decision::Deny {
                reason: error.to_string(),
                policies: Vec::new(),
            },
            determining: Vec::new(),
            reasons: Vec::new(),
            errors: vec![error.to_string()],
            evaluated: 0,
        }
    }

    /// Decides without Cedar when the subset allows it: no policy (default deny), or only
    /// unconditional permits (allowed by those whose heads match). The explanation is what
    /// Cedar would give: neither case can produce an evaluation error.
    fn by_heads(
        &self,
        subset: &Subset,
        pe: &PrincipalEntry,
        tool: &ToolRef<'_>,
    ) -> Option<Explanation> {
        let members = subset.heads_only.as_ref()?;
        let mut determining: Vec<String> = members
            .iter()
            .map(|&i| &self.scoped[i])
            .filter(|s| self.heads_match(s, &pe.user, &pe.groups, tool))
            .map(|s| s.policy.id().to_string())
            .collect();
        determining.sort();
        Some(self.explanation(
            !determining.is_empty(),
            determining,
            Vec::new(),
            members.len(),
        ))
    }

    /// Runs Cedar for one tool against prepared entities and context.
    fn run(
        &self,
        pe: &PrincipalEntry,
        action: Action,
        tool: &ToolRef<'_>,
        subset: &Subset,
        entities: &Entities,
        context: Context,
    ) -> Explanation {
        let t = &self.types;
        let request = match Request::new(
            pe.entity.uid(),
            t.action(action).clone(),
            t.uid(&t.tool, tool.name),
            context,
            None,
        ) {
            Ok(r) => r,
            Err(e) => return self.failed(e.to_string()),
        };
        self.authorize(&request, &subset.set, entities)
    }

    /// Cedar's answer to `request` over `set`, with what determined it.
    fn authorize(&self, request: &Request, set: &PolicySet, entities: &Entities) -> Explanation {
        let response = self.authorizer.is_authorized(request, set, entities);
        let mut determining: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|p| p.to_string())
            .collect();
        determining.sort();
        let errors = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        self.explanation(
            response.decision() == cedar_policy::Decision::Allow,
            determining,
            errors,
            set.num_of_policies(),
        )
    }

    fn explanation(
        &self,
        allow: bool,
        determining: Vec<String>,
        errors: Vec<String>,
        evaluated: usize,
    ) -> Explanation {
        let reasons: Vec<String> = determining
            .iter()
            .map(|id| {
                self.reason_of(id)
                    .map_or_else(|| format!("policy {id}"), str::to_string)
            })
            .collect();
        let decision = if allow {
            Decision::Allow {
                policies: determining.clone(),
            }
        } else {
            Decision::Deny {
                reason: reasons
                    .first()
                    .cloned()
                    .unwrap_or_else(|| DEFAULT_DENY_REASON.to_string()),
                policies: determining.clone(),
            }
        };
        Explanation {
            decision,
            determining,
            reasons,
            errors,
            evaluated,
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

    /// One decision with the request's own entities (user, tool, adapter).
    fn explain_with(
        &self,
        principal: &Principal,
        pe: &PrincipalEntry,
        action: Action,
        tool: &ToolRef<'_>,
        args: Option<&Value>,
        facts: &Facts,
    ) -> Explanation {
        let subset = self.subset(action, tool, &pe.groups());
        if let Some(x) = self.by_heads(&subset, pe, tool) {
            return x;
        }
        let entities = match self.entities_one(pe, tool) {
            Ok(e) => e,
            Err(e) => return self.failed(e),
        };
        let context = match self.context(principal, args, facts) {
            Ok(c) => c,
            Err(e) => return self.failed(e),
        };
        self.run(pe, action, tool, &subset, &entities, context)
    }

    /// The decision and everything that went into it, with the facts in the arguments.
    pub fn explain(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        args: Option<&Value>,
    ) -> Explanation {
        match self.facts_of(tool, args) {
            Ok(facts) => self.explain_with_facts(principal, action, tool, args, &facts),
            Err(error) => self.refused(&error),
        }
    }

    /// The decision and everything that went into it, with facts the caller established.
    pub fn explain_with_facts(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        args: Option<&Value>,
        facts: &Facts,
    ) -> Explanation {
        match self.principal(principal) {
            Ok(pe) => self.explain_with(principal, &pe, action, tool, args, facts),
            Err(e) => self.failed(e),
        }
    }

    /// `tools/list` filtering: one decision per tool with the `list` action. Returns one flag
    /// per input tool.
    pub fn filter_list(&self, principal: &Principal, tools: &[ToolRef<'_>]) -> Vec<bool> {
        let Ok(pe) = self.principal(principal) else {
            return vec![false; tools.len()];
        };
        let mut names = HashSet::with_capacity(tools.len());
        let distinct = tools.iter().all(|t| names.insert(t.name));
        if self.literal_sensitive || !distinct {
            return self.filter_shared(principal, &pe, tools);
        }
        tools
            .iter()
            .map(|tool| match self.slot(tool) {
                Some(i) => self
                    .list_cell(&pe, i)
                    .get_or_init(|| {
                        self.explain_with(
                            principal,
                            &pe,
                            Action::List,
                            tool,
                            None,
                            &Facts::default(),
                        )
                        .decision
                    })
                    .is_allowed(),
                None => self
                    .explain_with(principal, &pe, Action::List, tool, None, &Facts::default())
                    .decision
                    .is_allowed(),
            })
            .collect()
    }

    /// The cache cell of a principal's `list` decision for a catalog slot.
    fn list_cell<'p>(&self, pe: &'p PrincipalEntry, slot: usize) -> &'p OnceLock<Decision> {
        let cells = pe
            .list
            .get_or_init(|| (0..self.slots.len()).map(|_| OnceLock::new()).collect());
        &cells[slot]
    }

    /// `list` filtering over one entity set holding every given tool: the original algorithm,
    /// kept for policies whose conditions read other entities and for lists with repeated names.
    fn filter_shared(
        &self,
        principal: &Principal,
        pe: &PrincipalEntry,
        tools: &[ToolRef<'_>],
    ) -> Vec<bool> {
        let (Ok(entities), Ok(context)) = (
            self.entities(&pe.entity, tools),
            self.context(principal, None, &Facts::default()),
        ) else {
            return vec![false; tools.len()];
        };
        let groups = pe.groups();
        tools
            .iter()
            .map(|tool| {
                let subset = self.subset(Action::List, tool, &groups);
                match self.by_heads(&subset, pe, tool) {
                    Some(x) => x.decision.is_allowed(),
                    None => self
                        .run(pe, Action::List, tool, &subset, &entities, context.clone())
                        .decision
                        .is_allowed(),
                }
            })
            .collect()
    }
}

/// Heads of a principal constraint that name an entity.
fn principal_head(c: &PrincipalConstraint) -> Option<&EntityUid> {
    match c {
        PrincipalConstraint::Eq(u)
        | PrincipalConstraint::In(u)
        | PrincipalConstraint::IsIn(_, u) => Some(u),
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
    }
}

/// Heads of a resource constraint that name an entity.
fn resource_head(c: &ResourceConstraint) -> Option<&EntityUid> {
    match c {
        ResourceConstraint::Eq(u) | ResourceConstraint::In(u) | ResourceConstraint::IsIn(_, u) => {
            Some(u)
        }
        ResourceConstraint::Any | ResourceConstraint::Is(_) => None,
    }
}

/// A tool's entity and its adapter's.
fn tool_entities(t: &Types, tool: &ToolRef<'_>) -> Result<(Entity, Entity), String> {
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
    let tool_e = Entity::new(
        t.uid(&t.tool, tool.name),
        attrs,
        HashSet::from([adapter.clone()]),
    )
    .map_err(|e| e.to_string())?;
    let attrs = HashMap::from([
        ("kind".to_string(), s(tool.kind)),
        ("instance".to_string(), s(tool.instance)),
    ]);
    let adapter_e = Entity::new(adapter, attrs, HashSet::new()).map_err(|e| e.to_string())?;
    Ok((tool_e, adapter_e))
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
        match self.facts_of(tool, arguments) {
            Ok(facts) => self.decide_with_facts(principal, action, tool, arguments, &facts),
            Err(error) => self.refused(&error).decision,
        }
    }

    fn decide_with_facts(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        arguments: Option<&Value>,
        facts: &Facts,
    ) -> Decision {
        let pe = match self.principal(principal) {
            Ok(pe) => pe,
            Err(e) => return self.failed(e).decision,
        };
        if action == Action::List
            && arguments.is_none()
            && !self.literal_sensitive
            && let Some(i) = self.slot(tool)
        {
            return self
                .list_cell(&pe, i)
                .get_or_init(|| {
                    self.explain_with(principal, &pe, action, tool, None, facts)
                        .decision
                })
                .clone();
        }
        self.explain_with(principal, &pe, action, tool, arguments, facts)
            .decision
    }

    fn decide_item(
        &self,
        principal: &Principal,
        action: ItemAction,
        item: &ItemRef<'_>,
    ) -> Decision {
        self.explain_item(principal, action, item).decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolDescriptor;
    use serde_json::json;

    const POLICIES: &str = r#"
@id("staff-list") @reason("staff see all")
permit (principal in Group::"staff", action == Action::"list", resource);
@id("bob-t1")
permit (principal == User::"bob", action == Action::"list", resource == Tool::"t1");
@id("eng-read") @reason("eng reads a1")
permit (principal in Group::"eng", action, resource in Adapter::"a1") when { resource.read_only };
@id("outsiders-no-destructive") @reason("outsiders cannot touch destructive tools")
forbid (principal, action == Action::"list", resource) when { resource.destructive && principal.domain != "example.com" };
@id("cli-x") @reason("cli-x sees tools")
permit (principal, action == Action::"list", resource is Tool) when { context.client_id == "cli-x" };
@id("no-eve") @reason("eve is out of a2")
forbid (principal, action, resource in Adapter::"a2") when { principal.email == "eve@example.com" };
@id("ops-a2") @reason("ops run a2")
permit (principal in Group::"ops", action in [Action::"list", Action::"call"], resource in Adapter::"a2");
@id("eng-team") @reason("eng calls for T1")
permit (principal in Group::"eng", action == Action::"call", resource) when { context.args has team_id && context.args.team_id == "T1" };
"#;

    fn catalog() -> Vec<ToolDescriptor> {
        (0..6)
            .map(|i| ToolDescriptor {
                name: format!("t{i}"),
                instance: format!("a{}", i % 3 + 1),
                kind: "k".into(),
                read_only: i % 2 == 0,
                destructive: i % 3 == 2,
                tags: vec![format!("tag{i}")],
                input_schema: json!({"type": "object", "properties": {"team_id": {"type": "string"}}}),
            })
            .collect()
    }

    fn engine(tools: &[ToolDescriptor], extra: &str) -> CedarEngine {
        let schema = PolicySchema::from_tools(tools).expect("schema");
        let src = format!("{POLICIES}{extra}");
        CedarEngine::from_sources(&[(PathBuf::from("t.cedar"), src)], &schema).expect("policies")
    }

    fn who(user: &str, email: &str, groups: &[&str], client: &str) -> Principal {
        Principal {
            user: (!user.is_empty()).then(|| user.to_string()),
            email: (!email.is_empty()).then(|| email.to_string()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            client_id: (!client.is_empty()).then(|| client.to_string()),
        }
    }

    fn principals() -> Vec<Principal> {
        vec![
            who("alice", "alice@example.com", &["staff"], "web"),
            who("bob", "bob@other.test", &[], "web"),
            who("carol", "carol@example.com", &["ops", "eng"], "web"),
            who("carol", "carol@example.com", &["eng", "ops", "eng"], "web"),
            who("dave", "dave@other.test", &["eng"], "web"),
            who("eve", "eve@example.com", &["ops"], "web"),
            who("eve", "eve@example.com", &["ops"], "cli-x"),
            who("frank", "frank@other.test", &[], "cli-x"),
            who("", "", &[], ""),
        ]
    }

    /// The original algorithm, with nothing cached or skipped: entities built from scratch for
    /// `tools`, the scope-filtered subset, Cedar.
    fn reference(
        e: &CedarEngine,
        p: &Principal,
        action: Action,
        tools: &[ToolRef<'_>],
        idx: usize,
        args: Option<&Value>,
    ) -> Explanation {
        let mut list = vec![e.user_entity(p).expect("user")];
        let mut seen = BTreeSet::new();
        for t in tools {
            let (te, ae) = tool_entities(&e.types, t).expect("tool");
            list.push(te);
            if seen.insert(t.instance) {
                list.push(ae);
            }
        }
        let entities = Entities::from_entities(list, None).expect("entities");
        let tool = &tools[idx];
        let mut groups: Vec<&str> = p.groups.iter().map(String::as_str).collect();
        groups.sort_unstable();
        groups.dedup();
        let mut set = PolicySet::new();
        for s in &e.scoped {
            if e.in_scope(s, e.types.action(action), tool, &groups) {
                set.add(s.policy.clone()).expect("unique ids");
            }
        }
        let request = Request::new(
            e.types.uid(&e.types.user, p.user.as_deref().unwrap_or("")),
            e.types.action(action).clone(),
            e.types.uid(&e.types.tool, tool.name),
            e.context(p, args, &e.facts_of(tool, args).expect("facts"))
                .expect("context"),
            None,
        )
        .expect("request");
        let response = e.authorizer.is_authorized(&request, &set, &entities);
        let mut determining: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|p| p.to_string())
            .collect();
        determining.sort();
        let errors = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        e.explanation(
            response.decision() == cedar_policy::Decision::Allow,
            determining,
            errors,
            set.num_of_policies(),
        )
    }

    fn check_all(e: &CedarEngine, tools: &[ToolRef<'_>]) {
        let args = json!({"team_id": "T1"});
        for p in principals() {
            let want: Vec<Decision> = (0..tools.len())
                .map(|i| reference(e, &p, Action::List, tools, i, None).decision)
                .collect();
            let want_flags: Vec<bool> = want.iter().map(Decision::is_allowed).collect();
            // Twice each: the first fills the cache, the second reads it.
            for _ in 0..2 {
                assert_eq!(e.filter_list(&p, tools), want_flags, "{p:?}");
                for (i, t) in tools.iter().enumerate() {
                    assert_eq!(
                        e.decide(&p, Action::List, t, None),
                        want[i],
                        "{p:?} {}",
                        t.name
                    );
                }
            }
            for (i, t) in tools.iter().enumerate() {
                let single = std::slice::from_ref(t);
                assert_eq!(
                    e.explain(&p, Action::List, t, None),
                    reference(e, &p, Action::List, single, 0, None),
                    "{p:?} {}",
                    t.name
                );
                for a in [None, Some(&args)] {
                    assert_eq!(
                        e.explain(&p, Action::Call, t, a),
                        reference(e, &p, Action::Call, single, 0, a),
                        "{p:?} {} {a:?}",
                        t.name
                    );
                }
                assert_eq!(e.decide(&p, Action::List, t, None), want[i]);
            }
        }
    }

    #[test]
    fn cached_list_decisions_equal_uncached_ones() {
        let tools = catalog();
        let e = engine(&tools, "");
        assert!(!e.literal_sensitive);
        let refs: Vec<ToolRef<'_>> = tools.iter().map(ToolRef::from_descriptor).collect();
        check_all(&e, &refs);
        // A tool that is not exactly the catalog's (other attributes) is decided on its own.
        let odd = ToolDescriptor {
            destructive: true,
            ..tools[0].clone()
        };
        let p = who("dave", "dave@other.test", &["eng", "staff"], "web");
        let odd = ToolRef::from_descriptor(&odd);
        assert_eq!(
            e.decide(&p, Action::List, &odd, None),
            reference(&e, &p, Action::List, &[odd], 0, None).decision
        );
        assert_eq!(
            e.decide(&p, Action::List, &refs[0], None),
            reference(&e, &p, Action::List, &refs, 0, None).decision
        );
    }

    #[test]
    fn conditions_on_entity_literals_keep_the_shared_entity_set() {
        let tools = catalog();
        let e = engine(
            &tools,
            r#"@id("t2-gate")
permit (principal, action == Action::"list", resource) when { Tool::"t2".read_only };
"#,
        );
        assert!(e.literal_sensitive);
        let refs: Vec<ToolRef<'_>> = tools.iter().map(ToolRef::from_descriptor).collect();
        let p = who("bob", "bob@other.test", &[], "web");
        let want: Vec<bool> = (0..refs.len())
            .map(|i| {
                reference(&e, &p, Action::List, &refs, i, None)
                    .decision
                    .is_allowed()
            })
            .collect();
        assert_eq!(e.filter_list(&p, &refs), want);
        // t2 is read-only, so everyone sees every tool but the destructive ones (outsider).
        let expected: Vec<bool> = tools.iter().map(|t| !t.destructive).collect();
        assert_eq!(want, expected);
        for t in &refs {
            let single = std::slice::from_ref(t);
            assert_eq!(
                e.decide(&p, Action::List, t, None),
                reference(&e, &p, Action::List, single, 0, None).decision
            );
        }
    }
}
