//! Privacy budgets: each organisation may spend its allowance (zCDP rho) per period on new
//! releases, and all organisations together at most the deployment's cap, so creating
//! organisations cannot create budget. Allowances renew at the start of each calendar period
//! (UTC). Spending is recorded per period and organisation beside the ledger, in the same
//! transaction, under one lock.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Date, Double, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::{BudgetPeriod, Settings};
use crate::db::fixed::fixed;
use crate::db::schema::report_allowances;
use crate::error::ApiError;

/// One budget period: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    pub fn containing(now: DateTime<Utc>, unit: BudgetPeriod) -> Period {
        let day = now.date_naive();
        let (month, length) = match unit {
            BudgetPeriod::Month => (day.month(), 1),
            BudgetPeriod::Quarter => ((day.month() - 1) / 3 * 3 + 1, 3),
            BudgetPeriod::Year => (1, 12),
        };
        let start = NaiveDate::from_ymd_opt(day.year(), month, 1).expect("a valid first day");
        Period { start, end: start + Months::new(length) }
    }

    pub fn renews_at(&self) -> DateTime<Utc> {
        self.end.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
    }
}

/// What an organisation has to spend this period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Budget {
    pub organization_id: Uuid,
    /// The unit of every amount here: zero-concentrated DP rho, for adding or removing one victim.
    pub unit: &'static str,
    /// First day of the current period.
    pub period_start: NaiveDate,
    /// When the allowance renews (start of the next period, UTC).
    pub renews_at: DateTime<Utc>,
    /// What the organisation may spend per period.
    pub allowance: f64,
    /// Whether that is the deployment's default (no allowance of its own was set).
    pub default_allowance: bool,
    pub spent: f64,
    /// New releases recorded this period.
    pub releases: i64,
    /// What it may still spend: the rest of its allowance, or of the deployment's cap if less.
    pub left: f64,
    /// `allowance` or `deployment_cap`: which of the two leaves less.
    pub limited_by: &'static str,
    /// What one new release costs; repeated questions are free.
    pub cost_per_release: f64,
    /// New questions that can still be answered this period.
    pub new_releases_left: i64,
    /// The allowance stated as (epsilon, delta)-DP for one period (absent when it is too large for
    /// the conversion to mean anything).
    pub allowance_epsilon: Option<f64>,
    pub delta: f64,
}

#[derive(QueryableByName)]
struct Spent {
    #[diesel(sql_type = Double)]
    own: f64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    releases: i64,
    #[diesel(sql_type = Double)]
    everyone: f64,
    #[diesel(sql_type = diesel::sql_types::Nullable<Double>)]
    allowance: Option<f64>,
}

/// The organisation's budget now, as it stands in the database (callers that spend hold the lock).
pub async fn current(
    conn: &mut impl crate::db::Runs,
    settings: &Settings,
    org: Uuid,
    now: DateTime<Utc>,
) -> Result<Budget, ApiError> {
    let period = Period::containing(now, settings.dp_period);
    // Spending is kept per calendar month: a period's is the sum of its months.
    let spent: Spent = fixed(include_str!("sql/spent.sql"))
        .bind::<Date, _>(period.start)
        .bind::<Date, _>(period.end)
        .bind::<SqlUuid, _>(org)
        .get_result(conn)
        .await?;
    let allowance = spent.allowance.unwrap_or(settings.dp_allowance);
    let own_left = (allowance - spent.own).max(0.0);
    let cap_left = (settings.dp_cap - spent.everyone).max(0.0);
    let left = own_left.min(cap_left);
    Ok(Budget {
        organization_id: org,
        unit: "zCDP rho",
        period_start: period.start,
        renews_at: period.renews_at(),
        allowance,
        default_allowance: spent.allowance.is_none(),
        spent: spent.own,
        releases: spent.releases,
        left,
        limited_by: if cap_left < own_left { "deployment_cap" } else { "allowance" },
        cost_per_release: settings.dp_rho,
        new_releases_left: ((left + 1e-9) / settings.dp_rho).floor() as i64,
        allowance_epsilon: super::measure::epsilon_at(allowance.max(1e-12), settings.dp_delta)
            .ok()
            .map(|e| (e * 1000.0).ceil() / 1000.0),
        delta: settings.dp_delta,
    })
}

/// Whether `cost` fits what the organisation has left.
pub fn affords(budget: &Budget, cost: f64) -> bool {
    cost <= budget.left + 1e-9
}

/// Adds a release's cost to its calendar month's running total (inside the ledger's transaction).
pub async fn record_spend(
    conn: &mut impl crate::db::Runs,
    now: DateTime<Utc>,
    org: Uuid,
    rho: f64,
) -> Result<(), ApiError> {
    let month = Period::containing(now, BudgetPeriod::Month).start;
    fixed(include_str!("sql/spend.sql"))
        .bind::<Date, _>(month)
        .bind::<SqlUuid, _>(org)
        .bind::<Double, _>(rho)
        .execute(conn)
        .await?;
    Ok(())
}

/// A new allowance for an organisation, as a host admin sets it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowanceChange {
    /// zCDP rho per period; at most the deployment's cap (the document served by a deployment
    /// gives its cap as `maximum`). 0 stops new releases to it.
    #[schema(example = 5.0, minimum = 0.0)]
    pub allowance: f64,
}

/// Stores the allowance; returns the previous one (`None`: the default).
pub async fn set_allowance(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    allowance: f64,
    by: Uuid,
) -> Result<Option<f64>, ApiError> {
    let previous: Option<f64> = report_allowances::table
        .find(org)
        .select(report_allowances::allowance)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    diesel::insert_into(report_allowances::table)
        .values((
            report_allowances::organization_id.eq(org),
            report_allowances::allowance.eq(allowance),
            report_allowances::updated_by.eq(by),
        ))
        .on_conflict(report_allowances::organization_id)
        .do_update()
        .set((
            report_allowances::allowance.eq(allowance),
            report_allowances::updated_by.eq(by),
            report_allowances::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn periods_are_calendar_periods_in_utc() {
        let at = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 59, 59).unwrap();
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let dec = Period::containing(at(2026, 12, 31, 23), BudgetPeriod::Month);
        assert_eq!((dec.start, dec.end), (day(2026, 12, 1), day(2027, 1, 1)));
        assert_eq!(dec.renews_at(), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        let jan = Period::containing(at(2027, 1, 1, 0), BudgetPeriod::Month);
        assert_ne!(dec, jan, "a new month is a new budget");
        let q = Period::containing(at(2026, 11, 15, 12), BudgetPeriod::Quarter);
        assert_eq!((q.start, q.end), (day(2026, 10, 1), day(2027, 1, 1)));
        let y = Period::containing(at(2026, 6, 1, 0), BudgetPeriod::Year);
        assert_eq!((y.start, y.end), (day(2026, 1, 1), day(2027, 1, 1)));
    }
}
