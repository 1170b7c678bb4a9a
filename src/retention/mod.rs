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
/// not held. `$1`: the clock; `$2`: one case only, or NULL; `$3`: at most this many.
const DUE: &str = "SELECT v.id AS victim_id, v.organization_id, v.case_number, c.closed_at
    FROM victims v
    JOIN organizations o ON o.id = v.organization_id
    JOIN case_closures c ON c.victim_id = v.id AND c.reopened_at IS NULL
    WHERE o.erase_identities_after_months IS NOT NULL
      AND o.retention_effective_at <= $1
      AND (v.erased_at IS NULL OR v.erased_at < c.closed_at)
      AND v.status IN ('closed', 'closed_referred')
      AND c.closed_at <= $1 - make_interval(months => o.erase_identities_after_months::int)
      AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.victim_id = v.id)
      AND ($2::uuid IS NULL OR v.id = $2)
    ORDER BY c.closed_at, v.id
    LIMIT $3";

/// What a run did, or (dry run) would do: counts only. The cases themselves go to the caller's
/// `each` as they are met, so a first run over years of closed cases holds one batch at a time,
/// not every case it erased (docs/DECISIONS.md D147).
#[derive(Debug, Default)]
pub struct RetentionReport {
    /// Cases found due (dry run: all of them; otherwise those the run tried).
    pub due: usize,
    pub erased: usize,
    /// Cases whose erasure failed (logged by id); the next run tries them again.
    pub failed: usize,
}

const BATCH: i64 = 200;

async fn due(conn: &mut AsyncPgConnection, now: DateTime<Utc>, one: Option<Uuid>, limit: i64) -> ApiResult<Vec<Due>> {
    Ok(diesel::sql_query(DUE)
        .bind::<Timestamptz, _>(now)
        .bind::<Nullable<SqlUuid>, _>(one)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
}

/// Applies every organisation's schedule as of `now`: each due case is erased in its own
/// transaction, checked again under the case's lock (a case reopened or held meanwhile is left),
/// and audited. Safe with any number of processes running it at once: the loser of the lock finds
/// the case erased already. With `dry_run`, lists what is due and changes nothing. `each` is
/// shown every case found due (in a real run, before its erasure is tried).
pub async fn run(
    pool: &Pool,
    vault: &Vault,
    now: DateTime<Utc>,
    dry_run: bool,
    each: &mut (dyn FnMut(&Due) + Send),
) -> ApiResult<RetentionReport> {
    let mut conn = pool.get().await?;
    let mut report = RetentionReport::default();
    if dry_run {
        // Changes nothing, so it is one read; the command line is its only caller.
        let due = due(&mut conn, now, None, i64::MAX).await?;
        due.iter().for_each(&mut *each);
        report.due = due.len();
        return Ok(report);
    }
    let ctx = RequestContext::none();
    loop {
        let batch = due(&mut conn, now, None, BATCH).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        let mut progressed = false;
        for case in batch {
            each(&case);
            report.due += 1;
            let attempt = (*conn)
                .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
                    diesel::sql_query("SELECT 1 FROM victims WHERE id = $1 FOR UPDATE")
                        .bind::<SqlUuid, _>(case.victim_id)
                        .execute(conn)
                        .await?;
                    // Under the lock now: judged again, then erased.
                    if due(conn, now, Some(case.victim_id), 1).await?.is_empty() {
                        return Ok(false);
                    }
                    let erasure =
                        erasure::erase_locked(conn, vault, case.victim_id, ErasureReason::RetentionSchedule).await?;
                    audit::record(conn, &ctx, erasure::event(&erasure, case.organization_id)).await?;
                    Ok(true)
                })
                .await;
            // One case that cannot be erased (say, a value that fails its integrity check) must
            // not hold up every case closed after it.
            let erased = attempt.unwrap_or_else(|error| {
                tracing::error!(victim_id = %case.victim_id, %error, "retention could not erase a case; it is tried again next run");
                report.failed += 1;
                false
            });
            progressed |= erased;
            report.erased += usize::from(erased);
        }
        if !progressed {
            // Every case of the batch was taken by another process or changed: they will not be
            // due on the next query either, unless another process is mid-way; stop rather than spin.
            return Ok(report);
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
        match run(&pool, &vault, Utc::now(), false, &mut |_: &Due| {}).await {
            Ok(report) if report.erased > 0 => tracing::info!(erased = report.erased, "retention schedules applied"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention schedules not applied; trying again at the next interval"),
        }
    }
}
