//! The release policy, in one place: who gets what from a report run.
//!
//! - A caseworker gets their own organisation's case load, exact: no noise, no budget, no ledger.
//! - Everyone else gets a guarded release: the pooled population (consenting victims of
//!   organisations that share statistics, without the caller's organisation), each victim's
//!   values bounded, one OpenDP measurement of the report's fixed grid, post-processed into a
//!   consistent table, counts below k withheld. It is paid from the caller's organisation's
//!   allowance and the deployment's cap, and recorded whole in the ledger: the same question in
//!   the same period (report, parameters, population) is answered from there, free and identical,
//!   in JSON or CSV. Nothing computed from exact counts leaves this module in a guarded answer.
//!
//! The HTTP handler only parses the request and renders the answer.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Date, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::Digest;
use uuid::Uuid;

use super::budget::{self, Period};
use super::counting::{Entry, Filters, Population};
use super::measure::{self, Plan};
use super::output::{Cell, Cells, PrivacyStatement, ReleaseInfo, ReportResult, StoredRelease, TOTAL};
use super::replica;
use super::rollup::Shape;
use super::{ReportPlugin, TableQuery, grid, noisy_table};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::fixed::fixed;
use crate::db::schema::report_releases;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestContext;
use crate::state::AppState;

/// Serialises spending: the budget check, the ledger row and the running total of every guarded
/// release, deployment-wide (the cap is shared).
const SPEND_LOCK: i64 = 0x4841_5645_4e42; // "HAVENB"

pub const POOLED: &str =
    "distinct victims consenting to anonymised statistics, of organisations that share statistics, other than yours";

/// Who is asking, as far as statistics go.
#[derive(Debug, Clone, Copy)]
pub enum Audience {
    /// A caseworker: their own organisation's exact case load.
    OwnCaseLoad { org: Uuid },
    /// Anyone else allowed to run reports: a guarded release.
    Guarded { org: Uuid },
}

impl Audience {
    pub fn of(principal: &Principal) -> Audience {
        match principal.role {
            Role::Caseworker => Audience::OwnCaseLoad { org: principal.organization_id },
            _ => Audience::Guarded { org: principal.organization_id },
        }
    }
}

/// A report run as asked: the plugin's own parameters (validated) and the framework's filters.
pub struct Ask<'a> {
    pub plugin: &'a dyn ReportPlugin,
    pub own: HashMap<String, String>,
    pub filters: Filters,
}

pub async fn answer(
    state: &AppState,
    principal: &Principal,
    ctx: &RequestContext,
    ask: Ask<'_>,
) -> ApiResult<ReportResult> {
    let table = ask.plugin.table(&ask.own)?;
    let now = Utc::now();
    let filters = grid::resolve_window(&table.dimensions, ask.filters.clone(), now.date_naive())?;
    let run = Run { state, principal, ctx, ask: &ask, table, filters };
    match Audience::of(principal) {
        Audience::OwnCaseLoad { org } => run.own_case_load(org).await,
        Audience::Guarded { org } => run.guarded(org, now).await,
    }
}

/// One report run, its question resolved.
struct Run<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    ctx: &'a RequestContext,
    ask: &'a Ask<'a>,
    table: TableQuery,
    filters: Filters,
}

impl Run<'_> {
    fn result(&self, cells: Cells, privacy: PrivacyStatement, release: Option<ReleaseInfo>) -> ReportResult {
        ReportResult {
            report: self.ask.plugin.id().to_owned(),
            title: self.ask.plugin.title().to_owned(),
            dimensions: self.table.dimensions.clone(),
            from: self.filters.from.map(|d| d.format("%Y-%m").to_string()),
            to: self.filters.to_exclusive.and_then(|d| d.pred_opt()).map(|d| d.format("%Y-%m").to_string()),
            cells,
            privacy,
            release,
        }
    }

    async fn own_case_load(&self, org: Uuid) -> ApiResult<ReportResult> {
        let state = self.state;
        let shape = Shape { table: &self.table, bounded: false };
        let key = &state.bounding_key;
        let population = Population::OwnOrganization(org);
        let replica = state.replica.as_deref();
        let conn = state.pool.get().await?;
        let (mut conn, mut entries) =
            replica::upkept_read(replica, &state.metrics, conn, &shape, key, population, &self.filters).await?;
        entries.sort_by(key_order);
        let cells: Vec<Cell> = entries
            .into_iter()
            .map(|e| Cell {
                key: e.key.into_iter().map(|v| v.unwrap_or_else(|| TOTAL.to_owned())).collect(),
                victims: Some(e.count),
                margin: 0,
                withheld: false,
            })
            .collect();
        let privacy = PrivacyStatement::exact("distinct victims of your organisation", cells.len());
        let details = serde_json::json!({
            "report": self.ask.plugin.id(), "question": question(self.ask, &self.table, &self.filters, 1, 0.0).0, "guarded": false,
        });
        let event = Event::new(AuditAction::ReportRun, AuditOutcome::Success).by(self.principal).details(details);
        audit::record(&mut conn, self.ctx, event).await?;
        Ok(self.result(Cells::Listed(cells), privacy, None))
    }
}
/// Values in order, totals after them. Compared in place, without building a key: a wide table's
/// few thousand entries are compared tens of thousands of times.
fn key_order(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    fn order(e: &Entry) -> impl Iterator<Item = (bool, &str)> + '_ {
        e.key.iter().map(|v| (v.is_none(), v.as_deref().unwrap_or_default()))
    }
    order(a).cmp(order(b))
}

/// The canonical question (defaults filled in, the table they give, window resolved, the
/// deployment's k and cost) and its digest, which keys the ledger. The table is part of it, so
/// two questions can only share a release if they ask for the same table.
fn question(ask: &Ask<'_>, table: &TableQuery, filters: &Filters, k: i64, rho: f64) -> (serde_json::Value, String) {
    let parameters: BTreeMap<&str, String> = ask
        .plugin
        .parameters()
        .into_iter()
        .filter_map(|spec| ask.own.get(spec.name).cloned().or(spec.default.map(str::to_owned)).map(|v| (spec.name, v)))
        .collect();
    let month = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m").to_string());
    let json = serde_json::json!({
        "report": ask.plugin.id(),
        "parameters": parameters,
        "table": table.signature(),
        "from": month(filters.from),
        "to_exclusive": month(filters.to_exclusive),
        "operation": filters.operation,
        "k": k,
        "rho": rho,
    });
    let digest = sha2::Sha256::digest(json.to_string().as_bytes());
    (json, digest.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    released_at: DateTime<Utc>,
    /// As text, parsed once into a `StoredRelease`.
    #[diesel(sql_type = Text)]
    release: String,
}

impl Recorded {
    fn stored(&self) -> ApiResult<StoredRelease> {
        serde_json::from_str(&self.release).map_err(|e| ApiError::internal("recorded release", e))
    }
}

async fn recorded(
    conn: &mut impl crate::db::Runs,
    org: Uuid,
    period: &Period,
    digest: &str,
) -> ApiResult<Option<Recorded>> {
    Ok(
        fixed("SELECT id, released_at, release::text AS release FROM report_releases WHERE organization_id = $1 AND period = $2 AND question = $3")
            .bind::<SqlUuid, _>(org)
            .bind::<Date, _>(period.start)
            .bind::<Text, _>(digest.to_owned())
            .get_result(conn)
            .await
            .optional()?,
    )
}

impl Run<'_> {
    async fn guarded(&self, org: Uuid, now: DateTime<Utc>) -> ApiResult<ReportResult> {
        let (state, principal, ctx, ask, table, filters) =
            (self.state, self.principal, self.ctx, self.ask, &self.table, &self.filters);
        let settings = &state.settings;
        let (k, rho) = (settings.report_k, settings.dp_rho);
        let values = grid::values(&table.dimensions, filters)?;
        let (question_json, digest) = question(ask, table, filters, k, rho);
        let period = Period::containing(now, settings.dp_period);
        let cells: usize = values.iter().map(|v| v.len() + 1).product();
        let event = |repeat: bool, outcome: AuditOutcome, reason: Option<&str>| {
            let details = serde_json::json!({
                "report": ask.plugin.id(), "question": question_json, "guarded": true, "repeat": repeat,
                "rho": if repeat || reason.is_some() { 0.0 } else { rho }, "cells": cells, "reason": reason,
            });
            Event::new(AuditAction::ReportRun, outcome).by(principal).details(details)
        };
        let mut conn = state.pool.get().await?;
        // The ledger and the budget, asked together: both answers are needed whatever the ledger
        // says (a repeat shows what is left), and pipelined on one connection they cost one wait.
        let (found, budget) = {
            let shared: &AsyncPgConnection = &conn;
            let (mut ledger, mut spending) = (shared, shared);
            tokio::join!(
                recorded(&mut ledger, org, &period, &digest),
                budget::current(&mut spending, settings, org, now)
            )
        };
        let budget = budget?;
        if let Some(found) = found? {
            audit::record(&mut conn, ctx, event(true, AuditOutcome::Success, None)).await?;
            let (id, at, stored) = (found.id, found.released_at, found.stored()?);
            return self.render(&mut conn, id, at, stored, &period, true, org, now, Some(budget.left)).await;
        }
        // Nothing left: refuse before counting (checked again under the lock below).
        if !budget::affords(&budget, rho) {
            let refusal = exhausted(&budget, &period);
            audit::record(&mut conn, ctx, event(false, AuditOutcome::Denied, Some(reason(&refusal)))).await?;
            return Err(refusal);
        }
        let plan = Plan::new(table.dimensions.clone(), values);
        let [noise, alternative] =
            measure::calibrate(plan.sensitivity(), rho).map_err(|e| ApiError::internal("noise calibration", e))?;
        // What is charged must cover what OpenDP accounts for the measurement.
        if noise.rho > rho {
            return Err(ApiError::Internal(format!("OpenDP accounts rho {} for a release charged {rho}", noise.rho)));
        }
        let shape = Shape { table, bounded: true };
        let key = &state.bounding_key;
        let population = Population::Pooled { caller: org };
        let replica = state.replica.as_deref();
        let (mut conn, entries) =
            replica::upkept_read(replica, &state.metrics, conn, &shape, key, population, filters).await?;
        let statement = noisy_table::statement(&plan, &noise, &alternative, k, rho, settings.dp_delta)?;
        let stored = actix_web::web::block(move || noisy_table::release(plan, &entries, &noise, k, statement))
            .await
            .map_err(|e| ApiError::internal("release", e))??;
        let release_json = serde_json::to_value(&stored).map_err(|e| ApiError::internal("release", e))?;
        // Read committed, whatever the database's default: after the lock, each statement must see
        // every release committed before it.
        let outcome = (*conn)
            .build_transaction()
            .read_committed()
            .run(async |conn: &mut AsyncPgConnection| -> ApiResult<Spent> {
                // The lock, then the ledger and the budget, sent together: PostgreSQL runs a
                // connection's statements in the order sent, so both are read under the lock, and
                // the lock is held for two waits where it was held for six (it orders every
                // guarded release of the deployment).
                let shared: &AsyncPgConnection = conn;
                let (mut lock, mut ledger, mut spending) = (shared, shared, shared);
                let (locked, found, budget) = tokio::join!(
                    biased;
                    fixed("SELECT pg_advisory_xact_lock($1)")
                        .bind::<diesel::sql_types::BigInt, _>(SPEND_LOCK)
                        .execute(&mut lock),
                    recorded(&mut ledger, org, &period, &digest),
                    budget::current(&mut spending, settings, org, now),
                );
                locked?;
                // Asked meanwhile by a colleague: theirs is the release, ours is never shown.
                if let Some(found) = found? {
                    audit::record(conn, ctx, event(true, AuditOutcome::Success, None)).await?;
                    return Ok((found.id, found.released_at, None, Some(found.stored()?)));
                }
                let budget = budget?;
                if !budget::affords(&budget, rho) {
                    return Err(exhausted(&budget, &period));
                }
                let left = (budget.left - rho).max(0.0);
                let released = stored.values.iter().filter(|v| v.is_some()).count() as i32;
                let insert = diesel::insert_into(report_releases::table)
                    .values((
                        report_releases::user_id.eq(principal.user_id),
                        report_releases::organization_id.eq(org),
                        report_releases::report_id.eq(ask.plugin.id()),
                        report_releases::parameters.eq(&question_json),
                        report_releases::k.eq(k as i32),
                        report_releases::cells_released.eq(released),
                        report_releases::cells_suppressed.eq(stored.values.len() as i32 - released),
                        report_releases::epsilon_spent.eq(stored.privacy.epsilon.unwrap_or(0.0)),
                        report_releases::period.eq(period.start),
                        report_releases::question.eq(&digest),
                        report_releases::rho.eq(rho),
                        report_releases::mechanism.eq(format!("{:?}", noise.mechanism)),
                        report_releases::release.eq(&release_json),
                    ))
                    .returning((report_releases::id, report_releases::released_at));
                // The ledger row, the spending and the record need nothing of each other: sent
                // together, and the first failure in that order is the one reported.
                let shared: &AsyncPgConnection = conn;
                let (mut ledger, mut spending, mut log) = (shared, shared, shared);
                let (inserted, spent, recorded) = tokio::join!(
                    biased;
                    insert.get_result::<(i64, DateTime<Utc>)>(&mut ledger),
                    budget::record_spend(&mut spending, now, org, rho),
                    audit::record(&mut log, ctx, event(false, AuditOutcome::Success, None)),
                );
                let (id, released_at) = inserted?;
                spent?;
                recorded?;
                Ok((id, released_at, Some(left), None))
            })
            .await;
        match outcome {
            // `Some`: a colleague's release, recorded while ours was computed.
            Ok((id, released_at, _, Some(theirs))) => {
                self.render(&mut conn, id, released_at, theirs, &period, true, org, now, None).await
            }
            Ok((id, released_at, left, None)) => {
                self.render(&mut conn, id, released_at, stored, &period, false, org, now, left).await
            }
            Err(e @ ApiError::BudgetExhausted { .. }) => {
                audit::record(&mut conn, ctx, event(false, AuditOutcome::Denied, Some(reason(&e)))).await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn render(
        &self,
        conn: &mut AsyncPgConnection,
        id: i64,
        released_at: DateTime<Utc>,
        stored: StoredRelease,
        period: &Period,
        repeat: bool,
        org: Uuid,
        now: DateTime<Utc>,
        // What is left, when known without asking again: after a release just spent, or read
        // beside the ledger for a repeat.
        left: Option<f64>,
    ) -> ApiResult<ReportResult> {
        let budget_left = match left {
            Some(left) => left,
            None => budget::current(conn, &self.state.settings, org, now).await?.left,
        };
        let info = ReleaseInfo {
            id,
            released_at,
            period: period.start,
            repeat,
            budget_left,
            budget_renews_at: period.renews_at(),
        };
        let privacy = stored.privacy.clone();
        Ok(self.result(Cells::Released(Box::new(stored)), privacy, Some(info)))
    }
}

/// What the spending transaction settled: the ledger row's id and time, the allowance left after
/// our release, and a colleague's release when theirs was recorded first (ours is then never
/// shown).
type Spent = (i64, DateTime<Utc>, Option<f64>, Option<StoredRelease>);

fn exhausted(budget: &budget::Budget, period: &Period) -> ApiError {
    ApiError::BudgetExhausted { renews_at: period.renews_at(), by_cap: budget.limited_by == "deployment_cap" }
}

fn reason(refusal: &ApiError) -> &'static str {
    match refusal {
        ApiError::BudgetExhausted { by_cap: true, .. } => "deployment_cap_spent",
        _ => "allowance_spent",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Entry, key_order};

    fn placed(entries: &[Entry]) -> Vec<(&Vec<Option<String>>, i64)> {
        entries.iter().map(|e| (&e.key, e.count)).collect()
    }

    proptest! {
        /// Caseworkers' own figures keep the order they had when each comparison built its key as
        /// owned strings: values in order, totals (`None`) after them, an empty value before a
        /// total, ties in their first order (each entry's count is its first place).
        #[test]
        fn entries_sort_as_their_owned_keys_did(
            rows in (0usize..4).prop_flat_map(|width| {
                prop::collection::vec(prop::collection::vec(prop::option::of("[ab]{0,2}"), width), 0..40)
            }),
        ) {
            let entries = || rows.iter().zip(0..).map(|(key, n)| Entry { key: key.clone(), count: n }).collect::<Vec<_>>();
            let mut in_place = entries();
            in_place.sort_by(key_order);
            let mut owned = entries();
            owned.sort_by_key(|e| e.key.iter().map(|v| (v.is_none(), v.clone().unwrap_or_default())).collect::<Vec<_>>());
            prop_assert_eq!(placed(&in_place), placed(&owned));
        }
    }
}
