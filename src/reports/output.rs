//! What a report run answers, in JSON or RFC 4180 CSV, and the form a guarded release is kept in
//! the ledger, so a repeated question is answered with the very same numbers in either format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::catalogue::Dimension;
use super::measure::Mechanism;

pub const TOTAL: &str = "_total";

/// One entry of the table: a value per dimension (`_total` for a total over it), the count, and
/// its margin. Every cell has the same fields, released or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Cell {
    /// Dimension values, in the order of the report's `dimensions`.
    pub key: Vec<String>,
    /// Distinct victims (noisy in a guarded release); null when withheld.
    pub victims: Option<i64>,
    /// Half-width of the 95% interval around `victims` for the noise added (0 for exact counts).
    /// Applies to withheld cells too, whose noisy count was below k.
    pub margin: i64,
    /// True when the privacy guard withheld the count (its noisy count was below k).
    pub withheld: bool,
}

/// The noise of the release and the alternative that was not chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoiseStatement {
    pub mechanism: Mechanism,
    /// Standard deviation of the noise on each measured entry.
    pub noise_sd: f64,
}

/// What was done to produce this table. In a guarded release every field follows from the report,
/// its parameters and the deployment's settings, never from the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PrivacyStatement {
    /// False only for a caseworker's report on their own organisation (exact counts).
    pub guarded: bool,
    pub population: String,
    /// Counts whose noisy value is below k are withheld (1 for exact counts).
    pub k: i64,
    /// Entries listed (every cell and total of the grid, withheld or not).
    pub cells: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<NoiseStatement>,
    /// The other mechanism, calibrated to the same privacy cost, for comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternative: Option<NoiseStatement>,
    /// Privacy cost of this release, as zero-concentrated DP rho, for adding or removing one
    /// victim with all their records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// The same cost as (epsilon, delta)-DP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// Measured entries one victim can move (each by one): the L1 and squared L2 sensitivity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<u64>,
    /// Most values one victim counts under, per multi-valued dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<BTreeMap<String, u32>>,
    /// Which entries were measured and how the rest follow from them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

impl PrivacyStatement {
    /// Exact counts: no guard applied.
    pub fn exact(population: &str, cells: usize) -> PrivacyStatement {
        PrivacyStatement {
            guarded: false,
            population: population.to_owned(),
            k: 1,
            cells,
            noise: None,
            alternative: None,
            rho: None,
            epsilon: None,
            delta: None,
            sensitivity: None,
            bounds: None,
            method: None,
        }
    }
}

/// The release this answer is: when, from which budget period, and whether it was recorded
/// earlier (a repeated question costs nothing).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReleaseInfo {
    pub id: i64,
    pub released_at: chrono::DateTime<chrono::Utc>,
    /// First day of the budget period the release was paid from.
    pub period: chrono::NaiveDate,
    /// True when this question was answered before in this period: the recorded release, free.
    pub repeat: bool,
    /// What your organisation may still spend this period (zCDP rho).
    pub budget_left: f64,
    pub budget_renews_at: chrono::DateTime<chrono::Utc>,
}

/// A report's table.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportResult {
    pub report: String,
    pub title: String,
    pub dimensions: Vec<Dimension>,
    /// First month counted (by month of identification), YYYY-MM; absent: no lower limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Last month counted, YYYY-MM; absent: no upper limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Every cell and every total (a `_total` value) of the table.
    #[schema(value_type = Vec<Cell>)]
    pub cells: Cells,
    pub privacy: PrivacyStatement,
    /// Present for guarded releases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseInfo>,
}

/// A guarded release as the ledger keeps it: the grid's values per dimension, one count per entry
/// in grid order (null when withheld), the margin per pattern of totals, and the statement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRelease {
    pub grid: Vec<Vec<String>>,
    pub values: Vec<Option<i64>>,
    /// Indexed by a bit mask of the dimensions that are totals (bit i: dimension i).
    pub margins: Vec<i64>,
    pub privacy: PrivacyStatement,
}

impl StoredRelease {
    /// Walks the cells in grid order (values sorted as listed, each dimension's total after its
    /// values): each one's key as an index per dimension (its number of values for the total),
    /// count (none when withheld), margin and whether it was withheld.
    fn walk_indexed<E>(
        &self,
        mut each: impl FnMut(&[usize], Option<i64>, i64, bool) -> Result<(), E>,
    ) -> Result<(), E> {
        let radix: Vec<usize> = self.grid.iter().map(|v| v.len() + 1).collect();
        let mut key = vec![0; radix.len()];
        for (dense, victims) in self.values.iter().enumerate() {
            let (mut rest, mut mask) = (dense, 0usize);
            for d in (0..radix.len()).rev() {
                key[d] = rest % radix[d];
                rest /= radix[d];
                if key[d] == self.grid[d].len() {
                    mask |= 1 << d;
                }
            }
            each(&key, *victims, self.margins.get(mask).copied().unwrap_or(0), victims.is_none())?;
        }
        Ok(())
    }

    /// As `walk_indexed`, with each key's values.
    fn walk<E>(&self, mut each: impl FnMut(&[&str], Option<i64>, i64, bool) -> Result<(), E>) -> Result<(), E> {
        let mut key = vec![""; self.grid.len()];
        self.walk_indexed(|index, victims, margin, withheld| {
            for (d, &i) in index.iter().enumerate() {
                key[d] = self.grid[d].get(i).map_or(TOTAL, String::as_str);
            }
            each(&key, victims, margin, withheld)
        })
    }

    /// The cells in grid order, each with strings of its own.
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::with_capacity(self.values.len());
        let Ok(()) = self.walk::<std::convert::Infallible>(|key, victims, margin, withheld| {
            cells.push(Cell { key: key.iter().map(|k| (*k).to_owned()).collect(), victims, margin, withheld });
            Ok(())
        });
        cells
    }
}

/// The cells of an answer: listed one by one (a caseworker's exact figures), or a guarded release
/// as the ledger keeps it, written straight from its grid and counts. The widest tables list
/// thousands of cells; a release is not first copied into a `Cell` with strings of its own for
/// each (D134).
#[derive(Debug, Clone)]
pub enum Cells {
    Listed(Vec<Cell>),
    Released(Box<StoredRelease>),
}

impl Cells {
    pub fn len(&self) -> usize {
        match self {
            Cells::Listed(cells) => cells.len(),
            Cells::Released(stored) => stored.values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Walks the cells in order: key, count, margin, withheld.
    fn walk<E>(&self, mut each: impl FnMut(&[&str], Option<i64>, i64, bool) -> Result<(), E>) -> Result<(), E> {
        match self {
            Cells::Listed(cells) => {
                let mut key: Vec<&str> = Vec::new();
                for cell in cells {
                    key.clear();
                    key.extend(cell.key.iter().map(String::as_str));
                    each(&key, cell.victims, cell.margin, cell.withheld)?;
                }
                Ok(())
            }
            Cells::Released(stored) => stored.walk(each),
        }
    }

    /// The cells, each with strings of its own (for charts).
    pub fn to_vec(&self) -> Vec<Cell> {
        match self {
            Cells::Listed(cells) => cells.clone(),
            Cells::Released(stored) => stored.cells(),
        }
    }
}

/// A cell as written: the same fields as [`Cell`], borrowed.
#[derive(Serialize)]
struct CellRef<'a> {
    key: &'a [&'a str],
    victims: Option<i64>,
    margin: i64,
    withheld: bool,
}

impl Serialize for Cells {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        self.walk(|key, victims, margin, withheld| seq.serialize_element(&CellRef { key, victims, margin, withheld }))?;
        seq.end()
    }
}

/// The answer as JSON: exactly what `serde_json::to_vec(result)` writes (a test holds the two
/// equal), with the cells written by hand. A guarded release of the widest tables lists thousands
/// of cells, and serde's field-by-field path (every field name escaped again in every cell) took
/// 40% of the CPU of a repeated question; here each distinct value is escaped once (D135).
pub fn json(result: &ReportResult) -> serde_json::Result<Vec<u8>> {
    // Destructured, so that a field added to the answer cannot be forgotten here.
    let ReportResult { report, title, dimensions, from, to, cells, privacy, release } = result;
    let mut out = Vec::with_capacity(1024 + cells.len() * 64);
    field(&mut out, b"{\"report\":", report)?;
    field(&mut out, b",\"title\":", title)?;
    field(&mut out, b",\"dimensions\":", dimensions)?;
    if let Some(from) = from {
        field(&mut out, b",\"from\":", from)?;
    }
    if let Some(to) = to {
        field(&mut out, b",\"to\":", to)?;
    }
    out.extend_from_slice(b",\"cells\":");
    cells.write_json(&mut out)?;
    field(&mut out, b",\"privacy\":", privacy)?;
    if let Some(release) = release {
        field(&mut out, b",\"release\":", release)?;
    }
    out.push(b'}');
    Ok(out)
}

/// Writes `lead` (the punctuation and the quoted name) and then `value` as serde_json writes it.
fn field(out: &mut Vec<u8>, lead: &[u8], value: &impl serde::Serialize) -> serde_json::Result<()> {
    out.extend_from_slice(lead);
    serde_json::to_writer(out, value)
}

impl Cells {
    /// The cells as a JSON array, as [`Cell`]'s derived serialisation writes them. Strings are
    /// escaped by serde_json; only the punctuation around them is written here.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.push(b'[');
        match self {
            Cells::Listed(cells) => {
                for (n, cell) in cells.iter().enumerate() {
                    open_cell(out, n);
                    for (i, value) in cell.key.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        serde_json::to_writer(&mut *out, value)?;
                    }
                    close_cell(out, cell.victims, cell.margin, cell.withheld);
                }
            }
            Cells::Released(stored) => {
                // Each dimension's values, and its total last, escaped once for all the cells.
                let escaped = stored
                    .grid
                    .iter()
                    .map(|values| values.iter().map(String::as_str).chain([TOTAL]).map(serde_json::to_vec).collect())
                    .collect::<serde_json::Result<Vec<Vec<Vec<u8>>>>>()?;
                let mut n = 0;
                let Ok(()) = stored.walk_indexed::<std::convert::Infallible>(|index, victims, margin, withheld| {
                    open_cell(out, n);
                    n += 1;
                    for (d, &i) in index.iter().enumerate() {
                        if d > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(&escaped[d][i]);
                    }
                    close_cell(out, victims, margin, withheld);
                    Ok(())
                });
            }
        }
        out.push(b']');
        Ok(())
    }
}

fn open_cell(out: &mut Vec<u8>, n: usize) {
    if n > 0 {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"key\":[");
}

fn close_cell(out: &mut Vec<u8>, victims: Option<i64>, margin: i64, withheld: bool) {
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(b"],\"victims\":");
    match victims {
        Some(n) => out.extend_from_slice(number.format(n).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"margin\":");
    out.extend_from_slice(number.format(margin).as_bytes());
    out.extend_from_slice(if withheld { b",\"withheld\":true}" } else { b",\"withheld\":false}" });
}

/// RFC 4180: a header row, CRLF line ends, fields quoted when they need it.
pub fn csv(result: &ReportResult) -> String {
    fn field(value: &str) -> String {
        // A leading = + - @ would make a spreadsheet evaluate the cell.
        let value = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_owned() };
        if value.contains([',', '"', '\r', '\n']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
    }
    let mut out = String::new();
    let mut header: Vec<String> = result.dimensions.iter().map(|d| d.to_string()).collect();
    header.extend(["victims", "margin", "withheld"].map(String::from));
    out.push_str(&header.iter().map(|h| field(h)).collect::<Vec<_>>().join(","));
    out.push_str("\r\n");
    let Ok(()) = result.cells.walk::<std::convert::Infallible>(|key, victims, margin, withheld| {
        let mut row: Vec<String> = key.iter().map(|v| field(v)).collect();
        row.push(victims.map(|n| n.to_string()).unwrap_or_default());
        row.push(margin.to_string());
        row.push(withheld.to_string());
        out.push_str(&row.join(","));
        out.push_str("\r\n");
        Ok(())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_cells_come_back_in_grid_order_with_their_margins() {
        let stored = StoredRelease {
            grid: vec![vec!["a".into(), "b".into()], vec!["x".into()]],
            values: vec![Some(12), Some(12), None, None, Some(20), Some(20)],
            margins: vec![5, 7, 9, 11],
            privacy: PrivacyStatement::exact("p", 6),
        };
        let cells = stored.cells();
        let keys: Vec<Vec<String>> = cells.iter().map(|c| c.key.clone()).collect();
        assert_eq!(
            keys,
            [["a", "x"], ["a", "_total"], ["b", "x"], ["b", "_total"], ["_total", "x"], ["_total", "_total"]]
        );
        assert_eq!(cells.iter().map(|c| c.margin).collect::<Vec<_>>(), [5, 9, 5, 9, 7, 11]);
        assert!(cells[2].withheld && cells[2].victims.is_none());
    }

    #[test]
    fn a_release_is_written_exactly_as_its_cells_would_be() {
        let stored = StoredRelease {
            grid: vec![vec!["PER".into(), "\"quoted\"".into()], vec!["J".into(), "A".into()]],
            values: vec![Some(3), None, Some(40), Some(0), Some(7), None, None, Some(12), Some(99)],
            margins: vec![5, 7, 9, 11],
            privacy: PrivacyStatement::exact("p", 9),
        };
        let written = serde_json::to_string(&Cells::Released(Box::new(stored.clone()))).unwrap();
        assert_eq!(written, serde_json::to_string(&stored.cells()).unwrap());
        assert_eq!(written, serde_json::to_string(&Cells::Listed(stored.cells())).unwrap());
        assert!(written.starts_with(r#"[{"key":["PER","J"],"victims":3,"margin":5,"withheld":false},"#), "{written}");
    }

    fn answer(cells: Cells, span: bool, release: bool) -> ReportResult {
        let at = chrono::DateTime::from_timestamp(1_790_000_000, 123_000_000).unwrap();
        ReportResult {
            report: "route-\"corridors\"".into(),
            title: "Routes \\ legs \u{7}".into(),
            dimensions: vec![Dimension::Citizenship, Dimension::CountryOfExploitation],
            from: span.then(|| "2024-01".into()),
            to: span.then(|| "2026-11".into()),
            cells,
            privacy: PrivacyStatement::exact("caseworker's \"own\"", 4),
            release: release.then(|| ReleaseInfo {
                id: 7,
                released_at: at,
                period: at.date_naive(),
                repeat: true,
                budget_left: 0.125,
                budget_renews_at: at,
            }),
        }
    }

    fn written_both_ways(result: &ReportResult) -> (String, String) {
        let by_hand = String::from_utf8(json(result).unwrap()).unwrap();
        (by_hand, serde_json::to_string(result).unwrap())
    }

    #[test]
    fn the_answer_is_written_exactly_as_serde_would_write_it() {
        let stored = StoredRelease {
            grid: vec![vec!["PER".into(), "\"q\" \\ \u{1}\n".into(), "São Tomé ☃".into()], vec!["J".into()]],
            values: vec![Some(3), None, Some(-40), Some(0), Some(i64::MAX), None, Some(12), Some(99)],
            margins: vec![5, 7, 9, 11],
            privacy: PrivacyStatement::exact("p", 8),
        };
        for (span, release) in [(false, false), (true, true), (true, false), (false, true)] {
            let released = answer(Cells::Released(Box::new(stored.clone())), span, release);
            let (by_hand, by_serde) = written_both_ways(&released);
            assert_eq!(by_hand, by_serde);
            let listed = answer(Cells::Listed(stored.cells()), span, release);
            let (by_hand, by_serde_listed) = written_both_ways(&listed);
            assert_eq!(by_hand, by_serde_listed, "listed cells");
            assert_eq!(by_hand, by_serde, "a release and its cells listed write the same bytes");
        }
        let empty = answer(Cells::Listed(Vec::new()), false, false);
        let (by_hand, by_serde) = written_both_ways(&empty);
        assert_eq!(by_hand, by_serde);
        assert!(by_hand.contains(r#""cells":[],"#), "{by_hand}");
    }

    proptest::proptest! {
        #[test]
        fn any_release_is_written_as_serde_writes_it(
            grid in proptest::collection::vec(proptest::collection::vec(".{0,6}", 0..4), 0..4),
            seed in proptest::collection::vec(proptest::option::of(proptest::num::i64::ANY), 1..64),
            margins in proptest::collection::vec(0i64..1000, 0..9),
        ) {
            let entries: usize = grid.iter().map(|v| v.len() + 1).product();
            let values = (0..entries).map(|i| seed[i % seed.len()]).collect();
            let stored = StoredRelease { grid, values, margins, privacy: PrivacyStatement::exact("p", entries) };
            let released = answer(Cells::Released(Box::new(stored.clone())), true, true);
            let (by_hand, by_serde) = written_both_ways(&released);
            proptest::prop_assert_eq!(&by_hand, &by_serde);
            let listed = answer(Cells::Listed(stored.cells()), true, true);
            let (by_hand_listed, by_serde_listed) = written_both_ways(&listed);
            proptest::prop_assert_eq!(&by_hand_listed, &by_serde_listed);
            proptest::prop_assert_eq!(by_hand_listed, by_serde);
        }
    }
}
