//! Drive's `read_file` under the call's text filter, against the running emulator: every
//! window, from generated offsets and of generated sizes, is cut from the filtered whole text;
//! the text cache (which keeps whole texts between windows) never hands text filtered one way
//! to a call filtered another way.
#![allow(clippy::expect_used)]

mod drive_support;

use drive_support::{ALICE, ctx};
use manifold_adapters::TextFilter;
use serde_json::json;

/// Stands in for the gateway's redaction: every digit masked.
fn no_digits() -> TextFilter {
    TextFilter::new("no-digits", |text: &str| {
        text.contains(|c: char| c.is_ascii_digit())
            .then(|| text.replace(|c: char| c.is_ascii_digit(), "#"))
    })
}

#[tokio::test]
async fn windows_are_cut_from_the_filtered_whole_and_the_cache_keys_on_the_filter() {
    let env = drive_support::start().await;
    let mut text = String::new();
    for n in 0..40 {
        text.push_str(&format!(
            "line {n}: card 4111 1111 1111 1111, iban DE89370400440532013000\n"
        ));
    }
    env.call(
        "upload_file",
        json!({ "name": "cards.txt", "content": text }),
    )
    .await
    .expect("upload");

    // Read once unfiltered: the cache now holds the raw text for this credential and version.
    let raw = env
        .call(
            "read_file",
            json!({ "file": "/cards.txt", "max_chars": 50_000 }),
        )
        .await
        .expect("read")
        .structured;
    assert_eq!(raw["text"], text.as_str());

    let mut filtered = ctx(Some(ALICE));
    filtered.text_filter = no_digits();
    let whole: Vec<char> = text
        .replace(|c: char| c.is_ascii_digit(), "#")
        .chars()
        .collect();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut below = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for case in 0..60 {
        let offset = below(whole.len());
        let max_chars = 100 + below(200);
        let read = env
            .call_with(
                "read_file",
                json!({ "file": "/cards.txt", "offset": offset, "max_chars": max_chars }),
                &filtered,
            )
            .await
            .expect("read")
            .structured;
        let expected: String = whole.iter().skip(offset).take(max_chars).collect();
        assert_eq!(
            read["text"], expected,
            "case {case}: offset {offset}, max_chars {max_chars}"
        );
        assert!(
            !read["text"]
                .as_str()
                .unwrap_or_default()
                .contains(|c: char| c.is_ascii_digit()),
            "case {case}: a digit survives the filter"
        );
    }
}
