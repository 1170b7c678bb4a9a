//! Retention: each organisation's schedule (identities of cases closed N months ago are erased),
//! legal holds that stop it, and the job that applies it (in the server every
//! `HAVEN_RETENTION_INTERVAL_MIN`, and as `haven retention [--dry-run]`). Erasure itself is
//! `victims::erasure`; the endpoints are in `routes`.

pub mod routes;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Int4, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::audit;
use crate::db::Pool;
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestContext;
use crate::privacy::vault::Vault;
use crate::victims::erasure::{self, ErasureReason};

/// A case the schedule erases.
#[derive(Debug, Clone, QueryableByName, PartialEq, Eq)]
pub struct Due {
    #[diesel(sql_type = SqlUuid)]
    pub victim_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub organization_id: Uuid,
    #[diesel(sql_type = Int4)]
    pub case_number: i32,
    #[diesel(sql_type = Timestamptz)]
    pub closed_at: DateTime<Utc>,
}

/// Closed (and not reopened) long enough ago under its organisation's schedule (once that
/// applies), not erased since it was closed (a case reopened after an erasure may hold new data),
/// not held. `$1`: the clock; `$2`: one case only, or NULL; `$3`: at most this many; `$4`, `$5`:
/// only cases after this (closed at, id) in the run's order, or NULL.
/// A case closed before closures were recorded (migration 9) has no closure in force: its last
/// change stands in for its closing, which it cannot precede (so such a case is erased no earlier
/// than its schedule says).
const DUE: &str = "SELECT v.id AS victim_id, v.organization_id, v.case_number, d.closed_at
    FROM victims v
    JOIN organizations o ON o.id = v.organization_id
    LEFT JOIN case_closures c ON c.victim_id = v.id AND c.reopened_at IS NULL
    CROSS JOIN LATERAL (SELECT coalesce(c.closed_at, v.updated_at) AS closed_at) d
    WHERE o.erase_identities_after_months IS NOT NULL
      AND o.retention_effective_at <= $1
      AND (v.erased_at IS NULL OR v.erased_at < d.closed_at)
      AND v.status IN ('closed', 'closed_referred')
      AND d.closed_at <= $1 - make_interval(months => o.erase_identities_after_months::int)
      AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.victim_id = v.id)
      AND ($2::uuid IS NULL OR v.id = $2)
      AND ($4::timestamptz IS NULL OR (d.closed_at, v.id) > ($4, $5::uuid))
    ORDER BY d.closed_at, v.id
    LIMIT $3";

/// What became of a case a run met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A dry run: due, and left as it is.
    Due,
    Erased,
    /// Reopened, held, erased by another process or no longer due under a changed schedule since
    /// it was found due.
    Left,
    /// The erasure failed (logged by id); the next run tries it again.
    Failed,
}

/// What a run did, or (dry run) would do: counts of cases, each met once. The cases themselves go
/// to the caller's `each` as they are met, so a first run over years of closed cases holds one
/// batch at a time, not every case it erased (docs/DECISIONS.md D147).
#[derive(Debug, Default)]
pub struct RetentionReport {
    /// Cases found due (dry run: all of them; otherwise those the run met).
    pub due: usize,
    pub erased: usize,
    pub failed: usize,
}

const BATCH: i64 = 200;

async fn due(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    one: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> ApiResult<Vec<Due>> {
    Ok(diesel::sql_query(DUE)
        .bind::<Timestamptz, _>(now)
        .bind::<Nullable<SqlUuid>, _>(one)
        .bind::<BigInt, _>(limit)
        .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
        .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
        .load(conn)
        .await?)
}

/// Applies every organisation's schedule as of `now`: each due case is erased in its own
/// transaction, checked again under the case's lock (a case reopened or held meanwhile is left),
/// and audited. Safe with any number of processes running it at once: the loser of the lock finds
/// the case erased already. With `dry_run`, lists what is due and changes nothing. `each` is shown
/// every case found due, once, with what became of it.
///
/// The run walks the due cases in order, a batch after the last case it met, so a case that fails
/// is tried once per run and the cases after it still have their turn.
pub async fn run(
    pool: &Pool,
    vault: &Vault,
    now: DateTime<Utc>,
    dry_run: bool,
    each: &mut (dyn FnMut(&Due, Outcome) + Send),
) -> ApiResult<RetentionReport> {
    let mut conn = pool.get().await?;
    let mut report = RetentionReport::default();
    if dry_run {
        // Changes nothing, so it is one read; the command line is its only caller.
        let due = due(&mut conn, now, None, None, i64::MAX).await?;
        due.iter().for_each(|case| each(case, Outcome::Due));
        report.due = due.len();
        return Ok(report);
    }
    let ctx = RequestContext::none();
    let mut after = None;
    loop {
        let batch = due(&mut conn, now, None, after, BATCH).await?;
        let Some(last) = batch.last() else { return Ok(report) };
        after = Some((last.closed_at, last.victim_id));
        for case in batch {
            let mut tries = 0;
            let attempt = loop {
                tries += 1;
                let attempt = (*conn)
                    .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
                        // The case, and its organisation's schedule shared: an admin's change of the
                        // schedule waits for this erasure to commit, and an erasure that locks after
                        // the change sees it, so a longer schedule, or none, applies at once
                        // (`routes::set_retention`).
                        let locked = diesel::sql_query(
                            "SELECT 1 FROM victims v JOIN organizations o ON o.id = v.organization_id \
                         WHERE v.id = $1 FOR UPDATE OF v FOR SHARE OF o",
                        )
                        .bind::<SqlUuid, _>(case.victim_id)
                        .execute(conn)
                        .await?;
                        if locked == 0 {
                            return Ok(Outcome::Left);
                        }
                        // Under both locks now: judged again, then erased.
                        if due(conn, now, Some(case.victim_id), None, 1).await?.is_empty() {
                            return Ok(Outcome::Left);
                        }
                        let erasure =
                            erasure::erase_locked(conn, vault, case.victim_id, ErasureReason::RetentionSchedule)
                                .await?;
                        audit::record(conn, &ctx, erasure::event(&erasure, case.organization_id)).await?;
                        Ok(Outcome::Erased)
                    })
                    .await;
                match attempt {
                    // An erasure the database undid (a deadlock) had destroyed the case's key already:
                    // the case would read as erased without being recorded so until the next run.
                    // Done again at once, once.
                    Err(ApiError::Undone) if tries == 1 => continue,
                    attempt => break attempt,
                }
            };
            let outcome = match attempt {
                Ok(outcome) => outcome,
                // The database or the key vault is down: every case after this one would wait
                // out the pool's timeout under its lock and fail the same way.
                Err(ApiError::Unavailable) => return Err(ApiError::Unavailable),
                // One case that cannot be erased (say, a value that fails its integrity check)
                // must not hold up every case closed after it.
                Err(error) => {
                    tracing::error!(victim_id = %case.victim_id, %error, "retention could not erase a case; it is tried again next run");
                    Outcome::Failed
                }
            };
            report.due += 1;
            report.erased += usize::from(outcome == Outcome::Erased);
            report.failed += usize::from(outcome == Outcome::Failed);
            each(&case, outcome);
        }
    }
}

/// Applies the schedules every `interval`, for as long as the server runs. The first run waits one
/// interval, so a restart loop does not hammer the database.
pub async fn supervise(pool: Pool, vault: Vault, interval: std::time::Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match run(&pool, &vault, Utc::now(), false, &mut |_: &Due, _| {}).await {
            Ok(report) if report.erased > 0 => tracing::info!(erased = report.erased, "retention schedules applied"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention schedules not applied; trying again at the next interval"),
        }
    }
}
