//! Masks secrets and personal data in tool results before they reach the model. Built-in
//! detectors pair a regex with a checksum where one exists (Luhn for cards, mod-97 for IBANs), so
//! an order number that merely looks like a card stays readable; admins add their own regexes.
//! Which detectors apply is configured per adapter instance and per tool.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::{Captures, Regex};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("redaction pattern `{name}`: {source}")]
    Regex { name: String, source: regex::Error },
    #[error("unknown built-in detector `{0}`")]
    UnknownBuiltin(String),
    #[error("redaction config: {0}")]
    Config(String),
}

/// The built-in detectors, by config name.
pub const BUILTINS: &[&str] = &[
    "credit_card",
    "iban",
    "us_ssn",
    "uk_nino",
    "ca_sin",
    "api_key",
    "jwt",
    "bearer",
];

/// One set of detectors. Unset `builtins` means all of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    pub builtins: Option<Vec<String>>,
    #[serde(default)]
    pub patterns: Vec<PatternConfig>,
    /// `false` turns redaction off for this adapter/tool.
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    pub name: String,
    pub regex: String,
}

/// `redaction.toml`: a default profile, overridden per adapter instance, then per tool.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    #[serde(default)]
    pub default: ProfileConfig,
    #[serde(default)]
    pub adapter: HashMap<String, ProfileConfig>,
    #[serde(default)]
    pub tool: HashMap<String, ProfileConfig>,
}

impl RedactionConfig {
    pub fn from_toml(text: &str) -> Result<Self, RedactError> {
        toml::from_str(text).map_err(|e| RedactError::Config(e.to_string()))
    }
}

#[derive(Debug, Clone, Copy)]
enum Check {
    None,
    Luhn,
    Mod97,
    Ssn,
    /// Only the capture group 1 is masked (the token after `Bearer `).
    Group1,
}

#[derive(Debug, Clone)]
struct Detector {
    name: String,
    re: Regex,
    check: Check,
}

fn builtin(name: &str) -> Result<Detector, RedactError> {
    let (re, check) = match name {
        // 13–19 digits, optionally grouped by single spaces or dashes.
        "credit_card" => (r"\b\d(?:[ -]?\d){12,18}\b", Check::Luhn),
        "iban" => (r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", Check::Mod97),
        "us_ssn" => (r"\b\d{3}-\d{2}-\d{4}\b", Check::Ssn),
        // UK National Insurance number (first letters exclude D, F, I, Q, U, V).
        "uk_nino" => (
            r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
            Check::None,
        ),
        // Canadian SIN: 9 digits grouped 3-3-3, Luhn-valid.
        "ca_sin" => (r"\b\d{3}[ -]\d{3}[ -]\d{3}\b", Check::Luhn),
        "api_key" => (
            r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[bpas]-[A-Za-z0-9-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16})\b",
            Check::None,
        ),
        "jwt" => (
            r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}",
            Check::None,
        ),
        "bearer" => (r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)", Check::Group1),
        other => return Err(RedactError::UnknownBuiltin(other.to_string())),
    };
    let re = Regex::new(re).map_err(|source| RedactError::Regex {
        name: name.to_string(),
        source,
    })?;
    Ok(Detector {
        name: name.to_string(),
        re,
        check,
    })
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

pub(crate) fn luhn(s: &str) -> bool {
    let d = digits(s);
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    !d.is_empty() && sum.is_multiple_of(10)
}

pub(crate) fn iban_ok(s: &str) -> bool {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() < 15 || s.len() > 34 {
        return false;
    }
    let (head, tail) = s.split_at(4);
    let mut rem: u64 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c.to_digit(36) {
            Some(v) => v as u64,
            None => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// The match is a token of its own: no letter, digit, `-` or `_` right before or after it.
fn standalone(text: &str, start: usize, end: usize) -> bool {
    let joined = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let before = text.get(..start).and_then(|s| s.chars().next_back());
    let after = text.get(end..).and_then(|s| s.chars().next());
    !before.is_some_and(joined) && !after.is_some_and(joined)
}

/// Card and SIN numbers: one kind of separator at most, not a run of one digit (zero-filled
/// ids pass Luhn trivially), and card numbers (13+ digits) not starting with 0.
fn plausible_number(s: &str) -> bool {
    let separators: Vec<char> = s.chars().filter(|c| !c.is_ascii_digit()).collect();
    let one_kind = separators.windows(2).all(|w| w[0] == w[1]);
    let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    let varied = digits.iter().any(|d| Some(d) != digits.first());
    let card_prefix_ok = digits.len() < 13 || digits.first() != Some(&'0');
    one_kind && varied && card_prefix_ok
}

fn ssn_ok(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some(a), Some(g), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    a != "000" && a != "666" && !a.starts_with('9') && g != "00" && n != "0000"
}

impl Detector {
    fn apply<'t>(&self, text: &'t str, hits: &mut usize) -> Cow<'t, str> {
        self.re.replace_all(text, |c: &Captures<'_>| {
            let whole = c.get(0).map_or("", |m| m.as_str());
            let (start, end) = c.get(0).map_or((0, 0), |m| (m.start(), m.end()));
            let ok = match self.check {
                Check::None | Check::Group1 => true,
                // Digits inside a longer token (a UUID, an order id) are not a card or SIN.
                Check::Luhn => {
                    standalone(text, start, end) && plausible_number(whole) && luhn(whole)
                }
                Check::Mod97 => iban_ok(whole),
                Check::Ssn => ssn_ok(whole),
            };
            if !ok {
                return whole.to_string();
            }
            *hits += 1;
            let mask = format!("[REDACTED:{}]", self.name);
            match (self.check, c.get(1)) {
                (Check::Group1, Some(g)) => {
                    let start = g.start() - c.get(0).map_or(0, |m| m.start());
                    format!("{}{mask}", whole.get(..start).unwrap_or(""))
                }
                _ => mask,
            }
        })
    }
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
        let mut detectors = Vec::new();
        match &cfg.builtins {
            Some(list) => {
                for b in list {
                    detectors.push(builtin(b)?);
                }
            }
            None => {
                for b in BUILTINS {
                    detectors.push(builtin(b)?);
                }
            }
        }
        for p in &cfg.patterns {
            detectors.push(Detector {
                name: p.name.clone(),
                re: Regex::new(&p.regex).map_err(|source| RedactError::Regex {
                    name: p.name.clone(),
                    source,
                })?,
                check: Check::None,
            });
        }
        Ok(Profile { detectors })
    }
}

/// Built once from config; cheap to share (`Arc<Redactor>`).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    default: Profile,
    adapters: HashMap<String, Profile>,
    tools: HashMap<String, Profile>,
}

impl Redactor {
    pub fn new(cfg: &RedactionConfig) -> Result<Self, RedactError> {
        let build =
            |m: &HashMap<String, ProfileConfig>| -> Result<HashMap<String, Profile>, RedactError> {
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), Profile::build(v)?)))
                    .collect()
            };
        Ok(Redactor {
            default: Profile::build(&cfg.default)?,
            adapters: build(&cfg.adapter)?,
            tools: build(&cfg.tool)?,
        })
    }

    fn profile(&self, instance: &str, tool: &str) -> &Profile {
        self.tools
            .get(tool)
            .or_else(|| self.adapters.get(instance))
            .unwrap_or(&self.default)
    }

    /// Masks text; returns the text and the number of masked spans.
    pub fn redact_text<'t>(
        &self,
        instance: &str,
        tool: &str,
        text: &'t str,
    ) -> (Cow<'t, str>, usize) {
        let mut hits = 0;
        let mut out = Cow::Borrowed(text);
        for d in &self.profile(instance, tool).detectors {
            if let Cow::Owned(s) = d.apply(&out, &mut hits) {
                out = Cow::Owned(s);
            }
        }
        (out, hits)
    }

    /// Masks every string in a JSON value, at any depth (object keys are left alone); returns the
    /// number of masked spans, for the audit record.
    pub fn redact_value(&self, instance: &str, tool: &str, value: &mut Value) -> usize {
        match value {
            Value::String(s) => {
                let (out, n) = self.redact_text(instance, tool, s);
                if let Cow::Owned(o) = out {
                    *s = o;
                }
                n
            }
            Value::Array(a) => a
                .iter_mut()
                .map(|v| self.redact_value(instance, tool, v))
                .sum(),
            Value::Object(o) => o
                .values_mut()
                .map(|v| self.redact_value(instance, tool, v))
                .sum(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all() -> Redactor {
        Redactor::new(&RedactionConfig::default()).expect("builtins compile")
    }

    fn masked(s: &str) -> bool {
        all().redact_text("x", "y", s).1 > 0
    }

    #[test]
    fn true_positives_are_masked() {
        for s in [
            "card 4111 1111 1111 1111 ok",
            "card 4111-1111-1111-1111",
            "5500005555555559",
            "IBAN GB82 WEST 1234 5698 7654 32",
            "DE89370400440532013000",
            "ssn 123-45-6789",
            "NI AB 12 34 56 C",
            "sin 046 454 286",
            "key sk-proj-abcdefghijklmnopqrstuvwx",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "xoxb-123456789012-abcdefghij",
            "AKIAIOSFODNN7EXAMPLE",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "Authorization: Bearer abcdef0123456789abcdef",
        ] {
            assert!(masked(s), "not masked: {s}");
        }
    }

    #[test]
    fn ids_that_look_like_numbers_are_left_alone() {
        for s in [
            "team 00000002-0000-4000-8000-000000000000",
            "id=00000007-0000-4000-8000-000000000041",
            "0000 0000 0000 0000",
            "ref 4111-1111 1111-1111",
            "abc4111111111111111",
            "sin 000-000-000",
        ] {
            assert!(!masked(s), "masked: {s}");
        }
    }

    #[test]
    fn near_misses_are_left_alone() {
        for s in [
            "order 4111 1111 1111 1112",   // fails Luhn
            "1234567812345678",            // fails Luhn
            "GB82 WEST 1234 5698 7654 33", // fails mod-97
            "ssn 000-12-3456",             // invalid area
            "phone 555-12-34567",          // wrong grouping
            "sk-short",                    // too short
            "ghp_tooShort",
            "AKIA1234",
            "eyJhbGciOi.not-a-jwt",
            "the bearer of bad news",
            "sin 046 454 287", // fails Luhn
            "ref QQ123456C",   // QQ is not an issued prefix
        ] {
            assert!(!masked(s), "masked: {s}");
        }
    }

    #[test]
    fn values_are_masked_at_any_depth_and_bearer_keeps_its_prefix() {
        let mut v = json!({"a": [{"b": "pay 4111111111111111 now"}], "n": 4111111111111111u64,
                           "h": "Bearer abcdef0123456789abcdef"});
        let n = all().redact_value("x", "y", &mut v);
        assert_eq!(n, 2);
        assert_eq!(v["a"][0]["b"], "pay [REDACTED:credit_card] now");
        assert_eq!(v["h"], "Bearer [REDACTED:bearer]");
        assert_eq!(v["n"], 4111111111111111u64, "numbers are not strings");
    }

    #[test]
    fn per_adapter_and_tool_profiles_and_custom_patterns() {
        let cfg = RedactionConfig::from_toml(
            r#"
            [default]
            builtins = ["credit_card"]
            [[default.patterns]]
            name = "employee_id"
            regex = 'EMP-\d{6}'
            [adapter.linear]
            builtins = []
            [tool.linear_export]
            enabled = false
            "#,
        )
        .expect("config");
        let r = Redactor::new(&cfg).expect("build");
        assert_eq!(
            r.redact_text("drive", "t", "EMP-123456").0,
            "[REDACTED:employee_id]"
        );
        assert_eq!(
            r.redact_text("drive", "t", "ssn 123-45-6789").1,
            0,
            "not configured"
        );
        assert_eq!(r.redact_text("linear", "t", "4111111111111111").1, 0);
        assert_eq!(
            r.redact_text("other", "linear_export", "4111111111111111")
                .1,
            0
        );
        assert!(
            RedactionConfig::from_toml("[default]\nbuiltins=[\"nope\"]")
                .and_then(|c| Redactor::new(&c))
                .is_err()
        );
    }
}
