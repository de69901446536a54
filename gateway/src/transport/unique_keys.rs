//! Refuses JSON with a key repeated in one object, at any depth.
//!
//! serde_json keeps the last of two equal keys in a map and errors on a repeated struct field, so
//! the stages of the gateway could read one `{"to": "a", "to": "b"}` differently: the policy the
//! first value, the adapter the last, or the other way round. A body is therefore checked once,
//! before anything dispatches it, and a repeated key is a parse error. Keys are compared after
//! JSON unescaping, so `"to"` and `"\u0074o"` are the same key.

use std::{borrow::Cow, collections::HashSet, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why a body is not JSON with unique keys.
#[derive(Debug, thiserror::Error)]
pub enum UniqueKeysError {
    /// Two members of one object have the same name.
    #[error("duplicate key {key:?} in a JSON object ({location})")]
    Duplicate { key: String, location: String },
    /// Not JSON at all (or nested deeper than the parser allows).
    #[error("{0}")]
    Syntax(serde_json::Error),
}

/// A key shown in an error is cut to this many characters: enough to find it, never a whole
/// payload smuggled into a key.
const SHOWN_KEY_CHARS: usize = 64;

/// Checks that `body` is one JSON value in which no object repeats a key.
pub fn check(body: &[u8]) -> Result<(), UniqueKeysError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let outcome = Value
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    outcome.map_err(|error| {
        let location = format!("line {} column {}", error.line(), error.column());
        match error.to_string().strip_prefix(DUPLICATE_MARK) {
            Some(rest) => {
                let key = rest
                    .rsplit_once(" at line ")
                    .map_or(rest, |(key, _)| key)
                    .to_owned();
                UniqueKeysError::Duplicate { key, location }
            }
            None => UniqueKeysError::Syntax(error),
        }
    })
}

/// Prefix of the custom serde error that marks a duplicate (the key follows).
const DUPLICATE_MARK: &str = "\u{0}duplicate:";

/// Any JSON value, visited without building it.
struct Value;

impl<'de> DeserializeSeed<'de> for Value {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Value)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Most objects are small: a linear scan beats hashing until they are not.
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            let repeated = match &mut many {
                Some(set) => !set.insert(key.clone()),
                None if few.len() < 16 => {
                    let repeated = few.contains(&key);
                    few.push(key.clone());
                    repeated
                }
                None => {
                    let mut set: HashSet<_> = few.drain(..).collect();
                    let repeated = !set.insert(key.clone());
                    many = Some(set);
                    repeated
                }
            };
            if repeated {
                let shown: String = key.chars().take(SHOWN_KEY_CHARS).collect();
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARK}{shown}")));
            }
            map.next_value_seed(Value)?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the body unless it had escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;
    use serde_json::{Map, Value as Json};

    use super::*;

    #[test]
    fn unique_keys_pass_and_repeated_ones_are_named() {
        check(br#"{"a":1,"b":{"a":2,"c":[{"a":3},{"a":4}]}}"#).unwrap();
        for body in [
            r#"{"a":1,"a":2}"#,
            r#"{"params":{"arguments":{"to":"x","to":"y"}}}"#,
            r#"[1,{"k":[{"z":null,"z":null}]}]"#,
            r#"{"to":"x","\u0074o":"y"}"#,
        ] {
            let error = check(body.as_bytes()).unwrap_err();
            assert!(
                matches!(&error, UniqueKeysError::Duplicate { .. }),
                "{body}: {error}"
            );
            assert!(error.to_string().starts_with("duplicate key"), "{error}");
        }
        assert!(matches!(
            check(b"{\"a\":1,").unwrap_err(),
            UniqueKeysError::Syntax(_)
        ));
        assert!(matches!(
            check(b"{} {}").unwrap_err(),
            UniqueKeysError::Syntax(_)
        ));
    }

    #[test]
    fn a_long_key_is_shown_cut() {
        let key = "k".repeat(500);
        let body = format!(r#"{{"{key}":1,"{key}":2}}"#);
        let error = check(body.as_bytes()).unwrap_err().to_string();
        assert!(error.len() < 200, "{error}");
    }

    /// Arbitrary JSON with small key alphabets, so objects often hold keys that differ by one
    /// character.
    fn json_value() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            "[a-c]{0,3}".prop_map(Json::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
                prop::collection::btree_map("[a-c]{1,2}", inner, 0..6)
                    .prop_map(|map| Json::Object(map.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// Serializes `value`, repeating the `nth` object member found in document order (its key
    /// written again, escaped when `escape`, with `repeat` as the value).
    fn with_repeated_member(value: &Json, nth: usize, escape: bool, repeat: &Json) -> String {
        fn write(
            value: &Json,
            counter: &mut usize,
            target: usize,
            escape: bool,
            repeat: &Json,
            out: &mut String,
        ) {
            match value {
                Json::Object(map) => {
                    out.push('{');
                    for (i, (key, member)) in map.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&Json::from(key.as_str()).to_string());
                        out.push(':');
                        let here = *counter == target;
                        *counter += 1;
                        write(member, counter, target, escape, repeat, out);
                        if here {
                            let again = if escape {
                                let escaped: String = key
                                    .chars()
                                    .map(|c| format!("\\u{:04x}", c as u32))
                                    .collect();
                                format!("\"{escaped}\"")
                            } else {
                                Json::from(key.as_str()).to_string()
                            };
                            out.push_str(&format!(",{again}:{repeat}"));
                        }
                    }
                    out.push('}');
                }
                Json::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write(item, counter, target, escape, repeat, out);
                    }
                    out.push(']');
                }
                leaf => out.push_str(&leaf.to_string()),
            }
        }
        let mut out = String::new();
        write(value, &mut 0, nth, escape, repeat, &mut out);
        out
    }

    fn members(value: &Json) -> usize {
        match value {
            Json::Object(map) => map.len() + map.values().map(members).sum::<usize>(),
            Json::Array(items) => items.iter().map(members).sum(),
            _ => 0,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Valid JSON with unique keys always passes; the same document with any one member
        /// repeated — at whatever depth, escaped or not, with any value — never does.
        #[test]
        fn any_repeated_member_at_any_depth_is_refused(
            doc in json_value(),
            pick in any::<prop::sample::Index>(),
            escape in any::<bool>(),
            repeat in json_value(),
        ) {
            let plain = doc.to_string();
            prop_assert!(check(plain.as_bytes()).is_ok(), "{plain}");
            let count = members(&doc);
            prop_assume!(count > 0);
            let body = with_repeated_member(&doc, pick.index(count), escape, &repeat);
            prop_assert!(serde_json::from_str::<Json>(&body).is_ok(), "{body}");
            let error = check(body.as_bytes());
            prop_assert!(
                matches!(error, Err(UniqueKeysError::Duplicate { .. })),
                "{body}"
            );
        }
    }
}
