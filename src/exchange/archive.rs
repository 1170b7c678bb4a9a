//! What an uploaded workbook unpacks to, checked before the spreadsheet reader opens it. A few
//! hundred bytes of zip can ask for more memory than the server has: calamine reserves the
//! shared-strings table's declared `uniqueCount` before reading a string (an allocation that fails
//! aborts the process; it is not an error the request could answer), and inflates every entry
//! without a limit. Each entry is inflated here once, counted as it comes (a header's sizes may
//! lie), and scanned for declared counts.

use std::io::{Cursor, Read};

const NOT_XLSX: &str = "the file is not an XLSX workbook";

/// How far a workbook may reach.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Bytes all its entries inflate to, together.
    pub unpacked: u64,
    /// Entries (files) in the archive.
    pub entries: usize,
    /// The largest `uniqueCount` a table may declare.
    pub strings: u64,
}

/// Refuses an archive that inflates beyond `bounds`, holds too many entries, or declares more
/// strings than `bounds.strings`; anything a zip reader cannot read is refused as not a workbook.
pub fn check(bytes: &[u8], bounds: Bounds) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| NOT_XLSX.to_owned())?;
    if archive.len() > bounds.entries {
        return Err(format!("a workbook holds at most {} files", bounds.entries));
    }
    let (mut total, mut strings): (u64, u64) = (0, 0);
    let mut chunk = vec![0u8; 64 << 10];
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|_| NOT_XLSX.to_owned())?;
        let mut declared = Declared::default();
        let mut tags = Strings::default();
        loop {
            let n = entry.read(&mut chunk).map_err(|_| NOT_XLSX.to_owned())?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > bounds.unpacked {
                return Err(format!("a workbook unpacks to at most {} MiB", bounds.unpacked >> 20));
            }
            chunk[..n].iter().for_each(|&b| {
                declared.feed(b);
                tags.feed(b);
            });
            strings += tags.take();
            if declared.largest > bounds.strings || strings > bounds.strings {
                return Err(format!("a workbook holds at most {} strings", bounds.strings));
            }
        }
    }
    Ok(())
}

/// The largest value of a `uniqueCount` attribute in a stream, read a byte at a time so that an
/// attribute split between two chunks is still seen. Only the attribute as XML writes it
/// (`uniqueCount`, optional spaces, `=`, spaces, a quote, digits) is read, and that is the only form
/// calamine acts on; its digits are counted up to the first that is not one, saturating.
#[derive(Debug, Default)]
struct Declared {
    state: State,
    value: u64,
    largest: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// How many bytes of the name have matched.
    Name(usize),
    BeforeEquals,
    AfterEquals,
    Digits,
}

impl Default for State {
    fn default() -> State {
        State::Name(0)
    }
}

const NAME: &[u8] = b"uniqueCount";

/// Counts the start tags whose local name is `si` (`<si>`, `<si/>`, `<x:si ...>`): each is a
/// string calamine keeps, empty ones too, whatever count the table declares.
#[derive(Debug, Default)]
struct Strings {
    /// Inside a tag's name, and the name so far (`None` once it cannot be `si`).
    name: Option<Option<Vec<u8>>>,
    counted: u64,
}

impl Strings {
    fn feed(&mut self, b: u8) {
        match &mut self.name {
            None if b == b'<' => self.name = Some(Some(Vec::new())),
            None => {}
            Some(name) if b.is_ascii_whitespace() || b == b'>' || b == b'/' => {
                // `</si>` ends on its first byte: an empty name.
                let local = name.as_deref().map(|n| n.rsplit(|&c| c == b':').next().unwrap_or_default());
                if local == Some(b"si".as_slice()) {
                    self.counted += 1;
                }
                self.name = None;
            }
            Some(name) => match name {
                Some(bytes) if bytes.len() < 32 => bytes.push(b),
                _ => *name = None,
            },
        }
    }

    fn take(&mut self) -> u64 {
        std::mem::take(&mut self.counted)
    }
}

impl Declared {
    fn feed(&mut self, b: u8) {
        self.state = match self.state {
            State::Name(matched) => Self::name_from(matched, b),
            State::BeforeEquals if b.is_ascii_whitespace() => State::BeforeEquals,
            State::BeforeEquals if b == b'=' => State::AfterEquals,
            State::AfterEquals if b.is_ascii_whitespace() => State::AfterEquals,
            State::AfterEquals if b == b'"' || b == b'\'' => {
                self.value = 0;
                State::Digits
            }
            State::Digits if b.is_ascii_digit() => {
                self.value = self.value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                self.largest = self.largest.max(self.value);
                State::Digits
            }
            State::BeforeEquals | State::AfterEquals | State::Digits => Self::name_from(0, b),
        };
    }

    /// After `matched` bytes of the name, the next byte `b`. An attribute's name follows a space,
    /// which starts the match afresh, so a restart at a mismatch finds every name calamine reads.
    fn name_from(matched: usize, b: u8) -> State {
        if b == NAME[matched] {
            if matched + 1 == NAME.len() { State::BeforeEquals } else { State::Name(matched + 1) }
        } else if b == NAME[0] {
            State::Name(1)
        } else {
            State::Name(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const SMALL: Bounds = Bounds { unpacked: 1 << 20, entries: 16, strings: 1_000 };

    fn zipped(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn largest(text: &str) -> u64 {
        let mut declared = Declared::default();
        text.bytes().for_each(|b| declared.feed(b));
        declared.largest
    }

    #[test]
    fn declared_counts_are_read_as_xml_writes_them() {
        assert_eq!(largest(r#"<sst count="9" uniqueCount="12">"#), 12);
        assert_eq!(largest("<sst uniqueCount = '7' x:uniqueCount=\"99\">"), 99);
        assert_eq!(largest(r#"<sst uniqueCount ="123456789012345678901234567890">"#), u64::MAX);
        // Not an attribute calamine reads (its name is longer), so not one to look for either.
        assert_eq!(largest(r#"<sst uniqueCouniqueCount="5" count="3">"#), 0);
        assert_eq!(largest(r#"<sst uniqueCount="">"#), 0);
        assert_eq!(largest(r#"<sst count="77">"#), 0);
    }

    #[test]
    fn strings_are_counted_as_calamine_keeps_them() {
        let mut strings = Strings::default();
        let xml = r#"<sst uniqueCount="1"><si><t>a</t></si><si/><x:si a="1"></x:si><sit/><s/></sst>"#;
        xml.bytes().for_each(|b| strings.feed(b));
        assert_eq!(strings.take(), 3);
        let empty: Vec<u8> = b"<sst>".iter().chain(b"<si/>".repeat(1_500).iter()).copied().collect();
        let file = zipped(&[("xl/sharedStrings.xml", &empty)]);
        assert!(check(&file, SMALL).unwrap_err().contains("strings"), "undeclared strings count too");
    }

    #[test]
    fn a_declared_count_beyond_the_bound_is_refused_before_any_reader_reserves_it() {
        // A few hundred bytes that would make calamine reserve 240 TB, aborting the process.
        let sst = br#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount="10000000000000"></sst>"#;
        let file = zipped(&[("xl/sharedStrings.xml", sst)]);
        assert!(file.len() < 1_000);
        assert!(check(&file, SMALL).unwrap_err().contains("strings"));
        let fine = zipped(&[("xl/sharedStrings.xml", br#"<sst uniqueCount="10"></sst>"#)]);
        assert_eq!(check(&fine, SMALL), Ok(()));
    }

    #[test]
    fn an_archive_that_inflates_beyond_the_bound_is_refused() {
        let zeros = vec![0u8; 3 << 20];
        let bomb = zipped(&[("xl/worksheets/sheet1.xml", &zeros)]);
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        assert!(check(&bomb, SMALL).unwrap_err().contains("unpacks"));
        // Counted over all entries: two halves are as much as one whole.
        let half = vec![0u8; 600 << 10];
        let halves = zipped(&[("a.xml", &half), ("b.xml", &half)]);
        assert!(check(&halves, SMALL).unwrap_err().contains("unpacks"));
        assert_eq!(check(&zipped(&[("a.xml", &half)]), SMALL), Ok(()));
        let many: Vec<(String, &[u8])> = (0..17).map(|i| (format!("{i}.xml"), &b"x"[..])).collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert!(check(&zipped(&many), SMALL).unwrap_err().contains("files"));
        assert_eq!(check(b"PK\x03\x04 not a zip", SMALL).unwrap_err(), NOT_XLSX);
    }
}
