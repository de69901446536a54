//! Arguments made explicit before anyone decides on them: a property the client left out whose
//! schema has a `default` is filled in, and an `integer` given as `5.0` becomes `5`.
//!
//! Why: a policy reads `context.args`, and an adapter applies the schema's defaults itself. An
//! argument left out would be absent for the policy yet take its default at the provider, so a
//! rule such as "no public links" (`context.args.audience == "public"`) would be walked around by
//! not naming the audience at all. Likewise JSON Schema accepts `5.0` as an integer while the
//! policy context holds only whole numbers: the value would drop out of the context. After this
//! pass the policy, the audit record and the adapter all see the same, complete arguments.

use serde_json::{Map, Value};

/// Deepest nesting followed; tool schemas are far shallower.
const MAX_DEPTH: usize = 16;

/// Completes `arguments` (already valid against `schema`) in place; `true` when anything changed.
pub fn complete(schema: &Map<String, Value>, arguments: &mut Value) -> bool {
    let Value::Object(map) = arguments else {
        return false;
    };
    complete_object(schema, map, 0)
}

fn complete_object(
    schema: &Map<String, Value>,
    map: &mut Map<String, Value>,
    depth: usize,
) -> bool {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return false;
    };
    let mut changed = false;
    for (name, property) in properties {
        match map.get_mut(name) {
            Some(value) => changed |= complete_value(property, value, depth + 1),
            None => {
                if let Some(default) = property.get("default") {
                    map.insert(name.clone(), default.clone());
                    changed = true;
                }
            }
        }
    }
    changed
}

fn complete_value(schema: &Value, value: &mut Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let Some(schema) = schema.as_object() else {
        return false;
    };
    match value {
        Value::Object(map) => complete_object(schema, map, depth),
        Value::Array(items) => schema.get("items").is_some_and(|items_schema| {
            items.iter_mut().fold(false, |changed, item| {
                complete_value(items_schema, item, depth + 1) | changed
            })
        }),
        Value::Number(number) if declares(schema, "integer") && !number.is_i64() => {
            match whole(number) {
                Some(whole) => {
                    *value = Value::from(whole);
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

/// `schema` names `kind` as its type, alone or in a list (`["integer", "null"]`).
fn declares(schema: &Map<String, Value>, kind: &str) -> bool {
    match schema.get("type") {
        Some(Value::String(one)) => one == kind,
        Some(Value::Array(many)) => many.iter().any(|t| t.as_str() == Some(kind)),
        _ => false,
    }
}

/// A number with no fractional part, as an `i64` when it fits.
fn whole(number: &serde_json::Number) -> Option<i64> {
    if let Some(unsigned) = number.as_u64() {
        return i64::try_from(unsigned).ok();
    }
    let float = number.as_f64()?;
    // Beyond ±2^53 a float no longer names one integer; those stay as they are (and the
    // policy context, which holds only exact whole numbers, leaves them out).
    const EXACT: f64 = 9_007_199_254_740_992.0;
    #[allow(clippy::cast_possible_truncation)]
    (float.fract() == 0.0 && float.abs() <= EXACT).then_some(float as i64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn schema() -> Map<String, Value> {
        json!({"type": "object", "properties": {
            "audience": {"type": "string", "enum": ["public", "team", "no_one"], "default": "public"},
            "limit": {"type": "integer", "default": 20},
            "page": {"type": ["integer", "null"]},
            "ratio": {"type": "number"},
            "options": {"type": "object", "properties": {
                "notify": {"type": "boolean", "default": true},
                "sizes": {"type": "array", "items": {"type": "integer"}},
            }},
            "text": {"type": "string"},
        }})
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn left_out_arguments_take_the_schema_default_and_given_ones_stay() {
        let mut args = json!({"text": "hi", "options": {}});
        assert!(complete(&schema(), &mut args));
        assert_eq!(
            args,
            json!({"text": "hi", "audience": "public", "limit": 20, "options": {"notify": true}})
        );
        let mut given = json!({"audience": "team", "limit": 3, "options": {"notify": false}});
        let before = given.clone();
        assert!(!complete(&schema(), &mut given));
        assert_eq!(given, before);
    }

    #[test]
    fn whole_floats_become_integers_only_where_the_schema_says_integer() {
        let mut args = json!({"audience": "team", "limit": 5.0, "page": 2.0, "ratio": 3.0,
                              "options": {"notify": true, "sizes": [1.0, 2, 3.0]}});
        assert!(complete(&schema(), &mut args));
        assert_eq!(args["limit"], json!(5));
        assert!(args["limit"].is_i64());
        assert!(args["page"].is_i64());
        assert!(args["ratio"].is_f64(), "a number may stay a float");
        assert_eq!(args["options"]["sizes"], json!([1, 2, 3]));
        assert!(args["options"]["sizes"][0].is_i64());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Whatever subset of the defaulted arguments a client names, the completed arguments
        /// carry every defaulted property, with the client's value where it gave one.
        #[test]
        fn every_defaulted_property_is_present_after_completion(
            audience in proptest::option::of(prop_oneof![Just("public"), Just("team"), Just("no_one")]),
            limit in proptest::option::of(-1000i64..1000),
            limit_as_float in any::<bool>(),
            notify in proptest::option::of(any::<bool>()),
        ) {
            let mut args = json!({"options": {}});
            if let Some(audience) = audience { args["audience"] = json!(audience); }
            if let Some(limit) = limit {
                #[allow(clippy::cast_precision_loss)]
                let value = if limit_as_float { json!(limit as f64) } else { json!(limit) };
                args["limit"] = value;
            }
            if let Some(notify) = notify { args["options"]["notify"] = json!(notify); }
            complete(&schema(), &mut args);
            prop_assert_eq!(&args["audience"], &json!(audience.unwrap_or("public")));
            prop_assert_eq!(args["limit"].as_i64(), Some(limit.unwrap_or(20)));
            prop_assert_eq!(&args["options"]["notify"], &json!(notify.unwrap_or(true)));
        }

        /// Fractional and huge numbers are never rounded into a different integer.
        #[test]
        fn no_number_changes_its_value(float in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let mut args = json!({"limit": float});
            complete(&schema(), &mut args);
            let after = &args["limit"];
            #[allow(clippy::cast_precision_loss)]
            let same = after.as_f64().unwrap() == float || after.as_i64().map(|i| i as f64) == Some(float);
            prop_assert!(same, "{float} became {after}");
        }
    }
}
