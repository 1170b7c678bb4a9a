//! Two-factor authentication (TOTP, RFC 6238) with codes computed here from the enrolled secret:
//! enrolment, login, replay, recovery codes, an organisation's requirement, and a caseworker's new
//! factor waiting for a second person.

use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use totp_rs::{Builder, Secret, Totp};

use crate::helpers::{PASSWORD, TestApp, TestUser, spawn_app};
use crate::paths;

fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// The app's view of a secret, to compute codes as a phone would.
pub fn phone(secret: &str) -> Totp {
    Builder::new()
        .with_secret(Secret::try_from_base32(secret).unwrap())
        .with_account_name("test")
        .with_issuer(Some("Haven"))
        .build()
        .unwrap()
}

/// A code of the next time step (the current one may have been spent by the confirmation).
fn next_code(totp: &Totp) -> String {
    totp.generate(now() + 30).to_string()
}

/// Enrols `user`'s second factor; returns the phone and the confirmation's answer.
async fn enrol(app: &TestApp, user: &TestUser) -> (Totp, Value) {
    let start = app.post(paths::SECOND_FACTOR, None, json!({ "email": user.email, "password": PASSWORD })).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    assert!(start.json()["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let totp = phone(start.json()["secret"].as_str().unwrap());
    let wrong = json!({ "email": user.email, "password": PASSWORD, "code": "000000" });
    if totp.generate(now()).to_string() != "000000" {
        app.post(paths::SECOND_FACTOR_CONFIRM, None, wrong).await.assert_problem(422, "validation");
    }
    let code = totp.generate(now()).to_string();
    let confirmed = app
        .post(paths::SECOND_FACTOR_CONFIRM, None, json!({ "email": user.email, "password": PASSWORD, "code": code }))
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    (totp, confirmed.json())
}

async fn login(app: &TestApp, user: &TestUser, extra: Value) -> crate::helpers::Response {
    let mut body = json!({ "email": user.email, "password": PASSWORD });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    app.post(paths::LOGIN, None, body).await
}

#[tokio::test]
async fn a_second_factor_is_enrolled_and_asked_for_at_every_login() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let auditor = app.create_user(org, Role::Auditor).await;
    let (totp, confirmed) = enrol(&app, &auditor).await;
    assert_eq!(confirmed["awaiting_approval"], false);
    let recovery: Vec<String> =
        confirmed["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(recovery.len(), 10);

    login(&app, &auditor, json!({})).await.assert_problem(401, "second-factor-required");
    login(&app, &auditor, json!({ "code": "123456" })).await.assert_problem(401, "invalid-credentials");
    let code = next_code(&totp);
    assert_eq!(login(&app, &auditor, json!({ "code": code })).await.status, StatusCode::OK);
    // A code works once (RFC 6238 section 5.2).
    login(&app, &auditor, json!({ "code": code })).await.assert_problem(401, "invalid-credentials");
    // A recovery code works once, in place of a code.
    assert_eq!(login(&app, &auditor, json!({ "recovery_code": recovery[0] })).await.status, StatusCode::OK);
    login(&app, &auditor, json!({ "recovery_code": recovery[0] })).await.assert_problem(401, "invalid-credentials");
    // A wrong password never reveals that a second factor is enrolled.
    app.post(paths::LOGIN, None, json!({ "email": auditor.email, "password": "not-the-password-at-all" }))
        .await
        .assert_problem(401, "invalid-credentials");
    // Enrolled once: a new secret needs an admin's reset first.
    app.post(paths::SECOND_FACTOR, None, json!({ "email": auditor.email, "password": PASSWORD }))
        .await
        .assert_problem(409, "conflict");
    let admin = app.caller(org, Role::Admin).await;
    let reset = admin.post(&paths::user_second_factor_reset(auditor.id), json!({})).await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.text);
    assert_eq!(login(&app, &auditor, json!({})).await.status, StatusCode::OK, "no factor, none required of an auditor");
    // Only hashes of recovery codes are stored, and the secret only sealed.
    assert!(app.audit_actions().await.contains(&("user.second_factor_reset".into(), "success".into())));
}

#[tokio::test]
async fn an_organisation_requires_it_and_a_caseworkers_new_factor_waits_for_a_second_person() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let admin = app.caller(org, Role::Admin).await;
    // The second person: another admin (the organisation's caseworkers have no factor yet).
    let colleague = app.caller(org, Role::Admin).await;
    let bystander = app.caller(org, Role::Caseworker).await;
    let caseworker = app.create_user(org, Role::Caseworker).await;
    assert_eq!(login(&app, &caseworker, json!({})).await.status, StatusCode::OK, "not required by default here");

    let set = admin.put(&paths::organization_second_factor(org), json!({ "required_for_caseworkers": true })).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.json()["require_second_factor"], true);
    bystander.get(paths::ME).await.assert_problem(401, "unauthorized");
    login(&app, &caseworker, json!({})).await.assert_problem(403, "second-factor-enrolment-required");

    let (totp, confirmed) = enrol(&app, &caseworker).await;
    assert_eq!(confirmed["awaiting_approval"], true);
    login(&app, &caseworker, json!({ "code": next_code(&totp) })).await.assert_problem(403, "awaiting-approval");
    let pending_grants = paths::query(paths::GRANTS, format!("organization_id={org}&status=pending"));
    let pending = colleague.get(&pending_grants).await.json();
    let grant =
        pending["items"].as_array().unwrap().iter().find(|g| g["kind"] == "second_factor").expect("a grant").clone();
    assert_eq!(grant["requested_by"], caseworker.id.to_string());
    let approved = colleague.post(&paths::grant_approval(grant["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(login(&app, &caseworker, json!({ "code": next_code(&totp) })).await.status, StatusCode::OK);

    // A lost phone: the admin who resets the factor cannot approve the next one.
    let reset = admin.post(&paths::user_second_factor_reset(caseworker.id), json!({})).await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.text);
    login(&app, &caseworker, json!({})).await.assert_problem(403, "awaiting-approval");
    let (totp, _) = enrol(&app, &caseworker).await;
    let pending = admin.get(&pending_grants).await.json();
    let grant = pending["items"][0]["id"].as_str().unwrap().to_owned();
    admin.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(403, "second-person-required");
    let approved = colleague.post(&paths::grant_approval(&grant), json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(login(&app, &caseworker, json!({ "code": next_code(&totp) })).await.status, StatusCode::OK);

    // Other organisations' admins cannot set it.
    let other = app.create_org().await;
    let other_admin = app.caller(other, Role::Admin).await;
    other_admin
        .put(&paths::organization_second_factor(org), json!({ "required_for_caseworkers": false }))
        .await
        .assert_problem(404, "not-found");
}

/// An auditor with an enrolled factor on an app where three failures lock (the per-account
/// throttle widened so that only the lockout answers 429), hashing `hashes` at once; and codes
/// that no step within the accepted skew produces.
async fn locking_app(hashes: usize) -> (TestApp, TestUser, Totp, Vec<String>) {
    let app = crate::helpers::spawn_app_with(|s| {
        s.lockout_threshold = 3;
        s.login_per_account_burst = 50;
        s.hash_concurrency = Some(hashes);
    })
    .await;
    let org = app.create_org().await;
    let auditor = app.create_user(org, Role::Auditor).await;
    let (totp, _) = enrol(&app, &auditor).await;
    let accepted: Vec<String> =
        [now() - 30, now(), now() + 30, now() + 60].map(|t| totp.generate(t).to_string()).to_vec();
    let wrong = (0..).map(|n| format!("{n:06}")).filter(|c| !accepted.contains(c)).take(8).collect();
    (app, auditor, totp, wrong)
}

#[tokio::test]
async fn wrong_codes_and_recovery_codes_at_login_count_towards_the_lockout() {
    let (app, auditor, totp, wrong) = locking_app(1).await;
    for code in &wrong[..2] {
        login(&app, &auditor, json!({ "code": code })).await.assert_problem(401, "invalid-credentials");
    }
    // A recovery code that was never issued counts like a wrong code.
    login(&app, &auditor, json!({ "recovery_code": "aaaaa-bbbbb" })).await.assert_problem(401, "invalid-credentials");
    // Locked: the right password with the right code is refused too.
    login(&app, &auditor, json!({ "code": next_code(&totp) })).await.assert_problem(429, "too-many-requests");
    assert_eq!(audited_reasons(&app).await, ["bad_second_factor", "bad_second_factor", "bad_second_factor", "locked"]);
}

#[tokio::test]
async fn parallel_wrong_codes_are_checked_no_more_often_than_the_threshold() {
    // Hashed side by side, so the guesses reach the code check together.
    let (app, auditor, totp, wrong) = locking_app(8).await;
    let guesses = wrong.iter().map(|code| login(&app, &auditor, json!({ "code": code })));
    for answer in futures::future::join_all(guesses).await {
        assert!([401, 429].contains(&answer.status.as_u16()), "{}", answer.text);
    }
    let reasons = audited_reasons(&app).await;
    let checked = reasons.iter().filter(|r| *r == "bad_second_factor").count();
    assert_eq!(checked, 3, "codes checked: each one past the threshold was a free guess");
    // Every guess is recorded, those refused under the row lock included.
    assert_eq!(reasons.len(), 8, "{reasons:?}");
    login(&app, &auditor, json!({ "code": next_code(&totp) })).await.assert_problem(429, "too-many-requests");
}

async fn audited_reasons(app: &TestApp) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        reason: String,
    }
    let mut conn = app.pool.get().await.unwrap();
    let query = "SELECT details->>'reason' AS reason FROM audit_events WHERE action = 'auth.login_failed' ORDER BY id";
    let rows: Vec<Row> = diesel_async::RunQueryDsl::load(diesel::sql_query(query), &mut conn).await.unwrap();
    rows.into_iter().map(|r| r.reason).collect()
}
