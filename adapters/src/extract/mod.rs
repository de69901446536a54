//! Readable text from documents and message bodies, for the model: plain text, Markdown, CSV,
//! HTML, and (filled in by the format modules) docx, xlsx, pptx and pdf. Shared by every
//! file-store and mail adapter. Output is capped: callers read a window and continue from
//! `next_offset`.
//!
//! Office documents and PDFs are parsed here, synchronously and CPU-bound (a large PDF can take
//! a second): async callers run [`extract`] inside `tokio::task::spawn_blocking`. Every reader
//! bounds what it unpacks, so a small hostile file cannot exhaust memory.

use std::fmt;

use crate::TextFilter;

mod docx;
#[cfg(any(test, feature = "sandbox"))]
pub mod fixtures;
mod ooxml;
mod pdf;
mod pptx;
mod xlsx;

/// Which part of the text to return, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub offset: usize,
    pub max_chars: usize,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            offset: 0,
            max_chars: 20_000,
        }
    }
}

/// A document format this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Csv,
    Html,
    Docx,
    Xlsx,
    Pptx,
    Pdf,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Csv => "csv",
            Format::Html => "html",
            Format::Docx => "docx",
            Format::Xlsx => "xlsx",
            Format::Pptx => "pptx",
            Format::Pdf => "pdf",
        })
    }
}

/// One window of a document's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub format: Format,
    pub text: String,
    /// Where this window starts, in characters of the whole text.
    pub offset: usize,
    pub total_chars: usize,
    /// Where the next window starts; `None` when this one reaches the end.
    pub next_offset: Option<usize>,
}

/// Why no text could be produced.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExtractError {
    #[error("cannot read `{0}` files as text")]
    Unsupported(String),
    #[error("the {format} file could not be read: {reason}")]
    Corrupt { format: Format, reason: String },
    #[error("the file is {bytes} bytes; at most {limit} bytes are read as text")]
    TooLarge { bytes: usize, limit: usize },
    /// The reader stopped without an answer (a bug tripped by the file); nothing else is lost.
    #[error("reading the file's text failed")]
    Failed,
}

/// Largest input read at all, so a hostile file cannot exhaust memory.
pub const MAX_INPUT_BYTES: usize = 50 * 1024 * 1024;

/// Picks the format from the content type, then the file name's extension.
pub fn detect(content_type: Option<&str>, file_name: Option<&str>) -> Option<Format> {
    let mime = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let by_mime = match mime.as_str() {
        "text/plain" => Some(Format::Text),
        "text/markdown" | "text/x-markdown" => Some(Format::Markdown),
        "text/csv" => Some(Format::Csv),
        "text/html" | "application/xhtml+xml" => Some(Format::Html),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            Some(Format::Docx)
        }
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some(Format::Xlsx),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            Some(Format::Pptx)
        }
        "application/pdf" => Some(Format::Pdf),
        _ => None,
    };
    by_mime.or_else(|| {
        let extension = file_name?.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "txt" | "log" | "json" | "yaml" | "yml" | "toml" | "xml" => Some(Format::Text),
            "md" | "markdown" => Some(Format::Markdown),
            "csv" => Some(Format::Csv),
            "html" | "htm" => Some(Format::Html),
            "docx" => Some(Format::Docx),
            "xlsx" => Some(Format::Xlsx),
            "pptx" => Some(Format::Pptx),
            "pdf" => Some(Format::Pdf),
            _ => None,
        }
    })
}

/// [`extract`] on tokio's blocking pool: unpacking and parsing a large document takes
/// milliseconds of CPU, which must not stall the runtime worker serving other calls.
pub async fn extract_blocking(
    bytes: bytes::Bytes,
    content_type: Option<String>,
    file_name: Option<String>,
    window: Window,
    filter: TextFilter,
) -> Result<Extracted, ExtractError> {
    tokio::task::spawn_blocking(move || {
        extract(
            &bytes,
            content_type.as_deref(),
            file_name.as_deref(),
            window,
            &filter,
        )
    })
    .await
    .unwrap_or(Err(ExtractError::Failed))
}

/// The text of `bytes` through `filter`, windowed: the window is cut from the filtered whole.
pub fn extract(
    bytes: &[u8],
    content_type: Option<&str>,
    file_name: Option<&str>,
    window: Window,
    filter: &TextFilter,
) -> Result<Extracted, ExtractError> {
    let (format, text) = whole_text(bytes, content_type, file_name)?;
    Ok(window_of(format, &filter.apply(text), window))
}

/// The whole text of `bytes`, unfiltered: for callers that filter and cache it themselves.
pub fn whole_text(
    bytes: &[u8],
    content_type: Option<&str>,
    file_name: Option<&str>,
) -> Result<(Format, String), ExtractError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(ExtractError::TooLarge {
            bytes: bytes.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let format = detect(content_type, file_name).ok_or_else(|| {
        ExtractError::Unsupported(
            content_type
                .map(str::to_owned)
                .or_else(|| file_name.map(str::to_owned))
                .unwrap_or_else(|| "unknown".into()),
        )
    })?;
    let text = match format {
        Format::Text | Format::Markdown | Format::Csv => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        Format::Html => html_to_text(&String::from_utf8_lossy(bytes)),
        Format::Docx => docx::text(bytes)?,
        Format::Xlsx => xlsx::text(bytes)?,
        Format::Pptx => pptx::text(bytes)?,
        Format::Pdf => pdf::text(bytes)?,
    };
    Ok((format, text))
}

/// Readable text of an HTML document or mail body: tags dropped, block elements as line
/// breaks, entities decoded, scripts and styles removed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..start]));
        let Some(end) = rest[start..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &rest[start + end + 1..];
        if (name == "script" || name == "style") && !tag.starts_with('/') {
            let close = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = lower.find(&close).map_or("", |i| &rest[i..]);
            continue;
        }
        if matches!(
            name.as_str(),
            "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table"
        ) {
            out.push('\n');
        }
    }
    out.push_str(&decode_entities(rest));
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let mut text = String::new();
    let mut blank = false;
    for line in lines {
        if line.is_empty() {
            if !blank && !text.is_empty() {
                text.push('\n');
            }
            blank = true;
        } else {
            text.push_str(line);
            text.push('\n');
            blank = false;
        }
    }
    text.trim_end().to_owned()
}

fn decode_entities(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// A snippet the provider cut out of a longer text it does not send (a mail's `bodyPreview`, a
/// search hit's summary): that text cannot be redacted whole, so a secret straddling a cut
/// would show its part unmasked (`…pay 4111 1111 11`). Fails closed: at each edge that is a
/// cut, the token touching it, with the digit groups spaced before or after it, becomes `…`.
pub fn trim_cut_edges(text: &str, cut_start: bool, cut_end: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let in_token = |c: char| !c.is_whitespace();
    let digit = |c: char| c.is_numeric();
    let (mut from, mut to) = (0, chars.len());
    if cut_end {
        // A cut right after a space may still split a number (`4111 1111 |1111`).
        while to > 0 && chars[to - 1].is_whitespace() {
            to -= 1;
        }
        while to > 0 && in_token(chars[to - 1]) {
            to -= 1;
        }
        // Spaces between digit groups belong to the cut number.
        while to > 0 && chars[to - 1].is_whitespace() {
            let mut before = to;
            while before > 0 && chars[before - 1].is_whitespace() {
                before -= 1;
            }
            let joins_digits =
                before > 0 && digit(chars[before - 1]) && chars.get(to).copied().is_some_and(digit);
            if !joins_digits {
                break;
            }
            to = before;
            while to > 0 && in_token(chars[to - 1]) {
                to -= 1;
            }
        }
    }
    if cut_start {
        while from < to && chars[from].is_whitespace() {
            from += 1;
        }
        while from < to && in_token(chars[from]) {
            from += 1;
        }
        while from < to && chars[from].is_whitespace() {
            let mut after = from;
            while after < to && chars[after].is_whitespace() {
                after += 1;
            }
            let joins_digits =
                after < to && digit(chars[after]) && from > 0 && digit(chars[from - 1]);
            if !joins_digits {
                break;
            }
            from = after;
            while from < to && in_token(chars[from]) {
                from += 1;
            }
        }
    }
    if from >= to {
        return if text.is_empty() {
            String::new()
        } else {
            "…".into()
        };
    }
    let mut out = String::with_capacity(text.len());
    if cut_start && from > 0 {
        out.push('…');
    }
    out.extend(&chars[from..to]);
    if cut_end && to < chars.len() {
        out.push('…');
    }
    out
}

/// Cuts `text` to `window` on character boundaries.
pub fn window_of(format: Format, text: &str, window: Window) -> Extracted {
    let total_chars = text.chars().count();
    let offset = window.offset.min(total_chars);
    let max = window.max_chars.max(1);
    let piece: String = text.chars().skip(offset).take(max).collect();
    let end = offset + piece.chars().count();
    Extracted {
        format,
        text: piece,
        offset,
        total_chars,
        next_offset: (end < total_chars).then_some(end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_blocking_pool_reads_what_the_caller_would() {
        let csv = bytes::Bytes::from_static(b"a,b\n1,2\n");
        let none = TextFilter::default();
        let here = extract(&csv, Some("text/csv"), None, Window::default(), &none).expect("csv");
        let pooled = extract_blocking(
            csv,
            Some("text/csv".into()),
            None,
            Window::default(),
            none.clone(),
        )
        .await
        .expect("csv");
        assert_eq!(pooled.text, here.text);
        let unknown = extract_blocking(
            bytes::Bytes::from_static(b"x"),
            None,
            None,
            Window::default(),
            none,
        );
        assert!(matches!(unknown.await, Err(ExtractError::Unsupported(_))));
    }

    #[test]
    fn detects_by_type_then_extension() {
        assert_eq!(
            detect(Some("text/csv; charset=utf-8"), None),
            Some(Format::Csv)
        );
        assert_eq!(
            detect(Some("application/octet-stream"), Some("a.DOCX")),
            Some(Format::Docx)
        );
        assert_eq!(detect(None, Some("noextension")), None);
    }

    #[test]
    fn windows_continue_where_they_stopped() {
        let text = "ä".repeat(25);
        let first = window_of(
            Format::Text,
            &text,
            Window {
                offset: 0,
                max_chars: 10,
            },
        );
        assert_eq!(
            (first.text.chars().count(), first.next_offset),
            (10, Some(10))
        );
        let last = window_of(
            Format::Text,
            &text,
            Window {
                offset: 20,
                max_chars: 10,
            },
        );
        assert_eq!(
            (
                last.text.chars().count(),
                last.next_offset,
                last.total_chars
            ),
            (5, None, 25)
        );
    }

    #[test]
    fn a_cut_snippet_loses_the_tokens_and_digit_groups_at_its_cuts() {
        assert_eq!(
            trim_cut_edges("notes: pay 4111 1111 11", false, true),
            "notes: pay …"
        );
        assert_eq!(
            trim_cut_edges("11 1111 1111 due today", true, false),
            "… due today"
        );
        assert_eq!(trim_cut_edges("key sk-proj-abcd", false, true), "key …");
        assert_eq!(trim_cut_edges("whole text", false, false), "whole text");
        assert_eq!(trim_cut_edges("1111 1111", true, true), "…");
        assert_eq!(trim_cut_edges("", true, true), "");
    }

    #[test]
    fn html_becomes_readable_text() {
        let html = "<html><style>p{}</style><p>Hello&nbsp;<b>Bob</b></p><script>x()</script><div>A &amp; B</div></html>";
        assert_eq!(html_to_text(html), "Hello Bob\n\nA & B");
    }

    #[test]
    fn rejects_unknown_and_oversized_input() {
        assert!(matches!(
            extract(
                b"x",
                Some("image/png"),
                None,
                Window::default(),
                &TextFilter::default()
            ),
            Err(ExtractError::Unsupported(_))
        ));
        let big = vec![b'a'; MAX_INPUT_BYTES + 1];
        assert!(matches!(
            extract(
                &big,
                Some("text/plain"),
                None,
                Window::default(),
                &TextFilter::default()
            ),
            Err(ExtractError::TooLarge { .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 1000,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// A snippet cut anywhere inside or around a grouped number, at its end or its start,
        /// shows no digit of it: the cut groups go with the cut token.
        #[test]
        fn a_cut_through_a_number_shows_none_of_its_digits(
            words in proptest::collection::vec("[a-z]{1,8}", 1..6),
            groups in proptest::collection::vec("[0-9]{1,5}", 1..6),
            space in proptest::sample::select(vec![" ", "\u{00A0}", "\n", "  "]),
            at in 0usize..200,
        ) {
            let number = groups.join(space);
            let (head, tail) = (words.join(" "), words.join(" "));
            let text = format!("{head} {number} {tail}");
            let chars: Vec<char> = text.chars().collect();
            let (start, end) = (head.chars().count() + 1, head.chars().count() + 1 + number.chars().count());
            // Cut inside the number: at its end, or at its start.
            let cut = start + 1 + at % number.chars().count().max(1);
            let cut = cut.min(end);
            let end_cut: String = chars[..cut].iter().collect();
            let start_cut: String = chars[cut.min(end).saturating_sub(1).max(start)..].iter().collect();
            for (snippet, cut_start, cut_end) in [(end_cut, false, true), (start_cut, true, false)] {
                let trimmed = trim_cut_edges(&snippet, cut_start, cut_end);
                proptest::prop_assert!(
                    !trimmed.contains(|c: char| c.is_ascii_digit()),
                    "{snippet:?} -> {trimmed:?}"
                );
            }
        }
    }
}
