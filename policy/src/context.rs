//! Builds the Cedar request context from a call's arguments and facts. Argument values are
//! converted by the types the schema declared for `context.args`, and anything that does not fit
//! is dropped rather than failing the request: policies test `context.args has x`, so an
//! allow-list policy cannot be satisfied by a malformed argument, it simply does not apply.
//! Recipients are not dropped that way: they come from [`Facts`], which either read every
//! declared address or failed (and the call was denied before it got here).

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::{Context, RestrictedExpression};
use serde_json::Value;

use crate::address::Address;
use crate::facts::{Facts, LinkAudience};
use crate::schema::{ArgType, Prim};

fn prim(v: &Value, p: Prim) -> Option<RestrictedExpression> {
    match (p, v) {
        (Prim::String, Value::String(s)) => Some(RestrictedExpression::new_string(s.clone())),
        (Prim::Long, Value::Number(n)) => n.as_i64().map(RestrictedExpression::new_long),
        (Prim::Bool, Value::Bool(b)) => Some(RestrictedExpression::new_bool(*b)),
        _ => None,
    }
}

fn convert(v: &Value, ty: ArgType) -> Option<RestrictedExpression> {
    match ty {
        ArgType::One(p) => prim(v, p),
        ArgType::Set(p) => match v {
            Value::Array(items) => {
                // One ill-typed element drops the whole set: a partial set could pass a
                // `containsAll` check that the full list would fail.
                let items: Option<Vec<_>> = items.iter().map(|x| prim(x, p)).collect();
                items.map(RestrictedExpression::new_set)
            }
            other => prim(other, p).map(|x| RestrictedExpression::new_set([x])),
        },
    }
}

/// The canonical addresses of `set` and their domains, as two Cedar sets.
fn addresses<'a>(
    set: impl Iterator<Item = &'a Address>,
) -> (RestrictedExpression, RestrictedExpression) {
    let (mut all, mut domains) = (BTreeSet::new(), BTreeSet::new());
    for address in set {
        all.insert(address.canonical());
        domains.insert(address.domain().to_owned());
    }
    let set = |s: BTreeSet<String>| {
        RestrictedExpression::new_set(s.into_iter().map(RestrictedExpression::new_string))
    };
    (set(all), set(domains))
}

/// The Cedar context for one request.
pub(crate) fn build(
    args: Option<&Value>,
    types: &BTreeMap<String, ArgType>,
    client_id: &str,
    facts: &Facts,
) -> Result<Context, String> {
    let mut fields = Vec::new();
    if let Some(Value::Object(obj)) = args {
        for (k, v) in obj {
            if let Some(ty) = types.get(k)
                && let Some(e) = convert(v, *ty)
            {
                fields.push((k.clone(), e));
            }
        }
    }
    let (recipients, recipient_domains) = addresses(facts.recipients());
    let (grantees, grantee_domains) = addresses(facts.grantees());
    let (participants, participant_domains) = addresses(facts.participants());
    let containers = RestrictedExpression::new_set(
        facts
            .containers()
            .map(|id| RestrictedExpression::new_string(id.to_owned())),
    );
    let link_audience = facts.link_audience().map_or("none", LinkAudience::as_str);
    let args = RestrictedExpression::new_record(fields).map_err(|e| e.to_string())?;
    Context::from_pairs([
        ("args".to_string(), args),
        ("recipients".to_string(), recipients),
        ("recipient_domains".to_string(), recipient_domains),
        ("grantees".to_string(), grantees),
        ("grantee_domains".to_string(), grantee_domains),
        ("participants".to_string(), participants),
        ("participant_domains".to_string(), participant_domains),
        ("containers".to_string(), containers),
        (
            "link_audience".to_string(),
            RestrictedExpression::new_string(link_audience.to_owned()),
        ),
        (
            "client_id".to_string(),
            RestrictedExpression::new_string(client_id.to_string()),
        ),
    ])
    .map_err(|e| e.to_string())
}
