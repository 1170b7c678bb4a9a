//! `haven rekey` and `haven seed`, through their library entry points on a real database.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use haven::db::schema::{assistance_records, referrals, victim_identities, victims};
use haven::privacy::crypto::IdentityKeyring;
use serde_json::json;

use crate::helpers::{BLIND_INDEX_KEY, IDENTITY_KEY_SPEC, TestApp, fresh_database, serve, spawn_app, test_settings};
use crate::paths;
use crate::victims::create_victim;

const NEW_KEY: &str = "id2:bmV3LWlkZW50aXR5LWtleS1mb3ItaGF2ZW4tdGVzdHM=";

async fn key_ids(app: &TestApp) -> (Vec<String>, Vec<Option<String>>, Vec<Option<String>>) {
    let mut conn = app.pool.get().await.unwrap();
    (
        victim_identities::table.select(victim_identities::key_id).load(&mut conn).await.unwrap(),
        assistance_records::table.select(assistance_records::notes_key_id).load(&mut conn).await.unwrap(),
        referrals::table.select(referrals::reason_key_id).load(&mut conn).await.unwrap(),
    )
}

#[tokio::test]
async fn rekey_moves_everything_to_the_newest_key_and_resumes() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, caseworker) = create_victim(&app, from).await;
    caseworker
        .post(
            &paths::assistance(victim),
            json!({ "kind": "medical", "provided_on": "2026-11-01", "notes": "seen by a doctor" }),
        )
        .await;
    caseworker
        .post(
            paths::REFERRALS,
            json!({ "victim_id": victim, "to_organization_id": to, "service": "legal", "reason": "court date" }),
        )
        .await;
    let task = json!({ "kind": "follow_up", "due_on": "2026-11-20", "notes": "call the shelter" });
    let task = caseworker.post(&paths::tasks_of(victim), task).await.json()["id"].as_str().unwrap().to_owned();
    let goal = json!({ "kind": "legal", "planned_end_on": "2027-01-31", "objectives": "a residence permit" });
    assert_eq!(caseworker.post(&paths::support_plan(victim), goal).await.status.as_u16(), 201);
    create_victim(&app, from).await;
    let admin = app.caller(from, haven::domain::Role::Admin).await;
    let hook = json!({ "url": "https://receiver.example/haven", "events": ["task.due"] });
    assert_eq!(admin.post(paths::WEBHOOKS, hook).await.status.as_u16(), 201);

    let rotated = IdentityKeyring::parse(&format!("{NEW_KEY},{IDENTITY_KEY_SPEC}"), BLIND_INDEX_KEY).unwrap();
    let report = haven::rekey::run(&app.pool, &rotated, false, false).await.unwrap();
    assert_eq!((report.identities, report.notes, report.reasons), (2, 1, 1));
    assert_eq!((report.task_notes, report.support_plans, report.webhook_secrets), (1, 1, 1));
    let (identities, notes, reasons) = key_ids(&app).await;
    assert!(identities.iter().all(|k| k == "id2"));
    assert!(notes.iter().flatten().all(|k| k == "id2"));
    assert!(reasons.iter().flatten().all(|k| k == "id2"));
    let again = haven::rekey::run(&app.pool, &rotated, false, false).await.unwrap();
    assert_eq!((again.identities, again.notes, again.reasons), (0, 0, 0), "nothing left to do");
    assert_eq!((again.task_notes, again.support_plans, again.webhook_secrets), (0, 0, 0));

    // A service holding only the new key reads everything; the old key is no longer needed. It is
    // another server than the caller's, so the caseworker's token is sent with a plain client.
    let mut settings = test_settings(&app.url);
    settings.identity_keys = Some(NEW_KEY.into());
    let (address, _) = serve(settings, &app.url);
    let client = reqwest::Client::new();
    let get = |path: String| client.get(format!("{address}{path}")).bearer_auth(&caseworker.token).send();
    let seen: serde_json::Value = get(paths::victim(victim)).await.unwrap().json().await.unwrap();
    assert_eq!(seen["identity"]["document_number"], "MARKERDOC123");
    let notes: serde_json::Value = get(paths::assistance(victim)).await.unwrap().json().await.unwrap();
    assert_eq!(notes["items"][0]["notes"], "seen by a doctor");
    let task: serde_json::Value = get(paths::task(&task)).await.unwrap().json().await.unwrap();
    assert_eq!(task["notes"], "call the shelter");
    let plan: serde_json::Value = get(paths::support_plan(victim)).await.unwrap().json().await.unwrap();
    assert_eq!(plan["items"][0]["objectives"], "a residence permit");
    let found: serde_json::Value = client
        .post(format!("{address}{}", paths::VICTIM_SEARCH))
        .bearer_auth(&caseworker.token)
        .json(&json!({ "document_number": "MARKERDOC123" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 2, "blind indexes still match");
}

#[tokio::test]
async fn reindex_recomputes_blind_indexes_under_a_new_index_key() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (_, caseworker) = create_victim(&app, org).await;
    let new_index = IdentityKeyring::generate_index_key();
    let keys = IdentityKeyring::parse(IDENTITY_KEY_SPEC, &new_index).unwrap();
    let report = haven::rekey::run(&app.pool, &keys, true, false).await.unwrap();
    assert_eq!(report.identities, 1);
    let mut settings = test_settings(&app.url);
    settings.blind_index_key = Some(new_index.into());
    let (address, _) = serve(settings, &app.url);
    let found: serde_json::Value = reqwest::Client::new()
        .post(format!("{address}{}", paths::VICTIM_SEARCH))
        .bearer_auth(&caseworker.token)
        .json(&json!({ "name": "MARKERALIAS" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
}

type CaseSummary = (uuid::Uuid, i32, String, Vec<String>, Vec<String>, bool);

async fn seeded(rng_seed: u64) -> (haven::seed::SeedReport, Vec<CaseSummary>, haven::db::Pool) {
    let url = fresh_database();
    let settings = test_settings(&url);
    let (_, pool) = serve(settings, &url);
    let keys = IdentityKeyring::parse(IDENTITY_KEY_SPEC, BLIND_INDEX_KEY).unwrap();
    let options = haven::seed::SeedOptions { victims: 1500, rng_seed, organizations: 5, progress: false };
    let report = haven::seed::run(&pool, &keys, &options).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    type Row = (uuid::Uuid, i32, String, Vec<String>, Vec<String>, bool);
    let rows: Vec<Row> = victims::table
        .select((
            victims::id,
            victims::case_number,
            victims::gender,
            victims::citizenship,
            victims::exploitation_types,
            victims::consent_anonymised_statistics,
        ))
        .order(victims::id)
        .load(&mut conn)
        .await
        .unwrap();
    drop(conn);
    (report, rows, pool)
}

#[tokio::test]
async fn seed_is_realistic_and_deterministic() {
    let (report, rows, pool) = seeded(7).await;
    assert_eq!(report.victims, 1500);
    assert_eq!(rows.len(), 1500);
    assert!(report.assistance > 1500 && report.referrals > 200, "{report:?}");
    let share = |f: &dyn Fn(&CaseSummary) -> bool| rows.iter().filter(|r| f(r)).count() as f64 / rows.len() as f64;
    assert!(share(&|r| r.4.contains(&"forced_criminality".to_owned())) > 0.15, "scam compounds present");
    assert!(share(&|r| r.3.contains(&"PER".to_owned()) || r.3.contains(&"BRA".to_owned())) > 0.03);
    assert!(share(&|r| r.5) > 0.7 && share(&|r| r.5) < 0.95, "consent varies");
    let mut conn = pool.get().await.unwrap();
    let statuses: Vec<String> = referrals::table.select(referrals::status).distinct().load(&mut conn).await.unwrap();
    assert_eq!(statuses.len(), 5, "every referral outcome occurs: {statuses:?}");
    let identities: i64 = victim_identities::table.count().get_result(&mut conn).await.unwrap();
    assert!(identities > 700 && identities < 1100);
    drop(conn);

    let (_, same, _) = seeded(7).await;
    assert_eq!(rows, same, "same seed, same records");
    let (_, other, _) = seeded(8).await;
    assert_ne!(rows, other, "another seed, other records");
}

#[tokio::test]
async fn seeded_identities_are_readable_by_their_caseworkers() {
    let (_, _, pool) = seeded(3).await;
    let mut conn = pool.get().await.unwrap();
    let victim: uuid::Uuid =
        victims::table.inner_join(victim_identities::table).select(victims::id).first(&mut conn).await.unwrap();
    let keys = IdentityKeyring::parse(IDENTITY_KEY_SPEC, BLIND_INDEX_KEY).unwrap();
    let sealed = haven::victims::store::sealed_identity(&mut conn, victim).await.unwrap().unwrap();
    let identity = haven::privacy::identity::open(&keys, victim, &sealed).unwrap();
    assert!(identity.family_names.unwrap().ends_with("-Fict"), "names are visibly fictional");
}
