//! Word documents (docx): the body's paragraphs as lines, headings as Markdown `#` headings, list
//! items as `- `, tables as Markdown tables. Deleted tracked changes and field codes are left
//! out; text boxes are read once (not again from their compatibility fallback).

use super::{
    ExtractError, Format,
    ooxml::{self, Node, Package},
};

pub(super) fn text(bytes: &[u8]) -> Result<String, ExtractError> {
    let mut package = Package::open(Format::Docx, bytes)?;
    let body = main_part(&mut package)?;
    let xml = package
        .part(&body)?
        .ok_or_else(|| ooxml::corrupt(Format::Docx, format!("the package has no {body} part")))?;
    let mut reader = Reader::default();
    ooxml::walk(Format::Docx, &xml, |node| reader.visit(node))?;
    Ok(ooxml::tidy(&reader.out))
}

/// The main document part, as named by the package relationships (`word/document.xml` almost
/// always).
fn main_part(package: &mut Package<'_>) -> Result<String, ExtractError> {
    if let Some(rels) = package.part("_rels/.rels")? {
        for (_, kind, target) in ooxml::relationships(Format::Docx, &rels)? {
            if kind.ends_with("/officeDocument") {
                return Ok(ooxml::resolve_target("", &target));
            }
        }
    }
    Ok("word/document.xml".into())
}

#[derive(Default)]
struct Paragraph {
    text: String,
    heading: Option<usize>,
    list: bool,
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Option<Vec<String>>,
    cell: Option<String>,
}

#[derive(Default)]
struct Reader {
    out: String,
    paragraphs: Vec<Paragraph>,
    tables: Vec<Table>,
    in_text: bool,
    in_run: usize,
    /// Depth inside an `mc:Fallback`, whose content repeats the `mc:Choice` before it.
    skipping: usize,
}

impl Reader {
    fn visit(&mut self, node: Node<'_, '_>) {
        if self.skipping > 0 {
            match node {
                Node::Start {
                    name: "Fallback",
                    empty: false,
                    ..
                } => self.skipping += 1,
                Node::End { name: "Fallback" } => self.skipping -= 1,
                _ => {}
            }
            return;
        }
        match node {
            Node::Start { name, element, .. } => match name {
                "Fallback" => self.skipping = 1,
                "p" => self.paragraphs.push(Paragraph::default()),
                "pStyle" => {
                    let style = ooxml::attr(element, "val").unwrap_or_default();
                    if let Some(paragraph) = self.paragraphs.last_mut() {
                        paragraph.heading = heading_level(&style);
                        paragraph.list |= style.starts_with("List");
                    }
                }
                "numPr" => {
                    if let Some(paragraph) = self.paragraphs.last_mut() {
                        paragraph.list = true;
                    }
                }
                "r" => self.in_run += 1,
                "t" => self.in_text = true,
                "tab" if self.in_run > 0 => self.push_text("\t"),
                "br" | "cr" if self.in_run > 0 => self.push_text("\n"),
                "tbl" => self.tables.push(Table::default()),
                "tr" => {
                    if let Some(table) = self.tables.last_mut() {
                        table.row = Some(Vec::new());
                    }
                }
                "tc" => {
                    if let Some(table) = self.tables.last_mut() {
                        table.cell = Some(String::new());
                    }
                }
                _ => {}
            },
            Node::End { name } => match name {
                "p" => self.end_paragraph(),
                "r" => self.in_run = self.in_run.saturating_sub(1),
                "t" => self.in_text = false,
                "tc" => {
                    if let Some(table) = self.tables.last_mut() {
                        let cell = table.cell.take().unwrap_or_default();
                        table.row.get_or_insert_with(Vec::new).push(cell);
                    }
                }
                "tr" => {
                    if let Some(table) = self.tables.last_mut()
                        && let Some(row) = table.row.take()
                    {
                        table.rows.push(row);
                    }
                }
                "tbl" => self.end_table(),
                _ => {}
            },
            Node::Text(text) => {
                if self.in_text {
                    self.push_text(&text);
                }
            }
        }
    }

    fn push_text(&mut self, text: &str) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.text.push_str(text);
        }
    }

    fn end_paragraph(&mut self) {
        let Some(paragraph) = self.paragraphs.pop() else {
            return;
        };
        let body = paragraph.text.trim_end();
        let line = match (paragraph.heading, paragraph.list) {
            (Some(level), _) if !body.is_empty() => format!("\n{} {body}\n", "#".repeat(level)),
            (None, true) if !body.is_empty() => format!("- {body}"),
            _ => body.to_owned(),
        };
        self.emit(&line);
    }

    /// Puts finished text where it belongs: the open table cell, else the document.
    fn emit(&mut self, line: &str) {
        if let Some(cell) = self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
            let line = line.trim();
            if !line.is_empty() {
                if !cell.is_empty() {
                    cell.push(' ');
                }
                cell.push_str(line);
            }
        } else {
            self.out.push_str(line);
            self.out.push('\n');
        }
    }

    fn end_table(&mut self) {
        let Some(table) = self.tables.pop() else {
            return;
        };
        if self.tables.is_empty() {
            let rendered = markdown_table(&table.rows);
            self.out.push('\n');
            self.out.push_str(&rendered);
            self.out.push('\n');
        } else {
            // A table inside a cell: its rows flattened into the outer cell.
            let flat: Vec<String> = table.rows.iter().map(|row| row.join(", ")).collect();
            self.emit(&flat.join("; "));
        }
    }
}

fn heading_level(style: &str) -> Option<usize> {
    let lower = style.to_ascii_lowercase();
    if lower == "title" {
        return Some(1);
    }
    let digits = lower.strip_prefix("heading")?.trim();
    digits.parse::<usize>().ok().filter(|n| (1..=6).contains(n))
}

/// Rows as a Markdown table, the first row taken as the header.
fn markdown_table(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    for (index, row) in rows.iter().enumerate() {
        out.push('|');
        for column in 0..width {
            let cell = row.get(column).map_or("", String::as_str);
            out.push(' ');
            out.push_str(&cell.replace('|', "\\|").replace('\n', " "));
            out.push_str(" |");
        }
        out.push('\n');
        if index == 0 {
            out.push('|');
            out.push_str(&" --- |".repeat(width));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_styles_map_to_levels() {
        assert_eq!(heading_level("Heading1"), Some(1));
        assert_eq!(heading_level("heading 3"), Some(3));
        assert_eq!(heading_level("Title"), Some(1));
        assert_eq!(heading_level("Normal"), None);
    }

    #[test]
    fn tables_render_as_markdown() {
        let rows = vec![
            vec!["Name".to_owned(), "Qty".to_owned()],
            vec!["a|b".to_owned()],
        ];
        assert_eq!(
            markdown_table(&rows),
            "| Name | Qty |\n| --- | --- |\n| a\\|b |  |\n"
        );
    }
}
