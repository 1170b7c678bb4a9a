//! Writers that meet at the same rows lock them in one order (docs/DECISIONS.md D150): a case
//! before anything of it, an account before its grants. Taken in the other order, two writers each
//! hold what the other waits for; PostgreSQL aborts one of them after a second, and that request
//! fails. Each test holds the first row as the other writer does from its start, runs a request,
//! and once the request waits for a lock, goes on to the second row: both must succeed. A
//! deadlock left elsewhere is answered as a request to send again.

use std::sync::atomic::{AtomicBool, Ordering};

use diesel::sql_types::{BigInt, Integer, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Response, TestApp, spawn_app};
use crate::paths;
use crate::referrals::refer;
use crate::victims::create_victim;

/// Runs `request` while another transaction holds `first` (a statement on `id`), and once the
/// request waits for that transaction (or has answered without waiting), runs `second` (on `id`)
/// in it and commits it. Returns the request's answer and the rows `second` changed, or why it
/// failed.
pub async fn meanwhile(
    app: &TestApp,
    id: Uuid,
    first: &str,
    second: &str,
    request: impl std::future::Future<Output = Response>,
) -> (Response, Result<usize, String>) {
    let then = async |other: &mut AsyncPgConnection| {
        diesel::sql_query(second).bind::<SqlUuid, _>(id).execute(other).await.map_err(|e| e.to_string())
    };
    let (response, went_on, _) = meanwhile_then(app, id, first, request, then).await;
    (response, went_on)
}

/// `meanwhile` with any step in the holding transaction before it commits (`then`, given its
/// connection). Also says whether the request was waiting for the holder when `then` ran (rather
/// than having answered without waiting).
pub async fn meanwhile_then<R>(
    app: &TestApp,
    id: Uuid,
    first: &str,
    request: impl std::future::Future<Output = Response>,
    then: impl AsyncFnOnce(&mut AsyncPgConnection) -> R,
) -> (Response, R, bool) {
    let mut other = AsyncPgConnection::establish(&app.url).await.unwrap();
    let mut watch = AsyncPgConnection::establish(&app.url).await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut other).await.unwrap();
    diesel::sql_query(first).bind::<SqlUuid, _>(id).execute(&mut other).await.unwrap();
    let holder = diesel::select(diesel::dsl::sql::<Integer>("pg_backend_pid()")).get_result::<i32>(&mut other);
    let holder = holder.await.unwrap();
    let answered = AtomicBool::new(false);
    let request = async {
        let response = request.await;
        answered.store(true, Ordering::SeqCst);
        response
    };
    let go_on = async {
        // Waits until something waits for `other`: the request (the test app runs nothing else
        // that locks these rows), or until the request has answered without waiting.
        let waiting = format!("(SELECT count(*) FROM pg_stat_activity WHERE {holder} = ANY(pg_blocking_pids(pid)))");
        while !AtomicBool::load(&answered, Ordering::SeqCst)
            && diesel::select(diesel::dsl::sql::<BigInt>(&waiting)).get_result::<i64>(&mut watch).await.unwrap() == 0
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let waited = !AtomicBool::load(&answered, Ordering::SeqCst);
        let went_on = then(&mut other).await;
        // An aborted transaction's COMMIT rolls it back without an error.
        diesel::sql_query("COMMIT").execute(&mut other).await.unwrap();
        (went_on, waited)
    };
    let (response, (went_on, waited)) = tokio::join!(request, go_on);
    (response, went_on, waited)
}

/// An erasure (and the retention job) locks the case, then updates its referrals.
pub const ERASURE_HOLDS_THE_CASE: &str = "SELECT 1 FROM victims WHERE id = $1 FOR UPDATE";
const ERASURE_REACHES_ITS_REFERRALS: &str =
    "UPDATE referrals SET reason_key_id = NULL, reason_nonce = NULL, reason_ciphertext = NULL WHERE victim_id = $1";

/// Both parties' moves on a referral lock the case first: the sender's because it writes on its
/// case, the receiver's because its decline writes rows that name the case (what the receiver's
/// clients must forget).
#[tokio::test]
async fn a_move_on_a_referral_waits_for_its_case_before_it_holds_the_referral() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let receiver = app.caller(to, Role::Caseworker).await;
    let step = |id: &str, action| paths::referral_step(id, action);

    let first = refer(&sender, victim, to).await["id"].as_str().unwrap().to_owned();
    let cancel = async { sender.post(&step(&first, "cancel"), json!({})).await };
    let (cancelled, erased) =
        meanwhile(&app, victim, ERASURE_HOLDS_THE_CASE, ERASURE_REACHES_ITS_REFERRALS, cancel).await;
    assert_eq!(erased, Ok(1), "the erasure reached the referral while the sender's cancel waited");
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json()["status"], "cancelled");

    let second = refer(&sender, victim, to).await["id"].as_str().unwrap().to_owned();
    let decline = async { receiver.post(&step(&second, "decline"), json!({ "reason": "no_capacity" })).await };
    let (declined, erased) =
        meanwhile(&app, victim, ERASURE_HOLDS_THE_CASE, ERASURE_REACHES_ITS_REFERRALS, decline).await;
    assert_eq!(erased, Ok(2), "the erasure reached the referrals while the receiver's decline waited");
    assert_eq!(declined.status, StatusCode::OK, "{}", declined.text);
    assert_eq!(declined.json()["status"], "declined");
}

/// A receiver's assistance takes its case before it holds its referrals (D167), as the moves on a
/// referral do: an erasure holding the case and reaching the referrals is waited for, not
/// deadlocked with.
#[tokio::test]
async fn a_receivers_assistance_waits_for_its_case_before_it_holds_the_referral() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let receiver = app.caller(to, Role::Caseworker).await;
    let referral = refer(&sender, victim, to).await["id"].as_str().unwrap().to_owned();
    let accepted = receiver.post(&paths::referral_step(&referral, "accept"), json!({})).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    let body = json!({ "kind": "shelter", "provided_on": "2026-11-01", "notes": "MARKERNOTES a bed" });
    let record = async { receiver.post(&paths::assistance(victim), body).await };
    let (recorded, erased) =
        meanwhile(&app, victim, ERASURE_HOLDS_THE_CASE, ERASURE_REACHES_ITS_REFERRALS, record).await;
    assert_eq!(erased, Ok(1), "the erasure reached the referral while the assistance waited");
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
}

/// A reset of an account (and a confirmed second factor) locks the account, then withdraws its
/// pending grant.
pub const RESET_HOLDS_THE_ACCOUNT: &str = "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE";
const RESET_REACHES_ITS_GRANT: &str =
    "UPDATE access_grants SET reason = reason WHERE user_id = $1 AND status = 'pending'";
/// A reset files its own grant for the account (another admin's request).
const RESET_FILES_ITS_GRANT: &str = "INSERT INTO access_grants (id, organization_id, user_id, kind, requested_by) \
     SELECT gen_random_uuid(), u.organization_id, u.id, 'credential_reset', admin.id FROM users u \
     JOIN users admin ON admin.organization_id = u.organization_id AND admin.role = 'admin' WHERE u.id = $1 LIMIT 1";
/// An approval of a grant, a role change that withdraws one and a request that files one lock
/// the account first, then the grant.
#[tokio::test]
async fn a_decision_on_a_grant_waits_for_the_account_before_it_holds_the_grant() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (x, y) = (app.caller(org, Role::Admin).await, app.caller(org, Role::Admin).await);
    let new_caseworker = |email: &'static str| {
        let x = &x;
        let app = &app;
        async move {
            let created = x.post(paths::USERS, json!({ "email": email, "role": "caseworker" })).await.json();
            app.enrol(created["enrolment"]["token"].as_str().unwrap(), "kora-baobab-tide-lantern").await;
            let user: Uuid = created["user"]["id"].as_str().unwrap().parse().unwrap();
            (user, created["grant"]["id"].as_str().unwrap().to_owned())
        }
    };

    let (user, grant) = new_caseworker("approved@example.org").await;
    let approve = async { y.post(&paths::grant_approval(&grant), json!({})).await };
    let (approved, reached) = meanwhile(&app, user, RESET_HOLDS_THE_ACCOUNT, RESET_REACHES_ITS_GRANT, approve).await;
    assert_eq!(reached, Ok(1), "the reset reached the grant while the approval waited");
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(approved.json()["status"], "approved");

    let (user, _) = new_caseworker("demoted@example.org").await;
    let version = y.get(&paths::user(user)).await.json()["version"].to_string();
    let demote = async { y.patch(&paths::user(user), &format!("\"{version}\""), json!({ "role": "auditor" })).await };
    let (demoted, reached) = meanwhile(&app, user, RESET_HOLDS_THE_ACCOUNT, RESET_REACHES_ITS_GRANT, demote).await;
    assert_eq!(reached, Ok(1), "the reset reached the grant while the role change waited");
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    assert_eq!(demoted.json()["role"], "auditor");

    // A reset files its own grant once it holds the account; enabling the account again waits for
    // the account before it files one, and finds the reset's waiting.
    let (user, grant) = new_caseworker("re-enabled@example.org").await;
    assert_eq!(y.post(&paths::grant_approval(&grant), json!({})).await.status, StatusCode::OK);
    let version = y.get(&paths::user(user)).await.json()["version"].to_string();
    let disabled = y.patch(&paths::user(user), &format!("\"{version}\""), json!({ "disabled": true })).await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    let version = disabled.json()["version"].to_string();
    let enable = async { y.patch(&paths::user(user), &format!("\"{version}\""), json!({ "disabled": false })).await };
    let (enabled, filed) = meanwhile(&app, user, RESET_HOLDS_THE_ACCOUNT, RESET_FILES_ITS_GRANT, enable).await;
    assert_eq!(filed, Ok(1), "the reset filed its grant while the request to enable waited");
    enabled.assert_problem(409, "conflict");
}

/// A logout (or a refresh) holds its session, then names the account in its audit row: a
/// foreign key, so a key-share lock on the account. A reset locks the account, then ends its
/// sessions. The reset's lock leaves room for key-share locks, so the logout finishes first.
const A_LOGOUT_HOLDS_ITS_SESSION: &str = "UPDATE sessions SET last_used_at = now() WHERE user_id = $1";
const A_LOGOUT_NAMES_THE_ACCOUNT: &str = "SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE";

#[tokio::test]
async fn a_reset_lets_a_logout_of_the_same_account_finish_first() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (admin, staff) = (app.caller(org, Role::Admin).await, app.caller(org, Role::Auditor).await);
    let reset = async { admin.post(&paths::user_reset(staff.id()), json!({})).await };
    let (reset, named) =
        meanwhile(&app, staff.id(), A_LOGOUT_HOLDS_ITS_SESSION, A_LOGOUT_NAMES_THE_ACCOUNT, reset).await;
    assert_eq!(named, Ok(1), "the logout named the account while the reset waited for its session");
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
}

/// Two admins who reset each other at the same moment each lock the other's account, then name
/// their own (as the reset's issuer and in its audit row). With both accounts locked for update
/// this deadlocked; the lock a reset takes leaves room for being named, so both go through.
#[tokio::test]
async fn two_admins_who_reset_each_other_at_once_both_get_through() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (x, y) = (app.caller(org, Role::Admin).await, app.caller(org, Role::Admin).await);
    let mut other = AsyncPgConnection::establish(&app.url).await.unwrap();
    let mut watch = AsyncPgConnection::establish(&app.url).await.unwrap();
    // A pending grant for each, held here: each reset withdraws its account's after locking the
    // account, so both wait there with the other's account locked, as two resets at one moment.
    for (subject, by) in [(x.id(), y.id()), (y.id(), x.id())] {
        diesel::sql_query(
            "INSERT INTO access_grants (id, organization_id, user_id, kind, requested_by) \
             VALUES (gen_random_uuid(), $1, $2, 'credential_reset', $3)",
        )
        .bind::<SqlUuid, _>(org)
        .bind::<SqlUuid, _>(subject)
        .bind::<SqlUuid, _>(by)
        .execute(&mut other)
        .await
        .unwrap();
    }
    diesel::sql_query("BEGIN").execute(&mut other).await.unwrap();
    diesel::sql_query("UPDATE access_grants SET reason = reason WHERE organization_id = $1 AND status = 'pending'")
        .bind::<SqlUuid, _>(org)
        .execute(&mut other)
        .await
        .unwrap();
    let holder = diesel::select(diesel::dsl::sql::<Integer>("pg_backend_pid()")).get_result::<i32>(&mut other);
    let holder = holder.await.unwrap();
    let both_wait = async {
        let waiting = format!("(SELECT count(*) FROM pg_stat_activity WHERE {holder} = ANY(pg_blocking_pids(pid)))");
        while diesel::select(diesel::dsl::sql::<BigInt>(&waiting)).get_result::<i64>(&mut watch).await.unwrap() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        diesel::sql_query("COMMIT").execute(&mut other).await.unwrap();
    };
    let (of_y, of_x) = (paths::user_reset(y.id()), paths::user_reset(x.id()));
    let (by_x, by_y, ()) = tokio::join!(x.post(&of_y, json!({})), y.post(&of_x, json!({})), both_wait);
    assert_eq!(by_x.status, StatusCode::OK, "{}", by_x.text);
    assert_eq!(by_y.status, StatusCode::OK, "{}", by_y.text);
}

/// A deadlock left somewhere (none is known since D152) undoes one of the two transactions in full. Its
/// request is answered 503 with `Retry-After`, as one to send again, not 500.
#[tokio::test]
async fn a_transaction_undone_on_a_deadlock_is_answered_as_one_to_send_again() {
    use actix_web::ResponseError;
    let app = spawn_app().await;
    let (a, b) = (app.create_org().await, app.create_org().await);
    let (mut one, mut two) =
        (AsyncPgConnection::establish(&app.url).await.unwrap(), AsyncPgConnection::establish(&app.url).await.unwrap());
    let lock = "SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE";
    for (conn, org) in [(&mut one, a), (&mut two, b)] {
        diesel::sql_query("BEGIN").execute(conn).await.unwrap();
        diesel::sql_query(lock).bind::<SqlUuid, _>(org).execute(conn).await.unwrap();
    }
    let (first, second) = tokio::join!(
        diesel::sql_query(lock).bind::<SqlUuid, _>(b).execute(&mut one),
        diesel::sql_query(lock).bind::<SqlUuid, _>(a).execute(&mut two),
    );
    let undone = [first, second].into_iter().find_map(Result::err).expect("PostgreSQL undoes one of the two");
    let response = haven::error::ApiError::from(undone).error_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE.as_u16());
    assert_eq!(response.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
}
