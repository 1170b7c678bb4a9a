//! The role x method x path matrix, generated from the spec: every documented operation must have
//! a row here, and every cell's answer is checked, cross-organisation ids included.
//! `A` = allowed (any answer but 401/403/404: a 409 or 422 about state or body still means the
//! role got through), `F` = 403, `H` = 404 (hidden: not visible to that caller).

use reqwest::Method;

use crate::world::{CALLERS, World, build, operations};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    A,
    F,
    H,
}
use Expect::*;

/// Columns: cw_own, admin_own, auditor_own, partner_own, cw_other, admin_other, host_admin, host_auditor.
const MATRIX: &[(&str, &str, [Expect; 8])] = &[
    ("post", "/api/v1/auth/logout", [A, A, A, A, A, A, A, A]),
    ("get", "/api/v1/me", [A, A, A, A, A, A, A, A]),
    ("get", "/api/v1/vocabularies", [A, A, A, A, A, A, A, A]),
    ("get", "/api/v1/exports/htcds", [A, F, F, F, A, F, F, F]),
    ("post", "/api/v1/imports/htcds", [A, F, F, F, A, F, F, F]),
    ("get", "/api/v1/exports/ctdc", [F, A, F, F, F, A, A, F]),
    ("get", "/api/v1/organizations", [A, A, A, A, A, A, A, A]),
    ("post", "/api/v1/organizations", [F, F, F, F, F, F, A, F]),
    ("get", "/api/v1/organizations/{id}", [A, A, A, A, H, H, A, A]),
    ("patch", "/api/v1/organizations/{id}", [F, F, F, F, H, H, A, F]),
    ("get", "/api/v1/users", [F, A, A, F, F, A, A, A]),
    ("post", "/api/v1/users", [F, A, F, F, F, A, A, F]),
    ("get", "/api/v1/users/{id}", [F, A, A, F, H, H, A, A]),
    ("patch", "/api/v1/users/{id}", [F, A, F, F, H, H, F, F]),
    ("post", "/api/v1/users/{id}/reset", [F, A, F, F, H, H, F, F]),
    ("post", "/api/v1/users/{id}/second-factor/reset", [F, A, F, F, H, H, F, F]),
    ("put", "/api/v1/organizations/{id}/second-factor", [F, A, F, F, H, H, A, F]),
    ("put", "/api/v1/organizations/{id}/retention", [F, A, F, F, H, H, H, H]),
    ("post", "/api/v1/me/password", [A, A, A, A, A, A, A, A]),
    ("get", "/api/v1/access-grants", [A, A, A, F, A, A, A, A]),
    ("get", "/api/v1/access-grants/{id}", [A, A, A, F, H, H, A, A]),
    ("post", "/api/v1/access-grants/{id}/approve", [A, A, F, F, H, H, F, F]),
    ("post", "/api/v1/access-grants/{id}/refuse", [A, A, F, F, H, H, F, F]),
    ("get", "/api/v1/audit-events", [F, A, A, F, F, A, A, A]),
    ("get", "/api/v1/victims", [A, A, A, F, A, A, A, A]),
    ("post", "/api/v1/victims", [A, F, F, F, A, F, F, F]),
    ("post", "/api/v1/victims/search", [A, F, F, F, A, F, F, F]),
    ("get", "/api/v1/victims/{id}", [A, A, A, F, H, H, H, A]),
    ("patch", "/api/v1/victims/{id}", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/victims/{id}/assistance", [A, A, A, F, H, H, H, A]),
    ("post", "/api/v1/victims/{id}/assistance", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/victims/{id}/assignment", [A, A, A, F, H, H, H, A]),
    ("put", "/api/v1/victims/{id}/assignment", [A, F, F, F, H, H, H, F]),
    ("post", "/api/v1/victims/{id}/close", [A, F, F, F, H, H, H, F]),
    ("post", "/api/v1/victims/{id}/reopen", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/victims/{id}/closures", [A, A, A, F, H, H, H, A]),
    ("get", "/api/v1/victims/{id}/consent-history", [A, A, A, F, H, H, H, A]),
    ("get", "/api/v1/victims/{id}/subject-access", [A, F, F, F, H, H, H, F]),
    ("post", "/api/v1/victims/{id}/erase", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/victims/{id}/legal-hold", [A, A, A, F, H, H, H, A]),
    ("put", "/api/v1/victims/{id}/legal-hold", [A, A, F, F, H, H, H, F]),
    ("delete", "/api/v1/victims/{id}/legal-hold", [F, A, F, F, H, H, H, F]),
    ("get", "/api/v1/victims/{id}/tasks", [A, A, A, F, H, H, H, A]),
    ("post", "/api/v1/victims/{id}/tasks", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/tasks", [A, A, A, F, A, A, A, A]),
    ("get", "/api/v1/tasks/{id}", [A, A, A, F, H, H, H, A]),
    ("patch", "/api/v1/tasks/{id}", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/victims/{id}/support-plan", [A, A, A, F, H, H, H, A]),
    ("post", "/api/v1/victims/{id}/support-plan", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/support-plan-goals/{id}", [A, A, A, F, H, H, H, A]),
    ("patch", "/api/v1/support-plan-goals/{id}", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/changes", [A, A, A, F, A, A, A, A]),
    ("post", "/api/v1/victims/{id}/transfers", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/transfers", [A, A, A, F, A, A, A, A]),
    ("get", "/api/v1/transfers/{id}", [A, A, A, F, H, H, H, A]),
    ("post", "/api/v1/transfers/{id}/accept", [F, F, F, F, H, H, H, F]),
    ("post", "/api/v1/transfers/{id}/decline", [F, F, F, F, H, H, H, F]),
    ("post", "/api/v1/transfers/{id}/cancel", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/victims/{id}/external-referrals", [A, A, A, F, H, H, H, A]),
    ("post", "/api/v1/victims/{id}/external-referrals", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/external-referrals/{id}", [A, A, A, F, H, H, H, A]),
    ("patch", "/api/v1/external-referrals/{id}", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/referrals", [A, A, A, F, A, A, A, A]),
    ("post", "/api/v1/referrals", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/referrals/{id}", [A, A, A, F, H, H, H, A]),
    ("post", "/api/v1/referrals/{id}/accept", [F, F, F, F, H, H, H, F]),
    ("post", "/api/v1/referrals/{id}/decline", [F, F, F, F, H, H, H, F]),
    ("post", "/api/v1/referrals/{id}/complete", [F, F, F, F, H, H, H, F]),
    ("post", "/api/v1/referrals/{id}/cancel", [A, F, F, F, H, H, H, F]),
    ("get", "/api/v1/webhooks", [F, A, F, F, F, A, A, F]),
    ("post", "/api/v1/webhooks", [F, A, F, F, F, A, A, F]),
    ("get", "/api/v1/webhooks/{id}", [F, A, F, F, F, H, H, F]),
    ("patch", "/api/v1/webhooks/{id}", [F, A, F, F, F, H, H, F]),
    ("delete", "/api/v1/webhooks/{id}", [F, A, F, F, F, H, H, F]),
    ("get", "/api/v1/webhooks/{id}/deliveries", [F, A, F, F, F, H, H, F]),
    ("get", "/api/v1/reports", [A, A, F, A, A, A, A, F]),
    ("get", "/api/v1/reports/{id}", [A, A, F, A, A, A, A, F]),
    ("get", "/api/v1/reports/budget", [A, A, F, A, A, A, A, F]),
    ("get", "/api/v1/organizations/{id}/report-budget", [A, A, A, A, H, H, A, A]),
    ("put", "/api/v1/organizations/{id}/report-budget", [F, F, F, F, H, H, A, F]),
];

/// Each report plugin has its own documented path, answered like `/reports/{id}`.
fn row_for(method: &str, path: &str) -> Option<[Expect; 8]> {
    let own_path = ["/api/v1/reports/{id}", "/api/v1/reports/budget"].contains(&path);
    let generic = if path.starts_with("/api/v1/reports/") && !own_path { "/api/v1/reports/{id}" } else { path };
    MATRIX.iter().find(|(m, p, _)| *m == method && *p == generic).map(|(_, _, e)| *e)
}

/// Operations outside the role matrix: public or operational endpoints.
const UNAUTHENTICATED: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/enrol",
    "/api/v1/auth/second-factor",
    "/api/v1/auth/second-factor/confirm",
    "/healthz",
    "/readyz",
];

#[test]
fn every_operation_has_a_row() {
    let ops = operations();
    for (method, path) in &ops {
        if UNAUTHENTICATED.contains(&path.as_str()) {
            continue;
        }
        assert!(row_for(method, path).is_some(), "{method} {path} has no row in the role matrix");
    }
    for (method, path, _) in MATRIX {
        assert!(
            ops.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is in the matrix but not in the spec"
        );
    }
}

async fn call(world: &World, token: &str, method: &str, path: &str) -> u16 {
    let concrete = world.concrete(path);
    let version;
    let mut headers = Vec::new();
    if method == "patch" {
        version = world.version(&concrete).await;
        headers.push(("if-match", version.as_str()));
    }
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    world.app.request_with(m, &concrete, Some(token), world.body(method, path), &headers).await.status.as_u16()
}

#[tokio::test]
async fn every_role_gets_exactly_its_answer() {
    let world = build().await;
    let ops = operations();
    let mut rows: Vec<(String, String, [Expect; 8])> = ops
        .iter()
        .filter(|(_, path)| !UNAUTHENTICATED.contains(&path.as_str()))
        .map(|(m, p)| (m.clone(), p.clone(), row_for(m, p).expect("every operation has a row")))
        .collect();
    // Deleting removes the world's record, and logging out ends the caller's session: last.
    rows.sort_by_key(|(method, path, _)| (path == "/api/v1/auth/logout", method == "delete"));
    let mut failures = Vec::new();
    for (method, path, expected) in rows {
        for (i, (caller, token)) in world.tokens.iter().enumerate() {
            assert_eq!(CALLERS[i], *caller);
            let status = call(&world, token, &method, &path).await;
            let ok = match expected[i] {
                A => !matches!(status, 401 | 403 | 404 | 500..=599),
                F => status == 403,
                H => status == 404,
            };
            if !ok {
                failures.push(format!("{caller} {method} {path}: expected {:?}, got {status}", expected[i]));
            }
        }
    }
    assert!(failures.is_empty(), "matrix cells failed:\n{}", failures.join("\n"));
}
