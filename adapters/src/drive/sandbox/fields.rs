//! Partial responses: Google's `fields` parameter (`nextPageToken,files(id,name,owners(emailAddress))`,
//! `files/id`, `*`) applied to an answer, with the names checked against what the resource has.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A selection: each named field, with the selection inside it (empty: the whole field).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Selection {
    pub(crate) all: bool,
    pub(crate) fields: BTreeMap<String, Selection>,
}

pub(crate) fn parse(text: &str) -> Result<Selection, String> {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut at = 0;
    let selection = parse_list(&chars, &mut at)?;
    if at != chars.len() {
        return Err(format!("unexpected `{}`", chars[at]));
    }
    Ok(selection)
}

fn parse_list(chars: &[char], at: &mut usize) -> Result<Selection, String> {
    let mut selection = Selection::default();
    loop {
        let start = *at;
        while *at < chars.len() && !matches!(chars[*at], ',' | '(' | ')') {
            *at += 1;
        }
        let path: String = chars[start..*at].iter().collect();
        if path.is_empty() {
            return Err("an empty field name".into());
        }
        let mut inner = Selection::default();
        if *at < chars.len() && chars[*at] == '(' {
            *at += 1;
            inner = parse_list(chars, at)?;
            if *at >= chars.len() || chars[*at] != ')' {
                return Err("a `(` is not closed".into());
            }
            *at += 1;
        }
        insert(&mut selection, &path, inner);
        if *at < chars.len() && chars[*at] == ',' {
            *at += 1;
            continue;
        }
        return Ok(selection);
    }
}

fn insert(selection: &mut Selection, path: &str, inner: Selection) {
    if path == "*" {
        selection.all = true;
        return;
    }
    match path.split_once('/') {
        Some((head, rest)) => {
            let child = selection.fields.entry(head.to_owned()).or_default();
            insert(child, rest, inner);
        }
        None => {
            selection.fields.insert(path.to_owned(), inner);
        }
    }
}

impl Selection {
    fn whole(&self) -> bool {
        self.all || self.fields.is_empty()
    }

    /// Checks every name against `known` (a resource's fields, a list's fields and, for
    /// nested names, `nested(name)`); returns the first unknown one.
    pub(crate) fn unknown(&self, known: &dyn Fn(&[&str]) -> bool) -> Option<String> {
        fn walk(
            selection: &Selection,
            path: &mut Vec<String>,
            known: &dyn Fn(&[&str]) -> bool,
        ) -> Option<String> {
            for (name, inner) in &selection.fields {
                path.push(name.clone());
                let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                if !known(&refs) {
                    return Some(path.join("/"));
                }
                if let Some(bad) = walk(inner, path, known) {
                    return Some(bad);
                }
                path.pop();
            }
            None
        }
        walk(self, &mut Vec::new(), known)
    }

    /// `value` cut down to the selection.
    pub(crate) fn apply(&self, value: &Value) -> Value {
        if self.whole() {
            return value.clone();
        }
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| self.apply(v)).collect()),
            Value::Object(map) => {
                let mut out = Map::new();
                for (name, inner) in &self.fields {
                    if let Some(field) = map.get(name) {
                        out.insert(name.clone(), inner.apply(field));
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_nested_fields() {
        let selection =
            parse("nextPageToken, files(id,owners(emailAddress)),files/name").expect("parses");
        let value = json!({ "kind": "drive#fileList", "nextPageToken": "t",
            "files": [{ "id": "1", "name": "a", "mimeType": "x", "owners": [{ "emailAddress": "e", "me": true }] }] });
        assert_eq!(
            selection.apply(&value),
            json!({ "nextPageToken": "t", "files": [{ "id": "1", "name": "a", "owners": [{ "emailAddress": "e" }] }] })
        );
        assert_eq!(parse("*").expect("star").apply(&value), value);
        assert!(parse("files(id").is_err());
        assert!(parse("a,,b").is_err());
    }

    #[test]
    fn reports_unknown_names() {
        let selection = parse("files(id,bogus)").expect("parses");
        let bad = selection.unknown(&|path: &[&str]| !path.contains(&"bogus"));
        assert_eq!(bad.as_deref(), Some("files/bogus"));
    }
}
