use haven::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::spawn_app;
use crate::paths;

#[tokio::test]
async fn organization_role_matrix() {
    let app = spawn_app().await;
    let org_a = app.create_org().await;
    let org_b = app.create_org().await;
    let host_admin = app.host_admin().await;
    let host_auditor = app.caller(app.host_org, Role::Auditor).await;
    let host_caseworker = app.caller(app.host_org, Role::Caseworker).await;
    let host_partner = app.caller(app.host_org, Role::Partner).await;
    let a_admin = app.caller(org_a, Role::Admin).await;
    let a_auditor = app.caller(org_a, Role::Auditor).await;
    let a_caseworker = app.caller(org_a, Role::Caseworker).await;
    let a_partner = app.caller(org_a, Role::Partner).await;
    let b_admin = app.caller(org_b, Role::Admin).await;

    let read_a = paths::organization(org_a);
    // (caller, GET org A, PATCH org A, POST /organizations)
    let matrix = [
        ("host admin", &host_admin, 200, 200, 201),
        ("host auditor", &host_auditor, 200, 403, 403),
        ("host caseworker", &host_caseworker, 404, 404, 403),
        ("host partner", &host_partner, 404, 404, 403),
        ("A admin", &a_admin, 200, 403, 403),
        ("A auditor", &a_auditor, 200, 403, 403),
        ("A caseworker", &a_caseworker, 200, 403, 403),
        ("A partner", &a_partner, 200, 403, 403),
        ("B admin", &b_admin, 404, 404, 403),
    ];
    for (who, caller, get, patch, create) in matrix {
        let resp = caller.get(&read_a).await;
        assert_eq!(resp.status.as_u16(), get, "{who} GET: {}", resp.text);
        let version = host_admin.get(&read_a).await.json()["version"].to_string();
        let resp = caller.patch(&read_a, &format!("\"{version}\""), json!({ "shares_statistics": true })).await;
        assert_eq!(resp.status.as_u16(), patch, "{who} PATCH: {}", resp.text);
        let name = format!("Org by {who}");
        let resp = caller.post(paths::ORGANIZATIONS, json!({ "name": name, "kind": "ngo", "country": "PER" })).await;
        assert_eq!(resp.status.as_u16(), create, "{who} POST: {}", resp.text);
    }

    // Lists: host admins and auditors see every organisation, the others only their own.
    let all = host_auditor.get(&paths::query(paths::ORGANIZATIONS, "limit=200")).await.json();
    assert!(all["items"].as_array().unwrap().len() >= 4);
    for caller in [&a_admin, &a_caseworker, &a_partner] {
        let own = caller.get(paths::ORGANIZATIONS).await.json();
        let items = own["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], org_a.to_string());
    }
}

#[tokio::test]
async fn create_update_and_concurrency() {
    let app = spawn_app().await;
    let admin = app.host_admin().await;
    // Codes are what the schema lists: capitals only.
    let lower =
        admin.post(paths::ORGANIZATIONS, json!({ "name": "Refuge Dakar", "kind": "ngo", "country": "sen" })).await;
    let problem = lower.assert_problem(422, "validation");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("capitals"), "{problem}");
    let resp =
        admin.post(paths::ORGANIZATIONS, json!({ "name": "  Refuge   Dakar ", "kind": "ngo", "country": "SEN" })).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    assert_eq!(resp.header("etag"), Some("\"1\""));
    let org = resp.json();
    assert_eq!(org["name"], "Refuge Dakar");
    assert_eq!(org["country"], "SEN");
    assert_eq!(org["shares_statistics"], false);
    let path = paths::organization(org["id"].as_str().unwrap());

    // Names are unique case-insensitively.
    admin
        .post(paths::ORGANIZATIONS, json!({ "name": "REFUGE DAKAR", "kind": "ngo", "country": "SEN" }))
        .await
        .assert_problem(409, "conflict");
    // No second host.
    admin
        .post(paths::ORGANIZATIONS, json!({ "name": "Other", "kind": "host", "country": "SEN" }))
        .await
        .assert_problem(422, "validation");

    let missing = admin.request(Method::PATCH, &path, Some(json!({ "name": "X" }))).await;
    missing.assert_problem(428, "precondition-required");
    let resp = admin.patch(&path, "\"1\"", json!({ "name": "Refuge Dakar Sud", "shares_statistics": true })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(resp.header("etag"), Some("\"2\""));
    admin.patch(&path, "\"1\"", json!({ "name": "Stale" })).await.assert_problem(412, "precondition-failed");
    admin.patch(&path, "\"2\"", json!({})).await.assert_problem(422, "validation");
    admin.patch(&path, "\"2\"", json!({ "kind": "host" })).await.assert_problem(422, "validation");
    let now = admin.get(&path).await.json();
    assert_eq!(now["name"], "Refuge Dakar Sud");
    assert_eq!(now["version"], 2);

    let actions = app.audit_actions().await;
    assert!(actions.contains(&("organization.create".into(), "success".into())));
    assert!(actions.contains(&("organization.update".into(), "success".into())));
}

#[tokio::test]
async fn invalid_organizations_are_not_stored() {
    let app = spawn_app().await;
    let admin = app.host_admin().await;
    let before = app.count("organizations").await;
    for body in [
        json!({ "name": "", "kind": "ngo", "country": "SEN" }),
        json!({ "name": "X", "kind": "cartel", "country": "SEN" }),
        json!({ "name": "X", "kind": "ngo", "country": "XYZ" }),
        json!({ "name": "X", "kind": "ngo" }),
        json!({ "name": "X", "kind": "ngo", "country": "SEN", "extra": 1 }),
        json!({ "name": "x".repeat(201), "kind": "ngo", "country": "SEN" }),
    ] {
        admin.post(paths::ORGANIZATIONS, body).await.assert_problem(422, "validation");
    }
    assert_eq!(app.count("organizations").await, before);
}
