//! Detector tests: fixed true positives and near misses, rule selection, and generated variants
//! of every seeded secret (separators, widths, case, invisible characters, surrounding text).

use proptest::prelude::*;
use serde_json::json;
use unicode_normalization::UnicodeNormalization as _;

use super::*;

/// Every built-in, compiled once for all the generated cases.
fn all() -> &'static Redactor {
    static ALL: std::sync::LazyLock<Redactor> = std::sync::LazyLock::new(|| {
        Redactor::new(&RedactionConfig::default()).expect("builtins compile")
    });
    &ALL
}

fn target<'a>(instance: &'a str, tool: &'a str) -> Target<'a> {
    Target {
        instance,
        kind: "k",
        tool,
        tags: &[],
    }
}

fn masked(s: &str) -> bool {
    all().redact_text(&target("x", "y"), s).1 > 0
}

#[test]
fn true_positives_are_masked() {
    for s in [
        "card 4111 1111 1111 1111 ok",
        "card 4111-1111-1111-1111",
        "5500005555555559",
        "ref 4111-1111 1111-1111", // mixed separators are still a card to a reader
        "card ４１１１ １１１１ １１１１ １１１１",
        "card ٤١١١ ١١١١ ١١١١ ١١١١",
        "ssn १२३-४५-६७८९",
        "card 4111\u{00A0}1111\u{2009}1111\u{202F}1111",
        "card 4111\u{200B}1111\u{200B}1111\u{200B}1111",
        "card 4111.1111.1111.1111",
        "card 4111 \u{2013} 1111 \u{2014} 1111 \u{2212} 1111",
        "card 4111\n1111\n1111\n1111",
        "IBAN GB82 WEST 1234 5698 7654 32",
        "iban gb82 west 1234 5698 7654 32",
        "DE89370400440532013000",
        "ＤＥ８９３７０４００４４０５３２０１３０００",
        "ssn 123-45-6789",
        "ssn 123 45 6789",
        "ssn 123\u{2011}45\u{2011}6789",
        "NI AB 12 34 56 C",
        "ni ab123456c",
        "sin 046 454 286",
        "key sk-proj-abcdefghijklmnopqrstuvwx",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "xoxb-123456789012-abcdefghij",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "Authorization: Bearer abcdef0123456789abcdef",
        "Authorization: bearer\u{00A0}abcdef0123456789abcdef",
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
fn the_mask_covers_the_original_characters_and_nothing_else() {
    let text = "a\u{00A0}b card ４１１１\u{200B}1111 1111\u{2013}1111, c\u{2009}d";
    let (out, n) = all().redact_text(&target("x", "y"), text);
    assert_eq!(n, 1);
    assert_eq!(out, "a\u{00A0}b card [REDACTED:credit_card], c\u{2009}d");
}

#[test]
fn values_are_masked_at_any_depth_and_bearer_keeps_its_prefix() {
    let mut v = json!({"a": [{"b": "pay 4111111111111111 now"}], "n": 4111111111111111u64,
                       "h": "Bearer abcdef0123456789abcdef"});
    let n = all().redact_value(&target("x", "y"), &mut v);
    assert_eq!(n, 2);
    assert_eq!(v["a"][0]["b"], "pay [REDACTED:credit_card] now");
    assert_eq!(v["h"], "Bearer [REDACTED:bearer]");
    assert_eq!(v["n"], 4111111111111111u64, "numbers are not strings");
}

#[test]
fn rules_by_instance_kind_and_tag_reach_every_tool_and_tool_rules_only_add() {
    let cfg = RedactionConfig::from_toml(
        r#"
        [default]
        builtins = ["credit_card"]
        [[default.patterns]]
        name = "employee_id"
        regex = 'EMP-\d{6}'
        [adapter.linear]
        builtins = []
        [kind.drive]
        builtins = ["us_ssn"]
        [tag.finance]
        builtins = ["iban"]
        [tool.linear_export]
        builtins = ["api_key"]
        "#,
    )
    .expect("config");
    let r = Redactor::new(&cfg).expect("build");
    let t = |instance, kind, tool, tags: &'static [String]| Target {
        instance,
        kind,
        tool,
        tags,
    };
    let none: &'static [String] = &[];
    let n = |target: Target<'_>, s: &str| r.redact_text(&target, s).1;
    assert_eq!(
        r.redact_text(&t("other", "k", "t", none), "EMP-123456").0,
        "[REDACTED:employee_id]"
    );
    assert_eq!(n(t("other", "k", "t", none), "ssn 123-45-6789"), 0);
    assert_eq!(n(t("linear", "linear", "t", none), "4111111111111111"), 0);
    // The kind's rule reaches every instance of the kind, whatever the tools are called.
    for (instance, tool) in [("drive", "drive_list"), ("work", "work_read_file")] {
        assert_eq!(n(t(instance, "drive", tool, none), "ssn 123-45-6789"), 1);
    }
    let finance: &'static [String] = Box::leak(Box::new(["finance".to_owned()]));
    assert_eq!(
        n(t("other", "k", "t", finance), "DE89 3704 0044 0532 0130 00"),
        1
    );
    // A tool rule adds to its adapter's, never removes.
    let export = t("linear", "linear", "linear_export", none);
    assert_eq!(n(export, "key sk-proj-abcdefghijklmnopqrstuvwx"), 1);
    assert_eq!(
        n(
            t("linear", "linear", "linear_list", none),
            "sk-proj-abcdefghijklmnopqrstuvwx"
        ),
        0
    );
    for refused in [
        "[default]\nbuiltins=[\"nope\"]",
        "[tool.x]\nenabled = false",
        "[tool.x]\nbuiltins = [\"nope\"]",
    ] {
        assert!(
            RedactionConfig::from_toml(refused)
                .and_then(|c| Redactor::new(&c))
                .is_err(),
            "{refused}"
        );
    }
}

#[test]
fn the_strict_selection_masks_what_a_rule_turned_off() {
    let cfg = RedactionConfig::from_toml(
        "[default]\nenabled = false\n[[adapter.a.patterns]]\nname = \"emp\"\nregex = 'EMP-\\d{6}'",
    )
    .expect("config");
    let r = Redactor::new(&cfg).expect("build");
    assert_eq!(r.redact_text(&target("x", "y"), "4111111111111111").1, 0);
    let strict = r.strict();
    assert_eq!(
        strict.redact_text("4111111111111111 EMP-123456").0,
        "[REDACTED:credit_card] [REDACTED:emp]"
    );
}

// === generated variants ===

/// A secret as its detector's groups, and the detector that must mask it.
#[derive(Debug, Clone)]
struct Seed {
    detector: &'static str,
    groups: Vec<String>,
    /// Separators between groups may be empty (cards, IBANs, NINOs) or must be visible
    /// (SSNs, SINs: nine bare digits are any number).
    needs_separator: bool,
    /// Letters may change case (IBAN, NINO).
    any_case: bool,
}

fn luhn_complete(body: &[u32]) -> u32 {
    // The check digit that makes body + digit Luhn-valid.
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 0 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

fn chunks(s: &str, sizes: &[usize]) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    for &n in sizes.iter().cycle() {
        if at >= chars.len() {
            break;
        }
        let end = (at + n).min(chars.len());
        out.push(chars[at..end].iter().collect());
        at = end;
    }
    out
}

fn digits_of(v: &[u32]) -> String {
    v.iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect()
}

fn card() -> impl Strategy<Value = Seed> {
    (
        prop::sample::select(vec![13usize, 15, 16, 19]),
        1u32..10,
        prop::collection::vec(0u32..10, 18),
    )
        .prop_filter("not one repeated digit", |(_, first, rest)| {
            rest.iter().any(|d| d != first)
        })
        .prop_map(|(len, first, rest)| {
            let mut body = vec![first];
            body.extend(&rest[..len - 2]);
            let check = luhn_complete(&body);
            body.push(check);
            Seed {
                detector: "credit_card",
                groups: chunks(&digits_of(&body), &[4]),
                needs_separator: false,
                any_case: false,
            }
        })
}

/// IBANs of several countries, each with its BBAN shape (n: digits, a: letters, c: either).
fn iban() -> impl Strategy<Value = Seed> {
    let countries = vec![
        ("DE", "nnnnnnnnnnnnnnnnnn"),
        ("GB", "aaaannnnnnnnnnnnnn"),
        ("FR", "nnnnnnnnnnccccccccccccnn"),
        ("NL", "aaaannnnnnnnnn"),
        ("ES", "nnnnnnnnnnnnnnnnnnnn"),
        ("IT", "annnnnnnnnncccccccccccc"),
        ("BE", "nnnnnnnnnnnn"),
        ("CH", "nnnnnccccccccccccc"),
    ];
    (
        prop::sample::select(countries),
        prop::collection::vec(0u32..36, 30),
    )
        .prop_map(|((country, shape), random)| {
            let bban: String = shape
                .chars()
                .zip(&random)
                .map(|(kind, &r)| {
                    let digit = char::from_digit(r % 10, 10).unwrap_or('0');
                    let letter = char::from(b'A' + (r % 26) as u8);
                    match kind {
                        'n' => digit,
                        'a' => letter,
                        _ if r < 10 => digit,
                        _ => letter,
                    }
                })
                .collect();
            let check = 98 - mod97(&format!("{bban}{country}00"));
            let iban = format!("{country}{check:02}{bban}");
            assert!(iban_ok_for_test(&iban), "{iban}");
            Seed {
                detector: "iban",
                groups: chunks(&iban, &[4]),
                needs_separator: false,
                any_case: true,
            }
        })
}

fn mod97(s: &str) -> u32 {
    s.chars().fold(0u32, |rem, c| {
        let v = c.to_digit(36).unwrap_or(0);
        if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        }
    })
}

fn iban_ok_for_test(s: &str) -> bool {
    detect::iban_ok(s)
}

fn ssn() -> impl Strategy<Value = Seed> {
    (1u32..900, 1u32..100, 1u32..10_000)
        .prop_filter("666 is never issued", |(a, _, _)| *a != 666)
        .prop_map(|(a, g, n)| Seed {
            detector: "us_ssn",
            groups: vec![format!("{a:03}"), format!("{g:02}"), format!("{n:04}")],
            needs_separator: true,
            any_case: false,
        })
}

fn nino() -> impl Strategy<Value = Seed> {
    (
        prop::sample::select("ABCEGHJKLMNOPRSTWXYZ".chars().collect::<Vec<_>>()),
        prop::sample::select("ABCEGHJKLMNPRSTWXYZ".chars().collect::<Vec<_>>()),
        prop::collection::vec(0u32..10, 6),
        prop::sample::select(vec!['A', 'B', 'C', 'D']),
    )
        .prop_map(|(a, b, d, s)| {
            let d = digits_of(&d);
            Seed {
                detector: "uk_nino",
                groups: vec![
                    format!("{a}{b}"),
                    d[..2].to_owned(),
                    d[2..4].to_owned(),
                    d[4..].to_owned(),
                    s.to_string(),
                ],
                needs_separator: false,
                any_case: true,
            }
        })
}

fn sin() -> impl Strategy<Value = Seed> {
    prop::collection::vec(0u32..10, 8)
        .prop_filter("not one repeated digit", |d| d.iter().any(|x| *x != d[0]))
        .prop_map(|mut body| {
            let check = luhn_complete(&body);
            body.push(check);
            Seed {
                detector: "ca_sin",
                groups: chunks(&digits_of(&body), &[3]),
                needs_separator: true,
                any_case: false,
            }
        })
}

fn token_chars(
    alphabet: &'static str,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(alphabet.chars().collect::<Vec<_>>()),
        len,
    )
    .prop_map(|v| v.into_iter().collect())
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// API keys, JWTs and bearer tokens: one group each (their own `-`, `_`, `.` belong to them).
fn token() -> impl Strategy<Value = Seed> {
    let one = |detector: &'static str, s: String| Seed {
        detector,
        groups: vec![s],
        needs_separator: false,
        any_case: false,
    };
    prop_oneof![
        (
            prop::sample::select(vec!["sk-", "sk-proj-", "sk-ant-"]),
            token_chars(ALNUM, 20..48)
        )
            .prop_map(move |(p, b)| one("api_key", format!("{p}{b}"))),
        (
            prop::sample::select(vec!["ghp_", "gho_", "ghs_"]),
            token_chars(ALNUM, 36..44)
        )
            .prop_map(move |(p, b)| one("api_key", format!("{p}{b}"))),
        token_chars(ALNUM, 22..40).prop_map(move |b| one("api_key", format!("github_pat_{b}"))),
        (
            prop::sample::select(vec!["xoxb-", "xoxp-"]),
            token_chars(ALNUM, 10..40)
        )
            .prop_map(move |(p, b)| one("api_key", format!("{p}{b}"))),
        (
            prop::sample::select(vec!["AKIA", "ASIA"]),
            token_chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0234567", 16..17)
        )
            .prop_map(move |(p, b)| one("api_key", format!("{p}{b}"))),
        (
            token_chars(ALNUM, 5..30),
            token_chars(ALNUM, 5..30),
            token_chars(ALNUM, 10..60)
        )
            .prop_map(move |(h, p, s)| one("jwt", format!("eyJ{h}.eyJ{p}.{s}"))),
    ]
}

fn bearer() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec!["Bearer", "bearer", "BEARER"]),
        prop::sample::select(vec![" ", "\u{00A0}", "\t", "\n", "  ", "\u{2009}"]),
        token_chars(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/-",
            16..48,
        ),
    )
        .prop_map(|(word, space, token)| (format!("{word}{space}{token}"), token))
}

/// Written between groups: every kind of space, dash and dot, line breaks, nothing at all.
const SEPARATORS: &[&str] = &[
    "", " ", "-", ".", "\u{00A0}", "\u{2007}", "\u{2009}", "\u{202F}", "\u{3000}", "\u{2010}",
    "\u{2011}", "\u{2013}", "\u{2014}", "\u{2212}", "\u{FF0D}", "\u{FF0E}", "\u{00B7}", "\n",
    "\r\n", "\t", " - ", "  ", "\u{200B}",
];

/// Zero-width characters a copy-paste or an editor slips into a token.
const INVISIBLE: &[char] = &[
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
];

fn full_width(c: char) -> char {
    match c {
        '0'..='9' | 'A'..='Z' | 'a'..='z' => {
            char::from_u32(u32::from(c) - 0x21 + 0xFF01).unwrap_or(c)
        }
        c => c,
    }
}

/// How a character is written: 0–4 as is, 5 full-width, 6–7 digits of another script
/// (Arabic-Indic, Devanagari; letters full-width).
fn written(c: char, how: u8) -> char {
    let script = |zero: u32| match c.to_digit(10) {
        Some(d) => char::from_u32(zero + d).unwrap_or(c),
        None => full_width(c),
    };
    match how {
        5 => full_width(c),
        6 => script(0x0660),
        7 => script(0x0966),
        _ => c,
    }
}

/// Surrounding text without digits, so that any digit in the output came from the secret.
fn filler() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            token_chars("abcdefghijklmnopqrstuvwxyz", 1..9),
            prop::sample::select(vec![
                "card", "IBAN:", "ssn", "(", ")", "—", "é", "日本", ","
            ])
            .prop_map(str::to_owned),
        ],
        0..8,
    )
    .prop_map(|words| words.join(" "))
}

/// How one rendering of a seed is written.
#[derive(Debug, Clone)]
struct Style {
    separators: Vec<usize>,
    widths: Vec<u8>,
    lower: Vec<bool>,
    invisible: Vec<(usize, usize)>,
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop::collection::vec(0..SEPARATORS.len(), 12),
        prop::collection::vec(0u8..8, 48),
        prop::collection::vec(any::<bool>(), 48),
        prop::collection::vec((0usize..64, 0..INVISIBLE.len()), 0..3),
    )
        .prop_map(|(separators, widths, lower, invisible)| Style {
            separators,
            widths,
            lower,
            invisible,
        })
}

fn render(seed: &Seed, style: &Style) -> String {
    let mut out = String::new();
    let mut k = 0;
    for (i, group) in seed.groups.iter().enumerate() {
        if i > 0 {
            let mut sep = SEPARATORS[style.separators[(i - 1) % style.separators.len()]];
            if seed.needs_separator && (sep.is_empty() || sep == "\u{200B}") {
                sep = " ";
            }
            out.push_str(sep);
        }
        for c in group.chars() {
            let c = if seed.any_case && style.lower[k % style.lower.len()] {
                c.to_ascii_lowercase()
            } else {
                c
            };
            let c = written(c, style.widths[k % style.widths.len()]);
            out.push(c);
            k += 1;
        }
    }
    // Invisible characters between any two characters of the secret.
    let mut chars: Vec<char> = out.chars().collect();
    for &(at, which) in &style.invisible {
        let at = 1 + at % chars.len().saturating_sub(1).max(1);
        chars.insert(at.min(chars.len()), INVISIBLE[which]);
    }
    chars.into_iter().collect()
}

/// Letters and digits as a reader sees them: compatibility forms and scripts' digits folded,
/// upper case.
fn canonical(s: &str) -> String {
    s.nfkc()
        .map(|c| scan::decimal_digit(c).unwrap_or(c))
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn check_masked(text: &str, secret: &str, detector: &str) -> Result<(), TestCaseError> {
    let (out, n) = all().redact_text(&target("x", "y"), text);
    prop_assert!(n > 0, "{detector} not masked: {text:?}");
    prop_assert!(
        !canonical(&out).contains(&canonical(secret)),
        "{detector} survives in {out:?} (from {text:?})"
    );
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("REDACT_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Cards, IBANs, SSNs, NINOs and SINs, written with any separators, widths, case and
    /// invisible characters, in any surrounding text: masked, and no digit of them survives.
    #[test]
    fn every_grouped_secret_is_masked_however_it_is_written(
        seed in prop_oneof![card(), iban(), ssn(), nino(), sin()],
        style in style(),
        before in filler(),
        after in filler(),
        gap in prop::sample::select(vec![" ", "\n", ": ", " (", "\u{00A0}", "\t"]),
    ) {
        let secret = render(&seed, &style);
        let text = format!("{before}{gap}{secret}{gap}{after}");
        check_masked(&text, &seed.groups.concat(), seed.detector)?;
        if seed.detector != "iban" && seed.detector != "uk_nino" {
            let digits: String = all().redact_text(&target("x", "y"), &text).0
                .chars().filter(|c| c.is_numeric()).collect();
            prop_assert!(digits.is_empty(), "digits {digits} survive of {text:?}");
        }
    }

    /// API keys and JWTs, with full-width letters and invisible characters, in any text.
    #[test]
    fn every_token_is_masked_however_it_is_written(
        seed in token(),
        widths in prop::collection::vec(0u8..6, 48),
        invisible in prop::collection::vec((0usize..64, 0..INVISIBLE.len()), 0..3),
        before in filler(),
        after in filler(),
    ) {
        let style = Style { separators: vec![0], widths, lower: vec![false], invisible };
        let secret = render(&seed, &style);
        check_masked(&format!("{before} {secret} {after}"), &seed.groups.concat(), seed.detector)?;
    }

    /// Bearer tokens after any case of `Bearer` and any space.
    #[test]
    fn every_bearer_token_is_masked(
        (written, token) in bearer(),
        before in filler(),
        after in filler(),
    ) {
        let text = format!("{before} Authorization: {written}\n{after}");
        let (out, n) = all().redact_text(&target("x", "y"), &text);
        prop_assert!(n > 0, "not masked: {text:?}");
        prop_assert!(!out.contains(&token), "{token} survives in {out:?}");
    }

    /// Text without secrets is returned unchanged, byte for byte, whatever its spaces.
    #[test]
    fn text_without_secrets_is_left_exactly_as_it_was(text in filler(), sep in 0..SEPARATORS.len()) {
        let text = text.replace(' ', SEPARATORS[sep]);
        let (out, n) = all().redact_text(&target("x", "y"), &text);
        prop_assert_eq!(n, 0);
        prop_assert_eq!(out.as_ref(), text.as_str());
    }
}
