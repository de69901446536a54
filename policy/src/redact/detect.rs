//! The detectors: a regex over the scan text (see [`super::scan`]) and, where the secret has
//! one, a checksum on its normalised digits (Luhn for cards and SINs, mod-97 for IBANs), so an
//! order number that merely looks like a card stays readable.

use regex::Regex;

use super::{
    RedactError,
    scan::{self, Scan},
};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    None,
    Luhn,
    Mod97,
    Ssn,
    /// Only the capture group 1 is masked (the token after `Bearer `).
    Group1,
}

#[derive(Debug, Clone)]
pub(super) struct Detector {
    pub(super) name: String,
    re: Regex,
    check: Check,
    /// Admin patterns also run on the original text: they were written for it, and may name
    /// characters the scan text folds away (a tab, a full-width letter).
    custom: bool,
    /// `name=regex`, built once: every call's selection compares and hashes these.
    fingerprint: Box<str>,
}

/// One masked span of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span<'d> {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) name: &'d str,
}

// Separators between groups are single characters in the scan text: a space, `-` or `.`.
const SEP: &str = "[ .-]";

pub(super) fn builtin(name: &str) -> Result<Detector, RedactError> {
    let (re, check) = match name {
        // 13–19 digits, optionally grouped.
        "credit_card" => (format!(r"\b[0-9](?:{SEP}?[0-9]){{12,18}}\b"), Check::Luhn),
        // Case-insensitive: an IBAN typed in lower case is still one.
        "iban" => (
            format!(r"(?i)\b[A-Z]{{2}}[0-9]{{2}}(?:{SEP}?[A-Z0-9]){{11,30}}\b"),
            Check::Mod97,
        ),
        "us_ssn" => (
            format!(r"\b[0-9]{{3}}{SEP}[0-9]{{2}}{SEP}[0-9]{{4}}\b"),
            Check::Ssn,
        ),
        // UK National Insurance number (first letters exclude D, F, I, Q, U, V).
        "uk_nino" => (
            format!(
                r"(?i)\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]{SEP}?[0-9]{{2}}{SEP}?[0-9]{{2}}{SEP}?[0-9]{{2}}{SEP}?[A-D]\b"
            ),
            Check::None,
        ),
        // Canadian SIN: 9 digits grouped 3-3-3, Luhn-valid.
        "ca_sin" => (
            format!(r"\b[0-9]{{3}}{SEP}[0-9]{{3}}{SEP}[0-9]{{3}}\b"),
            Check::Luhn,
        ),
        "api_key" => (
            r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[bpas]-[A-Za-z0-9-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16})\b"
                .to_owned(),
            Check::None,
        ),
        "jwt" => (
            r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}".to_owned(),
            Check::None,
        ),
        "bearer" => (
            r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)".to_owned(),
            Check::Group1,
        ),
        other => return Err(RedactError::UnknownBuiltin(other.to_string())),
    };
    let re = Regex::new(&re).map_err(|source| RedactError::Regex {
        name: name.to_string(),
        source,
    })?;
    Ok(Detector::new(name.to_string(), re, check, false))
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn luhn(s: &str) -> bool {
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

pub(super) fn iban_ok(s: &str) -> bool {
    let s: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if s.len() < 15 || s.len() > 34 {
        return false;
    }
    let (head, tail) = s.split_at(4);
    let mut rem: u64 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c.to_digit(36) {
            Some(v) => u64::from(v),
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

/// The match is a token of its own in the original text: no letter, digit, dash or `_` right
/// before or after it (zero-width characters skipped). Read in the original because the scan
/// text joins `card — 4111…` into `card-4111…`.
fn standalone(original: &str, start: usize, end: usize) -> bool {
    let joined = |c: char| c.is_alphanumeric() || c == '_' || scan::dash(c);
    let visible = |c: &char| !scan::invisible(*c);
    let before = original
        .get(..start)
        .and_then(|s| s.chars().rev().find(visible));
    let after = original.get(end..).and_then(|s| s.chars().find(visible));
    !before.is_some_and(joined) && !after.is_some_and(joined)
}

/// Card and SIN numbers: not a run of one digit (zero-filled ids pass Luhn trivially), and card
/// numbers (13+ digits) not starting with 0. Separators may be mixed: `4111-1111 1111.1111` is
/// still a card to whoever reads it.
fn plausible_number(s: &str) -> bool {
    let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    let varied = digits.iter().any(|d| Some(d) != digits.first());
    let card_prefix_ok = digits.len() < 13 || digits.first() != Some(&'0');
    varied && card_prefix_ok
}

fn ssn_ok(s: &str) -> bool {
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    let (Some(a), Some(g), Some(n)) = (d.get(..3), d.get(3..5), d.get(5..)) else {
        return false;
    };
    a != "000" && a != "666" && !a.starts_with('9') && g != "00" && n != "0000"
}

// === impl Detector ===

impl Detector {
    fn new(name: String, re: Regex, check: Check, custom: bool) -> Self {
        let fingerprint = format!("{name}={}", re.as_str()).into_boxed_str();
        Detector {
            name,
            re,
            check,
            custom,
            fingerprint,
        }
    }

    pub(super) fn custom(name: &str, regex: &str) -> Result<Self, RedactError> {
        let re = Regex::new(regex).map_err(|source| RedactError::Regex {
            name: name.to_owned(),
            source,
        })?;
        Ok(Detector::new(name.to_owned(), re, Check::None, true))
    }

    /// What identifies the detector's behaviour, for cache keys of redacted text.
    pub(super) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The scan range `start..end` passes the detector's check.
    fn valid(&self, original: &str, scan: &Scan, start: usize, end: usize) -> bool {
        let Some(text) = scan.text.get(start..end) else {
            return false;
        };
        match self.check {
            Check::None | Check::Group1 => true,
            // Digits inside a longer token (a UUID, an order id) are not a card or SIN.
            Check::Luhn => {
                scan.original(start, end)
                    .is_some_and(|(a, b)| standalone(original, a, b))
                    && plausible_number(text)
                    && luhn(text)
            }
            Check::Mod97 => iban_ok(text),
            Check::Ssn => ssn_ok(text),
        }
    }

    fn push<'d>(&'d self, scan: &Scan, start: usize, end: usize, spans: &mut Vec<Span<'d>>) {
        if let Some((start, end)) = scan.original(start, end) {
            spans.push(Span {
                start,
                end,
                name: &self.name,
            });
        }
    }

    /// Every span of `original` this detector masks, found in the scan text (and, for admin
    /// patterns, in the original too).
    pub(super) fn find<'d>(&'d self, original: &str, scan: &Scan, spans: &mut Vec<Span<'d>>) {
        for c in self.re.captures_iter(&scan.text) {
            let Some(whole) = c.get(0) else { continue };
            let masked = match (self.check, c.get(1)) {
                (Check::Group1, Some(g)) => g,
                _ => whole,
            };
            if masked.is_empty() {
                continue;
            }
            if self.valid(original, scan, masked.start(), masked.end()) {
                self.push(scan, masked.start(), masked.end(), spans);
                continue;
            }
            if matches!(self.check, Check::None | Check::Group1) {
                continue;
            }
            // A greedy match can take in a neighbouring group (`4111 1111 1111 1111 12/28`,
            // `IBAN DE89 … 00 BIC`) and fail its checksum: the secret may be a run of groups
            // inside it. Each run is tried, longest first from each start.
            let (from, to) = (whole.start(), whole.end());
            let text = &scan.text[from..to];
            let cuts: Vec<usize> = text
                .char_indices()
                .filter(|&(_, ch)| matches!(ch, ' ' | '-' | '.'))
                .map(|(i, _)| from + i)
                .collect();
            let starts = std::iter::once(from).chain(cuts.iter().map(|&i| i + 1));
            let ends: Vec<usize> = cuts.iter().copied().chain(std::iter::once(to)).collect();
            let mut next = from;
            for a in starts {
                if a < next {
                    continue;
                }
                let found = ends.iter().rev().copied().find(|&b| {
                    b > a
                        && self
                            .re
                            .find(&scan.text[a..b])
                            .is_some_and(|m| m.len() == b - a)
                        && self.valid(original, scan, a, b)
                });
                if let Some(b) = found {
                    self.push(scan, a, b, spans);
                    next = b;
                }
            }
        }
        if self.custom {
            for m in self.re.find_iter(original).filter(|m| !m.is_empty()) {
                spans.push(Span {
                    start: m.start(),
                    end: m.end(),
                    name: &self.name,
                });
            }
        }
    }
}
