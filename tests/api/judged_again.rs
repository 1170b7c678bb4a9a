//! What a request checks before its transaction (a password, a code, consent, the account's state)
//! is judged again as it acts (docs/DECISIONS.md D152, D153): a change that commits in between, a
//! reset, a password change, a confirmed factor, a withdrawn consent, an organisation's new
//! requirement, stands. Each test holds the row the request will wait for, lets the request get
//! there, commits the change, and checks the request did not land on top of it.

use diesel::sql_types::{BigInt, Integer};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, spawn_app};
use crate::lock_order::{ERASURE_HOLDS_THE_CASE, RESET_HOLDS_THE_ACCOUNT, meanwhile};
use crate::paths;
use crate::second_factor::phone;
use crate::victims::create_victim;

/// A reset in one statement, as the other writer: the account's sessions end, its password goes
/// and its tokens lapse.
const A_RESET_ENDS_IT: &str = "WITH ended AS (UPDATE sessions SET revoked_at = now() \
     WHERE user_id = $1 AND revoked_at IS NULL RETURNING 1) \
     UPDATE users SET password_hash = NULL, token_version = token_version + 1 WHERE id = $1";
const NEW_PASSWORD: &str = "kora-baobab-tide-lantern";

/// A password change checks the current password before its transaction. A reset that commits
/// meanwhile has ended the session it came through: the change does not land on top of it.
#[tokio::test]
async fn a_password_checked_before_a_reset_is_not_set_after_it() {
    let app = spawn_app().await;
    let staff = app.caller(app.create_org().await, Role::Auditor).await;
    let body = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    let change = async { staff.post(paths::MY_PASSWORD, body).await };
    let (changed, reset) = meanwhile(&app, staff.id(), RESET_HOLDS_THE_ACCOUNT, A_RESET_ENDS_IT, change).await;
    assert_eq!(reset, Ok(1), "the reset went through while the change waited");
    changed.assert_problem(401, "unauthorized");
    for password in [PASSWORD, NEW_PASSWORD] {
        app.login_raw(&staff.user.email, password).await.assert_problem(401, "invalid-credentials");
    }
}

/// A second factor's confirmation checks the password before its transaction. A reset that
/// commits meanwhile leaves the factor unconfirmed.
#[tokio::test]
async fn a_second_factor_confirmed_under_a_password_a_reset_removed_stays_inactive() {
    let app = spawn_app().await;
    let user = app.create_user(app.create_org().await, Role::Auditor).await;
    let start = app.post(paths::SECOND_FACTOR, None, json!({ "email": user.email, "password": PASSWORD })).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    let code = phone(start.json()["secret"].as_str().unwrap()).generate(chrono::Utc::now().timestamp() as u64);
    let body = json!({ "email": user.email, "password": PASSWORD, "code": code.to_string() });
    let confirm = async { app.post(paths::SECOND_FACTOR_CONFIRM, None, body).await };
    let (confirmed, reset) = meanwhile(&app, user.id, RESET_HOLDS_THE_ACCOUNT, A_RESET_ENDS_IT, confirm).await;
    assert_eq!(reset, Ok(1), "the reset went through while the confirmation waited");
    confirmed.assert_problem(409, "conflict");
    let active = format!("SELECT count(*) AS n FROM users WHERE id = '{}' AND totp_active", user.id);
    assert_eq!(count(&app, &active).await, 0);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A login checks the password before its transaction. The person's own password change that
/// commits meanwhile ends the other sessions but leaves the tokens' version alone: the login
/// compares the hash it checked, and starts no session with the old password.
#[tokio::test]
async fn a_login_with_a_password_changed_meanwhile_starts_no_session() {
    let app = spawn_app().await;
    let user = app.create_user(app.create_org().await, Role::Auditor).await;
    let change = "UPDATE users SET password_hash = password_hash || '-replaced', version = version + 1 WHERE id = $1";
    let login = async { app.login_raw(&user.email, PASSWORD).await };
    let (login, changed) = meanwhile(&app, user.id, RESET_HOLDS_THE_ACCOUNT, change, login).await;
    assert_eq!(changed, Ok(1), "the change went through while the login waited");
    login.assert_problem(401, "invalid-credentials");
}

/// A second factor's start checks that none is active before it writes its secret. One
/// confirmed meanwhile is not replaced.
#[tokio::test]
async fn a_started_factor_does_not_replace_one_confirmed_meanwhile() {
    let app = spawn_app().await;
    let user = app.create_user(app.create_org().await, Role::Auditor).await;
    let confirmed = "UPDATE users SET totp_active = true, totp_ciphertext = '\\x01' WHERE id = $1";
    let body = json!({ "email": user.email, "password": PASSWORD });
    let start = async { app.post(paths::SECOND_FACTOR, None, body).await };
    let (started, confirmed) = meanwhile(&app, user.id, RESET_HOLDS_THE_ACCOUNT, confirmed, start).await;
    assert_eq!(confirmed, Ok(1), "the confirmation went through while the start waited");
    started.assert_problem(409, "conflict");
    let kept = format!("SELECT count(*) AS n FROM users WHERE id = '{}' AND totp_ciphertext = '\\x01'", user.id);
    assert_eq!(count(&app, &kept).await, 1, "the confirmed factor was replaced");
}

/// A referral checks the consent to services before its transaction. A withdrawal committed
/// while it waits for the case stands: no referral is made.
#[tokio::test]
async fn a_referral_waits_for_the_case_and_respects_a_consent_withdrawn_meanwhile() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let withdrawn = "UPDATE victims SET consent_services = false WHERE id = $1";
    let body = json!({ "victim_id": victim, "to_organization_id": to, "service": "shelter", "urgency": "urgent" });
    let refer = async { sender.post(paths::REFERRALS, body).await };
    let (referred, withdrawn) = meanwhile(&app, victim, ERASURE_HOLDS_THE_CASE, withdrawn, refer).await;
    assert_eq!(withdrawn, Ok(1), "the withdrawal went through while the referral waited");
    referred.assert_problem(422, "validation");
    assert_eq!(count(&app, &format!("SELECT count(*) AS n FROM referrals WHERE victim_id = '{victim}'")).await, 0);
}

/// A receiver records assistance on the strength of an accepted referral, checked before its
/// transaction. A completion of the referral committed while it waits for the case stands: no
/// assistance, and no notes, are recorded after the referral ended.
#[tokio::test]
async fn assistance_by_a_receiver_respects_a_referral_ended_meanwhile() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let receiver = app.caller(to, Role::Caseworker).await;
    let referral = crate::referrals::refer(&sender, victim, to).await["id"].as_str().unwrap().to_owned();
    let accepted = receiver.post(&paths::referral_step(&referral, "accept"), json!({})).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    let completed = "UPDATE referrals SET status = 'completed', completed_at = now() WHERE victim_id = $1";
    // Completed, and the case then handed to a third organisation: the receiver is told its
    // referral ended (403), not that the case moved on (D169).
    let elsewhere = app.create_org().await;
    let moved_on = format!(
        "WITH ended AS ({completed}) UPDATE victims SET organization_id = '{elsewhere}', case_number = 1 WHERE id = $1"
    );
    for (notes, ending) in [(None, completed), (Some("MARKERNOTES given a bed"), completed), (None, &moved_on)] {
        let mut body = json!({ "kind": "shelter", "provided_on": "2026-11-01" });
        if let Some(notes) = notes {
            body["notes"] = json!(notes);
        }
        let record = async { receiver.post(&paths::assistance(victim), body).await };
        let (recorded, ended) = meanwhile(&app, victim, ERASURE_HOLDS_THE_CASE, ending, record).await;
        assert!(ended.is_ok(), "the completion went through while the assistance waited: {ended:?}");
        recorded.assert_problem(403, "forbidden");
        let again = format!(
            "WITH live AS (UPDATE referrals SET status = 'accepted', completed_at = NULL WHERE victim_id = $1) \
             UPDATE victims SET organization_id = '{from}' WHERE id = $1"
        );
        diesel::sql_query(again)
            .bind::<diesel::sql_types::Uuid, _>(victim)
            .execute(&mut AsyncPgConnection::establish(&app.url).await.unwrap())
            .await
            .unwrap();
    }
    let recorded = format!("SELECT count(*) AS n FROM assistance_records WHERE victim_id = '{victim}'");
    assert_eq!(count(&app, &recorded).await, 0);
}

/// An organisation that comes to require a second factor ends the sessions its caseworkers
/// opened with a password alone, also one whose login was under way: the login holds the
/// account until its session is committed, and the requirement waits for the account before it
/// ends the sessions. Here the login is held just after it wrote its session (a trigger waits for
/// a lock the test holds).
#[tokio::test]
async fn a_second_factor_required_meanwhile_ends_a_login_under_way() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let admin = app.caller(org, Role::Admin).await;
    let caseworker = app.create_user(org, Role::Caseworker).await;
    let held = format!(
        "CREATE FUNCTION hold_login() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            IF NEW.user_id = '{}' THEN PERFORM pg_advisory_xact_lock(4242); END IF; RETURN NEW; END $$;
        CREATE TRIGGER hold_login AFTER INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION hold_login();",
        caseworker.id
    );
    diesel_async::SimpleAsyncConnection::batch_execute(&mut *app.pool.get().await.unwrap(), &held).await.unwrap();
    let mut holder = AsyncPgConnection::establish(&app.url).await.unwrap();
    let mut watch = AsyncPgConnection::establish(&app.url).await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut holder).await.unwrap();
    diesel::sql_query("SELECT pg_advisory_xact_lock(4242)").execute(&mut holder).await.unwrap();
    let pid =
        diesel::select(diesel::dsl::sql::<Integer>("pg_backend_pid()")).get_result::<i32>(&mut holder).await.unwrap();

    let login = app.login_raw(&caseworker.email, PASSWORD);
    let require = async {
        wait_until(&mut watch, &format!("{pid} = ANY(pg_blocking_pids(pid))")).await;
        let path = paths::organization_second_factor(org);
        let put = admin.put(&path, json!({ "required_for_caseworkers": true }));
        let release = async {
            // The requirement waits for the login, not for the test: then let the login go on.
            wait_until(
                &mut watch,
                &format!("cardinality(pg_blocking_pids(pid)) > 0 AND NOT {pid} = ANY(pg_blocking_pids(pid))"),
            )
            .await;
            diesel::sql_query("COMMIT").execute(&mut holder).await.unwrap();
        };
        tokio::join!(put, release).0
    };
    let (login, required) = tokio::join!(login, require);
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(required.status, StatusCode::OK, "{}", required.text);
    let refresh = json!({ "refresh_token": login.json()["refresh_token"] });
    app.post(paths::REFRESH, None, refresh).await.assert_problem(401, "invalid-credentials");
}

/// Polls until some backend matches `condition` in `pg_stat_activity`.
async fn wait_until(watch: &mut AsyncPgConnection, condition: &str) {
    let query = format!("(SELECT count(*) FROM pg_stat_activity WHERE {condition})");
    while diesel::select(diesel::dsl::sql::<BigInt>(&query)).get_result::<i64>(watch).await.unwrap() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(&mut app.pool.get().await.unwrap()).await.unwrap().n
}
