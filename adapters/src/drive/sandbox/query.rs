//! Drive's search query language (`q`), as much as the adapter and a person testing by hand
//! use: `'id' in parents`, `'email' in owners|writers|readers`, `name = / != / contains`,
//! `fullText contains`, `mimeType = / != / contains`, `trashed = true|false`, `starred`,
//! `modifiedTime`/`createdTime` comparisons, `sharedWithMe`, with `and`, `or`, `not` and
//! parentheses. Strings are single-quoted with `\'` and `\\` escapes.

use super::store::{Item, Role, Store, login_of_email, user_email};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    In {
        value: String,
        collection: String,
    },
    Compare {
        field: String,
        op: String,
        value: Value,
    },
    SharedWithMe,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Text(String),
    Word(String),
    Op(String),
    Open,
    Close,
}

fn tokenize(q: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '\'' | '"' => {
                let quote = c;
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(escaped) => text.push(escaped),
                            None => return Err("a string ends with a lone backslash".into()),
                        },
                        Some(c) if c == quote => break,
                        Some(c) => text.push(c),
                        None => return Err("a string is not closed".into()),
                    }
                }
                tokens.push(Token::Text(text));
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '=' | '!' | '<' | '>' => {
                let mut op = String::from(c);
                chars.next();
                if chars.peek() == Some(&'=') {
                    op.push('=');
                    chars.next();
                }
                if op == "!" {
                    return Err("`!` must be followed by `=`".into());
                }
                tokens.push(Token::Op(op));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':' || c == '.' => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.') {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok(tokens)
}

/// Parses a query; the error says what is wrong, as Drive's "Invalid Value" would not.
pub(crate) fn parse(q: &str) -> Result<Expr, String> {
    let tokens = tokenize(q)?;
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("a `(` is not closed".into()),
                }
            }
            Some(Token::Text(value)) => {
                if !self.peek_word("in") {
                    return Err(format!("expected `in` after '{value}'"));
                }
                self.at += 1;
                match self.next() {
                    Some(Token::Word(collection))
                        if matches!(
                            collection.as_str(),
                            "parents" | "owners" | "writers" | "readers"
                        ) =>
                    {
                        Ok(Expr::In { value, collection })
                    }
                    other => Err(format!(
                        "`in` needs parents, owners, writers or readers, not {other:?}"
                    )),
                }
            }
            Some(Token::Word(word)) if word == "sharedWithMe" => Ok(Expr::SharedWithMe),
            Some(Token::Word(field)) => {
                let op = match self.next() {
                    Some(Token::Op(op)) => op,
                    Some(Token::Word(w)) if w == "contains" => w,
                    other => {
                        return Err(format!(
                            "expected an operator after `{field}`, got {other:?}"
                        ));
                    }
                };
                let value = match self.next() {
                    Some(Token::Text(text)) => Value::Text(text),
                    Some(Token::Word(w)) if w == "true" => Value::Bool(true),
                    Some(Token::Word(w)) if w == "false" => Value::Bool(false),
                    other => {
                        return Err(format!(
                            "expected a value after `{field} {op}`, got {other:?}"
                        ));
                    }
                };
                check(&field, &op, &value)?;
                Ok(Expr::Compare { field, op, value })
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// The field/operator/value combinations Drive accepts.
fn check(field: &str, op: &str, value: &Value) -> Result<(), String> {
    let ok = match (field, value) {
        ("name" | "mimeType", Value::Text(_)) => matches!(op, "=" | "!=" | "contains"),
        ("fullText", Value::Text(_)) => op == "contains",
        ("trashed" | "starred", Value::Bool(_)) => matches!(op, "=" | "!="),
        ("modifiedTime" | "createdTime" | "viewedByMeTime", Value::Text(_)) => {
            matches!(op, "=" | "!=" | "<" | "<=" | ">" | ">=")
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{field} {op} {value:?}` is not a query term Drive accepts"
        ))
    }
}

/// Whether the query has a `fullText` term (Drive then refuses `orderBy`).
pub(crate) fn has_full_text(expr: &Expr) -> bool {
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => has_full_text(a) || has_full_text(b),
        Expr::Not(a) => has_full_text(a),
        Expr::Compare { field, .. } => field == "fullText",
        _ => false,
    }
}

/// The words of a `fullText contains` term, for ranking.
pub(crate) fn full_text_terms(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => {
            full_text_terms(a, out);
            full_text_terms(b, out);
        }
        Expr::Compare {
            field,
            value: Value::Text(text),
            ..
        } if field == "fullText" => {
            out.extend(text.to_lowercase().split_whitespace().map(str::to_owned))
        }
        _ => {}
    }
}

/// Whether `item` matches, for `login`.
pub(crate) fn matches(expr: &Expr, item: &Item, store: &Store, login: &str) -> bool {
    match expr {
        Expr::And(a, b) => matches(a, item, store, login) && matches(b, item, store, login),
        Expr::Or(a, b) => matches(a, item, store, login) || matches(b, item, store, login),
        Expr::Not(a) => !matches(a, item, store, login),
        Expr::SharedWithMe => {
            item.owner.as_deref() != Some(login)
                && item.drive_id.is_none()
                && item
                    .permissions
                    .iter()
                    .any(|p| p.email.as_deref().and_then(login_of_email) == Some(login))
        }
        Expr::In { value, collection } => match collection.as_str() {
            "parents" => item.parents.contains(&Store::resolve_alias(login, value)),
            "owners" => item
                .owner
                .as_deref()
                .and_then(user_email)
                .is_some_and(|e| e.eq_ignore_ascii_case(value)),
            "writers" | "readers" => {
                let wanted = if collection == "writers" {
                    Role::Writer
                } else {
                    Role::Reader
                };
                login_of_email(value)
                    .and_then(|who| store.role(who, &item.id))
                    .is_some_and(|role| role >= wanted)
            }
            _ => false,
        },
        Expr::Compare { field, op, value } => compare(item, field, op, value),
    }
}

fn compare(item: &Item, field: &str, op: &str, value: &Value) -> bool {
    match (field, value) {
        ("trashed", Value::Bool(b)) => (item.trashed == *b) == (op == "="),
        ("starred", Value::Bool(b)) => *b != (op == "="),
        ("fullText", Value::Text(text)) => {
            let text = text.to_lowercase();
            // A phrase in double quotes must appear as is; otherwise every word must.
            if let Some(phrase) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                item.index.contains(phrase)
            } else {
                text.split_whitespace()
                    .all(|word| item.index.contains(word))
            }
        }
        (_, Value::Text(text)) => {
            let actual = match field {
                "name" => item.name.as_str(),
                "mimeType" => item.mime_type.as_str(),
                "modifiedTime" => item.modified.as_str(),
                "createdTime" => item.created.as_str(),
                _ => return false,
            };
            match op {
                "=" => actual == text,
                "!=" => actual != text,
                "contains" => actual.to_lowercase().contains(&text.to_lowercase()),
                "<" => actual < text.as_str(),
                "<=" => actual <= text.as_str(),
                ">" => actual > text.as_str(),
                ">=" => actual >= text.as_str(),
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_adapter_sends() {
        let q = r"fullText contains 'it\'s' and trashed = false and (mimeType = 'a' or mimeType = 'b') and 'root' in parents";
        let expr = parse(q).expect("parses");
        assert!(has_full_text(&expr));
        let mut terms = Vec::new();
        full_text_terms(&expr, &mut terms);
        assert_eq!(terms, vec!["it's"]);
        assert!(parse("name = 'x' and not trashed = true").is_ok());
        assert!(parse("sharedWithMe and modifiedTime > '2026-01-01T00:00:00'").is_ok());
    }

    #[test]
    fn rejects_what_drive_rejects() {
        for bad in [
            "name contains",
            "'x' in folders",
            "fullText = 'x'",
            "trashed = 'yes'",
            "(name = 'x'",
            "name = 'unclosed",
            "size > '3'",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
