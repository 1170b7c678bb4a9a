//! Faults: the server killed with SIGKILL in the middle of writes loses no acknowledged create and
//! leaves nothing half-written; a PostgreSQL outage is answered with prompt 503s and `/readyz`
//! says so, and the service recovers by itself when the database returns.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use haven::db::local_cluster::{self, ClusterOptions, LocalCluster};
use haven::domain::{OrganizationKind, Role};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, serve_with_metrics, spawn_app, spawn_binary, test_settings, wait_ready};
use crate::paths;
use crate::victims::victim_body;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let mut conn = app.pool.get().await.unwrap();
    diesel::sql_query(sql).get_result::<Count>(&mut conn).await.unwrap().n
}

#[tokio::test]
async fn sigkill_during_writes_loses_no_acknowledged_create() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    // The caseworker's token goes to a separate `haven serve` process, through a plain client.
    let caseworker = app.caller(org, Role::Caseworker).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("hk-{}", &Uuid::new_v4().simple().to_string()[..8]));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut child = spawn_binary(&app, port, &dir, &[]);
    wait_ready(&client, &base, &dir).await;

    // Eight writers create victims with ids of their own until the server dies under them.
    let acknowledged: Arc<Mutex<Vec<Uuid>>> = Default::default();
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (client, base, token, acknowledged) =
            (client.clone(), base.clone(), caseworker.token.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let id = Uuid::new_v4();
                let sent = client
                    .post(format!("{base}{}", paths::VICTIMS))
                    .bearer_auth(&token)
                    .json(&victim_body(id))
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status() == StatusCode::CREATED => acknowledged.lock().unwrap().push(id),
                    Ok(resp) => panic!("create answered {} before the kill", resp.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "writes did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap(); // SIGKILL, mid-request for most writers
    child.wait().await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let mut child = spawn_binary(&app, port, &dir, &[]);
    wait_ready(&client, &base, &dir).await;
    for id in &acknowledged {
        let victim_url = format!("{base}{}", paths::victim(id));
        let resp = client.get(victim_url).bearer_auth(&caseworker.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "acknowledged victim {id} lost");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["identity"]["given_names"], "MARKERGIVEN Ana", "identity of {id} unreadable");
    }
    // Nothing half-written: every stored victim (acknowledged or cut off before its answer) has
    // its identity, its audit event and its own case number.
    let victims = count(&app, &format!("SELECT count(*) AS n FROM victims WHERE organization_id = '{org}'")).await;
    assert!(victims >= acknowledged.len() as i64);
    let whole = count(
        &app,
        &format!(
            "SELECT count(*) AS n FROM victims v WHERE v.organization_id = '{org}' \
             AND EXISTS (SELECT 1 FROM victim_identities i WHERE i.victim_id = v.id) \
             AND EXISTS (SELECT 1 FROM audit_events a WHERE a.target_id = v.id AND a.action = 'victim.create')"
        ),
    )
    .await;
    assert_eq!(whole, victims, "a victim without its identity or its audit event");
    let numbers =
        count(&app, &format!("SELECT count(DISTINCT case_number) AS n FROM victims WHERE organization_id = '{org}'"))
            .await;
    assert_eq!(numbers, victims);
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A cluster of the test's own (the shared one must stay up), which the test stops and starts.
struct OwnCluster {
    options: ClusterOptions,
    cluster: Option<LocalCluster>,
}

impl OwnCluster {
    fn start() -> OwnCluster {
        let root = std::env::temp_dir().join(format!("ho-{}", &Uuid::new_v4().simple().to_string()[..8]));
        let options = ClusterOptions { root, ephemeral: false, bin_dir: None };
        let cluster = Some(LocalCluster::start(&options).expect("start a cluster"));
        OwnCluster { options, cluster }
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.cluster.take() {
            c.stop();
        }
    }
    fn restart(&mut self) {
        self.cluster = Some(LocalCluster::start(&self.options).expect("restart the cluster"));
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.options.root);
    }
}

/// Every answer during the outage is a 2xx or a 503 problem (never a 500, never a hang).
async fn assert_available_or_503(resp: reqwest::Response, what: &str) -> StatusCode {
    let status = resp.status();
    if status.is_success() {
        return status;
    }
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert_eq!(resp.headers()["content-type"], "application/problem+json", "{what}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "urn:haven:problem:unavailable", "{what}: {body}");
    status
}

#[tokio::test]
async fn postgresql_outage_gives_503_and_the_service_recovers_by_itself() {
    let mut own = tokio::task::spawn_blocking(OwnCluster::start).await.unwrap();
    let admin_url = own.cluster.as_ref().unwrap().url("postgres");
    let url = own.cluster.as_ref().unwrap().url("haven");
    let setup = {
        let (admin_url, url) = (admin_url.clone(), url.clone());
        move || {
            local_cluster::ensure_database(&admin_url, "haven", None).unwrap();
            haven::db::run_migrations(&url).unwrap();
        }
    };
    tokio::task::spawn_blocking(setup).await.unwrap();
    let mut settings = test_settings(&url);
    settings.db_timeout_ms = 2_000;
    let (address, pool, metrics_address) = serve_with_metrics(settings, &url);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut app = TestApp {
        url,
        address,
        client: client.clone(),
        pool,
        metrics_address,
        host_org: Uuid::nil(),
        host_admin: TestUser { id: Uuid::nil(), email: String::new() },
    };
    app.host_org = app.create_org_of_kind("Host", OrganizationKind::Host, None).await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let created = caseworker.post(paths::VICTIMS, victim_body(Uuid::new_v4())).await;
    assert_eq!(created.status, StatusCode::CREATED);

    // Readers keep going through the outage; each answer is checked. They run as tasks of their
    // own, so they hold the caseworker's token, not the caller.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen: Arc<Mutex<HashSet<u16>>> = Default::default();
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (client, base, token, stop, seen) =
            (client.clone(), app.address.clone(), caseworker.token.clone(), stop.clone(), seen.clone());
        readers.push(tokio::spawn(async move {
            while !std::sync::atomic::AtomicBool::load(&stop, std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let resp = client
                    .get(format!("{base}{}", paths::VICTIMS))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("an answer, not a hang");
                let status = assert_available_or_503(resp, "victim list during the outage").await;
                assert!(started.elapsed() < Duration::from_secs(10), "answered only after {:?}", started.elapsed());
                seen.lock().unwrap().insert(status.as_u16());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    own = tokio::task::spawn_blocking(move || {
        own.stop();
        own
    })
    .await
    .unwrap();

    let down = app.request(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE, "readyz while the database is down");
    for path in [paths::ME, paths::VICTIMS] {
        let resp = client.get(format!("{}{path}", app.address)).bearer_auth(&caseworker.token).send().await.unwrap();
        assert_eq!(assert_available_or_503(resp, path).await, StatusCode::SERVICE_UNAVAILABLE);
    }
    let login = client
        .post(format!("{}{}", app.address, paths::LOGIN))
        .json(&serde_json::json!({"email": "someone@example.org", "password": "tidal-mango-lantern-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_available_or_503(login, "login").await, StatusCode::SERVICE_UNAVAILABLE);

    // Kept to the end of the test: dropping it stops the cluster and removes it.
    let _own = tokio::task::spawn_blocking(move || {
        own.restart();
        own
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = caseworker.get(paths::VICTIMS).await;
        if resp.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {} {}", resp.status, resp.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = app.request(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    let again = caseworker.post(paths::VICTIMS, victim_body(Uuid::new_v4())).await;
    assert_eq!(again.status, StatusCode::CREATED, "writes work again: {}", again.text);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&503) && seen.contains(&200), "readers saw {seen:?}");
}

/// A request stuck behind a lock is answered 503 at `HAVEN_REQUEST_TIMEOUT`, not left hanging;
/// the service goes on answering once the lock is gone.
#[tokio::test]
async fn a_stuck_request_gets_503_at_its_deadline() {
    let app = crate::helpers::spawn_app_with(|s| s.request_timeout = 1).await;
    let org = app.create_org().await;
    let partner = app.caller(org, Role::Partner).await;
    // Hold the lock that upkeep takes, as a long rebuild would; then a new record leaves the
    // rollups to bring up to date, so the report needs upkeep. (Taken first, so the start-up
    // warm-up, if it is still running, cannot bring them up to date meanwhile.)
    let mut holder = app.pool.get().await.unwrap();
    diesel::sql_query("SELECT pg_advisory_lock(79445457456722)").execute(&mut holder).await.unwrap();
    crate::victims::create_victim(&app, org).await;
    // The start-up warm-up may be waiting for the lock too: only what began after this counts.
    diesel::sql_query("CREATE TEMPORARY TABLE asked AS SELECT clock_timestamp() AS at")
        .execute(&mut holder)
        .await
        .unwrap();
    let started = Instant::now();
    let resp = partner.get(&paths::report("trends")).await;
    let problem = resp.assert_problem(503, "unavailable");
    assert!(resp.header("retry-after").is_some(), "{problem}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    // Nor does the database go on waiting for it: its statement is given up at the deadline, and a
    // transaction it left is ended (D177), while the lock is still held.
    #[derive(diesel::QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let left: Left = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND (wait_event_type = 'Lock' OR state LIKE 'idle in transaction%') \
         AND query_start >= (SELECT at FROM asked)",
    )
    .get_result(&mut holder)
    .await
    .unwrap();
    assert_eq!(left.n, 0, "the abandoned request's work goes on in the database");
    diesel::sql_query("SELECT pg_advisory_unlock(79445457456722)").execute(&mut holder).await.unwrap();
    drop(holder);
    let resp = partner.get(&paths::report("trends")).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
}
