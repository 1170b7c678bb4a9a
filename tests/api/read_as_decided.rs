//! A read that decides what the caller may see and then reads it does both in one snapshot
//! (docs/DECISIONS.md D157). Each test holds the table the read takes its identity-grade text
//! from, lets the read decide and wait there, then commits, in one transaction, a change that
//! ends the caller's sight (a consent withdrawn, a case restricted) and a text written after it (a
//! new address, a new note). The read must not hand on that text.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Caller, Response, TestApp, spawn_app};
use crate::lock_order::meanwhile_then;
use crate::paths;
use crate::referrals::refer;
use crate::victims::{create_victim, marked_identity};

/// Written after the caller's sight ended: it must never reach them.
const LATER: &str = "LATERADDRESS";

/// Holds a table (its name in `$2`) from reads until the holder's transaction ends; `$1`, the
/// victim, is there because `meanwhile_then` binds it.
const HOLD: &str = "CREATE FUNCTION hold(victim uuid, name regclass) RETURNS void LANGUAGE plpgsql AS \
     $$ BEGIN EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', name); END $$";

async fn sql(app: &TestApp, statement: &str) {
    let mut conn = AsyncPgConnection::establish(&app.url).await.unwrap();
    diesel::sql_query(statement).execute(&mut conn).await.unwrap();
}

/// Runs `request` while `table` is held from reads; once the request waits for it, commits
/// `change` (one statement on the victim, `$1`) and lets it go on.
async fn while_held(
    app: &TestApp,
    victim: Uuid,
    table: &str,
    change: &str,
    request: impl std::future::Future<Output = Response>,
) -> Response {
    let hold = format!("SELECT hold($1, '{table}')");
    let then = async |other: &mut AsyncPgConnection| {
        diesel::sql_query(change)
            .bind::<diesel::sql_types::Uuid, _>(victim)
            .execute(other)
            .await
            .map_err(|e| e.to_string())
    };
    let (response, changed, waited) = meanwhile_then(app, victim, &hold, request, then).await;
    assert!(waited, "the request waited for {table}, after deciding what its caller may see");
    assert_eq!(changed, Ok(1), "the change went through while the request waited");
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response
}

/// Stores, as the table `later_identity`, the victim's identity sealed with the address `LATER`,
/// then gives the victim its marked identity back: the sealed row is what a caseworker would write
/// later.
async fn seal_a_later_identity(app: &TestApp, caseworker: &Caller<'_>, victim: Uuid) {
    let path = paths::victim(victim);
    let mut later = marked_identity();
    later["address"] = json!(LATER);
    for identity in [later, marked_identity()] {
        let version = caseworker.get(&path).await.header("etag").unwrap().to_owned();
        let patched = caseworker.patch(&path, &version, json!({ "identity": identity })).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
        if patched.text.contains(LATER) {
            let keep = format!(
                "CREATE TABLE later_identity AS SELECT key_id, nonce, ciphertext FROM victim_identities \
                 WHERE victim_id = '{victim}'"
            );
            sql(app, &keep).await;
        }
    }
}

/// The statement that writes the later identity, in the same transaction as the change of sight.
fn then_write_the_later_identity(change_of_sight: &str) -> String {
    format!(
        "WITH sight AS ({change_of_sight}) UPDATE victim_identities i \
         SET key_id = l.key_id, nonce = l.nonce, ciphertext = l.ciphertext FROM later_identity l \
         WHERE i.victim_id = $1"
    )
}

const RESTRICT: &str = "INSERT INTO restricted_cases (victim_id, organization_id, restricted_by) \
     SELECT id, organization_id, created_by FROM victims WHERE id = $1";

/// A receiver reads a referred person's identity. The person withdraws their consent to share it,
/// and a new address is written, between the receiver's sight and its read: the receiver gets the
/// identity as it stood when its sight was decided, never the new address.
#[tokio::test]
async fn a_receiver_reads_no_address_written_after_consent_to_share_was_withdrawn() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let receiver = app.caller(to, Role::Caseworker).await;
    refer(&sender, victim, to).await;
    seal_a_later_identity(&app, &sender, victim).await;
    sql(&app, HOLD).await;
    let path = paths::victim(victim);
    assert_eq!(receiver.get(&path).await.json()["identity"]["address"], "MARKERADDRESS");

    let withdraw = "UPDATE victims SET consent_share_with_referral_partners = false WHERE id = $1";
    let write = then_write_the_later_identity(withdraw);
    let read = while_held(&app, victim, "victim_identities", &write, receiver.get(&path)).await;
    assert!(!read.text.contains(LATER), "the receiver read an address written after its sight ended: {}", read.text);
    assert_eq!(read.json()["identity"]["address"], "MARKERADDRESS", "read as it stood when its sight was decided");
    assert!(receiver.get(&path).await.json().get("identity").is_none(), "the withdrawal stands");
}

/// A caseworker of the owner lists its cases. One is restricted to its assigned caseworkers, and a
/// new address written, between the page's custody and its identities: the page does not carry it.
#[tokio::test]
async fn a_page_of_cases_carries_no_identity_written_after_its_case_was_restricted() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, creator) = create_victim(&app, org).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    seal_a_later_identity(&app, &creator, victim).await;
    sql(&app, HOLD).await;
    let page = colleague.get(paths::VICTIMS).await;
    assert_eq!(page.json()["items"][0]["identity"]["address"], "MARKERADDRESS");

    let write = then_write_the_later_identity(RESTRICT);
    let page = while_held(&app, victim, "victim_identities", &write, colleague.get(paths::VICTIMS)).await;
    assert!(!page.text.contains(LATER), "the page carried an address written after the restriction: {}", page.text);
    assert_eq!(page.json()["items"][0]["identity"]["address"], "MARKERADDRESS");
}

/// A caseworker of the owner lists a case's assistance. The case is restricted, and a note
/// recorded, between the list's sight and its rows: the list does not carry the note.
#[tokio::test]
async fn a_list_of_assistance_carries_no_note_written_after_its_case_was_restricted() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, creator) = create_victim(&app, org).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    let path = paths::assistance(victim);
    let noted = json!({ "kind": "shelter", "provided_on": "2026-11-19", "notes": format!("{LATER} safe house") });
    let created = creator.post(&path, noted).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    // The note is taken out and put back later, as if written then.
    let record = created.json()["id"].as_str().unwrap().to_owned();
    sql(&app, &format!("CREATE TABLE later_record AS SELECT * FROM assistance_records WHERE id = '{record}'")).await;
    sql(&app, &format!("DELETE FROM assistance_records WHERE id = '{record}'")).await;
    sql(&app, HOLD).await;
    assert_eq!(colleague.get(&path).await.json()["items"], json!([]));

    let write = format!("WITH sight AS ({RESTRICT}) INSERT INTO assistance_records SELECT * FROM later_record");
    let list = while_held(&app, victim, "assistance_records", &write, colleague.get(&path)).await;
    assert!(!list.text.contains(LATER), "the list carried a note written after the restriction: {}", list.text);
    assert_eq!(list.json()["items"], json!([]), "the list as it stood when its sight was decided");
}

/// A caseworker's read records itself under the caseworker's account. Their own login on another
/// device, which updates the account, commits between the read's snapshot and its record: the
/// read still answers (D157: the login does not lock the account against key-share locks).
#[tokio::test]
async fn a_read_answers_though_its_readers_login_commits_meanwhile() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, caseworker) = create_victim(&app, org).await;
    sql(&app, HOLD).await;
    let path = paths::victim(victim);
    let read = caseworker.get(&path);
    let login = async |_: &mut AsyncPgConnection| app.login(&caseworker.user).await;
    let (read, _, waited) = meanwhile_then(&app, victim, "SELECT hold($1, 'victim_identities')", read, login).await;
    assert!(waited, "the read waited for the identities after its snapshot began");
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.json()["identity"]["address"], "MARKERADDRESS");
}

/// An organisation's admin reads who works its case. The case is handed over, its assignments
/// becoming the receiver's, between the read's decision and its rows: the read shows who worked it
/// as decided, never the receiver's caseworker (D177).
#[tokio::test]
async fn who_works_a_case_is_read_as_decided_though_it_is_handed_over_meanwhile() {
    let app = spawn_app().await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let (victim, creator) = create_victim(&app, dakar).await;
    let admin = app.caller(dakar, Role::Admin).await;
    let receiver = app.caller(lima, Role::Caseworker).await;
    sql(&app, HOLD).await;
    let path = paths::assignment(victim);
    assert_eq!(admin.get(&path).await.json()["caseworkers"], json!([creator.id()]));

    let hand_over = format!(
        "WITH gone AS (DELETE FROM case_assignments WHERE victim_id = $1), \
         added AS (INSERT INTO case_assignments (victim_id, user_id, organization_id, assigned_at, assigned_by) \
                   VALUES ($1, '{r}', '{lima}', now(), '{r}')) \
         UPDATE victims SET organization_id = '{lima}' WHERE id = $1",
        r = receiver.id()
    );
    let read = while_held(&app, victim, "case_assignments", &hand_over, admin.get(&path)).await;
    assert!(!read.text.contains(&receiver.id().to_string()), "the receiver's caseworker was shown: {}", read.text);
    assert_eq!(read.json()["caseworkers"], json!([creator.id()]), "as it stood when it was decided");
}
