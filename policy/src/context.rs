//! Builds the Cedar request context from a call's arguments and facts. Argument values are
//! converted by the types the schema declared for `context.args`. A value that does not fit its
//! declared type (an integer beyond Cedar's 64-bit range, a value of the second type of a
//! `["string", "integer"]` argument) fails the request, and so denies the call: dropping it
//! would make `context.args has x` false, and a `forbid … when { context.args has x && … }` rule
//! would then be walked around by spelling `x` so that it does not fit. `null` counts as absent.
//! Names the schema could not type are not in `context.args` at all, so no policy can mention
//! them. Recipients come from [`Facts`], which either read every declared address or failed (and
//! the call was denied before it got here).

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
            let Some(ty) = types.get(k) else { continue };
            if v.is_null() {
                continue;
            }
            let e = convert(v, *ty).ok_or_else(|| {
                format!("argument `{k}` does not fit the type the policies know it by")
            })?;
            fields.push((k.clone(), e));
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn types() -> BTreeMap<String, ArgType> {
        BTreeMap::from([
            ("limit".to_owned(), ArgType::One(Prim::Long)),
            ("team_id".to_owned(), ArgType::One(Prim::String)),
            ("labels".to_owned(), ArgType::Set(Prim::String)),
        ])
    }

    fn built(args: &Value) -> Result<Context, String> {
        build(Some(args), &types(), "", &Facts::default())
    }

    #[test]
    fn null_is_absent_and_untyped_names_are_left_out() {
        assert!(built(&json!({"limit": null, "team_id": null, "free_text": {"a": 1}})).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// An integer Cedar cannot hold fails the request instead of vanishing from it.
        #[test]
        fn integers_beyond_cedar_range_fail_the_request(big in (i64::MAX as u64 + 1)..=u64::MAX) {
            let error = built(&json!({"limit": big})).unwrap_err();
            prop_assert!(error.contains("`limit`"), "{}", error);
        }

        #[test]
        fn integers_in_range_are_kept(n in any::<i64>()) {
            let kept = built(&json!({ "limit": n })).is_ok();
            prop_assert!(kept);
        }

        /// A value of another JSON type than the declared one, alone or inside a set.
        #[test]
        fn values_of_another_type_fail_the_request(
            odd in prop_oneof![
                any::<bool>().prop_map(Value::from),
                any::<f64>().prop_filter("finite, fractional", |f| f.is_finite() && f.fract() != 0.0).prop_map(Value::from),
                "[a-z]{0,8}".prop_map(|s| json!({ "k": s })),
            ],
            at in 0usize..3,
        ) {
            let args = match at {
                0 => json!({"limit": odd}),
                1 => json!({"team_id": odd}),
                _ => json!({"labels": ["ok", odd]}),
            };
            let refused = built(&args).is_err();
            prop_assert!(refused, "{} was accepted", args);
        }
    }
}
