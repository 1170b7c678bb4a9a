//! One lockout for every endpoint that checks a password (D139): the login, the second-factor
//! enrolment and the password change read the lock before hashing, and a wrong password at any of
//! them counts towards it.

use haven::domain::Role;
use serde_json::json;

use crate::helpers::{PASSWORD, Response, TestApp, spawn_app_with};
use crate::paths;

const WRONG: &str = "wrong-password-again";

/// Three wrong passwords lock; the per-account throttle is widened so that only the lockout can
/// answer 429 here.
async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.lockout_threshold = 3;
        s.login_per_account_burst = 50;
    })
    .await
}

fn retry_after(r: &Response) -> i64 {
    r.header("retry-after").expect("Retry-After").parse().unwrap()
}

async fn audited_endpoints(app: &TestApp) -> Vec<(String, String)> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        endpoint: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        reason: String,
    }
    let mut conn = app.pool.get().await.unwrap();
    let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT coalesce(details->>'endpoint', 'login') AS endpoint, details->>'reason' AS reason
             FROM audit_events WHERE action = 'auth.login_failed' ORDER BY id",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    rows.into_iter().map(|r| (r.endpoint, r.reason)).collect()
}

#[tokio::test]
async fn wrong_passwords_anywhere_count_towards_one_lockout_that_every_endpoint_honours() {
    let app = app().await;
    let org = app.create_org().await;
    let user = app.create_user(org, Role::Auditor).await;
    let me = app.sign_in(&user).await;
    let email = user.email.as_str();

    app.post(paths::SECOND_FACTOR, None, json!({ "email": email, "password": WRONG }))
        .await
        .assert_problem(401, "invalid-credentials");
    let confirm = json!({ "email": email, "password": WRONG, "code": "123456" });
    app.post(paths::SECOND_FACTOR_CONFIRM, None, confirm).await.assert_problem(401, "invalid-credentials");
    let change = json!({ "current_password": WRONG, "new_password": "fresh-lagoon-compass-7" });
    me.post(paths::MY_PASSWORD, change).await.assert_problem(422, "validation");

    // Three wrong passwords at three endpoints: locked, and the right password is refused at each.
    let change = json!({ "current_password": PASSWORD, "new_password": "fresh-lagoon-compass-7" });
    let confirm = json!({ "email": email, "password": PASSWORD, "code": "123456" });
    let refused = [
        app.login_raw(email, PASSWORD).await,
        app.post(paths::SECOND_FACTOR, None, json!({ "email": email, "password": PASSWORD })).await,
        app.post(paths::SECOND_FACTOR_CONFIRM, None, confirm).await,
        me.post(paths::MY_PASSWORD, change).await,
    ];
    for answer in &refused {
        answer.assert_problem(429, "too-many-requests");
        assert!((60..=15 * 60).contains(&retry_after(answer)), "Retry-After {}", retry_after(answer));
    }
    let view = app.host_admin().await.get(&paths::user(user.id)).await.json();
    assert!(view["locked_until"].is_string(), "{view}");
    let expected = [
        ("second_factor", "bad_password"),
        ("second_factor", "bad_password"),
        ("password_change", "bad_password"),
        ("login", "locked"),
        ("second_factor", "locked"),
        ("second_factor", "locked"),
        ("password_change", "locked"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(e, r)| (e.to_string(), r.to_string())).collect();
    assert_eq!(audited_endpoints(&app).await, expected);
}

#[tokio::test]
async fn only_a_full_login_clears_the_count_of_failures() {
    let app = app().await;
    let org = app.create_org().await;
    let user = app.create_user(org, Role::Auditor).await;
    for _ in 0..2 {
        app.login_raw(&user.email, WRONG).await.assert_problem(401, "invalid-credentials");
    }
    // A right password at enrolment does not clear them: someone who knows it could otherwise clear
    // the count their wrong second-factor codes build.
    let start = app.post(paths::SECOND_FACTOR, None, json!({ "email": user.email, "password": PASSWORD })).await;
    assert_eq!(start.status, reqwest::StatusCode::OK, "{}", start.text);
    app.login_raw(&user.email, WRONG).await.assert_problem(401, "invalid-credentials");
    app.login_raw(&user.email, PASSWORD).await.assert_problem(429, "too-many-requests");
}

#[tokio::test]
async fn an_email_without_an_account_locks_at_enrolment_like_one_with_an_account() {
    let app = app().await;
    let org = app.create_org().await;
    let user = app.create_user(org, Role::Caseworker).await;
    let ghost = "ghost@example.org";
    for email in [user.email.as_str(), ghost] {
        for _ in 0..3 {
            app.post(paths::SECOND_FACTOR, None, json!({ "email": email, "password": WRONG }))
                .await
                .assert_problem(401, "invalid-credentials");
        }
    }
    let real = app.post(paths::SECOND_FACTOR, None, json!({ "email": user.email, "password": PASSWORD })).await;
    let unknown = app.post(paths::SECOND_FACTOR, None, json!({ "email": ghost, "password": PASSWORD })).await;
    assert_eq!(real.assert_problem(429, "too-many-requests"), unknown.assert_problem(429, "too-many-requests"));
    assert!((retry_after(&real) - retry_after(&unknown)).abs() <= 2);
    // The lock set at enrolment holds at the login too.
    app.login_raw(ghost, WRONG).await.assert_problem(429, "too-many-requests");
    app.login_raw(&user.email, PASSWORD).await.assert_problem(429, "too-many-requests");
    // The audit log records the attempts on an email without an account, never the email.
    let mut conn = app.pool.get().await.unwrap();
    let mentions: Vec<Mention> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT id FROM audit_events WHERE details::text ILIKE '%ghost%'"),
        &mut conn,
    )
    .await
    .unwrap();
    assert!(mentions.is_empty(), "an audit record names the email");
}

#[derive(diesel::QueryableByName)]
struct Mention {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[allow(dead_code)]
    id: i64,
}

/// A disabled account's right password is refused and counted as a wrong one is, at the login and
/// at the second factor's enrolment: were it left uncounted, the lock coming one attempt later would
/// tell a guesser which of its guesses was the password (D12).
#[tokio::test]
async fn a_disabled_account_is_refused_and_counted_like_a_wrong_password() {
    let app = app().await;
    let org = app.create_org().await;
    let mut conn = app.pool.get().await.unwrap();
    for at_login in [true, false] {
        let user = app.create_user(org, Role::Auditor).await;
        let disable = format!("UPDATE users SET disabled = true WHERE id = '{}'", user.id);
        diesel_async::RunQueryDsl::execute(diesel::sql_query(disable), &mut conn).await.unwrap();
        let attempt = |password: &'static str| {
            let (app, email) = (&app, user.email.clone());
            async move {
                if at_login {
                    app.login_raw(&email, password).await
                } else {
                    app.post(paths::SECOND_FACTOR, None, json!({ "email": email, "password": password })).await
                }
            }
        };
        // Two wrong passwords, then the right one: the third failure, which locks (threshold 3).
        for password in [WRONG, WRONG, PASSWORD] {
            attempt(password).await.assert_problem(401, "invalid-credentials");
        }
        let next = attempt(WRONG).await;
        next.assert_problem(429, "too-many-requests");
        let view = app.host_admin().await.get(&paths::user(user.id)).await.json();
        assert!(view["locked_until"].is_string(), "{view}");
    }
}
