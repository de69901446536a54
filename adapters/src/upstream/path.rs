//! The one way an id or a name reaches a provider URL path. [`PathSegment::encode`] percent-encodes
//! every byte outside RFC 3986's unreserved set, so a value can never add a segment, a query or a
//! fragment, and it refuses values that a server could still read as a dot segment (`.`, `..`)
//! or as a control: a request that might walk the provider's path tree is never sent.
//!
//! Why refuse rather than encode: `url` drops `.` and `..` segments pushed through
//! `path_segments_mut` (the request would silently name the parent), and a provider may undo our
//! encoding before routing — decode `%2e` (or our own `%252e`) once or twice, apply NFKC (full-width
//! `．`, one-dot leader `․`), strip whitespace, zero-width and other invisible characters, drop
//! `;params`, or split on a decoded `/` or `\`. A value that turns into a dot segment under any
//! of these is refused; so is one that turns into nothing, and one that holds a control character.
//!
//! [`append`] is the only function that adds segments to a base URL, and it takes only
//! [`PathSegment`]s, which the encoder or a `&'static str` literal build: the compiler proves
//! that no request path holds an unchecked argument.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use unicode_normalization::UnicodeNormalization as _;
use url::Url;

use crate::{BuildError, ToolError};

/// Everything outside RFC 3986 `unreserved` (`ALPHA / DIGIT / "-" / "." / "_" / "~"`).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a fixed segment of an API path may hold besides unreserved characters (Graph's
/// path addressing `root:`, `$value`, `@` in ids of the API's own making).
const NOT_FIXED: &AsciiSet = &NOT_UNRESERVED
    .remove(b':')
    .remove(b'$')
    .remove(b'@')
    .remove(b'!');

/// Longest value placed in one segment; no provider id comes close, and a huge one only costs.
pub const MAX_SEGMENT_BYTES: usize = 2048;

/// How many times a provider might percent-decode a segment before it routes (our own `%25`
/// escapes peel off one per round).
const DECODE_ROUNDS: usize = 3;

/// One segment of a provider URL path, already encoded. Built only by [`PathSegment::encode`]
/// (a value from arguments or answers) or from a `&'static str` (a literal of the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSegment(Cow<'static, str>);

/// Why a value cannot be a path segment, or a path could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{what}` must not be empty or consist only of spaces and invisible characters")]
    Empty { what: String },
    #[error(
        "`{what}` reads as a dot segment (`.` or `..`) once decoded and normalised, which could \
         address another resource; it was refused and nothing was sent"
    )]
    DotSegment { what: String },
    #[error("`{what}` contains a control character; it was refused and nothing was sent")]
    Control { what: String },
    #[error(
        "`{what}` contains a percent-escape of an overlong UTF-8 sequence; it was refused and \
         nothing was sent"
    )]
    Overlong { what: String },
    #[error("`{what}` is longer than {MAX_SEGMENT_BYTES} bytes")]
    TooLong { what: String },
    #[error("the URL `{base}` cannot take path segments")]
    NotABase { base: String },
    #[error("the URL parser rewrote the request path; nothing was sent")]
    Rewritten,
}

// === impl PathSegment ===

impl PathSegment {
    /// Encodes `value` for one path segment, or refuses it (see the module docs). `what` names the
    /// value in the error (`message_id`, `file`), so the model can tell which argument to fix.
    pub fn encode(what: &str, value: &str) -> Result<Self, PathError> {
        check(value).map_err(|reason| reason.for_value(what))?;
        Ok(Self(Cow::Owned(
            utf8_percent_encode(value, NOT_UNRESERVED).to_string(),
        )))
    }

    /// A literal segment of the API (`me`, `messages`, `root:`). Characters a literal should not
    /// hold are encoded rather than trusted.
    pub fn fixed(text: &'static str) -> Self {
        debug_assert!(
            check(text).is_ok(),
            "fixed path segment `{text}` is not a plain segment"
        );
        Self(utf8_percent_encode(text, NOT_FIXED).into())
    }

    /// This segment followed by a literal, as in Graph's `items/{id}:` and `root:/a/{name}:`.
    #[must_use]
    pub fn with_suffix(self, suffix: &'static str) -> Self {
        let mut text = self.0.into_owned();
        text.push_str(&utf8_percent_encode(suffix, NOT_FIXED).to_string());
        Self(Cow::Owned(text))
    }

    /// The encoded text, as it goes on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for PathSegment {
    /// A `&'static str` is a literal of the program, never an argument: see [`PathSegment::fixed`].
    fn from(text: &'static str) -> Self {
        Self::fixed(text)
    }
}

impl std::fmt::Display for PathSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a value a provider reads as one segment of its own path syntax without our encoding
/// (a component of a Dropbox path, which travels in a JSON body): the same refusals as
/// [`PathSegment::encode`].
pub fn check_segment(what: &str, value: &str) -> Result<(), PathError> {
    check(value).map_err(|reason| reason.for_value(what))
}

/// `base` with `segments` appended after its own path (which is kept: the sandbox serves each
/// provider under a prefix), a trailing slash of `base` dropped first. The query of `base` is
/// kept; callers add their own pairs afterwards.
pub fn append(base: &Url, segments: &[PathSegment]) -> Result<Url, PathError> {
    if base.cannot_be_a_base() {
        return Err(PathError::NotABase {
            base: base.to_string(),
        });
    }
    let mut path = base.path().trim_end_matches('/').to_owned();
    for segment in segments {
        path.push('/');
        path.push_str(segment.as_str());
    }
    if path.is_empty() {
        path.push('/');
    }
    let mut url = base.clone();
    url.set_path(&path);
    // Defence in depth: every segment is plain encoded text, so the parser has nothing to
    // normalise; if it changed anything, the request would not name what the caller built.
    if url.path() != path {
        return Err(PathError::Rewritten);
    }
    Ok(url)
}

// === impl PathError ===

impl PathError {
    /// True when the value was refused (as opposed to a base URL that takes no segments).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::NotABase { .. })
    }
}

impl From<PathError> for ToolError {
    fn from(error: PathError) -> Self {
        match error {
            PathError::NotABase { .. } => ToolError::BadResponse(error.to_string()),
            refused => ToolError::InvalidArguments(refused.to_string()),
        }
    }
}

impl From<PathError> for BuildError {
    fn from(error: PathError) -> Self {
        match error {
            PathError::NotABase { base } => BuildError::BaseUrl {
                url: base,
                reason: "cannot be a base URL".into(),
            },
            other => BuildError::Client(other.to_string()),
        }
    }
}

// === the refusal rules ===

/// Why a value was refused, before it is given a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Empty,
    DotSegment,
    Control,
    Overlong,
    TooLong,
}

impl Reason {
    fn for_value(self, what: &str) -> PathError {
        let what = what.to_owned();
        match self {
            Reason::Empty => PathError::Empty { what },
            Reason::DotSegment => PathError::DotSegment { what },
            Reason::Control => PathError::Control { what },
            Reason::Overlong => PathError::Overlong { what },
            Reason::TooLong => PathError::TooLong { what },
        }
    }
}

/// Checks `value` and every form a server may decode it to.
fn check(value: &str) -> Result<(), Reason> {
    if value.len() > MAX_SEGMENT_BYTES {
        return Err(Reason::TooLong);
    }
    let mut form: Cow<'_, str> = Cow::Borrowed(value);
    for _ in 0..=DECODE_ROUNDS {
        inspect(&form)?;
        let bytes: Cow<'_, [u8]> = percent_decode_str(&form).into();
        let Cow::Owned(bytes) = bytes else {
            // Nothing left to decode: every later round would see the same text.
            break;
        };
        if has_overlong(&bytes) {
            return Err(Reason::Overlong);
        }
        form = Cow::Owned(String::from_utf8_lossy(&bytes).into_owned());
    }
    Ok(())
}

/// One decoded form: no control characters, not invisible, no dot segment however split.
fn inspect(form: &str) -> Result<(), Reason> {
    if form.chars().any(char::is_control) {
        return Err(Reason::Control);
    }
    let visible = visible(form);
    if visible.is_empty() {
        return Err(Reason::Empty);
    }
    // A server that decodes `%2F` or `%5C` before routing splits here; one that keeps matrix
    // parameters (`..;x`) reads only what comes before the `;`.
    let dot_segment = visible.split(['/', '\\']).any(|part| {
        let part = part.split(';').next().unwrap_or_default();
        !part.is_empty() && part.chars().all(|c| c == '.')
    });
    if dot_segment {
        return Err(Reason::DotSegment);
    }
    Ok(())
}

/// The text as a normalising server might see it: NFKC, the ideographic dots that IDNA maps to
/// `.`, and no whitespace or default-ignorable (invisible) characters.
fn visible(form: &str) -> String {
    form.nfkc()
        .map(|c| match c {
            '\u{3002}' | '\u{FF61}' | '\u{FE12}' => '.',
            other => other,
        })
        .filter(|c| !c.is_whitespace() && !is_default_ignorable(*c))
        .collect()
}

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt): characters a renderer or
/// a normalising server may drop (zero-width spaces and joiners, bidi controls, variation
/// selectors, the byte-order mark, soft hyphen, tags).
fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Overlong UTF-8 (`%C0%AE` is a `.` to a lax decoder, `%C0%AF` a `/`); never valid UTF-8, so no
/// real id holds one.
fn has_overlong(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(index, &byte)| {
        let next = bytes.get(index + 1).copied().unwrap_or(0);
        matches!(byte, 0xC0 | 0xC1)
            || (byte == 0xE0 && (0x80..=0x9F).contains(&next))
            || (byte == 0xF0 && (0x80..=0x8F).contains(&next))
    })
}

#[cfg(test)]
mod tests;
