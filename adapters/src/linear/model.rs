//! Linear's GraphQL answers as typed structs that borrow from the response body: decoding them
//! builds no JSON tree (no per-key map inserts) and checks the answer's shape on the way in.
//!
//! Every field is optional or defaulted, as the old tree walk was: Linear omits nothing the
//! queries ask for, but a `null` (no assignee, no project, a deleted author) must not fail a call.

use std::{borrow::Cow, fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer,
    de::{self, IgnoredAny, MapAccess, Visitor},
};

/// A string from the body, borrowed unless it had escapes; `null` reads as empty.
///
/// A newtype because serde's derive borrows only a bare `Cow<str>` field, not one inside an
/// `Option`, and a bare `&str` cannot hold a string that had escapes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(TextVisitor(PhantomData))
    }
}

struct TextVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// The only field of GraphQL's `data` object (the query's root field), with its name.
#[derive(Debug)]
pub(crate) struct Root<'a, T> {
    pub name: Text<'a>,
    pub value: Option<T>,
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for Root<'a, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RootVisitor(PhantomData))
    }
}

struct RootVisitor<'a, T>(PhantomData<(&'a (), T)>);

impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for RootVisitor<'a, T> {
    type Value = Root<'a, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object holding the query's root field")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(name) = map.next_key::<Text<'a>>()? else {
            return Ok(Root {
                name: Text::default(),
                value: None,
            });
        };
        let value = map.next_value::<Option<T>>()?;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Root { name, value })
    }
}

/// A GraphQL connection: one page of `nodes` and where the next page starts.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct Connection<'a, T> {
    #[serde(default = "Vec::new")]
    pub nodes: Vec<T>,
    #[serde(default, borrow, rename = "pageInfo")]
    pub page_info: Option<PageInfo<'a>>,
}

impl<T> Connection<'_, T> {
    /// The cursor to pass as `after` for the next page, when there is one.
    pub(crate) fn next(&self) -> Option<&str> {
        self.page_info
            .as_ref()
            .filter(|info| info.has_next_page)
            .map(|info| info.end_cursor.as_str())
            .filter(|cursor| !cursor.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageInfo<'a> {
    #[serde(default, rename = "hasNextPage")]
    pub has_next_page: bool,
    #[serde(default, borrow, rename = "endCursor")]
    pub end_cursor: Text<'a>,
}

/// `{id, name}` of a user, label or project.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Reference<'a> {
    #[serde(default, borrow)]
    pub id: Text<'a>,
    #[serde(default, borrow)]
    pub name: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TeamRef<'a> {
    #[serde(default, borrow)]
    pub id: Text<'a>,
    #[serde(default, borrow)]
    pub key: Text<'a>,
    #[serde(default, borrow)]
    pub name: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StateRef<'a> {
    #[serde(default, borrow)]
    pub id: Text<'a>,
    #[serde(default, borrow)]
    pub name: Text<'a>,
    #[serde(default, borrow, rename = "type")]
    pub kind: Text<'a>,
}

/// An issue as `issue_fields!` asks for it, with the detail fields some queries add.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Issue<'a> {
    #[serde(default, borrow)]
    pub id: Text<'a>,
    #[serde(default, borrow)]
    pub identifier: Text<'a>,
    #[serde(default, borrow)]
    pub title: Text<'a>,
    /// Linear types priority as Float but only uses 0..=4.
    #[serde(default)]
    pub priority: Option<f64>,
    #[serde(default, borrow, rename = "priorityLabel")]
    pub priority_label: Text<'a>,
    #[serde(default, borrow)]
    pub url: Text<'a>,
    #[serde(default, borrow, rename = "createdAt")]
    pub created_at: Text<'a>,
    #[serde(default, borrow, rename = "updatedAt")]
    pub updated_at: Text<'a>,
    #[serde(default, borrow)]
    pub state: Option<StateRef<'a>>,
    #[serde(default, borrow)]
    pub team: Option<TeamRef<'a>>,
    #[serde(default, borrow)]
    pub assignee: Option<Reference<'a>>,
    #[serde(default, borrow)]
    pub project: Option<Reference<'a>>,
    #[serde(default, borrow)]
    pub labels: Option<Connection<'a, Reference<'a>>>,
    /// `None` when Linear sent `null` (kept as `null` in the result).
    #[serde(default, borrow)]
    pub description: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub comments: Option<Connection<'a, Comment<'a>>>,
}

/// The `issue { id identifier }` a new comment points back to.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct IssueRef<'a> {
    #[serde(default, borrow)]
    pub id: Text<'a>,
    #[serde(default, borrow)]
    pub identifier: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Comment<'a> {
    #[serde(default, borrow)]
    pub id: Text<'a>,
    #[serde(default, borrow)]
    pub body: Text<'a>,
    #[serde(default, borrow, rename = "createdAt")]
    pub created_at: Text<'a>,
    #[serde(default, borrow)]
    pub url: Text<'a>,
    #[serde(default, borrow)]
    pub user: Option<Reference<'a>>,
    #[serde(default, borrow)]
    pub issue: Option<IssueRef<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Team<'a> {
    #[serde(default, borrow)]
    pub id: Text<'a>,
    #[serde(default, borrow)]
    pub key: Text<'a>,
    #[serde(default, borrow)]
    pub name: Text<'a>,
    #[serde(default, borrow)]
    pub description: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub labels: Option<Connection<'a, Reference<'a>>>,
    #[serde(default, borrow)]
    pub members: Option<Connection<'a, Reference<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ProjectStatus<'a> {
    #[serde(default, borrow)]
    pub name: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Project<'a> {
    #[serde(default, borrow)]
    pub id: Text<'a>,
    #[serde(default, borrow)]
    pub name: Text<'a>,
    #[serde(default, borrow)]
    pub description: Text<'a>,
    #[serde(default, borrow)]
    pub url: Text<'a>,
    #[serde(default)]
    pub progress: Option<f64>,
    #[serde(default, borrow, rename = "targetDate")]
    pub target_date: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub status: Option<ProjectStatus<'a>>,
    #[serde(default, borrow)]
    pub teams: Option<Connection<'a, TeamRef<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WorkflowState<'a> {
    #[serde(default, borrow)]
    pub id: Text<'a>,
    #[serde(default, borrow)]
    pub name: Text<'a>,
    #[serde(default, borrow, rename = "type")]
    pub kind: Text<'a>,
    #[serde(default, borrow)]
    pub color: Text<'a>,
    #[serde(default)]
    pub position: Option<f64>,
    #[serde(default, borrow)]
    pub team: Option<TeamRef<'a>>,
}

/// What `issueCreate` / `issueUpdate` answer.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct IssuePayload<'a> {
    #[serde(default)]
    pub success: bool,
    #[serde(default, borrow)]
    pub issue: Option<Issue<'a>>,
}

/// What `commentCreate` answers.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CommentPayload<'a> {
    #[serde(default, borrow)]
    pub comment: Option<Comment<'a>>,
}
