//! What docx, xlsx and pptx share: a zip package of XML parts. Reads parts with hard limits on
//! their unpacked size (a few kilobytes of deflate can unpack to gigabytes), and walks XML as a
//! flat stream of element starts, ends and text.

use std::{
    borrow::Cow,
    io::{Cursor, Read},
};

use quick_xml::events::{BytesStart, Event};

use super::{ExtractError, Format};

/// Most bytes one XML part may unpack to.
pub(super) const MAX_PART_BYTES: u64 = 64 * 1024 * 1024;
/// Most bytes all parts of one package may unpack to together.
pub(super) const MAX_PACKAGE_BYTES: u64 = 256 * 1024 * 1024;

/// A zip package opened from memory.
pub(super) struct Package<'a> {
    format: Format,
    archive: zip::ZipArchive<Cursor<&'a [u8]>>,
    unpacked: u64,
}

impl<'a> Package<'a> {
    pub(super) fn open(format: Format, bytes: &'a [u8]) -> Result<Self, ExtractError> {
        let archive = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|error| corrupt(format, format!("not a zip package ({error})")))?;
        Ok(Self {
            format,
            archive,
            unpacked: 0,
        })
    }

    /// Names of every part, in archive order.
    pub(super) fn names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter_map(Result::ok)
            .map(Cow::into_owned)
            .collect()
    }

    /// The part's text (UTF-8; a byte-order mark dropped), `None` when the package has no such
    /// part.
    pub(super) fn part(&mut self, name: &str) -> Result<Option<String>, ExtractError> {
        let format = self.format;
        let mut file = match self.archive.by_name(name) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(error) => return Err(corrupt(format, format!("part {name}: {error}"))),
        };
        let allowed = MAX_PART_BYTES.min(MAX_PACKAGE_BYTES.saturating_sub(self.unpacked));
        let mut bytes = Vec::new();
        (&mut file)
            .take(allowed + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| corrupt(format, format!("part {name}: {error}")))?;
        let read = bytes.len() as u64;
        if read > allowed {
            return Err(corrupt(
                format,
                format!("part {name} unpacks to more than {allowed} bytes"),
            ));
        }
        self.unpacked += read;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        };
        Ok(Some(match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_owned(),
            None => text,
        }))
    }

    /// Unpacks every part once without keeping it, failing when the package unpacks to more
    /// than the limits allow. For readers (calamine) that unpack parts without a limit of their
    /// own: after this check they cannot be made to inflate more than the limits.
    pub(super) fn check_sizes(&mut self) -> Result<(), ExtractError> {
        let format = self.format;
        let mut total: u64 = 0;
        for index in 0..self.archive.len() {
            let mut file = self
                .archive
                .by_index(index)
                .map_err(|error| corrupt(format, error.to_string()))?;
            let allowed = MAX_PART_BYTES.min(MAX_PACKAGE_BYTES.saturating_sub(total));
            let read = std::io::copy(&mut (&mut file).take(allowed + 1), &mut std::io::sink())
                .map_err(|error| corrupt(format, error.to_string()))?;
            if read > allowed {
                return Err(corrupt(
                    format,
                    "the package unpacks to more than the size read as text".into(),
                ));
            }
            total += read;
        }
        Ok(())
    }
}

pub(super) fn corrupt(format: Format, reason: String) -> ExtractError {
    ExtractError::Corrupt { format, reason }
}

/// One step of an XML walk: names are local (prefix dropped: `w:p` is `p`).
#[derive(Debug)]
pub(super) enum Node<'x, 'e> {
    /// An element start; `empty` when it is also its end (`<w:br/>`).
    Start {
        name: &'e str,
        element: &'e BytesStart<'x>,
        empty: bool,
    },
    End {
        name: &'e str,
    },
    Text(Cow<'e, str>),
}

/// Calls `visit` for each element start, end and piece of character data in `xml`. Entity and
/// character references arrive as text already resolved. XML cut off before its elements close
/// (a truncated download) is an error.
pub(super) fn walk(
    format: Format,
    xml: &str,
    mut visit: impl FnMut(Node<'_, '_>),
) -> Result<(), ExtractError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = false;
    let mut depth = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|error| corrupt(format, format!("bad XML: {error}")))?;
        match &event {
            Event::Start(element) => {
                depth += 1;
                visit(Node::Start {
                    name: local(element),
                    element,
                    empty: false,
                });
            }
            Event::Empty(element) => {
                let name = local(element);
                visit(Node::Start {
                    name,
                    element,
                    empty: true,
                });
                visit(Node::End { name });
            }
            Event::End(element) => {
                depth = depth.saturating_sub(1);
                let qname = element.name();
                let raw: &str = qname.as_ref();
                visit(Node::End {
                    name: raw.rsplit_once(':').map_or(raw, |(_, name)| name),
                });
            }
            Event::Text(text) => visit(Node::Text(text.xml10_content())),
            Event::CData(data) => visit(Node::Text(data.xml10_content())),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match reference.as_ref() {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        _ => None,
                    },
                };
                if let Some(c) = resolved {
                    visit(Node::Text(Cow::Owned(c.to_string())));
                }
            }
            Event::Eof if depth > 0 => {
                return Err(corrupt(
                    format,
                    "the XML ends before its elements close".into(),
                ));
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

fn local<'e>(element: &'e BytesStart<'_>) -> &'e str {
    let raw: &str = element.name().into_inner();
    raw.rsplit_once(':').map_or(raw, |(_, name)| name)
}

/// The value of the attribute whose local name is `name` (`w:val` is `val`).
pub(super) fn attr(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element.attributes().flatten().find_map(|attribute| {
        let key: &str = attribute.key.into_inner();
        let local = key.rsplit_once(':').map_or(key, |(_, local)| local);
        (local == name).then(|| {
            attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_or_else(|_| attribute.value.clone().into_owned(), Cow::into_owned)
        })
    })
}

/// Relationship targets of one part (`_rels/*.rels`): `(id, type, target)`.
pub(super) fn relationships(
    format: Format,
    xml: &str,
) -> Result<Vec<(String, String, String)>, ExtractError> {
    let mut found = Vec::new();
    walk(format, xml, |node| {
        if let Node::Start {
            name: "Relationship",
            element,
            ..
        } = node
            && let (Some(id), Some(target)) = (attr(element, "Id"), attr(element, "Target"))
        {
            found.push((id, attr(element, "Type").unwrap_or_default(), target));
        }
    })?;
    Ok(found)
}

/// Resolves a relationship target relative to the folder of the part that names it.
pub(super) fn resolve_target(base_folder: &str, target: &str) -> String {
    if let Some(absolute) = target.strip_prefix('/') {
        return absolute.to_owned();
    }
    let mut parts: Vec<&str> = base_folder.split('/').filter(|p| !p.is_empty()).collect();
    for piece in target.split('/') {
        match piece {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Collapses runs of blank lines to one and trims trailing spaces on each line.
pub(super) fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_targets() {
        assert_eq!(
            resolve_target("ppt", "slides/slide1.xml"),
            "ppt/slides/slide1.xml"
        );
        assert_eq!(
            resolve_target("ppt/slides", "../notesSlides/notesSlide1.xml"),
            "ppt/notesSlides/notesSlide1.xml"
        );
        assert_eq!(
            resolve_target("ppt", "/ppt/slides/s.xml"),
            "ppt/slides/s.xml"
        );
    }

    #[test]
    fn walk_resolves_references_and_drops_prefixes() {
        let mut seen = Vec::new();
        walk(
            Format::Docx,
            "<w:p a:x='1'><w:t>A &amp; B &#233;</w:t><w:br/></w:p>",
            |node| {
                seen.push(match node {
                    Node::Start { name, empty, .. } => {
                        format!("<{name}{}>", if empty { "/" } else { "" })
                    }
                    Node::End { name } => format!("</{name}>"),
                    Node::Text(text) => text.into_owned(),
                });
            },
        )
        .expect("walk");
        assert_eq!(seen.concat(), "<p><t>A & B é</t><br/></br></p>");
    }

    #[test]
    fn tidy_collapses_blank_runs() {
        assert_eq!(tidy("\n\na  \n\n\n\nb\n\n"), "a\n\nb");
    }
}
