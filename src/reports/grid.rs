//! The grid of a guarded release: every value of every dimension (and a total over each), fixed
//! by the report and its parameters, never by the data. Time dimensions take their values from
//! the window asked for; when a report has one and no window is given, the default window ends
//! with the current month, so the grid is still fixed in advance.

use chrono::{Datelike, Months, NaiveDate};

use super::catalogue::{Dimension, TimeGrain};
use super::counting::Filters;
use crate::error::{ApiError, FieldError};

/// The most entries (cells and totals) one table may have: finer tables are refused with a hint
/// to choose a coarser level, rather than answered with megabytes of withheld cells.
pub const MAX_ENTRIES: usize = 100_000;

/// How many periods a time dimension lists by default, and at most.
fn span(grain: TimeGrain) -> (u32, u32) {
    match grain {
        TimeGrain::Month => (36, 120),
        TimeGrain::Quarter => (12, 40),
        TimeGrain::Year => (10, 30),
    }
}

fn months_in(grain: TimeGrain) -> u32 {
    match grain {
        TimeGrain::Month => 1,
        TimeGrain::Quarter => 3,
        TimeGrain::Year => 12,
    }
}

/// The first day of the period of `grain` that holds `day`.
fn period_start(day: NaiveDate, grain: TimeGrain) -> NaiveDate {
    let month = match grain {
        TimeGrain::Month => day.month(),
        TimeGrain::Quarter => (day.month() - 1) / 3 * 3 + 1,
        TimeGrain::Year => 1,
    };
    NaiveDate::from_ymd_opt(day.year(), month, 1).expect("a valid first day")
}

/// Completes the window of a report with a time dimension: `to` defaults to the current month,
/// `from` to the start of the default span before it; the window may hold at most the maximum
/// number of periods. Reports without a time dimension keep the window as given.
pub fn resolve_window(dims: &[Dimension], mut filters: Filters, today: NaiveDate) -> Result<Filters, ApiError> {
    let Some(grain) = dims.iter().find_map(|d| d.time_grain()) else {
        return Ok(filters);
    };
    let (default, max) = span(grain);
    let this_month = period_start(today, TimeGrain::Month);
    let to_exclusive = filters.to_exclusive.unwrap_or(this_month + Months::new(1));
    let last = to_exclusive - Months::new(1);
    let from =
        filters.from.unwrap_or_else(|| period_start(last, grain) - Months::new(months_in(grain) * (default - 1)));
    if periods(from, to_exclusive, grain).len() > max as usize {
        return Err(ApiError::Validation(vec![FieldError::new(
            "from",
            format!("this report lists at most {max} periods: narrow the window"),
        )]));
    }
    filters.from = Some(from);
    filters.to_exclusive = Some(to_exclusive);
    Ok(filters)
}

/// The labels of the periods of `grain` that overlap `[from, to_exclusive)`, as the SQL writes them.
fn periods(from: NaiveDate, to_exclusive: NaiveDate, grain: TimeGrain) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = period_start(from, grain);
    while at < to_exclusive {
        out.push(match grain {
            TimeGrain::Month => at.format("%Y-%m").to_string(),
            TimeGrain::Quarter => format!("{}-Q{}", at.year(), (at.month() - 1) / 3 + 1),
            TimeGrain::Year => at.year().to_string(),
        });
        at = at + Months::new(months_in(grain));
    }
    out
}

/// The values each dimension lists (totals not included), for a window already resolved.
pub fn values(dims: &[Dimension], filters: &Filters) -> Result<Vec<Vec<String>>, ApiError> {
    let values: Vec<Vec<String>> = dims
        .iter()
        .map(|d| match (d.values(), d.time_grain()) {
            (Some(values), _) => Ok(values),
            (None, Some(grain)) => match (filters.from, filters.to_exclusive) {
                (Some(from), Some(to)) => Ok(periods(from, to, grain)),
                _ => Err(ApiError::Internal("a time dimension without a resolved window".into())),
            },
            (None, None) => Err(ApiError::Internal(format!("dimension {d} has no values"))),
        })
        .collect::<Result<_, _>>()?;
    let entries = values.iter().map(|v| v.len() + 1).try_fold(1usize, |acc, n| acc.checked_mul(n));
    if entries.is_none_or(|n| n > MAX_ENTRIES) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "level",
            format!("this table would list more than {MAX_ENTRIES} cells: choose a coarser level or fewer dimensions"),
        )]));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn default_windows_end_with_the_current_month() {
        let today = day(2026, 12, 1);
        let q = resolve_window(&[Dimension::IdentifiedQuarter], Filters::default(), today).unwrap();
        assert_eq!((q.from, q.to_exclusive), (Some(day(2024, 1, 1)), Some(day(2027, 1, 1))));
        assert_eq!(values(&[Dimension::IdentifiedQuarter], &q).unwrap()[0].len(), 12);
        let m = resolve_window(&[Dimension::IdentifiedMonth], Filters::default(), today).unwrap();
        let months = &values(&[Dimension::IdentifiedMonth], &m).unwrap()[0];
        assert_eq!((months.len(), months[0].as_str(), months[35].as_str()), (36, "2024-01", "2026-12"));
        let none = resolve_window(&[Dimension::Gender], Filters::default(), today).unwrap();
        assert_eq!(none, Filters::default(), "no time dimension: the window stays open");
    }

    #[test]
    fn a_window_lists_the_periods_it_touches_and_no_more_than_the_maximum() {
        let f = Filters { from: Some(day(2025, 2, 1)), to_exclusive: Some(day(2025, 8, 1)), operation: None };
        let f = resolve_window(&[Dimension::IdentifiedQuarter], f, day(2026, 12, 1)).unwrap();
        assert_eq!(values(&[Dimension::IdentifiedQuarter], &f).unwrap()[0], ["2025-Q1", "2025-Q2", "2025-Q3"]);
        let long = Filters { from: Some(day(2000, 1, 1)), to_exclusive: Some(day(2026, 1, 1)), operation: None };
        assert!(resolve_window(&[Dimension::IdentifiedMonth], long, day(2026, 12, 1)).is_err());
    }

    #[test]
    fn tables_too_fine_to_list_are_refused() {
        let three_countries = [Dimension::Citizenship, Dimension::TransitCountry, Dimension::CountryOfExploitation];
        assert!(values(&three_countries, &Filters::default()).is_err());
        assert!(values(&[Dimension::Citizenship, Dimension::CountryOfExploitation], &Filters::default()).is_ok());
    }
}
