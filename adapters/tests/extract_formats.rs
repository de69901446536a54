//! Text extraction from real documents of each format, built by `extract::fixtures` (zip
//! packages of minimal OOXML, PDFs written object by object), plus hostile and broken inputs.
#![cfg(feature = "sandbox")]
#![allow(clippy::expect_used)]

use std::io::{Cursor, Write};

use manifold_adapters::TextFilter;
use manifold_adapters::extract::{
    ExtractError, Format, Window, extract,
    fixtures::{self, DocxBlock, PptxSlide, XlsxCell},
};

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

fn all(bytes: &[u8], content_type: &str) -> String {
    let extracted = extract(
        bytes,
        Some(content_type),
        None,
        Window::default(),
        &TextFilter::default(),
    )
    .expect("extracts");
    assert_eq!(extracted.next_offset, None);
    extracted.text
}

#[test]
fn docx_headings_lists_paragraphs_and_tables() {
    let bytes = fixtures::docx(&[
        DocxBlock::Heading(1, "Quarterly report"),
        DocxBlock::Paragraph("Revenue grew by 12 % & costs < plan."),
        DocxBlock::Bullet("First point"),
        DocxBlock::Bullet("Second point"),
        DocxBlock::Heading(2, "Numbers"),
        DocxBlock::Table(&[
            &["Region", "Sales"],
            &["North", "1,200"],
            &["South | East", "900"],
        ]),
        DocxBlock::Paragraph("Ünïcödé closes it."),
    ]);
    let text = all(&bytes, DOCX);
    assert_eq!(
        text,
        "# Quarterly report\n\
         \n\
         Revenue grew by 12 % & costs < plan.\n\
         - First point\n\
         - Second point\n\
         \n\
         ## Numbers\n\
         \n\
         | Region | Sales |\n\
         | --- | --- |\n\
         | North | 1,200 |\n\
         | South \\| East | 900 |\n\
         \n\
         Ünïcödé closes it."
    );
}

#[test]
fn docx_skips_deleted_text_field_codes_and_fallbacks() {
    let document = r#"<?xml version="1.0" encoding="UTF-8"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>
<w:p><w:r><w:t>Kept</w:t></w:r><w:del><w:r><w:delText>Deleted</w:delText></w:r></w:del><w:r><w:instrText> PAGE </w:instrText></w:r><w:r><w:tab/><w:t>after tab</w:t><w:br/><w:t>next line</w:t></w:r></w:p>
<w:p><w:r><mc:AlternateContent><mc:Choice><w:t>Box text</w:t></mc:Choice><mc:Fallback><w:t>Box text</w:t></mc:Fallback></mc:AlternateContent></w:r></w:p>
</w:body></w:document>"#;
    let bytes = zip_of(&[
        (
            "_rels/.rels",
            r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/word/document.xml"/></Relationships>"#,
        ),
        ("word/document.xml", document),
    ]);
    assert_eq!(all(&bytes, DOCX), "Kept\tafter tab\nnext line\nBox text");
}

#[test]
fn xlsx_sheets_as_csv_with_headings() {
    let bytes = fixtures::xlsx(&[
        (
            "Sales",
            &[
                &[
                    XlsxCell::Text("Region"),
                    XlsxCell::Text("Units"),
                    XlsxCell::Text("Shipped"),
                ],
                &[
                    XlsxCell::Text("North, upper"),
                    XlsxCell::Number(12.0),
                    XlsxCell::Date(45292.0),
                ],
                &[],
                &[
                    XlsxCell::Text("South \"deep\""),
                    XlsxCell::Number(3.25),
                    XlsxCell::Bool(true),
                ],
                &[XlsxCell::Empty, XlsxCell::Empty, XlsxCell::Text("tail")],
            ],
        ),
        ("Empty", &[]),
        ("Notes", &[&[XlsxCell::Text("Line one")]]),
    ]);
    let text = all(&bytes, XLSX);
    assert_eq!(
        text,
        "## Sheet: Sales\n\n\
         Region,Units,Shipped\n\
         \"North, upper\",12,2024-01-01\n\
         \"South \"\"deep\"\"\",3.25,TRUE\n\
         ,,tail\n\n\
         ## Sheet: Empty\n\n\n\
         ## Sheet: Notes\n\n\
         Line one"
    );
}

#[test]
fn pptx_slides_in_order_with_titles_and_notes() {
    let bytes = fixtures::pptx(&[
        PptxSlide {
            title: "Kick-off",
            body: &["Goals for Q3", "Hire two engineers"],
            notes: "Mention the budget.",
        },
        PptxSlide {
            title: "Timeline",
            body: &["July: design", "August: build"],
            notes: "",
        },
    ]);
    let text = all(&bytes, PPTX);
    assert_eq!(
        text,
        "## Slide 1: Kick-off\n\n\
         Goals for Q3\n\
         Hire two engineers\n\n\
         Notes:\n\
         Mention the budget.\n\n\
         ## Slide 2: Timeline\n\n\
         July: design\n\
         August: build"
    );
}

#[test]
fn pdf_pages_lines_and_escapes() {
    let bytes = fixtures::pdf(&[
        &[
            "Invoice 2024-17",
            "Total (EUR): 1,250.00",
            "Caf\u{e9} \\ back",
        ],
        &["Page two text"],
    ]);
    let text = all(&bytes, "application/pdf");
    assert_eq!(
        text,
        "## Page 1\n\n\
         Invoice 2024-17\n\
         Total (EUR): 1,250.00\n\
         Café \\ back\n\n\
         ## Page 2\n\n\
         Page two text"
    );
}

#[test]
fn pdf_word_gaps_scaled_matrices_and_compressed_streams() {
    // Words placed by TJ kerning and by moves along the line; lines set by Tm with a scaled
    // matrix (font size 1, drawn at 10) and by T* with a leading.
    let stream = "BT /F1 1 Tf 10 0 0 10 72 700 Tm [(Hello) -300 (world)] TJ 0 -1.4 Td (second) Tj \
                  3 0 Td (line) Tj ET \
                  BT /F1 12 Tf 14 TL 72 600 Td (third) Tj T* (fourth) Tj ET";
    let plain = fixtures::pdf_from_streams(&[stream]);
    let expected = "Hello world\nsecond line\n\nthird\nfourth";
    assert_eq!(all(&plain, "application/pdf"), expected);

    let mut document = lopdf::Document::load_mem(&plain).expect("lopdf reads the fixture");
    document.compress();
    let mut compressed = Vec::new();
    document.save_to(&mut compressed).expect("saves");
    assert!(
        compressed.windows(11).any(|w| w == b"FlateDecode"),
        "the re-saved PDF has compressed streams"
    );
    assert_eq!(all(&compressed, "application/pdf"), expected);
}

#[test]
fn windows_continue_through_an_extracted_document() {
    let lines: Vec<String> = (0..200).map(|i| format!("Paragraph number {i}")).collect();
    let blocks: Vec<DocxBlock<'_>> = lines.iter().map(|l| DocxBlock::Paragraph(l)).collect();
    let bytes = fixtures::docx(&blocks);
    let mut offset = 0;
    let mut joined = String::new();
    loop {
        let window = Window {
            offset,
            max_chars: 1000,
        };
        let part = extract(
            &bytes,
            None,
            Some("report.docx"),
            window,
            &TextFilter::default(),
        )
        .expect("extracts");
        assert_eq!(part.format, Format::Docx);
        joined.push_str(&part.text);
        match part.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(joined, lines.join("\n"));
}

#[test]
fn broken_files_are_reported_as_corrupt() {
    for (bytes, content_type, format) in [
        (b"not a zip".to_vec(), DOCX, Format::Docx),
        (b"not a zip".to_vec(), XLSX, Format::Xlsx),
        (b"not a zip".to_vec(), PPTX, Format::Pptx),
        (b"%PDF-1.4 garbage".to_vec(), "application/pdf", Format::Pdf),
        (zip_of(&[("other.txt", "x")]), DOCX, Format::Docx),
        (
            zip_of(&[("word/document.xml", "<w:p><w:t>unclosed")]),
            DOCX,
            Format::Docx,
        ),
    ] {
        match extract(
            &bytes,
            Some(content_type),
            None,
            Window::default(),
            &TextFilter::default(),
        ) {
            Err(ExtractError::Corrupt { format: got, .. }) => assert_eq!(got, format),
            other => panic!("{content_type}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn a_zip_bomb_is_refused_without_unpacking_it_all() {
    // 80 MiB of zeros deflate to about 80 KiB; the part limit is 64 MiB.
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    writer
        .start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("zip");
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..80 {
        writer.write_all(&zeros).expect("zip");
    }
    let bomb = writer.finish().expect("zip").into_inner();
    assert!(bomb.len() < 2 * 1024 * 1024);
    for content_type in [DOCX, XLSX] {
        let error = extract(
            &bomb,
            Some(content_type),
            None,
            Window::default(),
            &TextFilter::default(),
        )
        .expect_err("refused");
        assert!(
            matches!(&error, ExtractError::Corrupt { reason, .. } if reason.contains("more than")),
            "{error}"
        );
    }
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip");
        writer.write_all(body.as_bytes()).expect("zip");
    }
    writer.finish().expect("zip").into_inner()
}
