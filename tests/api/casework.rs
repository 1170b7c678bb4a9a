//! Who works a case: assignment, "my cases", and restricted cases whose identity reaches only
//! their assigned caseworkers.

use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Caller, spawn_app};
use crate::paths;
use crate::victims::{assert_no_marker, create_victim, victim_body};

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
}

async fn my_cases(caseworker: &Caller<'_>) -> Vec<String> {
    ids(&caseworker.get(&paths::query(paths::VICTIMS, "assigned_to=me")).await.json())
}

#[tokio::test]
async fn a_case_is_its_creators_until_a_colleague_takes_it_over() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, creator) = create_victim(&app, org).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    let admin = app.caller(org, Role::Admin).await;

    let assignment = creator.get(&paths::assignment(victim)).await.json();
    assert_eq!(assignment, json!({ "caseworkers": [creator.id()], "restricted": false }));
    assert_eq!(my_cases(&creator).await, vec![victim.to_string()]);
    assert!(my_cases(&colleague).await.is_empty());
    assert_eq!(ids(&colleague.get(paths::VICTIMS).await.json()), vec![victim.to_string()], "an organisation's case");

    let handover = json!({ "caseworkers": [colleague.id()], "restricted": false });
    let resp = colleague.put(&paths::assignment(victim), handover.clone()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(resp.json()["caseworkers"], json!([colleague.id()]));
    assert!(my_cases(&creator).await.is_empty());
    assert_eq!(my_cases(&colleague).await, vec![victim.to_string()]);
    let actions = app.audit_actions().await;
    assert!(actions.iter().any(|(a, o)| a == "victim.assign" && o == "success"), "{actions:?}");

    // Staff read who works it; only caseworkers change it; partners and outsiders see nothing.
    assert_eq!(admin.get(&paths::assignment(victim)).await.status, StatusCode::OK);
    admin.put(&paths::assignment(victim), handover.clone()).await.assert_problem(403, "forbidden");
    let partner = app.caller(org, Role::Partner).await;
    partner.get(&paths::assignment(victim)).await.assert_problem(403, "forbidden");
    let outsider = app.caller(app.create_org().await, Role::Caseworker).await;
    outsider.get(&paths::assignment(victim)).await.assert_problem(404, "not-found");

    // Only enabled caseworkers of the case's organisation can work it.
    for who in [admin.id(), outsider.id(), Uuid::new_v4()] {
        let body = json!({ "caseworkers": [colleague.id(), who], "restricted": false });
        let problem = colleague.put(&paths::assignment(victim), body).await.assert_problem(422, "validation");
        assert_eq!(problem["errors"][0]["field"], "caseworkers", "{problem}");
    }
    // Nor one whose access still waits for a second person's approval.
    let email = format!("{}@example.org", Uuid::new_v4());
    let created = admin.post(paths::USERS, json!({ "email": email, "role": "caseworker" })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let pending = created.json()["user"]["id"].as_str().unwrap().to_owned();
    let body = json!({ "caseworkers": [colleague.id(), pending], "restricted": false });
    colleague.put(&paths::assignment(victim), body).await.assert_problem(422, "validation");
    let twice = json!({ "caseworkers": [colleague.id(), colleague.id()], "restricted": false });
    colleague.put(&paths::assignment(victim), twice).await.assert_problem(422, "validation");
    let nobody = json!({ "caseworkers": [], "restricted": false });
    colleague.put(&paths::assignment(victim), nobody).await.assert_problem(422, "validation");
}

#[tokio::test]
async fn a_restricted_case_keeps_its_identity_to_its_assigned_caseworkers() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, assigned) = create_victim(&app, org).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    let note = json!({ "kind": "medical", "provided_on": "2026-11-01", "notes": "MARKERNOTES clinic" });
    assert_eq!(assigned.post(&paths::assistance(victim), note.clone()).await.status, StatusCode::CREATED);
    let referral = json!({ "victim_id": victim, "to_organization_id": other, "service": "legal",
        "reason": "MARKERNOTES hearing" });
    let resp = assigned.post(paths::REFERRALS, referral).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let referral_id = resp.json()["id"].as_str().unwrap().to_owned();
    let search = json!({ "document_number": "MARKERDOC123" });
    assert_eq!(ids(&colleague.post(paths::VICTIM_SEARCH, search.clone()).await.json()).len(), 1, "before");

    let restrict = json!({ "caseworkers": [assigned.id()], "restricted": true });
    let resp = assigned.put(&paths::assignment(victim), restrict.clone()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(resp.json()["restricted"], true);

    // The colleague keeps the case file, and nothing identifying.
    let seen = colleague.get(&paths::victim(victim)).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.json().get("identity").is_none());
    for (what, text) in [
        ("read", seen.text),
        ("list", colleague.get(paths::VICTIMS).await.text),
        ("assistance", colleague.get(&paths::assistance(victim)).await.text),
        ("referral", colleague.get(&paths::referral(&referral_id)).await.text),
    ] {
        assert_no_marker(what, &text);
    }
    assert!(ids(&colleague.post(paths::VICTIM_SEARCH, search.clone()).await.json()).is_empty(), "a match would tell");
    // Nor does the colleague write to it, refer it, or take it over.
    let version = format!("\"{}\"", app_version(&assigned, victim).await);
    colleague
        .patch(&paths::victim(victim), &version, json!({ "status": "follow_up" }))
        .await
        .assert_problem(403, "forbidden");
    colleague.post(&paths::assistance(victim), note).await.assert_problem(403, "forbidden");
    let take = json!({ "caseworkers": [colleague.id()], "restricted": false });
    colleague.put(&paths::assignment(victim), take).await.assert_problem(403, "forbidden");
    let again = json!({ "victim_id": victim, "to_organization_id": other, "service": "shelter" });
    colleague.post(paths::REFERRALS, again).await.assert_problem(403, "forbidden");
    colleague.post(&paths::referral_step(&referral_id, "cancel"), json!({})).await.assert_problem(403, "forbidden");
    // A create "retried" by someone else is a conflict whatever it holds: no guessing by retries.
    colleague.post(paths::VICTIMS, victim_body(victim)).await.assert_problem(409, "conflict");

    // The assigned caseworker still sees all of it, and the receiver of the referral made with
    // consent is another organisation: the restriction is the owner's.
    let own = assigned.get(&paths::victim(victim)).await.json();
    assert_eq!(own["identity"]["document_number"], "MARKERDOC123");
    assert_eq!(ids(&assigned.post(paths::VICTIM_SEARCH, search.clone()).await.json()).len(), 1);
    let receiver = app.caller(other, Role::Caseworker).await;
    assert_eq!(receiver.get(&paths::victim(victim)).await.json()["identity"]["document_number"], "MARKERDOC123");

    // Lifted, the colleague reads it again.
    let lift = json!({ "caseworkers": [assigned.id(), colleague.id()], "restricted": false });
    assert_eq!(assigned.put(&paths::assignment(victim), lift).await.status, StatusCode::OK);
    assert_eq!(colleague.get(&paths::victim(victim)).await.json()["identity"]["document_number"], "MARKERDOC123");
}

async fn app_version(caller: &Caller<'_>, victim: Uuid) -> i64 {
    caller.get(&paths::victim(victim)).await.json()["version"].as_i64().unwrap()
}

#[tokio::test]
async fn assistance_and_referrals_page_and_sync_from_a_time() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, caseworker) = create_victim(&app, org).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let mut made = Vec::new();
    for day in 1..=5 {
        let record = json!({ "kind": "shelter", "provided_on": format!("2026-11-0{day}") });
        let resp = caseworker.post(&paths::assistance(victim), record).await;
        assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
        made.push(resp.json()["id"].as_str().unwrap().to_owned());
    }
    // Pages of two, in id order, until no cursor is given: every record once.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_owned(),
        };
        let page = caseworker.get(&paths::query(paths::assistance(victim), query)).await.json();
        assert!(page["items"].as_array().unwrap().len() <= 2);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    made.sort();
    assert_eq!(seen, made);
    // From a time on: everything since before, nothing since a moment from now.
    let since = |t: chrono::DateTime<chrono::Utc>| format!("updated_since={}", t.format("%Y-%m-%dT%H:%M:%S%.fZ"));
    let later = chrono::Utc::now() + chrono::Duration::seconds(60);
    let all = caseworker.get(&paths::query(paths::assistance(victim), since(before))).await.json();
    assert_eq!(ids(&all).len(), 5);
    let none = caseworker.get(&paths::query(paths::assistance(victim), since(later))).await.json();
    assert!(ids(&none).is_empty());
    caseworker.get(&paths::query(paths::assistance(victim), "limit=0")).await.assert_problem(422, "validation");

    let referral = json!({ "victim_id": victim, "to_organization_id": other, "service": "legal" });
    assert_eq!(caseworker.post(paths::REFERRALS, referral).await.status, StatusCode::CREATED);
    assert_eq!(ids(&caseworker.get(&paths::query(paths::REFERRALS, since(before))).await.json()).len(), 1);
    assert!(ids(&caseworker.get(&paths::query(paths::REFERRALS, since(later))).await.json()).is_empty());
}

#[tokio::test]
async fn a_case_is_closed_and_reopened_with_its_reasons_and_keeps_its_history() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, caseworker) = create_victim(&app, org).await;
    let admin = app.caller(org, Role::Admin).await;
    let close = |reason: &str| json!({ "reason": reason });

    // Closing is its own operation, with a reason; the status cannot be patched into or out of it.
    let version = format!("\"{}\"", app_version(&caseworker, victim).await);
    let patched = caseworker.patch(&paths::victim(victim), &version, json!({ "status": "closed" })).await;
    patched.assert_problem(409, "conflict");
    let mut closed_at_intake = victim_body(Uuid::new_v4());
    closed_at_intake["status"] = json!("closed");
    caseworker.post(paths::VICTIMS, closed_at_intake).await.assert_problem(409, "conflict");
    admin.post(&paths::case_step(victim, "close"), close("goals_met")).await.assert_problem(403, "forbidden");
    caseworker.post(&paths::case_step(victim, "close"), close("no_reason")).await.assert_problem(422, "validation");

    let resp = caseworker.post(&paths::case_step(victim, "close"), close("referred_elsewhere")).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(resp.json()["status"], "closed_referred");
    assert!(resp.header("etag").is_some());
    caseworker.post(&paths::case_step(victim, "close"), close("goals_met")).await.assert_problem(409, "conflict");
    let version = format!("\"{}\"", app_version(&caseworker, victim).await);
    let reopened_by_patch = json!({ "status": "active" });
    caseworker.patch(&paths::victim(victim), &version, reopened_by_patch).await.assert_problem(409, "conflict");
    // Other fields of a closed case can still be corrected.
    let fix = caseworker.patch(&paths::victim(victim), &version, json!({ "labour_sector": "C" })).await;
    assert_eq!(fix.status, StatusCode::OK, "{}", fix.text);

    let reopen = json!({ "reason": "further_support_needed" });
    let resp = caseworker.post(&paths::case_step(victim, "reopen"), reopen.clone()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(resp.json()["status"], "active");
    caseworker.post(&paths::case_step(victim, "reopen"), reopen).await.assert_problem(409, "conflict");
    assert_eq!(caseworker.post(&paths::case_step(victim, "close"), close("lost_contact")).await.status, StatusCode::OK);

    // The history stays, for whoever reads the case file.
    let history = admin.get(&paths::case_step(victim, "closures")).await.json();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{history}");
    assert_eq!(items[0]["reason"], "referred_elsewhere");
    assert_eq!(items[0]["reopen_reason"], "further_support_needed");
    assert_eq!(items[0]["closed_by"], json!(caseworker.id()));
    assert_eq!(items[1]["reason"], "lost_contact");
    assert!(items[1].get("reopened_at").is_none());
    let actions = app.audit_actions().await;
    for action in ["victim.close", "victim.reopen"] {
        assert!(actions.iter().any(|(a, _)| a == action), "{action} not audited");
    }
}
