//! Another organisation's existing record is answered like an unknown id, in the same time
//! (README, "Roles and what each sees"): its response time must not tell whether the record exists
//! beyond the database's own cost of finding a row (D168).

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

/// How much slower or faster than an unknown id a refusal may be before the test calls it told
/// apart (D168): a twentieth of the unknown ids' median. The database finding a row it then
/// leaves out (index probes that hit, a transfer's row) costs 1-3%; one more query on the
/// refusal's path, the smallest change that would tell ids apart, 7-9% in a debug build.
const TOLERANCE: f64 = 0.05;

/// Rounds timed after the warm-up: enough for the test to see one more query beyond the
/// tolerance (z 6 to 10 where 300 rounds gave 3.5 to 5.4).
const ROUNDS: usize = 1000;

/// Each round's refusal of an existing record and of an unknown id, timed back to back.
struct Compared {
    pairs: Vec<(Duration, Duration)>,
}

impl Compared {
    /// Wilcoxon's signed-rank test on the rounds' differences less `shift` seconds, as a z score:
    /// positive when the existing record's refusal is slower by more than `shift`. Pairing the
    /// two requests of a round cancels the shared machine's drifts, which an unpaired test counts
    /// as noise.
    fn signed_rank_z(&self, shift: f64) -> f64 {
        let mut d: Vec<f64> =
            self.pairs.iter().map(|(k, u)| k.as_secs_f64() - u.as_secs_f64() - shift).filter(|x| *x != 0.0).collect();
        d.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
        let n = d.len() as f64;
        let w: f64 = d.iter().enumerate().filter(|(_, x)| **x > 0.0).map(|(i, _)| (i + 1) as f64).sum();
        (w - n * (n + 1.0) / 4.0) / (n * (n + 1.0) * (2.0 * n + 1.0) / 24.0).sqrt()
    }

    /// Fails unless refusals of existing records take the time of unknown ids within
    /// `TOLERANCE`, one way and the other: each z is beyond 4 only when the difference is, with
    /// near certainty, larger than the tolerance in that direction (an equivalence test, where a
    /// plain test of no difference would in the end find the 1-3% any found row costs).
    fn assert_alike(&self, what: &str) {
        let k = median(self.pairs.iter().map(|p| p.0).collect());
        let u = median(self.pairs.iter().map(|p| p.1).collect());
        let allowed = u.as_secs_f64() * TOLERANCE;
        let (plain, slower, faster) =
            (self.signed_rank_z(0.0), self.signed_rank_z(allowed), -self.signed_rank_z(-allowed));
        println!(
            "{what}: median {k:?} against {u:?} for unknown ids, z {plain:.2}; beyond the tolerance: slower {slower:.2}, faster {faster:.2}"
        );
        assert!(
            slower < 4.0 && faster < 4.0,
            "{what} is told apart by time: {k:?} against {u:?} (z {plain:.2}; beyond {TOLERANCE}: slower {slower:.2}, faster {faster:.2})"
        );
    }
}

/// Times `caller`'s reads of `existing(round)` and of fresh unknown ids (`path` of each), each
/// answered 404, alternately after a warm-up (the order swapped every round, which cancels whatever
/// one request leaves behind for the next).
async fn refusals_compared(caller: &Caller<'_>, existing: impl Fn(usize) -> (fn(Uuid) -> String, Uuid)) -> Compared {
    let time = async |path: String| {
        let started = Instant::now();
        let resp = caller.get(&path).await;
        let took = started.elapsed();
        resp.assert_problem(404, "not-found");
        took
    };
    let mut pairs = Vec::with_capacity(ROUNDS);
    // The first thirty rounds warm the caches up.
    for round in 0..30 + ROUNDS {
        let (path, id) = existing(round);
        let pair = if round % 2 == 0 {
            let k = time(path(id)).await;
            (k, time(path(Uuid::new_v4())).await)
        } else {
            let u = time(path(Uuid::new_v4())).await;
            (time(path(id)).await, u)
        };
        if round >= 30 {
            pairs.push(pair);
        }
    }
    Compared { pairs }
}

#[tokio::test]
async fn a_hidden_record_is_refused_in_the_time_of_an_unknown_id() {
    let app = spawn_app().await;
    let (owner, other) = (app.create_org().await, app.create_org().await);
    let owner_caseworker = app.caller(owner, Role::Caseworker).await;
    let prober = app.caller(other, Role::Caseworker).await;
    let existing = Uuid::new_v4();
    assert_eq!(owner_caseworker.post(paths::VICTIMS, victim_body(existing)).await.status, StatusCode::CREATED);

    refusals_compared(&prober, |_| (|id| paths::victim(id), existing)).await.assert_alike("a hidden case");

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
    let (mut seen, each) = ((0, 0, 0), 30 + ROUNDS);
    for _ in 0..200 {
        seen = counts().await;
        if seen.0 + seen.1 >= 2 * each {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, (each, each, 0), "(owner's log, deployment's log, prober's log)");
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

    refusals_compared(&prober, |round| kinds[round % 3]).await.assert_alike("a hidden case's record");
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

    refusals_compared(&former, |_| (|id| paths::task(id), task))
        .await
        .assert_alike("a record made after the hand-over");
}
