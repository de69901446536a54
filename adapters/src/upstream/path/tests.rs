use proptest::prelude::*;

use super::*;

/// Every spelling of one `.` that a client or a provider may turn into a plain dot.
const DOTS: &[&str] = &[
    ".", "%2e", "%2E", "%252e", "%25252E", "\u{FF0E}", // full-width full stop (NFKC)
    "\u{2024}", // one-dot leader (NFKC)
    "\u{FE52}", // small full stop (NFKC)
    "\u{3002}", // ideographic full stop (IDNA)
    "\u{FF61}", // half-width ideographic full stop (IDNA)
];

/// Text around a segment that a normalising server may strip.
const PADDING: &[&str] = &[
    "",
    " ",
    "%20",
    "\u{00A0}",
    "\u{3000}",
    "\u{200B}",
    "\u{200D}",
    "\u{FEFF}",
    "\u{00AD}",
    "\u{2060}",
    "\u{FE0F}",
    "\u{202E}",
    "%E2%80%8B",
];

fn decoded(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn wire_is_plain(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = bytes.get(index + 1..index + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                index += 3;
            }
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => index += 1,
            _ => return false,
        }
    }
    true
}

/// `.` and `..` in every combination of spellings, with every padding, alone and between
/// separators: 2 × 10 × 10 (for `..`) + paddings × 3 wrappers — several thousand values.
fn dot_segment_variants() -> Vec<String> {
    let mut cores: Vec<String> = DOTS.iter().map(|d| (*d).to_owned()).collect();
    for first in DOTS {
        for second in DOTS {
            cores.push(format!("{first}{second}"));
        }
    }
    cores.push("...".into());
    cores.push("\u{2025}".into()); // two-dot leader: `..` under NFKC
    cores.push("\u{2026}".into()); // ellipsis: `...`
    let mut values = Vec::new();
    for core in &cores {
        for pad in PADDING {
            values.push(format!("{pad}{core}{pad}"));
            values.push(format!("{core}{pad};x"));
            values.push(format!("a/{pad}{core}/b"));
            values.push(format!("a%2F{core}{pad}%5Cb"));
            values.push(format!("{core}\\{pad}"));
        }
    }
    values
}

#[test]
fn refuses_every_spelling_of_a_dot_segment() {
    let values = dot_segment_variants();
    assert!(values.len() > 5_000, "{} variants", values.len());
    for value in &values {
        let refused = PathSegment::encode("id", value);
        assert!(
            matches!(
                refused,
                Err(PathError::DotSegment { .. } | PathError::Empty { .. })
            ),
            "{value:?} was not refused as a dot segment: {refused:?}"
        );
    }
}

#[test]
fn refuses_empty_and_invisible_values() {
    for pad in PADDING {
        for count in 0..3 {
            let value = pad.repeat(count);
            assert!(
                matches!(
                    PathSegment::encode("id", &value),
                    Err(PathError::Empty { .. })
                ),
                "{value:?}"
            );
        }
    }
}

#[test]
fn refuses_overlong_escapes_and_oversized_values() {
    for value in [
        "%C0%AE",
        "%C0%AE%C0%AE",
        "a%C0%AFb",
        "%E0%80%AE",
        "%F0%80%80%AE",
        "%25C0%25AE",
    ] {
        assert!(
            matches!(
                PathSegment::encode("id", value),
                Err(PathError::Overlong { .. })
            ),
            "{value:?}"
        );
    }
    let long = "a".repeat(MAX_SEGMENT_BYTES + 1);
    assert!(matches!(
        PathSegment::encode("id", &long),
        Err(PathError::TooLong { .. })
    ));
}

#[test]
fn keeps_real_provider_ids() {
    for id in [
        "AAMkAGI2TG93AAA=",
        "19:abc123@thread.tacv2",
        "19:aa_bb@unq.gbl.spaces",
        "contoso.sharepoint.com,2C712604-1370-44E7-A1F5-426573FDA80A,2D2244C3-251A-49EA-93A8-39E1C3A060FE",
        "b!-RIj2DuyvEyV1T4NlOaMHk8XkS_I8MdFlUCq1BlcjgmhRfAj3-Z8RY2VpuvV_tpd",
        "1AbCdEfGhIjKlMnOpQrStUvWxYz_-",
        "1234567890",
        "inbox",
        "Quarterly report.docx",
        "a..b",
        ".hidden",
        "..x",
        "日本語のファイル",
    ] {
        let segment = PathSegment::encode("id", id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(wire_is_plain(segment.as_str()), "{segment}");
        assert_eq!(decoded(segment.as_str()), id);
    }
}

#[test]
fn append_keeps_the_base_path_and_adds_exactly_the_segments() {
    let base = Url::parse("http://127.0.0.1:9/graph/v1.0/").expect("url");
    let id = PathSegment::encode("id", "a/b?c#d%e f").expect("segment");
    let url = append(&base, &["me".into(), "messages".into(), id]).expect("url");
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:9/graph/v1.0/me/messages/a%2Fb%3Fc%23d%25e%20f"
    );
    let root = Url::parse("https://api.box.com").expect("url");
    assert_eq!(
        append(&root, &[]).expect("url").as_str(),
        "https://api.box.com/"
    );
    let suffixed = PathSegment::encode("id", "x y")
        .expect("segment")
        .with_suffix(":");
    assert_eq!(
        append(&root, &["root:".into(), suffixed])
            .expect("url")
            .path(),
        "/root:/x%20y:"
    );
    let mailto = Url::parse("mailto:a@b.c").expect("url");
    assert!(matches!(
        append(&mailto, &["x".into()]),
        Err(PathError::NotABase { .. })
    ));
}

/// Text of the characters attackers reach for, mixed with ordinary ones.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("%".to_owned()),
        Just(";".to_owned()),
        Just(" ".to_owned()),
        prop::sample::select(DOTS).prop_map(str::to_owned),
        prop::sample::select(PADDING).prop_map(str::to_owned),
        "[a-zA-Z0-9_-]{1,6}",
        "%[0-9a-fA-F]{2}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Whatever the value, it is refused or it becomes exactly one plain segment that decodes
    /// back to itself, appended after the base path.
    #[test]
    fn any_value_is_refused_or_one_exact_segment(value in hostile_text()) {
        let base = Url::parse("https://graph.example/v1.0").expect("url");
        match PathSegment::encode("id", &value) {
            Err(error) => prop_assert!(error.is_refusal()),
            Ok(segment) => {
                prop_assert!(wire_is_plain(segment.as_str()), "{}", segment);
                prop_assert_eq!(decoded(segment.as_str()), value.clone());
                let url = append(&base, &["items".into(), segment]).expect("url");
                let parsed = Url::parse(url.as_str()).expect("reparse");
                let segments: Vec<&str> = parsed.path_segments().expect("segments").collect();
                prop_assert_eq!(segments.len(), 3);
                prop_assert_eq!(&segments[..2], &["v1.0", "items"]);
                prop_assert_eq!(decoded(segments[2]), value);
            }
        }
    }

    /// A control character anywhere (raw or percent-encoded) is refused.
    #[test]
    fn control_characters_are_refused(
        prefix in "[a-zA-Z0-9]{0,8}",
        suffix in "[a-zA-Z0-9]{0,8}",
        control in prop_oneof![proptest::char::range('\u{0}', '\u{1F}'), Just('\u{7F}'), proptest::char::range('\u{80}', '\u{9F}')],
        encoded in any::<bool>(),
    ) {
        let control = if encoded {
            utf8_percent_encode(&control.to_string(), NON_ALPHANUMERIC).to_string()
        } else {
            control.to_string()
        };
        let value = format!("{prefix}{control}{suffix}");
        prop_assert!(
            matches!(PathSegment::encode("id", &value), Err(PathError::Control { .. })),
            "{:?}", value
        );
    }

    /// Ids of the shapes providers hand out are never refused.
    #[test]
    fn provider_shaped_ids_pass(
        id in prop_oneof![
            "[A-Za-z0-9_-]{1,64}",
            "[A-Za-z0-9+/]{8,60}={0,2}",
            "19:[a-z0-9]{8,32}@thread\\.(tacv2|v2|skype)",
            "[a-z]{3,10}\\.sharepoint\\.com,[0-9a-f-]{36},[0-9a-f-]{36}",
            "b![A-Za-z0-9_-]{20,64}",
            "[0-9]{1,20}",
        ]
    ) {
        let segment = PathSegment::encode("id", &id);
        prop_assert!(segment.is_ok(), "{:?}: {:?}", id, segment);
    }
}
