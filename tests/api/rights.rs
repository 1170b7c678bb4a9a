//! People's rights over their records: the consent history and subject access.

use diesel_async::RunQueryDsl;
use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::paths;
use crate::referrals::refer;
use crate::victims::{assert_no_marker, create_victim};

fn history(page: &Value) -> Vec<(bool, Option<String>)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["anonymised_statistics"].as_bool().unwrap(), e["method"].as_str().map(str::to_owned)))
        .collect()
}

#[tokio::test]
async fn every_change_of_consent_is_kept_with_who_when_and_how() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, caseworker) = create_victim(&app, org).await;
    let path = paths::case_step(victim, "consent-history");
    let first = caseworker.get(&path).await.json();
    assert_eq!(history(&first), vec![(true, None)], "the consent the case was created with");
    assert_eq!(first["items"][0]["recorded_by"], caseworker.id().to_string());

    // Withdrawn in writing, with the day it was given.
    let withdrawal = json!({ "consent": { "services": true, "share_with_referral_partners": true,
        "anonymised_statistics": false, "method": "written_form", "recorded_at": "2026-11-20T10:00:00Z" } });
    let resp = caseworker.patch(&paths::victim(victim), "\"1\"", withdrawal).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(resp.json()["consent"]["method"], "written_form");
    // A change that leaves consent alone adds nothing; new consent without a method has none.
    assert_eq!(
        caseworker.patch(&paths::victim(victim), "\"2\"", json!({ "status": "follow_up" })).await.status,
        StatusCode::OK
    );
    let renewed = json!({ "consent": { "services": true, "anonymised_statistics": true } });
    let resp = caseworker.patch(&paths::victim(victim), "\"3\"", renewed).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert!(resp.json()["consent"].get("method").is_none(), "{}", resp.text);

    let admin = app.caller(org, Role::Admin).await;
    let page = admin.get(&path).await.json();
    assert_eq!(history(&page), vec![(true, None), (false, Some("written_form".into())), (true, None)]);
    assert_eq!(page["items"][1]["given_at"], "2026-11-20T10:00:00Z");
    app.caller(org, Role::Partner).await.get(&path).await.assert_problem(403, "forbidden");
    app.caller(app.create_org().await, Role::Caseworker).await.get(&path).await.assert_problem(404, "not-found");

    // The history is evidence: the database refuses to change or remove it.
    let mut conn = app.pool.get().await.unwrap();
    for statement in ["UPDATE consent_events SET anonymised_statistics = true", "DELETE FROM consent_events"] {
        assert!(diesel::sql_query(statement).execute(&mut conn).await.is_err(), "{statement}");
    }
}

#[tokio::test]
async fn subject_access_gives_the_person_everything_held_about_them_and_who_read_it() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, caseworker) = create_victim(&app, org).await;
    let note = json!({ "kind": "medical", "provided_on": "2026-11-01", "notes": "MARKERNOTES clinic visit" });
    assert_eq!(caseworker.post(&paths::assistance(victim), note).await.status, StatusCode::CREATED);
    let task = json!({ "kind": "follow_up", "due_on": "2026-12-20", "notes": "MARKERNOTES call back" });
    assert_eq!(caseworker.post(&paths::tasks_of(victim), task).await.status, StatusCode::CREATED);
    let goal = json!({ "kind": "health", "planned_end_on": "2027-03-01", "objectives": "MARKERNOTES recover" });
    assert_eq!(caseworker.post(&paths::support_plan(victim), goal).await.status, StatusCode::CREATED);
    let outside = json!({ "provider_name": "Clinique du Port", "provider_country": "SEN", "service": "medical",
        "referred_on": "2026-11-02" });
    assert_eq!(caseworker.post(&paths::external_referrals_of(victim), outside).await.status, StatusCode::CREATED);
    let referral = refer(&caseworker, victim, other).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    assert_eq!(colleague.get(&paths::victim(victim)).await.status, StatusCode::OK, "a read of the identity");
    let receiver = app.caller(other, Role::Caseworker).await;
    assert_eq!(receiver.get(&paths::victim(victim)).await.status, StatusCode::OK, "a read through the referral");

    let path = paths::case_step(victim, "subject-access");
    let resp = caseworker.get(&path).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let doc = resp.json();
    assert_eq!(doc["case_file"]["identity"]["document_number"], "MARKERDOC123");
    assert_eq!(doc["assistance"][0]["notes"], "MARKERNOTES clinic visit");
    assert_eq!(doc["tasks"][0]["notes"], "MARKERNOTES call back");
    assert_eq!(doc["support_plan"][0]["objectives"], "MARKERNOTES recover");
    assert_eq!(doc["referrals"][0]["id"], referral["id"]);
    assert_eq!(doc["referrals"][0]["reason"], "MARKERNOTES needs a safe house");
    assert_eq!(doc["external_referrals"][0]["provider_name"], "Clinique du Port");
    assert_eq!(doc["consent_history"].as_array().unwrap().len(), 1);
    let reads: Vec<(Value, Value, String)> = doc["identity_reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user_id"].clone(), r["organization_id"].clone(), r["what"].as_str().unwrap().to_owned()))
        .collect();
    for (who, what) in [(colleague.id(), "identity"), (caseworker.id(), "subject_access")] {
        let read = (json!(who), json!(org), what.to_owned());
        assert!(reads.contains(&read), "{who} {what} missing from {reads:?}");
    }
    // Another organisation's reader is named by organisation and role, not account (D165).
    let receiver_reads = reads.iter().filter(|(_, o, _)| *o == json!(other)).collect::<Vec<_>>();
    assert_eq!(
        receiver_reads,
        vec![&(Value::Null, json!(other), "identity".to_owned())],
        "one read, filed in two logs"
    );
    assert!(app.audit_actions().await.contains(&("victim.subject_access".into(), "success".into())));

    // Only the owner's caseworkers who may see the identity answer it.
    for role in [Role::Admin, Role::Auditor, Role::Partner] {
        let refused = app.caller(org, role).await.get(&path).await;
        let problem = refused.assert_problem(403, "forbidden");
        assert_no_marker(&format!("{role:?}"), &problem.to_string());
    }
    receiver.get(&path).await.assert_problem(403, "forbidden");
    app.caller(app.create_org().await, Role::Caseworker).await.get(&path).await.assert_problem(404, "not-found");
    app.host_admin().await.get(&path).await.assert_problem(404, "not-found");
}

/// A receiving organisation sees the consent it acts under, not who at the owner recorded it.
#[tokio::test]
async fn a_receiver_reads_the_consent_history_without_the_owners_staff() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, caseworker) = create_victim(&app, org).await;
    refer(&caseworker, victim, other).await;
    let path = paths::case_step(victim, "consent-history");
    let own = caseworker.get(&path).await.json();
    assert!(own["items"][0]["recorded_by"].is_string());
    let receiver = app.caller(other, Role::Caseworker).await;
    let theirs = receiver.get(&path).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text);
    let theirs = theirs.json();
    assert_eq!(theirs["items"][0]["anonymised_statistics"], true);
    assert!(theirs["items"][0].get("recorded_by").is_none(), "{theirs}");
}
