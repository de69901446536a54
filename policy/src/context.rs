//! Builds the Cedar request context from a call's arguments. Values are converted by the types the
//! schema declared for `context.args`, and anything that does not fit is dropped rather than
//! failing the request: policies test `context.args has x`, so an allow-list policy cannot be
//! satisfied by a malformed argument, it simply does not apply.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use cedar_policy::{Context, RestrictedExpression};
use regex::Regex;
use serde_json::Value;

use crate::schema::{ArgType, Prim};

/// A whole value that is an address: `a@b.c` or `Name <a@b.c>`.
static EMAIL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^(?:[^<>]*<)?\s*([A-Za-z0-9._%+'-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+))\s*>?$")
        .ok()
});

/// Every e-mail address among the argument values, at any depth. Only strings that *are* an
/// address (or a comma/semicolon separated list of them) count, so a mail body that mentions an
/// outside address does not turn into a recipient.
pub(crate) fn recipients(args: Option<&Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let (Some(args), Some(re)) = (args, EMAIL.as_ref()) {
        collect(args, re, &mut out);
    }
    out
}

fn collect(v: &Value, re: &Regex, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            if !s.contains('@') {
                return;
            }
            let parts: Vec<&str> = s.split([',', ';']).map(str::trim).collect();
            let found: Vec<String> = parts
                .iter()
                .filter_map(|p| re.captures(p))
                .filter_map(|c| c.get(1).map(|m| m.as_str().to_ascii_lowercase()))
                .collect();
            // Either every part is an address or the string is prose: no partial harvesting.
            if found.len() == parts.len() {
                out.extend(found);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, re, out)),
        Value::Object(o) => o.values().for_each(|x| collect(x, re, out)),
        _ => {}
    }
}

pub(crate) fn domain_of(addr: &str) -> Option<&str> {
    addr.rsplit_once('@').map(|(_, d)| d)
}

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

/// The Cedar context for one request.
pub(crate) fn build(
    args: Option<&Value>,
    types: &BTreeMap<String, ArgType>,
    client_id: &str,
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
    let recipients = recipients(args);
    let domains: BTreeSet<String> = recipients
        .iter()
        .filter_map(|r| domain_of(r))
        .map(str::to_string)
        .collect();
    let set = |s: BTreeSet<String>| {
        RestrictedExpression::new_set(s.into_iter().map(RestrictedExpression::new_string))
    };
    let args = RestrictedExpression::new_record(fields).map_err(|e| e.to_string())?;
    Context::from_pairs([
        ("args".to_string(), args),
        ("recipients".to_string(), set(recipients)),
        ("recipient_domains".to_string(), set(domains)),
        (
            "client_id".to_string(),
            RestrictedExpression::new_string(client_id.to_string()),
        ),
    ])
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recipients_come_from_address_values_not_prose() {
        let args = json!({
            "to": ["Bob@Example.com", "Eve <eve@evil.test>"],
            "cc": "a@example.com; b@partner.test",
            "body": "write to spam@elsewhere.test when you can",
            "nested": {"x": [{"y": "z@deep.test"}]},
            "n": 3
        });
        let r = recipients(Some(&args));
        let want: BTreeSet<String> = [
            "bob@example.com",
            "eve@evil.test",
            "a@example.com",
            "b@partner.test",
            "z@deep.test",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(r, want);
    }
}
