//! Reading tool arguments: the gateway validated them against the input schema, but the
//! adapter still never panics on a missing or wrongly typed one.

use serde_json::{Map, Value};

use crate::{ToolError, upstream::PathSegment};

pub(crate) type Args = Map<String, Value>;

pub(crate) fn string<'a>(args: &'a Args, key: &str) -> Result<&'a str, ToolError> {
    opt_string(args, key)?
        .ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` is required")))
}

/// The string argument `key`, encoded as one URL path segment (or refused: see
/// [`PathSegment::encode`]).
pub(crate) fn segment(args: &Args, key: &str) -> Result<PathSegment, ToolError> {
    Ok(PathSegment::encode(key, string(args, key)?)?)
}

pub(crate) fn opt_string<'a>(args: &'a Args, key: &str) -> Result<Option<&'a str>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Err(ToolError::InvalidArguments(
            format!("`{key}` must not be empty"),
        )),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(ToolError::InvalidArguments(format!(
            "`{key}` must be a string"
        ))),
    }
}

pub(crate) fn boolean(args: &Args, key: &str) -> Result<bool, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(ToolError::InvalidArguments(format!(
            "`{key}` must be true or false"
        ))),
    }
}

/// An integer within `[min, max]`, or `default` when absent.
pub(crate) fn int(
    args: &Args,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "`{key}` must be an integer from {min} to {max}"
                ))
            }),
    }
}

/// A list of email addresses, as Graph recipients.
pub(crate) fn recipients(args: &Args, key: &str) -> Result<Vec<Value>, ToolError> {
    let Some(list) = args.get(key).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or_else(|| {
        ToolError::InvalidArguments(format!("`{key}` must be a list of addresses"))
    })?;
    list.iter()
        .map(|entry| {
            let address = entry.as_str().map(str::trim).unwrap_or_default();
            // The schema also checks this; a bare name would make Graph answer a vague 400.
            if address.len() < 3 || !address.contains('@') || address.contains(char::is_whitespace)
            {
                return Err(ToolError::InvalidArguments(format!(
                    "`{key}`: `{address}` is not an email address"
                )));
            }
            Ok(serde_json::json!({ "emailAddress": { "address": address } }))
        })
        .collect()
}
