//! PDF: the text each page shows, in content-stream order, with line breaks where the text
//! moves to a new line and spaces where it jumps along one; pages after the first start with a
//! `## Page N` heading. Glyphs are mapped to characters through each font's `ToUnicode` map or
//! encoding (lopdf). Scanned pages (images only) give no text. Every stream is unpacked with a
//! size limit, and a panic inside the parser is caught and reported as a corrupt file.

use std::collections::BTreeMap;

use lopdf::{Document, Encoding, LoadOptions, Object, content::Content};

use super::{ExtractError, Format, ooxml::corrupt};

/// Most bytes one stream (page content, object stream, font map) may unpack to.
const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;

pub(super) fn text(bytes: &[u8]) -> Result<String, ExtractError> {
    std::panic::catch_unwind(|| read(bytes)).unwrap_or_else(|_| {
        Err(corrupt(
            Format::Pdf,
            "the PDF parser gave up on this file".into(),
        ))
    })
}

fn read(bytes: &[u8]) -> Result<String, ExtractError> {
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM_BYTES),
        ..LoadOptions::default()
    };
    let document = Document::load_mem_with_options(bytes, options)
        .map_err(|error| corrupt(Format::Pdf, error.to_string()))?;
    let pages = document.get_pages();
    let many = pages.len() > 1;
    let mut out = String::new();
    for (number, page) in pages {
        let text = page_text(&document, page).unwrap_or_default();
        if many {
            out.push_str(&format!("## Page {number}\n\n"));
        }
        out.push_str(text.trim());
        out.push_str("\n\n");
    }
    Ok(out.trim_end().to_owned())
}

/// The text of one page; `None` when its content cannot be read at all.
fn page_text(document: &Document, page: lopdf::ObjectId) -> Option<String> {
    let encodings: BTreeMap<Vec<u8>, Encoding<'_>> = document
        .get_page_fonts(page)
        .ok()?
        .into_iter()
        .filter_map(|(name, font)| {
            font.get_font_encoding_with_limit(document, MAX_STREAM_BYTES)
                .ok()
                .map(|encoding| (name, encoding))
        })
        .collect();
    let content = document
        .get_page_content_with_limit(page, MAX_STREAM_BYTES)
        .ok()?;
    let content = Content::decode(&content).ok()?;
    let mut layout = Layout::default();
    let mut encoding: Option<&Encoding<'_>> = None;
    for operation in &content.operations {
        let operands = &operation.operands;
        match operation.operator.as_str() {
            "BT" => layout.begin_text(),
            "Tf" => {
                encoding = operands
                    .first()
                    .and_then(|name| name.as_name().ok())
                    .and_then(|name| encodings.get(name));
                if let Some(size) = operands.get(1).and_then(number) {
                    layout.font_size = size.abs().max(1.0);
                }
            }
            "TL" => layout.leading = operands.first().and_then(number).unwrap_or(0.0),
            "Td" | "TD" => {
                let (tx, ty) = (
                    operands.first().and_then(number).unwrap_or(0.0),
                    operands.get(1).and_then(number).unwrap_or(0.0),
                );
                if operation.operator == "TD" {
                    layout.leading = -ty;
                }
                layout.translate(tx, ty);
            }
            "Tm" => {
                let mut matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
                for (slot, operand) in matrix.iter_mut().zip(operands) {
                    *slot = number(operand).unwrap_or(*slot);
                }
                layout.set_matrix(matrix);
            }
            "T*" => layout.translate(0.0, -layout.leading),
            "Tj" => layout.show(encoding, operands),
            "TJ" => {
                if let Some(Object::Array(items)) = operands.first() {
                    for item in items {
                        match item {
                            Object::String(..) => layout.show(encoding, std::slice::from_ref(item)),
                            // A shift left of more than a fifth of the font size: a word gap.
                            other if number(other).is_some_and(|shift| shift < -200.0) => {
                                layout.space();
                            }
                            _ => {}
                        }
                    }
                }
            }
            "'" | "\"" => {
                layout.translate(0.0, -layout.leading);
                layout.show(
                    encoding,
                    operands.last().map(std::slice::from_ref).unwrap_or(&[]),
                );
            }
            _ => {}
        }
    }
    Some(layout.out)
}

fn number(object: &Object) -> Option<f32> {
    match object {
        Object::Integer(i) => Some(*i as f32),
        Object::Real(r) => Some(*r),
        _ => None,
    }
}

/// Where the text is, and what it has written so far.
struct Layout {
    out: String,
    /// The text line matrix `[a b c d e f]`: where the current line starts, in user space.
    line: [f32; 6],
    /// The vertical position (user space) of the last shown text.
    shown_y: Option<f32>,
    font_size: f32,
    /// Line spacing for `T*`, in text space.
    leading: f32,
    /// The position moved along the line since the last shown text.
    moved_along: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            out: String::new(),
            line: IDENTITY,
            shown_y: None,
            font_size: 1.0,
            leading: 0.0,
            moved_along: false,
        }
    }
}

const IDENTITY: [f32; 6] = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

impl Layout {
    fn begin_text(&mut self) {
        self.line = IDENTITY;
    }

    /// `Td`: a new line start `(tx, ty)` away in text space.
    fn translate(&mut self, tx: f32, ty: f32) {
        let [a, b, c, d, e, f] = self.line;
        self.set_matrix([a, b, c, d, tx * a + ty * c + e, tx * b + ty * d + f]);
    }

    fn set_matrix(&mut self, matrix: [f32; 6]) {
        let along = (matrix[5] - self.line[5]).abs() < 0.01 && matrix[4] > self.line[4];
        self.moved_along |= along;
        self.line = matrix;
    }

    /// The font size as drawn, in user space.
    fn drawn_size(&self) -> f32 {
        let [_, b, _, d, _, _] = self.line;
        (self.font_size * (b * b + d * d).sqrt()).max(1.0)
    }

    fn space(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with(char::is_whitespace) {
            self.out.push(' ');
        }
    }

    fn show(&mut self, encoding: Option<&Encoding<'_>>, operands: &[Object]) {
        let mut text = String::new();
        for operand in operands {
            if let Object::String(bytes, _) = operand {
                match encoding.and_then(|e| Document::decode_text(e, bytes).ok()) {
                    Some(decoded) => text.push_str(&decoded),
                    // No usable encoding: the bytes as Latin-1 when they look like text.
                    None if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') => {
                        text.extend(bytes.iter().map(|&b| char::from(b)));
                    }
                    None => {}
                }
            }
        }
        if text.is_empty() {
            return;
        }
        let size = self.drawn_size();
        let y_now = self.line[5];
        match self.shown_y {
            Some(y) if (y - y_now).abs() > size * 0.5 => {
                self.out.truncate(self.out.trim_end_matches(' ').len());
                self.out.push('\n');
                // A gap of more than two lines reads as a paragraph break.
                if (y - y_now).abs() > size * 2.5 {
                    self.out.push('\n');
                }
            }
            Some(_) if self.moved_along => self.space(),
            _ => {}
        }
        self.moved_along = false;
        self.shown_y = Some(y_now);
        self.out.push_str(&text);
    }
}
