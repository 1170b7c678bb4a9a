use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;

use crate::helpers::spawn_app;
use crate::paths;

#[tokio::test]
async fn user_role_matrix() {
    let app = spawn_app().await;
    let org_a = app.create_org().await;
    let org_b = app.create_org().await;
    let host_admin = app.host_admin().await;
    let host_auditor = app.caller(app.host_org, Role::Auditor).await;
    let host_caseworker = app.caller(app.host_org, Role::Caseworker).await;
    let a_admin = app.caller(org_a, Role::Admin).await;
    let a_auditor = app.caller(org_a, Role::Auditor).await;
    let a_caseworker = app.caller(org_a, Role::Caseworker).await;
    let a_partner = app.caller(org_a, Role::Partner).await;
    let b_admin = app.caller(org_b, Role::Admin).await;

    let target = app.create_user(org_a, Role::Caseworker).await;
    let target_path = paths::user(target.id);
    let list_a = paths::query(paths::USERS, format!("organization_id={org_a}"));
    // (caller, GET users of A, GET one user of A, PATCH that user, POST a caseworker into A). The
    // host admin may disable A's caseworker but not create one; A's admin re-enabling it files a
    // grant for a second person (202).
    let matrix = [
        ("host admin", &host_admin, 200, 200, 200, 403),
        ("host auditor", &host_auditor, 200, 200, 403, 403),
        ("host caseworker", &host_caseworker, 404, 404, 404, 404),
        ("A admin", &a_admin, 200, 200, 202, 201),
        ("A auditor", &a_auditor, 200, 200, 403, 403),
        ("A caseworker", &a_caseworker, 403, 403, 403, 403),
        ("A partner", &a_partner, 403, 403, 403, 403),
        ("B admin", &b_admin, 404, 404, 404, 404),
    ];
    for (i, (who, caller, list, get, patch, create)) in matrix.into_iter().enumerate() {
        let resp = caller.get(&list_a).await;
        assert_eq!(resp.status.as_u16(), list, "{who} list: {}", resp.text);
        let resp = caller.get(&target_path).await;
        assert_eq!(resp.status.as_u16(), get, "{who} get: {}", resp.text);
        let version = host_admin.get(&target_path).await.json()["version"].to_string();
        let resp = caller.patch(&target_path, &format!("\"{version}\""), json!({ "disabled": i % 2 == 0 })).await;
        assert_eq!(resp.status.as_u16(), patch, "{who} patch: {}", resp.text);
        let body = json!({ "email": format!("new{i}@example.org"), "role": "caseworker", "organization_id": org_a });
        let resp = caller.post(paths::USERS, body).await;
        assert_eq!(resp.status.as_u16(), create, "{who} create: {}", resp.text);
    }
    // Everyone reads themselves.
    let me = a_caseworker.get(&paths::user(a_caseworker.id())).await;
    assert_eq!(me.status, StatusCode::OK);
    assert!(me.json().get("password_hash").is_none());
}

#[tokio::test]
async fn admins_manage_users_and_every_change_is_audited() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let admin = app.caller(org, Role::Admin).await;
    let resp = admin.post(paths::USERS, json!({ "email": "Fatou.Sow@Example.org", "role": "auditor" })).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    assert_eq!(resp.header("cache-control"), Some("no-store"), "the token is shown once and never cached");
    let created = resp.json();
    let user = &created["user"];
    assert_eq!(user["email"], "fatou.sow@example.org");
    assert_eq!(user["organization_id"], org.to_string());
    assert_eq!(user["password_set"], false);
    assert!(created["enrolment"]["token"].as_str().is_some_and(|t| t.len() >= 43), "{created}");
    assert!(created.get("grant").is_none(), "an auditor needs no second person: {created}");
    let id = user["id"].as_str().unwrap();
    let path = paths::user(id);

    // Emails are unique case-insensitively.
    admin
        .post(paths::USERS, json!({ "email": "FATOU.SOW@example.org", "role": "auditor" }))
        .await
        .assert_problem(409, "conflict");

    assert_eq!(admin.patch(&path, "\"1\"", json!({ "role": "partner" })).await.status, StatusCode::OK);
    assert_eq!(admin.patch(&path, "\"2\"", json!({ "disabled": true })).await.status, StatusCode::OK);
    assert_eq!(admin.patch(&path, "\"3\"", json!({ "disabled": false })).await.status, StatusCode::OK);
    let reset = admin.post(&paths::user_reset(id), json!({})).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    admin.patch(&path, "\"4\"", json!({ "role": "auditor" })).await.assert_problem(412, "precondition-failed");
    // Passwords are never set by an admin.
    admin
        .patch(&path, "\"5\"", json!({ "password": "another-long-passphrase" }))
        .await
        .assert_problem(422, "validation");

    // Admins cannot lock themselves out, nor reset themselves.
    let own = paths::user(admin.id());
    admin.patch(&own, "\"1\"", json!({ "role": "auditor" })).await.assert_problem(409, "conflict");
    admin.patch(&own, "\"1\"", json!({ "disabled": true })).await.assert_problem(409, "conflict");
    admin.post(&paths::user_reset(admin.id()), json!({})).await.assert_problem(409, "conflict");

    let actions = app.audit_actions().await;
    for action in ["user.create", "user.role_change", "user.disable", "user.enable", "user.password_reset"] {
        assert!(actions.contains(&(action.into(), "success".into())), "{action} not audited: {actions:?}");
    }
}

#[tokio::test]
async fn invalid_users_are_not_stored() {
    let app = spawn_app().await;
    let admin = app.host_admin().await;
    let before = app.count("users").await;
    let cases = [
        json!({ "email": "not-an-email", "role": "auditor" }),
        json!({ "email": "a@example.org", "role": "superuser" }),
        json!({ "email": "a@example.org" }),
        // Admins never choose a password: the field does not exist.
        json!({ "email": "a@example.org", "role": "auditor", "password": "quiet-harbour-lamp-88" }),
        json!({ "email": "a@example.org", "role": "auditor", "is_admin": true }),
    ];
    for body in cases {
        let problem = admin.post(paths::USERS, body.clone()).await.assert_problem(422, "validation");
        assert!(!problem["errors"].as_array().unwrap().is_empty(), "{body}");
        // A submitted password is never echoed.
        assert!(!problem.to_string().contains("quiet-harbour-lamp-88"));
    }
    // An organisation that does not exist.
    admin
        .post(
            paths::USERS,
            json!({ "email": "a@example.org", "role": "admin",
            "organization_id": uuid::Uuid::new_v4() }),
        )
        .await
        .assert_problem(404, "not-found");
    assert_eq!(app.count("users").await, before);
}

#[tokio::test]
async fn user_lists_paginate_stably() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let admin = app.caller(org, Role::Admin).await;
    for _ in 0..6 {
        app.create_user(org, Role::Caseworker).await;
    }
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => paths::query(paths::USERS, format!("limit=3&cursor={c}")),
            None => paths::query(paths::USERS, "limit=3"),
        };
        let page = admin.get(&path).await.json();
        for item in page["items"].as_array().unwrap() {
            assert!(seen.insert(item["id"].as_str().unwrap().to_owned()), "duplicate across pages");
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(pages, 3);
    let filtered = admin.get(&paths::query(paths::USERS, "role=admin")).await.json();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    admin.get(&paths::query(paths::USERS, "limit=0")).await.assert_problem(422, "validation");
    admin.get(&paths::query(paths::USERS, "cursor=garbage")).await.assert_problem(422, "validation");
}
