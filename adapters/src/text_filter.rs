//! The gateway's hold on text before an adapter cuts it: its redaction, handed to every call in
//! [`CallContext::text_filter`](crate::CallContext). An adapter that returns a document a window
//! at a time (`offset`, `max_chars`) or snippets of a longer text applies the filter to the
//! *whole* text first and cuts from the result, so a secret cannot be read in pieces that each
//! look harmless (a card number as two 8-digit windows), nor from an offset inside it.
//! [`crate::extract`] does this for every document reader; the gateway still redacts each
//! result after the call.

use std::sync::Arc;

type Apply = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A text-to-text function with a name for what it does. The default changes nothing.
#[derive(Clone, Default)]
pub struct TextFilter {
    /// Identifies the function's behaviour: text filtered by filters with the same id is the
    /// same, so caches of filtered text key on it.
    id: Arc<str>,
    apply: Option<Apply>,
}

impl std::fmt::Debug for TextFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextFilter")
            .field("id", &self.id)
            .field("active", &self.apply.is_some())
            .finish()
    }
}

// === impl TextFilter ===

impl TextFilter {
    /// `apply` returns the changed text, or `None` when the text stays as it is.
    pub fn new(
        id: impl Into<Arc<str>>,
        apply: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            id: id.into(),
            apply: Some(Arc::new(apply)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The filtered text.
    pub fn apply(&self, text: String) -> String {
        match &self.apply {
            Some(apply) => apply(&text).unwrap_or(text),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keeps_text_and_a_filter_changes_it() {
        assert_eq!(TextFilter::default().apply("a1".into()), "a1");
        let digits = TextFilter::new("no-digits", |t: &str| {
            t.contains(|c: char| c.is_ascii_digit())
                .then(|| t.replace(|c: char| c.is_ascii_digit(), "#"))
        });
        assert_eq!(digits.apply("a1b2".into()), "a#b#");
        assert_eq!(digits.apply("ab".into()), "ab");
        assert_eq!(digits.id(), "no-digits");
    }
}
