//! The text detectors read: the original normalised so one regex sees every way a person (or a
//! word processor) writes the same number. Compatibility forms are folded (NFKC: full-width
//! `４１１１` is `4111`), zero-width characters dropped, every space, line break, dash and dot
//! between groups made one canonical separator. Each character of the scan text remembers the
//! bytes of the original it came from, so a match masks the original characters and the rest of
//! the text is left exactly as it was.

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization as _;

/// The normalised text and where each piece of it came from.
#[derive(Debug)]
pub(super) struct Scan {
    pub(super) text: String,
    /// Consecutive pieces of `text`, in order. Most text is copied byte for byte (a space for a
    /// line break is one byte for one), so a long run of it is one piece and a document costs
    /// a few pieces per folded or dropped character, not one per character.
    pieces: Vec<Piece>,
}

/// `text[at..at + len]` came from `original[start..end]`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    at: usize,
    len: usize,
    start: usize,
    end: usize,
    /// Byte for byte (`len == end - start`): an offset inside maps to the same offset inside
    /// the original. Otherwise the piece is one character, read whole.
    exact: bool,
}

/// What one original character becomes in the scan text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Read as nothing: zero-width spaces and joiners, the soft hyphen, the byte-order mark.
    Invisible,
    /// Any space or line break; a run of them reads as one space.
    Space,
    /// A dash or a dot between groups, in its canonical form.
    Separator(char),
    Plain(char),
}

fn class(c: char) -> Class {
    match c {
        '\u{200B}'..='\u{200D}'
        | '\u{2060}'..='\u{2064}'
        | '\u{FEFF}'
        | '\u{00AD}'
        | '\u{180E}' => Class::Invisible,
        c if c.is_whitespace() => Class::Space,
        // Hyphens, non-breaking hyphen, figure/en/em dashes, horizontal bar, minus sign, the
        // small and full-width hyphen-minus.
        '-'
        | '\u{2010}'..='\u{2015}'
        | '\u{2043}'
        | '\u{2212}'
        | '\u{FE58}'
        | '\u{FE63}'
        | '\u{FF0D}' => Class::Separator('-'),
        // Full stops of other scripts and widths, and the middle dots used between digit groups.
        '.' | '\u{00B7}' | '\u{2024}' | '\u{2027}' | '\u{2219}' | '\u{22C5}' | '\u{3002}'
        | '\u{FF0E}' | '\u{FF61}' | '\u{30FB}' => Class::Separator('.'),
        c => Class::Plain(c),
    }
}

/// A decimal digit of any script (Arabic-Indic `٤`, Devanagari `४`, …) as its ASCII digit.
/// Unicode encodes every script's decimal digits as one contiguous run from 0 to 9, so the
/// value is the count of digits before it in its run, modulo ten.
pub(super) fn decimal_digit(c: char) -> Option<char> {
    static ND: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^\p{Nd}$").ok());
    let nd = ND.as_ref()?;
    let is_nd = |c: char| nd.is_match(c.encode_utf8(&mut [0; 4]));
    if c.is_ascii() || !c.is_numeric() || !is_nd(c) {
        return None;
    }
    let before = (1..=60u32)
        .take_while(|k| {
            u32::from(c)
                .checked_sub(*k)
                .and_then(char::from_u32)
                .is_some_and(is_nd)
        })
        .count();
    char::from_digit(u32::try_from(before % 10).ok()?, 10)
}

/// Read as nothing by the detectors (zero-width characters).
pub(super) fn invisible(c: char) -> bool {
    class(c) == Class::Invisible
}

/// Any dash, as the detectors read it.
pub(super) fn dash(c: char) -> bool {
    class(c) == Class::Separator('-')
}

// === impl Scan ===

impl Scan {
    pub(super) fn new(original: &str) -> Self {
        let mut scan = Scan {
            text: String::with_capacity(original.len()),
            pieces: Vec::new(),
        };
        // A pending run of separators: where it started and ended in the original, and its one
        // visible separator if it has exactly one (`4111 - 1111` reads as `4111-1111`).
        let mut run: Option<Run> = None;
        for (start, c) in original.char_indices() {
            let end = start + c.len_utf8();
            match class(c) {
                // NFKC of one character: `４` → `4`, `ﬁ` → `fi`.
                Class::Plain(_) if !c.is_ascii() => {
                    for folded in std::iter::once(c).nfkc() {
                        let folded = decimal_digit(folded).unwrap_or(folded);
                        scan.feed(&mut run, class(folded), start, end);
                    }
                }
                other => scan.feed(&mut run, other, start, end),
            }
        }
        if let Some(r) = run.take() {
            scan.flush(r);
        }
        scan
    }

    /// Adds one classified character that came from `start..end` of the original.
    fn feed(&mut self, run: &mut Option<Run>, class: Class, start: usize, end: usize) {
        match class {
            Class::Invisible => {}
            Class::Space | Class::Separator(_) => {
                let r = run.get_or_insert(Run {
                    start,
                    end,
                    separators: Vec::new(),
                    space_before: false,
                    space_after: false,
                });
                r.end = end;
                match class {
                    Class::Separator(s) => {
                        r.separators.push((s, start, end));
                        r.space_after = false;
                    }
                    _ if r.separators.is_empty() => r.space_before = true,
                    _ => r.space_after = true,
                }
            }
            Class::Plain(p) => {
                if let Some(r) = run.take() {
                    self.flush(r);
                }
                self.push(p, start, end);
            }
        }
    }

    fn push(&mut self, c: char, start: usize, end: usize) {
        let (at, len) = (self.text.len(), c.len_utf8());
        self.text.push(c);
        let exact = len == end - start;
        if let Some(last) = self.pieces.last_mut()
            && exact
            && last.exact
            && last.end == start
            && last.at + last.len == at
        {
            last.len += len;
            last.end = end;
            return;
        }
        self.pieces.push(Piece {
            at,
            len,
            start,
            end,
            exact,
        });
    }

    /// One run of spaces and separators: a single space when it holds no separator; its one
    /// separator when that stands alone or between spaces on both sides (`4111 – 1111` reads
    /// as `4111-1111`); otherwise a space for the spaces before the separators, the separators,
    /// and a space for those after (`Bearer -token` keeps its space).
    fn flush(&mut self, run: Run) {
        let (Some(&(_, first, _)), Some(&(_, _, last))) =
            (run.separators.first(), run.separators.last())
        else {
            return self.push(' ', run.start, run.end);
        };
        if let [(s, _, _)] = run.separators.as_slice()
            && run.space_before == run.space_after
        {
            return self.push(*s, run.start, run.end);
        }
        if run.space_before {
            self.push(' ', run.start, first);
        }
        for &(s, start, end) in &run.separators {
            self.push(s, start, end);
        }
        if run.space_after {
            self.push(' ', last, run.end);
        }
    }

    /// The original byte range behind the scan range `start..end` (both on character
    /// boundaries of the scan text; `start < end`).
    pub(super) fn original(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        if start >= end {
            return None;
        }
        let from = self.piece(start)?;
        let to = self.piece(end - 1)?;
        let a = if from.exact {
            from.start + (start - from.at)
        } else {
            from.start
        };
        let b = if to.exact {
            to.start + (end - to.at)
        } else {
            to.end
        };
        Some((a, b.max(a)))
    }

    /// The piece holding byte `at` of the scan text.
    fn piece(&self, at: usize) -> Option<&Piece> {
        let i = self.pieces.partition_point(|p| p.at <= at).checked_sub(1)?;
        self.pieces.get(i).filter(|p| at < p.at + p.len)
    }
}

#[derive(Debug)]
struct Run {
    start: usize,
    end: usize,
    separators: Vec<(char, usize, usize)>,
    /// Spaces came before the first separator, or after the last one.
    space_before: bool,
    space_after: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> String {
        Scan::new(s).text
    }

    #[test]
    fn folds_widths_spaces_dashes_and_invisible_characters() {
        assert_eq!(scan("４１１１\u{00A0}1111"), "4111 1111");
        assert_eq!(scan("4111\u{200B}1111"), "41111111");
        assert_eq!(scan("4111 \u{2013} 1111\n\n1111"), "4111-1111 1111");
        assert_eq!(scan("a\u{2009}\u{202F}b\u{3002}c"), "a b.c");
        assert_eq!(scan("٤١١١ ४१११ ௪௧௧௧ 𝟒𝟏𝟏𝟏"), "4111 4111 4111 4111");
        assert_eq!(scan("--x"), "--x");
        assert_eq!(scan("Bearer -x"), "Bearer -x");
        assert_eq!(scan("a -- b"), "a -- b");
    }

    #[test]
    fn scan_ranges_map_back_to_the_original_characters() {
        let original = "card ４１\u{200B}１１ end";
        let s = Scan::new(original);
        let at = s.text.find("4111").expect("found");
        let (a, b) = s.original(at, at + 4).expect("mapped");
        assert_eq!(&original[a..b], "４１\u{200B}１１");
        let (a, b) = s.original(0, s.text.len()).expect("whole");
        assert_eq!(&original[a..b], original);
        let at = s.text.find("end").expect("found");
        let (a, b) = s.original(at + 1, at + 3).expect("inside an exact piece");
        assert_eq!(&original[a..b], "nd");
    }

    #[test]
    fn plain_text_is_one_piece() {
        let s = Scan::new(&"word and\nline, é ".repeat(1000));
        assert_eq!(s.pieces.len(), 1);
    }
}
