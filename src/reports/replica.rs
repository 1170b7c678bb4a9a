//! Reading report rollups from a streaming replica (`HAVEN_REPORTS_DATABASE_URL`), never staler than
//! the primary. Rollups are kept up to date on the primary when a question is asked; the read then
//! goes to the replica only once it has replayed the primary's WAL up to that moment, so a release
//! from the replica is the release the primary would have given. A replica that lags longer than
//! `HAVEN_REPLICA_MAX_LAG_MS`, or is down, is not waited for: the read goes to the primary, which
//! is always right, only busier (D122). Budget, ledger and audit are written on the primary whatever
//! happens here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::counting::{BoundingKey, Entry, Filters, Population};
use super::rollup::{self, Shape};
use crate::db::fixed::fixed;
use crate::db::{Conn, Pool};
use crate::error::ApiError;
use crate::telemetry::Metrics;

/// After a replica failed to answer, reports skip it for this long rather than each waiting again.
const DOWN_FOR: Duration = Duration::from_secs(5);
/// After a replica was found behind, reports skip it for this long, so steady lag does not make
/// every report wait the whole patience.
const BEHIND_FOR: Duration = Duration::from_secs(1);

pub struct Replica {
    pool: Pool,
    patience: Duration,
    /// Until when reports skip the replica, and why.
    skipped: Mutex<Option<(Instant, Source)>>,
}

/// Where a report's rollups were read, for the metric `haven_report_reads_total`.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// No replica is configured.
    Primary,
    Replica,
    /// The replica had not replayed the primary's position within the patience.
    PrimaryReplicaBehind,
    /// The replica could not be reached or failed the read.
    PrimaryReplicaDown,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Primary => "primary",
            Source::Replica => "replica",
            Source::PrimaryReplicaBehind => "primary_replica_behind",
            Source::PrimaryReplicaDown => "primary_replica_down",
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Position {
    #[diesel(sql_type = Text)]
    lsn: String,
    #[diesel(sql_type = Text)]
    system: String,
}

#[derive(diesel::QueryableByName)]
struct Replayed {
    #[diesel(sql_type = Bool)]
    standby: bool,
    #[diesel(sql_type = Text)]
    system: String,
    #[diesel(sql_type = Bool)]
    replayed: bool,
}

/// The primary's WAL position once the rollup upkeep has committed (the insert position: with
/// asynchronous commit a commit record may not be written out yet), and which cluster it is.
const PRIMARY_POSITION: &str = "SELECT pg_current_wal_insert_lsn()::text AS lsn,
    (SELECT system_identifier::text FROM pg_control_system()) AS system";
/// Whether the server is a standby of that cluster that has replayed the position. A server not in
/// recovery (a promoted replica, or a URL naming some other database) is never read.
const REPLAYED: &str = "SELECT pg_is_in_recovery() AS standby,
    (SELECT system_identifier::text FROM pg_control_system()) AS system,
    coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS replayed";

impl Replica {
    pub fn new(pool: Pool, patience: Duration) -> Replica {
        Replica { pool, patience, skipped: Mutex::new(None) }
    }

    /// Why reports skip the replica now, if they do.
    fn skipped(&self) -> Option<Source> {
        let skipped = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        skipped.filter(|(until, _)| Instant::now() < *until).map(|(_, why)| why)
    }

    fn mark_down(&self, error: &dyn std::fmt::Display) {
        tracing::warn!(%error, "report replica unavailable: reading reports from the primary");
        self.skip_for(DOWN_FOR, Source::PrimaryReplicaDown);
    }

    fn skip_for(&self, span: Duration, why: Source) {
        *self.skipped.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now() + span, why));
    }

    /// A connection to the replica once it has replayed `position`; `Err` when the replica failed
    /// or is not a standby of the primary, `Ok(None)` when it was still behind at the end of the
    /// patience.
    async fn caught_up(&self, position: &Position) -> Result<Option<Conn>, String> {
        let deadline = Instant::now() + self.patience;
        let mut conn = match tokio::time::timeout(self.patience, self.pool.get()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no connection within the patience".into()),
        };
        loop {
            let check = fixed(REPLAYED).bind::<Text, _>(position.lsn.clone()).get_result::<Replayed>(&mut conn);
            match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), check).await {
                Ok(Ok(r)) if !r.standby || r.system != position.system => {
                    return Err("HAVEN_REPORTS_DATABASE_URL is not a standby of the main database".into());
                }
                Ok(Ok(r)) if r.replayed => return Ok(Some(conn)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Ok(None),
            }
            if Instant::now() + Duration::from_millis(5) >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The rollups brought up to date (`rollup::upkeep`), then read (`read`). Without a replica, the
/// read is sent beside the upkeep's idle check, pipelined on the request's connection: one wait
/// instead of two, in the order they were sent, so the read sees what it would have seen after the
/// check. It is kept only if the check finds nothing to do (the steady state); otherwise the
/// upkeep runs and the rollups are read again (D161).
#[allow(clippy::too_many_arguments)]
pub async fn upkept_read(
    replica: Option<&Replica>,
    metrics: &Metrics,
    conn: Conn,
    shape: &Shape<'_>,
    key: &std::sync::Arc<BoundingKey>,
    population: Population,
    filters: &Filters,
) -> Result<(Conn, Vec<Entry>), ApiError> {
    if replica.is_none() {
        let id = shape.id(key);
        let (idle, entries) = {
            let shared: &AsyncPgConnection = &conn;
            let (mut check, mut counts) = (shared, shared);
            // Biased: polled in this order, so sent in it. A read sent before the check could
            // see the rollups as they were before an upkeep that a check after it found done.
            tokio::join!(
                biased;
                rollup::is_idle(&mut check, &id),
                rollup::read(&mut counts, shape, key, population, filters)
            )
        };
        if idle? {
            metrics.report_read(Source::Primary);
            return Ok((conn, entries?));
        }
    }
    let mut conn = rollup::upkeep(conn, shape.table, shape.bounded, key).await?;
    let entries = read(replica, metrics, &mut conn, shape, key, population, filters).await?;
    Ok((conn, entries))
}

/// Reads a shape's rollups for `population`: from the replica when one is configured, up, and
/// caught up with the primary; else from the primary (`primary`, after the upkeep).
pub async fn read(
    replica: Option<&Replica>,
    metrics: &Metrics,
    primary: &mut AsyncPgConnection,
    shape: &Shape<'_>,
    key: &BoundingKey,
    population: Population,
    filters: &Filters,
) -> Result<Vec<Entry>, ApiError> {
    let source = match replica {
        None => Source::Primary,
        Some(replica) if let Some(why) = replica.skipped() => why,
        Some(replica) => {
            let position = fixed(PRIMARY_POSITION).get_result::<Position>(primary).await?;
            match replica.caught_up(&position).await {
                Ok(Some(mut conn)) => {
                    let read = rollup::read(&mut conn, shape, key, population, filters);
                    match tokio::time::timeout(replica.patience, read).await {
                        Ok(Ok(entries)) => {
                            metrics.report_read(Source::Replica);
                            return Ok(entries);
                        }
                        Ok(Err(e)) => {
                            replica.mark_down(&e);
                            Source::PrimaryReplicaDown
                        }
                        Err(_) => {
                            replica.mark_down(&"no answer within the patience");
                            Source::PrimaryReplicaDown
                        }
                    }
                }
                Ok(None) => {
                    tracing::warn!("report replica behind the primary: reading reports from the primary for a second");
                    replica.skip_for(BEHIND_FOR, Source::PrimaryReplicaBehind);
                    Source::PrimaryReplicaBehind
                }
                Err(e) => {
                    replica.mark_down(&e);
                    Source::PrimaryReplicaDown
                }
            }
        }
    };
    metrics.report_read(source);
    rollup::read(primary, shape, key, population, filters).await
}
