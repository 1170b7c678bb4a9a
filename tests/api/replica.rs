//! Reports from a real streaming replica (issue 16): a primary cluster of the test's own, a
//! physical copy made with `pg_basebackup` running as a hot standby, and Haven reading report
//! rollups from the standby while budget, ledger and audit are written on the primary. A standby
//! that lags is not read (the primary answers, never a stale figure), nor one that is down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel_async::RunQueryDsl;
use haven::db::local_cluster::{self, ClusterOptions, LocalCluster};
use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_on};
use crate::paths;
use crate::reports::figure;
use crate::victims::victim_body;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn running_as_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A physical copy of `primary` in `root/data`, set up as its standby (`-R` writes
/// `standby.signal` and the connection to the primary), owned by the user the clusters run as.
fn base_backup(primary: &LocalCluster, root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    let bin = local_cluster::bin_dir(None).expect("the PostgreSQL binaries");
    let out = std::process::Command::new(bin.join("pg_basebackup"))
        .args(["--wal-method=stream", "--write-recovery-conf", "--checkpoint=fast", "--pgdata"])
        .arg(root.join("data"))
        .arg("--dbname")
        .arg(primary.url("postgres"))
        .output()
        .expect("run pg_basebackup");
    assert!(out.status.success(), "pg_basebackup: {}", String::from_utf8_lossy(&out.stderr));
    if running_as_root() {
        // initdb refuses root, so the clusters run as `postgres` (db::local_cluster).
        let out = std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(root).output().unwrap();
        assert!(out.status.success(), "chown: {}", String::from_utf8_lossy(&out.stderr));
    }
}

async fn reads_from(app: &TestApp, source: &str) -> u64 {
    let text = app.client.get(format!("{}/metrics", app.metrics_address)).send().await.unwrap().text().await.unwrap();
    let series = format!("haven_report_reads_total{{from=\"{source}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |n| n.trim().parse().unwrap())
}

async fn on_replica(url: &str, sql: &str) {
    let pool = haven::db::build_pool(url, 1, Duration::from_secs(10)).unwrap();
    diesel::sql_query(sql).execute(&mut pool.get().await.unwrap()).await.unwrap();
}

async fn in_recovery(url: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Recovery {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        standby: bool,
    }
    let pool = haven::db::build_pool(url, 1, Duration::from_secs(10)).unwrap();
    let row: Recovery = diesel::sql_query("SELECT pg_is_in_recovery() AS standby")
        .get_result(&mut pool.get().await.unwrap())
        .await
        .unwrap();
    row.standby
}

#[tokio::test]
async fn guarded_reports_are_served_from_a_streaming_replica_and_never_stale() {
    let scratch = Scratch(std::env::temp_dir().join(format!("hr-{}", &Uuid::new_v4().simple().to_string()[..8])));
    let root = scratch.0.clone();
    let options = move |dir: &str| ClusterOptions { root: root.join(dir), ephemeral: true, bin_dir: None };
    let (primary, mut replica) = tokio::task::spawn_blocking(move || {
        let primary = LocalCluster::start(&options("p")).expect("the primary");
        local_cluster::ensure_database(&primary.url("postgres"), "haven", None).unwrap();
        haven::db::run_migrations(&primary.url("haven")).unwrap();
        base_backup(&primary, &options("r").root);
        let replica = LocalCluster::start(&options("r")).expect("the standby");
        (primary, replica)
    })
    .await
    .unwrap();
    let replica_url = replica.url("haven");
    let app = spawn_app_on(primary.url("haven"), |s| {
        s.reports_database_url = Some(replica_url.clone().into());
        // The test clusters commit asynchronously (WAL is flushed, and so sent, every 200 ms).
        s.replica_max_lag_ms = 2000;
    })
    .await;
    assert!(in_recovery(&replica_url).await, "the copy runs as a standby");

    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    for _ in 0..5 {
        assert_eq!(caseworker.post(paths::VICTIMS, victim_body(Uuid::new_v4())).await.status, StatusCode::CREATED);
    }
    let own_total = async || {
        let body = caseworker.get(&paths::report("operation-summary")).await;
        assert_eq!(body.status, StatusCode::OK, "{}", body.text);
        figure(&body.json(), json!(["_total"]))
    };

    // A caseworker's exact figures and a partner's release, read on the standby.
    assert_eq!(own_total().await, Some(5), "exact, and as fresh as the primary");
    let partner = app.caller(app.create_org().await, Role::Partner).await;
    let release = partner.get(&paths::report("operation-summary")).await;
    assert_eq!(release.status, StatusCode::OK, "{}", release.text);
    let counts = [
        reads_from(&app, "replica").await,
        reads_from(&app, "primary_replica_behind").await,
        reads_from(&app, "primary_replica_down").await,
    ];
    assert!(counts[0] >= 2, "the reads went to the standby: {counts:?}");
    assert_eq!(reads_from(&app, "primary_replica_behind").await + reads_from(&app, "primary_replica_down").await, 0);
    // The ledger and the spending are on the primary (the standby refuses every write).
    assert_eq!(app.count("report_releases").await, 1);
    assert_eq!(app.count("report_spend").await, 1);

    // The standby stops replaying: a new case must still be counted, so the primary answers.
    on_replica(&replica_url, "SELECT pg_wal_replay_pause()").await;
    assert_eq!(caseworker.post(paths::VICTIMS, victim_body(Uuid::new_v4())).await.status, StatusCode::CREATED);
    assert_eq!(own_total().await, Some(6), "never a stale figure");
    assert_eq!(reads_from(&app, "primary_replica_behind").await, 1);
    on_replica(&replica_url, "SELECT pg_wal_replay_resume()").await;
    // A replica found behind is skipped for a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = reads_from(&app, "replica").await;
    assert_eq!(own_total().await, Some(6));
    assert_eq!(reads_from(&app, "replica").await, before + 1, "the standby serves again once it has caught up");

    // The standby is down: reports go on, from the primary.
    tokio::task::spawn_blocking(move || replica.stop()).await.unwrap();
    assert_eq!(own_total().await, Some(6));
    let release = partner.get(&paths::query(paths::report("operation-summary"), "from=2025-01")).await;
    assert_eq!(release.status, StatusCode::OK, "{}", release.text);
    assert!(reads_from(&app, "primary_replica_down").await >= 2);
    drop(primary);
}

#[tokio::test]
async fn a_reports_url_that_is_not_a_standby_of_the_main_database_is_never_read() {
    // The main database itself: not in recovery, so never taken for a caught-up replica.
    let url = crate::helpers::fresh_database();
    let app = spawn_app_on(url.clone(), |s| s.reports_database_url = Some(url.clone().into())).await;
    let caseworker = app.caller(app.create_org().await, Role::Caseworker).await;
    assert_eq!(caseworker.post(paths::VICTIMS, victim_body(Uuid::new_v4())).await.status, StatusCode::CREATED);
    let own = caseworker.get(&paths::report("operation-summary")).await.json();
    assert_eq!(figure(&own, json!(["_total"])), Some(1));
    assert_eq!(reads_from(&app, "replica").await, 0);
    assert_eq!(reads_from(&app, "primary_replica_down").await, 1);
}
