//! Separation of duties: no single person reaches an identity (README, "Roles and what each sees"). Each path by
//! which an admin could make themselves a caseworker fails without a second person and succeeds
//! with one, and the audit log names both people.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Caller, TestApp, TestUser, spawn_app};
use crate::paths;
use crate::victims::victim_body;

const THEIR_PASSWORD: &str = "kora-baobab-tide-lantern";

/// An organisation with a victim whose identity is on file; returns (org, victim id).
async fn org_with_victim(app: &TestApp) -> (Uuid, Uuid) {
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let victim = Uuid::new_v4();
    let resp = caseworker.post(paths::VICTIMS, victim_body(victim)).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    (org, victim)
}

/// Logs in with a password; the raw answer.
async fn log_in(app: &TestApp, email: &str, password: &str) -> crate::helpers::Response {
    app.login_raw(email, password).await
}

/// Someone who chose [`THEIR_PASSWORD`] at enrolment, signed in with it.
async fn sign_in_with_own_password<'a>(app: &'a TestApp, email: &str) -> Caller<'a> {
    let id: Uuid = {
        use haven::db::schema::users::dsl as u;
        let mut conn = app.pool.get().await.unwrap();
        u::users.filter(u::email.eq(email)).select(u::id).first(&mut conn).await.unwrap()
    };
    app.sign_in_with(&TestUser { id, email: email.to_owned() }, THEIR_PASSWORD).await
}

/// Whether this caller reads the victim's identity.
async fn reads_identity(caller: &Caller<'_>, victim: Uuid) -> bool {
    let resp = caller.get(&paths::victim(victim)).await;
    resp.status == StatusCode::OK && resp.json().get("identity").is_some()
}

/// The audit event of `action` for `grant`: (actor, details).
async fn grant_event(app: &TestApp, action: &str, grant: &str) -> (Uuid, Value) {
    use haven::db::schema::audit_events::dsl as a;
    let mut conn = app.pool.get().await.unwrap();
    let rows: Vec<(Option<Uuid>, Value)> = a::audit_events
        .filter(a::action.eq(action))
        .select((a::actor_user_id, a::details))
        .load(&mut conn)
        .await
        .unwrap();
    let (actor, details) =
        rows.into_iter().find(|(_, d)| d["grant"] == grant).unwrap_or_else(|| panic!("no {action} for {grant}"));
    (actor.unwrap(), details)
}

#[tokio::test]
async fn an_admin_made_caseworker_needs_a_second_person() {
    let app = spawn_app().await;
    let (org, victim) = org_with_victim(&app).await;
    let x = app.caller(org, Role::Admin).await;
    let y = app.caller(org, Role::Admin).await;

    // X creates a caseworker and, as an attacker would, redeems the token itself.
    let created = x.post(paths::USERS, json!({ "email": "mule@example.org", "role": "caseworker" })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let created = created.json();
    let grant = created["grant"]["id"].as_str().expect("a caseworker waits for a grant").to_owned();
    assert_eq!(created["grant"]["kind"], "new_caseworker");
    assert_eq!(created["user"]["awaiting_approval"], true);
    // Approval waits for the person to set their password.
    y.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(409, "conflict");
    let enrolled = app.enrol(created["enrolment"]["token"].as_str().unwrap(), THEIR_PASSWORD).await;
    assert_eq!(enrolled["awaiting_approval"], true);

    // Without a second person: no login, and X cannot approve its own request.
    log_in(&app, "mule@example.org", THEIR_PASSWORD).await.assert_problem(403, "awaiting-approval");
    x.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(403, "second-person-required");
    log_in(&app, "mule@example.org", THEIR_PASSWORD).await.assert_problem(403, "awaiting-approval");

    // The pending grant is listed for the people who may approve it.
    let pending = y.get(&paths::query(paths::GRANTS, "status=pending")).await.json();
    assert!(pending["items"].as_array().unwrap().iter().any(|g| g["id"] == grant.as_str()), "{pending}");

    // With one: Y approves, the caseworker logs in and reads identities.
    let approved = y.post(&paths::grant_approval(&grant), json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(approved.json()["decided_by"], y.id().to_string());
    let caseworker = sign_in_with_own_password(&app, "mule@example.org").await;
    assert!(reads_identity(&caseworker, victim).await);

    // X's own admins are X's puppets: one requests, the other cannot approve.
    let mut puppets = Vec::new();
    for name in ["s", "p"] {
        let made = x.post(paths::USERS, json!({ "email": format!("{name}@example.org"), "role": "admin" })).await;
        let made = made.json();
        app.enrol(made["enrolment"]["token"].as_str().unwrap(), THEIR_PASSWORD).await;
        puppets.push(sign_in_with_own_password(&app, &format!("{name}@example.org")).await);
    }
    let t = puppets[0].post(paths::USERS, json!({ "email": "t@example.org", "role": "caseworker" })).await.json();
    app.enrol(t["enrolment"]["token"].as_str().unwrap(), THEIR_PASSWORD).await;
    let t_grant = t["grant"]["id"].as_str().unwrap();
    puppets[1].post(&paths::grant_approval(t_grant), json!({})).await.assert_problem(403, "second-person-required");

    let (requester, _) = grant_event(&app, "access_grant.request", &grant).await;
    let (approver, details) = grant_event(&app, "access_grant.approve", &grant).await;
    assert_eq!(requester, x.id());
    assert_eq!(approver, y.id());
    assert_eq!(details["requested_by"], x.id().to_string(), "the approval names both people");
    y.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(409, "conflict");
}

#[tokio::test]
async fn a_host_admin_cannot_make_a_caseworker_in_another_organisation() {
    let app = spawn_app().await;
    let (org, victim) = org_with_victim(&app).await;
    let host = app.host_admin().await;
    app.caller(org, Role::Admin).await;
    let auditor = app.create_user(org, Role::Auditor).await;
    let caseworker = app.create_user(org, Role::Caseworker).await;

    host.post(paths::USERS, json!({ "email": "h1@example.org", "role": "caseworker", "organization_id": org }))
        .await
        .assert_problem(403, "forbidden");
    // The organisation has an admin: the host does not create another.
    host.post(paths::USERS, json!({ "email": "h2@example.org", "role": "admin", "organization_id": org }))
        .await
        .assert_problem(403, "forbidden");
    host.patch(&paths::user(auditor.id), "\"1\"", json!({ "role": "caseworker" }))
        .await
        .assert_problem(403, "forbidden");
    host.post(&paths::user_reset(caseworker.id), json!({})).await.assert_problem(403, "forbidden");
    // Taking access away stays possible.
    let resp = host.patch(&paths::user(caseworker.id), "\"1\"", json!({ "disabled": true })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert!(!reads_identity(&host, victim).await);
    host.post(paths::VICTIM_SEARCH, json!({ "name": "MARKERGIVEN" })).await.assert_problem(403, "forbidden");

    // Disabling an organisation's admins does not make room for a host's own.
    let lone = app.create_org().await;
    let lone_admin = app.create_user(lone, Role::Admin).await;
    let resp = host.patch(&paths::user(lone_admin.id), "\"1\"", json!({ "disabled": true })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    host.post(paths::USERS, json!({ "email": "h3@example.org", "role": "admin", "organization_id": lone }))
        .await
        .assert_problem(403, "forbidden");

    // A new organisation's first admin is the host's to create (no grant: admins read no identity).
    let fresh = app.create_org().await;
    let created = host
        .post(paths::USERS, json!({ "email": "first@example.org", "role": "admin", "organization_id": fresh }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(created.json().get("grant").is_none());
    // ... and that admin's caseworker cannot be approved by the host that holds the admin's token.
    let first = app.enrol(created.json()["enrolment"]["token"].as_str().unwrap(), THEIR_PASSWORD).await;
    assert_eq!(first["awaiting_approval"], false);
    let first = sign_in_with_own_password(&app, "first@example.org").await;
    let cw = first.post(paths::USERS, json!({ "email": "cw@example.org", "role": "caseworker" })).await.json();
    app.enrol(cw["enrolment"]["token"].as_str().unwrap(), THEIR_PASSWORD).await;
    let grant = cw["grant"]["id"].as_str().unwrap();
    host.post(&paths::grant_approval(grant), json!({})).await.assert_problem(403, "second-person-required");
    // Another host admin may approve for an organisation with a single admin.
    let other_host = app.caller(app.host_org, Role::Admin).await;
    let resp = other_host.post(&paths::grant_approval(grant), json!({})).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let confirmed_caseworker = sign_in_with_own_password(&app, "cw@example.org").await;
    // Once confirmed by a second person, that caseworker is a second person for the admin's next
    // request, although the admin issued their token.
    let next = first.post(paths::USERS, json!({ "email": "cw2@example.org", "role": "caseworker" })).await.json();
    app.enrol(next["enrolment"]["token"].as_str().unwrap(), THEIR_PASSWORD).await;
    let grant = next["grant"]["id"].as_str().unwrap();
    let resp = confirmed_caseworker.post(&paths::grant_approval(grant), json!({})).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
}

#[tokio::test]
async fn an_admin_reset_then_log_in_needs_a_second_person() {
    let app = spawn_app().await;
    let (org, victim) = org_with_victim(&app).await;
    let x = app.caller(org, Role::Admin).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    let target = app.create_user(org, Role::Caseworker).await;

    let reset = x.post(&paths::user_reset(target.id), json!({})).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    let reset = reset.json();
    let grant = reset["grant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(reset["grant"]["kind"], "credential_reset");
    // The old password is void at once; X sets one of its own choosing with the token.
    log_in(&app, &target.email, crate::helpers::PASSWORD).await.assert_problem(401, "invalid-credentials");
    app.enrol(reset["enrolment"]["token"].as_str().unwrap(), THEIR_PASSWORD).await;
    log_in(&app, &target.email, THEIR_PASSWORD).await.assert_problem(403, "awaiting-approval");
    x.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(403, "second-person-required");
    // An admin whose credential X issued is X's puppet, not a second person.
    let puppet = x.post(paths::USERS, json!({ "email": "puppet@example.org", "role": "admin" })).await.json();
    app.enrol(puppet["enrolment"]["token"].as_str().unwrap(), THEIR_PASSWORD).await;
    let puppet = sign_in_with_own_password(&app, "puppet@example.org").await;
    puppet.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(403, "second-person-required");

    // A caseworker of the organisation is a second person.
    let resp = colleague.post(&paths::grant_approval(&grant), json!({})).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let target = sign_in_with_own_password(&app, &target.email).await;
    assert!(reads_identity(&target, victim).await);
    let (requester, _) = grant_event(&app, "access_grant.request", &grant).await;
    let (approver, _) = grant_event(&app, "access_grant.approve", &grant).await;
    assert_eq!((requester, approver), (x.id(), colleague.id()));
}

#[tokio::test]
async fn a_promotion_or_re_enabling_waits_for_a_second_person() {
    let app = spawn_app().await;
    let (org, victim) = org_with_victim(&app).await;
    let x = app.caller(org, Role::Admin).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    let auditor = app.caller(org, Role::Auditor).await;

    let resp = x.patch(&paths::user(auditor.id()), "\"1\"", json!({ "role": "caseworker" })).await;
    assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text);
    let grant = resp.json()["grant"]["id"].as_str().unwrap().to_owned();
    assert!(resp.json().get("enrolment").is_none(), "a password a second person confirmed stays");
    let view = x.get(&paths::user(auditor.id())).await.json();
    assert_eq!(view["role"], "auditor", "nothing changes before approval");
    assert!(!reads_identity(&auditor, victim).await);
    x.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(403, "second-person-required");
    auditor.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(403, "forbidden");
    let resp = colleague.post(&paths::grant_approval(&grant), json!({})).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    // The approval ends the old sessions: the new role comes with a new login.
    auditor.get(paths::ME).await.assert_problem(401, "unauthorized");
    let promoted = app.sign_in(&auditor.user).await;
    assert!(reads_identity(&promoted, victim).await);

    // Disabled, then enabled again: another grant.
    let path = paths::user(auditor.id());
    let version = x.get(&path).await.json()["version"].to_string();
    assert_eq!(x.patch(&path, &format!("\"{version}\""), json!({ "disabled": true })).await.status, StatusCode::OK);
    let version = x.get(&path).await.json()["version"].to_string();
    let resp = x.patch(&path, &format!("\"{version}\""), json!({ "disabled": false })).await;
    assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text);
    assert_eq!(resp.json()["grant"]["kind"], "re_enable");
    let grant = resp.json()["grant"]["id"].as_str().unwrap().to_owned();
    log_in(&app, &auditor.user.email, crate::helpers::PASSWORD).await.assert_problem(401, "invalid-credentials");
    // Refused by the colleague: still disabled, and both people are on record.
    let refused = colleague.post(&paths::grant_refusal(&grant), json!({ "reason": "Not confirmed." })).await;
    assert_eq!(refused.status, StatusCode::OK, "{}", refused.text);
    assert_eq!(refused.json()["status"], "refused");
    let (_, details) = grant_event(&app, "access_grant.refuse", &grant).await;
    assert_eq!(details["requested_by"], x.id().to_string());
    assert_eq!(x.get(&path).await.json()["disabled"], true);
}

/// An admin creates an auditor (no grant: an auditor reaches no identity), sets its password with
/// the token they received, or keeps the token unused, and has the account promoted. Were the grant
/// approved on that password (D162: or before any), the admin would log in as a caseworker alone,
/// and the real person, asked in person, would say truthfully that they had set a password long
/// ago. The promotion voids a password no second person confirmed and issues a new token; the
/// grant waits for the password set with it (D164).
#[tokio::test]
async fn a_promotion_waits_for_a_password_set_after_it_was_asked() {
    const THE_ADMINS: &str = "quartz-ferry-mango-violet";
    let app = spawn_app().await;
    let (org, victim) = org_with_victim(&app).await;
    let x = app.caller(org, Role::Admin).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    let create = |email: &'static str| {
        let x = &x;
        async move {
            let created = x.post(paths::USERS, json!({ "email": email, "role": "auditor" })).await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
            let created = created.json();
            assert!(created["grant"].is_null(), "an auditor waits for no grant: {created}");
            created
        }
    };
    let promote = |id: String| {
        let x = &x;
        async move {
            let version = format!("\"{}\"", x.get(&paths::user(&id)).await.json()["version"]);
            // Promoted and disabled at once: one would wait and the other not, so neither is done.
            let both = json!({ "role": "caseworker", "disabled": true });
            x.patch(&paths::user(&id), &version, both).await.assert_problem(422, "validation");
            let resp = x.patch(&paths::user(&id), &version, json!({ "role": "caseworker" })).await;
            assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text);
            let now = format!("\"{}\"", x.get(&paths::user(&id)).await.json()["version"]);
            assert_eq!(resp.header("etag"), Some(now.as_str()), "the 202 names the account's version");
            resp.json()
        }
    };

    // The token redeemed before the promotion (by the admin, for all anyone can tell).
    let held = create("held@example.org").await;
    app.enrol(held["enrolment"]["token"].as_str().unwrap(), THE_ADMINS).await;
    let requested = promote(held["user"]["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(requested["grant"]["credential_set"], false, "{requested}");
    let grant = requested["grant"]["id"].as_str().unwrap().to_owned();
    log_in(&app, "held@example.org", THE_ADMINS).await.assert_problem(401, "invalid-credentials");
    colleague.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(409, "conflict");
    app.enrol(requested["enrolment"]["token"].as_str().expect("a new token"), THEIR_PASSWORD).await;
    let approved = colleague.post(&paths::grant_approval(&grant), json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(approved.json()["credential_set"], true);
    let promoted = sign_in_with_own_password(&app, "held@example.org").await;
    assert!(reads_identity(&promoted, victim).await);

    // The token kept unused: the promotion's token replaces it, and a withdrawn promotion ends
    // that one too.
    let kept = create("kept@example.org").await;
    let requested = promote(kept["user"]["id"].as_str().unwrap().to_owned()).await;
    let grant = requested["grant"]["id"].as_str().unwrap().to_owned();
    colleague.post(&paths::grant_approval(&grant), json!({})).await.assert_problem(409, "conflict");
    let withdrawn = x.post(&paths::grant_refusal(&grant), json!({})).await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{}", withdrawn.text);
    for token in [&kept["enrolment"]["token"], &requested["enrolment"]["token"]] {
        let resp = app.post(paths::ENROL, None, json!({ "token": token, "password": THE_ADMINS })).await;
        assert!(resp.status.is_client_error(), "a token still works: {}", resp.text);
    }
}

#[tokio::test]
async fn enrolment_tokens_work_once_expire_and_are_replaced() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let admin = app.caller(org, Role::Admin).await;
    let created = admin.post(paths::USERS, json!({ "email": "ana@example.org", "role": "partner" })).await.json();
    let first = created["enrolment"]["token"].as_str().unwrap().to_owned();
    let user = created["user"]["id"].as_str().unwrap().to_owned();
    // A weak password is refused with the reason, and the token still works afterwards.
    let weak = app.post(paths::ENROL, None, json!({ "token": first, "password": "qwertyuiopas" })).await;
    let problem = weak.assert_problem(422, "validation");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("too easy to guess"), "{problem}");
    app.enrol(&first, THEIR_PASSWORD).await;
    app.post(paths::ENROL, None, json!({ "token": first, "password": "another-kora-lantern" }))
        .await
        .assert_problem(401, "invalid-credentials");

    // A second reset replaces the first token; an expired one is refused.
    let one = admin.post(&paths::user_reset(&user), json!({})).await.json();
    let two = admin.post(&paths::user_reset(&user), json!({})).await.json();
    app.post(paths::ENROL, None, json!({ "token": one["enrolment"]["token"], "password": THEIR_PASSWORD }))
        .await
        .assert_problem(401, "invalid-credentials");
    {
        use haven::db::schema::enrolments::dsl as e;
        let mut conn = app.pool.get().await.unwrap();
        diesel::update(e::enrolments)
            .set(e::expires_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    app.post(paths::ENROL, None, json!({ "token": two["enrolment"]["token"], "password": THEIR_PASSWORD }))
        .await
        .assert_problem(401, "invalid-credentials");
    // Only hashes are stored.
    let stored: Vec<Vec<u8>> = {
        use haven::db::schema::enrolments::dsl as e;
        e::enrolments.select(e::token_hash).load(&mut app.pool.get().await.unwrap()).await.unwrap()
    };
    assert!(stored.iter().all(|h| h.len() == 32 && *h != first.as_bytes()));
}

#[tokio::test]
async fn people_change_their_own_password_and_their_other_sessions_end() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let user = app.create_user(org, Role::Caseworker).await;
    let this = app.sign_in(&user).await;
    let other = app.sign_in(&user).await;
    let change = |current: &str, new: &str| json!({ "current_password": current, "new_password": new });
    let wrong = this.post(paths::MY_PASSWORD, change("not-the-password", THEIR_PASSWORD)).await;
    assert_eq!(wrong.assert_problem(422, "validation")["errors"][0]["field"], "current_password");
    let weak = this.post(paths::MY_PASSWORD, change(crate::helpers::PASSWORD, "trustno1trustno1")).await;
    assert!(weak.assert_problem(422, "validation")["errors"][0]["field"] == "new_password");
    let resp = this.post(paths::MY_PASSWORD, change(crate::helpers::PASSWORD, THEIR_PASSWORD)).await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT, "{}", resp.text);
    assert_eq!(this.get(paths::ME).await.status, StatusCode::OK, "this session goes on");
    other.get(paths::ME).await.assert_problem(401, "unauthorized");
    log_in(&app, &user.email, crate::helpers::PASSWORD).await.assert_problem(401, "invalid-credentials");
    assert_eq!(log_in(&app, &user.email, THEIR_PASSWORD).await.status, StatusCode::OK);
    assert!(app.audit_actions().await.contains(&("user.password_change".into(), "success".into())));
}
