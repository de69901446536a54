//! What `files.export` produces from a Google-native file: the formats Drive offers per type,
//! and each rendered from the emulator's model of the document (Markdown for Docs, rows for
//! Sheets, slides for Slides), Office formats and PDFs built by `extract::fixtures`.

use crate::extract::fixtures::{self, DocxBlock, PptxSlide, XlsxCell};

use super::store::{self, Content};

/// The formats each Google-native type exports to.
pub(crate) fn formats(mime_type: &str) -> &'static [&'static str] {
    match mime_type {
        store::DOC => &[
            "text/plain",
            "text/markdown",
            "text/html",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/pdf",
        ],
        store::SHEET => &[
            "text/csv",
            "text/tab-separated-values",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/pdf",
        ],
        store::SLIDES => &[
            "text/plain",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/pdf",
        ],
        _ => &[],
    }
}

/// A Google-native file's content in an export format.
pub(super) fn exported(content: &Content, target: &str) -> Vec<u8> {
    match content {
        Content::Doc(markdown) => match target {
            "text/markdown" => markdown.clone().into_bytes(),
            "text/plain" => plain_of_markdown(markdown).into_bytes(),
            "text/html" => {
                let body: String = markdown
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|line| match line.split_once(' ') {
                        Some((hashes, text))
                            if !hashes.is_empty() && hashes.chars().all(|c| c == '#') =>
                        {
                            format!("<h{0}>{text}</h{0}>", hashes.len())
                        }
                        _ => format!("<p>{}</p>", line.trim_start_matches("- ")),
                    })
                    .collect();
                format!("<html><body>{body}</body></html>").into_bytes()
            }
            "application/pdf" => {
                let plain = plain_of_markdown(markdown);
                let lines: Vec<&str> = plain.lines().filter(|l| !l.is_empty()).collect();
                fixtures::pdf(&[&lines])
            }
            _ => {
                let blocks: Vec<DocxBlock<'_>> = markdown
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|line| {
                        if let Some((hashes, text)) = line.split_once(' ')
                            && !hashes.is_empty()
                            && hashes.chars().all(|c| c == '#')
                        {
                            return DocxBlock::Heading(hashes.len() as u8, text);
                        }
                        match line.strip_prefix("- ") {
                            Some(item) => DocxBlock::Bullet(item),
                            None => DocxBlock::Paragraph(line),
                        }
                    })
                    .collect();
                fixtures::docx(&blocks)
            }
        },
        Content::Sheet(sheets) => match target {
            "text/csv" => sheets
                .first()
                .map(|(_, rows)| store::csv(rows))
                .unwrap_or_default()
                .into_bytes(),
            "text/tab-separated-values" => sheets
                .first()
                .map(|(_, rows)| {
                    rows.iter()
                        .map(|r| r.join("\t"))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default()
                .into_bytes(),
            "application/pdf" => {
                let lines: Vec<String> = sheets
                    .first()
                    .map(|(_, rows)| rows.iter().map(|r| r.join("  ")).collect())
                    .unwrap_or_default();
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                fixtures::pdf(&[&lines])
            }
            _ => {
                let cells: Vec<(String, Vec<Vec<XlsxCell<'_>>>)> = sheets
                    .iter()
                    .map(|(name, rows)| {
                        let rows = rows
                            .iter()
                            .map(|row| {
                                row.iter()
                                    .map(|cell| match cell.parse::<f64>() {
                                        Ok(number) => XlsxCell::Number(number),
                                        Err(_) => XlsxCell::Text(cell),
                                    })
                                    .collect()
                            })
                            .collect();
                        (name.clone(), rows)
                    })
                    .collect();
                let rows: Vec<Vec<&[XlsxCell<'_>]>> = cells
                    .iter()
                    .map(|(_, rows)| rows.iter().map(Vec::as_slice).collect())
                    .collect();
                let sheets: Vec<(&str, &[&[XlsxCell<'_>]])> = cells
                    .iter()
                    .zip(&rows)
                    .map(|((name, _), rows)| (name.as_str(), rows.as_slice()))
                    .collect();
                fixtures::xlsx(&sheets)
            }
        },
        Content::Slides(slides) => match target {
            "text/plain" => store::slides_text(slides).into_bytes(),
            "application/pdf" => {
                let pages: Vec<Vec<&str>> = slides
                    .iter()
                    .map(|(title, body, _)| {
                        std::iter::once(title.as_str())
                            .chain(body.iter().map(String::as_str))
                            .collect()
                    })
                    .collect();
                let pages: Vec<&[&str]> = pages.iter().map(Vec::as_slice).collect();
                fixtures::pdf(&pages)
            }
            _ => {
                let bodies: Vec<Vec<&str>> = slides
                    .iter()
                    .map(|(_, body, _)| body.iter().map(String::as_str).collect())
                    .collect();
                let deck: Vec<PptxSlide<'_>> = slides
                    .iter()
                    .zip(&bodies)
                    .map(|((title, _, notes), body)| PptxSlide { title, body, notes })
                    .collect();
                fixtures::pptx(&deck)
            }
        },
        Content::None | Content::Bytes(_) => Vec::new(),
    }
}

/// Markdown as Google's plain-text export reads: no heading marks, bullets as `* `.
fn plain_of_markdown(markdown: &str) -> String {
    markdown
        .lines()
        .map(|line| {
            let trimmed = line.trim_start_matches('#').trim_start();
            match trimmed.strip_prefix("- ") {
                Some(item) => format!("* {item}"),
                None => trimmed.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
