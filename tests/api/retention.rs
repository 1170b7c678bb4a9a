//! The retention schedule on a set clock: cases erased when due, except under a legal hold; a new or
//! shorter schedule waiting thirty days; a case that cannot be erased holding up no other; a run
//! that stops when the database or the key vault is down.

use chrono::{Duration, Utc};
use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::erasure::current_vault;
use crate::helpers::{TestApp, spawn_app};
use crate::paths;
use crate::victims::create_victim;

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
    let overseer = app.caller(app.host_org, Role::Auditor).await.get(&paths::case_step(held, "legal-hold")).await;
    assert_eq!(overseer.status, StatusCode::OK, "{}", overseer.text);
    assert_eq!(overseer.json()["placed_by"], json!(admin.id()), "host auditors see who placed it: {}", overseer.text);
    // Under the hold, the identity cannot be patched away, and a caseworker cannot lift it.
    let version = caseworker.get(&paths::victim(held)).await.json()["version"].to_string();
    let removal = caseworker.patch(&paths::victim(held), &format!("\"{version}\""), json!({ "identity": null })).await;
    removal.assert_problem(409, "conflict");
    let lift = caseworker.request(reqwest::Method::DELETE, &paths::case_step(held, "legal-hold"), None).await;
    lift.assert_problem(403, "forbidden");

    let vault = current_vault();
    let identity_of = async |case: Uuid| caseworker.get(&paths::victim(case)).await.json()["identity"].clone();
    let at = |months: i64| Utc::now() + Duration::days(months * 31);
    // The cases a run found due in this test's organisation (others run beside it).
    let ours = async |now, dry_run| {
        let mut seen = Vec::new();
        let mut each = |d: &haven::retention::Due, _| {
            if d.organization_id == org {
                seen.push(d.victim_id)
            }
        };
        haven::retention::run(&app.pool, &vault, now, dry_run, &mut each).await.unwrap();
        seen
    };

    assert!(ours(at(5), true).await.is_empty(), "nothing is due before six months");
    assert_eq!(ours(at(7), true).await, vec![due], "only the closed, unheld case is due");
    assert_eq!(identity_of(due).await["document_number"], "MARKERDOC123", "a dry run changes nothing");

    assert_eq!(ours(at(7), false).await, vec![due]);
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
    assert_eq!(ours(at(7), false).await, vec![held]);
    assert!(identity_of(held).await.as_object().is_none_or(|o| o.is_empty()));
    assert!(ours(at(7), false).await.is_empty(), "an erased case is not due again");

    // Reopened after its erasure, given an identity again and closed: due again in its turn.
    caseworker.post(&paths::case_step(due, "reopen"), json!({ "reason": "new_information" })).await;
    let version = caseworker.get(&paths::victim(due)).await.json()["version"].to_string();
    let identity = json!({ "identity": { "document_number": "MARKERDOC456" } });
    let resp = caseworker.patch(&paths::victim(due), &format!("\"{version}\""), identity).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    caseworker.post(&paths::case_step(due, "close"), json!({ "reason": "returned_home" })).await;
    assert!(ours(at(5), false).await.is_empty());
    assert_eq!(ours(at(7), false).await, vec![due], "erased again, six months after its new closure");
    assert!(identity_of(due).await.as_object().is_none_or(|o| o.is_empty()));
}

#[tokio::test]
async fn a_new_or_shorter_schedule_waits_thirty_days() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use haven::db::schema::case_closures;
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (case, caseworker) = create_victim(&app, org).await;
    caseworker.post(&paths::case_step(case, "close"), json!({ "reason": "goals_met" })).await;
    {
        // Closed two years ago.
        let mut conn = app.pool.get().await.unwrap();
        diesel::update(case_closures::table.filter(case_closures::victim_id.eq(case)))
            .set(case_closures::closed_at.eq(Utc::now() - Duration::days(730)))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let admin = app.caller(org, Role::Admin).await;
    let path = format!("{}/retention", paths::organization(org));
    let set = admin.put(&path, json!({ "erase_identities_after_months": 12 })).await.json();
    let effective: chrono::DateTime<Utc> = set["retention_effective_at"].as_str().unwrap().parse().unwrap();
    assert!(effective > Utc::now() + Duration::days(29), "a new schedule waits: {set}");
    // Host admins do not set another organisation's schedule.
    app.host_admin()
        .await
        .put(&path, json!({ "erase_identities_after_months": 1 }))
        .await
        .assert_problem(404, "not-found");
    let vault = current_vault();
    let due = async |now| {
        let mut found = false;
        haven::retention::run(&app.pool, &vault, now, true, &mut |d: &haven::retention::Due, _| {
            found |= d.victim_id == case
        })
        .await
        .unwrap();
        found
    };
    assert!(!due(Utc::now() + Duration::days(10)).await);
    assert!(due(Utc::now() + Duration::days(31)).await);
    // A longer schedule applies at once.
    let longer = admin.put(&path, json!({ "erase_identities_after_months": 18 })).await.json();
    let effective: chrono::DateTime<Utc> = longer["retention_effective_at"].as_str().unwrap().parse().unwrap();
    assert!(effective <= Utc::now(), "{longer}");
    assert!(due(Utc::now()).await);
}

/// An organisation whose schedule erases identities six months after closing, with `n` closed
/// cases (in the order made) and the caseworker who made them.
async fn closed_on_schedule(app: &TestApp, n: usize) -> (Uuid, Vec<Uuid>, crate::helpers::Caller<'_>) {
    let org = app.create_org().await;
    let admin = app.caller(org, Role::Admin).await;
    let schedule = json!({ "erase_identities_after_months": 6 });
    assert_eq!(admin.put(&format!("{}/retention", paths::organization(org)), schedule).await.status, StatusCode::OK);
    let (first, caseworker) = create_victim(app, org).await;
    let mut cases = vec![first];
    for _ in 1..n {
        cases.push(create_victim(app, org).await.0);
    }
    for &case in &cases {
        let resp = caseworker.post(&paths::case_step(case, "close"), json!({ "reason": "goals_met" })).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    }
    (org, cases, caseworker)
}

#[tokio::test]
async fn a_case_that_cannot_be_erased_is_tried_once_a_run_and_holds_up_no_other() {
    use diesel_async::RunQueryDsl;
    use haven::retention::Outcome;
    let app = spawn_app().await;
    let (org, cases, _) = closed_on_schedule(&app, 2).await;
    let (refused, after) = (cases[0], cases[1]);
    {
        // The database refuses the first case's erasure, every time it is tried.
        let name = format!("refuse_{}", refused.simple());
        let mut conn = app.pool.get().await.unwrap();
        for sql in [
            format!(
                "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$"
            ),
            format!(
                "CREATE TRIGGER {name} BEFORE UPDATE OF erased_at ON victims FOR EACH ROW \
                 WHEN (OLD.id = '{refused}') EXECUTE FUNCTION {name}()"
            ),
        ] {
            diesel::sql_query(sql).execute(&mut conn).await.unwrap();
        }
    }
    let vault = current_vault();
    let ours = async || {
        let mut met = Vec::new();
        let mut each = |d: &haven::retention::Due, outcome| {
            if d.organization_id == org {
                met.push((d.victim_id, outcome))
            }
        };
        let at = Utc::now() + Duration::days(7 * 31);
        haven::retention::run(&app.pool, &vault, at, false, &mut each).await.unwrap();
        met
    };
    assert_eq!(ours().await, vec![(refused, Outcome::Failed), (after, Outcome::Erased)], "each met once, in order");
    assert_eq!(ours().await, vec![(refused, Outcome::Failed)], "tried again by the next run, once");
}

/// A hold is the owner's: a receiving organisation reads the case, not whether a hold stands (D177).
#[tokio::test]
async fn a_receiver_reads_the_case_not_its_hold() {
    let app = spawn_app().await;
    let (org, lima) = (app.create_org().await, app.create_org().await);
    let admin = app.caller(org, Role::Admin).await;
    let (held, caseworker) = create_victim(&app, org).await;
    let (free, _) = create_victim(&app, org).await;
    let hold = admin.put(&paths::case_step(held, "legal-hold"), json!({ "basis": "criminal_investigation" })).await;
    assert_eq!(hold.status, StatusCode::OK, "{}", hold.text);
    let receiver = app.caller(lima, Role::Caseworker).await;
    for case in [held, free] {
        let referral = crate::referrals::refer(&caseworker, case, lima).await["id"].as_str().unwrap().to_owned();
        let accepted = receiver.post(&paths::referral_step(&referral, "accept"), json!({})).await;
        assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
        assert_eq!(receiver.get(&paths::victim(case)).await.status, StatusCode::OK, "the receiver reads the case");
        receiver.get(&paths::case_step(case, "legal-hold")).await.assert_problem(403, "forbidden");
    }
    assert_eq!(caseworker.get(&paths::case_step(held, "legal-hold")).await.json()["basis"], "criminal_investigation");
}

/// A case closed before closures were recorded (migration 9, no `case_closures` row) is due by its
/// last change, and not before (D176).
#[tokio::test]
async fn a_case_closed_before_closures_were_recorded_is_due_by_its_last_change() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let admin = app.caller(org, Role::Admin).await;
    let set = admin
        .put(&format!("{}/retention", paths::organization(org)), json!({ "erase_identities_after_months": 6 }))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    let (case, caseworker) = create_victim(&app, org).await;
    let closed = format!("UPDATE victims SET status = 'closed', updated_at = now() WHERE id = '{case}'");
    let mut conn = app.pool.get().await.unwrap();
    diesel_async::RunQueryDsl::execute(diesel::sql_query(closed), &mut conn).await.unwrap();
    let vault = current_vault();
    let mut met = Vec::new();
    for months in [5, 7] {
        let at = Utc::now() + Duration::days(months * 31);
        haven::retention::run(&app.pool, &vault, at, false, &mut |d: &haven::retention::Due, _| {
            if d.organization_id == org {
                met.push((months, d.victim_id))
            }
        })
        .await
        .unwrap();
    }
    assert_eq!(met, vec![(7, case)], "not before six months, then erased");
    let identity = caseworker.get(&paths::victim(case)).await.json()["identity"].clone();
    assert!(identity.as_object().is_none_or(|o| o.is_empty()), "{identity}");
    // Erased since its closing, as D156 reads a case with a closure: the job would not come back
    // to notes recorded now.
    let noted = json!({ "kind": "medical", "provided_on": "2026-11-01", "notes": "MARKERNOTES clinic" });
    caseworker.post(&paths::assistance(case), noted).await.assert_problem(409, "conflict");
}

/// A retention run seven months on (past the six-month schedule of `closed_on_schedule`): what
/// became of each of `org`'s cases it met.
async fn run_past_the_schedule(app: &TestApp, org: Uuid) -> Vec<(Uuid, haven::retention::Outcome)> {
    let vault = current_vault();
    let mut met = Vec::new();
    let at = Utc::now() + Duration::days(7 * 31);
    haven::retention::run(&app.pool, &vault, at, false, &mut |d: &haven::retention::Due, outcome| {
        if d.organization_id == org {
            met.push((d.victim_id, outcome))
        }
    })
    .await
    .unwrap();
    met
}

#[tokio::test]
async fn a_schedule_change_under_way_is_waited_for_and_then_applies() {
    use diesel::sql_types::{BigInt, Uuid as SqlUuid};
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    use haven::retention::Outcome;
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = spawn_app().await;
    let (org, cases, caseworker) = closed_on_schedule(&app, 1).await;
    let case = cases[0];

    // An admin removes the schedule. The change holds the organisation's row, as `set_retention`
    // does, and has not committed when the run finds the case due under the old schedule.
    let mut change = AsyncPgConnection::establish(&app.url).await.unwrap();
    let mut watch = AsyncPgConnection::establish(&app.url).await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut change).await.unwrap();
    diesel::sql_query(
        "UPDATE organizations SET erase_identities_after_months = NULL, retention_effective_at = NULL WHERE id = $1",
    )
    .bind::<SqlUuid, _>(org)
    .execute(&mut change)
    .await
    .unwrap();
    let ended = AtomicBool::new(false);
    let run = async {
        let met = run_past_the_schedule(&app, org).await;
        ended.store(true, Ordering::SeqCst);
        met
    };
    let commit = async {
        // The change commits once the run's erasure waits for it, or once the run has ended
        // without waiting.
        let waiting = "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                       AND wait_event_type = 'Lock' AND query LIKE '%FROM victims v JOIN organizations o%')";
        while !AtomicBool::load(&ended, Ordering::SeqCst)
            && diesel::select(diesel::dsl::sql::<BigInt>(waiting)).get_result::<i64>(&mut watch).await.unwrap() == 0
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        diesel::sql_query("COMMIT").execute(&mut change).await.unwrap();
    };
    let (met, ()) = tokio::join!(run, commit);
    assert_eq!(met, vec![(case, Outcome::Left)], "the run waited for the change, then applied it");
    assert_eq!(caseworker.get(&paths::victim(case)).await.json()["identity"]["document_number"], "MARKERDOC123");
}

/// An erasure the database undoes (a deadlock) has already destroyed the case's key: the run does
/// it again at once, so the case is not left unreadable yet unrecorded until the next run.
#[tokio::test]
async fn an_erasure_undone_by_a_deadlock_is_done_again_at_once() {
    use diesel_async::RunQueryDsl;
    use haven::retention::Outcome;
    let app = spawn_app().await;
    let (org, cases, caseworker) = closed_on_schedule(&app, 1).await;
    let case = cases[0];
    {
        // The database undoes the case's first erasure as it would on a deadlock (PostgreSQL's
        // code and message; `lock_order.rs` makes a real one), once: a sequence is not rolled
        // back with the transaction.
        let mut conn = app.pool.get().await.unwrap();
        for sql in [
            "CREATE SEQUENCE first_erasure".to_owned(),
            "CREATE FUNCTION undo_first_erasure() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF nextval('first_erasure') = 1 THEN \
             RAISE EXCEPTION USING ERRCODE = '40P01', MESSAGE = 'deadlock detected'; END IF; \
             RETURN OLD; END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER undo_first_erasure BEFORE DELETE ON victim_identities FOR EACH ROW \
                 WHEN (OLD.victim_id = '{case}') EXECUTE FUNCTION undo_first_erasure()"
            ),
        ] {
            diesel::sql_query(sql).execute(&mut conn).await.unwrap();
        }
    }
    assert_eq!(run_past_the_schedule(&app, org).await, vec![(case, Outcome::Erased)], "done again in the same run");
    let file = caseworker.get(&paths::victim(case)).await.json();
    assert!(file["erased_at"].is_string(), "recorded as erased: {file}");
    let undone = "SELECT last_value FROM first_erasure";
    let tries = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!("({undone})")));
    assert_eq!(tries.get_result::<i64>(&mut app.pool.get().await.unwrap()).await.unwrap(), 2, "undone once, then done");
}

/// The key vault is down: the first due case cannot be erased, nor could any after it, each after
/// waiting out the vault pool's timeout under its case's lock. The run stops at that case, saying
/// the vault is unavailable, and erases every case at the next run once the vault is back.
#[tokio::test]
async fn a_run_stops_at_the_first_case_when_the_key_vault_is_down() {
    use haven::retention::Outcome;
    let app = spawn_app().await;
    let (org, cases, _) = closed_on_schedule(&app, 3).await;
    // Nothing listens on port 1: every connection is refused at once.
    let down = haven::db::build_pool("postgres://postgres@127.0.0.1:1/haven", 1, std::time::Duration::from_secs(2))
        .expect("a pool");
    let keys = haven::privacy::crypto::IdentityKeyring::parse(
        crate::helpers::IDENTITY_KEY_SPEC,
        crate::helpers::BLIND_INDEX_KEY,
    )
    .expect("keys");
    let down = haven::privacy::vault::Vault::new(down, std::sync::Arc::new(keys));
    let mut met = Vec::new();
    let at = Utc::now() + Duration::days(7 * 31);
    let stopped = haven::retention::run(&app.pool, &down, at, false, &mut |d: &haven::retention::Due, outcome| {
        met.push((d.victim_id, outcome))
    })
    .await;
    assert!(matches!(stopped, Err(haven::error::ApiError::Unavailable)), "{stopped:?}");
    assert!(met.is_empty(), "no case was met to the end, none counted failed: {met:?}");
    let erased: Vec<_> = cases.iter().map(|&case| (case, Outcome::Erased)).collect();
    assert_eq!(run_past_the_schedule(&app, org).await, erased, "all erased once the vault is back");
}
