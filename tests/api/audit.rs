use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app};
use crate::paths;

#[tokio::test]
async fn audit_log_visibility_by_role_and_organization() {
    let app = spawn_app().await;
    let org_a = app.create_org().await;
    let org_b = app.create_org().await;
    let a_admin = app.caller(org_a, Role::Admin).await;
    let a_auditor = app.caller(org_a, Role::Auditor).await;
    let a_caseworker = app.caller(org_a, Role::Caseworker).await;
    let a_partner = app.caller(org_a, Role::Partner).await;
    let b_admin = app.caller(org_b, Role::Admin).await;
    let host_auditor = app.caller(app.host_org, Role::Auditor).await;
    let host_admin = app.host_admin().await;
    app.login_raw("nobody@example.org", PASSWORD).await;

    for (who, caller, status) in [("caseworker", &a_caseworker, 403), ("partner", &a_partner, 403)] {
        let resp = caller.get(paths::AUDIT_EVENTS).await;
        assert_eq!(resp.status.as_u16(), status, "{who}: {}", resp.text);
    }
    let a_log = a_auditor.get(&paths::query(paths::AUDIT_EVENTS, "limit=200")).await;
    assert_eq!(a_log.status, StatusCode::OK);
    let items = a_log.json()["items"].as_array().unwrap().clone();
    assert!(!items.is_empty());
    assert!(items.iter().all(|e| e["organization_id"] == org_a.to_string()), "only org A's events");
    assert!(items.iter().any(|e| e["action"] == "auth.login" && e["actor_user_id"] == a_admin.id().to_string()));

    // Newest first, and every event names its request.
    let ids: Vec<i64> = items.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    assert!(items.iter().all(|e| e["request_id"].is_string()));

    // Another organisation's log is hidden (404), even to its admins' peers elsewhere.
    let a_events = paths::query(paths::AUDIT_EVENTS, format!("organization_id={org_a}"));
    b_admin.get(&a_events).await.assert_problem(404, "not-found");
    host_admin.get(&a_events).await.assert_problem(404, "not-found");
    let b_log = b_admin.get(paths::AUDIT_EVENTS).await.json();
    assert!(b_log["items"].as_array().unwrap().iter().all(|e| e["organization_id"] == org_b.to_string()));

    // Host auditors read everything, including events of no organisation.
    let all = host_auditor.get(&paths::query(paths::AUDIT_EVENTS, "limit=200")).await.json();
    let all = all["items"].as_array().unwrap();
    assert!(all.iter().any(|e| e["organization_id"] == org_a.to_string()));
    assert!(all.iter().any(|e| e["organization_id"] == org_b.to_string()));
    let unknown = all
        .iter()
        .find(|e| e["organization_id"].is_null() && e["action"] == "auth.login_failed")
        .expect("org-less event");
    assert_eq!(unknown["details"], json!({ "reason": "unknown_account", "locked": false }));
    assert!(!unknown.to_string().contains("nobody@example.org"), "attempted emails are not recorded");

    // Filters.
    let logins_of_a = paths::query(paths::AUDIT_EVENTS, format!("action=auth.login&organization_id={org_a}"));
    let only = host_auditor.get(&logins_of_a).await.json();
    assert!(only["items"].as_array().unwrap().iter().all(|e| e["action"] == "auth.login"));
    a_admin.get(&paths::query(paths::AUDIT_EVENTS, "action=made.up")).await.assert_problem(422, "validation");
    a_admin.get(&paths::query(paths::AUDIT_EVENTS, "since=yesterday")).await.assert_problem(422, "validation");
    let future = a_admin.get(&paths::query(paths::AUDIT_EVENTS, "since=2999-01-01T00:00:00Z")).await.json();
    assert!(future["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn audit_pagination_walks_every_event_once() {
    let app = spawn_app().await;
    let admin = app.host_admin().await;
    for _ in 0..4 {
        app.login(&app.host_admin).await;
    }
    let everything = admin.get(&paths::query(paths::AUDIT_EVENTS, "limit=200")).await.json();
    let total = everything["items"].as_array().unwrap().len();
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let page = admin.get(&paths::query(paths::AUDIT_EVENTS, format!("limit=2{cursor}"))).await.json();
        seen += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, total);
}

#[tokio::test]
async fn the_database_refuses_to_change_audit_events() {
    use diesel_async::RunQueryDsl;
    let app = spawn_app().await;
    app.login(&app.host_admin).await;
    let mut conn = app.pool.get().await.unwrap();
    for sql in ["UPDATE audit_events SET outcome = 'failure'", "DELETE FROM audit_events", "TRUNCATE audit_events"] {
        let result = diesel::sql_query(sql).execute(&mut conn).await;
        assert!(result.is_err(), "{sql} was allowed");
    }
    assert!(app.count("audit_events").await > 0);
}

async fn execute(app: &crate::helpers::TestApp, sql: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = app.pool.get().await.unwrap();
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

/// An identity leaves only once its audit events are durable. A trigger stands in for a failing
/// audit write (a full disk, a lost connection): the read fails and nothing of the identity is in
/// the answer. A read across organisations files two events, in one statement: when the owner's
/// cannot be written, the reader's is not written either and the identity stays in.
#[tokio::test]
async fn an_identity_read_that_cannot_be_audited_is_refused() {
    use crate::victims::{assert_no_marker, create_victim};
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, caseworker) = create_victim(&app, org).await;
    let admin = app.caller(org, Role::Admin).await;
    let receiver = app.caller(other, Role::Caseworker).await;
    let referral = caseworker
        .post(
            paths::REFERRALS,
            json!({ "victim_id": victim, "to_organization_id": other,
            "service": "shelter", "urgency": "urgent" }),
        )
        .await;
    assert_eq!(referral.status, StatusCode::CREATED, "{}", referral.text);
    let path = paths::victim(victim);
    assert_eq!(receiver.get(&path).await.json()["identity"]["document_number"], "MARKERDOC123");

    execute(
        &app,
        &format!(
            "CREATE FUNCTION refuse_identity_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.action = 'victim.identity_read' AND NEW.organization_id = '{org}' THEN RAISE EXCEPTION 'audit unavailable'; END IF; \
             RETURN NEW; END $$"
        ),
    )
    .await;
    execute(&app, "CREATE TRIGGER refuse_identity_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_identity_audit()").await;
    let reads_before = app.audit_actions().await.iter().filter(|(a, _)| a == "victim.identity_read").count();

    let readers = [("owner's caseworker", &caseworker), ("receiver, whose own event could be written", &receiver)];
    for (who, reader) in readers {
        let resp = reader.get(&path).await;
        assert_eq!(resp.status, StatusCode::INTERNAL_SERVER_ERROR, "{who}: {}", resp.text);
        assert_no_marker(who, &resp.text);
    }
    let reads_after = app.audit_actions().await.iter().filter(|(a, _)| a == "victim.identity_read").count();
    assert_eq!(reads_after, reads_before, "no half-recorded read");
    // A case file without the identity needs no such event.
    let resp = admin.get(&path).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert!(resp.json().get("identity").is_none());
}
