//! Victims' case files: identities encrypted at rest and shown only to entitled caseworkers.

use std::collections::HashSet;

use diesel_async::RunQueryDsl;
use haven::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Caller, TestApp, spawn_app};
use crate::paths;

/// Every identity field holds a marker that must never appear where it should not.
pub const MARKERS: [&str; 9] = [
    "MARKERGIVEN",
    "MARKERFAMILY",
    "MARKERALIAS",
    "MARKERPHONE",
    "MARKER@MAIL.EXAMPLE",
    "MARKERADDRESS",
    "MARKERDOCTYPE",
    "MARKERDOC123",
    "MARKERNOTES",
];

pub fn marked_identity() -> Value {
    json!({
        "given_names": "MARKERGIVEN Ana", "family_names": "MARKERFAMILY López",
        "aliases": ["MARKERALIAS"], "date_of_birth": "1999-02-03", "phone": "MARKERPHONE",
        "email": "MARKER@MAIL.EXAMPLE", "address": "MARKERADDRESS", "document_type": "MARKERDOCTYPE",
        "document_number": "MARKERDOC123", "notes": "MARKERNOTES told us about the compound"
    })
}

pub fn victim_body(id: Uuid) -> Value {
    json!({
        "id": id,
        "trafficking_status": "actual",
        "identified_on": "2026-10-14",
        "identified_in": "SEN",
        "identified_by": "ngo",
        "operation": "OP-SENTINEL-2026",
        "gender": "woman",
        "age_at_identification": 24,
        "citizenship": ["PER", "BRA"],
        "migrant_status": "irregular_migrant",
        "country_of_exploitation": "SEN",
        "exploitation_types": ["forced_criminality", "sexual_exploitation"],
        "labour_sector": "J",
        "recruitment_methods": ["deceptive_job_offer"],
        "means_of_control": ["debt_bondage", "withholds_documents"],
        "recruiter_relation": "friend_or_acquaintance",
        "route": [{"kind": "recruitment", "country": "PER", "month": "2026-03"},
                  {"kind": "transit", "country": "BRA"},
                  {"kind": "exploitation", "country": "SEN", "month": "2026-05"}],
        "consent": {"services": true, "share_with_referral_partners": true, "anonymised_statistics": true},
        "identity": marked_identity()
    })
}

pub fn assert_no_marker(context: &str, text: &str) {
    for marker in MARKERS {
        assert!(!text.contains(marker), "{context}: identity marker {marker} leaked: {text}");
    }
}

/// Creates a victim in `org` through the API as a new caseworker; returns its id and the
/// caseworker.
pub async fn create_victim(app: &TestApp, org: Uuid) -> (Uuid, Caller<'_>) {
    let caseworker = app.caller(org, Role::Caseworker).await;
    let id = Uuid::new_v4();
    let resp = caseworker.post(paths::VICTIMS, victim_body(id)).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    (id, caseworker)
}

async fn audit_count(app: &TestApp, action: &str) -> usize {
    app.audit_actions().await.iter().filter(|(a, _)| a == action).count()
}

/// The read of an identity and its audit event are one statement (D136): the event is written
/// exactly when there is a stored identity to return. A case file without one is read without an
/// event; once an identity is stored, every read of it writes one.
#[tokio::test]
async fn an_identity_read_is_recorded_exactly_when_there_is_an_identity() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let id = Uuid::new_v4();
    let mut body = victim_body(id);
    body.as_object_mut().unwrap().remove("identity");
    let resp = caseworker.post(paths::VICTIMS, body).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    assert_eq!(app.count("victim_identities").await, 0);

    let path = paths::victim(id);
    let before = audit_count(&app, "victim.identity_read").await;
    let resp = caseworker.get(&path).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(resp.json()["identity"], json!({}));
    assert_eq!(audit_count(&app, "victim.identity_read").await, before, "nothing was there to read");

    let resp = caseworker.patch(&path, "\"1\"", json!({ "identity": { "document_number": "MARKERDOC123" } })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let before = audit_count(&app, "victim.identity_read").await;
    for _ in 0..2 {
        let resp = caseworker.get(&path).await;
        assert_eq!(resp.json()["identity"]["document_number"], "MARKERDOC123", "{}", resp.text);
    }
    assert_eq!(audit_count(&app, "victim.identity_read").await, before + 2, "each read of the identity is recorded");
}

#[tokio::test]
async fn create_read_and_who_sees_what() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let other = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let id = Uuid::new_v4();
    let resp = caseworker.post(paths::VICTIMS, victim_body(id)).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    assert_eq!(resp.header("etag"), Some("\"1\""));
    let created = resp.json();
    assert_eq!(created["id"], id.to_string());
    assert_eq!(created["case_number"], 1);
    assert_eq!(created["is_minor"], false);
    assert_eq!(created["citizenship"], json!(["BRA", "PER"]), "sets are sorted");
    assert_eq!(created["identity"]["family_names"], "MARKERFAMILY López");

    // Echoing the creator's own input is no read of a stored identity (one transaction, one event).
    assert_eq!(audit_count(&app, "victim.identity_read").await, 0);
    assert_eq!(audit_count(&app, "victim.create").await, 1);

    let path = paths::victim(id);
    let reads_before = audit_count(&app, "victim.identity_read").await;
    let own = caseworker.get(&path).await.json();
    assert_eq!(own["identity"]["document_number"], "MARKERDOC123");
    assert_eq!(audit_count(&app, "victim.identity_read").await, reads_before + 1, "identity reads are audited");

    let admin = app.caller(org, Role::Admin).await;
    let auditor = app.caller(org, Role::Auditor).await;
    let host_auditor = app.caller(app.host_org, Role::Auditor).await;
    for (who, reader) in [("admin", &admin), ("auditor", &auditor), ("host auditor", &host_auditor)] {
        let resp = reader.get(&path).await;
        assert_eq!(resp.status, StatusCode::OK, "{who}: {}", resp.text);
        let body = resp.json();
        assert!(body.get("identity").is_none(), "{who} got an identity key");
        assert_eq!(body["case_number"], 1);
        assert_no_marker(who, &resp.text);
    }
    let partner = app.caller(org, Role::Partner).await;
    partner.get(&path).await.assert_problem(403, "forbidden");
    let stranger = app.caller(other, Role::Caseworker).await;
    let other_admin = app.caller(other, Role::Admin).await;
    let host_admin = app.host_admin().await;
    for outsider in [&stranger, &other_admin, &host_admin] {
        let resp = outsider.get(&path).await;
        resp.assert_problem(404, "not-found");
        assert_no_marker("refusal", &resp.text);
    }
    // Refusals are audited off the response path (so they cost what an unknown id costs): wait.
    let mut denied = 0;
    for _ in 0..50 {
        denied = audit_count(&app, "access.denied").await;
        if denied >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(denied >= 3, "refused accesses to the record are audited");
    // Audit events carry ids, never identity values.
    let audit = auditor.get(&paths::query(paths::AUDIT_EVENTS, "limit=200")).await;
    assert_no_marker("audit", &audit.text);

    // A second victim gets the next case number.
    let resp = caseworker
        .post(
            paths::VICTIMS,
            json!({
                "trafficking_status": "possible", "identified_on": "2026-11-01", "gender": "man"
            }),
        )
        .await;
    assert_eq!(resp.json()["case_number"], 2);
    // Only caseworkers create.
    admin.post(paths::VICTIMS, victim_body(Uuid::new_v4())).await.assert_problem(403, "forbidden");
}

#[tokio::test]
async fn creates_are_idempotent_by_client_id() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let id = Uuid::new_v4();
    let first = caseworker.post(paths::VICTIMS, victim_body(id)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = caseworker.post(paths::VICTIMS, victim_body(id)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["case_number"], first.json()["case_number"]);
    let mut changed = victim_body(id);
    changed["gender"] = json!("man");
    caseworker.post(paths::VICTIMS, changed).await.assert_problem(409, "conflict");
    assert_eq!(app.count("victims").await, 1);
}

#[tokio::test]
async fn identities_are_encrypted_at_rest_and_tampering_is_refused() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (id, caseworker) = create_victim(&app, org).await;
    #[derive(diesel::QueryableByName)]
    struct Dump {
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }
    let mut conn = app.pool.get().await.unwrap();
    for table in ["victims", "victim_identities", "audit_events", "case_counters"] {
        let rows: Vec<Dump> = diesel::sql_query(format!("SELECT row_to_json(t)::text AS text FROM {table} t"))
            .load(&mut conn)
            .await
            .unwrap();
        assert!(!rows.is_empty() || table == "case_counters");
        for row in rows {
            assert_no_marker(table, &row.text);
            assert!(!row.text.to_lowercase().contains("markergiven"), "{table} holds plaintext");
        }
    }
    // Flip one bit of the ciphertext: the identity is refused, not returned.
    diesel::sql_query(
        "UPDATE victim_identities SET ciphertext = overlay(ciphertext placing decode('ff', 'hex') from 5 for 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let resp = caseworker.get(&paths::victim(id)).await;
    resp.assert_problem(500, "internal");
    assert_no_marker("tampered", &resp.text);
    // Moving a valid ciphertext to another victim is refused too (it is bound to its victim id).
    let (other, _) = create_victim(&app, org).await;
    diesel::sql_query(format!(
        "UPDATE victim_identities SET ciphertext = (SELECT ciphertext FROM victim_identities WHERE victim_id = '{other}'), \
         nonce = (SELECT nonce FROM victim_identities WHERE victim_id = '{other}') WHERE victim_id = '{id}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    caseworker.get(&paths::victim(id)).await.assert_problem(500, "internal");
}

#[tokio::test]
async fn updates_are_merge_patches_with_optimistic_concurrency() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (id, caseworker) = create_victim(&app, org).await;
    let path = paths::victim(id);
    caseworker
        .request(Method::PATCH, &path, Some(json!({ "status": "follow_up" })))
        .await
        .assert_problem(428, "precondition-required");
    let resp = caseworker
        .patch(
            &path,
            "\"1\"",
            json!({ "status": "follow_up", "operation": null,
            "identity": { "family_names": "MARKERFAMILY Diallo", "phone": null } }),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(resp.header("etag"), Some("\"2\""));
    let body = resp.json();
    assert_eq!(body["status"], "follow_up");
    assert!(body.get("operation").is_none(), "null removes");
    assert_eq!(body["identity"]["family_names"], "MARKERFAMILY Diallo");
    assert_eq!(body["identity"]["given_names"], "MARKERGIVEN Ana", "absent fields stay");
    assert!(body["identity"].get("phone").is_none());
    assert_eq!(body["gender"], "woman");
    caseworker.patch(&path, "\"1\"", json!({ "status": "closed" })).await.assert_problem(412, "precondition-failed");
    caseworker.patch(&path, "\"2\"", json!({ "gender": "robot" })).await.assert_problem(422, "validation");
    caseworker.patch(&path, "\"2\"", json!({ "id": Uuid::new_v4() })).await.assert_problem(422, "validation");
    // Changing the age re-derives is_minor.
    let resp = caseworker.patch(&path, "\"2\"", json!({ "age_at_identification": 16 })).await;
    assert_eq!(resp.json()["is_minor"], true);
    // Against the recorded age (16): a conflict with the stored record; against itself: invalid.
    caseworker.patch(&path, "\"3\"", json!({ "is_minor": false })).await.assert_problem(409, "conflict");
    caseworker
        .patch(&path, "\"3\"", json!({ "is_minor": false, "age_at_identification": 12 }))
        .await
        .assert_problem(422, "validation");
    let admin = app.caller(org, Role::Admin).await;
    admin.patch(&path, "\"3\"", json!({ "status": "closed" })).await.assert_problem(403, "forbidden");
    let stranger = app.caller(app.create_org().await, Role::Caseworker).await;
    stranger.patch(&path, "\"3\"", json!({ "status": "closed" })).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn invalid_case_files_are_refused_and_not_stored() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let base = victim_body(Uuid::new_v4());
    let mut cases = Vec::new();
    for (field, value) in [
        ("identified_on", json!("2999-01-01")),
        ("is_minor", json!(true)),
        ("citizenship", json!(["XYZ"])),
        ("exploitation_types", json!(["smuggling"])),
        ("labour_sector", json!("Z")),
        ("route", json!([{"kind": "transit", "country": "SEN", "month": "2026-13"}])),
        ("age_at_identification", json!(300)),
        ("unknown_field", json!(1)),
        ("citizenship", json!(["PER", "BRA", "SEN", "GNB", "COL", "ECU"])),
        ("route", json!(vec![json!({"kind": "transit", "country": "SEN"}); 21])),
    ] {
        let mut body = base.clone();
        body[field] = value;
        cases.push(body);
    }
    for (field, value) in [
        ("notes", json!("x".repeat(20_001))),
        ("aliases", json!(vec!["Alias"; 21])),
        ("aliases", json!(["y".repeat(201)])),
        ("date_of_birth", json!("2999-01-01")),
    ] {
        let mut body = base.clone();
        body["identity"][field] = value;
        cases.push(body);
    }
    for body in cases {
        let resp = caseworker.post(paths::VICTIMS, body).await;
        resp.assert_problem(422, "validation");
        assert_no_marker("validation error", &resp.text);
    }
    assert_eq!(app.count("victims").await, 0);
    assert_eq!(app.count("victim_identities").await, 0);
}

#[tokio::test]
async fn search_by_name_or_document_through_blind_indexes() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (id, caseworker) = create_victim(&app, org).await;
    for query in [
        json!({ "name": "markergiven ana markerfamily lopez" }),
        json!({ "name": "MARKERFAMILY  López, MARKERGIVEN Ana" }),
        json!({ "name": "markeralias" }),
        json!({ "document_number": "markerdoc-123" }),
    ] {
        let resp = caseworker.post(paths::VICTIM_SEARCH, query.clone()).await;
        assert_eq!(resp.status, StatusCode::OK, "{query}: {}", resp.text);
        let items = resp.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{query}");
        assert_eq!(items[0]["id"], id.to_string());
        assert!(items[0]["identity"].is_object());
    }
    let none = caseworker.post(paths::VICTIM_SEARCH, json!({ "name": "markergiven" })).await;
    assert!(none.json()["items"].as_array().unwrap().is_empty(), "exact match only");
    caseworker
        .post(paths::VICTIM_SEARCH, json!({ "name": "a", "document_number": "b" }))
        .await
        .assert_problem(422, "validation");
    // Other organisations' caseworkers find nothing; other roles may not search.
    let stranger = app.caller(app.create_org().await, Role::Caseworker).await;
    let resp = stranger.post(paths::VICTIM_SEARCH, json!({ "document_number": "MARKERDOC123" })).await;
    assert!(resp.json()["items"].as_array().unwrap().is_empty());
    let admin = app.caller(org, Role::Admin).await;
    admin.post(paths::VICTIM_SEARCH, json!({ "name": "x" })).await.assert_problem(403, "forbidden");
    assert!(audit_count(&app, "victim.search").await >= 5);
}

#[tokio::test]
async fn lists_filter_redact_and_stay_stable_under_concurrent_inserts() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    for i in 0..7 {
        let mut body = victim_body(Uuid::new_v4());
        if i % 2 == 0 {
            body["exploitation_types"] = json!(["forced_labour"]);
            // (A case starts open; closing is POST /close. The filter is what is tested here.)
            body["status"] = json!("follow_up");
        }
        caseworker.post(paths::VICTIMS, body).await;
    }
    let admin = app.caller(org, Role::Admin).await;
    let list = |query: &str| paths::query(paths::VICTIMS, query);
    let page = admin.get(&list("limit=200")).await;
    assert_no_marker("admin list", &page.text);
    assert!(page.json()["items"].as_array().unwrap().iter().all(|v| v.get("identity").is_none()));
    let own = caseworker.get(&list("limit=3")).await.json();
    assert!(own["items"][0]["identity"].is_object(), "caseworkers list identities");
    let followed = caseworker.get(&list("status=follow_up&exploitation_type=forced_labour")).await.json();
    assert_eq!(followed["items"].as_array().unwrap().len(), 4);
    let by_citizenship = admin.get(&list("citizenship=PER&country_of_exploitation=SEN")).await.json();
    assert_eq!(by_citizenship["items"].as_array().unwrap().len(), 7);
    let none = admin.get(&list("identified_from=2026-10-15")).await.json();
    assert!(none["items"].as_array().unwrap().is_empty());
    let since = admin.get(&list("updated_since=2999-01-01T00:00:00Z")).await.json();
    assert!(since["items"].as_array().unwrap().is_empty());
    admin.get(&list("citizenship=XYZ")).await.assert_problem(422, "validation");
    let partner = app.caller(org, Role::Partner).await;
    partner.get(paths::VICTIMS).await.assert_problem(403, "forbidden");
    let stranger = app.caller(app.create_org().await, Role::Admin).await;
    assert!(stranger.get(paths::VICTIMS).await.json()["items"].as_array().unwrap().is_empty());

    // Page through while new victims keep arriving: no duplicates, every original seen.
    let originals: HashSet<String> = admin.get(&list("limit=200")).await.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    loop {
        caseworker.post(paths::VICTIMS, victim_body(Uuid::new_v4())).await;
        let page = admin.get(&list(&format!("limit=2{cursor}"))).await.json();
        for item in page["items"].as_array().unwrap() {
            assert!(seen.insert(item["id"].as_str().unwrap().to_owned()), "duplicate across pages");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert!(originals.is_subset(&seen), "a record was skipped");
}

#[tokio::test]
async fn concurrent_retries_of_a_create_all_succeed_once() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let id = Uuid::new_v4();
    let attempts = (0..6).map(|_| caseworker.post(paths::VICTIMS, victim_body(id)));
    let statuses: Vec<u16> = futures::future::join_all(attempts).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 200), "{statuses:?}");
    assert_eq!(app.count("victims").await, 1);
}

/// A create stores its victim's data key in the key vault while it looks for an earlier create,
/// and writes the case file only once that key has committed (D133): a vault that refuses the key
/// leaves no case file behind, sealed under a key nobody kept.
#[tokio::test]
async fn a_create_whose_data_key_is_not_stored_writes_no_case_file() {
    use diesel_async::AsyncConnection;
    let vault = crate::helpers::fresh_vault();
    let app = crate::helpers::spawn_app_with(|s| s.key_vault_url = Some(vault.clone().into())).await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let mut keys = diesel_async::AsyncPgConnection::establish(&vault).await.unwrap();
    diesel::sql_query("ALTER TABLE victim_keys ADD CONSTRAINT refuse_keys CHECK (false) NOT VALID")
        .execute(&mut keys)
        .await
        .unwrap();
    let id = Uuid::new_v4();
    let refused = caseworker.post(paths::VICTIMS, victim_body(id)).await;
    assert!(refused.status.is_server_error(), "{} {}", refused.status, refused.text);
    assert_no_marker("a create that failed", &refused.text);
    assert_eq!(app.count("victims").await, 0, "no case file without its data key");
    assert_eq!(app.count("victim_identities").await, 0);

    // With the vault taking keys again, the same create succeeds and its identity opens.
    diesel::sql_query("ALTER TABLE victim_keys DROP CONSTRAINT refuse_keys").execute(&mut keys).await.unwrap();
    let created = caseworker.post(paths::VICTIMS, victim_body(id)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let read = caseworker.get(&paths::victim(id)).await;
    assert_eq!(read.json()["identity"]["given_names"], "MARKERGIVEN Ana", "{}", read.text);
}

/// The case number is taken by the counter's update and read by the case file's insert in one
/// pipelined round trip (D133): concurrent creates of one organisation still number their cases
/// one to n, each once.
#[tokio::test]
async fn concurrent_creates_number_their_cases_one_to_n() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let creates = (0..8).map(|_| caseworker.post(paths::VICTIMS, victim_body(Uuid::new_v4())));
    let mut numbers: Vec<i64> = futures::future::join_all(creates)
        .await
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.json()["case_number"].as_i64().expect("a case number")
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=8).collect::<Vec<i64>>());
}

#[tokio::test]
async fn null_identity_erases_it_and_new_consent_is_dated() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (id, caseworker) = create_victim(&app, org).await;
    let path = paths::victim(id);
    let before = caseworker.get(&path).await.json()["consent"]["recorded_at"].clone();
    let resp = caseworker
        .patch(&path, "\"1\"", json!({ "identity": null, "consent": { "anonymised_statistics": false } }))
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let body = resp.json();
    assert_eq!(body["identity"], json!({}), "no identity left");
    assert_eq!(body["consent"]["anonymised_statistics"], false);
    assert_eq!(body["consent"]["services"], true, "merge keeps the other consents");
    assert_ne!(body["consent"]["recorded_at"], before, "changed consent gets a new date");
    assert_eq!(app.count("victim_identities").await, 0);
}

#[tokio::test]
async fn reads_by_another_organisation_show_in_the_owners_audit_log() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let receiver = app.caller(to, Role::Caseworker).await;
    let referral = json!({ "victim_id": victim, "to_organization_id": to, "service": "medical" });
    sender.post(paths::REFERRALS, referral).await;
    assert_eq!(receiver.get(&paths::victim(victim)).await.status, StatusCode::OK);
    let owner_auditor = app.caller(from, Role::Auditor).await;
    let log = owner_auditor
        .get(&paths::query(paths::AUDIT_EVENTS, format!("action=victim.identity_read&target_id={victim}")))
        .await
        .json();
    let readers: Vec<(&Value, &Value, &Value)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["actor_user_id"], &e["actor_organization_id"], &e["actor_role"]))
        .collect();
    // Which organisation read it, and in what role; who, its own log says (D165).
    assert_eq!(readers, vec![(&Value::Null, &json!(to), &json!("caseworker"))], "{log}");
    let receiver_auditor = app.caller(to, Role::Auditor).await;
    let own = receiver_auditor
        .get(&paths::query(paths::AUDIT_EVENTS, format!("action=victim.identity_read&target_id={victim}")))
        .await
        .json();
    assert_eq!(own["items"][0]["actor_user_id"], json!(receiver.id()), "{own}");
}

#[tokio::test]
async fn probes_reveal_nothing_to_the_prober() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let (victim, caseworker) = create_victim(&app, org).await;
    let other_admin = app.caller(other, Role::Admin).await;
    let partner = app.caller(org, Role::Partner).await;
    let missing = Uuid::new_v4();
    // Existing or not: the same answer.
    for id in [victim, missing] {
        other_admin.get(&paths::victim(id)).await.assert_problem(404, "not-found");
        partner.get(&paths::victim(id)).await.assert_problem(403, "forbidden");
        partner.get(&paths::assistance(id)).await.assert_problem(403, "forbidden");
    }
    // The prober's own log does not record the refusal (it would tell them the record exists);
    // the owner's does.
    let own_log = other_admin.get(&paths::query(paths::AUDIT_EVENTS, format!("target_id={victim}"))).await.json();
    assert!(own_log["items"].as_array().unwrap().is_empty(), "{own_log}");
    let owner_admin = app.caller(org, Role::Admin).await;
    let owner_log = owner_admin
        .get(&paths::query(paths::AUDIT_EVENTS, format!("action=access.denied&target_id={victim}")))
        .await
        .json();
    assert!(!owner_log["items"].as_array().unwrap().is_empty());

    // Identity responses are never cached.
    let resp = caseworker.get(&paths::victim(victim)).await;
    assert_eq!(resp.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn removing_the_age_keeps_the_minor_flag() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let id = Uuid::new_v4();
    let mut body = victim_body(id);
    body["age_at_identification"] = json!(15);
    caseworker.post(paths::VICTIMS, body).await;
    let resp = caseworker.patch(&paths::victim(id), "\"1\"", json!({ "age_at_identification": null })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let body = resp.json();
    assert!(body.get("age_at_identification").is_none());
    assert_eq!(body["is_minor"], true, "a recorded child stays a child");
}
