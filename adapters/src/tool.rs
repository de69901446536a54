//! What an adapter tells the gateway about each tool, and what a tool call returns.

use serde_json::{Map, Value};

/// The behaviour hints MCP clients (and ChatGPT's review) read. Every adapter sets all four on
/// every tool: a missing hint makes clients assume the worst (a write, destructive, open world).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolAnnotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl ToolAnnotations {
    /// Reads data and changes nothing, inside the company's own workspace.
    pub const READ: Self = Self {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: false,
    };
    /// Adds something new (an issue, a comment): repeating it adds it again.
    pub const CREATE: Self = Self {
        read_only: false,
        destructive: false,
        idempotent: false,
        open_world: false,
    };
    /// Sets fields to given values: repeating it changes nothing more, but it overwrites.
    pub const UPDATE: Self = Self {
        read_only: false,
        destructive: true,
        idempotent: true,
        open_world: false,
    };

    /// The tool reaches people or systems outside the company's workspace (mail to any
    /// address, a chat across organizations, a link anyone can open): `openWorldHint: true`.
    /// Without it a tool only touches the workspace the provider account belongs to.
    #[must_use]
    pub const fn reaching_outside(self) -> Self {
        Self {
            open_world: true,
            ..self
        }
    }
}

/// One tool as an adapter defines it, before the gateway namespaces its name.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// The adapter-local name, e.g. `search_issues`.
    pub name: String,
    pub title: String,
    /// Written for a model choosing between tools: what it does, when to use it, what it returns.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the arguments; always an object schema.
    pub input_schema: Map<String, Value>,
    /// JSON Schema of `structuredContent`.
    pub output_schema: Map<String, Value>,
    pub annotations: ToolAnnotations,
    /// The provider OAuth scopes this tool needs (least privilege), so the token broker asks for
    /// exactly these and can step up when a tool needs one not yet granted.
    pub scopes: Vec<String>,
    /// Whom the call reaches depends on stored state (the message a reply answers, a saved
    /// draft): the gateway has the adapter's [`ResolveFacts`](crate::ResolveFacts) read it, with
    /// the user's credential, before the policy decides.
    pub resolves_facts: bool,
    /// The tool as an upstream MCP server described it: its icons, `_meta`, `outputSchema` and
    /// the rest pass through to clients under the gateway's name. `None` for native tools.
    pub upstream: Option<std::sync::Arc<rmcp::model::Tool>>,
}

impl ToolSpec {
    /// Declares the OAuth scopes the tool needs.
    pub fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Declares that the policy needs facts the adapter resolves from stored state.
    pub fn resolving_facts(mut self) -> Self {
        self.resolves_facts = true;
        self
    }

    /// Builds a spec from `serde_json::json!` schemas.
    ///
    /// # Panics
    /// When a schema is not a JSON object: tool definitions are static, so this is a programming
    /// error caught by every adapter's unit tests, never by user input.
    pub fn new(
        name: &str,
        title: &str,
        description: &str,
        annotations: ToolAnnotations,
        input_schema: Value,
        output_schema: Value,
    ) -> Self {
        let as_object = |schema: Value| match schema {
            Value::Object(map) => map,
            other => panic!("tool {name}: schema must be a JSON object, got {other}"),
        };
        Self {
            name: name.to_owned(),
            title: title.to_owned(),
            description: description.to_owned(),
            input_schema: as_object(input_schema),
            output_schema: as_object(output_schema),
            annotations,
            scopes: Vec::new(),
            resolves_facts: false,
            upstream: None,
        }
    }
}

/// A successful tool result: `structured` matches the tool's output schema and `text` is the same
/// content rendered for a model that only reads text.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub structured: Value,
    pub text: String,
}

/// What a tool call returns to the gateway: a native adapter's rendered output, or an upstream
/// MCP server's result passed through whole (every content block, `structuredContent`,
/// `isError`, `_meta`), which the gateway redacts part by part.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolAnswer {
    Rendered(ToolOutput),
    Mcp(Box<rmcp::model::CallToolResult>),
}

impl From<ToolOutput> for ToolAnswer {
    fn from(output: ToolOutput) -> Self {
        Self::Rendered(output)
    }
}

/// An object from `(key, value)` pairs, built in place: `json!` would serialize every
/// interpolated value into a fresh copy, which on a page of results is most of the work.
pub fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

impl ToolOutput {
    /// One page of `items` under `key`, with `next_cursor`; the text is a line per item (or
    /// "Nothing found.") and how to continue.
    pub fn page(
        key: &str,
        items: Vec<Value>,
        next: Option<String>,
        line: impl Fn(&Value) -> String,
    ) -> Self {
        let mut text = if items.is_empty() {
            "Nothing found.".to_owned()
        } else {
            items.iter().map(line).collect::<Vec<_>>().join("\n")
        };
        if let Some(next) = &next {
            text.push_str(&format!("\n\nMore results: pass cursor \"{next}\"."));
        }
        let structured = object([(key, Value::Array(items)), ("next_cursor", next.into())]);
        Self { structured, text }
    }

    /// Uses pretty JSON of the structured value as the text form.
    pub fn from_structured(structured: Value) -> Self {
        let text = serde_json::to_string_pretty(&structured).unwrap_or_default();
        Self { structured, text }
    }
}
