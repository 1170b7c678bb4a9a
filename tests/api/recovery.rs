//! `haven recover-admin`: a host admin who lost their password gets a single-use enrolment token,
//! audited; no other account can be recovered that way (the two-person rule stays whole).

use haven::domain::{Email, Role};
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, spawn_app};
use crate::paths;

#[tokio::test]
async fn a_host_admin_regains_access_with_a_one_time_token_and_nobody_else_can() {
    let app = spawn_app().await;
    let email = Email::parse(&app.host_admin.email).unwrap();
    let old_session = app.host_admin().await;

    let token = haven::bootstrap::recover_host_admin(&app.pool, &email, 48).await.expect("recovered");
    assert_eq!(old_session.get(paths::ME).await.status, StatusCode::UNAUTHORIZED, "sessions ended");
    assert_eq!(
        app.login_raw(&app.host_admin.email, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "password voided"
    );

    let new_password = "harbour-violet-compass-77";
    app.enrol(&token.token, new_password).await;
    let resp = app.login_raw(&app.host_admin.email, new_password).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    // Single use.
    let again = app
        .post(paths::ENROL, None, serde_json::json!({ "token": token.token, "password": "another-long-passphrase-91" }))
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);

    // Whoever ran the command cannot make the recovered admin a second person: its credential
    // counts as issued, not confirmed.
    let recovered = old_session.with_token(resp.json()["access_token"].as_str().unwrap());
    let requester = app.caller(app.host_org, Role::Admin).await;
    let created = requester
        .post(paths::USERS, serde_json::json!({ "email": "new-caseworker@example.org", "role": "caseworker" }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let created = created.json();
    app.enrol(created["enrolment"]["token"].as_str().unwrap(), "lantern-orchard-river-58").await;
    let grant = created["grant"]["id"].as_str().unwrap();
    recovered
        .post(&paths::grant_approval(grant), serde_json::json!({}))
        .await
        .assert_problem(403, "second-person-required");

    let resets: Vec<_> = app.audit_actions().await.into_iter().filter(|(a, _)| a == "user.password_reset").collect();
    assert_eq!(resets.len(), 1, "the recovery is in the audit log");

    // A caseworker, an organisation's admin and an unknown address are refused.
    let org = app.create_org().await;
    for role in [Role::Caseworker, Role::Admin] {
        let user = app.create_user(org, role).await;
        let refused = haven::bootstrap::recover_host_admin(&app.pool, &Email::parse(&user.email).unwrap(), 48).await;
        assert!(refused.is_err(), "{role:?} recovered from the command line");
        assert_eq!(app.login_raw(&user.email, PASSWORD).await.status, StatusCode::OK, "{role:?} untouched");
    }
    let unknown = Email::parse("nobody@example.org").unwrap();
    assert!(haven::bootstrap::recover_host_admin(&app.pool, &unknown, 48).await.is_err());
}
