//! A case that moved on tells nothing to those it left behind (D169): a former owner, and the other
//! party of a referral or transfer that ended, are refused what they may not do before the case is
//! locked (a 409 "moved meanwhile" would tell them it went on), and the new owner's erasure does
//! not move their history.

use haven::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::changes::{one, tombstones};
use crate::helpers::{Caller, spawn_app};
use crate::lock_order::{ERASURE_HOLDS_THE_CASE, meanwhile_then};
use crate::paths;
use crate::referrals::refer;
use crate::victims::create_victim;

pub async fn ask_transfer(from: &Caller<'_>, victim: Uuid, to: Uuid) -> String {
    let ask = json!({ "to_organization_id": to, "reason": "migration_or_change_of_location" });
    let resp = from.post(&paths::transfers_of(victim), ask).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    resp.json()["id"].as_str().unwrap().to_owned()
}

pub async fn accept(to: &Caller<'_>, transfer: &str) {
    let resp = to.post(&paths::transfer_step(transfer, "accept"), json!({})).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
}

#[tokio::test]
async fn those_a_case_left_behind_are_refused_alike_and_keep_their_history() {
    let app = spawn_app().await;
    let (dakar, shelter, quito) = (app.create_org().await, app.create_org().await, app.create_org().await);
    let (lima, kigali) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, dakar).await;
    let sender_admin = app.caller(dakar, Role::Admin).await;
    let (sheltering, quitos, limas, kigalis) = (
        app.caller(shelter, Role::Caseworker).await,
        app.caller(quito, Role::Caseworker).await,
        app.caller(lima, Role::Caseworker).await,
        app.caller(kigali, Role::Caseworker).await,
    );

    // Dakar's history: a task with notes, a referral the shelter declined, a transfer Quito declined.
    let task = json!({ "kind": "follow_up", "due_on": "2027-01-10", "notes": "MARKERNOTES call her sister" });
    let resp = sender.post(&paths::tasks_of(victim), task).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let task = resp.json()["id"].as_str().unwrap().to_owned();
    let referral = refer(&sender, victim, shelter).await["id"].as_str().unwrap().to_owned();
    let declined =
        sheltering.post(&paths::referral_step(&referral, "decline"), json!({ "reason": "no_capacity" })).await;
    assert_eq!(declined.status, StatusCode::OK, "{}", declined.text);
    let declined_transfer = ask_transfer(&sender, victim, quito).await;
    let resp =
        quitos.post(&paths::transfer_step(&declined_transfer, "decline"), json!({ "reason": "no_capacity" })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);

    // Dakar hands the case to Lima, which sends it on to Kigali.
    let to_lima = ask_transfer(&sender, victim, lima).await;
    accept(&limas, &to_lima).await;
    accept(&kigalis, &ask_transfer(&limas, victim, kigali).await).await;

    // Each of them is refused as it was while the case stood where it left it: 403, never 409.
    let refused = [
        (&sender, Method::POST, paths::case_step(victim, "close"), json!({ "reason": "goals_met" })),
        (&sender, Method::POST, paths::case_step(victim, "erase"), json!({ "reason": "no_longer_needed" })),
        (&sender, Method::PUT, paths::case_step(victim, "legal-hold"), json!({ "basis": "criminal_investigation" })),
        (
            &sender_admin,
            Method::PUT,
            paths::case_step(victim, "legal-hold"),
            json!({ "basis": "criminal_investigation" }),
        ),
        (&sender_admin, Method::DELETE, paths::case_step(victim, "legal-hold"), Value::Null),
        (&sheltering, Method::POST, paths::referral_step(&referral, "cancel"), json!({})),
        (&quitos, Method::POST, paths::transfer_step(&declined_transfer, "cancel"), json!({})),
    ];
    for (caller, method, path, body) in refused {
        let resp = caller.request(method.clone(), &path, (!body.is_null()).then_some(body)).await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{method} {path}: {}", resp.text);
    }

    // A move of what ended is refused without waiting on the new owner's writers (Kigali holds
    // the case meanwhile), whoever asks: the sender of the referral and of the transfers, the
    // receiver that declined.
    let moves = [
        (&sender, paths::referral_step(&referral, "cancel")),
        (&sender, paths::transfer_step(&to_lima, "cancel")),
        (&sheltering, paths::referral_step(&referral, "accept")),
    ];
    for (caller, path) in moves {
        let asked = caller.post(&path, json!({}));
        let (resp, _, waited) = meanwhile_then(&app, victim, ERASURE_HOLDS_THE_CASE, asked, async |_| ()).await;
        assert_eq!((resp.status, waited), (StatusCode::CONFLICT, false), "{path}: {}", resp.text);
    }

    // Kigali erases the person. What the others read of their own history does not move.
    let shelters_view = |v: &Value| (v["version"].clone(), v["status"].clone(), v["declined_at"].clone());
    let before = shelters_view(&sheltering.get(&paths::referral(&referral)).await.json());
    let dakars_task = sender.get(&paths::task(&task)).await;
    assert_eq!(dakars_task.status, StatusCode::OK, "{}", dakars_task.text);
    let erased = kigalis.post(&paths::case_step(victim, "erase"), json!({ "reason": "no_longer_needed" })).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    assert_eq!(erased.json()["task_notes"], 1, "{}", erased.text);
    assert_eq!(shelters_view(&sheltering.get(&paths::referral(&referral)).await.json()), before);
    assert_eq!(shelters_view(&sender.get(&paths::referral(&referral)).await.json()), before);
    let after = sender.get(&paths::task(&task)).await;
    assert_eq!(after.status, StatusCode::OK, "Dakar's own task stays in its history: {}", after.text);
    assert_eq!(after.json()["updated_at"], dakars_task.json()["updated_at"]);
    let listed = sender.get(&paths::tasks_of(victim)).await.json();
    assert!(listed["items"].as_array().unwrap().iter().any(|t| t["id"] == json!(task)), "{listed}");
}

/// The receiver of a transfer sees the request, not the person (D108): why the case can no longer
/// move is the sender's to say.
#[tokio::test]
async fn a_receiver_refused_a_case_is_not_told_why() {
    let app = spawn_app().await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, dakar).await;
    let limas = app.caller(lima, Role::Caseworker).await;
    let transfer = ask_transfer(&sender, victim, lima).await;
    let current = sender.get(&paths::victim(victim)).await.json();
    let version = format!("\"{}\"", current["version"]);
    let withdrawn = json!({ "consent": { "share_with_referral_partners": false } });
    let resp = sender.patch(&paths::victim(victim), &version, withdrawn).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);

    let refused =
        limas.post(&paths::transfer_step(&transfer, "accept"), json!({})).await.assert_problem(409, "conflict");
    let detail = refused["detail"].as_str().unwrap().to_lowercase();
    assert!(!detail.contains("consent") && detail.contains("sending organisation"), "{detail}");
}

/// A case referred back to an organisation that once handed it over is read whole while the
/// referral lasts; when it ends, that organisation's clients are told to delete what they read
/// since the hand-over and fetch the case again, which serves what it keeps, not to delete the
/// history it keeps (D171).
#[tokio::test]
async fn a_referral_back_to_a_former_owner_ends_in_what_it_keeps() {
    let app = spawn_app().await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, dakar).await;
    let limas = app.caller(lima, Role::Caseworker).await;
    let task = json!({ "kind": "follow_up", "due_on": "2027-01-10" });
    let task = sender.post(&paths::tasks_of(victim), task).await.json()["id"].clone();
    accept(&limas, &ask_transfer(&sender, victim, lima).await).await;
    let kept = sender.get(&paths::victim(victim)).await.json();

    let back = refer(&limas, victim, dakar).await["id"].as_str().unwrap().to_owned();
    let resp = sender.post(&paths::referral_step(&back, "accept"), json!({})).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let whole = sender.get(&paths::victim(victim)).await.json();
    assert!(whole["identity"].is_object(), "the referral shares the identity again: {whole}");
    // A referral gives Dakar's admins nothing: they read what Dakar kept, as before it.
    let admin = app.caller(dakar, Role::Admin).await;
    assert_eq!(admin.get(&paths::victim(victim)).await.json(), kept, "the admin reads what Dakar kept");
    let resp = limas.post(&paths::referral_step(&back, "cancel"), json!({})).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);

    assert_eq!(
        tombstones(&sender).await,
        vec![one(victim, "identity", "transferred"), one(victim, "since_hand_over", "referral_ended")]
    );
    assert_eq!(sender.get(&paths::victim(victim)).await.json(), kept, "what a fetch serves again");
    let tasks = sender.get(&paths::tasks_of(victim)).await.json();
    assert!(tasks["items"].as_array().unwrap().iter().any(|t| t["id"] == task), "and its lists: {tasks}");
    // Dakar's admins and auditors, who never read the case while it was referred back, are told
    // of its hand-over and of nothing after it (D172).
    for role in [Role::Admin, Role::Auditor] {
        let told = tombstones(&app.caller(dakar, role).await).await;
        assert_eq!(told, vec![one(victim, "identity", "transferred")], "{role:?}");
    }
}
