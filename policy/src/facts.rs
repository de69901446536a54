//! What a call will actually do, as the policy decides on it: the people it reaches (recipients,
//! sharing grantees) and the stored message it answers or forwards. Which arguments carry an
//! address is declared by the tool's input schema, never guessed from an `@`: a string property
//! (or array items) with `"format": "email"`, a recipient unless it says
//! `"x-manifold-role": "grantee"`.
//!
//! Every declared value must be exactly one address ([`crate::address::parse_one`]); one that is
//! not is an error, which the engine and the gateway turn into a denial, never an omission. The
//! arguments are rewritten to the canonical addresses in the same pass, so the adapter sends what
//! the policy saw. Facts an adapter resolves from stored state (the sender of the message a reply
//! answers, the recipients of a draft) are added with [`Facts::add_stored`], through the same
//! parser; so are the places a call acts within ([`Facts::add_container`]: a file's folders, a
//! channel's team) and whom a link it shares works for ([`Facts::share_by_link`]).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::address::{self, Address, AddressError};

/// The schema keyword naming what a declared address is to the call.
pub const ROLE_KEYWORD: &str = "x-manifold-role";

/// Deepest argument nesting followed when looking for declared addresses.
const MAX_DEPTH: usize = 8;

/// What an address is to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The call sends them something (`to`, `cc`, a reply's addressee).
    Recipient,
    /// The call gives them access (a file share).
    Grantee,
    /// A sender or recipient of the stored message a reply or forward quotes.
    Participant,
}

/// Longest container id accepted from an adapter; provider ids are far shorter.
const MAX_CONTAINER_LEN: usize = 512;

/// Whom a shared link works for, the same words for every provider (Dropbox `public`/`team`/
/// `no_one`, Box `open`/`company`/`collaborators`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LinkAudience {
    /// Only people who already have access.
    Invited,
    /// People of the provider account's organization (team, enterprise).
    Organization,
    /// Anyone who has the link.
    Anyone,
}

// === impl LinkAudience ===

impl LinkAudience {
    /// The word policies compare `context.link_audience` with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Organization => "organization",
            Self::Anyone => "anyone",
        }
    }
}

/// The facts of one call, canonical and complete, or an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    recipients: BTreeSet<Address>,
    grantees: BTreeSet<Address>,
    participants: BTreeSet<Address>,
    containers: BTreeSet<String>,
    /// The widest audience of a link the call creates or hands out; `None`: no link.
    link_audience: Option<LinkAudience>,
}

/// Why the facts of a call could not be established. Never repeats an argument's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    #[error("argument `{path}` is not exactly one e-mail address ({source})")]
    Argument {
        path: String,
        #[source]
        source: AddressError,
    },
    #[error("argument `{path}` must be an e-mail address string")]
    NotText { path: String },
    #[error("a stored {role} address of the message could not be read ({source})")]
    Stored {
        role: &'static str,
        #[source]
        source: AddressError,
    },
    #[error("the provider named a container id that is empty, too long or not plain text")]
    Container,
}

// === impl Facts ===

impl Facts {
    /// Reads every address argument `schema` declares, rewriting each in `arguments` to its
    /// canonical form.
    pub fn from_arguments(schema: &Value, arguments: &mut Value) -> Result<Self, FactsError> {
        let mut facts = Facts::default();
        let mut path = String::new();
        walk(schema, arguments, &mut path, 0, &mut facts)?;
        Ok(facts)
    }

    /// [`Facts::from_arguments`] for an object schema held as a map (a tool spec's), without
    /// copying it.
    pub fn from_object_arguments(
        schema: &serde_json::Map<String, Value>,
        arguments: &mut Value,
    ) -> Result<Self, FactsError> {
        let mut facts = Facts::default();
        if let (Some(properties), Value::Object(map)) = (
            schema.get("properties").and_then(Value::as_object),
            arguments,
        ) {
            for (name, property) in properties {
                if let Some(inner) = map.get_mut(name) {
                    let mut path = name.clone();
                    walk(property, inner, &mut path, 1, &mut facts)?;
                }
            }
        }
        Ok(facts)
    }

    /// Adds one address an adapter read from stored state (a message's sender, a draft's
    /// recipient). It must parse as exactly one address: stored data is input like any other.
    pub fn add_stored(&mut self, role: Role, raw: &str) -> Result<(), FactsError> {
        let address = address::parse_one(raw).map_err(|source| FactsError::Stored {
            role: match role {
                Role::Recipient => "recipient",
                Role::Grantee => "grantee",
                Role::Participant => "participant",
            },
            source,
        })?;
        self.set(role).insert(address);
        Ok(())
    }

    /// Adds one place the call acts within, as the provider names it (a folder id, a team id).
    /// An id that is empty, over 512 bytes or holds control characters is refused: it could not
    /// be what a policy's list names, and an unreadable fact is a denial.
    pub fn add_container(&mut self, id: &str) -> Result<(), FactsError> {
        if id.is_empty() || id.len() > MAX_CONTAINER_LEN || id.chars().any(char::is_control) {
            return Err(FactsError::Container);
        }
        self.containers.insert(id.to_owned());
        Ok(())
    }

    /// Records that the call shares by a link working for `audience`; of several, the widest.
    pub fn share_by_link(&mut self, audience: LinkAudience) {
        self.link_audience = self.link_audience.max(Some(audience));
    }

    fn set(&mut self, role: Role) -> &mut BTreeSet<Address> {
        match role {
            Role::Recipient => &mut self.recipients,
            Role::Grantee => &mut self.grantees,
            Role::Participant => &mut self.participants,
        }
    }

    /// Everyone the call sends something to, explicit and implicit.
    pub fn recipients(&self) -> impl Iterator<Item = &Address> {
        self.recipients.iter()
    }

    /// Everyone the call gives access to.
    pub fn grantees(&self) -> impl Iterator<Item = &Address> {
        self.grantees.iter()
    }

    /// The sender and recipients of the stored message the call quotes.
    pub fn participants(&self) -> impl Iterator<Item = &Address> {
        self.participants.iter()
    }

    /// The places the call acts within (folders, teams), as the provider names them.
    pub fn containers(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().map(String::as_str)
    }

    /// Whom a link the call shares works for; `None` when it shares no link.
    pub fn link_audience(&self) -> Option<LinkAudience> {
        self.link_audience
    }
}

/// Every place `schema` declares an address (`"format": "email"`) that [`Facts::from_arguments`]
/// would not read: under `anyOf`/`oneOf`/`allOf`, `additionalProperties`, `$defs` behind a
/// `$ref`, tuple `items`, deeper than the walk goes. The catalog refuses such a tool: an address
/// the policy cannot see would reach the provider unparsed and undecided on. Returns the paths.
pub fn unreadable_declarations(schema: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut found = Vec::new();
    for (key, inner) in schema {
        scan(key, inner, &mut String::new(), true, 0, &mut found);
    }
    found
}

/// Deepest schema nesting checked for declarations; a deeper schema is refused as a whole.
const MAX_SCAN_DEPTH: usize = 64;

/// Keys whose values are data, not schemas.
const DATA_KEYWORDS: [&str; 4] = ["default", "examples", "enum", "const"];

/// Scans the value of keyword `key` of a schema the walk reaches when `reachable`.
fn scan(
    key: &str,
    value: &Value,
    path: &mut String,
    reachable: bool,
    depth: usize,
    found: &mut Vec<String>,
) {
    if DATA_KEYWORDS.contains(&key) {
        return;
    }
    if depth > MAX_SCAN_DEPTH {
        // Too deep to check is unreadable too: refused rather than assumed clean.
        found.push(format!("{path} (nested too deeply to check)"));
        return;
    }
    let len = path.len();
    match (key, value) {
        ("properties", Value::Object(properties)) => {
            for (name, property) in properties {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                schema_at(property, path, reachable, depth + 1, found);
                path.truncate(len);
            }
        }
        ("items", Value::Object(_)) => {
            path.push_str("[]");
            schema_at(value, path, reachable, depth + 1, found);
            path.truncate(len);
        }
        (_, Value::Object(_)) => {
            path.push_str(&format!("/{key}"));
            schema_at(value, path, false, depth + 1, found);
            path.truncate(len);
        }
        (_, Value::Array(list)) => {
            for (i, item) in list.iter().enumerate() {
                path.push_str(&format!("/{key}/{i}"));
                schema_at(item, path, false, depth + 1, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// One (sub)schema at `path`, `depth` levels of properties and items below the root.
fn schema_at(
    schema: &Value,
    path: &mut String,
    reachable: bool,
    depth: usize,
    found: &mut Vec<String>,
) {
    let Value::Object(map) = schema else { return };
    if declared(schema).is_some() && (!reachable || depth > MAX_DEPTH) {
        found.push(if path.is_empty() {
            "(root)".into()
        } else {
            path.clone()
        });
    }
    for (key, inner) in map {
        scan(key, inner, path, reachable, depth, found);
    }
}

/// The schema's declared role for a string schema, if it declares an address.
fn declared(schema: &Value) -> Option<Role> {
    (schema.get("format").and_then(Value::as_str) == Some("email")).then(|| {
        match schema.get(ROLE_KEYWORD).and_then(Value::as_str) {
            Some("grantee") => Role::Grantee,
            _ => Role::Recipient,
        }
    })
}

/// Follows `schema` and `value` together: object properties, array items, nullable types.
fn walk(
    schema: &Value,
    value: &mut Value,
    path: &mut String,
    depth: usize,
    facts: &mut Facts,
) -> Result<(), FactsError> {
    if depth > MAX_DEPTH || value.is_null() {
        return Ok(());
    }
    if let Some(role) = declared(schema) {
        return match value {
            Value::String(text) => {
                let address = address::parse_one(text).map_err(|source| FactsError::Argument {
                    path: path.clone(),
                    source,
                })?;
                *text = address.canonical();
                facts.set(role).insert(address);
                Ok(())
            }
            // A declared address that is not a string might still reach the provider in some
            // form the parser never saw: refused.
            _ => Err(FactsError::NotText { path: path.clone() }),
        };
    }
    match value {
        Value::Object(map) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return Ok(());
            };
            for (name, property) in properties {
                if let Some(inner) = map.get_mut(name) {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                    walk(property, inner, path, depth + 1, facts)?;
                    path.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return Ok(());
            };
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item_schema, item, path, depth + 1, facts)?;
                path.truncate(len);
            }
        }
        // A declared array of addresses given one bare string: read it as that one address,
        // as the context builder widens a lone value to a set.
        Value::String(_) => {
            if let Some(item_schema) = schema.get("items")
                && declared(item_schema).is_some()
            {
                walk(item_schema, value, path, depth + 1, facts)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "to": {"type": "array", "items": {"type": "string", "format": "email"}},
            "email": {"type": "string", "format": "email", "x-manifold-role": "grantee"},
            "body": {"type": "string"},
            "message": {"type": "object", "properties": {
                "cc": {"type": "array", "items": {"type": "string", "format": "email"}}}},
        }})
    }

    fn canonical(set: impl Iterator<Item = impl std::fmt::Display>) -> Vec<String> {
        set.map(|a| a.to_string()).collect()
    }

    #[test]
    fn declared_addresses_are_read_and_rewritten_and_prose_is_not() {
        let mut args = json!({
            "to": ["Bob <BOB@example.com>", "eve@ＥＶＩＬ．test."],
            "email": "\"carol\"@Example.com",
            "body": "write to spam@elsewhere.test",
            "message": {"cc": ["(x) dan@example.com"]},
        });
        let facts = Facts::from_arguments(&schema(), &mut args).unwrap();
        assert_eq!(
            canonical(facts.recipients()),
            ["bob@example.com", "dan@example.com", "eve@evil.test"]
        );
        assert_eq!(canonical(facts.grantees()), ["carol@example.com"]);
        assert_eq!(
            args,
            json!({
                "to": ["bob@example.com", "eve@evil.test"],
                "email": "carol@example.com",
                "body": "write to spam@elsewhere.test",
                "message": {"cc": ["dan@example.com"]},
            })
        );
    }

    #[test]
    fn a_declared_value_that_is_not_one_address_is_an_error_naming_the_argument() {
        for bad in [
            json!({"to": ["bob@example.com", "Eve <eve@evil.test>, x"]}),
            json!({"to": ["undisclosed:;"]}),
            json!({"to": [7]}),
            json!({"message": {"cc": ["eve@evil.test; bob@example.com"]}}),
            json!({"email": ["bob@example.com"]}),
        ] {
            let mut args = bad.clone();
            let error = Facts::from_arguments(&schema(), &mut args).unwrap_err();
            let text = error.to_string();
            assert!(text.starts_with("argument `"), "{bad}: {text}");
            assert!(!text.contains("evil"), "{text}");
        }
    }

    #[test]
    fn addresses_declared_where_the_walk_cannot_read_them_are_reported() {
        let object = |v: Value| v.as_object().cloned().unwrap();
        assert!(unreadable_declarations(&object(schema())).is_empty());
        let email = json!({"type": "string", "format": "email"});
        let mut deep = email.clone();
        for _ in 0..MAX_DEPTH {
            deep = json!({"type": "object", "properties": {"x": deep}});
        }
        for (bad, at) in [
            (
                json!({"properties": {"to": {"anyOf": [email.clone(), {"type": "null"}]}}}),
                "to/anyOf/0",
            ),
            (
                json!({"properties": {"m": {"type": "object", "additionalProperties": email.clone()}}}),
                "m/additionalProperties",
            ),
            (
                json!({"properties": {"to": {"$ref": "#/$defs/a"}}, "$defs": {"a": email.clone()}}),
                "/$defs/a",
            ),
            (
                json!({"properties": {"to": {"type": "array", "items": [email.clone()]}}}),
                "to/items/0",
            ),
            (
                json!({"properties": {"m": {"oneOf": [{"type": "object", "properties": {"cc": email.clone()}}]}}}),
                "m/oneOf/0.cc",
            ),
            (json!({"properties": {"x": deep}}), "x.x.x.x.x.x.x.x.x"),
        ] {
            assert_eq!(unreadable_declarations(&object(bad.clone())), [at], "{bad}");
        }
        // Data that happens to look like a declaration is not one.
        let data = json!({"properties": {"to": {"type": "object", "default": email.clone(), "examples": [email]}}});
        assert!(unreadable_declarations(&object(data)).is_empty());
    }

    #[test]
    fn stored_addresses_go_through_the_same_parser() {
        let mut facts = Facts::default();
        facts
            .add_stored(Role::Recipient, "Eve <EVE@evil.test.>")
            .unwrap();
        facts
            .add_stored(Role::Participant, "bob@example.com")
            .unwrap();
        assert_eq!(canonical(facts.recipients()), ["eve@evil.test"]);
        assert_eq!(canonical(facts.participants()), ["bob@example.com"]);
        assert!(matches!(
            facts.add_stored(Role::Recipient, "not an address"),
            Err(FactsError::Stored {
                role: "recipient",
                ..
            })
        ));
    }
}
