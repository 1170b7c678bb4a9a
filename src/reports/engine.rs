//! Runs a plugin's table: builds the SQL from whitelisted fragments, scopes the population,
//! applies the guard, and shapes the result.

use chrono::NaiveDate;
use diesel::sql_types::{BigInt, Date, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::TableQuery;
use super::catalogue::Join;
use super::guard::{self, Entry};
use crate::error::ApiError;

/// Whose victims a run counts.
#[derive(Debug, Clone, Copy)]
pub enum Population {
    /// A caseworker's own organisation, every victim: their own case load, not a release.
    OwnOrganization(Uuid),
    /// Victims consenting to anonymised statistics, of organisations that share statistics,
    /// pooled: what any release to admins and partners counts. The caller's own organisation is
    /// left out: its staff know (or could plant) its records, and could subtract them or pad a
    /// cell to k to learn whether another organisation holds a single victim.
    Pooled { caller: Uuid },
}

/// The framework's own filters, at month precision.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub from: Option<NaiveDate>,
    pub to_exclusive: Option<NaiveDate>,
    pub operation: Option<String>,
}

/// A counted row: up to three dimension values (NULL = total) and a count. Shared by the direct
/// count and the rollup read.
#[derive(diesel::QueryableByName)]
pub(super) struct Row {
    #[diesel(sql_type = Nullable<Text>)]
    d1: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    d2: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    d3: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Row {
    pub(super) fn into_entry(self, dims: usize) -> Entry {
        Entry { key: [self.d1, self.d2, self.d3].into_iter().take(dims).collect(), count: self.n }
    }
}

pub const TOTAL: &str = "_total";

/// The dimension columns `d1..d3`, the joins and the fixed-filter predicates (binding from `$first`)
/// of a table, from whitelisted fragments only.
pub(super) fn sql_parts(table: &TableQuery, first: usize) -> Result<(String, String, String, String), ApiError> {
    let dims = &table.dimensions;
    if dims.is_empty() || dims.len() > 3 {
        return Err(ApiError::Internal("a report table has 1 to 3 dimensions".into()));
    }
    let mut joins: Vec<Join> = Vec::new();
    for join in dims.iter().flat_map(|d| d.sql().1.iter().copied()) {
        if !joins.contains(&join) {
            joins.push(join);
        }
    }
    let select: Vec<String> = (0..3)
        .map(|i| match dims.get(i) {
            Some(d) => format!("({})::text AS d{}", d.sql().0, i + 1),
            None => format!("NULL::text AS d{}", i + 1),
        })
        .collect();
    let group: Vec<String> = (1..=dims.len()).map(|i| format!("d{i}")).collect();
    let restrictions: String = table
        .filters
        .iter()
        .enumerate()
        .map(|(i, f)| format!(" AND {}", f.field.sql().replace("{}", &format!("${}::text[]", i + first))))
        .collect();
    Ok((
        select.join(", "),
        joins.iter().map(|j| j.sql()).collect::<Vec<_>>().join(" "),
        restrictions,
        group.join(", "),
    ))
}

/// Counts of distinct victims for every grouping set of the table's dimensions, straight from
/// the records (the rollups give the same from pre-aggregated partitions; tests compare them).
pub async fn count_direct(conn: &mut AsyncPgConnection, table: &TableQuery, population: Population, filters: &Filters) -> Result<Vec<Entry>, ApiError> {
    let dims = &table.dimensions;
    if dims.is_empty() || dims.len() > 3 {
        return Err(ApiError::Internal("a report table has 1 to 3 dimensions".into()));
    }
    let mut joins: Vec<Join> = Vec::new();
    for join in dims.iter().flat_map(|d| d.sql().1.iter().copied()) {
        if !joins.contains(&join) {
            joins.push(join);
        }
    }
    let exprs: Vec<&str> = dims.iter().map(|d| d.sql().0).collect();
    let select: Vec<String> = (0..3)
        .map(|i| match exprs.get(i) {
            Some(expr) => format!("({expr})::text AS d{}", i + 1),
            None => format!("NULL::text AS d{}", i + 1),
        })
        .collect();
    let group: Vec<String> = (1..=dims.len()).map(|i| format!("d{i}")).collect();
    let scope = match population {
        Population::OwnOrganization(_) => "v.organization_id = $1",
        Population::Pooled { .. } => {
            "v.organization_id <> $1 AND v.consent_anonymised_statistics \
             AND v.organization_id IN (SELECT id FROM organizations WHERE shares_statistics)"
        }
    };
    let restrictions: String = table
        .filters
        .iter()
        .enumerate()
        .map(|(i, f)| format!(" AND {}", f.field.sql().replace("{}", &format!("${}::text[]", i + 5))))
        .collect();
    let sql = format!(
        "SELECT {select}, count(DISTINCT v.id) AS n FROM victims v {joins} \
         WHERE {scope} AND ($2::date IS NULL OR v.identified_on >= $2) AND ($3::date IS NULL OR v.identified_on < $3) \
         AND ($4::text IS NULL OR v.operation = $4){restrictions} GROUP BY CUBE ({group})",
        select = select.join(", "),
        joins = joins.iter().map(|j| j.sql()).collect::<Vec<_>>().join(" "),
        group = group.join(", "),
    );
    let org = match population {
        Population::OwnOrganization(org) | Population::Pooled { caller: org } => Some(org),
    };
    let mut query = diesel::sql_query(sql)
        .into_boxed()
        .bind::<Nullable<SqlUuid>, _>(org)
        .bind::<Nullable<Date>, _>(filters.from)
        .bind::<Nullable<Date>, _>(filters.to_exclusive)
        .bind::<Nullable<Text>, _>(filters.operation.clone());
    for filter in &table.filters {
        query = query.bind::<diesel::sql_types::Array<Text>, _>(filter.values.clone());
    }
    let rows: Vec<Row> = query.load(conn).await?;
    Ok(rows.into_iter().map(|r| r.into_entry(dims.len())).collect())
}

/// One published entry: a value per dimension (`_total` for a total over it) and the count, absent
/// when suppressed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cell {
    /// Dimension values, in the order of the report's `dimensions`.
    pub key: Vec<String>,
    /// Distinct victims; absent when suppressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victims: Option<i64>,
    /// Present and true when the count is withheld by the privacy guard.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// What the privacy guard did to this release.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrivacyReport {
    /// Whether the guard applied (always, except for a caseworker's report on their own organisation).
    pub guarded: bool,
    /// Smallest true count released (noise, when on, is added afterwards).
    pub k: i64,
    pub population: &'static str,
    pub cells: usize,
    pub cells_suppressed: usize,
    /// Of those, below k themselves (the others protect them).
    pub cells_suppressed_primary: usize,
    /// Differential-privacy noise added to released counts, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<String>,
    pub epsilon_spent: f64,
    /// Epsilon your organisation may still spend, when noise is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_left: Option<f64>,
}

/// The cells a guarded release lists, whatever the data: every combination of each dimension's
/// values, where a dimension's values are its vocabulary, or (geography, time) the values whose
/// own total is released. Combinations not released are listed as suppressed, zeros included, so
/// which keys appear reveals nothing the released counts do not.
fn grid(dims: &[super::catalogue::Dimension], published: &[(Vec<Option<String>>, Option<i64>)]) -> Vec<Vec<Option<String>>> {
    let values: Vec<Vec<String>> = dims
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            dim.vocabulary().unwrap_or_else(|| {
                let mut released: Vec<String> = published
                    .iter()
                    .filter(|(key, count)| {
                        count.is_some() && key.iter().enumerate().all(|(i, v)| if i == d { v.is_some() } else { v.is_none() })
                    })
                    .filter_map(|(key, _)| key[d].clone())
                    .collect();
                released.sort();
                released.dedup();
                released
            })
        })
        .collect();
    let mut keys: Vec<Vec<Option<String>>> = vec![Vec::new()];
    for options in &values {
        let mut next = Vec::with_capacity(keys.len() * (options.len() + 1));
        for key in &keys {
            for value in options.iter().map(|v| Some(v.clone())).chain(std::iter::once(None)) {
                let mut k = key.clone();
                k.push(value);
                next.push(k);
            }
        }
        keys = next;
    }
    keys
}

/// Guards (or not) the entries and shapes the cells, totals last.
pub fn publish(dims: &[super::catalogue::Dimension], mut entries: Vec<Entry>, guarded: bool, k: i64) -> (Vec<Cell>, PrivacyReport) {
    // Stable order: totals after values, values sorted.
    entries.sort_by(|a, b| {
        let key = |e: &Entry| e.key.iter().map(|v| (v.is_none(), v.clone().unwrap_or_default())).collect::<Vec<_>>();
        key(a).cmp(&key(b))
    });
    let (published, primary) = if guarded {
        let p = guard::protect(&entries, k);
        let released: std::collections::HashMap<Vec<Option<String>>, i64> =
            p.entries.iter().filter_map(|(key, count)| count.map(|c| (key.clone(), c))).collect();
        let listed: Vec<(Vec<Option<String>>, Option<i64>)> =
            grid(dims, &p.entries).into_iter().map(|key| { let count = released.get(&key).copied(); (key, count) }).collect();
        (listed, p.primary)
    } else {
        (entries.iter().map(|e| (e.key.clone(), Some(e.count))).collect(), 0)
    };
    let suppressed = published.iter().filter(|(_, c)| c.is_none()).count();
    let cells: Vec<Cell> = published
        .into_iter()
        .map(|(key, count)| Cell {
            key: key.into_iter().map(|v| v.unwrap_or_else(|| TOTAL.to_owned())).collect(),
            victims: count,
            suppressed: count.is_none(),
        })
        .collect();
    let report = PrivacyReport {
        guarded,
        k: if guarded { k } else { 1 },
        population: if guarded {
            "distinct victims consenting to anonymised statistics, of organisations that share statistics, pooled"
        } else {
            "distinct victims of your organisation"
        },
        cells: cells.len(),
        cells_suppressed: suppressed,
        cells_suppressed_primary: primary,
        noise: None,
        epsilon_spent: 0.0,
        budget_left: None,
    };
    (cells, report)
}

/// Adds OpenDP noise to every released count of a guarded table and records it in `privacy`.
pub fn add_noise(cells: &mut [Cell], privacy: &mut PrivacyReport, epsilon: f64, sensitivity: i64) -> Result<(), ApiError> {
    let released: Vec<i64> = cells.iter().filter_map(|c| c.victims).collect();
    let (noisy, spent, scale) =
        super::noise::release(&released, epsilon, sensitivity).map_err(|e| ApiError::internal("noise", e))?;
    let mut values = noisy.into_iter();
    for cell in cells.iter_mut().filter(|c| c.victims.is_some()) {
        cell.victims = values.next();
    }
    privacy.noise = Some(format!("discrete Laplace (OpenDP), scale {scale}, sensitivity {sensitivity}"));
    privacy.epsilon_spent = spent;
    Ok(())
}
