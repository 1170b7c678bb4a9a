//! Rows of text cells in and out of CSV and XLSX files.

use std::io::Cursor;

/// An XLSX workbook of one sheet, every cell written as text (so nothing in it is a formula).
pub fn xlsx(rows: &[Vec<String>]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("HTCDS")?;
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if !cell.is_empty() {
                sheet.write_string(r as u32, c as u16, cell)?;
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    workbook.save_to_buffer()
}

/// What an uploaded file holds, as rows of text cells.
pub enum Format {
    Csv,
    Xlsx,
}

/// Reads a file's first sheet (XLSX) or its records (CSV) as rows of text. Numbers come back as
/// their shortest text (`24`, not `24.0`) and dates as `YYYY-MM-DD`.
pub fn read(format: Format, bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    match format {
        Format::Csv => {
            let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
                .map_err(|_| "the CSV file is not UTF-8 text".to_owned())?;
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
            reader
                .records()
                .map(|r| {
                    r.map(|rec| rec.iter().map(str::to_owned).collect())
                        .map_err(|_| "the CSV file is malformed".to_owned())
                })
                .collect()
        }
        Format::Xlsx => {
            use calamine::Reader;
            let mut workbook =
                calamine::Xlsx::new(Cursor::new(bytes)).map_err(|_| "the file is not an XLSX workbook".to_owned())?;
            let first =
                workbook.sheet_names().first().cloned().ok_or_else(|| "the workbook has no sheet".to_owned())?;
            let mut cells =
                workbook.worksheet_cells_reader(&first).map_err(|_| "the first sheet cannot be read".to_owned())?;
            // Cells are read one by one into rows as long as the cells used, never into the grid
            // a sheet's far corner would span: a small file cannot ask for a huge allocation.
            let mut rows: Vec<Vec<String>> = Vec::new();
            while let Some(cell) = cells.next_cell().map_err(|_| "the first sheet cannot be read".to_owned())? {
                let (r, c) = cell.get_position();
                let (r, c) = (r as usize, c as usize);
                if r >= MAX_ROWS || c >= MAX_COLUMNS {
                    return Err(format!("a sheet holds at most {MAX_ROWS} rows of {MAX_COLUMNS} columns"));
                }
                let text = cell_text(&calamine::Data::from(cell.get_value().clone()));
                if text.is_empty() {
                    continue;
                }
                if rows.len() <= r {
                    rows.resize_with(r + 1, Vec::new);
                }
                if rows[r].len() <= c {
                    rows[r].resize(c + 1, String::new());
                }
                rows[r][c] = text;
            }
            Ok(rows)
        }
    }
}

/// Far more than an organisation's cases, far less than a sheet's limits.
const MAX_ROWS: usize = 200_000;
const MAX_COLUMNS: usize = 512;

fn cell_text(cell: &calamine::Data) -> String {
    use calamine::Data;
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Data::DateTime(d) => d.as_datetime().map(|t| t.date().to_string()).unwrap_or_default(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workbook(cells: &[(u32, u16, &str)]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (r, c, v) in cells {
            sheet.write_string(*r, *c, *v).unwrap();
        }
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn a_workbook_reads_as_rows_of_text() {
        let rows = read(Format::Xlsx, &workbook(&[(0, 0, "prs_Gender"), (0, 2, "cas_Status"), (2, 1, "x")])).unwrap();
        assert_eq!(rows[0], vec!["prs_Gender", "", "cas_Status"]);
        assert!(rows[1].is_empty());
        assert_eq!(rows[2], vec!["", "x"]);
        assert_eq!(read(Format::Csv, b"\xEF\xBB\xBFa,b\r\n1,2\r\n").unwrap(), vec![vec!["a", "b"], vec!["1", "2"]]);
    }

    #[test]
    fn a_far_corner_is_refused_not_allocated() {
        // Two cells, a few kilobytes: read as a grid it would be a million rows.
        let far = workbook(&[(0, 0, "prs_Gender"), (1_000_000, 0, "x")]);
        assert!(far.len() < 20_000);
        assert!(read(Format::Xlsx, &far).unwrap_err().contains("at most"));
        let wide = workbook(&[(0, 16_000, "x")]);
        assert!(read(Format::Xlsx, &wide).is_err());
    }
}
