//! Erasure that reaches backups (per-victim data keys in the key vault), and an erased case that
//! stays de-identified. The retention schedule is tested in `retention.rs`.

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

pub(crate) fn current_vault() -> Vault {
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

/// Everything identity-grade the restored backup yields for `victim` with the current keys and
/// vault: the identity's document number, then the assistance notes, referral reasons, task notes
/// and support-plan texts that open.
async fn readable(backup: &Restored, vault: &Vault, victim: Uuid) -> Vec<String> {
    use diesel::sql_types::{Nullable, Text, Uuid as SqlUuid};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = Nullable<Text>)]
        key_id: Option<String>,
        #[diesel(sql_type = Nullable<diesel::sql_types::Bytea>)]
        nonce: Option<Vec<u8>>,
        #[diesel(sql_type = Nullable<diesel::sql_types::Bytea>)]
        ciphertext: Option<Vec<u8>>,
    }
    let mut conn = backup.pool.get().await.unwrap();
    let no_vault: bool =
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>("to_regclass('victim_keys') IS NULL"))
            .get_result(&mut conn)
            .await
            .unwrap();
    assert!(no_vault, "the backup of the case data holds no data keys");
    let rows: Vec<Stored> = diesel::sql_query(
        "SELECT 'identity' AS kind, victim_id AS id, key_id, nonce, ciphertext FROM victim_identities WHERE victim_id = $1
         UNION ALL SELECT 'notes', id, notes_key_id, notes_nonce, notes_ciphertext FROM assistance_records WHERE victim_id = $1
         UNION ALL SELECT 'reason', id, reason_key_id, reason_nonce, reason_ciphertext FROM referrals WHERE victim_id = $1
         UNION ALL SELECT 'task', id, notes_key_id, notes_nonce, notes_ciphertext FROM tasks WHERE victim_id = $1
         UNION ALL SELECT 'plan', id, text_key_id, text_nonce, text_ciphertext FROM support_plan_goals WHERE victim_id = $1
         ORDER BY 1",
    )
    .bind::<SqlUuid, _>(victim)
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 5, "the backup holds all five kinds");
    let opener = vault.opener(victim).await.unwrap();
    let mut opened = Vec::new();
    for row in rows {
        let sealed = Sealed {
            key_id: row.key_id.expect("sealed in the backup"),
            nonce: row.nonce.unwrap(),
            ciphertext: row.ciphertext.unwrap(),
        };
        let purpose = match row.kind.as_str() {
            "identity" => Purpose::Identity,
            "notes" => Purpose::AssistanceNotes,
            "reason" => Purpose::ReferralReason,
            "task" => Purpose::TaskNotes,
            _ => Purpose::SupportPlanText,
        };
        if let Ok(plain) = opener.open(purpose, row.id, &sealed) {
            opened.push(format!("{}: {}", row.kind, String::from_utf8_lossy(&plain)));
        }
    }
    opened
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
    assert_eq!(before.len(), 5, "{before:?}");
    assert!(before.iter().all(|v| v.contains("MARKER")), "{before:?}");
    // A sealer taken now, as by a write that races the erasure.
    let racing = vault.sealer(victim).await.unwrap();

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
    assert!(after.is_empty(), "the backup still yields what was erased: {after:?}");

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

    // A value a racing write sealed under the destroyed key, stored after the victim has a new
    // key, reads as erased: not as tampering (500), not as text.
    let note = json!({ "kind": "shelter", "provided_on": "2026-11-03", "notes": "written after" });
    let note = caseworker.post(&paths::assistance(victim), note).await.json()["id"].as_str().unwrap().parse().unwrap();
    let late = racing.seal(Purpose::AssistanceNotes, note, b"MARKERNOTES raced");
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use haven::db::schema::assistance_records as a;
        let mut conn = app.pool.get().await.unwrap();
        diesel::update(a::table.find(note))
            .set((
                a::notes_key_id.eq(&late.key_id),
                a::notes_nonce.eq(&late.nonce),
                a::notes_ciphertext.eq(&late.ciphertext),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let listed = caseworker.get(&paths::assistance(victim)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert!(!listed.text.contains("MARKER") && !listed.text.contains("written after"), "{}", listed.text);
}

/// An erased case stays a de-identified record (D154): an identity sent for it again, by a patch or
/// by a file's row, is refused, and the case holds none; the retention job, which erases a case
/// once, would not come back to one.
#[tokio::test]
async fn an_erased_case_takes_no_identity_again() {
    use diesel_async::RunQueryDsl;
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, caseworker) = create_victim(&app, org).await;
    let erased = caseworker.post(&paths::case_step(victim, "erase"), json!({ "reason": "data_subject_request" })).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    let version = caseworker.get(&paths::victim(victim)).await.json()["version"].to_string();
    let patch = json!({ "identity": { "given_names": "MARKERGIVEN Returned" } });
    caseworker.patch(&paths::victim(victim), &format!("\"{version}\""), patch).await.assert_problem(409, "conflict");
    let file = format!("hvn_CaseId,prs_FirstName\r\n{victim},MARKERGIVEN Returned\r\n").into_bytes();
    let (status, dry) = crate::exchange::import(&app, &caseworker, "dry_run=true", "text/csv", file.clone()).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["errors"].as_array().map(Vec::len), Some(1), "{dry}");
    let (status, refused) = crate::exchange::import(&app, &caseworker, "", "text/csv", file).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let case = caseworker.get(&paths::victim(victim)).await.json();
    assert!(case.get("identity").is_none_or(|i| i.is_null() || i.as_object().is_some_and(|o| o.is_empty())), "{case}");
    let stored = diesel::sql_query(format!("SELECT count(*) AS n FROM victim_identities WHERE victim_id = '{victim}'"));
    assert_eq!(stored.get_result::<Count>(&mut app.pool.get().await.unwrap()).await.unwrap().n, 0);
}

/// A case closed and then erased takes no notes again: the retention job, which erases a case once
/// per closure, would not come back to them (D156). Assistance without notes is still recorded.
#[tokio::test]
async fn a_case_erased_after_its_closure_takes_no_notes() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, caseworker) = create_victim(&app, org).await;
    let closed = caseworker.post(&paths::case_step(victim, "close"), json!({ "reason": "goals_met" })).await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    let erased = caseworker.post(&paths::case_step(victim, "erase"), json!({ "reason": "data_subject_request" })).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    let noted = json!({ "kind": "medical", "provided_on": "2026-11-01", "notes": "MARKERNOTES clinic" });
    caseworker.post(&paths::assistance(victim), noted).await.assert_problem(409, "conflict");
    let plain = json!({ "kind": "medical", "provided_on": "2026-11-01" });
    let recorded = caseworker.post(&paths::assistance(victim), plain).await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
