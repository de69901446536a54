#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn one(text: &str) -> Address {
    parse_one(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn the_forms_mail_software_writes_all_name_one_mailbox() {
    for text in [
        "bob@example.com",
        "Bob@EXAMPLE.com",
        "Bob Brown <bob@example.com>",
        "\"Brown, Bob\" <bob@example.com>",
        "<bob@example.com>",
        "  < bob@example.com >  ",
        "\"bob\"@example.com",
        "bob(a comment)@example.com",
        "(c) bob@example.com (c (nested))",
        "bob@example.com.",
        "bob@ＥＸＡＭＰＬＥ．ｃｏｍ",
        "bob@example。com",
        "bob@example｡com",
        "friends: bob@example.com;",
        "Bob. Q. Brown <bob@example.com>",
    ] {
        let address = one(text);
        assert_eq!(address.canonical(), "bob@example.com", "{text:?}");
        assert_eq!(address.kind(), DomainKind::Name);
    }
}

#[test]
fn lists_groups_and_separators_yield_every_member() {
    let all = parse_list("a@x.test, Team: b@y.test, \"c\" <c@z.test>; d@w.test, e@v.test").unwrap();
    let got: Vec<String> = all.iter().map(Address::canonical).collect();
    assert_eq!(
        got,
        ["a@x.test", "b@y.test", "c@z.test", "d@w.test", "e@v.test"]
    );
    assert_eq!(parse_list("undisclosed-recipients:;").unwrap(), vec![]);
    assert_eq!(
        parse_one("undisclosed-recipients:;"),
        Err(AddressError::NotOne { found: 0 })
    );
    assert_eq!(
        parse_one("Eve <eve@evil.test>, bob@example.com"),
        Err(AddressError::NotOne { found: 2 })
    );
}

#[test]
fn ip_addresses_are_recognised_in_every_spelling() {
    for (text, domain) in [
        ("eve@[10.0.0.1]", "[10.0.0.1]"),
        ("eve@[ 10.0.0.1 ]", "[10.0.0.1]"),
        ("eve@10.0.0.1", "[10.0.0.1]"),
        ("eve@0x0a.0.0.1", "[10.0.0.1]"),
        ("eve@10.1", "[10.0.0.1]"),
        ("eve@167772161", "[10.0.0.1]"),
        ("eve@１０．０．０．１", "[10.0.0.1]"),
        ("eve@[IPv6:2001:DB8::1]", "[ipv6:2001:db8::1]"),
    ] {
        let address = one(text);
        assert_eq!(address.domain(), domain, "{text:?}");
        assert_eq!(address.kind(), DomainKind::Ip, "{text:?}");
    }
}

#[test]
fn idn_domains_become_a_labels() {
    assert_eq!(one("eve@BÜCHER.example").domain(), "xn--bcher-kva.example");
    assert_eq!(
        one("eve@xn--bcher-kva.example").domain(),
        "xn--bcher-kva.example"
    );
    // A quoted local part that needs its quotes keeps them.
    assert_eq!(
        one("\"john doe\"@example.com").canonical(),
        "\"john doe\"@example.com"
    );
}

#[test]
fn what_is_not_one_readable_address_is_refused() {
    for text in [
        "",
        "   ",
        "bob",
        "bob@",
        "@example.com",
        "bob@@example.com",
        "bob@example..com",
        "bob@example.com..",
        ".bob@example.com",
        "bob.@example.com",
        "bob@exa_mple.com",
        "bob@exa mple.com",
        "bob@example.com＠evil.test",
        "eve＠evil.test",
        "Eve ＜eve@evil.test＞",
        "Eve <eve@evil.test",
        "Eve <eve@evil.test>>",
        "<@relay.example.com:eve@evil.test>",
        "eve@[10.0.0.300]",
        "eve@[ipv7:1]",
        "eve@0x1g.0.0.1",
        "eve@999.0.0.1",
        "\"unclosed@example.com",
        "(unclosed bob@example.com",
        "bob@example.com\u{0}",
        "bob@exam\u{7f}ple.com",
        "group: bob@example.com",
        "outer: inner: bob@example.com;;",
        "eve@evil.test bob@example.com",
        "eve@evil.test <bob@example.com>",
    ] {
        assert!(parse_one(text).is_err(), "{text:?} parsed");
    }
    let deep = format!("{}bob@example.com", "(".repeat(40));
    assert!(parse_one(&deep).is_err());
    assert_eq!(parse_one(&"a".repeat(5000)), Err(AddressError::TooLong));
    assert_eq!(
        parse_one(&format!("{}@example.com", "a".repeat(65))),
        Err(AddressError::LocalTooLong)
    );
}

#[test]
fn errors_never_repeat_the_input() {
    for text in [
        "secret-7 <",
        "\"secret-7",
        "secret-7@",
        "secret-7@exa_mple.com",
    ] {
        let error = parse_one(text).unwrap_err().to_string();
        assert!(!error.contains("secret-7"), "{error}");
    }
}

// === generated variants ===

/// The domains a guard for `example.com` must keep out: look-alikes, subdomains, suffixes.
const EXTERNAL: &[&str] = &[
    "evil.test",
    "gmail.com",
    "example.co",
    "examp1e.com",
    "example.com.evil.test",
    "evil-example.com",
    "mail.example.com",
    "example.comm",
    "exämple.com",
];
const INTERNAL: &str = "example.com";

/// Full-width forms of ASCII letters and digits (U+FF01…U+FF5E), which UTS #46 maps back.
fn full_width(c: char) -> char {
    if c.is_ascii_alphanumeric() {
        char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)
    } else {
        c
    }
}

/// One spelling of `domain`: per-character case and width, one of the four dots, maybe the
/// root dot.
fn spelled(domain: &'static str) -> impl Strategy<Value = String> {
    let n = domain.chars().count();
    (
        proptest::collection::vec((any::<bool>(), any::<bool>()), n),
        proptest::collection::vec(0..4usize, n),
        any::<bool>(),
    )
        .prop_map(move |(styles, dots, root)| {
            let mut out: String = domain
                .chars()
                .zip(styles.iter().zip(&dots))
                .map(|(c, ((upper, wide), dot))| match c {
                    '.' => ['.', '。', '．', '｡'][*dot],
                    c => {
                        let c = if *upper {
                            c.to_uppercase().next().unwrap_or(c)
                        } else {
                            c
                        };
                        if *wide { full_width(c) } else { c }
                    }
                })
                .collect();
            if root {
                out.push('.');
            }
            out
        })
}

/// One way of writing a mailbox around `local` and `domain`.
fn wrapped(local: String, domain: String, form: usize, name: String) -> String {
    let address = format!("{local}@{domain}");
    match form {
        0 => address,
        1 => format!("{name} <{address}>"),
        2 => format!("\"{name}, internal\" <{address}>"),
        3 => format!("\"{local}\"@{domain}"),
        4 => format!("(to {name}) {local}(x)@(y){domain} (z)"),
        5 => format!("{name}: {address};"),
        6 => format!("  <  {address}  >  "),
        7 => format!("\"bob@{INTERNAL}\" <{address}>"),
        _ => format!("{name} (bob@{INTERNAL}) <{address}>"),
    }
}

fn variant(domains: &'static [&'static str]) -> impl Strategy<Value = (String, &'static str)> {
    (
        proptest::sample::select(domains),
        "[a-z][a-z0-9]{0,10}",
        0..9usize,
        "[A-Z][a-z]{1,8}",
    )
        .prop_flat_map(|(domain, local, form, name)| {
            spelled(domain).prop_map(move |spelled| {
                (wrapped(local.clone(), spelled, form, name.clone()), domain)
            })
        })
}

/// The canonical form of one of the test domains.
fn canonical(domain: &str) -> String {
    idna::domain_to_ascii(domain).unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn external_addresses_in_any_spelling_never_read_as_internal((text, domain) in variant(EXTERNAL)) {
        // A refusal is a denial: also safe. What parses must name the outside domain.
        if let Ok(address) = parse_one(&text) {
            prop_assert_ne!(address.domain(), INTERNAL, "{:?}", text);
            prop_assert_eq!(address.domain(), canonical(domain), "{:?}", text);
        }
    }

    #[test]
    fn internal_addresses_in_any_spelling_read_as_internal((text, _) in variant(&[INTERNAL])) {
        let address = parse_one(&text);
        prop_assert!(address.is_ok(), "{:?}: {:?}", text, address);
        if let Ok(address) = address {
            prop_assert_eq!(address.domain(), INTERNAL);
            prop_assert_eq!(address.kind(), DomainKind::Name);
        }
    }

}

// Cheaper checks: fewer cases keep the suite fast.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn an_internal_and_an_external_address_in_one_value_are_refused(
        (inside, _) in variant(&[INTERNAL]),
        (outside, _) in variant(EXTERNAL),
        sep in proptest::sample::select(&[",", ";", ", ", " ; "][..]),
    ) {
        let (ab, ba) = (format!("{inside}{sep}{outside}"), format!("{outside}{sep}{inside}"));
        prop_assert!(parse_one(&ab).is_err(), "{:?}", ab);
        prop_assert!(parse_one(&ba).is_err(), "{:?}", ba);
    }

    #[test]
    fn ip_literals_are_never_names(a in 0u8.., b in 0u8.., c in 0u8.., d in 0u8.., form in 0..3usize) {
        let host = match form {
            0 => format!("[{a}.{b}.{c}.{d}]"),
            1 => format!("{a}.{b}.{c}.{d}"),
            _ => format!("0x{a:x}.{b}.{c}.{d}"),
        };
        let address = parse_one(&format!("Eve <eve@{host}>"));
        prop_assert!(address.is_ok(), "{}: {:?}", host, address);
        if let Ok(address) = address {
            prop_assert_eq!(address.kind(), DomainKind::Ip);
            prop_assert_eq!(address.domain(), format!("[{a}.{b}.{c}.{d}]"));
        }
    }

    #[test]
    fn any_text_parses_or_is_refused_and_the_canonical_form_is_a_fixed_point(text in "\\PC{0,60}") {
        if let Ok(address) = parse_one(&text) {
            let again = parse_one(&address.canonical());
            prop_assert_eq!(again.as_ref(), Ok(&address), "{:?}", text);
        }
    }
}
