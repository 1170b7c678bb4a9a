//! A case's tasks and support plan: what falls due, who does it, what closing a case does to them,
//! and who sees their notes.

use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Caller, spawn_app};
use crate::paths;
use crate::victims::{assert_no_marker, create_victim};

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
}

fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset)).to_string()
}

async fn listed(caller: &Caller<'_>, query: &str) -> Vec<String> {
    let resp = caller.get(&paths::query(paths::TASKS, query)).await;
    assert_eq!(resp.status, StatusCode::OK, "{query}: {}", resp.text);
    ids(&resp.json())
}

#[tokio::test]
async fn tasks_fall_due_are_handed_over_and_done() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, creator) = create_victim(&app, org).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    let admin = app.caller(org, Role::Admin).await;
    let outsider = app.caller(app.create_org().await, Role::Caseworker).await;

    // A follow-up that was due yesterday, for a colleague; a safety check due next week, for me.
    let id = Uuid::new_v4();
    let late = json!({ "id": id, "kind": "follow_up", "due_on": day(-1), "assignee_id": colleague.id(),
        "notes": "MARKERNOTES call her sister" });
    let resp = creator.post(&paths::tasks_of(victim), late.clone()).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    assert_eq!(resp.header("etag"), Some("\"1\""));
    let task = resp.json();
    assert_eq!((task["status"].as_str(), task["overdue"].as_bool()), (Some("open"), Some(true)));
    assert_eq!(task["notes"], "MARKERNOTES call her sister");
    assert_eq!(creator.post(&paths::tasks_of(victim), late.clone()).await.status, StatusCode::OK, "a retry");
    // The same body from someone else is no retry of it: it would confirm a guessed assignee to
    // whoever holds the case later (D177).
    colleague.post(&paths::tasks_of(victim), late.clone()).await.assert_problem(409, "conflict");
    let mut other = late.clone();
    other["kind"] = json!("assessment");
    creator.post(&paths::tasks_of(victim), other).await.assert_problem(409, "conflict");
    let soon = json!({ "kind": "safety_check", "due_on": day(7) });
    let resp = creator.post(&paths::tasks_of(victim), soon).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let mine = resp.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(resp.json()["assignee_id"], json!(creator.id()), "mine when no one is named");

    // Only someone who can do it may be given it.
    for who in [admin.id(), outsider.id(), Uuid::new_v4()] {
        let body = json!({ "kind": "service", "due_on": day(1), "assignee_id": who });
        let problem = creator.post(&paths::tasks_of(victim), body).await.assert_problem(422, "validation");
        assert_eq!(problem["errors"][0]["field"], "assignee_id", "{problem}");
    }
    admin
        .post(&paths::tasks_of(victim), json!({ "kind": "service", "due_on": day(1) }))
        .await
        .assert_problem(403, "forbidden");

    // The dashboard's questions.
    assert_eq!(listed(&colleague, "assigned_to=me&overdue=true").await, vec![id.to_string()]);
    assert!(listed(&creator, "assigned_to=me&overdue=true").await.is_empty());
    assert_eq!(listed(&creator, "assigned_to=me&overdue=false").await, vec![mine.clone()]);
    assert_eq!(listed(&creator, &format!("due_before={}", day(0))).await, vec![id.to_string()]);
    assert_eq!(listed(&creator, "kind=safety_check&status=open").await, vec![mine.clone()]);
    assert_eq!(listed(&creator, "limit=1").await.len(), 1);
    let page = creator.get(&paths::query(paths::TASKS, "limit=1")).await.json();
    let next = page["next_cursor"].as_str().expect("a second page");
    assert_eq!(listed(&creator, &format!("limit=1&cursor={next}")).await.len(), 1);
    assert_eq!(ids(&creator.get(&paths::tasks_of(victim)).await.json()).len(), 2);

    // Staff see tasks without their notes; outsiders nothing; partners are refused.
    let seen = admin.get(paths::TASKS).await;
    assert_eq!(ids(&seen.json()).len(), 2);
    assert!(seen.json()["items"][0].get("notes").is_none());
    assert_no_marker("admin list", &seen.text);
    assert_no_marker("admin case list", &admin.get(&paths::tasks_of(victim)).await.text);
    assert_no_marker("admin read", &admin.get(&paths::task(id)).await.text);
    assert!(listed(&outsider, "").await.is_empty());
    outsider.get(&paths::task(id)).await.assert_problem(404, "not-found");
    outsider.get(&paths::tasks_of(victim)).await.assert_problem(404, "not-found");
    app.caller(org, Role::Partner).await.get(paths::TASKS).await.assert_problem(403, "forbidden");

    // Done, by the colleague, against the version read; a stale version or none is refused.
    admin.patch(&paths::task(id), "\"1\"", json!({ "status": "done" })).await.assert_problem(403, "forbidden");
    creator
        .patch(&paths::task(id), "\"7\"", json!({ "status": "done" }))
        .await
        .assert_problem(412, "precondition-failed");
    let resp = colleague.patch(&paths::task(id), "\"1\"", json!({ "status": "done", "notes": null })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let done = resp.json();
    assert_eq!((done["status"].as_str(), done["overdue"].as_bool()), (Some("done"), Some(false)));
    assert!(done["completed_at"].is_string());
    assert_eq!(done["notes"], Value::Null, "notes removed");
    assert_eq!(resp.header("etag"), Some("\"2\""));
    assert!(listed(&colleague, "assigned_to=me&overdue=true").await.is_empty());
    let reopened = colleague.patch(&paths::task(id), "\"2\"", json!({ "status": "open", "due_on": day(3) })).await;
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.text);
    assert!(reopened.json().get("completed_at").is_none());
    let handed = creator.patch(&paths::task(id), "*", json!({ "assignee_id": outsider.id() })).await;
    assert_eq!(handed.assert_problem(422, "validation")["errors"][0]["field"], "assignee_id");

    // Closing the case ends its open tasks, and leaves them as they are.
    let resp = creator.post(&paths::case_step(victim, "close"), json!({ "reason": "goals_met" })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let after = creator.get(&paths::query(paths::tasks_of(victim), "status=open")).await.json();
    assert!(ids(&after).is_empty(), "{after}");
    assert_eq!(creator.get(&paths::task(&mine)).await.json()["status"], "cancelled");
    creator
        .post(&paths::tasks_of(victim), json!({ "kind": "service", "due_on": day(1) }))
        .await
        .assert_problem(409, "conflict");
    creator.patch(&paths::task(&mine), "*", json!({ "status": "open" })).await.assert_problem(409, "conflict");

    let actions = app.audit_actions().await;
    for action in ["task.create", "task.update"] {
        assert!(actions.iter().any(|(a, o)| a == action && o == "success"), "{action} not audited");
    }
}

#[tokio::test]
async fn a_restricted_cases_tasks_and_plan_keep_their_text_to_its_assigned_caseworkers() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, assigned) = create_victim(&app, org).await;
    let colleague = app.caller(org, Role::Caseworker).await;
    let task = json!({ "kind": "safety_check", "due_on": day(2), "notes": "MARKERNOTES new address" });
    let task_id = assigned.post(&paths::tasks_of(victim), task).await.json()["id"].as_str().unwrap().to_owned();
    let goal = json!({ "kind": "social_care", "planned_end_on": day(90), "objectives": "MARKERNOTES safe housing" });
    let goal_id = assigned.post(&paths::support_plan(victim), goal).await.json()["id"].as_str().unwrap().to_owned();
    let restrict = json!({ "caseworkers": [assigned.id()], "restricted": true });
    assert_eq!(assigned.put(&paths::assignment(victim), restrict).await.status, StatusCode::OK);

    for (what, path) in [
        ("tasks", paths::TASKS.to_owned()),
        ("case tasks", paths::tasks_of(victim)),
        ("task", paths::task(&task_id)),
        ("plan", paths::support_plan(victim)),
        ("goal", paths::support_plan_goal(&goal_id)),
    ] {
        let resp = colleague.get(&path).await;
        assert_eq!(resp.status, StatusCode::OK, "{what}: {}", resp.text);
        assert_no_marker(what, &resp.text);
    }
    colleague
        .post(&paths::tasks_of(victim), json!({ "kind": "service", "due_on": day(1) }))
        .await
        .assert_problem(403, "forbidden");
    colleague.patch(&paths::task(&task_id), "*", json!({ "status": "done" })).await.assert_problem(403, "forbidden");
    colleague
        .patch(&paths::support_plan_goal(&goal_id), "*", json!({ "status": "achieved" }))
        .await
        .assert_problem(403, "forbidden");
    // A restricted case's task goes to one of its assigned caseworkers only.
    let body = json!({ "kind": "service", "due_on": day(1), "assignee_id": colleague.id() });
    let problem = assigned.post(&paths::tasks_of(victim), body).await.assert_problem(422, "validation");
    assert_eq!(problem["errors"][0]["field"], "assignee_id");
    // The assigned caseworker reads everything.
    let own = assigned.get(&paths::task(&task_id)).await.json();
    assert_eq!(own["notes"], "MARKERNOTES new address");
    assert_eq!(
        assigned.get(&paths::support_plan_goal(&goal_id)).await.json()["objectives"],
        "MARKERNOTES safe housing"
    );
}

#[tokio::test]
async fn a_support_plan_records_goals_with_their_dates_and_status() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (victim, caseworker) = create_victim(&app, org).await;
    let auditor = app.caller(org, Role::Auditor).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);

    let goal = json!({ "kind": "legal", "planned_end_on": day(60),
        "objectives": "MARKERNOTES residence permit", "action_plan": "lawyer, then hearing" });
    let resp = caseworker.post(&paths::support_plan(victim), goal.clone()).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let created = resp.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!((created["status"].as_str(), created["version"].as_i64()), (Some("planned"), Some(1)));
    assert_eq!(created["action_plan"], "lawyer, then hearing");
    let future_end = json!({ "kind": "health", "planned_end_on": day(10), "actual_end_on": day(1) });
    let problem = caseworker.post(&paths::support_plan(victim), future_end).await.assert_problem(422, "validation");
    assert_eq!(problem["errors"][0]["field"], "actual_end_on");
    auditor.post(&paths::support_plan(victim), goal).await.assert_problem(403, "forbidden");

    // Achieved: the status and the actual end; one text removed, the other kept.
    let change = json!({ "status": "achieved", "actual_end_on": day(0), "action_plan": null });
    let resp = caseworker.patch(&paths::support_plan_goal(&id), "\"1\"", change).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let achieved = resp.json();
    assert_eq!(
        (achieved["status"].as_str(), achieved["actual_end_on"].as_str()),
        (Some("achieved"), Some(day(0).as_str()))
    );
    assert_eq!(achieved["objectives"], "MARKERNOTES residence permit");
    assert_eq!(achieved["action_plan"], Value::Null);
    caseworker
        .patch(&paths::support_plan_goal(&id), "\"1\"", json!({ "status": "planned" }))
        .await
        .assert_problem(412, "precondition-failed");
    caseworker.patch(&paths::support_plan_goal(&id), "\"2\"", json!({})).await.assert_problem(422, "validation");

    // The auditor reads the plan without its text; clients sync it from a time on.
    let plan = auditor.get(&paths::support_plan(victim)).await;
    assert_eq!(ids(&plan.json()), vec![id.clone()]);
    assert_no_marker("auditor plan", &plan.text);
    let since = |t: chrono::DateTime<chrono::Utc>| format!("updated_since={}", t.format("%Y-%m-%dT%H:%M:%S%.fZ"));
    let later = chrono::Utc::now() + chrono::Duration::seconds(60);
    assert_eq!(ids(&caseworker.get(&paths::query(paths::support_plan(victim), since(before))).await.json()).len(), 1);
    assert!(ids(&caseworker.get(&paths::query(paths::support_plan(victim), since(later))).await.json()).is_empty());
    let actions = app.audit_actions().await;
    for action in ["support_plan.create", "support_plan.update", "victim.identity_read"] {
        assert!(actions.iter().any(|(a, _)| a == action), "{action} not audited");
    }
}
