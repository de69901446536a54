//! Small, real documents built from plain text: docx, xlsx and pptx as zip packages of minimal
//! OOXML parts, PDFs written object by object. For tests, and for the sandbox emulators, which
//! seed their file stores with them. Not in the production build.
//!
//! The packages carry only the parts a reader needs (no themes, masters or style sheets beyond
//! what dates need), so they are small and readable, not pretty.

use std::io::{Cursor, Write};

use zip::{ZipWriter, write::SimpleFileOptions};

/// One block of a Word document.
#[derive(Debug, Clone, Copy)]
pub enum DocxBlock<'a> {
    /// A heading of level 1 to 6 (`Heading1` … style).
    Heading(u8, &'a str),
    Paragraph(&'a str),
    /// A numbered-list item (bullet).
    Bullet(&'a str),
    /// Rows of cells; the first row is the header.
    Table(&'a [&'a [&'a str]]),
}

/// One cell of a worksheet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XlsxCell<'a> {
    Empty,
    Text(&'a str),
    Number(f64),
    Bool(bool),
    /// An Excel serial date (days since 1899-12-30), shown with a date format.
    Date(f64),
}

/// One slide of a deck.
#[derive(Debug, Clone, Copy)]
pub struct PptxSlide<'a> {
    pub title: &'a str,
    /// Paragraphs of the body text frame.
    pub body: &'a [&'a str],
    /// Speaker notes; empty for none.
    pub notes: &'a str,
}

const REL_OFFICE_DOCUMENT: &str =
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument";
const XML_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;

/// A Word document with `blocks` as its body.
pub fn docx(blocks: &[DocxBlock<'_>]) -> Vec<u8> {
    let mut body = String::new();
    for block in blocks {
        match *block {
            DocxBlock::Heading(level, text) => body.push_str(&format!(
                r#"<w:p><w:pPr><w:pStyle w:val="Heading{}"/></w:pPr>{}</w:p>"#,
                level.clamp(1, 6),
                docx_run(text)
            )),
            DocxBlock::Paragraph(text) => body.push_str(&format!("<w:p>{}</w:p>", docx_run(text))),
            DocxBlock::Bullet(text) => body.push_str(&format!(
                r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr>{}</w:p>"#,
                docx_run(text)
            )),
            DocxBlock::Table(rows) => {
                body.push_str("<w:tbl><w:tblPr><w:tblW w:w=\"0\" w:type=\"auto\"/></w:tblPr>");
                for row in rows {
                    body.push_str("<w:tr>");
                    for cell in *row {
                        body.push_str(&format!("<w:tc><w:p>{}</w:p></w:tc>", docx_run(cell)));
                    }
                    body.push_str("</w:tr>");
                }
                body.push_str("</w:tbl>");
            }
        }
    }
    let document = format!(
        r#"{XML_HEAD}<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}<w:sectPr/></w:body></w:document>"#
    );
    package(&[
        (
            "[Content_Types].xml",
            content_types(&[(
                "/word/document.xml",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            )]),
        ),
        (
            "_rels/.rels",
            rels(&[("rId1", REL_OFFICE_DOCUMENT, "word/document.xml")]),
        ),
        ("word/document.xml", document),
    ])
}

fn docx_run(text: &str) -> String {
    format!(
        r#"<w:r><w:t xml:space="preserve">{}</w:t></w:r>"#,
        escape(text)
    )
}

/// A workbook with one worksheet per `(name, rows)`.
pub fn xlsx(sheets: &[(&str, &[&[XlsxCell<'_>]])]) -> Vec<u8> {
    let mut strings: Vec<String> = Vec::new();
    let mut parts = Vec::new();
    let mut workbook_sheets = String::new();
    let mut workbook_rels = Vec::new();
    let mut overrides = vec![
        (
            "/xl/workbook.xml".to_owned(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        ),
        (
            "/xl/sharedStrings.xml".to_owned(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml",
        ),
        (
            "/xl/styles.xml".to_owned(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml",
        ),
    ];
    for (index, (name, rows)) in sheets.iter().enumerate() {
        let number = index + 1;
        let mut data = String::new();
        for (r, row) in rows.iter().enumerate() {
            data.push_str(&format!(r#"<row r="{}">"#, r + 1));
            for (c, cell) in row.iter().enumerate() {
                let at = format!("{}{}", column_name(c), r + 1);
                match *cell {
                    XlsxCell::Empty => {}
                    XlsxCell::Text(text) => {
                        let id = strings.iter().position(|s| s == text).unwrap_or_else(|| {
                            strings.push(text.to_owned());
                            strings.len() - 1
                        });
                        data.push_str(&format!(r#"<c r="{at}" t="s"><v>{id}</v></c>"#));
                    }
                    XlsxCell::Number(n) => data.push_str(&format!(r#"<c r="{at}"><v>{n}</v></c>"#)),
                    XlsxCell::Bool(b) => {
                        data.push_str(&format!(r#"<c r="{at}" t="b"><v>{}</v></c>"#, u8::from(b)))
                    }
                    XlsxCell::Date(serial) => {
                        data.push_str(&format!(r#"<c r="{at}" s="1"><v>{serial}</v></c>"#));
                    }
                }
            }
            data.push_str("</row>");
        }
        parts.push((
            format!("xl/worksheets/sheet{number}.xml"),
            format!(
                r#"{XML_HEAD}<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#
            ),
        ));
        workbook_sheets.push_str(&format!(
            r#"<sheet name="{}" sheetId="{number}" r:id="rId{number}"/>"#,
            escape(name)
        ));
        workbook_rels.push((
            format!("rId{number}"),
            "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet",
            format!("worksheets/sheet{number}.xml"),
        ));
        overrides.push((
            format!("/xl/worksheets/sheet{number}.xml"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml",
        ));
    }
    let count = sheets.len();
    workbook_rels.push((
        format!("rId{}", count + 1),
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings",
        "sharedStrings.xml".into(),
    ));
    workbook_rels.push((
        format!("rId{}", count + 2),
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles",
        "styles.xml".into(),
    ));
    let shared: String = strings
        .iter()
        .map(|s| format!(r#"<si><t xml:space="preserve">{}</t></si>"#, escape(s)))
        .collect();
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    let workbook_rels: Vec<(&str, &str, &str)> = workbook_rels
        .iter()
        .map(|(id, kind, target)| (id.as_str(), *kind, target.as_str()))
        .collect();
    let mut files = vec![
        ("[Content_Types].xml".to_owned(), content_types(&overrides)),
        (
            "_rels/.rels".to_owned(),
            rels(&[("rId1", REL_OFFICE_DOCUMENT, "xl/workbook.xml")]),
        ),
        (
            "xl/workbook.xml".to_owned(),
            format!(
                r#"{XML_HEAD}<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{workbook_sheets}</sheets></workbook>"#
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels".to_owned(),
            rels(&workbook_rels),
        ),
        (
            "xl/sharedStrings.xml".to_owned(),
            format!(
                r#"{XML_HEAD}<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{0}" uniqueCount="{0}">{shared}</sst>"#,
                strings.len()
            ),
        ),
        (
            "xl/styles.xml".to_owned(),
            format!(
                r#"{XML_HEAD}<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>"#
            ),
        ),
    ];
    files.extend(parts);
    package(&files)
}

/// A deck with one slide per entry, notes included.
pub fn pptx(slides: &[PptxSlide<'_>]) -> Vec<u8> {
    const P: &str = r#"xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main""#;
    let mut files: Vec<(String, String)> = Vec::new();
    let mut overrides = vec![(
        "/ppt/presentation.xml".to_owned(),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    )];
    let mut ids = String::new();
    let mut presentation_rels = Vec::new();
    for (index, slide) in slides.iter().enumerate() {
        let number = index + 1;
        let body: String = slide
            .body
            .iter()
            .map(|line| format!("<a:p><a:r><a:t>{}</a:t></a:r></a:p>", escape(line)))
            .collect();
        files.push((
            format!("ppt/slides/slide{number}.xml"),
            format!(
                r#"{XML_HEAD}<p:sld {P}><p:cSld><p:spTree><p:sp><p:nvSpPr><p:cNvPr id="2" name="Title"/><p:cNvSpPr/><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:bodyPr/><a:p><a:r><a:t>{}</a:t></a:r></a:p></p:txBody></p:sp><p:sp><p:nvSpPr><p:cNvPr id="3" name="Body"/><p:cNvSpPr/><p:nvPr><p:ph idx="1"/></p:nvPr></p:nvSpPr><p:txBody><a:bodyPr/>{body}</p:txBody></p:sp><p:sp><p:nvSpPr><p:cNvPr id="4" name="Slide Number"/><p:cNvSpPr/><p:nvPr><p:ph type="sldNum"/></p:nvPr></p:nvSpPr><p:txBody><a:bodyPr/><a:p><a:fld id="{{1}}" type="slidenum"><a:t>{number}</a:t></a:fld></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#,
                escape(slide.title)
            ),
        ));
        overrides.push((
            format!("/ppt/slides/slide{number}.xml"),
            "application/vnd.openxmlformats-officedocument.presentationml.slide+xml",
        ));
        let mut slide_rels = Vec::new();
        if !slide.notes.is_empty() {
            files.push((
                format!("ppt/notesSlides/notesSlide{number}.xml"),
                format!(
                    r#"{XML_HEAD}<p:notes {P}><p:cSld><p:spTree><p:sp><p:nvSpPr><p:cNvPr id="2" name="Slide Image"/><p:cNvSpPr/><p:nvPr><p:ph type="sldImg"/></p:nvPr></p:nvSpPr></p:sp><p:sp><p:nvSpPr><p:cNvPr id="3" name="Notes"/><p:cNvSpPr/><p:nvPr><p:ph type="body" idx="1"/></p:nvPr></p:nvSpPr><p:txBody><a:bodyPr/><a:p><a:r><a:t>{}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:notes>"#,
                    escape(slide.notes)
                ),
            ));
            overrides.push((
                format!("/ppt/notesSlides/notesSlide{number}.xml"),
                "application/vnd.openxmlformats-officedocument.presentationml.notesSlide+xml",
            ));
            slide_rels.push((
                "rId2".to_owned(),
                "http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide",
                format!("../notesSlides/notesSlide{number}.xml"),
            ));
        }
        let slide_rels: Vec<(&str, &str, &str)> = slide_rels
            .iter()
            .map(|(id, kind, target)| (id.as_str(), *kind, target.as_str()))
            .collect();
        files.push((
            format!("ppt/slides/_rels/slide{number}.xml.rels"),
            rels(&slide_rels),
        ));
        ids.push_str(&format!(
            r#"<p:sldId id="{}" r:id="rId{number}"/>"#,
            255 + number
        ));
        presentation_rels.push((
            format!("rId{number}"),
            "http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide",
            format!("slides/slide{number}.xml"),
        ));
    }
    files.push((
        "ppt/presentation.xml".into(),
        format!(
            r#"{XML_HEAD}<p:presentation {P}><p:sldIdLst>{ids}</p:sldIdLst><p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>"#
        ),
    ));
    let presentation_rels: Vec<(&str, &str, &str)> = presentation_rels
        .iter()
        .map(|(id, kind, target)| (id.as_str(), *kind, target.as_str()))
        .collect();
    files.push((
        "ppt/_rels/presentation.xml.rels".into(),
        rels(&presentation_rels),
    ));
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    files.insert(0, ("[Content_Types].xml".into(), content_types(&overrides)));
    files.insert(
        1,
        (
            "_rels/.rels".into(),
            rels(&[("rId1", REL_OFFICE_DOCUMENT, "ppt/presentation.xml")]),
        ),
    );
    package(&files)
}

/// A PDF with one page per entry, each line of text on its own line (Helvetica, 12 pt).
/// Characters outside Latin-1 become `?`.
pub fn pdf(pages: &[&[&str]]) -> Vec<u8> {
    let streams: Vec<String> = pages
        .iter()
        .map(|lines| {
            let mut content = String::from("BT\n/F1 12 Tf\n72 720 Td\n");
            for line in *lines {
                content.push_str(&format!("({}) Tj\n0 -16 Td\n", pdf_string(line)));
            }
            content.push_str("ET\n");
            content
        })
        .collect();
    let streams: Vec<&str> = streams.iter().map(String::as_str).collect();
    pdf_from_streams(&streams)
}

/// A PDF whose pages draw the given content streams, with Helvetica (WinAnsi) as font `/F1`.
pub fn pdf_from_streams(streams: &[&str]) -> Vec<u8> {
    // Objects: 1 catalog, 2 page tree, 3 font, then per page a page and its content stream.
    let page_ids: Vec<usize> = (0..streams.len()).map(|i| 4 + 2 * i).collect();
    let kids: Vec<String> = page_ids.iter().map(|id| format!("{id} 0 R")).collect();
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            streams.len()
        )
        .into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ];
    for (index, stream) in streams.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                page_ids[index] + 1
            )
            .into_bytes(),
        );
        let mut body = format!("<< /Length {} >>\nstream\n", stream.len()).into_bytes();
        body.extend_from_slice(stream.as_bytes());
        body.extend_from_slice(b"\nendstream");
        objects.push(body);
    }
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PDF literal string body: Latin-1 bytes, with `(`, `)`, `\` and non-ASCII escaped.
fn pdf_string(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xff => out.push_str(&format!("\\{:03o}", u32::from(c))),
            _ => out.push('?'),
        }
    }
    out
}

fn column_name(mut index: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn content_types(overrides: &[(&str, &str)]) -> String {
    let overrides: String = overrides
        .iter()
        .map(|(part, kind)| format!(r#"<Override PartName="{part}" ContentType="{kind}"/>"#))
        .collect();
    format!(
        r#"{XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>"#
    )
}

fn rels(relationships: &[(&str, &str, &str)]) -> String {
    let items: String = relationships
        .iter()
        .map(|(id, kind, target)| {
            format!(r#"<Relationship Id="{id}" Type="{kind}" Target="{target}"/>"#)
        })
        .collect();
    format!(
        r#"{XML_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{items}</Relationships>"#
    )
}

fn package<N: AsRef<str>>(files: &[(N, String)]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in files {
        writer
            .start_file(name.as_ref(), SimpleFileOptions::default())
            .expect("writing to memory");
        writer
            .write_all(body.as_bytes())
            .expect("writing to memory");
    }
    writer.finish().expect("writing to memory").into_inner()
}
