//! E-mail addresses read the way mail software reads them (RFC 5322 with the RFC 6531 UTF-8
//! extension): display names, quoted local parts, comments, groups, angle addresses, and `,` or
//! `;` between addresses. The domain is normalised as browsers and mail servers do (UTS #46
//! mapping through `idna`: case, full-width letters, ideographic and full-width dots, one
//! trailing root dot), and IP addresses (`[10.0.0.1]`, `[IPv6:…]`, and the numeric host names a
//! resolver would treat as IPv4) are recognised as such.
//!
//! The parser is the single source of truth for "who receives this": the gateway replaces every
//! recipient argument with [`Address::canonical`] before the policy decides and before the adapter
//! runs, so the provider is sent exactly the addresses the policy saw. Anything it cannot read is
//! an error, never a shorter list: a rule that filters recipients cannot be walked around by
//! writing an address in a form the filter does not understand.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest input the parser looks at; recipient fields are far shorter (RFC 5321: 254 octets).
const MAX_INPUT: usize = 4096;
/// Deepest nesting of `( … )` comments accepted.
const MAX_COMMENT_DEPTH: usize = 16;

/// What the part after the `@` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DomainKind {
    /// A host name, in ASCII (A-labels), lower case, without the trailing root dot.
    Name,
    /// An IP address (a domain literal, or a numeric host name a resolver reads as IPv4).
    Ip,
}

/// One mailbox: the canonical local part and domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: String,
    kind: DomainKind,
}

/// Why a text is not (exactly) the addresses expected. The messages never repeat the input: they
/// end up in denials and audit reasons, and an argument may carry anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("empty")]
    Empty,
    #[error("longer than {MAX_INPUT} characters")]
    TooLong,
    #[error("contains a control character")]
    Control,
    #[error("malformed at character {at}: {what}")]
    Syntax { at: usize, what: &'static str },
    #[error("source routes (`<@host:…>`) are refused")]
    SourceRoute,
    #[error("the local part is longer than 64 octets")]
    LocalTooLong,
    #[error("the domain is not a valid host name")]
    Domain,
    #[error("the domain literal is not an IPv4 or IPv6 address")]
    DomainLiteral,
    #[error("{found} addresses where exactly one is expected")]
    NotOne { found: usize },
}

/// Every address in `input` (an RFC 5322 address list; group members count, group names do
/// not). `Ok(vec![])` only for text that names nobody (`undisclosed-recipients:;`, blanks).
pub fn parse_list(input: &str) -> Result<Vec<Address>, AddressError> {
    if input.chars().count() > MAX_INPUT {
        return Err(AddressError::TooLong);
    }
    if input
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err(AddressError::Control);
    }
    let mut parser = Parser::new(input);
    let mut out = Vec::new();
    loop {
        parser.cfws()?;
        match parser.peek() {
            None => break,
            Some(',' | ';') => parser.bump(),
            Some(_) => {
                parser.item(&mut out)?;
                parser.cfws()?;
                match parser.peek() {
                    None | Some(',' | ';') => {}
                    // A group's closing `;` already separates it from what follows.
                    Some(_) if parser.after_group => {}
                    Some(_) => return Err(parser.error("expected `,` or `;` after an address")),
                }
            }
        }
    }
    Ok(out)
}

/// The one address `input` names: a recipient field that names none, or several, is refused
/// rather than read in part.
pub fn parse_one(input: &str) -> Result<Address, AddressError> {
    if input.trim().is_empty() {
        return Err(AddressError::Empty);
    }
    let mut all = parse_list(input)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        found => Err(AddressError::NotOne { found }),
    }
}

// === impl Address ===

impl Address {
    /// The local part, canonical: ASCII lower-cased, unquoted when quoting adds nothing.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, canonical: ASCII, lower case, no trailing dot; `[10.0.0.1]` or `[ipv6:…]` for
    /// an IP address.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn kind(&self) -> DomainKind {
        self.kind
    }

    /// `local@domain`: what the policy sees and the provider is sent.
    pub fn canonical(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

// === the grammar ===

/// RFC 5322 `atext`, widened by RFC 6531 to every non-ASCII character.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_atom(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// The local part as it was written.
enum Local {
    DotAtom(String),
    Quoted(String),
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// The last item was a group, whose `;` also ends the item.
    after_group: bool,
}

impl Parser {
    fn new(input: &str) -> Self {
        Self {
            chars: input.chars().collect(),
            pos: 0,
            after_group: false,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn error(&self, what: &'static str) -> AddressError {
        AddressError::Syntax { at: self.pos, what }
    }

    fn expect(&mut self, c: char, what: &'static str) -> Result<(), AddressError> {
        if self.peek() == Some(c) {
            self.bump();
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// Folding white space and comments, which may nest and hold quoted pairs.
    fn cfws(&mut self) -> Result<(), AddressError> {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\n') => self.bump(),
                Some('(') => {
                    let mut depth = 0usize;
                    loop {
                        match self.peek() {
                            None => return Err(self.error("unclosed comment")),
                            Some('(') => {
                                depth += 1;
                                if depth > MAX_COMMENT_DEPTH {
                                    return Err(self.error("comments nested too deep"));
                                }
                            }
                            Some(')') => depth -= 1,
                            Some('\\') => self.bump(),
                            Some(_) => {}
                        }
                        self.bump();
                        if depth == 0 {
                            break;
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn atom(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_atext) {
            self.bump();
        }
        (self.pos > start).then(|| self.chars[start..self.pos].iter().collect())
    }

    /// A quoted string after its opening `"`, unescaped.
    fn quoted(&mut self) -> Result<String, AddressError> {
        self.expect('"', "expected `\"`")?;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unclosed quoted string")),
                Some('"') => {
                    self.bump();
                    return Ok(text);
                }
                Some('\\') => {
                    self.bump();
                    let escaped = self
                        .peek()
                        .ok_or_else(|| self.error("unfinished quoted pair"))?;
                    text.push(escaped);
                    self.bump();
                }
                // Folding inside quotes is only a line break for transport; it carries no text.
                Some('\r' | '\n') => self.bump(),
                Some(c) => {
                    text.push(c);
                    self.bump();
                }
            }
        }
    }

    /// `[CFWS] dot-atom-text [CFWS]`, without the surrounding CFWS.
    fn dot_atom(&mut self) -> Result<String, AddressError> {
        let mut text = self.atom().ok_or_else(|| self.error("expected a word"))?;
        // A dot not followed by a word is left for the caller: a domain's root dot, or an error.
        while self.peek() == Some('.') && self.chars.get(self.pos + 1).is_some_and(|&c| is_atext(c))
        {
            self.bump();
            text.push('.');
            if let Some(next) = self.atom() {
                text.push_str(&next);
            }
        }
        Ok(text)
    }

    fn local_part(&mut self) -> Result<Local, AddressError> {
        if self.peek() == Some('"') {
            Ok(Local::Quoted(self.quoted()?))
        } else {
            Ok(Local::DotAtom(self.dot_atom()?))
        }
    }

    /// `local@domain`, with CFWS around it.
    fn addr_spec(&mut self) -> Result<Address, AddressError> {
        self.cfws()?;
        let local = self.local_part()?;
        self.cfws()?;
        self.expect('@', "expected `@`")?;
        self.cfws()?;
        let (domain, kind) = if self.peek() == Some('[') {
            self.bump();
            let start = self.pos;
            while self
                .peek()
                .is_some_and(|c| c != ']' && c != '[' && c != '\\')
            {
                self.bump();
            }
            let literal: String = self.chars[start..self.pos].iter().collect();
            self.expect(']', "unclosed domain literal")?;
            (domain_literal(literal.trim())?, DomainKind::Ip)
        } else {
            let raw = self.dot_atom()?;
            // A trailing root dot (`evil.test.`) belongs to the domain, as a resolver reads it.
            let raw = if self.peek() == Some('.') {
                self.bump();
                format!("{raw}.")
            } else {
                raw
            };
            host(&raw)?
        };
        self.cfws()?;
        Ok(Address {
            local: canonical_local(local)?,
            domain,
            kind,
        })
    }

    /// A display name: words (atoms, quoted strings) with dots and CFWS between (RFC 5322
    /// `obs-phrase`, which real mail is full of).
    fn phrase(&mut self) -> Result<(), AddressError> {
        let mut words = 0;
        loop {
            self.cfws()?;
            match self.peek() {
                Some('"') => {
                    self.quoted()?;
                }
                Some('.') if words > 0 => self.bump(),
                Some(c) if is_atext(c) => {
                    self.atom();
                }
                _ => break,
            }
            words += 1;
        }
        if words == 0 {
            return Err(self.error("expected a display name"));
        }
        Ok(())
    }

    /// `<addr-spec>`, refusing source routes.
    fn angle_addr(&mut self) -> Result<Address, AddressError> {
        self.expect('<', "expected `<`")?;
        self.cfws()?;
        if self.peek() == Some('@') {
            return Err(AddressError::SourceRoute);
        }
        let address = self.addr_spec()?;
        self.expect('>', "expected `>`")?;
        self.cfws()?;
        Ok(address)
    }

    /// An addr-spec followed by the end of the item, else a display name and an angle address.
    fn mailbox_or_phrase(&mut self) -> Result<Result<Address, ()>, AddressError> {
        let start = self.pos;
        match self.addr_spec() {
            Ok(address) if matches!(self.peek(), None | Some(',' | ';')) => {
                return Ok(Ok(address));
            }
            // It was an address, with a domain or local part no mail server would take.
            Err(error) if !matches!(error, AddressError::Syntax { .. }) => return Err(error),
            _ => {}
        }
        self.pos = start;
        self.cfws()?;
        if self.peek() != Some('<') {
            self.phrase()?;
        }
        Ok(Err(()))
    }

    fn mailbox(&mut self) -> Result<Address, AddressError> {
        match self.mailbox_or_phrase()? {
            Ok(address) => Ok(address),
            Err(()) => self.angle_addr(),
        }
    }

    /// One address or group of the list.
    fn item(&mut self, out: &mut Vec<Address>) -> Result<(), AddressError> {
        self.after_group = false;
        if let Ok(address) = self.mailbox_or_phrase()? {
            out.push(address);
            return Ok(());
        }
        match self.peek() {
            Some('<') => out.push(self.angle_addr()?),
            Some(':') => {
                self.bump();
                loop {
                    self.cfws()?;
                    match self.peek() {
                        Some(';') => {
                            self.bump();
                            break;
                        }
                        Some(',') => self.bump(),
                        None => return Err(self.error("unclosed group")),
                        Some(_) => {
                            out.push(self.group_member()?);
                            self.cfws()?;
                            if !matches!(self.peek(), Some(',' | ';')) {
                                return Err(self.error("expected `,` or `;` in a group"));
                            }
                        }
                    }
                }
                self.after_group = true;
            }
            _ => return Err(self.error("not an address")),
        }
        Ok(())
    }

    /// A mailbox inside a group, where `;` ends the group.
    fn group_member(&mut self) -> Result<Address, AddressError> {
        self.mailbox()
    }
}

fn canonical_local(local: Local) -> Result<String, AddressError> {
    let text = match local {
        Local::DotAtom(text) => text.to_ascii_lowercase(),
        Local::Quoted(text) => {
            let text = text.to_ascii_lowercase();
            if is_dot_atom(&text) {
                text
            } else {
                let escaped: String = text
                    .chars()
                    .flat_map(|c| match c {
                        '"' | '\\' => vec!['\\', c],
                        c => vec![c],
                    })
                    .collect();
                format!("\"{escaped}\"")
            }
        }
    };
    if text.len() > 64 {
        return Err(AddressError::LocalTooLong);
    }
    Ok(text)
}

/// `[10.0.0.1]` or `[IPv6:2001:db8::1]`, canonical.
fn domain_literal(text: &str) -> Result<String, AddressError> {
    let lower = text.to_ascii_lowercase();
    if let Some(v6) = lower.strip_prefix("ipv6:") {
        let ip: Ipv6Addr = v6.parse().map_err(|_| AddressError::DomainLiteral)?;
        return Ok(format!("[ipv6:{ip}]"));
    }
    let ip: Ipv4Addr = lower.parse().map_err(|_| AddressError::DomainLiteral)?;
    Ok(format!("[{ip}]"))
}

/// A host name through UTS #46 (STD3 rules: letters, digits and hyphens only after mapping),
/// without its root dot; a name whose last label is a number is an IPv4 address to a resolver
/// (WHATWG URL host parsing), so it is one here too.
fn host(raw: &str) -> Result<(String, DomainKind), AddressError> {
    let ascii = idna::domain_to_ascii_cow(raw.as_bytes(), idna::AsciiDenyList::STD3)
        .map_err(|_| AddressError::Domain)?;
    let name = ascii.strip_suffix('.').unwrap_or(&ascii);
    if name.is_empty() || name.len() > 253 {
        return Err(AddressError::Domain);
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return Err(AddressError::Domain);
    }
    if labels.last().is_some_and(|last| ends_in_number(last)) {
        let ip = whatwg_ipv4(&labels).ok_or(AddressError::Domain)?;
        return Ok((format!("[{ip}]"), DomainKind::Ip));
    }
    Ok((name.to_owned(), DomainKind::Name))
}

/// WHATWG URL "ends in a number": the last label is decimal digits or `0x` hex.
fn ends_in_number(label: &str) -> bool {
    if !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    label
        .strip_prefix("0x")
        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The WHATWG IPv4 parser: up to four parts, each decimal, `0x` hex or `0`-prefixed octal, the
/// last filling the remaining octets (`10.1` is 10.0.0.1, `0x7f.1` is 127.0.0.1).
fn whatwg_ipv4(labels: &[&str]) -> Option<Ipv4Addr> {
    if labels.is_empty() || labels.len() > 4 {
        return None;
    }
    let number = |part: &str| -> Option<u64> {
        if let Some(hex) = part.strip_prefix("0x") {
            if hex.is_empty() {
                return Some(0);
            }
            u64::from_str_radix(hex, 16).ok()
        } else if part.len() > 1 && part.starts_with('0') {
            u64::from_str_radix(&part[1..], 8).ok()
        } else {
            part.parse().ok()
        }
    };
    let numbers: Vec<u64> = labels.iter().map(|l| number(l)).collect::<Option<_>>()?;
    let (last, head) = numbers.split_last()?;
    if head.iter().any(|&n| n > 255) {
        return None;
    }
    let room = 4 - head.len() as u32;
    if *last >= 256u64.pow(room) {
        return None;
    }
    let mut value = *last;
    for (i, n) in head.iter().enumerate() {
        value += n << (8 * (3 - i as u32));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

#[cfg(test)]
mod tests;
