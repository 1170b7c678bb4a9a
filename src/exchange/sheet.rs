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

/// How much a file may hold once read: far more than an organisation's cases need, far less than
/// would take the server's memory. Positions alone do not bound it (every cell of a sheet may name
/// one long shared string, every comma of a CSV file is a cell), so cells and their text are
/// counted as they are read, and a workbook's archive is checked before it is opened.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub rows: usize,
    pub columns: usize,
    pub cells: usize,
    pub text: usize,
    pub archive: super::archive::Bounds,
}

impl Limits {
    pub const FILES: Limits = Limits {
        rows: 200_000,
        columns: 512,
        cells: 10_000_000,
        text: 128 << 20,
        archive: super::archive::Bounds { unpacked: 128 << 20, entries: 10_000, strings: 4_000_000 },
    };
}

/// Reads a file's first sheet (XLSX) or its records (CSV) as rows of text. Numbers come back as
/// their shortest text (`24`, not `24.0`) and dates as `YYYY-MM-DD`.
pub fn read(format: Format, bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    read_within(format, bytes, Limits::FILES)
}

fn read_within(format: Format, bytes: &[u8], limits: Limits) -> Result<Vec<Vec<String>>, String> {
    let too_many = || format!("a file holds at most {} cells", limits.cells);
    match format {
        Format::Csv => {
            let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
                .map_err(|_| "the CSV file is not UTF-8 text".to_owned())?;
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
            let mut cells = 0usize;
            let mut rows = Vec::new();
            for record in reader.records() {
                let record = record.map_err(|_| "the CSV file is malformed".to_owned())?;
                cells += record.len();
                if cells > limits.cells {
                    return Err(too_many());
                }
                if rows.len() >= limits.rows || record.len() > limits.columns {
                    return Err(format!("a file holds at most {} rows of {} columns", limits.rows, limits.columns));
                }
                rows.push(record.iter().map(str::to_owned).collect());
            }
            Ok(rows)
        }
        Format::Xlsx => {
            use calamine::Reader;
            super::archive::check(bytes, limits.archive)?;
            let mut workbook =
                calamine::Xlsx::new(Cursor::new(bytes)).map_err(|_| "the file is not an XLSX workbook".to_owned())?;
            let first =
                workbook.sheet_names().first().cloned().ok_or_else(|| "the workbook has no sheet".to_owned())?;
            let mut cells =
                workbook.worksheet_cells_reader(&first).map_err(|_| "the first sheet cannot be read".to_owned())?;
            // Cells are read one by one into rows as long as the cells used, never into the grid
            // a sheet's far corner would span: a small file cannot ask for a huge allocation.
            let mut rows: Vec<Vec<String>> = Vec::new();
            let (mut used, mut held) = (0usize, 0usize);
            while let Some(cell) = cells.next_cell().map_err(|_| "the first sheet cannot be read".to_owned())? {
                let (r, c) = cell.get_position();
                let (r, c) = (r as usize, c as usize);
                if r >= limits.rows || c >= limits.columns {
                    return Err(format!("a file holds at most {} rows of {} columns", limits.rows, limits.columns));
                }
                let text = cell_text(&calamine::Data::from(cell.get_value().clone()));
                if text.is_empty() {
                    continue;
                }
                if rows.len() <= r {
                    rows.resize_with(r + 1, Vec::new);
                }
                // A row holds every cell up to its last filled one, empty or not: those are the
                // cells counted, so one far cell per row cannot ask for rows x columns of them.
                let widened = (c + 1).saturating_sub(rows[r].len());
                (used, held) = (used + widened, held + text.len());
                if used > limits.cells {
                    return Err(too_many());
                }
                if held > limits.text {
                    return Err(format!("a file holds at most {} MiB of text", limits.text >> 20));
                }
                if widened > 0 {
                    rows[r].resize(c + 1, String::new());
                }
                rows[r][c] = text;
            }
            Ok(rows)
        }
    }
}

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

    #[test]
    fn a_workbook_declaring_a_vast_string_table_is_refused_not_reserved() {
        use std::io::Write;
        // calamine reserves the declared count before reading a string: 240 TB here, which
        // aborts the process unless the archive is checked first.
        let sst = br#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount="10000000000000"></sst>"#;
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        writer.start_file("xl/sharedStrings.xml", zip::write::SimpleFileOptions::default()).unwrap();
        writer.write_all(sst).unwrap();
        let file = writer.finish().unwrap().into_inner();
        assert!(read(Format::Xlsx, &file).unwrap_err().contains("strings"));
    }

    const SMALL: Limits = Limits {
        rows: 1_000,
        columns: 64,
        cells: 2_000,
        text: 1 << 20,
        archive: super::super::archive::Bounds { unpacked: 8 << 20, entries: 64, strings: 2_000 },
    };

    #[test]
    fn cells_and_their_text_are_counted_as_they_are_read() {
        // One long string, stored once, named by every cell: small as a file, large once read.
        let long = "x".repeat(30_000);
        let cells: Vec<(u32, u16, &str)> = (0..60).map(|r| (r, 0, long.as_str())).collect();
        let shared = workbook(&cells);
        assert!(shared.len() < 50_000, "{}", shared.len());
        assert!(read_within(Format::Xlsx, &shared, SMALL).unwrap_err().contains("MiB of text"));
        assert_eq!(read_within(Format::Xlsx, &workbook(&cells[..5]), SMALL).unwrap().len(), 5);
        // Every comma of a CSV file is a cell.
        let commas = format!("{}\r\n", ",".repeat(40)).repeat(60);
        assert!(read_within(Format::Csv, commas.as_bytes(), SMALL).unwrap_err().contains("cells"));
        assert_eq!(read_within(Format::Csv, &commas.as_bytes()[..commas.len() / 2], SMALL).unwrap().len(), 30);
        let wide = ",".repeat(64);
        assert!(read_within(Format::Csv, wide.as_bytes(), SMALL).unwrap_err().contains("columns"));
        // One cell far to the right in each row is a row of that many cells.
        let far: Vec<(u32, u16, &str)> = (0..40).map(|r| (r, 60, "x")).collect();
        assert!(read_within(Format::Xlsx, &workbook(&far), SMALL).unwrap_err().contains("cells"));
        assert_eq!(read_within(Format::Xlsx, &workbook(&far[..30]), SMALL).unwrap().len(), 30);
    }
}
