//! The tool-name rule OpenAI models enforce (`^[A-Za-z0-9_-]{1,64}$`) and how adapter tool names
//! are made to fit it.

use sha2::{Digest, Sha256};

/// Longest function name OpenAI models accept.
pub const MAX_TOOL_NAME: usize = 64;

/// Hex digits of the hash appended to a shortened name.
const HASH_LEN: usize = 8;

/// The name a client sees for `tool` of an instance with `prefix` (`None` for prefix mode
/// `never`). Characters outside `[A-Za-z0-9_-]` become `_`; a name over 64 characters keeps its
/// head and ends in `_` plus a hash of the full name, so shortening is deterministic and two
/// long names that share a head still differ.
pub fn exposed_name(prefix: Option<&str>, tool: &str) -> String {
    let full = match prefix {
        Some(prefix) => format!("{prefix}_{tool}"),
        None => tool.to_owned(),
    };
    let mut clean: String = full
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        clean.push('_');
    }
    if clean.len() <= MAX_TOOL_NAME && clean == full {
        return clean;
    }
    if clean.len() <= MAX_TOOL_NAME {
        // Sanitised but short: still unique only if no other tool sanitises to the same string,
        // which the catalog checks.
        return clean;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash = hex::encode(&digest[..HASH_LEN / 2]);
    let head = &clean[..MAX_TOOL_NAME - HASH_LEN - 1];
    format!("{head}_{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        (1..=MAX_TOOL_NAME).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[test]
    fn prefixes_short_names_unchanged() {
        assert_eq!(
            exposed_name(Some("linear"), "search_issues"),
            "linear_search_issues"
        );
        assert_eq!(exposed_name(None, "search_issues"), "search_issues");
    }

    #[test]
    fn replaces_separators_openai_rejects() {
        assert_eq!(
            exposed_name(Some("gh"), "repos.list/all"),
            "gh_repos_list_all"
        );
        assert_eq!(exposed_name(None, ""), "_");
    }

    #[test]
    fn shortens_long_names_deterministically_and_distinctly() {
        let tool_a = format!("{}_alpha", "x".repeat(80));
        let tool_b = format!("{}_bravo", "x".repeat(80));
        let a = exposed_name(Some("upstream"), &tool_a);
        let b = exposed_name(Some("upstream"), &tool_b);
        assert!(valid(&a) && valid(&b), "{a} {b}");
        assert_eq!(a.len(), MAX_TOOL_NAME);
        assert_ne!(a, b);
        assert_eq!(a, exposed_name(Some("upstream"), &tool_a));
    }

    #[test]
    fn every_output_is_valid() {
        for tool in ["a", "ü-ñ", "a b c", &"é".repeat(70), &"z".repeat(64)] {
            for prefix in [None, Some("p"), Some(&*"q".repeat(40))] {
                let name = exposed_name(prefix, tool);
                assert!(valid(&name), "{prefix:?} {tool:?} -> {name:?}");
            }
        }
    }
}
