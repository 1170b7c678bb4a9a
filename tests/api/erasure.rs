//! Erasure that reaches backups (per-victim data keys in the key vault), legal holds, and the
//! retention schedule on a set clock.

use chrono::{Duration, Utc};
use haven::db::local_cluster::{self, ClusterOptions, LocalCluster};
use haven::domain::Role;
use haven::privacy::crypto::{IdentityKeyring, Purpose, Sealed};
use haven::privacy::vault::{Opens, Vault};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{BLIND_INDEX_KEY, IDENTITY_KEY_SPEC, TestApp, spawn_app, vault_at, vault_url};
use crate::paths;
use crate::victims::create_victim;

fn current_vault() -> Vault {
    vault_at(&vault_url(), IdentityKeyring::parse(IDENTITY_KEY_SPEC, BLIND_INDEX_KEY).unwrap())
}

/// A backup: `pg_dump` of the test's database, restored with `pg_restore` into a cluster of its
/// own. Dropping it removes the cluster.
struct Restored {
    pool: haven::db::Pool,
    _cluster: LocalCluster,
}

/// A directory that is removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("haven-erasure-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dump(app: &TestApp, dir: &std::path::Path) -> std::path::PathBuf {
    let bin = local_cluster::bin_dir(None).expect("the PostgreSQL binaries");
    let file = dir.join("backup.dump");
    let out = std::process::Command::new(bin.join("pg_dump"))
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(&file)
        .arg(&app.url)
        .output()
        .expect("run pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    file
}

fn restore(file: &std::path::Path, dir: &Scratch) -> Restored {
    let options = ClusterOptions { root: dir.0.join("pg"), ephemeral: true, bin_dir: None };
    let cluster = LocalCluster::start(&options).expect("a new cluster");
    local_cluster::ensure_database(&cluster.url("postgres"), "restored", None).unwrap();
    let url = cluster.url("restored");
    let bin = local_cluster::bin_dir(None).unwrap();
    let out = std::process::Command::new(bin.join("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(&url)
        .arg(file)
        .output()
        .expect("run pg_restore");
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));
    let pool = haven::db::build_pool(&url, 2, std::time::Duration::from_secs(10)).unwrap();
    Restored { pool, _cluster: cluster }
}

/// What the restored backup yields for `victim` with the current keys and vault: the identity's
/// document number and the assistance notes.
async fn readable(backup: &Restored, vault: &Vault, victim: Uuid) -> (Option<String>, Vec<String>) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use haven::db::schema::assistance_records as a;
    let mut conn = backup.pool.get().await.unwrap();
    let opener = vault.opener(victim).await.unwrap();
    let sealed = haven::victims::store::sealed_identity(&mut conn, victim).await.unwrap().expect("in the backup");
    let identity = haven::privacy::identity::open(&opener, victim, &sealed).unwrap();
    type Notes = (Uuid, Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);
    let rows: Vec<Notes> = a::table
        .filter(a::victim_id.eq(victim))
        .select((a::id, a::notes_key_id, a::notes_nonce, a::notes_ciphertext))
        .load(&mut conn)
        .await
        .unwrap();
    let mut notes = Vec::new();
    for (id, key_id, nonce, ciphertext) in rows {
        assert!(ciphertext.is_some(), "the backup holds the sealed note");
        let sealed = Sealed { key_id: key_id.unwrap(), nonce: nonce.unwrap(), ciphertext: ciphertext.unwrap() };
        if let Ok(plain) = opener.open(Purpose::AssistanceNotes, id, &sealed) {
            notes.push(String::from_utf8_lossy(&plain).into_owned());
        }
    }
    (identity.and_then(|i| i.document_number), notes)
}

#[tokio::test]
async fn erasure_destroys_every_identity_grade_value_and_reaches_a_restored_backup() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, caseworker) = create_victim(&app, org).await;
    let note = json!({ "kind": "medical", "provided_on": "2026-11-01", "notes": "MARKERNOTES clinic" });
    assert_eq!(caseworker.post(&paths::assistance(victim), note).await.status, StatusCode::CREATED);
    let referral = json!({ "victim_id": victim, "to_organization_id": other, "service": "legal",
        "reason": "MARKERNOTES court" });
    assert_eq!(caseworker.post(paths::REFERRALS, referral).await.status, StatusCode::CREATED);
    let task = json!({ "kind": "follow_up", "due_on": "2026-12-20", "notes": "MARKERNOTES call" });
    assert_eq!(caseworker.post(&paths::tasks_of(victim), task).await.status, StatusCode::CREATED);
    let goal = json!({ "kind": "legal", "planned_end_on": "2027-01-31", "objectives": "MARKERNOTES permit" });
    assert_eq!(caseworker.post(&paths::support_plan(victim), goal).await.status, StatusCode::CREATED);

    // A backup taken before the erasure, and restored: with the current keys it yields the
    // identity and the notes (the control, so the check below can fail).
    let dir = Scratch::new();
    let backup = restore(&dump(&app, &dir.0), &dir);
    let vault = current_vault();
    let before = readable(&backup, &vault, victim).await;
    assert_eq!(before, (Some("MARKERDOC123".into()), vec!["MARKERNOTES clinic".into()]));

    // Only the owner's caseworkers who may write the case erase it.
    let admin = app.caller(org, Role::Admin).await;
    let erase = json!({ "reason": "data_subject_request" });
    admin.post(&paths::case_step(victim, "erase"), erase.clone()).await.assert_problem(403, "forbidden");
    let resp = caseworker.post(&paths::case_step(victim, "erase"), erase.clone()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let receipt = resp.json();
    assert_eq!(receipt["identity"], true);
    for part in ["assistance_notes", "referral_reasons", "task_notes", "support_plan_texts"] {
        assert_eq!(receipt[part], 1, "{part}: {receipt}");
    }

    // The restored backup now holds only bytes nothing opens.
    let after = readable(&backup, &vault, victim).await;
    assert_eq!(after, (None, vec![]), "the backup still yields what was erased");

    // The live case: identity-free, marked erased, nothing identity-grade left anywhere.
    let case = caseworker.get(&paths::victim(victim)).await.json();
    assert!(case.get("identity").is_none_or(|i| i.as_object().is_some_and(|o| o.is_empty())), "{case}");
    assert!(case["erased_at"].is_string());
    let everything = caseworker.get(&paths::case_step(victim, "subject-access")).await;
    assert_eq!(everything.status, StatusCode::OK);
    assert!(!everything.text.contains("MARKER"), "{}", everything.text);
    let changes = caseworker.get(paths::CHANGES).await.json();
    assert!(changes.to_string().contains("identity_erased"), "clients are told to forget: {changes}");
    let audit = admin.get(&format!("{}?action=victim.erase", paths::AUDIT_EVENTS)).await;
    assert!(audit.text.contains("data_subject_request") && !audit.text.contains("MARKER"), "{}", audit.text);

    // Erasing again is harmless; what was added since goes too.
    let note = json!({ "kind": "legal", "provided_on": "2026-11-02", "notes": "MARKERNOTES again" });
    assert_eq!(caseworker.post(&paths::assistance(victim), note).await.status, StatusCode::CREATED);
    let again = caseworker.post(&paths::case_step(victim, "erase"), erase).await;
    assert_eq!((again.status, again.json()["assistance_notes"].clone()), (StatusCode::OK, json!(1)));
    let listed = caseworker.get(&paths::assistance(victim)).await;
    assert!(!listed.text.contains("MARKER"), "{}", listed.text);
}

#[tokio::test]
async fn retention_erases_on_schedule_except_under_a_legal_hold() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let admin = app.caller(org, Role::Admin).await;
    let schedule = json!({ "erase_identities_after_months": 6 });
    let set = admin.put(&format!("{}/retention", paths::organization(org)), schedule).await;
    assert_eq!((set.status, set.json()["erase_identities_after_months"].clone()), (StatusCode::OK, json!(6)));
    let (due, caseworker) = create_victim(&app, org).await;
    let (held, _) = create_victim(&app, org).await;
    let (reopened, _) = create_victim(&app, org).await;
    let (open, _) = create_victim(&app, org).await;
    for case in [due, held, reopened] {
        let resp = caseworker.post(&paths::case_step(case, "close"), json!({ "reason": "goals_met" })).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    }
    let resp = caseworker.post(&paths::case_step(reopened, "reopen"), json!({ "reason": "new_information" })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let hold = admin.put(&paths::case_step(held, "legal-hold"), json!({ "basis": "criminal_investigation" })).await;
    assert_eq!(hold.status, StatusCode::OK, "{}", hold.text);
    assert_eq!(caseworker.get(&paths::case_step(held, "legal-hold")).await.json()["basis"], "criminal_investigation");

    let vault = current_vault();
    let identity_of = async |case: Uuid| caseworker.get(&paths::victim(case)).await.json()["identity"].clone();
    let at = |months: i64| Utc::now() + Duration::days(months * 31);
    let ours = |report: &haven::retention::RetentionReport| {
        report.due.iter().filter(|d| d.organization_id == org).map(|d| d.victim_id).collect::<Vec<_>>()
    };

    let early = haven::retention::run(&app.pool, &vault, at(5), true).await.unwrap();
    assert!(ours(&early).is_empty(), "nothing is due before six months");
    let dry = haven::retention::run(&app.pool, &vault, at(7), true).await.unwrap();
    assert_eq!(ours(&dry), vec![due], "only the closed, unheld case is due");
    assert_eq!(identity_of(due).await["document_number"], "MARKERDOC123", "a dry run changes nothing");

    let ran = haven::retention::run(&app.pool, &vault, at(7), false).await.unwrap();
    assert_eq!(ours(&ran), vec![due]);
    assert!(identity_of(due).await.as_object().is_none_or(|o| o.is_empty()), "erased on schedule");
    for kept in [held, reopened, open] {
        assert_eq!(identity_of(kept).await["document_number"], "MARKERDOC123");
    }
    let audit = admin.get(&format!("{}?action=victim.erase", paths::AUDIT_EVENTS)).await;
    assert!(audit.text.contains("retention_schedule"), "{}", audit.text);

    // The hold also stops an erasure by hand; lifted, the schedule takes the case.
    let erase = json!({ "reason": "no_longer_needed" });
    caseworker.post(&paths::case_step(held, "erase"), erase).await.assert_problem(409, "conflict");
    let lifted = admin.request(reqwest::Method::DELETE, &paths::case_step(held, "legal-hold"), None).await;
    assert_eq!(lifted.status, StatusCode::NO_CONTENT);
    let ran = haven::retention::run(&app.pool, &vault, at(7), false).await.unwrap();
    assert_eq!(ours(&ran), vec![held]);
    assert!(identity_of(held).await.as_object().is_none_or(|o| o.is_empty()));
    let again = haven::retention::run(&app.pool, &vault, at(7), false).await.unwrap();
    assert!(ours(&again).is_empty(), "an erased case is not due again");
}
