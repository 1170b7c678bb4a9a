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
    /// values): each one's key, count (none when withheld), margin and whether it was withheld.
    fn walk<E>(&self, mut each: impl FnMut(&[&str], Option<i64>, i64, bool) -> Result<(), E>) -> Result<(), E> {
        let radix: Vec<usize> = self.grid.iter().map(|v| v.len() + 1).collect();
        let mut key = vec![""; radix.len()];
        for (dense, victims) in self.values.iter().enumerate() {
            let (mut rest, mut mask) = (dense, 0usize);
            for d in (0..radix.len()).rev() {
                let i = rest % radix[d];
                rest /= radix[d];
                key[d] = match self.grid[d].get(i) {
                    Some(v) => v.as_str(),
                    None => {
                        mask |= 1 << d;
                        TOTAL
                    }
                };
            }
            each(&key, *victims, self.margins.get(mask).copied().unwrap_or(0), victims.is_none())?;
        }
        Ok(())
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
}
