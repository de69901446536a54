//! Opaque list cursors (`tools/list`, `resources/list`, `prompts/list`, …): an offset into the
//! caller's filtered list, encoded so clients treat it as opaque and a forged one is rejected
//! rather than misread.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

const TAG: &str = "tl1:";

pub(super) fn encode(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TAG}{offset}"))
}

pub(super) fn decode(cursor: &str) -> Option<usize> {
    if cursor.len() > 64 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    text.strip_prefix(TAG)?.parse().ok()
}

/// One page of `items` (already filtered for the caller) from `cursor`, and the cursor of the
/// next page when there is one.
pub(super) fn page<T>(
    items: impl Iterator<Item = T>,
    cursor: Option<&str>,
    page_size: usize,
) -> Result<(Vec<T>, Option<String>), rmcp::ErrorData> {
    let offset = match cursor {
        Some(cursor) => decode(cursor).ok_or_else(|| {
            rmcp::ErrorData::invalid_params("invalid cursor: pass a nextCursor from the list", None)
        })?,
        None => 0,
    };
    let mut page: Vec<T> = items.skip(offset).take(page_size + 1).collect();
    let next = (page.len() > page_size).then(|| {
        page.truncate(page_size);
        encode(offset + page_size)
    });
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_forgeries() {
        assert_eq!(decode(&encode(0)), Some(0));
        assert_eq!(decode(&encode(250)), Some(250));
        for bad in ["", "abc", "dGwxOi0x", &"A".repeat(100), "tl1:5"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
