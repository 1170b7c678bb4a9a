//! `haven rekey` and `haven seed`, through their library entry points on a real database.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use haven::db::schema::{assistance_records, referrals, victim_identities, victims};
use haven::privacy::crypto::IdentityKeyring;
use serde_json::json;

use crate::helpers::{
    BLIND_INDEX_KEY, IDENTITY_KEY_SPEC, TestApp, fresh_database, fresh_vault, serve, spawn_app_with, test_settings,
    vault_at, vault_url,
};
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

/// Seals the identity and the assistance notes of `victim` directly under the deployment key, as
/// Haven did before victims had data keys of their own.
async fn make_legacy(app: &TestApp, victim: uuid::Uuid) {
    use haven::privacy::crypto::Purpose;
    let keys = IdentityKeyring::parse(IDENTITY_KEY_SPEC, BLIND_INDEX_KEY).unwrap();
    let identity = json!({ "family_names": "Legacy", "document_number": "LEGACYDOC9" });
    let sealed = keys.seal(Purpose::Identity, victim, identity.to_string().as_bytes());
    let mut conn = app.pool.get().await.unwrap();
    diesel::update(victim_identities::table.find(victim))
        .set((
            victim_identities::key_id.eq(&sealed.key_id),
            victim_identities::nonce.eq(&sealed.nonce),
            victim_identities::ciphertext.eq(&sealed.ciphertext),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let notes: Vec<uuid::Uuid> = assistance_records::table
        .filter(assistance_records::victim_id.eq(victim))
        .select(assistance_records::id)
        .load(&mut conn)
        .await
        .unwrap();
    for id in notes {
        let sealed = keys.seal(Purpose::AssistanceNotes, id, b"legacy note");
        diesel::update(assistance_records::table.find(id))
            .set((
                assistance_records::notes_key_id.eq(&sealed.key_id),
                assistance_records::notes_nonce.eq(&sealed.nonce),
                assistance_records::notes_ciphertext.eq(&sealed.ciphertext),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn rekey_rewraps_data_keys_moves_legacy_values_and_resumes() {
    // Rekey rewraps every key in its vault: this test has one of its own.
    let vault_url = fresh_vault();
    let app = spawn_app_with(|s| s.key_vault_url = Some(vault_url.clone().into())).await;
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
    let (legacy, legacy_worker) = create_victim(&app, from).await;
    let note = json!({ "kind": "shelter", "provided_on": "2026-11-02", "notes": "replaced below" });
    legacy_worker.post(&paths::assistance(legacy), note).await;
    make_legacy(&app, legacy).await;
    let admin = app.caller(from, haven::domain::Role::Admin).await;
    let hook = json!({ "url": "https://receiver.example/haven", "events": ["task.due"] });
    assert_eq!(admin.post(paths::WEBHOOKS, hook).await.status.as_u16(), 201);

    let rotated = IdentityKeyring::parse(&format!("{NEW_KEY},{IDENTITY_KEY_SPEC}"), BLIND_INDEX_KEY).unwrap();
    let vault = vault_at(&vault_url, rotated);
    let report = haven::rekey::run(&app.pool, &vault, false, false).await.unwrap();
    assert_eq!(report.data_keys, 2, "one data key per victim with sealed values, rewrapped");
    assert_eq!((report.identities, report.notes, report.reasons), (1, 1, 0), "the legacy values moved");
    assert_eq!((report.task_notes, report.support_plans, report.webhook_secrets), (0, 0, 1));
    let (identities, notes, reasons) = key_ids(&app).await;
    assert!(identities.iter().all(|k| k.starts_with("v:")), "{identities:?}");
    assert!(notes.iter().flatten().all(|k| k.starts_with("v:")));
    assert!(reasons.iter().flatten().all(|k| k.starts_with("v:")));
    let again = haven::rekey::run(&app.pool, &vault, false, false).await.unwrap();
    assert_eq!((again.data_keys, again.identities, again.notes, again.reasons), (0, 0, 0, 0), "nothing left to do");
    assert_eq!((again.task_notes, again.support_plans, again.webhook_secrets), (0, 0, 0));

    // A service holding only the new key reads everything; the old key is no longer needed. It is
    // another server than the caller's, so the caseworker's token is sent with a plain client.
    let mut settings = test_settings(&app.url);
    settings.identity_keys = Some(NEW_KEY.into());
    settings.key_vault_url = Some(vault_url.clone().into());
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
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "blind indexes still match");
    let moved: serde_json::Value = get(paths::victim(legacy)).await.unwrap().json().await.unwrap();
    assert_eq!(moved["identity"]["document_number"], "LEGACYDOC9", "the legacy identity reads under its data key");
    let notes: serde_json::Value = get(paths::assistance(legacy)).await.unwrap().json().await.unwrap();
    assert_eq!(notes["items"][0]["notes"], "legacy note");
}

#[tokio::test]
async fn reindex_recomputes_blind_indexes_under_a_new_index_key() {
    let app = spawn_app_with(|_| {}).await;
    let org = app.create_org().await;
    let (_, caseworker) = create_victim(&app, org).await;
    let new_index = IdentityKeyring::generate_index_key();
    let keys = IdentityKeyring::parse(IDENTITY_KEY_SPEC, &new_index).unwrap();
    let report = haven::rekey::run(&app.pool, &vault_at(&vault_url(), keys), true, false).await.unwrap();
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
    let report = haven::seed::run(&pool, &vault_at(&vault_url(), keys), &options).await.unwrap();
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
    let vault = vault_at(&vault_url(), keys);
    let sealed = haven::victims::store::sealed_identity(&mut conn, victim).await.unwrap().unwrap();
    assert!(sealed.key_id.starts_with("v:"), "under the victim's own data key");
    let opener = vault.opener(victim).await.unwrap();
    let identity = haven::privacy::identity::open(&opener, victim, &sealed).unwrap().unwrap();
    assert!(identity.family_names.unwrap().ends_with("-Fict"), "names are visibly fictional");
}
