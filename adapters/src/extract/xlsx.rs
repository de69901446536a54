//! Excel workbooks (xlsx): each worksheet under a `## Sheet: name` heading, its used rows as CSV
//! lines (values quoted as CSV needs, dates as ISO 8601, whole numbers without `.0`). Empty rows
//! are left out; columns keep their positions from the first used column.

use std::io::Cursor;

use calamine::{DataRef, Reader, SheetType, SheetVisible, Xlsx};

use super::{
    ExtractError, Format,
    ooxml::{self, Package},
};

/// Most cells read from one workbook; the rest is cut with a note.
const MAX_CELLS: usize = 1_000_000;
/// Most columns rendered per row.
const MAX_COLUMNS: u32 = 1_000;

pub(super) fn text(bytes: &[u8]) -> Result<String, ExtractError> {
    // calamine unpacks parts without a limit of its own: check the real sizes first.
    Package::open(Format::Xlsx, bytes)?.check_sizes()?;
    let mut workbook: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|error: calamine::XlsxError| ooxml::corrupt(Format::Xlsx, error.to_string()))?;
    let sheets: Vec<_> = workbook
        .sheets_metadata()
        .iter()
        .filter(|sheet| sheet.typ == SheetType::WorkSheet)
        .map(|sheet| (sheet.name.clone(), sheet.visible != SheetVisible::Visible))
        .collect();
    let mut out = String::new();
    let mut budget = MAX_CELLS;
    for (name, hidden) in sheets {
        out.push_str(&format!(
            "## Sheet: {name}{}\n\n",
            if hidden { " (hidden)" } else { "" }
        ));
        let mut cells = Vec::new();
        let mut cut = false;
        {
            let mut reader = workbook
                .worksheet_cells_reader(&name)
                .map_err(|error| ooxml::corrupt(Format::Xlsx, error.to_string()))?;
            while let Some(cell) = reader
                .next_cell()
                .map_err(|error| ooxml::corrupt(Format::Xlsx, error.to_string()))?
            {
                let Some(value) = render(cell.get_value()) else {
                    continue;
                };
                if budget == 0 {
                    cut = true;
                    break;
                }
                budget -= 1;
                let (row, column) = cell.get_position();
                cells.push((row, column, value));
            }
        }
        cells.sort_by_key(|&(row, column, _)| (row, column));
        out.push_str(&csv_rows(&cells));
        if cut {
            out.push_str(&format!(
                "[cut: more than {MAX_CELLS} cells in this workbook]\n"
            ));
        }
        out.push('\n');
        if cut {
            break;
        }
    }
    Ok(out.trim_end().to_owned())
}

/// Rows of `(row, column, value)` cells, sorted, as CSV lines.
fn csv_rows(cells: &[(u32, u32, String)]) -> String {
    let Some(first_column) = cells.iter().map(|&(_, column, _)| column).min() else {
        return String::new();
    };
    let mut out = String::new();
    let mut index = 0;
    while index < cells.len() {
        let row = cells[index].0;
        let mut column = first_column;
        let mut line = String::new();
        while index < cells.len() && cells[index].0 == row {
            let (_, at, value) = &cells[index];
            index += 1;
            if *at >= first_column.saturating_add(MAX_COLUMNS) {
                continue;
            }
            while column < *at {
                line.push(',');
                column += 1;
            }
            if column > *at {
                continue; // a duplicate position in a malformed sheet
            }
            line.push_str(&csv_field(value));
            // The next cell in this row needs a separator before it.
            line.push(',');
            column += 1;
        }
        line.pop();
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// A cell's value as text; `None` for an empty cell.
fn render(value: &DataRef<'_>) -> Option<String> {
    let text = match value {
        DataRef::Empty => return None,
        DataRef::Int(n) => n.to_string(),
        DataRef::Float(f) => number(*f),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Bool(true) => "TRUE".into(),
        DataRef::Bool(false) => "FALSE".into(),
        DataRef::DateTime(moment) if moment.is_duration() => duration(moment.as_f64()),
        DataRef::DateTime(moment) => {
            let (year, month, day, hour, minute, second, _) = moment.to_ymd_hms_milli();
            let serial = moment.as_f64();
            if serial.fract() == 0.0 {
                format!("{year:04}-{month:02}-{day:02}")
            } else if serial < 1.0 {
                format!("{hour:02}:{minute:02}:{second:02}")
            } else {
                format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
            }
        }
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(error) => error.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

/// A duration in days as `h:mm:ss`.
fn duration(days: f64) -> String {
    let total = (days * 86_400.0).round() as i64;
    let sign = if total < 0 { "-" } else { "" };
    let total = total.abs();
    format!(
        "{sign}{}:{:02}:{:02}",
        total / 3600,
        (total / 60) % 60,
        total % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_column_positions_and_quote() {
        let cells = vec![
            (0, 1, "Name".to_owned()),
            (0, 2, "Note".to_owned()),
            (2, 1, "Bob".to_owned()),
            (2, 3, "a, \"b\"".to_owned()),
        ];
        assert_eq!(csv_rows(&cells), "Name,Note\nBob,,\"a, \"\"b\"\"\"\n");
    }

    #[test]
    fn numbers_and_durations_read_naturally() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(duration(1.5), "36:00:00");
    }
}
