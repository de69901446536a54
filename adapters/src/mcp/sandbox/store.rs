//! The notes server's in-memory state: a company's notes, seeded with the same fixtures on every
//! start so the demo and the tests see the same ids, plus the notes users create while it runs.

use serde_json::{Value, json};

/// At most this many notes are kept: the emulator must not grow without bound however many
/// `create_note` calls a demo client sends.
pub(crate) const MAX_NOTES: usize = 500;
/// Longest title and body accepted, in characters (the input schema says the same).
pub(crate) const MAX_TITLE: usize = 200;
pub(crate) const MAX_BODY: usize = 20_000;
pub(crate) const MAX_TAGS: usize = 10;

/// One note. `updated` is a day: the seeds carry fixed dates, new notes the emulator's own
/// (fixed) "today", so answers never depend on the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) tags: Vec<String>,
    pub(crate) author: String,
    pub(crate) updated: String,
}

/// The day every note created in the emulator carries.
const TODAY: &str = "2026-12-07";

const SEEDS: [(&str, &str, &[&str], &str, &str); 6] = [
    (
        "Q4 engineering offsite agenda",
        "Day 1: architecture review of the gateway, policy engine roadmap, on-call retro.\n\
         Day 2: customer panel with the support team, hack afternoon.\n\
         Owners: alice (agenda), bob (venue and travel).",
        &["engineering", "planning"],
        "alice@example.com",
        "2026-10-02",
    ),
    (
        "Incident 2026-11-14: search latency",
        "Summary: search p99 rose to 4 s for 38 minutes after a cache node was replaced.\n\
         Cause: the new node started with an empty cache and no warm-up.\n\
         Follow-ups: warm-up job before a node joins (ops), alert on cache hit ratio (eng).",
        &["incident", "engineering", "ops"],
        "bob@example.com",
        "2026-11-15",
    ),
    (
        "Onboarding checklist for new engineers",
        "Week 1: laptop, accounts, read the architecture notes, pair with a buddy.\n\
         Week 2: ship a small fix, join the on-call shadow rotation.\n\
         Ask in #eng-help for anything missing.",
        &["onboarding", "engineering"],
        "carol@example.com",
        "2026-09-18",
    ),
    (
        "Customer call notes: Northwind",
        "Northwind wants SSO with their own identity provider and an audit export every month.\n\
         Next step: send the security questionnaire by Friday (alice).",
        &["customer", "sales"],
        "alice@example.com",
        "2026-11-28",
    ),
    (
        "Release checklist",
        "1. Changelog reviewed. 2. Staging soak for 24 h. 3. Database migrations dry-run.\n\
         4. Announce in #releases. 5. Watch error rates for an hour after the rollout.",
        &["engineering", "process"],
        "bob@example.com",
        "2026-08-30",
    ),
    (
        "Office move: Berlin",
        "The Berlin team moves to the new office on 2027-01-15. Desks are assigned by team;\n\
         the old office closes on 2027-01-31. Questions to facilities@example.com.",
        &["office", "announcement"],
        "dave@example.com",
        "2026-12-01",
    ),
];

/// The notes, in creation order.
#[derive(Debug)]
pub(crate) struct Store {
    notes: Vec<Note>,
    next: u32,
}

/// Why a new note was refused; the caller sees the text as a tool error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CreateError {
    #[error("a note needs a title of 1 to {MAX_TITLE} characters")]
    Title,
    #[error("a note's body is at most {MAX_BODY} characters")]
    Body,
    #[error("a note takes at most {MAX_TAGS} tags of 1 to 40 characters")]
    Tags,
    #[error("the notes server holds at most {MAX_NOTES} notes; it is full")]
    Full,
}

// === impl Note ===

impl Note {
    pub(crate) fn uri(&self) -> String {
        note_uri(&self.id)
    }

    /// The note as tools and resources give it.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "tags": self.tags,
            "author": self.author,
            "updated": self.updated,
            "uri": self.uri(),
        })
    }

    /// The note as Markdown, for resource reads and prompts.
    pub(crate) fn to_markdown(&self) -> String {
        format!(
            "# {}\n\n{}\n\n_Tags: {} · by {} · updated {}_\n",
            self.title,
            self.body,
            self.tags.join(", "),
            self.author,
            self.updated
        )
    }

    /// The first line of the body, shortened, for search results.
    fn snippet(&self) -> String {
        let first = self.body.lines().next().unwrap_or_default();
        if first.chars().count() <= 120 {
            first.to_owned()
        } else {
            let cut: String = first.chars().take(117).collect();
            format!("{cut}...")
        }
    }

    fn matches(&self, words: &[String], tag: Option<&str>) -> bool {
        let haystack =
            format!("{} {} {}", self.title, self.body, self.tags.join(" ")).to_lowercase();
        words.iter().all(|word| haystack.contains(word.as_str()))
            && tag.is_none_or(|tag| self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)))
    }
}

/// The URI of note `id`: the resource template `notes://note/{id}` filled in.
pub(crate) fn note_uri(id: &str) -> String {
    format!("notes://note/{id}")
}

// === impl Store ===

impl Store {
    pub(crate) fn seeded() -> Self {
        let mut store = Self {
            notes: Vec::new(),
            next: 1,
        };
        for (title, body, tags, author, updated) in SEEDS {
            store.push(Note {
                id: String::new(),
                title: title.to_owned(),
                body: body.to_owned(),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                author: author.to_owned(),
                updated: updated.to_owned(),
            });
        }
        store
    }

    fn push(&mut self, mut note: Note) -> &Note {
        note.id = format!("note-{:04}", self.next);
        self.next += 1;
        self.notes.push(note);
        // Just pushed, so there is a last one.
        &self.notes[self.notes.len() - 1]
    }

    pub(crate) fn all(&self) -> &[Note] {
        &self.notes
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Note> {
        self.notes.iter().find(|note| note.id == id)
    }

    /// The note a `notes://note/{id}` URI names.
    pub(crate) fn by_uri(&self, uri: &str) -> Option<&Note> {
        self.get(uri.strip_prefix("notes://note/")?)
    }

    /// Notes containing every word of `query` (any case) and tagged `tag` when given, newest
    /// first, at most `limit`, as search results.
    pub(crate) fn search(&self, query: &str, tag: Option<&str>, limit: usize) -> Vec<Value> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        let mut found: Vec<&Note> = self
            .notes
            .iter()
            .filter(|note| note.matches(&words, tag))
            .collect();
        // Newest first; ids break ties so the order never depends on anything else.
        found.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.id.cmp(&b.id)));
        found
            .into_iter()
            .take(limit)
            .map(|note| {
                json!({
                    "id": note.id,
                    "title": note.title,
                    "snippet": note.snippet(),
                    "tags": note.tags,
                    "updated": note.updated,
                    "uri": note.uri(),
                })
            })
            .collect()
    }

    /// Adds a note. The arguments were checked against the tool's schema by rmcp; this checks
    /// them again so the store's limits hold for any caller.
    pub(crate) fn create(
        &mut self,
        title: &str,
        body: &str,
        tags: Vec<String>,
    ) -> Result<&Note, CreateError> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(CreateError::Title);
        }
        if body.chars().count() > MAX_BODY {
            return Err(CreateError::Body);
        }
        let tags: Vec<String> = tags.iter().map(|t| t.trim().to_lowercase()).collect();
        if tags.len() > MAX_TAGS || tags.iter().any(|t| t.is_empty() || t.chars().count() > 40) {
            return Err(CreateError::Tags);
        }
        if self.notes.len() >= MAX_NOTES {
            return Err(CreateError::Full);
        }
        Ok(self.push(Note {
            id: String::new(),
            title: title.to_owned(),
            body: body.to_owned(),
            tags,
            author: "notes-demo@example.com".to_owned(),
            updated: TODAY.to_owned(),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_get_the_same_ids_on_every_start() {
        let ids: Vec<String> = Store::seeded().all().iter().map(|n| n.id.clone()).collect();
        assert_eq!(ids.len(), SEEDS.len());
        assert_eq!(ids[0], "note-0001");
        assert_eq!(
            ids,
            Store::seeded()
                .all()
                .iter()
                .map(|n| n.id.clone())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn search_needs_every_word_in_any_case_and_lists_newest_first() {
        let store = Store::seeded();
        let found = store.search("ENGINEERING checklist", None, 10);
        let titles: Vec<&str> = found.iter().map(|n| n["title"].as_str().unwrap()).collect();
        assert_eq!(
            titles,
            [
                "Onboarding checklist for new engineers",
                "Release checklist"
            ]
        );
        assert_eq!(store.search("checklist", Some("process"), 10).len(), 1);
        assert_eq!(store.search("", None, 2).len(), 2);
        assert!(store.search("no such words anywhere", None, 10).is_empty());
    }

    #[test]
    fn create_checks_its_arguments_and_the_store_stays_bounded() {
        let mut store = Store::seeded();
        let note = store
            .create(" Retro ", "went well", vec!["Team".into()])
            .unwrap();
        assert_eq!(
            (note.id.as_str(), note.title.as_str(), note.tags.clone()),
            ("note-0007", "Retro", vec!["team".to_owned()])
        );
        assert_eq!(
            store.create("  ", "", vec![]).err(),
            Some(CreateError::Title)
        );
        let long = "x".repeat(MAX_BODY + 1);
        assert_eq!(
            store.create("t", &long, vec![]).err(),
            Some(CreateError::Body)
        );
        let many = vec!["a".to_owned(); MAX_TAGS + 1];
        assert_eq!(store.create("t", "", many).err(), Some(CreateError::Tags));
        while store.all().len() < MAX_NOTES {
            store.create("filler", "", vec![]).unwrap();
        }
        assert_eq!(
            store.create("one more", "", vec![]).err(),
            Some(CreateError::Full)
        );
        assert_eq!(store.all().len(), MAX_NOTES);
    }
}
