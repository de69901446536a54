//! Where a browser may be sent after signing in: only a path on this gateway. A `return_to`
//! comes from a link anyone can craft, so it is read the way the strictest reader downstream
//! would read it (a browser strips tabs and newlines and turns `\` into `/`; a proxy or the
//! gateway's own router may decode `%2f` or resolve `..`), and refused unless every such reading
//! is the same same-origin path. Anything refused falls back to [`DEFAULT`]; it is never
//! "repaired", because a repaired URL is a URL nobody checked.

/// Where a refused or absent `return_to` sends the browser.
pub const DEFAULT: &str = "/";

/// Longest `return_to` accepted; longer ones are not paths a gateway page links to.
const MAX_LEN: usize = 2048;

/// `raw` when it is a same-origin path (with optional query and fragment), else `None`.
///
/// Refused: anything not visible ASCII (tabs, CR/LF, spaces, controls, and Unicode, which
/// browsers may strip or map), a backslash, a start other than exactly one `/` (`//host`,
/// `/\host`, `https:…`, `javascript:…`, a bare `host`), percent-escapes that decode to `/`, `\`,
/// `%`, `.` or a control byte (`%2f`, `%5c`, `%252f`, `%2e%2e`), malformed escapes, and `.` or
/// `..` path segments. Since the value starts with one `/`, no scheme or userinfo can follow.
pub fn same_origin_path(raw: &str) -> Option<&str> {
    if raw.is_empty() || raw.len() > MAX_LEN {
        return None;
    }
    // Visible ASCII only: a browser drops tab/CR/LF before parsing ("/\t/evil" is "//evil"),
    // and non-ASCII forms (full-width solidus, ideographic space) are mapped by some readers.
    if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) || raw.contains('\\') {
        return None;
    }
    let rest = raw.strip_prefix('/')?;
    if rest.starts_with('/') {
        return None;
    }
    check_escapes(raw)?;
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return None;
    }
    Some(raw)
}

/// `raw` if accepted, else [`DEFAULT`].
pub fn or_default(raw: Option<&str>) -> String {
    raw.and_then(same_origin_path).unwrap_or(DEFAULT).to_owned()
}

/// Every `%` starts a well-formed escape of a byte that cannot change the path's structure
/// when decoded (once or again).
fn check_escapes(raw: &str) -> Option<()> {
    let bytes = raw.as_bytes();
    let mut at = 0;
    while let Some(offset) = bytes.get(at..)?.iter().position(|&b| b == b'%') {
        let start = at + offset;
        let hex = bytes.get(start + 1..start + 3)?;
        let decoded = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        if matches!(decoded, b'/' | b'\\' | b'%' | b'.') || decoded < 0x20 || decoded == 0x7f {
            return None;
        }
        at = start + 3;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The gateway's origin in these tests.
    const ORIGIN: &str = "https://gw.example:8443";

    /// What a WHATWG reader (the `url` crate, as browsers) makes of `value` on the gateway's
    /// page, after the browser's own stripping of tabs and newlines.
    fn as_browser_reads(value: &str) -> Option<url::Url> {
        let stripped: String = value
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect();
        url::Url::parse(&format!("{ORIGIN}/some/page"))
            .ok()?
            .join(&stripped)
            .ok()
    }

    fn assert_same_origin_path(value: &str) {
        let url = as_browser_reads(value).unwrap_or_else(|| panic!("{value:?} does not parse"));
        assert_eq!(
            url.origin().ascii_serialization(),
            ORIGIN,
            "{value:?} leaves the origin"
        );
        assert!(url.username().is_empty() && url.password().is_none());
        assert!(value.starts_with('/') && !value.starts_with("//"));
        // Decoding the path once more (a proxy, a router) still gives a path that cannot jump
        // to another host or climb out.
        let path = value.split(['?', '#']).next().unwrap_or_default();
        let decoded = percent_decode(path);
        assert!(!decoded.starts_with("//"), "{value:?}");
        assert!(!decoded.contains('\\'), "{value:?}");
        assert!(
            !decoded.split('/').any(|s| s == "." || s == ".."),
            "{value:?} has a dot segment"
        );
    }

    fn percent_decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn known_open_redirect_payloads_fall_back_to_the_default() {
        for payload in [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            " /evil",
            "https:evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/%2f/evil.example",
            "/%2F%2Fevil.example",
            "/%5cevil.example",
            "/%5C%5Cevil.example",
            "/%252f%252fevil.example",
            "/%09/evil.example",
            "/%0d%0a/evil",
            "/a/../../evil",
            "/./evil",
            "/%2e%2e/evil",
            "/%2E./evil",
            "/\u{ff0f}evil.example",
            "/\u{3000}/evil",
            "/%",
            "/%zz",
            "/%4",
            "",
            "@evil.example",
            "/@evil.example\u{0}",
        ] {
            assert_eq!(same_origin_path(payload), None, "{payload:?} was accepted");
            assert_eq!(or_default(Some(payload)), DEFAULT);
        }
    }

    #[test]
    fn ordinary_gateway_paths_are_kept() {
        for path in [
            "/",
            "/connections",
            "/connections?connected=linear",
            "/connections/connect?connection=linear&scopes=read%20write",
            "/a/b.c/d..e/",
            "/@user:name",
            "/x#frag",
        ] {
            assert_eq!(same_origin_path(path), Some(path));
            assert_same_origin_path(path);
        }
        assert_eq!(or_default(None), DEFAULT);
    }

    /// Pieces attackers combine, so generated values hit the interesting mixtures often.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/",
            "//",
            "\\",
            "/\\",
            "\t",
            "\r",
            "\n",
            " ",
            "%2f",
            "%2F",
            "%5c",
            "%5C",
            "%25",
            "%252f",
            "%2e",
            "%2E",
            ".",
            "..",
            "%",
            "%0",
            "%09",
            "%0a",
            "%00",
            "%7f",
            "%41",
            "?",
            "#",
            "&",
            "=",
            ":",
            "@",
            "https:",
            "http:",
            "javascript:",
            "//evil.example",
            "evil.example",
            "user:pw@",
            "\u{ff0f}",
            "\u{3000}",
            "\u{2215}",
            "é",
            "\u{200b}",
            "\u{0}",
            "connections",
            "a",
            "-",
            "_",
            "~",
            "+",
            "[::1]",
            "127.0.0.1",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Every accepted value is a same-origin path however it is read; every other value
        /// gives the default.
        #[test]
        fn whatever_is_accepted_is_a_same_origin_path(
            pieces in prop::collection::vec(piece(), 1..10),
            lead in prop::sample::select(vec!["", "/", "//", "\\", "\t", "/\t", " "]),
        ) {
            let value = format!("{lead}{}", pieces.concat());
            match same_origin_path(&value) {
                Some(kept) => {
                    prop_assert_eq!(kept, value.as_str());
                    assert_same_origin_path(&value);
                }
                None => prop_assert_eq!(or_default(Some(&value)), DEFAULT),
            }
        }

        /// Arbitrary Unicode never panics and never yields anything but a checked path.
        #[test]
        fn arbitrary_text_is_refused_or_a_same_origin_path(value in "\\PC{0,40}") {
            if let Some(kept) = same_origin_path(&value) {
                assert_same_origin_path(kept);
            }
        }
    }
}
