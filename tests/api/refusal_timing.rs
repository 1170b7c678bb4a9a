//! Another organisation's existing record is answered like an unknown id, in the same time
//! (README, "Roles and what each sees"): its response time must not tell whether the record exists.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use haven::domain::Role;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{Caller, spawn_app};
use crate::paths;
use crate::victims::victim_body;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Mann-Whitney U as a z score: how far the two samples' ranks are from what identical
/// distributions give. Robust to the outliers a shared machine produces.
fn rank_z(a: &[Duration], b: &[Duration]) -> f64 {
    let mut all: Vec<(Duration, bool)> = a.iter().map(|d| (*d, true)).chain(b.iter().map(|d| (*d, false))).collect();
    all.sort();
    let rank_sum_a: f64 = all.iter().enumerate().filter(|(_, (_, is_a))| *is_a).map(|(i, _)| (i + 1) as f64).sum();
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let sd = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    (u - mean) / sd
}

/// Times `caller`'s reads of `existing(round)` and of fresh unknown ids (`path` of each), each
/// answered 404, alternately after a warm-up (the order swapped every round, which cancels whatever
/// one request leaves behind for the next), and says how far apart the two are: the rank z and
/// both medians. An audit write on the refusal path (about a millisecond or more) gives |z| above
/// 10; equal work gives |z| around 1. Four is far from both.
async fn refusals_compared(
    caller: &Caller<'_>,
    existing: impl Fn(usize) -> (fn(Uuid) -> String, Uuid),
) -> (f64, Duration, Duration) {
    let time = async |path: String| {
        let started = Instant::now();
        let resp = caller.get(&path).await;
        let took = started.elapsed();
        resp.assert_problem(404, "not-found");
        took
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..330 {
        let (path, id) = existing(round);
        let (k, u) = if round % 2 == 0 {
            let k = time(path(id)).await;
            (k, time(path(Uuid::new_v4())).await)
        } else {
            let u = time(path(Uuid::new_v4())).await;
            (time(path(id)).await, u)
        };
        // The first thirty rounds warm the caches up.
        if round >= 30 {
            known.push(k);
            unknown.push(u);
        }
    }
    (rank_z(&known, &unknown), median(known), median(unknown))
}

#[tokio::test]
async fn a_hidden_record_is_refused_in_the_time_of_an_unknown_id() {
    let app = spawn_app().await;
    let (owner, other) = (app.create_org().await, app.create_org().await);
    let owner_caseworker = app.caller(owner, Role::Caseworker).await;
    let prober = app.caller(other, Role::Caseworker).await;
    let existing = Uuid::new_v4();
    assert_eq!(owner_caseworker.post(paths::VICTIMS, victim_body(existing)).await.status, StatusCode::CREATED);

    let (z, h, u) = refusals_compared(&prober, |_| (|id| paths::victim(id), existing)).await;
    println!("hidden median {h:?}, unknown median {u:?}, rank z {z:.2}");
    assert!(z.abs() < 4.0, "a hidden record is told apart by time: hidden {h:?} vs unknown {u:?} (z {z:.2})");

    // Every refusal is still audited, off the response path: the hidden record's in its owner's
    // log, the unknown ids' in the deployment's, none in the prober's organisation's.
    let counts = || async {
        use haven::db::schema::audit_events::dsl as a;
        let rows: Vec<(Option<Uuid>, Option<Uuid>)> = a::audit_events
            .filter(a::action.eq("access.denied"))
            .select((a::organization_id, a::target_id))
            .load(&mut app.pool.get().await.unwrap())
            .await
            .unwrap();
        let in_owner = rows.iter().filter(|(org, t)| *org == Some(owner) && *t == Some(existing)).count();
        let unknown = rows.iter().filter(|(org, _)| org.is_none()).count();
        let in_prober = rows.iter().filter(|(org, _)| *org == Some(other)).count();
        (in_owner, unknown, in_prober)
    };
    let mut seen = (0, 0, 0);
    for _ in 0..50 {
        seen = counts().await;
        if seen.0 + seen.1 >= 660 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, (330, 330, 0), "(owner's log, deployment's log, prober's log)");
}

/// A task, a goal or a referral outside Haven of a case the caller may not see is refused in the
/// time of an unknown id of the same kind: the record is found, then its case is not; an unknown
/// record runs the same case lookup for its own id (`victims::access::load_case_of`).
#[tokio::test]
async fn a_record_of_a_hidden_case_is_refused_in_the_time_of_an_unknown_id() {
    let app = spawn_app().await;
    let (owner, other) = (app.create_org().await, app.create_org().await);
    let owner_caseworker = app.caller(owner, Role::Caseworker).await;
    let prober = app.caller(other, Role::Caseworker).await;
    let victim = Uuid::new_v4();
    assert_eq!(owner_caseworker.post(paths::VICTIMS, victim_body(victim)).await.status, StatusCode::CREATED);
    let created = async |path: String, body: serde_json::Value| {
        let resp = owner_caseworker.post(&path, body).await;
        assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
        Uuid::parse_str(resp.json()["id"].as_str().unwrap()).unwrap()
    };
    let task =
        created(paths::tasks_of(victim), serde_json::json!({ "kind": "follow_up", "due_on": "2027-01-10" })).await;
    let goal =
        created(paths::support_plan(victim), serde_json::json!({ "kind": "legal", "planned_end_on": "2027-01-31" }))
            .await;
    let outside = serde_json::json!({ "provider_name": "Clinique du Port", "provider_country": "SEN",
        "service": "medical", "referred_on": "2026-11-02" });
    let outside = created(paths::external_referrals_of(victim), outside).await;
    type PathOf = fn(Uuid) -> String;
    let kinds: [(PathOf, Uuid); 3] = [
        (|id| paths::task(id), task),
        (|id| paths::support_plan_goal(id), goal),
        (|id| paths::external_referral(id), outside),
    ];

    let (z, h, u) = refusals_compared(&prober, |round| kinds[round % 3]).await;
    println!("records: hidden median {h:?}, unknown median {u:?}, rank z {z:.2}");
    assert!(z.abs() < 4.0, "a hidden case's record is told apart by time: hidden {h:?} vs unknown {u:?} (z {z:.2})");
}

/// A former owner's question about a record the new owner made after the hand-over is refused in
/// the time of an unknown id: it never saw that record's id, and the time must not confirm one.
#[tokio::test]
async fn a_record_made_after_a_hand_over_is_refused_to_the_former_owner_in_the_time_of_an_unknown_id() {
    let app = spawn_app().await;
    let (owner, next) = (app.create_org().await, app.create_org().await);
    let former = app.caller(owner, Role::Caseworker).await;
    let receiver = app.caller(next, Role::Caseworker).await;
    let victim = Uuid::new_v4();
    assert_eq!(former.post(paths::VICTIMS, victim_body(victim)).await.status, StatusCode::CREATED);
    let ask = serde_json::json!({ "to_organization_id": next, "reason": "migration_or_change_of_location" });
    let transfer = former.post(&paths::transfers_of(victim), ask).await.json()["id"].as_str().unwrap().to_owned();
    let accepted = receiver.post(&paths::transfer_step(&transfer, "accept"), serde_json::json!({})).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    let task = serde_json::json!({ "kind": "follow_up", "due_on": "2027-01-10" });
    let task = receiver.post(&paths::tasks_of(victim), task).await.json()["id"].as_str().unwrap().to_owned();
    let task = Uuid::parse_str(&task).unwrap();

    let (z, l, u) = refusals_compared(&former, |_| (|id| paths::task(id), task)).await;
    println!("after the hand-over: later median {l:?}, unknown median {u:?}, rank z {z:.2}");
    assert!(z.abs() < 4.0, "a record made after the hand-over is told apart by time: {l:?} vs {u:?} (z {z:.2})");
}
