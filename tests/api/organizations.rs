use haven::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn organization_role_matrix() {
    let app = spawn_app().await;
    let org_a = app.create_org().await;
    let org_b = app.create_org().await;
    let host_admin = app.token(&app.host_admin).await;
    let (_, host_auditor) = app.user_with_token(app.host_org, Role::Auditor).await;
    let (_, host_caseworker) = app.user_with_token(app.host_org, Role::Caseworker).await;
    let (_, host_partner) = app.user_with_token(app.host_org, Role::Partner).await;
    let (_, a_admin) = app.user_with_token(org_a, Role::Admin).await;
    let (_, a_auditor) = app.user_with_token(org_a, Role::Auditor).await;
    let (_, a_caseworker) = app.user_with_token(org_a, Role::Caseworker).await;
    let (_, a_partner) = app.user_with_token(org_a, Role::Partner).await;
    let (_, b_admin) = app.user_with_token(org_b, Role::Admin).await;

    let read_a = format!("/api/v1/organizations/{org_a}");
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
    for (who, token, get, patch, create) in matrix {
        let resp = app.get(&read_a, token).await;
        assert_eq!(resp.status.as_u16(), get, "{who} GET: {}", resp.text);
        let version = app.get(&read_a, &host_admin).await.json()["version"].to_string();
        let resp = app.patch(&read_a, token, &format!("\"{version}\""), json!({ "shares_statistics": true })).await;
        assert_eq!(resp.status.as_u16(), patch, "{who} PATCH: {}", resp.text);
        let name = format!("Org by {who}");
        let resp = app
            .post("/api/v1/organizations", Some(token), json!({ "name": name, "kind": "ngo", "country": "PER" }))
            .await;
        assert_eq!(resp.status.as_u16(), create, "{who} POST: {}", resp.text);
    }

    // Lists: host admins and auditors see every organisation, the others only their own.
    let all = app.get("/api/v1/organizations?limit=200", &host_auditor).await.json();
    assert!(all["items"].as_array().unwrap().len() >= 4);
    for token in [&a_admin, &a_caseworker, &a_partner] {
        let own = app.get("/api/v1/organizations", token).await.json();
        let items = own["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], org_a.to_string());
    }
}

#[tokio::test]
async fn create_update_and_concurrency() {
    let app = spawn_app().await;
    let admin = app.token(&app.host_admin).await;
    // Codes are what the schema lists: capitals only.
    let lower = app
        .post("/api/v1/organizations", Some(&admin), json!({ "name": "Refuge Dakar", "kind": "ngo", "country": "sen" }))
        .await;
    let problem = lower.assert_problem(422, "validation");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("capitals"), "{problem}");
    let resp = app
        .post(
            "/api/v1/organizations",
            Some(&admin),
            json!({ "name": "  Refuge   Dakar ", "kind": "ngo", "country": "SEN" }),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    assert_eq!(resp.header("etag"), Some("\"1\""));
    let org = resp.json();
    assert_eq!(org["name"], "Refuge Dakar");
    assert_eq!(org["country"], "SEN");
    assert_eq!(org["shares_statistics"], false);
    let path = format!("/api/v1/organizations/{}", org["id"].as_str().unwrap());

    // Names are unique case-insensitively.
    app.post("/api/v1/organizations", Some(&admin), json!({ "name": "REFUGE DAKAR", "kind": "ngo", "country": "SEN" }))
        .await
        .assert_problem(409, "conflict");
    // No second host.
    app.post("/api/v1/organizations", Some(&admin), json!({ "name": "Other", "kind": "host", "country": "SEN" }))
        .await
        .assert_problem(422, "validation");

    let missing = app.request(Method::PATCH, &path, Some(&admin), Some(json!({ "name": "X" }))).await;
    missing.assert_problem(428, "precondition-required");
    let resp =
        app.patch(&path, &admin, "\"1\"", json!({ "name": "Refuge Dakar Sud", "shares_statistics": true })).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    assert_eq!(resp.header("etag"), Some("\"2\""));
    app.patch(&path, &admin, "\"1\"", json!({ "name": "Stale" })).await.assert_problem(412, "precondition-failed");
    app.patch(&path, &admin, "\"2\"", json!({})).await.assert_problem(422, "validation");
    app.patch(&path, &admin, "\"2\"", json!({ "kind": "host" })).await.assert_problem(422, "validation");
    let now = app.get(&path, &admin).await.json();
    assert_eq!(now["name"], "Refuge Dakar Sud");
    assert_eq!(now["version"], 2);

    let actions = app.audit_actions().await;
    assert!(actions.contains(&("organization.create".into(), "success".into())));
    assert!(actions.contains(&("organization.update".into(), "success".into())));
}

#[tokio::test]
async fn invalid_organizations_are_not_stored() {
    let app = spawn_app().await;
    let admin = app.token(&app.host_admin).await;
    let before = app.count("organizations").await;
    for body in [
        json!({ "name": "", "kind": "ngo", "country": "SEN" }),
        json!({ "name": "X", "kind": "cartel", "country": "SEN" }),
        json!({ "name": "X", "kind": "ngo", "country": "XYZ" }),
        json!({ "name": "X", "kind": "ngo" }),
        json!({ "name": "X", "kind": "ngo", "country": "SEN", "extra": 1 }),
        json!({ "name": "x".repeat(201), "kind": "ngo", "country": "SEN" }),
    ] {
        app.post("/api/v1/organizations", Some(&admin), body).await.assert_problem(422, "validation");
    }
    assert_eq!(app.count("organizations").await, before);
}
