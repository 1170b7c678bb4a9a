//! `GET /changes`: what left a caller's sight, so an offline client deletes its copy.

use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Caller, spawn_app};
use crate::paths;
use crate::victims::create_victim;

/// (victim, forget, reason) of every tombstone the caller is given.
pub async fn tombstones(caller: &Caller<'_>) -> Vec<(String, String, String)> {
    let resp = caller.get(paths::CHANGES).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let page: Value = resp.json();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let field = |name: &str| t[name].as_str().unwrap().to_owned();
            (field("victim_id"), field("forget"), field("reason"))
        })
        .collect()
}

pub fn one(victim: impl ToString, forget: &str, reason: &str) -> (String, String, String) {
    (victim.to_string(), forget.to_owned(), reason.to_owned())
}

#[tokio::test]
async fn clients_are_told_what_left_their_sight() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, owner) = create_victim(&app, org).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    let receiver = app.caller(other, Role::Caseworker).await;
    assert!(tombstones(&owner).await.is_empty());

    // A restriction leaves the colleague out, not the assigned caseworker.
    let restrict = json!({ "caseworkers": [owner.id()], "restricted": true });
    assert_eq!(owner.put(&paths::assignment(victim), restrict).await.status, StatusCode::OK);
    assert_eq!(tombstones(&colleague).await, vec![one(victim, "identity", "restricted")]);
    assert!(tombstones(&owner).await.is_empty());

    // A referral made with consent: withdrawing it takes the identity from the receiver; the
    // referral's end takes the case.
    let referral = json!({ "victim_id": victim, "to_organization_id": other, "service": "legal" });
    let referral = owner.post(paths::REFERRALS, referral).await.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(receiver.post(&paths::referral_step(&referral, "accept"), json!({})).await.status, StatusCode::OK);
    let version = format!("\"{}\"", owner.get(&paths::victim(victim)).await.json()["version"]);
    let withdraw = json!({ "consent": { "services": true, "share_with_referral_partners": false, "anonymised_statistics": true } });
    let resp = owner.patch(&paths::victim(victim), &version, withdraw).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(tombstones(&receiver).await, vec![one(victim, "identity", "consent_withdrawn")]);
    assert_eq!(receiver.post(&paths::referral_step(&referral, "complete"), json!({})).await.status, StatusCode::OK);
    assert_eq!(tombstones(&receiver).await.last(), Some(&one(victim, "record", "referral_ended")));

    // Removing the identity: the owner's clients delete their copies of it.
    let version = format!("\"{}\"", owner.get(&paths::victim(victim)).await.json()["version"]);
    let removed = owner.patch(&paths::victim(victim), &version, json!({ "identity": null })).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert_eq!(tombstones(&owner).await, vec![one(victim, "identity_only", "identity_removed")]);

    // From a time on, a page at a time, never another organisation's; partners have none.
    let later = (chrono::Utc::now() + chrono::Duration::seconds(60)).format("%Y-%m-%dT%H:%M:%SZ");
    let none = owner.get(&paths::query(paths::CHANGES, format!("since={later}"))).await.json();
    assert!(none["items"].as_array().unwrap().is_empty());
    let first = receiver.get(&paths::query(paths::CHANGES, "limit=1")).await.json();
    let next = first["next_cursor"].as_str().expect("a second page").to_owned();
    let second = receiver.get(&paths::query(paths::CHANGES, format!("limit=1&cursor={next}"))).await.json();
    assert_eq!(second["items"][0]["reason"], "referral_ended");
    let outsider = app.caller(app.create_org().await, Role::Caseworker).await;
    assert!(tombstones(&outsider).await.is_empty());
    app.caller(org, Role::Partner).await.get(paths::CHANGES).await.assert_problem(403, "forbidden");

    // The receiver's admins and auditors, who may not read a case referred to it, are not told
    // what became of it (D172); the owner's are told of their own case.
    for role in [Role::Admin, Role::Auditor] {
        assert!(tombstones(&app.caller(other, role).await).await.is_empty(), "{role:?}");
        let own = tombstones(&app.caller(org, role).await).await;
        assert_eq!(own, vec![one(victim, "identity_only", "identity_removed")], "{role:?}");
    }
}

/// Two live referrals of one person to one organisation, one made with the identity shared, one
/// without: when the first ends, the receiver's clients forget the identity, though the case stays
/// in sight through the second.
#[tokio::test]
async fn a_referral_that_ended_takes_the_identity_it_shared() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, owner) = create_victim(&app, org).await;
    let receiver = app.caller(other, Role::Caseworker).await;
    let consent = async |share: bool| {
        let version = format!("\"{}\"", owner.get(&paths::victim(victim)).await.json()["version"]);
        let body = json!({ "consent": { "services": true, "share_with_referral_partners": share, "anonymised_statistics": true } });
        let resp = owner.patch(&paths::victim(victim), &version, body).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    };
    let refer = async |service: &str| {
        let body = json!({ "victim_id": victim, "to_organization_id": other, "service": service });
        let resp = owner.post(paths::REFERRALS, body).await;
        assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
        (resp.json()["id"].as_str().unwrap().to_owned(), resp.json()["identity_shared"].as_bool().unwrap())
    };
    consent(false).await;
    let (_without, shared) = refer("legal").await;
    assert!(!shared);
    consent(true).await;
    let (with, shared) = refer("shelter").await;
    assert!(shared);
    assert!(receiver.get(&paths::victim(victim)).await.json()["identity"].is_object());
    let before = tombstones(&receiver).await.len();
    assert_eq!(owner.post(&paths::referral_step(&with, "cancel"), json!({})).await.status, StatusCode::OK);
    let case = receiver.get(&paths::victim(victim)).await;
    assert_eq!(case.status, StatusCode::OK, "the case stays in sight through the other referral");
    assert!(case.json().get("identity").is_none());
    assert_eq!(tombstones(&receiver).await[before..], [one(victim, "identity", "referral_ended")]);
}

/// What a client is told to forget is what the server no longer serves. A patch that removes the
/// identity keeps the notes and the referral's reason, and serves them as before: the owner's and
/// the receiver's clients forget the identity alone (a client that deleted the notes would not get
/// them back: they did not change). An erasure destroys them, and both are told to forget them.
#[tokio::test]
async fn a_removed_identity_is_forgotten_alone_and_an_erased_one_with_its_texts() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, owner) = create_victim(&app, org).await;
    let receiver = app.caller(other, Role::Caseworker).await;
    let note = json!({ "kind": "medical", "provided_on": "2026-11-01", "notes": "MARKERNOTES clinic" });
    assert_eq!(owner.post(&paths::assistance(victim), note).await.status, StatusCode::CREATED);
    let referral =
        json!({ "victim_id": victim, "to_organization_id": other, "service": "legal", "reason": "MARKERREASON court" });
    let referral = owner.post(paths::REFERRALS, referral).await.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(receiver.post(&paths::referral_step(&referral, "accept"), json!({})).await.status, StatusCode::OK);
    let served = async || {
        let notes = owner.get(&paths::assistance(victim)).await.text.contains("MARKERNOTES");
        let reason = receiver.get(&paths::referral(&referral)).await.text.contains("MARKERREASON");
        (notes, reason)
    };
    assert_eq!(served().await, (true, true));

    let version = format!("\"{}\"", owner.get(&paths::victim(victim)).await.json()["version"]);
    let removed = owner.patch(&paths::victim(victim), &version, json!({ "identity": null })).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    let told = one(victim, "identity_only", "identity_removed");
    assert_eq!((tombstones(&owner).await, tombstones(&receiver).await), (vec![told.clone()], vec![told]));
    assert_eq!(served().await, (true, true), "the texts a client keeps are still served");

    let erased = owner.post(&paths::case_step(victim, "erase"), json!({ "reason": "data_subject_request" })).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    let told = one(victim, "identity", "identity_erased");
    assert_eq!(tombstones(&owner).await.last(), Some(&told));
    assert_eq!(tombstones(&receiver).await.last(), Some(&told));
    assert_eq!(served().await, (false, false), "the texts a client forgets are no longer served");
}

/// Migration 19: the tombstones that patches wrote before it said `identity`, `identity_erased`,
/// as an erasure does; it restates them, and leaves an erasure's as they are. Its down migration
/// puts them back as they were written, so running down and then up again is that deploy.
#[tokio::test]
async fn migration_19_restates_the_tombstones_patches_wrote_before_it() {
    use diesel_async::SimpleAsyncConnection;
    const DOWN: &str = include_str!("../../migrations/2026-12-05-000019_identity_removed/down.sql");
    const UP: &str = include_str!("../../migrations/2026-12-05-000019_identity_removed/up.sql");
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (removed, owner) = create_victim(&app, org).await;
    let (erased, other) = create_victim(&app, org).await;
    let version = format!("\"{}\"", owner.get(&paths::victim(removed)).await.json()["version"]);
    let patched = owner.patch(&paths::victim(removed), &version, json!({ "identity": null })).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let erasure = other.post(&paths::case_step(erased, "erase"), json!({ "reason": "data_subject_request" })).await;
    assert_eq!(erasure.status, StatusCode::OK, "{}", erasure.text);
    let now = vec![one(removed, "identity_only", "identity_removed"), one(erased, "identity", "identity_erased")];
    assert_eq!(tombstones(&owner).await, now);

    let mut conn = app.pool.get().await.unwrap();
    conn.batch_execute(DOWN).await.expect("migration 19 down");
    let before = vec![one(removed, "identity", "identity_erased"), one(erased, "identity", "identity_erased")];
    assert_eq!(tombstones(&owner).await, before, "as patches wrote them before migration 19");
    conn.batch_execute(UP).await.expect("migration 19 up");
    assert_eq!(tombstones(&owner).await, now, "restated, the erasure's left as it was");
}
