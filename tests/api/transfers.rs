//! Transfers: a case moves to another organisation with the person; the receiver owns it, the
//! sender keeps the case file without the identity.

use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::spawn_app;
use crate::paths;
use crate::victims::{assert_no_marker, create_victim, victim_body};

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_transferred_case_moves_with_its_identity_and_leaves_the_sender_a_case_file() {
    let app = spawn_app().await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, dakar).await;
    let receiver = app.caller(lima, Role::Caseworker).await;
    let lima_admin = app.caller(lima, Role::Admin).await;
    let dakar_admin = app.caller(dakar, Role::Admin).await;
    let outsider = app.caller(app.create_org().await, Role::Caseworker).await;
    let note = json!({ "kind": "medical", "provided_on": "2026-11-01", "notes": "MARKERNOTES clinic" });
    assert_eq!(sender.post(&paths::assistance(victim), note).await.status, StatusCode::CREATED);
    let task = json!({ "kind": "follow_up", "due_on": "2027-01-10", "notes": "MARKERNOTES call" });
    let task = sender.post(&paths::tasks_of(victim), task).await.json()["id"].as_str().unwrap().to_owned();

    // A live referral stands in the way until it is settled.
    let referral = json!({ "victim_id": victim, "to_organization_id": lima, "service": "repatriation",
        "reason": "MARKERNOTES family in Lima" });
    let referral = sender.post(paths::REFERRALS, referral).await.json()["id"].as_str().unwrap().to_owned();
    let ask = json!({ "to_organization_id": lima, "reason": "migration_or_change_of_location" });
    sender.post(&paths::transfers_of(victim), ask.clone()).await.assert_problem(409, "conflict");
    assert_eq!(receiver.post(&paths::referral_step(&referral, "accept"), json!({})).await.status, StatusCode::OK);
    assert_eq!(receiver.post(&paths::referral_step(&referral, "complete"), json!({})).await.status, StatusCode::OK);

    let to_self = json!({ "to_organization_id": dakar, "reason": "other" });
    sender.post(&paths::transfers_of(victim), to_self).await.assert_problem(422, "validation");
    dakar_admin.post(&paths::transfers_of(victim), ask.clone()).await.assert_problem(403, "forbidden");
    let resp = sender.post(&paths::transfers_of(victim), ask.clone()).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let transfer = resp.json();
    let id = transfer["id"].as_str().unwrap().to_owned();
    assert_eq!(transfer["status"], "pending");
    sender.post(&paths::transfers_of(victim), ask).await.assert_problem(409, "conflict");

    // Waiting: the receiver sees the request, not yet the person.
    assert_eq!(
        ids(&receiver.get(&paths::query(paths::TRANSFERS, "direction=incoming")).await.json()),
        vec![id.clone()]
    );
    receiver.get(&paths::victim(victim)).await.assert_problem(404, "not-found");
    outsider.get(&paths::transfer(&id)).await.assert_problem(404, "not-found");
    for who in [&lima_admin, &sender] {
        who.post(&paths::transfer_step(&id, "accept"), json!({})).await.assert_problem(403, "forbidden");
    }

    let resp = receiver.post(&paths::transfer_step(&id, "accept"), json!({})).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let accepted = resp.json();
    assert_eq!(accepted["status"], "accepted");
    let number = accepted["to_case_number"].as_i64().expect("a case number of the receiver's");
    receiver.post(&paths::transfer_step(&id, "accept"), json!({})).await.assert_problem(409, "conflict");

    // The receiver owns it: the identity, its own number, in its lists and searches, its caseworker.
    let owned = receiver.get(&paths::victim(victim)).await.json();
    assert_eq!(owned["organization_id"], json!(lima));
    assert_eq!(owned["case_number"].as_i64(), Some(number));
    assert_eq!(owned["identity"]["document_number"], "MARKERDOC123");
    assert_eq!(
        ids(&receiver.get(&paths::query(paths::VICTIMS, "assigned_to=me")).await.json()),
        vec![victim.to_string()]
    );
    let search = json!({ "document_number": "MARKERDOC123" });
    assert_eq!(ids(&receiver.post(paths::VICTIM_SEARCH, search.clone()).await.json()).len(), 1);
    let version = format!("\"{}\"", owned["version"]);
    let patched = receiver.patch(&paths::victim(victim), &version, json!({ "status": "follow_up" })).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);

    // The sender keeps the case file and its history, read-only, without anything identifying.
    for (what, path) in [
        ("case", paths::victim(victim)),
        ("assistance", paths::assistance(victim)),
        ("tasks", paths::tasks_of(victim)),
        ("task", paths::task(&task)),
        ("referral", paths::referral(&referral)),
        ("transfer", paths::transfer(&id)),
        ("closures", paths::case_step(victim, "closures")),
    ] {
        for (who, caller) in [("caseworker", &sender), ("admin", &dakar_admin)] {
            let resp = caller.get(&path).await;
            assert_eq!(resp.status, StatusCode::OK, "{who} {what}: {}", resp.text);
            assert_no_marker(&format!("{who} {what}"), &resp.text);
        }
    }
    assert_eq!(sender.get(&paths::task(&task)).await.json()["status"], "cancelled", "the sender's tasks end");
    // The case's tasks went with it: in the receiver's lists, no longer in the sender's.
    assert!(ids(&sender.get(paths::TASKS).await.json()).is_empty(), "no longer the sender's tasks");
    assert_eq!(ids(&receiver.get(&paths::query(paths::TASKS, "status=cancelled")).await.json()), vec![task.clone()]);
    // The sender's clients are told to forget the identity.
    let changes = sender.get(paths::CHANGES).await.json();
    let tombstones: Vec<(String, String, String)> = changes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["victim_id"].as_str().unwrap().into(),
                t["forget"].as_str().unwrap().into(),
                t["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(tombstones.contains(&(victim.to_string(), "identity".into(), "transferred".into())), "{changes}");
    assert!(ids(&sender.get(paths::VICTIMS).await.json()).is_empty(), "no longer the sender's case");
    assert!(ids(&sender.post(paths::VICTIM_SEARCH, search).await.json()).is_empty());
    let version = format!("\"{}\"", sender.get(&paths::victim(victim)).await.json()["version"]);
    sender
        .patch(&paths::victim(victim), &version, json!({ "status": "active" }))
        .await
        .assert_problem(403, "forbidden");
    let more = json!({ "kind": "shelter", "provided_on": "2026-11-02" });
    sender.post(&paths::assistance(victim), more).await.assert_problem(403, "forbidden");
    outsider.get(&paths::victim(victim)).await.assert_problem(404, "not-found");

    let actions = app.audit_actions().await;
    for action in ["transfer.create", "transfer.accept"] {
        let both = actions.iter().filter(|(a, o)| a == action && o == "success").count();
        assert_eq!(both, 2, "{action}: one event in each organisation's log");
    }
}

#[tokio::test]
async fn a_transfer_needs_consent_and_may_be_declined_or_cancelled() {
    let app = spawn_app().await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, dakar).await;
    let receiver = app.caller(lima, Role::Caseworker).await;
    let ask = json!({ "to_organization_id": lima, "reason": "additional_services_required" });

    // Without consent to sharing with referral partners, nothing moves.
    let unconsenting = Uuid::new_v4();
    let mut body = victim_body(unconsenting);
    body["consent"]["share_with_referral_partners"] = json!(false);
    assert_eq!(sender.post(paths::VICTIMS, body).await.status, StatusCode::CREATED);
    sender.post(&paths::transfers_of(unconsenting), ask.clone()).await.assert_problem(409, "conflict");

    let first = sender.post(&paths::transfers_of(victim), ask.clone()).await.json()["id"].as_str().unwrap().to_owned();
    receiver
        .post(&paths::transfer_step(&first, "decline"), json!({ "reason": "maybe" }))
        .await
        .assert_problem(422, "validation");
    let declined = receiver.post(&paths::transfer_step(&first, "decline"), json!({ "reason": "no_capacity" })).await;
    assert_eq!(declined.status, StatusCode::OK, "{}", declined.text);
    assert_eq!(
        (declined.json()["status"].as_str(), declined.json()["decline_reason"].as_str()),
        (Some("declined"), Some("no_capacity"))
    );

    let second = sender.post(&paths::transfers_of(victim), ask).await.json()["id"].as_str().unwrap().to_owned();
    receiver.post(&paths::transfer_step(&second, "cancel"), json!({})).await.assert_problem(403, "forbidden");
    assert_eq!(sender.post(&paths::transfer_step(&second, "cancel"), json!({})).await.json()["status"], "cancelled");
    receiver.post(&paths::transfer_step(&second, "accept"), json!({})).await.assert_problem(409, "conflict");

    // Nothing moved: the case is the sender's, with its identity.
    assert_eq!(sender.get(&paths::victim(victim)).await.json()["identity"]["document_number"], "MARKERDOC123");
    receiver.get(&paths::victim(victim)).await.assert_problem(404, "not-found");
    let history = sender.get(&paths::query(paths::TRANSFERS, format!("victim_id={victim}"))).await.json();
    assert_eq!(ids(&history).len(), 2);
}

/// Who works a case is its organisation's to know (D113, D165): a receiver of a referral and the
/// new owner of a transferred case read the case's records without the sender's staff ids, and a
/// former owner keeps its own history (with its own staff) but not what the new owner records.
#[tokio::test]
async fn staff_ids_stay_with_their_organisation_and_a_former_owner_keeps_only_its_history() {
    let app = spawn_app().await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, dakar).await;
    let receiver = app.caller(lima, Role::Caseworker).await;
    let dakar_admin = app.caller(dakar, Role::Admin).await;
    let (me, them) = (json!(sender.user.id), json!(receiver.user.id));
    let task = json!({ "kind": "follow_up", "due_on": "2027-01-10" });
    let task = sender.post(&paths::tasks_of(victim), task).await.json()["id"].as_str().unwrap().to_owned();
    let goal = json!({ "kind": "legal", "planned_end_on": "2027-01-31" });
    let goal = sender.post(&paths::support_plan(victim), goal).await.json()["id"].as_str().unwrap().to_owned();
    let elsewhere = json!({ "provider_name": "Clinique du Port", "provider_country": "SEN", "service": "medical",
        "referred_on": "2026-11-02" });
    let elsewhere =
        sender.post(&paths::external_referrals_of(victim), elsewhere).await.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        sender.post(&paths::case_step(victim, "close"), json!({ "reason": "lost_contact" })).await.status,
        StatusCode::OK
    );
    let reopen = json!({ "reason": "further_support_needed" });
    assert_eq!(sender.post(&paths::case_step(victim, "reopen"), reopen).await.status, StatusCode::OK);
    let referral = json!({ "victim_id": victim, "to_organization_id": lima, "service": "legal" });
    let referral = sender.post(paths::REFERRALS, referral).await.json()["id"].as_str().unwrap().to_owned();
    let hold = paths::case_step(victim, "legal-hold");
    assert_eq!(sender.put(&hold, json!({ "basis": "litigation" })).await.status, StatusCode::OK);
    assert_eq!(sender.get(&paths::victim(victim)).await.status, StatusCode::OK, "a read of the identity");

    // (what, path, field, the staff id it names) for every record of the case that names staff.
    let named = |task: &str, goal: &str, elsewhere: &str, who: &Value| {
        vec![
            (paths::task(task), "/assignee_id", who.clone()),
            (paths::task(task), "/created_by", who.clone()),
            (paths::support_plan_goal(goal), "/created_by", who.clone()),
            (paths::external_referral(elsewhere), "/created_by", who.clone()),
            (paths::case_step(victim, "closures"), "/items/0/closed_by", who.clone()),
            (paths::case_step(victim, "closures"), "/items/0/reopened_by", who.clone()),
            (paths::case_step(victim, "consent-history"), "/items/0/recorded_by", who.clone()),
            (paths::case_step(victim, "legal-hold"), "/placed_by", who.clone()),
        ]
    };
    let read = async |caller: &crate::helpers::Caller<'_>, path: &str, field: &str| {
        let resp = caller.get(path).await;
        assert_eq!(resp.status, StatusCode::OK, "{path}: {}", resp.text);
        resp.json().pointer(field).cloned()
    };
    for (path, field, who) in named(&task, &goal, &elsewhere, &me) {
        assert_eq!(read(&sender, &path, field).await, Some(who.clone()), "the owner's own staff: {path} {field}");
        assert_eq!(read(&dakar_admin, &path, field).await, Some(who), "its admin: {path} {field}");
        if path.ends_with("/legal-hold") {
            // A receiver reads the case, not the owner's hold at all (D177).
            receiver.get(&path).await.assert_problem(403, "forbidden");
        } else {
            assert_eq!(read(&receiver, &path, field).await, None, "a receiver of a referral: {path} {field}");
        }
    }
    for path in [paths::tasks_of(victim), paths::support_plan(victim), paths::external_referrals_of(victim)] {
        let page = receiver.get(&path).await.json();
        let item = &page["items"][0];
        assert!(item.is_object(), "{path}: {page}");
        assert!(item.get("created_by").is_none() && item.get("assignee_id").is_none(), "{path}: {item}");
    }

    assert_eq!(receiver.post(&paths::referral_step(&referral, "accept"), json!({})).await.status, StatusCode::OK);
    assert_eq!(receiver.post(&paths::referral_step(&referral, "complete"), json!({})).await.status, StatusCode::OK);
    let ask = json!({ "to_organization_id": lima, "reason": "migration_or_change_of_location" });
    let transfer = sender.post(&paths::transfers_of(victim), ask).await.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(receiver.post(&paths::transfer_step(&transfer, "accept"), json!({})).await.status, StatusCode::OK);
    let seen_by = async |caller: &crate::helpers::Caller<'_>| {
        let t = caller.get(&paths::transfer(&transfer)).await.json();
        (t.get("from_user_id").cloned(), t.get("decided_by").cloned())
    };
    assert_eq!(seen_by(&sender).await, (Some(me.clone()), None), "the sender: its caseworker, not the acceptor");
    assert_eq!(seen_by(&receiver).await, (None, Some(them.clone())), "the receiver: its acceptor only");
    // Each organisation's log holds the transfer; each names only its own people.
    let lima_admin = app.caller(lima, Role::Admin).await;
    let actors = async |caller: &crate::helpers::Caller<'_>, query: &str| {
        let page = caller.get(&paths::query(paths::AUDIT_EVENTS, query)).await.json();
        let items = page["items"].as_array().unwrap().iter();
        items.map(|e| (e["actor_user_id"].clone(), e["client_address"].clone())).collect::<Vec<_>>()
    };
    let created = actors(&dakar_admin, "action=transfer.create").await;
    assert!(created.len() == 1 && created[0].0 == me && !created[0].1.is_null(), "{created:?}");
    assert_eq!(actors(&lima_admin, "action=transfer.create").await, vec![(Value::Null, Value::Null)]);
    assert_eq!(actors(&dakar_admin, "action=transfer.accept").await, vec![(Value::Null, Value::Null)]);
    assert_eq!(actors(&lima_admin, "action=transfer.accept").await.first().map(|a| a.0.clone()), Some(them.clone()));
    let looked_for = actors(&lima_admin, &format!("actor_user_id={}", sender.user.id)).await;
    assert!(looked_for.is_empty(), "another organisation's account cannot be looked for: {looked_for:?}");
    let mine = actors(&dakar_admin, &format!("actor_user_id={}", sender.user.id)).await;
    assert!(mine.len() > 3, "{mine:?}");

    // The new owner records more; it reads the sender's records without the sender's staff.
    let task2 = json!({ "kind": "follow_up", "due_on": "2027-02-10" });
    let task2 = receiver.post(&paths::tasks_of(victim), task2).await.json()["id"].as_str().unwrap().to_owned();
    let goal2 = json!({ "kind": "social_care", "planned_end_on": "2027-03-31" });
    let goal2 = receiver.post(&paths::support_plan(victim), goal2).await.json()["id"].as_str().unwrap().to_owned();
    let elsewhere2 = json!({ "provider_name": "Albergue Lima Sur", "provider_country": "PER", "service": "shelter",
        "referred_on": "2026-11-20" });
    let resp = receiver.post(&paths::external_referrals_of(victim), elsewhere2).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let elsewhere2 = resp.json()["id"].as_str().unwrap().to_owned();
    let help = json!({ "kind": "shelter", "provided_on": "2026-11-21" });
    assert_eq!(receiver.post(&paths::assistance(victim), help).await.status, StatusCode::CREATED);
    let consent = receiver.get(&paths::victim(victim)).await.json();
    let version = format!("\"{}\"", consent["version"]);
    let withdrawn = json!({ "consent": { "services": true, "share_with_referral_partners": false,
        "anonymised_statistics": true } });
    let resp = receiver.patch(&paths::victim(victim), &version, withdrawn).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(read(&receiver, &hold, "/placed_by").await, None, "the sender's hold, by someone of the sender's");
    for (path, field, _) in named(&task, &goal, &elsewhere, &me) {
        assert_eq!(read(&receiver, &path, field).await, None, "the new owner, of the sender's staff: {path} {field}");
    }
    // A task that came with the case is the sender's caseworker's: opened again, it needs one of
    // the new owner's, and naming the hidden assignee is answered as naming anyone unassignable.
    let version = format!("\"{}\"", receiver.get(&paths::task(&task)).await.json()["version"]);
    for change in [json!({ "status": "open" }), json!({ "assignee_id": sender.user.id, "due_on": "2027-03-01" })] {
        receiver.patch(&paths::task(&task), &version, change).await.assert_problem(422, "validation");
    }
    let reopened =
        receiver.patch(&paths::task(&task), &version, json!({ "status": "open", "assignee_id": them })).await;
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.text);
    let access = receiver.get(&paths::case_step(victim, "subject-access")).await.json();
    let readers: Vec<(Value, Value)> = access["identity_reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user_id"].clone(), r["organization_id"].clone()))
        .collect();
    assert!(readers.contains(&(Value::Null, json!(dakar))), "the sender's reads, without its people: {readers:?}");
    assert!(readers.contains(&(them.clone(), json!(lima))), "{readers:?}");
    assert!(!readers.iter().any(|(who, _)| *who == me), "{readers:?}");
    assert_eq!(
        receiver.post(&paths::case_step(victim, "close"), json!({ "reason": "goals_met" })).await.status,
        StatusCode::OK
    );
    for (path, field, who) in named(&task2, &goal2, &elsewhere2, &them).into_iter().take(4) {
        assert_eq!(read(&receiver, &path, field).await, Some(who), "the new owner, of its own: {path} {field}");
    }

    // The former owner: its own records, with its own staff; nothing recorded or changed after the
    // hand-over (the task the new owner opened again is the new owner's now), and no legal hold,
    // the current owner's instrument.
    for caller in [&sender, &dakar_admin] {
        for (path, field, who) in named(&task, &goal, &elsewhere, &me) {
            if path == paths::task(&task) || path == hold {
                caller.get(&path).await.assert_problem(404, "not-found");
                continue;
            }
            assert_eq!(read(caller, &path, field).await, Some(who), "the former owner's own: {path} {field}");
        }
        for path in [paths::task(&task2), paths::support_plan_goal(&goal2), paths::external_referral(&elsewhere2)] {
            caller.get(&path).await.assert_problem(404, "not-found");
        }
        let change = json!({ "status": "completed" });
        caller.patch(&paths::external_referral(&elsewhere2), "\"1\"", change).await.assert_problem(404, "not-found");
        for (path, count) in [
            (paths::tasks_of(victim), 0),
            (paths::support_plan(victim), 1),
            (paths::external_referrals_of(victim), 1),
            (paths::assistance(victim), 0),
            (paths::case_step(victim, "closures"), 1),
        ] {
            let page = caller.get(&path).await.json();
            assert_eq!(page["items"].as_array().map(Vec::len), Some(count), "{path}: {page}");
        }
        let history = caller.get(&paths::case_step(victim, "consent-history")).await.json();
        let shares: Vec<&Value> =
            history["items"].as_array().unwrap().iter().map(|e| &e["share_with_referral_partners"]).collect();
        assert_eq!(shares, vec![&json!(true)], "the withdrawal is the new owner's record: {history}");
    }
    // The new owner's hold replaces the sender's, placed by its own.
    assert_eq!(receiver.put(&hold, json!({ "basis": "criminal_investigation" })).await.status, StatusCode::OK);
    assert_eq!(read(&receiver, &hold, "/placed_by").await, Some(them.clone()));
}

/// A former owner reads the case file as it stood when it handed the case over (D166): what the
/// new owner changes, and where it sends the case next, are not the former owner's to follow.
#[tokio::test]
async fn a_former_owner_reads_the_case_file_as_it_handed_it_over() {
    let app = spawn_app().await;
    let (dakar, lima, kigali) = (app.create_org().await, app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, dakar).await;
    let (receiver, third) = (app.caller(lima, Role::Caseworker).await, app.caller(kigali, Role::Caseworker).await);
    let hand_over = async |from: &crate::helpers::Caller<'_>, to: &crate::helpers::Caller<'_>, org: Uuid| {
        let ask = json!({ "to_organization_id": org, "reason": "migration_or_change_of_location" });
        let resp = from.post(&paths::transfers_of(victim), ask).await;
        assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
        let id = resp.json()["id"].as_str().unwrap().to_owned();
        let resp = to.post(&paths::transfer_step(&id, "accept"), json!({})).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    };
    hand_over(&sender, &receiver, lima).await;
    let handed = sender.get(&paths::victim(victim)).await.json();
    assert_eq!(handed["organization_id"], json!(lima), "handed over to Lima: {handed}");

    let current = receiver.get(&paths::victim(victim)).await.json();
    let version = format!("\"{}\"", current["version"]);
    let change = json!({ "status": "follow_up", "country_of_exploitation": "PER" });
    let resp = receiver.patch(&paths::victim(victim), &version, change).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    hand_over(&receiver, &third, kigali).await;

    let status = |v: &Value| (v["status"].clone(), v["country_of_exploitation"].clone(), v["organization_id"].clone());
    let seen = sender.get(&paths::victim(victim)).await.json();
    assert_eq!(
        status(&seen),
        (json!("active"), json!("SEN"), json!(lima)),
        "Dakar's view stops at its hand-over: {seen}"
    );
    assert_eq!(seen, handed, "the same case file, whatever happened since");
    let seen = receiver.get(&paths::victim(victim)).await.json();
    assert_eq!(status(&seen), (json!("follow_up"), json!("PER"), json!(kigali)), "Lima's stops at its own: {seen}");
    assert_eq!(third.get(&paths::victim(victim)).await.json()["organization_id"], json!(kigali));
    // The person is told of the copies too: each, who reads it, and what it holds.
    let access = third.get(&paths::case_step(victim, "subject-access")).await.json();
    let kept: Vec<(Value, Value)> = access["handed_over"]
        .as_array()
        .unwrap_or_else(|| panic!("{access}"))
        .iter()
        .map(|k| (k["read_by"].clone(), status(&k["case_file"]).2))
        .collect();
    assert_eq!(kept, vec![(json!(dakar), json!(lima)), (json!(lima), json!(kigali))]);
    assert_eq!(access["handed_over"][0]["case_file"], handed, "the copy Dakar reads");

    // The kept copies hold no digest of the create request (which held the identity).
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use haven::db::schema::transfers::dsl as t;
    let digests: Vec<Option<serde_json::Value>> = t::transfers
        .filter(t::victim_id.eq(victim))
        .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Jsonb>>(
            "case_file -> 'create_digest'",
        ))
        .load(&mut app.pool.get().await.unwrap())
        .await
        .unwrap();
    assert_eq!(digests, vec![Some(json!("\\x")); 2], "{digests:?}");
}
