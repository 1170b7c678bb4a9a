use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app};
use crate::victims::{assert_no_marker, create_victim, victim_body};

async fn refer(app: &TestApp, token: &str, victim: Uuid, to: Uuid) -> serde_json::Value {
    let resp = app
        .post(
            "/api/v1/referrals",
            Some(token),
            json!({ "victim_id": victim, "to_organization_id": to,
            "service": "shelter", "urgency": "urgent", "reason": "MARKERNOTES needs a safe house" }),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    resp.json()
}

async fn step(app: &TestApp, token: &str, id: &str, action: &str) -> crate::helpers::Response {
    let body = (action == "decline").then(|| json!({ "reason": "no_capacity" }));
    app.request(
        reqwest::Method::POST,
        &format!("/api/v1/referrals/{id}/{action}"),
        Some(token),
        body.or(Some(json!({}))),
    )
    .await
}

#[tokio::test]
async fn referral_with_consent_shares_the_identity_with_the_receiver() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let (_, receiver) = app.user_with_token(to, Role::Caseworker).await;
    let (_, receiver_admin) = app.user_with_token(to, Role::Admin).await;
    let victim_path = format!("/api/v1/victims/{victim}");
    app.get(&victim_path, &receiver).await.assert_problem(404, "not-found");

    let referral = refer(&app, &sender, victim, to).await;
    assert_eq!(referral["status"], "pending");
    assert_eq!(referral["identity_shared"], true);
    assert_eq!(referral["reason"], "MARKERNOTES needs a safe house");
    let id = referral["id"].as_str().unwrap().to_owned();

    // The receiving caseworker now sees the identity; their admin never does.
    let seen = app.get(&victim_path, &receiver).await.json();
    assert_eq!(seen["identity"]["document_number"], "MARKERDOC123");
    let resp = app.get(&victim_path, &receiver_admin).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "admins of the receiver see no records of the sender");
    let as_admin = app.get(&format!("/api/v1/referrals/{id}"), &receiver_admin).await;
    assert_eq!(as_admin.status, StatusCode::OK);
    assert!(as_admin.json().get("reason").is_none());
    assert_no_marker("receiver admin", &as_admin.text);
    assert_eq!(
        app.get(&format!("/api/v1/referrals/{id}"), &receiver).await.json()["reason"],
        "MARKERNOTES needs a safe house"
    );

    // Only the receiver accepts and completes; only the sender cancels.
    step(&app, &sender, &id, "accept").await.assert_problem(403, "forbidden");
    step(&app, &receiver_admin, &id, "accept").await.assert_problem(403, "forbidden");
    let accepted = step(&app, &receiver, &id, "accept").await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    assert!(accepted.json()["accepted_at"].is_string());
    step(&app, &receiver, &id, "accept").await.assert_problem(409, "conflict");
    step(&app, &receiver, &id, "decline").await.assert_problem(409, "conflict");

    // The receiver records the assistance it gives; both see it, notes only with the identity.
    let resp = app
        .post(
            &format!("/api/v1/victims/{victim}/assistance"),
            Some(&receiver),
            json!({ "kind": "shelter", "provided_on": "2026-11-20", "notes": "MARKERNOTES arrived safely" }),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    assert_eq!(resp.json()["provided_by"], to.to_string());
    let list = app.get(&format!("/api/v1/victims/{victim}/assistance"), &sender).await.json();
    assert_eq!(list["items"][0]["notes"], "MARKERNOTES arrived safely");
    let (_, sender_auditor) = app.user_with_token(from, Role::Auditor).await;
    let redacted = app.get(&format!("/api/v1/victims/{victim}/assistance"), &sender_auditor).await;
    assert_eq!(redacted.json()["items"].as_array().unwrap().len(), 1);
    assert_no_marker("auditor assistance", &redacted.text);

    let done = step(&app, &receiver, &id, "complete").await.json();
    assert_eq!(done["status"], "completed");
    step(&app, &sender, &id, "cancel").await.assert_problem(409, "conflict");

    // Both organisations see the referral and its history.
    for token in [&sender, &receiver] {
        let list = app.get("/api/v1/referrals", token).await.json();
        let item = &list["items"][0];
        assert_eq!(item["status"], "completed");
        assert!(item["created_at"].is_string() && item["accepted_at"].is_string() && item["completed_at"].is_string());
    }
    let incoming = app.get("/api/v1/referrals?direction=incoming", &sender).await.json();
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
    let (_, sender) = app.user_with_token(from, Role::Caseworker).await;
    let victim = Uuid::new_v4();
    let mut body = victim_body(victim);
    body["consent"]["share_with_referral_partners"] = json!(false);
    app.post("/api/v1/victims", Some(&sender), body).await;
    let (_, receiver) = app.user_with_token(to, Role::Caseworker).await;
    let referral = refer(&app, &sender, victim, to).await;
    assert_eq!(referral["identity_shared"], false);
    let resp = app.get(&format!("/api/v1/victims/{victim}"), &receiver).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(resp.json().get("identity").is_none());
    assert_no_marker("receiver without consent", &resp.text);
    let seen = app.get(&format!("/api/v1/referrals/{}", referral["id"].as_str().unwrap()), &receiver).await;
    assert_eq!(seen.json()["service"], "shelter");
    assert_no_marker("referral without consent", &seen.text);

    // Declined: access ends.
    let id = referral["id"].as_str().unwrap().to_owned();
    let declined = step(&app, &receiver, &id, "decline").await.json();
    assert_eq!(declined["decline_reason"], "no_capacity");
    app.get(&format!("/api/v1/victims/{victim}"), &receiver).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn who_may_refer_and_what_is_refused() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let (_, admin) = app.user_with_token(from, Role::Admin).await;
    let (_, stranger) = app.user_with_token(to, Role::Caseworker).await;
    let (_, partner) = app.user_with_token(from, Role::Partner).await;
    let body = |to: Uuid| json!({ "victim_id": victim, "to_organization_id": to, "service": "legal" });
    app.post("/api/v1/referrals", Some(&admin), body(to)).await.assert_problem(403, "forbidden");
    app.post("/api/v1/referrals", Some(&stranger), body(from)).await.assert_problem(404, "not-found");
    app.post("/api/v1/referrals", Some(&sender), body(from)).await.assert_problem(422, "validation");
    app.post("/api/v1/referrals", Some(&sender), body(Uuid::new_v4())).await.assert_problem(422, "validation");
    let mut long = body(to);
    long["reason"] = json!("x".repeat(5001));
    app.post("/api/v1/referrals", Some(&sender), long).await.assert_problem(422, "validation");
    app.post(
        &format!("/api/v1/victims/{victim}/assistance"),
        Some(&sender),
        json!({ "kind": "legal", "provided_on": "2026-11-01", "notes": "x".repeat(5001) }),
    )
    .await
    .assert_problem(422, "validation");
    app.get("/api/v1/referrals", &partner).await.assert_problem(403, "forbidden");

    // Idempotent by id; cancelled by the sender.
    let id = Uuid::new_v4();
    let mut with_id = body(to);
    with_id["id"] = json!(id);
    assert_eq!(app.post("/api/v1/referrals", Some(&sender), with_id.clone()).await.status, StatusCode::CREATED);
    assert_eq!(app.post("/api/v1/referrals", Some(&sender), with_id.clone()).await.status, StatusCode::OK);
    with_id["service"] = json!("medical");
    app.post("/api/v1/referrals", Some(&sender), with_id).await.assert_problem(409, "conflict");
    step(&app, &stranger, &id.to_string(), "cancel").await.assert_problem(403, "forbidden");
    assert_eq!(step(&app, &sender, &id.to_string(), "cancel").await.json()["status"], "cancelled");
    step(&app, &stranger, &id.to_string(), "accept").await.assert_problem(409, "conflict");
    let (_, outsider) = app.user_with_token(app.create_org().await, Role::Caseworker).await;
    app.get(&format!("/api/v1/referrals/{id}"), &outsider).await.assert_problem(404, "not-found");
    // Assistance by an organisation without an accepted referral is refused.
    app.post(
        &format!("/api/v1/victims/{victim}/assistance"),
        Some(&stranger),
        json!({ "kind": "legal", "provided_on": "2026-11-01" }),
    )
    .await
    .assert_problem(404, "not-found");
}

#[tokio::test]
async fn withdrawn_consent_or_a_finished_referral_ends_the_receivers_sight() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let (_, receiver) = app.user_with_token(to, Role::Caseworker).await;
    let referral = refer(&app, &sender, victim, to).await;
    let id = referral["id"].as_str().unwrap().to_owned();
    let victim_path = format!("/api/v1/victims/{victim}");
    assert!(app.get(&victim_path, &receiver).await.json()["identity"].is_object());

    // The victim withdraws consent to sharing: the identity, the notes and the reason stop at once.
    let resp = app
        .patch(&victim_path, &sender, "\"1\"", json!({ "consent": { "share_with_referral_partners": false } }))
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let case_only = app.get(&victim_path, &receiver).await;
    assert_eq!(case_only.status, StatusCode::OK);
    assert!(case_only.json().get("identity").is_none());
    assert_no_marker("after withdrawal", &case_only.text);
    let referral_view = app.get(&format!("/api/v1/referrals/{id}"), &receiver).await;
    assert!(referral_view.json().get("reason").is_none());
    assert_no_marker("reason after withdrawal", &referral_view.text);

    // Once the referral is completed, the receiver no longer sees the record at all.
    step(&app, &receiver, &id, "accept").await;
    step(&app, &receiver, &id, "complete").await;
    app.get(&victim_path, &receiver).await.assert_problem(404, "not-found");
}
