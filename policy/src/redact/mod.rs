//! Masks secrets and personal data in tool results before they reach the model. Built-in
//! detectors pair a regex with a checksum where one exists (Luhn for cards, mod-97 for IBANs), so
//! an order number that merely looks like a card stays readable; admins add their own regexes.
//!
//! Detectors read a normalised copy of the text ([`scan`]: full-width digits, every kind of
//! space, dash and dot between groups, zero-width characters) and mask the original characters
//! behind each match, so writing a number differently does not hide it and the rest of the text
//! is left as it was.
//!
//! Which detectors apply is decided per tool from the rules that name it: its adapter instance,
//! its adapter kind, its tags ([`Target`]). A rule never names one tool to weaken it: a list tool
//! and a get tool of the same data redact alike. `[tool.<name>]` may only add detectors.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

mod detect;
mod scan;
#[cfg(test)]
mod tests;

pub use detect::BUILTINS;
use detect::{Detector, Span, builtin};
use scan::Scan;

#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("redaction pattern `{name}`: {source}")]
    Regex { name: String, source: regex::Error },
    #[error("unknown built-in detector `{0}`")]
    UnknownBuiltin(String),
    #[error("redaction config: {0}")]
    Config(String),
}

/// One set of detectors. Unset `builtins` means all of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    pub builtins: Option<Vec<String>>,
    #[serde(default)]
    pub patterns: Vec<PatternConfig>,
    /// `false` turns redaction off for the adapter, kind or tag.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Default for ProfileConfig {
    /// All built-ins, on: a gateway with no redaction config still masks secrets.
    fn default() -> Self {
        ProfileConfig {
            builtins: None,
            patterns: Vec::new(),
            enabled: true,
        }
    }
}

/// `[tool.<name>]`: detectors added for one tool on top of what its adapter, kind or tags get.
/// It cannot remove any (no `enabled`, and `builtins` lists additions), so the tool that lists
/// a record and the tool that reads it never differ by what they hide.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolAdditions {
    #[serde(default)]
    pub builtins: Vec<String>,
    #[serde(default)]
    pub patterns: Vec<PatternConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    pub name: String,
    pub regex: String,
}

/// `redaction.toml`: a default profile, replaced for an adapter kind, an adapter instance or a
/// tag, plus per-tool additions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    #[serde(default)]
    pub default: ProfileConfig,
    /// By adapter kind (`drive`, `linear`): every instance of that kind.
    #[serde(default)]
    pub kind: HashMap<String, ProfileConfig>,
    /// By adapter instance (`[adapters.<name>]`): every tool of the instance, whatever prefix
    /// its tools are exposed under.
    #[serde(default)]
    pub adapter: HashMap<String, ProfileConfig>,
    /// By tool tag (`tool_tags` in the adapter config): every tool carrying the tag.
    #[serde(default)]
    pub tag: HashMap<String, ProfileConfig>,
    #[serde(default)]
    pub tool: HashMap<String, ToolAdditions>,
}

impl RedactionConfig {
    pub fn from_toml(text: &str) -> Result<Self, RedactError> {
        toml::from_str(text).map_err(|e| RedactError::Config(e.to_string()))
    }
}

/// The tool a text belongs to, as the rules name it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The adapter instance's config name.
    pub instance: &'a str,
    /// The adapter kind (`drive`, …).
    pub kind: &'a str,
    /// The tool's exposed name.
    pub tool: &'a str,
    pub tags: &'a [String],
}

#[derive(Debug, Clone, Default)]
struct Profile {
    detectors: Vec<Detector>,
}

impl Profile {
    fn build(cfg: &ProfileConfig) -> Result<Self, RedactError> {
        if !cfg.enabled {
            return Ok(Profile::default());
        }
        let names: Vec<&str> = match &cfg.builtins {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => BUILTINS.to_vec(),
        };
        Self::from_parts(&names, &cfg.patterns)
    }

    fn from_parts(builtins: &[&str], patterns: &[PatternConfig]) -> Result<Self, RedactError> {
        let mut detectors = Vec::new();
        for b in builtins {
            detectors.push(builtin(b)?);
        }
        for p in patterns {
            detectors.push(Detector::custom(&p.name, &p.regex)?);
        }
        Ok(Profile { detectors })
    }
}

/// Built once from config; cheap to share (`Arc<Redactor>`).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    default: Profile,
    kinds: HashMap<String, Profile>,
    adapters: HashMap<String, Profile>,
    tags: HashMap<String, Profile>,
    tools: HashMap<String, Profile>,
    /// Every built-in and every configured pattern, whatever a rule turned off: for text that
    /// is not a tool's result (error messages, audit reasons), where masking more costs nothing.
    strict: Profile,
}

impl Redactor {
    pub fn new(cfg: &RedactionConfig) -> Result<Self, RedactError> {
        let build =
            |m: &HashMap<String, ProfileConfig>| -> Result<HashMap<String, Profile>, RedactError> {
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), Profile::build(v)?)))
                    .collect()
            };
        let tools = cfg
            .tool
            .iter()
            .map(|(k, v)| {
                let names: Vec<&str> = v.builtins.iter().map(String::as_str).collect();
                Ok((k.clone(), Profile::from_parts(&names, &v.patterns)?))
            })
            .collect::<Result<_, RedactError>>()?;
        let sections = [&cfg.kind, &cfg.adapter, &cfg.tag];
        let patterns: Vec<PatternConfig> = std::iter::once(&cfg.default.patterns)
            .chain(
                sections
                    .iter()
                    .flat_map(|m| m.values().map(|p| &p.patterns)),
            )
            .chain(cfg.tool.values().map(|t| &t.patterns))
            .flatten()
            .cloned()
            .collect();
        Ok(Redactor {
            default: Profile::build(&cfg.default)?,
            kinds: build(&cfg.kind)?,
            adapters: build(&cfg.adapter)?,
            tags: build(&cfg.tag)?,
            tools,
            strict: Profile::from_parts(BUILTINS, &patterns)?,
        })
    }

    /// The detectors for `target`: its instance's rule, else its tags' rules together, else
    /// its kind's, else the default; plus the tool's additions. Each detector once.
    pub fn select(&self, target: &Target<'_>) -> Selected<'_> {
        let tagged: Vec<&Profile> = target
            .tags
            .iter()
            .filter_map(|t| self.tags.get(t))
            .collect();
        let base: Vec<&Profile> = if let Some(p) = self.adapters.get(target.instance) {
            vec![p]
        } else if !tagged.is_empty() {
            tagged
        } else if let Some(p) = self.kinds.get(target.kind) {
            vec![p]
        } else {
            vec![&self.default]
        };
        // A few detectors per selection: a linear look for an earlier one alike beats a set.
        let mut detectors: Vec<&Detector> = Vec::new();
        for detector in base
            .into_iter()
            .chain(self.tools.get(target.tool))
            .flat_map(|p| &p.detectors)
        {
            if !detectors
                .iter()
                .any(|seen| seen.fingerprint() == detector.fingerprint())
            {
                detectors.push(detector);
            }
        }
        Selected { detectors }
    }

    /// The strictest selection: every built-in and every configured pattern.
    pub fn strict(&self) -> Selected<'_> {
        Selected {
            detectors: self.strict.detectors.iter().collect(),
        }
    }

    /// Masks text for `target`; returns the text and the number of masked spans.
    pub fn redact_text<'t>(&self, target: &Target<'_>, text: &'t str) -> (Cow<'t, str>, usize) {
        self.select(target).redact_text(text)
    }

    /// Masks every string in a JSON value for `target` (see [`Selected::redact_value`]).
    pub fn redact_value(&self, target: &Target<'_>, value: &mut Value) -> usize {
        self.select(target).redact_value(value)
    }
}

/// The detectors that apply to one tool.
#[derive(Debug, Clone)]
pub struct Selected<'r> {
    detectors: Vec<&'r Detector>,
}

// === impl Selected ===

impl Selected<'_> {
    pub fn is_empty(&self) -> bool {
        self.detectors.is_empty()
    }

    /// Names what these detectors do, so text redacted by them can be cached and reused only
    /// for the same selection.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for d in &self.detectors {
            hasher.update(d.fingerprint().as_bytes());
            hasher.update([0]);
        }
        hex::encode(&hasher.finalize()[..16])
    }

    /// Masks text; returns the text and the number of masked spans. Overlapping matches of
    /// several detectors become one mask, named after the one that starts first.
    pub fn redact_text<'t>(&self, text: &'t str) -> (Cow<'t, str>, usize) {
        if self.detectors.is_empty() || text.is_empty() {
            return (Cow::Borrowed(text), 0);
        }
        let scan = Scan::new(text);
        let mut spans: Vec<Span<'_>> = Vec::new();
        for d in &self.detectors {
            d.find(text, &scan, &mut spans);
        }
        if spans.is_empty() {
            return (Cow::Borrowed(text), 0);
        }
        spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
        let mut merged: Vec<Span<'_>> = Vec::with_capacity(spans.len());
        for s in spans {
            match merged.last_mut() {
                Some(last) if s.start < last.end => last.end = last.end.max(s.end),
                _ => merged.push(s),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for s in &merged {
            out.push_str(text.get(at..s.start).unwrap_or(""));
            out.push_str("[REDACTED:");
            out.push_str(s.name);
            out.push(']');
            at = s.end;
        }
        out.push_str(text.get(at..).unwrap_or(""));
        (Cow::Owned(out), merged.len())
    }

    /// Masks every string in a JSON value, at any depth (object keys are left alone); returns the
    /// number of masked spans, for the audit record.
    pub fn redact_value(&self, value: &mut Value) -> usize {
        match value {
            Value::String(s) => {
                let (out, n) = self.redact_text(s);
                if let Cow::Owned(o) = out {
                    *s = o;
                }
                n
            }
            Value::Array(a) => a.iter_mut().map(|v| self.redact_value(v)).sum(),
            Value::Object(o) => o.values_mut().map(|v| self.redact_value(v)).sum(),
            _ => 0,
        }
    }
}
