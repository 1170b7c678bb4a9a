//! A small world shared by the leak and role-matrix tests: organisation A with a victim whose
//! identity, assistance notes and referral reason hold markers; B receives a referral from A;
//! C is unrelated; and a user of every role.

use haven::domain::Role;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, spawn_app};
use crate::paths;
use crate::victims::victim_body;

pub struct World {
    pub app: TestApp,
    pub org_a: Uuid,
    pub org_b: Uuid,
    pub victim: Uuid,
    pub referral: Uuid,
    /// A task of the victim's case, with notes holding a marker.
    pub task: Uuid,
    /// A goal of the victim's support plan, with objectives holding a marker.
    pub goal: Uuid,
    /// A pending transfer of another of A's cases to B.
    pub transfer: Uuid,
    /// A webhook of A.
    pub webhook: Uuid,
    /// A referral of the victim to a provider outside Haven.
    pub external_referral: Uuid,
    /// The caseworker of A who recorded the victim (`cw_own`), who works its case.
    pub caseworker: Uuid,
    /// A caseworker of A that the user endpoints act on.
    pub target_user: TestUser,
    /// A pending access grant in A (an auditor's promotion to caseworker).
    pub grant: Uuid,
    /// (name, token) for each caller of the matrix, in `CALLERS` order: raw strings, as the matrix
    /// and the external tools (schemathesis, the generated client) take them.
    pub tokens: Vec<(&'static str, String)>,
}

pub const CALLERS: [&str; 8] =
    ["cw_own", "admin_own", "auditor_own", "partner_own", "cw_other", "admin_other", "host_admin", "host_auditor"];

pub async fn build() -> World {
    let app = spawn_app().await;
    let (org_a, org_b, org_c) = (app.create_org().await, app.create_org().await, app.create_org().await);
    let caseworker_a = app.caller(org_a, Role::Caseworker).await;
    let victim = Uuid::new_v4();
    let resp = caseworker_a.post(paths::VICTIMS, victim_body(victim)).await;
    assert_eq!(resp.status.as_u16(), 201, "{}", resp.text);
    let resp = caseworker_a
        .post(
            &paths::assistance(victim),
            json!({ "kind": "medical", "provided_on": "2026-11-01", "notes": "MARKERNOTES clinic visit" }),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 201, "{}", resp.text);
    let resp = caseworker_a
        .post(
            paths::REFERRALS,
            json!({ "victim_id": victim, "to_organization_id": org_b,
            "service": "legal", "reason": "MARKERNOTES court date" }),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 201, "{}", resp.text);
    let referral: Uuid = resp.json()["id"].as_str().unwrap().parse().unwrap();
    let task = json!({ "kind": "follow_up", "due_on": "2026-11-20", "notes": "MARKERNOTES call back" });
    let resp = caseworker_a.post(&paths::tasks_of(victim), task).await;
    assert_eq!(resp.status.as_u16(), 201, "{}", resp.text);
    let task: Uuid = resp.json()["id"].as_str().unwrap().parse().unwrap();
    let goal = json!({ "kind": "legal", "planned_end_on": "2027-03-31", "objectives": "MARKERNOTES residence permit" });
    let resp = caseworker_a.post(&paths::support_plan(victim), goal).await;
    assert_eq!(resp.status.as_u16(), 201, "{}", resp.text);
    let goal: Uuid = resp.json()["id"].as_str().unwrap().parse().unwrap();
    // A legal hold keeps the markers through the matrix: erasing the case is refused (409).
    let resp = caseworker_a.put(&paths::case_step(victim, "legal-hold"), json!({ "basis": "litigation" })).await;
    assert_eq!(resp.status.as_u16(), 200, "{}", resp.text);
    // Its identity holds no marker: it is not the case the leak tests restrict.
    let outside = json!({ "provider_name": "Clínica Esperanza", "provider_country": "SEN", "service": "medical",
        "referred_on": "2026-11-03" });
    let resp = caseworker_a.post(&paths::external_referrals_of(victim), outside).await;
    assert_eq!(resp.status.as_u16(), 201, "{}", resp.text);
    let external_referral: Uuid = resp.json()["id"].as_str().unwrap().parse().unwrap();
    let moving = Uuid::new_v4();
    let mut body = victim_body(moving);
    body["identity"] = json!({ "given_names": "Moving Case" });
    assert_eq!(caseworker_a.post(paths::VICTIMS, body).await.status.as_u16(), 201);
    let ask = json!({ "to_organization_id": org_b, "reason": "migration_or_change_of_location" });
    let resp = caseworker_a.post(&paths::transfers_of(moving), ask).await;
    assert_eq!(resp.status.as_u16(), 201, "{}", resp.text);
    let transfer: Uuid = resp.json()["id"].as_str().unwrap().parse().unwrap();
    let target_user = app.create_user(org_a, Role::Caseworker).await;
    let mut tokens = vec![("cw_own", caseworker_a.token.clone())];
    for (name, org, role) in [
        ("admin_own", org_a, Role::Admin),
        ("auditor_own", org_a, Role::Auditor),
        ("partner_own", org_a, Role::Partner),
        ("cw_other", org_c, Role::Caseworker),
        ("admin_other", org_c, Role::Admin),
        ("host_auditor", app.host_org, Role::Auditor),
    ] {
        tokens.push((name, app.caller(org, role).await.token));
    }
    tokens.insert(6, ("host_admin", app.host_admin().await.token));
    // Requested by an admin of A who is none of the callers, so any caller may be the second person.
    let requester = app.caller(org_a, Role::Admin).await;
    let promoted = app.create_user(org_a, Role::Auditor).await;
    let resp = requester.patch(&paths::user(promoted.id), "\"1\"", json!({ "role": "caseworker" })).await;
    assert_eq!(resp.status.as_u16(), 202, "{}", resp.text);
    let grant: Uuid = resp.json()["grant"]["id"].as_str().unwrap().parse().unwrap();
    let resp = requester
        .post(paths::WEBHOOKS, json!({ "url": "https://receiver.example/haven", "events": ["task.due"] }))
        .await;
    assert_eq!(resp.status.as_u16(), 201, "{}", resp.text);
    let webhook: Uuid = resp.json()["webhook"]["id"].as_str().unwrap().parse().unwrap();
    let caseworker = caseworker_a.id();
    World {
        app,
        org_a,
        org_b,
        victim,
        referral,
        task,
        goal,
        transfer,
        webhook,
        external_referral,
        caseworker,
        target_user,
        grant,
        tokens,
    }
}

/// Whether `path` lies below the collection at `collection` (a victim's path below the victims').
fn below(path: &str, collection: &str) -> bool {
    path.strip_prefix(collection).is_some_and(|rest| rest.starts_with('/'))
}

impl World {
    /// The spec path with its `{id}` filled with the world's record of that kind.
    pub fn concrete(&self, path: &str) -> String {
        let id = if below(path, paths::VICTIMS) {
            self.victim
        } else if below(path, paths::REFERRALS) {
            self.referral
        } else if below(path, paths::EXTERNAL_REFERRALS) {
            self.external_referral
        } else if below(path, paths::WEBHOOKS) {
            self.webhook
        } else if below(path, paths::TRANSFERS) {
            self.transfer
        } else if below(path, paths::TASKS) {
            self.task
        } else if below(path, paths::SUPPORT_PLAN_GOALS) {
            self.goal
        } else if below(path, paths::REPORTS) && path.contains("{id}") {
            return path.replace("{id}", "trends");
        } else if below(path, paths::GRANTS) {
            self.grant
        } else if below(path, paths::USERS) {
            self.target_user.id
        } else {
            self.org_a
        };
        path.replace("{id}", &id.to_string())
    }

    /// A plausible body for each operation that takes one, carrying markers where a victim's
    /// details would go, so refusals can be checked for echoes. Keyed by the document's own
    /// (method, path template), as [`operations`] lists them.
    pub fn body(&self, method: &str, path: &str) -> Option<Value> {
        let body = match (method, path) {
            ("post", "/api/v1/victims") => victim_body(Uuid::new_v4()),
            ("patch", "/api/v1/victims/{id}") => {
                json!({ "status": "follow_up", "identity": { "notes": "MARKERNOTES update" } })
            }
            ("post", "/api/v1/victims/search") => json!({ "name": "MARKERGIVEN Ana MARKERFAMILY López" }),
            ("post", "/api/v1/victims/{id}/assistance") => {
                json!({ "kind": "legal", "provided_on": "2026-11-02", "notes": "MARKERNOTES" })
            }
            ("post", "/api/v1/referrals") => {
                json!({ "victim_id": self.victim, "to_organization_id": self.org_b, "service": "shelter" })
            }
            ("post", "/api/v1/referrals/{id}/decline") => json!({ "reason": "no_capacity" }),
            ("post", "/api/v1/victims/{id}/tasks") => {
                json!({ "kind": "safety_check", "due_on": "2026-12-24", "notes": "MARKERNOTES" })
            }
            ("patch", "/api/v1/tasks/{id}") => json!({ "status": "done", "notes": "MARKERNOTES done" }),
            ("post", "/api/v1/victims/{id}/support-plan") => {
                json!({ "kind": "health", "planned_end_on": "2027-01-31", "action_plan": "MARKERNOTES clinic" })
            }
            ("patch", "/api/v1/support-plan-goals/{id}") => {
                json!({ "status": "in_progress", "objectives": "MARKERNOTES new" })
            }
            ("post", "/api/v1/victims/{id}/transfers") => {
                json!({ "to_organization_id": self.org_b, "reason": "other" })
            }
            ("post", "/api/v1/transfers/{id}/decline") => json!({ "reason": "no_capacity" }),
            ("post", "/api/v1/victims/{id}/external-referrals") => json!({ "provider_name": "Abogados Unidos",
                "provider_country": "PER", "service": "legal", "referred_on": "2026-11-04" }),
            ("patch", "/api/v1/external-referrals/{id}") => json!({ "status": "completed" }),
            ("post", "/api/v1/webhooks") => {
                json!({ "url": "https://receiver.example/other", "events": ["referral.overdue"] })
            }
            ("patch", "/api/v1/webhooks/{id}") => json!({ "events": ["referral.overdue"], "disabled": true }),
            ("post", "/api/v1/victims/{id}/close") => json!({ "reason": "goals_met" }),
            ("post", "/api/v1/victims/{id}/reopen") => json!({ "reason": "new_information" }),
            ("put", "/api/v1/victims/{id}/assignment") => {
                json!({ "caseworkers": [self.caseworker], "restricted": false })
            }
            ("post", "/api/v1/organizations") => {
                json!({ "name": format!("Org {}", Uuid::new_v4()), "kind": "ngo", "country": "SEN" })
            }
            ("patch", "/api/v1/organizations/{id}") => json!({ "shares_statistics": true }),
            ("post", "/api/v1/users") => {
                json!({ "email": format!("{}@example.org", Uuid::new_v4()), "role": "auditor" })
            }
            ("post", "/api/v1/auth/enrol") => json!({ "token": "MARKERDOC123", "password": "MARKERNOTES-password" }),
            ("post", "/api/v1/me/password") => {
                json!({ "current_password": "MARKERNOTES-old", "new_password": "MARKERNOTES-password" })
            }
            ("post", "/api/v1/access-grants/{id}/refuse") => json!({ "reason": "Not confirmed yet." }),
            ("patch", "/api/v1/users/{id}") => json!({ "role": "auditor" }),
            ("post", "/api/v1/auth/login") => {
                json!({ "email": "MARKERGIVEN@example.org", "password": "MARKERNOTES-password" })
            }
            ("post", "/api/v1/auth/refresh") => json!({ "refresh_token": "MARKERDOC123" }),
            ("put", "/api/v1/organizations/{id}/report-budget") => json!({ "allowance": 500.0 }),
            ("put", "/api/v1/organizations/{id}/second-factor") => json!({ "required_for_caseworkers": false }),
            ("put", "/api/v1/organizations/{id}/retention") => json!({ "erase_identities_after_months": 24 }),
            ("post", "/api/v1/victims/{id}/erase") => json!({ "reason": "data_subject_request" }),
            ("put", "/api/v1/victims/{id}/legal-hold") => json!({ "basis": "litigation" }),
            ("post", "/api/v1/auth/second-factor") => {
                json!({ "email": "MARKERGIVEN@example.org", "password": "MARKERNOTES-password" })
            }
            ("post", _) => json!({}),
            _ => return None,
        };
        Some(body)
    }

    /// The current version of a record, for If-Match, read by a caller who may read it (A's
    /// caseworker for a victim, the host's admin otherwise). The world keeps tokens, not callers
    /// (a caller borrows the app the world owns), so this request carries the stored token.
    pub async fn version(&self, path: &str) -> String {
        let casework = [paths::VICTIMS, paths::TASKS, paths::SUPPORT_PLAN_GOALS, paths::EXTERNAL_REFERRALS]
            .iter()
            .any(|c| below(path, c));
        let reader = if casework {
            &self.tokens[0].1
        } else if below(path, paths::WEBHOOKS) {
            &self.tokens[1].1
        } else {
            &self.tokens[6].1
        };
        let resp = self.app.request(Method::GET, path, Some(reader.as_str()), None).await;
        format!("\"{}\"", resp.json()["version"])
    }
}

/// Every documented operation: (method, path).
pub fn operations() -> Vec<(String, String)> {
    let spec: Value = serde_json::from_str(&haven::openapi::document_json()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                ops.push((method.to_owned(), path.clone()));
            }
        }
    }
    ops
}
