//! Several Haven processes on one database (issue 16): the test app and `haven serve` run as a
//! process of its own share nothing but PostgreSQL, yet a revocation through either is refused by
//! the other at once, login limits and lockouts hold on both, a retried create lands once, and
//! their releases share one budget and one set of rollups.

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::deaf_proxy;
use crate::helpers::{Caller, PASSWORD, TestApp, spawn_app, spawn_app_with};
use crate::paths;
use crate::reports::figure;
use crate::victims::victim_body;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn sql_count(app: &TestApp, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(&mut app.pool.get().await.unwrap()).await.unwrap().n
}

async fn sql(app: &TestApp, sql: &str) {
    diesel::sql_query(sql).execute(&mut app.pool.get().await.unwrap()).await.unwrap();
}

const LISTENERS: &str = "SELECT count(*) AS n FROM pg_stat_activity
    WHERE application_name = 'haven-revocations' AND datname = current_database()";

/// Waits until `n` processes are listening for revocations on the app's database.
async fn listening(app: &TestApp, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while sql_count(app, LISTENERS).await < n {
        assert!(Instant::now() < deadline, "the processes did not start listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `caller`'s token is refused (401) within 100 ms, asking every 5 ms: only a heard
/// notice can do that while the process remembers session checks for longer.
async fn refused_at_once(caller: &Caller<'_>, what: &str) {
    let start = Instant::now();
    loop {
        match caller.get(paths::ME).await.status {
            StatusCode::UNAUTHORIZED => break,
            StatusCode::OK => {}
            other => panic!("unexpected {other}"),
        }
        assert!(start.elapsed() < Duration::from_secs(1), "{what}: still accepted a second after the revocation");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    assert!(took < Duration::from_millis(100), "{what}: accepted for {took:?}");
}

#[tokio::test]
async fn a_revocation_through_one_process_is_refused_by_the_other_at_once() {
    let app = spawn_app().await;
    // The other process remembers session checks for the longest time allowed: only the notice
    // can make it refuse within 100 ms.
    let (_process, other) = app.another_process(&[("HAVEN_SESSION_CACHE_MS", "5000")]).await;
    listening(&app, 2).await;
    let org = app.create_org().await;

    // A logout through the test app.
    let caseworker = app.caller(org, Role::Caseworker).await;
    let there = caseworker.at(&other);
    assert_eq!(there.get(paths::ME).await.status, StatusCode::OK);
    assert_eq!(caseworker.request(reqwest::Method::POST, paths::LOGOUT, None).await.status, StatusCode::NO_CONTENT);
    refused_at_once(&there, "a logged-out token on the other process").await;

    // An account disabled by hand, outside Haven.
    let colleague = app.caller(org, Role::Caseworker).await.at(&other);
    assert_eq!(colleague.get(paths::ME).await.status, StatusCode::OK);
    sql(&app, &format!("UPDATE users SET disabled = true WHERE id = '{}'", colleague.id())).await;
    refused_at_once(&colleague, "a disabled account").await;

    // The fallback: while the listening connections are down, nothing is recalled, so a
    // revocation nobody hears is refused all the same.
    let third = app.caller(org, Role::Caseworker).await.at(&other);
    assert_eq!(third.get(paths::ME).await.status, StatusCode::OK);
    sql(
        &app,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = 'haven-revocations' AND datname = current_database()",
    )
    .await;
    // Long enough for the processes to notice, shorter than their first reconnection (100 ms).
    tokio::time::sleep(Duration::from_millis(50)).await;
    sql(&app, &format!("UPDATE sessions SET revoked_at = now() WHERE user_id = '{}'", third.id())).await;
    third.get(paths::ME).await.assert_problem(401, "unauthorized");
    // And the listeners come back by themselves.
    listening(&app, 2).await;
}

/// A process trusts its memory of session checks only once it has heard a notice of its own on its
/// listening connection. One whose connection answers every query but is handed no notices (as a
/// pooler in transaction mode does) checks the database on every request; one that hears them
/// remembers, which the control shows by a revocation kept silent on purpose.
#[tokio::test]
async fn only_a_process_that_hears_notices_remembers_session_checks() {
    let app = spawn_app().await;
    let deaf_url = deaf_proxy::start(&app.url).await;
    let (_hearing, hearing) = app.another_process(&[("HAVEN_SESSION_CACHE_MS", "5000")]).await;
    let (_deaf, deaf) =
        app.another_process(&[("HAVEN_SESSION_CACHE_MS", "5000"), ("DATABASE_URL", deaf_url.as_str())]).await;
    listening(&app, 3).await;
    // Far longer than a heartbeat's round trip: a listener that is ever to be trusted is by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let org = app.create_org().await;
    let (heard, unheard) = (app.caller(org, Role::Caseworker).await, app.caller(org, Role::Caseworker).await);
    let (heard, unheard) = (heard.at(&hearing), unheard.at(&deaf));
    for caller in [&heard, &unheard] {
        for _ in 0..2 {
            assert_eq!(caller.get(paths::ME).await.status, StatusCode::OK);
        }
    }
    // Revoked with the announcing trigger switched off: no process hears of it.
    let silent = format!(
        "BEGIN; ALTER TABLE sessions DISABLE TRIGGER sessions_revoked;
        UPDATE sessions SET revoked_at = now() WHERE user_id IN ('{}', '{}');
        ALTER TABLE sessions ENABLE ALWAYS TRIGGER sessions_revoked; COMMIT;",
        heard.id(),
        unheard.id()
    );
    diesel_async::SimpleAsyncConnection::batch_execute(&mut *app.pool.get().await.unwrap(), &silent).await.unwrap();
    unheard.get(paths::ME).await.assert_problem(401, "unauthorized");
    assert_eq!(
        heard.get(paths::ME).await.status,
        StatusCode::OK,
        "the process that hears notices should answer from its memory"
    );
}

#[tokio::test]
async fn revocations_by_truncate_or_with_triggers_switched_off_are_heard_too() {
    let app = spawn_app().await;
    let (_process, other) = app.another_process(&[("HAVEN_SESSION_CACHE_MS", "5000")]).await;
    listening(&app, 2).await;
    let org = app.create_org().await;

    // With session_replication_role = replica, as a restore or a bulk change by hand would run.
    let first = app.caller(org, Role::Caseworker).await.at(&other);
    assert_eq!(first.get(paths::ME).await.status, StatusCode::OK);
    let replica = format!(
        "BEGIN; SET LOCAL session_replication_role = replica;
        UPDATE sessions SET revoked_at = now() WHERE user_id = '{}'; COMMIT;",
        first.id()
    );
    diesel_async::SimpleAsyncConnection::batch_execute(&mut *app.pool.get().await.unwrap(), &replica).await.unwrap();
    refused_at_once(&first, "a session revoked in replica mode").await;

    // Every session at once.
    let second = app.caller(org, Role::Caseworker).await.at(&other);
    assert_eq!(second.get(paths::ME).await.status, StatusCode::OK);
    sql(&app, "TRUNCATE sessions CASCADE").await;
    refused_at_once(&second, "a truncated session").await;
}

const LOGIN_LIMITS: [(&str, &str); 3] = [
    ("HAVEN_LOGIN_PER_ADDRESS_PER_MINUTE", "10000"),
    ("HAVEN_LOGIN_PER_ACCOUNT_BURST", "3"),
    ("HAVEN_LOCKOUT_THRESHOLD", "1000"),
];

#[tokio::test]
async fn login_limits_hold_across_processes() {
    let app = spawn_app_with(|s| s.login_per_account_burst = 3).await;
    let (_process, other) = app.another_process(&LOGIN_LIMITS).await;
    let user = app.create_user(app.create_org().await, Role::Caseworker).await;
    // Three attempts in a burst, wherever they land; the fourth is refused on both.
    for (n, process) in [&app, &other, &app].into_iter().enumerate() {
        let resp = process.login_raw(&user.email, "not-the-password").await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "attempt {n}: {}", resp.text);
    }
    for process in [&other, &app] {
        let resp = process.login_raw(&user.email, "not-the-password").await;
        resp.assert_problem(429, "too-many-requests");
        assert!(resp.header("retry-after").is_some());
    }

    // The per-address limit is shared too.
    let app = spawn_app_with(|s| s.login_per_address_per_minute = 4).await;
    let env = [("HAVEN_LOGIN_PER_ADDRESS_PER_MINUTE", "4"), ("HAVEN_LOGIN_PER_ACCOUNT_BURST", "1000")];
    let (_process, other) = app.another_process(&env).await;
    for n in 0..4 {
        let process = if n % 2 == 0 { &app } else { &other };
        let resp = process.login_raw(&format!("nobody{n}@example.org"), "not-the-password").await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "attempt {n}: {}", resp.text);
    }
    for process in [&app, &other] {
        process.login_raw("nobody9@example.org", "not-the-password").await.assert_problem(429, "too-many-requests");
    }
}

#[tokio::test]
async fn a_lockout_holds_on_every_process_for_accounts_and_for_emails_without_one() {
    let app = spawn_app_with(|s| s.lockout_threshold = 4).await;
    let env = [
        ("HAVEN_LOGIN_PER_ADDRESS_PER_MINUTE", "10000"),
        ("HAVEN_LOGIN_PER_ACCOUNT_BURST", "1000"),
        ("HAVEN_LOCKOUT_THRESHOLD", "4"),
    ];
    let (_process, other) = app.another_process(&env).await;
    let user = app.create_user(app.create_org().await, Role::Caseworker).await;
    let ghost = format!("ghost-{}@example.org", Uuid::new_v4().simple());
    for email in [user.email.as_str(), ghost.as_str()] {
        // Four failures, two on each process, lock the email on both.
        for n in 0..4 {
            let process = if n % 2 == 0 { &app } else { &other };
            let resp = process.login_raw(email, "not-the-password").await;
            assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{email} attempt {n}: {}", resp.text);
        }
        for process in [&app, &other] {
            let resp = process.login_raw(email, PASSWORD).await;
            resp.assert_problem(429, "too-many-requests");
        }
    }
}

#[tokio::test]
async fn a_retried_create_lands_once_across_processes() {
    let app = spawn_app().await;
    let (_process, other) = app.another_process(&[]).await;
    let caseworker = app.caller(app.create_org().await, Role::Caseworker).await;
    let there = caseworker.at(&other);
    let id = Uuid::new_v4();
    let body = victim_body(id);
    let sends = (0..8).map(|n| {
        let (who, body) = (if n % 2 == 0 { &caseworker } else { &there }, body.clone());
        async move { who.post(paths::VICTIMS, body).await }
    });
    let answers = futures::future::join_all(sends).await;
    let created = answers.iter().filter(|r| r.status == StatusCode::CREATED).count();
    let retried = answers.iter().filter(|r| r.status == StatusCode::OK).count();
    assert_eq!((created, retried), (1, 7), "{:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(answers.iter().all(|r| r.json()["id"] == json!(id)));
    assert_eq!(sql_count(&app, &format!("SELECT count(*) AS n FROM victims WHERE id = '{id}'")).await, 1);
}

#[tokio::test]
async fn releases_on_two_processes_share_one_budget_and_one_set_of_rollups() {
    let app = spawn_app_with(|s| {
        s.dp_rho = 1.0;
        s.dp_allowance = 3.0;
    })
    .await;
    let env = [("HAVEN_DP_RHO", "1"), ("HAVEN_DP_ALLOWANCE", "3"), ("HAVEN_DP_CAP", "100000")];
    let (_process, other) = app.another_process(&env).await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let there = caseworker.at(&other);
    // Cases written through both processes, while both keep their rollups up to date.
    for n in 0..6 {
        let who = if n % 2 == 0 { &caseworker } else { &there };
        assert_eq!(who.post(paths::VICTIMS, victim_body(Uuid::new_v4())).await.status, StatusCode::CREATED);
        let own = who.get(&paths::report("operation-summary")).await.json();
        assert_eq!(figure(&own, json!(["_total"])), Some(n + 1), "exact, whichever process counts");
    }

    // Eight new questions at once, four through each process, against an allowance of three.
    let partner = app.caller(app.create_org().await, Role::Partner).await;
    let partner_there = partner.at(&other);
    let asks = (1..=8).map(|month| {
        let who = if month % 2 == 0 { &partner } else { &partner_there };
        async move { who.get(&paths::query(paths::report("trends"), format!("from=2025-{month:02}"))).await }
    });
    let answers = futures::future::join_all(asks).await;
    let released = answers.iter().filter(|r| r.status == StatusCode::OK).count();
    let refused = answers.iter().filter(|r| r.status == StatusCode::FORBIDDEN).count();
    assert_eq!((released, refused), (3, 5), "{:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
    let releases = sql_count(&app, "SELECT count(*) AS n FROM report_releases WHERE rho > 0").await;
    assert_eq!(releases, 3, "one ledger, one budget");
    let spend = sql_count(&app, "SELECT coalesce(sum(releases), 0)::bigint AS n FROM report_spend").await;
    assert_eq!(spend, 3);
}
