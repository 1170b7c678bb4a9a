//! Migrations applied at start beside processes that are serving (D123, D159): several starts take
//! turns, and a migration that meets a long transaction gives way after `lock_timeout` instead of
//! holding up every request to the table it changes, then tries again, and fails the start with
//! its reason when the transaction never ends.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::{Connection, OptionalExtension, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::MigrationHarness;
use haven::db::{MIGRATIONS, Patience, run_migrations, run_migrations_with};

use crate::helpers::empty_database;

type Blocking = AsyncConnectionWrapper<AsyncPgConnection>;

fn connect(url: &str) -> Blocking {
    Blocking::establish(url).expect("connect")
}

#[test]
fn processes_starting_at_once_apply_the_migrations_once() {
    let url = empty_database();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || run_migrations(&url))
        })
        .collect();
    let applied: Vec<Vec<String>> = starts.into_iter().map(|s| s.join().unwrap().expect("migrations")).collect();
    let total: usize = applied.iter().map(Vec::len).sum();
    assert!(total > 0 && applied.iter().filter(|a| !a.is_empty()).count() == 1, "one start applied them all");
}

/// A database with every migration but the last, and the last one's version.
fn one_migration_behind() -> (String, String) {
    let url = empty_database();
    run_migrations(&url).expect("migrate");
    let last = connect(&url).revert_last_migration(MIGRATIONS).expect("revert the last migration").to_string();
    (url, last)
}

/// A running process's transaction that has written to every table (any write takes ROW
/// EXCLUSIVE, which every DDL lock conflicts with), open until told, or for `at_most`: whichever
/// tables the last migration changes, it waits for this.
/// Returns the thread and its backend's process id.
fn transaction_writing_everywhere(url: &str, release: mpsc::Receiver<()>, at_most: Duration) -> (JoinHandle<()>, i32) {
    let (url, (held, holding)) = (url.to_owned(), mpsc::channel());
    let holder = std::thread::spawn(move || {
        connect(&url)
            .transaction::<_, diesel::result::Error, _>(|conn| {
                diesel::sql_query(
                    "DO $$ DECLARE t regclass; BEGIN \
                       FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
                                  AND c.relname <> '__diesel_schema_migrations' LOOP \
                         EXECUTE format('LOCK TABLE %s IN ROW EXCLUSIVE MODE', t); \
                       END LOOP; END $$",
                )
                .execute(conn)?;
                let pid = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("pg_backend_pid()"))
                    .get_result(conn)?;
                held.send(pid).expect("say it is held");
                let _ = release.recv_timeout(at_most);
                Ok(())
            })
            .expect("hold every table");
    });
    let pid = holding.recv().expect("tables held");
    (holder, pid)
}

#[derive(diesel::QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    relation: String,
}

/// The table someone waits to lock, once someone does.
fn table_waited_for(conn: &mut Blocking) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let waiting = "SELECT l.relation::regclass::text AS relation FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                   WHERE NOT l.granted AND l.relation IS NOT NULL AND d.datname = current_database() LIMIT 1";
    loop {
        if let Some(w) = diesel::sql_query(waiting).get_result::<Waiting>(conn).optional().expect("pg_locks") {
            return w.relation;
        }
        // A last migration that only creates tables waits for nobody: these tests need one
        // that changes an existing table.
        assert!(Instant::now() < deadline, "the migration never waited for a lock");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits of `lock_timeout_ms` for each lock, `attempts` in all, 50 ms apart.
fn patience(lock_timeout_ms: u64, attempts: u32) -> Patience {
    let pause = Duration::from_millis(50);
    Patience {
        lock_timeout: Duration::from_millis(lock_timeout_ms),
        attempts,
        first_pause: pause,
        longest_pause: pause,
    }
}

#[test]
fn a_migration_gives_way_to_a_long_transaction_and_tries_again() {
    let (url, last) = one_migration_behind();
    let (release, released) = mpsc::channel();
    let (holder, _) = transaction_writing_everywhere(&url, released, Duration::from_secs(15));
    let patience = patience(200, 200);
    let migrating = {
        let url = url.clone();
        std::thread::spawn(move || run_migrations_with(&url, patience))
    };
    let mut request = connect(&url);
    let table = table_waited_for(&mut request);
    // A request meanwhile writes to that table: it queues behind the migration's lock request,
    // which gives way within its lock_timeout.
    let started = Instant::now();
    request
        .transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::sql_query(format!("LOCK TABLE {table} IN ROW EXCLUSIVE MODE")).execute(conn).map(drop)
        })
        .expect("the request's write");
    let waited = started.elapsed();
    let _ = release.send(()); // the long transaction may have ended on its own (at_most)
    holder.join().expect("holder");
    let applied = migrating.join().expect("migration thread").expect("applied once the transaction ended");
    assert_eq!(applied, vec![last], "the migration applied, after giving way");
    assert!(waited < Duration::from_secs(5), "a write to {table} waited {waited:?} behind a migration's lock request");
}

#[test]
fn a_migration_that_never_gets_its_locks_fails_the_start_and_says_why() {
    let (url, last) = one_migration_behind();
    let (release, released) = mpsc::channel();
    let (holder, holder_pid) = transaction_writing_everywhere(&url, released, Duration::from_secs(20));
    let patience = patience(100, 3);
    let started = Instant::now();
    let outcome = run_migrations_with(&url, patience);
    let took = started.elapsed();
    let _ = release.send(()); // the long transaction may have ended on its own (at_most)
    holder.join().expect("holder");
    let error = outcome.expect_err("a start that cannot take its locks fails").to_string();
    assert!(
        error.contains("lock timeout") && error.contains("tried 3 times") && error.contains("pg_stat_activity"),
        "{error}"
    );
    assert!(error.contains(&format!("pid {holder_pid} ")), "names the transaction that stood in the way: {error}");
    assert!(took < Duration::from_secs(10), "it gave up after {took:?}");
    // Nothing was half done: the migration is still pending, and applies at the next start.
    assert_eq!(run_migrations(&url).expect("the next start"), vec![last]);
}
