//! Applying the embedded migrations at start, beside processes that are serving.
//!
//! Two hazards of a rolling deploy (docs/DEPLOYMENT.md):
//! - several processes start at once: they take turns under an advisory lock, the first applies
//!   what is pending and the others find nothing;
//! - a migration's DDL waits for a table lock behind a long transaction of a running process, and
//!   every request that touches that table queues behind the migration: the table is out of service
//!   for as long as the long transaction lasts. So each statement waits for its locks at most
//!   `Patience::lock_timeout`, gives way (the migration's transaction is undone, traffic flows
//!   again), and the migration is tried again after a pause, a bounded number of times (D159).

use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::prelude::*;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::MigrationHarness;

use super::{DbSetupError, MIGRATIONS, schema};

type Blocking = AsyncConnectionWrapper<AsyncPgConnection>;

/// The advisory lock under which processes take turns. The number earlier versions took, so a
/// process of this version and one of an older version starting together take turns too.
const MIGRATION_LOCK: i64 = 4848415645;

/// How long a migration may hold up traffic while it waits for a lock, and how often it tries.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// The longest one statement waits for a lock (PostgreSQL's `lock_timeout`).
    pub lock_timeout: Duration,
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The pause after the first attempt that gave way; doubled after each, up to `longest_pause`.
    pub first_pause: Duration,
    pub longest_pause: Duration,
}

impl Default for Patience {
    /// A few seconds of stalled requests at a time, at most ten times, over about a minute and a
    /// half: long enough for the ordinary transactions of a running service to end between tries,
    /// short enough that a start blocked by a stuck transaction says so.
    fn default() -> Patience {
        Patience {
            lock_timeout: Duration::from_secs(3),
            attempts: 10,
            first_pause: Duration::from_secs(1),
            longest_pause: Duration::from_secs(10),
        }
    }
}

/// Applies pending migrations, with the default patience.
pub fn run_migrations(url: &str) -> Result<Vec<String>, DbSetupError> {
    run_migrations_with(url, Patience::default())
}

/// Applies pending migrations and returns the versions applied. Runs on a plain thread: the async
/// connection wrapper blocks, which must not happen on an actix worker (see STACK-NOTES).
pub fn run_migrations_with(url: &str, patience: Patience) -> Result<Vec<String>, DbSetupError> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut conn =
            Blocking::establish(&url).map_err(|e| DbSetupError::Migrations(format!("cannot connect: {e}")))?;
        take_turn(&mut conn)?;
        set_lock_timeout(&mut conn, patience.lock_timeout)
            .map_err(|e| DbSetupError::Migrations(format!("cannot set the lock timeout: {e}")))?;
        let mut applied = Vec::new();
        let mut pause = patience.first_pause;
        for attempt in 1..=patience.attempts {
            match apply(&mut conn, &mut applied) {
                Ok(()) => return Ok(applied),
                Err(e) if gave_way(&e) && attempt < patience.attempts => {
                    tracing::warn!(
                        attempt,
                        pause_ms = pause.as_millis() as u64,
                        "a migration gave way to a transaction holding the locks it needs; trying again"
                    );
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(patience.longest_pause);
                }
                Err(e) if gave_way(&e) => {
                    return Err(DbSetupError::Migrations(format!(
                        "{e}; tried {attempt} times, waiting at most {} ms for each lock: a long transaction \
                         holds a table the migration changes ({}); start again once it has ended",
                        patience.lock_timeout.as_millis(),
                        long_transactions(&mut conn, patience.lock_timeout)
                    )));
                }
                Err(e) => return Err(DbSetupError::Migrations(e)),
            }
        }
        Err(DbSetupError::Migrations("no attempt was allowed".into()))
    })
    .join()
    .unwrap_or_else(|_| Err(DbSetupError::Migrations("migration thread panicked".into())))
}

/// Takes the migration lock, saying so when another process holds it. Held until the connection
/// closes. The wait itself is not bounded: the holder's own waits are, and its migrations end.
fn take_turn(conn: &mut Blocking) -> Result<(), DbSetupError> {
    let failed = |e: diesel::result::Error| DbSetupError::Migrations(format!("cannot take the migration lock: {e}"));
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    let first: Taken = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS taken")
        .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
        .get_result(conn)
        .map_err(failed)?;
    if first.taken {
        return Ok(());
    }
    tracing::info!("another Haven process is applying migrations; waiting for it to finish");
    // Whatever the role's or database's lock_timeout, this wait is the other process's migrations.
    set_lock_timeout(conn, Duration::ZERO).map_err(failed)?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
        .execute(conn)
        .map_err(failed)?;
    Ok(())
}

/// The transactions of this database open longer than `than`, oldest first: who to look at.
/// Process ids, application names and ages only (never a statement's text, which may hold values).
fn long_transactions(conn: &mut Blocking, than: Duration) -> String {
    #[derive(QueryableByName)]
    struct Open {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
        #[diesel(sql_type = diesel::sql_types::Text)]
        application: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seconds: i64,
    }
    let open: QueryResult<Vec<Open>> = diesel::sql_query(
        "SELECT pid, coalesce(nullif(application_name, ''), 'unnamed') AS application, \
                extract(epoch FROM now() - xact_start)::bigint AS seconds \
           FROM pg_stat_activity \
          WHERE datname = current_database() AND pid <> pg_backend_pid() \
            AND xact_start < now() - make_interval(secs => $1) \
          ORDER BY xact_start LIMIT 5",
    )
    .bind::<diesel::sql_types::Double, _>(than.as_secs_f64())
    .load(conn);
    match open {
        Ok(open) if !open.is_empty() => {
            let listed: Vec<String> =
                open.iter().map(|o| format!("pid {} ({}, open {} s)", o.pid, o.application, o.seconds)).collect();
            format!("open now: {}; see pg_stat_activity", listed.join(", "))
        }
        // Another role's sessions are hidden from a role without pg_read_all_stats.
        _ => "see pg_stat_activity".to_owned(),
    }
}

fn set_lock_timeout(conn: &mut Blocking, timeout: Duration) -> QueryResult<usize> {
    diesel::sql_query(format!("SET lock_timeout = {}", timeout.as_millis())).execute(conn)
}

/// One attempt: the pending migrations, one transaction each (what one applies stays applied if a
/// later one gives way), then the country regions.
fn apply(conn: &mut Blocking, applied: &mut Vec<String>) -> Result<(), String> {
    loop {
        let pending = conn.pending_migrations(MIGRATIONS).map_err(|e| e.to_string())?;
        let Some(next) = pending.first() else { break };
        let version = conn.run_migration(next.as_ref()).map_err(|e| e.to_string())?;
        applied.push(version.to_string());
    }
    sync_country_regions(conn).map_err(|e| format!("country regions: {e}"))
}

/// A statement cancelled by `lock_timeout` (SQLSTATE 55P03). diesel does not carry the SQLSTATE,
/// so it is known by PostgreSQL's message: where the server's `lc_messages` translates it, the
/// start fails at the first timeout instead of trying again (still bounded, and it says why).
fn gave_way(error: &str) -> bool {
    error.contains("lock timeout")
}

/// Keeps `country_regions` equal to the UN M49 regions the `keshvar` crate knows, so reports can
/// group by region in SQL (a person with two citizenships in one region counts once).
fn sync_country_regions(conn: &mut Blocking) -> QueryResult<()> {
    use schema::country_regions;
    let rows: Vec<_> = crate::domain::country::countries()
        .iter()
        .map(|c| {
            (
                country_regions::country.eq(&c.alpha3),
                country_regions::region.eq(&c.region),
                country_regions::subregion.eq(&c.subregion),
            )
        })
        .collect();
    diesel::insert_into(country_regions::table)
        .values(rows)
        .on_conflict(country_regions::country)
        .do_update()
        .set((
            country_regions::region.eq(diesel::upsert::excluded(country_regions::region)),
            country_regions::subregion.eq(diesel::upsert::excluded(country_regions::subregion)),
        ))
        .execute(conn)?;
    Ok(())
}
