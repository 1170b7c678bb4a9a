use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Caller, Response, spawn_app};
use crate::paths;
use crate::victims::{assert_no_marker, create_victim, victim_body};

pub async fn refer(sender: &Caller<'_>, victim: Uuid, to: Uuid) -> serde_json::Value {
    let resp = sender
        .post(
            paths::REFERRALS,
            json!({ "victim_id": victim, "to_organization_id": to,
            "service": "shelter", "urgency": "urgent", "reason": "MARKERNOTES needs a safe house" }),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    resp.json()
}

async fn step(caller: &Caller<'_>, id: &str, action: &str) -> Response {
    let body = if action == "decline" { json!({ "reason": "no_capacity" }) } else { json!({}) };
    caller.post(&paths::referral_step(id, action), body).await
}

#[tokio::test]
async fn referral_with_consent_shares_the_identity_with_the_receiver() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let receiver = app.caller(to, Role::Caseworker).await;
    let receiver_admin = app.caller(to, Role::Admin).await;
    let victim_path = paths::victim(victim);
    receiver.get(&victim_path).await.assert_problem(404, "not-found");

    let referral = refer(&sender, victim, to).await;
    assert_eq!(referral["status"], "pending");
    assert_eq!(referral["identity_shared"], true);
    assert_eq!(referral["reason"], "MARKERNOTES needs a safe house");
    let id = referral["id"].as_str().unwrap().to_owned();

    // The receiving caseworker now sees the identity; their admin never does.
    let seen = receiver.get(&victim_path).await.json();
    assert_eq!(seen["identity"]["document_number"], "MARKERDOC123");
    let resp = receiver_admin.get(&victim_path).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "admins of the receiver see no records of the sender");
    let as_admin = receiver_admin.get(&paths::referral(&id)).await;
    assert_eq!(as_admin.status, StatusCode::OK);
    assert!(as_admin.json().get("reason").is_none());
    assert_no_marker("receiver admin", &as_admin.text);
    assert_eq!(receiver.get(&paths::referral(&id)).await.json()["reason"], "MARKERNOTES needs a safe house");

    // A receiver provides services only once it has accepted the referral.
    let early = json!({ "kind": "shelter", "provided_on": "2026-11-19" });
    receiver.post(&paths::assistance(victim), early).await.assert_problem(403, "forbidden");

    // Only the receiver accepts and completes; only the sender cancels.
    step(&sender, &id, "accept").await.assert_problem(403, "forbidden");
    step(&receiver_admin, &id, "accept").await.assert_problem(403, "forbidden");
    let accepted = step(&receiver, &id, "accept").await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    assert!(accepted.json()["accepted_at"].is_string());
    step(&receiver, &id, "accept").await.assert_problem(409, "conflict");
    step(&receiver, &id, "decline").await.assert_problem(409, "conflict");

    // The receiver records the assistance it gives; both see it, notes only with the identity.
    let resp = receiver
        .post(
            &paths::assistance(victim),
            json!({ "kind": "shelter", "provided_on": "2026-11-20", "notes": "MARKERNOTES arrived safely" }),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    assert_eq!(resp.json()["provided_by"], to.to_string());
    let list = sender.get(&paths::assistance(victim)).await.json();
    assert_eq!(list["items"][0]["notes"], "MARKERNOTES arrived safely");
    let sender_auditor = app.caller(from, Role::Auditor).await;
    let redacted = sender_auditor.get(&paths::assistance(victim)).await;
    assert_eq!(redacted.json()["items"].as_array().unwrap().len(), 1);
    assert_no_marker("auditor assistance", &redacted.text);

    let done = step(&receiver, &id, "complete").await.json();
    assert_eq!(done["status"], "completed");
    step(&sender, &id, "cancel").await.assert_problem(409, "conflict");

    // Both organisations see the referral and its history.
    for caseworker in [&sender, &receiver] {
        let list = caseworker.get(paths::REFERRALS).await.json();
        let item = &list["items"][0];
        assert_eq!(item["status"], "completed");
        assert!(item["created_at"].is_string() && item["accepted_at"].is_string() && item["completed_at"].is_string());
    }
    let incoming = sender.get(&paths::query(paths::REFERRALS, "direction=incoming")).await.json();
    assert!(incoming["items"].as_array().unwrap().is_empty());
    let actions = app.audit_actions().await;
    for action in ["referral.create", "referral.accept", "referral.complete", "assistance.create"] {
        assert!(actions.iter().any(|(a, _)| a == action), "{action} not audited");
    }
}

#[tokio::test]
async fn without_consent_the_receiver_sees_the_case_but_not_the_identity() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let sender = app.caller(from, Role::Caseworker).await;
    let victim = Uuid::new_v4();
    let mut body = victim_body(victim);
    body["consent"]["share_with_referral_partners"] = json!(false);
    sender.post(paths::VICTIMS, body).await;
    let receiver = app.caller(to, Role::Caseworker).await;
    let referral = refer(&sender, victim, to).await;
    assert_eq!(referral["identity_shared"], false);
    let resp = receiver.get(&paths::victim(victim)).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(resp.json().get("identity").is_none());
    assert_no_marker("receiver without consent", &resp.text);
    let seen = receiver.get(&paths::referral(referral["id"].as_str().unwrap())).await;
    assert_eq!(seen.json()["service"], "shelter");
    assert_no_marker("referral without consent", &seen.text);

    // Declined: access ends.
    let id = referral["id"].as_str().unwrap().to_owned();
    let declined = step(&receiver, &id, "decline").await.json();
    assert_eq!(declined["decline_reason"], "no_capacity");
    receiver.get(&paths::victim(victim)).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn who_may_refer_and_what_is_refused() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let admin = app.caller(from, Role::Admin).await;
    let stranger = app.caller(to, Role::Caseworker).await;
    let partner = app.caller(from, Role::Partner).await;
    let body = |to: Uuid| json!({ "victim_id": victim, "to_organization_id": to, "service": "legal" });
    admin.post(paths::REFERRALS, body(to)).await.assert_problem(403, "forbidden");
    stranger.post(paths::REFERRALS, body(from)).await.assert_problem(404, "not-found");
    sender.post(paths::REFERRALS, body(from)).await.assert_problem(422, "validation");
    sender.post(paths::REFERRALS, body(Uuid::new_v4())).await.assert_problem(422, "validation");
    let mut long = body(to);
    long["reason"] = json!("x".repeat(5001));
    sender.post(paths::REFERRALS, long).await.assert_problem(422, "validation");
    sender
        .post(
            &paths::assistance(victim),
            json!({ "kind": "legal", "provided_on": "2026-11-01", "notes": "x".repeat(5001) }),
        )
        .await
        .assert_problem(422, "validation");
    partner.get(paths::REFERRALS).await.assert_problem(403, "forbidden");

    // Without consent to services nobody is referred for one; with it recorded, they are.
    let unwilling = Uuid::new_v4();
    let mut case = victim_body(unwilling);
    case["consent"]["services"] = json!(false);
    assert_eq!(sender.post(paths::VICTIMS, case).await.status, StatusCode::CREATED);
    let ask = json!({ "victim_id": unwilling, "to_organization_id": to, "service": "shelter" });
    let problem = sender.post(paths::REFERRALS, ask.clone()).await.assert_problem(422, "validation");
    assert_eq!(problem["errors"][0]["field"], "victim_id", "{problem}");
    let version = sender.get(&paths::victim(unwilling)).await.json()["version"].to_string();
    let consent = json!({ "consent": { "services": true, "share_with_referral_partners": false,
        "anonymised_statistics": true } });
    let resp = sender.patch(&paths::victim(unwilling), &format!("\"{version}\""), consent).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(sender.post(paths::REFERRALS, ask).await.status, StatusCode::CREATED);

    // Idempotent by id; cancelled by the sender.
    let id = Uuid::new_v4();
    let mut with_id = body(to);
    with_id["id"] = json!(id);
    assert_eq!(sender.post(paths::REFERRALS, with_id.clone()).await.status, StatusCode::CREATED);
    assert_eq!(sender.post(paths::REFERRALS, with_id.clone()).await.status, StatusCode::OK);
    with_id["service"] = json!("medical");
    sender.post(paths::REFERRALS, with_id).await.assert_problem(409, "conflict");
    step(&stranger, &id.to_string(), "cancel").await.assert_problem(403, "forbidden");
    assert_eq!(step(&sender, &id.to_string(), "cancel").await.json()["status"], "cancelled");
    step(&stranger, &id.to_string(), "accept").await.assert_problem(409, "conflict");
    let outsider = app.caller(app.create_org().await, Role::Caseworker).await;
    outsider.get(&paths::referral(id)).await.assert_problem(404, "not-found");
    // Assistance by an organisation without an accepted referral is refused.
    stranger
        .post(&paths::assistance(victim), json!({ "kind": "legal", "provided_on": "2026-11-01" }))
        .await
        .assert_problem(404, "not-found");
}

#[tokio::test]
async fn withdrawn_consent_or_a_finished_referral_ends_the_receivers_sight() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let receiver = app.caller(to, Role::Caseworker).await;
    let referral = refer(&sender, victim, to).await;
    let id = referral["id"].as_str().unwrap().to_owned();
    let victim_path = paths::victim(victim);
    assert!(receiver.get(&victim_path).await.json()["identity"].is_object());

    // The victim withdraws consent to sharing: the identity, the notes and the reason stop at once.
    let resp =
        sender.patch(&victim_path, "\"1\"", json!({ "consent": { "share_with_referral_partners": false } })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let case_only = receiver.get(&victim_path).await;
    assert_eq!(case_only.status, StatusCode::OK);
    assert!(case_only.json().get("identity").is_none());
    assert_no_marker("after withdrawal", &case_only.text);
    let referral_view = receiver.get(&paths::referral(&id)).await;
    assert!(referral_view.json().get("reason").is_none());
    assert_no_marker("reason after withdrawal", &referral_view.text);

    // Once the referral is completed, the receiver no longer sees the record at all.
    step(&receiver, &id, "accept").await;
    step(&receiver, &id, "complete").await;
    receiver.get(&victim_path).await.assert_problem(404, "not-found");
}

/// A referral to a provider outside Haven: recorded by the case's caseworkers, shared with no one,
/// followed up with its outcome.
#[tokio::test]
async fn a_referral_outside_haven_is_recorded_and_followed_up() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, caseworker) = create_victim(&app, org).await;
    let admin = app.caller(org, Role::Admin).await;
    let outsider = app.caller(app.create_org().await, Role::Caseworker).await;
    let id = Uuid::new_v4();
    let body = json!({ "id": id, "provider_name": "Consulado del Perú en Dakar", "provider_country": "SEN",
        "service": "repatriation", "referred_on": "2026-11-05" });
    let resp = caseworker.post(&paths::external_referrals_of(victim), body.clone()).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    assert_eq!((resp.json()["status"].as_str(), resp.header("etag")), (Some("referred"), Some("\"1\"")));
    assert_eq!(caseworker.post(&paths::external_referrals_of(victim), body.clone()).await.status, StatusCode::OK);
    let mut other = body.clone();
    other["service"] = json!("legal");
    caseworker.post(&paths::external_referrals_of(victim), other).await.assert_problem(409, "conflict");
    let mut future = body.clone();
    future["id"] = json!(Uuid::new_v4());
    future["referred_on"] = json!("2999-01-01");
    let problem =
        caseworker.post(&paths::external_referrals_of(victim), future).await.assert_problem(422, "validation");
    assert_eq!(problem["errors"][0]["field"], "referred_on");
    admin.post(&paths::external_referrals_of(victim), body).await.assert_problem(403, "forbidden");

    // Staff of the organisation read it; outsiders do not learn the case exists.
    let listed = admin.get(&paths::external_referrals_of(victim)).await.json();
    assert_eq!(listed["items"][0]["provider_name"], "Consulado del Perú en Dakar");
    outsider.get(&paths::external_referrals_of(victim)).await.assert_problem(404, "not-found");
    outsider
        .patch(&paths::external_referral(id), "*", json!({ "status": "completed" }))
        .await
        .assert_problem(404, "not-found");

    // Its outcome, against the version read.
    admin
        .patch(&paths::external_referral(id), "\"1\"", json!({ "status": "completed" }))
        .await
        .assert_problem(403, "forbidden");
    caseworker
        .patch(&paths::external_referral(id), "\"9\"", json!({ "status": "completed" }))
        .await
        .assert_problem(412, "precondition-failed");
    let done = caseworker.patch(&paths::external_referral(id), "\"1\"", json!({ "status": "completed" })).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!((done.json()["status"].as_str(), done.json()["version"].as_i64()), (Some("completed"), Some(2)));
    let actions = app.audit_actions().await;
    for action in ["external_referral.create", "external_referral.update"] {
        assert!(actions.iter().any(|(a, _)| a == action), "{action} not audited");
    }
}

/// A referral made with consent to services is not accepted once the person has withdrawn it
/// (D155).
#[tokio::test]
async fn a_referral_is_not_accepted_after_consent_to_services_is_withdrawn() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let receiver = app.caller(to, Role::Caseworker).await;
    let id = refer(&sender, victim, to).await["id"].as_str().unwrap().to_owned();
    let version = format!("\"{}\"", sender.get(&paths::victim(victim)).await.json()["version"]);
    let withdraw = json!({ "consent": { "services": false, "share_with_referral_partners": false, "anonymised_statistics": true } });
    let resp = sender.patch(&paths::victim(victim), &version, withdraw).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    receiver.post(&paths::referral_step(&id, "accept"), json!({})).await.assert_problem(409, "conflict");
    let cancelled = sender.post(&paths::referral_step(&id, "cancel"), json!({})).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
}

/// A case erased after its closure takes no referral reason: the retention job would not come back
/// to it (D156).
#[tokio::test]
async fn a_case_erased_after_its_closure_is_referred_without_a_reason() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let closed = sender.post(&paths::case_step(victim, "close"), json!({ "reason": "goals_met" })).await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    let erased = sender.post(&paths::case_step(victim, "erase"), json!({ "reason": "data_subject_request" })).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    let body = json!({ "victim_id": victim, "to_organization_id": to, "service": "shelter" });
    let mut with_reason = body.clone();
    with_reason["reason"] = json!("MARKERNOTES needs a safe house");
    sender.post(paths::REFERRALS, with_reason).await.assert_problem(409, "conflict");
    let referred = sender.post(paths::REFERRALS, body).await;
    assert_eq!(referred.status, StatusCode::CREATED, "{}", referred.text);
}
