//! `Mcp-Param-*` headers (SEP-2243, protocol 2026-07-28): a tool marks input properties with
//! `"x-mcp-header": "<Name>"`, and the client mirrors those arguments of a `tools/call` into
//! `Mcp-Param-<Name>` headers so intermediaries can route on them without reading the body.
//! Whatever routed on a header must be what the call does, so a header missing for an argument
//! that is there, one whose value differs from the argument, one the tool does not declare, or
//! one that is given twice is refused before the call (HTTP 400, JSON-RPC -32020).
//!
//! rmcp could check these too, for the requests that reach it, if the handler gave it tool
//! schemas; it does not, since rmcp's check compares numbers as text (`1e+20` is not `1e20`),
//! refuses no undeclared header and would consult tools the caller may not see. The fast path
//! runs this check on every 2026-07-28 `tools/call` instead, before either path serves it.

use std::collections::HashSet;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Map, Value};

/// The header name prefix, lower case as [`HeaderMap`] keeps names.
pub(super) const PREFIX: &str = "mcp-param-";

/// The first protocol version with these headers.
const FIRST_VERSION: &str = "2026-07-28";

/// A value the client could not send as a plain field value (non-ASCII, control characters,
/// surrounding whitespace) travels as `=?base64?<standard Base64>?=`.
const BASE64_OPEN: &str = "=?base64?";
const BASE64_CLOSE: &str = "?=";

/// Why a request's `Mcp-Param-*` headers do not agree with its body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParamHeaderError {
    #[error("missing Mcp-Param-{header} header for argument `{argument}`")]
    Missing { header: String, argument: String },
    #[error("Mcp-Param-{header} header given for absent or null argument `{argument}`")]
    Unexpected { header: String, argument: String },
    #[error("Mcp-Param-{header} header does not match argument `{argument}`")]
    Mismatch { header: String, argument: String },
    #[error("Mcp-Param-{header} header is not valid Base64 of UTF-8 text")]
    BadBase64 { header: String },
    #[error("Mcp-Param-{header} header is given more than once")]
    Duplicate { header: String },
    #[error("Mcp-Param-{header} header is not declared by tool `{tool}`")]
    Undeclared { header: String, tool: String },
}

/// Whether the request's protocol version (its `MCP-Protocol-Version` header, given once) is
/// one that has these headers; rmcp draws the same line.
pub(super) fn version_has_param_headers(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all("mcp-protocol-version").iter();
    match (values.next(), values.next()) {
        (Some(version), None) => version
            .to_str()
            .is_ok_and(|version| version >= FIRST_VERSION),
        _ => false,
    }
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` of `tool`, whose input schema is
/// `schema`, against its `arguments`. Header names compare without regard to case, as HTTP's do;
/// values are taken as the transport left them (surrounding whitespace already removed).
pub(crate) fn check(
    headers: &HeaderMap,
    tool: &str,
    schema: &Map<String, Value>,
    arguments: Option<&Map<String, Value>>,
) -> Result<(), ParamHeaderError> {
    let declared = annotations(schema);
    let names: HashSet<String> = declared
        .iter()
        .map(|(_, header)| header.to_ascii_lowercase())
        .collect();
    for name in headers.keys() {
        if let Some(suffix) = name.as_str().strip_prefix(PREFIX)
            && !names.contains(suffix)
        {
            return Err(ParamHeaderError::Undeclared {
                header: suffix.to_owned(),
                tool: tool.to_owned(),
            });
        }
    }
    for (path, header) in &declared {
        let argument = path.join(".");
        let value = single(headers, header)?;
        let expected = argument_at(arguments, path).filter(|value| is_primitive(value));
        match (value, expected) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(ParamHeaderError::Unexpected {
                    header: header.clone(),
                    argument,
                });
            }
            (None, Some(_)) => {
                return Err(ParamHeaderError::Missing {
                    header: header.clone(),
                    argument,
                });
            }
            (Some(raw), Some(expected)) => {
                let text = decode(raw).ok_or_else(|| ParamHeaderError::BadBase64 {
                    header: header.clone(),
                })?;
                if !matches(&text, expected) {
                    return Err(ParamHeaderError::Mismatch {
                        header: header.clone(),
                        argument,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The `Mcp-Param-*` headers a client of protocol 2026-07-28 would send with a call of a tool
/// whose input schema is `schema`: for a request the gateway carries into that era itself
/// (`super::habits`), so the check above holds for it as for any other.
pub(super) fn mirrored(
    schema: &Map<String, Value>,
    arguments: Option<&Map<String, Value>>,
) -> Vec<(HeaderName, HeaderValue)> {
    annotations(schema)
        .into_iter()
        .filter_map(|(path, header)| {
            let text = match argument_at(arguments, &path)? {
                Value::String(text) => text.clone(),
                Value::Bool(flag) => flag.to_string(),
                Value::Number(number) => number.to_string(),
                _ => return None,
            };
            let plain = !text.is_empty()
                && text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
                && !text.starts_with(' ')
                && !text.ends_with(' ')
                && !text.starts_with(BASE64_OPEN);
            let value = if plain {
                text
            } else {
                format!("{BASE64_OPEN}{}{BASE64_CLOSE}", STANDARD.encode(text))
            };
            let name = HeaderName::try_from(format!("{PREFIX}{}", header.to_ascii_lowercase()));
            Some((name.ok()?, HeaderValue::try_from(value).ok()?))
        })
        .collect()
}

/// Every well-formed `x-mcp-header` annotation (a non-empty string) on a property reached from
/// the root through `properties` alone, as (property path, header name).
fn annotations(schema: &Map<String, Value>) -> Vec<(Vec<String>, String)> {
    fn walk(
        properties: Option<&Value>,
        path: &mut Vec<String>,
        out: &mut Vec<(Vec<String>, String)>,
    ) {
        let Some(Value::Object(properties)) = properties else {
            return;
        };
        for (name, property) in properties {
            path.push(name.clone());
            if let Some(Value::String(header)) = property.get("x-mcp-header")
                && !header.is_empty()
            {
                out.push((path.clone(), header.clone()));
            }
            walk(property.get("properties"), path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(schema.get("properties"), &mut Vec::new(), &mut out);
    out
}

/// The header's text when given once; absent is `None`, twice (or not text) an error, since an
/// intermediary could route on either copy.
fn single<'h>(headers: &'h HeaderMap, header: &str) -> Result<Option<&'h str>, ParamHeaderError> {
    let name = format!("{PREFIX}{}", header.to_ascii_lowercase());
    let mut values = headers.get_all(name.as_str()).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ParamHeaderError::Duplicate {
            header: header.to_owned(),
        });
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| ParamHeaderError::BadBase64 {
            header: header.to_owned(),
        })
}

fn argument_at<'a>(
    arguments: Option<&'a Map<String, Value>>,
    path: &[String],
) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let start = arguments?.get(first)?;
    rest.iter().try_fold(start, |value, key| value.get(key))
}

/// Only strings, numbers and booleans are mirrored; null or anything else has no header.
fn is_primitive(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// The header's text: the wrapped Base64 decoded (strictly: standard alphabet, padded, UTF-8),
/// anything not wrapped on both ends taken literally.
fn decode(raw: &str) -> Option<String> {
    let Some(inner) = raw
        .strip_prefix(BASE64_OPEN)
        .and_then(|rest| rest.strip_suffix(BASE64_CLOSE))
    else {
        return Some(raw.to_owned());
    };
    String::from_utf8(STANDARD.decode(inner).ok()?).ok()
}

/// Whether the header's text stands for the argument: strings exactly, booleans as `true` or
/// `false`, numbers by value (a client may write `1.0` as `1`, as JavaScript does).
fn matches(text: &str, argument: &Value) -> bool {
    match argument {
        Value::String(expected) => text == expected,
        Value::Bool(expected) => text == if *expected { "true" } else { "false" },
        Value::Number(expected) => same_number(text, expected),
        _ => false,
    }
}

fn same_number(text: &str, expected: &serde_json::Number) -> bool {
    // Integers exactly, beyond what an f64 holds; other numbers within rounding.
    if let (Ok(given), Some(expected)) = (
        text.parse::<i128>(),
        expected
            .as_i64()
            .map(i128::from)
            .or_else(|| expected.as_u64().map(i128::from)),
    ) {
        return given == expected;
    }
    match (text.parse::<f64>(), expected.as_f64()) {
        (Ok(given), Some(expected)) if given.is_finite() => {
            (given - expected).abs() <= 1e-9 * expected.abs().max(1.0)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::transport::jsonrpc::tests::headers;

    fn schema() -> Map<String, Value> {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "count": {"type": "integer", "x-mcp-header": "Count"},
            "ratio": {"type": "number", "x-mcp-header": "Ratio"},
            "verbose": {"type": "boolean", "x-mcp-header": "Verbose"},
            "query": {"type": "string"},
            "scope": {"type": "object", "properties": {
                "tenant": {"type": "string", "x-mcp-header": "Tenant"}}}
        }});
        schema.as_object().cloned().unwrap_or_default()
    }

    fn run(pairs: &[(&str, &str)], arguments: Value) -> Result<(), ParamHeaderError> {
        check(&headers(pairs), "t_tool", &schema(), arguments.as_object())
    }

    fn base64(text: &str) -> String {
        format!("{BASE64_OPEN}{}{BASE64_CLOSE}", STANDARD.encode(text))
    }

    #[test]
    fn headers_that_mirror_the_arguments_pass() {
        let arguments = json!({"region": "us-west1", "count": 3, "ratio": 0.5, "verbose": true,
                               "query": "q", "scope": {"tenant": "acme"}});
        let pairs = [
            ("Mcp-Param-Region", "us-west1"),
            ("mcp-param-count", "3"),
            ("MCP-PARAM-RATIO", "0.50"),
            ("Mcp-Param-Verbose", "true"),
            ("Mcp-Param-Tenant", "acme"),
        ];
        assert_eq!(run(&pairs, arguments), Ok(()));
        assert_eq!(run(&[], json!({"query": "only unannotated"})), Ok(()));
        assert_eq!(run(&[], json!({"region": null})), Ok(()));
        assert_eq!(
            run(&[("Mcp-Param-Count", "2")], json!({"count": 2.0})),
            Ok(())
        );
    }

    #[test]
    fn a_missing_header_for_a_present_argument_is_refused() {
        assert!(matches!(
            run(&[], json!({"region": "eu"})),
            Err(ParamHeaderError::Missing { .. })
        ));
        assert!(matches!(
            run(&[], json!({"scope": {"tenant": "acme"}})),
            Err(ParamHeaderError::Missing { .. })
        ));
    }

    #[test]
    fn a_header_for_an_absent_or_null_argument_is_refused() {
        assert!(matches!(
            run(&[("Mcp-Param-Verbose", "true")], json!({})),
            Err(ParamHeaderError::Unexpected { .. })
        ));
        assert!(matches!(
            run(&[("Mcp-Param-Verbose", "true")], json!({"verbose": null})),
            Err(ParamHeaderError::Unexpected { .. })
        ));
    }

    #[test]
    fn an_undeclared_or_repeated_header_is_refused() {
        assert!(matches!(
            run(&[("Mcp-Param-Query", "q")], json!({"query": "q"})),
            Err(ParamHeaderError::Undeclared { .. })
        ));
        assert!(matches!(
            run(
                &[("Mcp-Param-Region", "eu"), ("mcp-param-region", "eu")],
                json!({"region": "eu"})
            ),
            Err(ParamHeaderError::Duplicate { .. })
        ));
    }

    #[test]
    fn base64_values_are_decoded_strictly_and_unwrapped_ones_are_literal() {
        let hello = json!({"region": "Hello"});
        assert_eq!(
            run(
                &[("Mcp-Param-Region", "=?base64?SGVsbG8=?=")],
                hello.clone()
            ),
            Ok(())
        );
        for bad in ["=?base64?SGVsbG8?=", "=?base64?SGVs!!!bG8=?="] {
            assert!(
                matches!(
                    run(&[("Mcp-Param-Region", bad)], hello.clone()),
                    Err(ParamHeaderError::BadBase64 { .. })
                ),
                "{bad}"
            );
        }
        // Not wrapped on both ends: the text itself, which then must equal the argument.
        for literal in ["SGVsbG8=", "=?base64?SGVsbG8="] {
            assert_eq!(
                run(
                    &[("Mcp-Param-Region", literal)],
                    json!({ "region": literal })
                ),
                Ok(())
            );
            assert!(matches!(
                run(&[("Mcp-Param-Region", literal)], hello.clone()),
                Err(ParamHeaderError::Mismatch { .. })
            ));
        }
        let unsafe_text = " Zürich\ttab ";
        assert_eq!(
            run(
                &[("Mcp-Param-Region", &base64(unsafe_text))],
                json!({ "region": unsafe_text })
            ),
            Ok(())
        );
    }

    #[test]
    fn values_that_differ_from_the_arguments_are_refused() {
        for (pairs, arguments) in [
            (vec![("Mcp-Param-Region", "EU")], json!({"region": "eu"})),
            (vec![("Mcp-Param-Count", "4")], json!({"count": 3})),
            (vec![("Mcp-Param-Count", "three")], json!({"count": 3})),
            (
                vec![("Mcp-Param-Verbose", "True")],
                json!({"verbose": true}),
            ),
            (
                vec![("Mcp-Param-Verbose", "false")],
                json!({"verbose": true}),
            ),
            (vec![("Mcp-Param-Ratio", "0.6")], json!({"ratio": 0.5})),
        ] {
            assert!(
                matches!(
                    run(&pairs, arguments.clone()),
                    Err(ParamHeaderError::Mismatch { .. })
                ),
                "{pairs:?} {arguments}"
            );
        }
    }

    #[test]
    fn only_protocol_2026_07_28_and_later_has_param_headers() {
        assert!(version_has_param_headers(&headers(&[(
            "mcp-protocol-version",
            "2026-07-28"
        )])));
        assert!(!version_has_param_headers(&headers(&[(
            "mcp-protocol-version",
            "2025-11-25"
        )])));
        assert!(!version_has_param_headers(&headers(&[])));
    }

    /// How a client encodes an argument (SEP-2243 value encoding), for the generated cases.
    fn encode(text: &str) -> String {
        let unsafe_text = text.starts_with([' ', '\t'])
            || text.ends_with([' ', '\t'])
            || text.chars().any(|c| !(' '..='~').contains(&c))
            || (text.starts_with(BASE64_OPEN) && text.ends_with(BASE64_CLOSE));
        if unsafe_text {
            base64(text)
        } else {
            text.to_owned()
        }
    }

    proptest! {
        #[test]
        fn any_string_argument_encoded_as_a_client_would_passes(text in "\\PC{0,24}") {
            let pairs = [("Mcp-Param-Region", encode(&text))];
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            prop_assert_eq!(run(&pairs, json!({ "region": text })), Ok(()));
        }

        #[test]
        fn a_header_for_another_value_is_refused(a in "[ -~]{0,16}", b in "[ -~]{0,16}") {
            prop_assume!(a != b);
            let sent = encode(&b);
            let outcome = run(&[("Mcp-Param-Region", sent.as_str())], json!({ "region": a }));
            prop_assert!(
                matches!(outcome, Err(ParamHeaderError::Mismatch { .. })),
                "{:?}", outcome
            );
        }

        #[test]
        fn integers_match_only_themselves(a in any::<i64>(), b in any::<i64>()) {
            let sent = b.to_string();
            let outcome = run(&[("Mcp-Param-Count", sent.as_str())], json!({ "count": a }));
            prop_assert_eq!(outcome.is_ok(), a == b);
        }

        #[test]
        fn any_header_name_case_is_the_same_header(flips in proptest::collection::vec(any::<bool>(), 16)) {
            let name: String = "mcp-param-region"
                .chars()
                .zip(flips)
                .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            prop_assert_eq!(run(&[(name.as_str(), "eu")], json!({"region": "eu"})), Ok(()));
        }
    }
}
