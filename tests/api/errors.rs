//! Bad input of every kind is answered with problem+json, names the field, echoes no value and
//! stores nothing.

use reqwest::Method;

use crate::helpers::spawn_app;
use crate::paths;

#[tokio::test]
async fn malformed_requests_get_problem_documents() {
    let app = spawn_app().await;
    let admin = app.host_admin().await;
    let before = app.count("organizations").await;
    let send = |body: &'static str, content_type: &'static str| {
        let req = app
            .client
            .post(format!("{}{}", app.address, paths::ORGANIZATIONS))
            .bearer_auth(&admin.token)
            .header("content-type", content_type)
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, ct, body)
        }
    };

    let (status, ct, body) = send("{\"name\": ", "application/json").await;
    assert_eq!((status, ct.as_deref()), (400, Some("application/problem+json")));
    assert_eq!(body["type"], "urn:haven:problem:bad-request");

    let (status, _, body) = send(r#"{"name": 12, "kind": "ngo", "country": "SEN"}"#, "application/json").await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "name");

    let (status, _, body) =
        send(r#"{"name": "Maria Lopez", "kind": "Maria Lopez", "country": "SEN"}"#, "application/json").await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "kind");
    assert!(!body.to_string().contains("Maria"), "a submitted value was echoed: {body}");

    let (status, _, body) =
        send(r#"{"name": "X", "kind": "ngo", "country": "SEN", "Maria Lopez": 1}"#, "application/json").await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["code"], "unknown");
    assert!(!body.to_string().contains("Maria"), "a key the client typed was echoed: {body}");

    let (status, _, body) = send(r#"{"kind": "ngo", "country": "SEN"}"#, "application/json").await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "name");
    assert_eq!(body["errors"][0]["message"], "is required");

    let (status, _, body) = send(r#"{"name": "X", "kind": "ngo", "country": "SEN"}"#, "text/plain").await;
    assert_eq!(status, 415);
    assert_eq!(body["type"], "urn:haven:problem:unsupported-media-type");

    assert_eq!(app.count("organizations").await, before, "nothing stored");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app().await;
    let admin = app.host_admin().await;
    let name = "x".repeat(70 * 1024);
    let organization = serde_json::json!({ "name": name, "kind": "ngo", "country": "SEN" });
    let resp = admin.post(paths::ORGANIZATIONS, organization).await;
    resp.assert_problem(413, "payload-too-large");
}

#[tokio::test]
async fn bad_paths_queries_routes_and_methods() {
    let app = spawn_app().await;
    let admin = app.host_admin().await;
    admin.get(&format!("{}/not-a-uuid", paths::USERS)).await.assert_problem(400, "bad-request");
    admin.get(&paths::query(paths::USERS, "limit=abc")).await.assert_problem(422, "validation");
    admin.get(&paths::query(paths::USERS, "unknown=1")).await.assert_problem(422, "validation");
    admin.get(&format!("{}/nothing-here", paths::API)).await.assert_problem(404, "route-not-found");
    admin.get("/definitely/not/served").await.assert_problem(404, "route-not-found");
    let resp = admin.request(Method::DELETE, paths::ORGANIZATIONS, None).await;
    resp.assert_problem(405, "method-not-allowed");
    assert_eq!(resp.header("allow"), Some("GET, POST"));
    let resp = admin.request(Method::PUT, &paths::user(admin.id()), None).await;
    resp.assert_problem(405, "method-not-allowed");
    assert_eq!(resp.header("allow"), Some("GET, PATCH"));
    let resp = app.request(Method::POST, "/openapi.json", None, None).await;
    resp.assert_problem(405, "method-not-allowed");
    assert_eq!(resp.header("allow"), Some("GET"));
    // Unknown ids are 404 problem documents too.
    admin.get(&paths::user(uuid::Uuid::new_v4())).await.assert_problem(404, "not-found");
    // A percent-encoded letter names the same path (RFC 3986 6.2.2.2), in the first segment too.
    let plain = admin.get(&paths::user(admin.id())).await;
    let encoded = admin.get(&paths::user(admin.id()).replacen("/users/", "/%75sers/", 1)).await;
    assert_eq!((encoded.status, encoded.json()), (plain.status, plain.json()), "{}", encoded.text);
}

/// Found by schemathesis: a NUL character (which PostgreSQL text cannot hold) in a login email
/// was a 500. Refused up front, for bodies and query strings alike.
#[tokio::test]
async fn nul_characters_are_refused_not_a_server_error() {
    let app = spawn_app().await;
    let resp = app
        .request_with(
            Method::POST,
            paths::LOGIN,
            None,
            Some(serde_json::json!({ "email": "ana\u{0}@example.org", "password": "whatever-it-is-here" })),
            &[],
        )
        .await;
    let problem = resp.assert_problem(422, "validation");
    assert_eq!(problem["errors"][0]["field"], "email", "the field that holds it is named: {problem}");
    assert_eq!(problem["errors"][0]["code"], "format");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("NUL"));
    let org = app.create_org().await;
    let admin = app.caller(org, haven::domain::Role::Admin).await;
    let resp = admin.get(&paths::query(paths::VICTIMS, "operation=%00")).await;
    let problem = resp.assert_problem(422, "validation");
    assert_eq!(problem["errors"][0]["field"], "query");
    // An escaped backslash followed by "u0000" is text, not NUL: it gets past the check.
    let resp = app
        .post(
            paths::LOGIN,
            None,
            serde_json::json!({ "email": "a\\u0000@example.org", "password": "whatever-it-is-here" }),
        )
        .await;
    assert_eq!(resp.status, 401, "{}", resp.text);
}

/// A merge patch is checked as sent, against the schema the spec publishes for it: a key that is
/// no field of the case file is refused even with `null` (which would remove nothing), and is
/// neither echoed nor recorded. The patch's keys become the audit event's list of fields changed,
/// which admins and auditors read.
#[tokio::test]
async fn a_patch_key_that_is_no_field_is_refused_even_when_null() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (id, caseworker) = crate::victims::create_victim(&app, org).await;
    let path = paths::victim(id);
    for patch in
        [serde_json::json!({ "Maria Lopez": null }), serde_json::json!({ "status": "follow_up", "Maria Lopez": null })]
    {
        let resp = caseworker.patch(&path, "\"1\"", patch).await;
        assert_eq!(resp.status, 422, "{}", resp.text);
        assert_eq!(resp.json()["errors"][0]["code"], "unknown", "{}", resp.text);
        assert!(!resp.text.contains("Maria"), "a key the client typed was echoed: {}", resp.text);
    }
    assert_eq!(caseworker.get(&path).await.header("etag"), Some("\"1\""), "nothing was changed");
    let recorded = app.count("audit_events WHERE details::text LIKE '%Maria%'").await;
    assert_eq!(recorded, 0, "a key the client typed reached the audit log");
    // A patch of fields is taken as before.
    let resp = caseworker.patch(&path, "\"1\"", serde_json::json!({ "status": "follow_up", "operation": null })).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
}

/// A date a query gives that PostgreSQL cannot hold (chrono reads signed and five-digit years) is
/// refused as invalid, not answered 500 (D177).
#[tokio::test]
async fn dates_out_of_range_are_invalid_not_a_failure() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let admin = app.caller(org, haven::domain::Role::Admin).await;
    let caseworker = app.caller(org, haven::domain::Role::Caseworker).await;
    for (who, path) in [
        (&admin, paths::query(paths::AUDIT_EVENTS, "since=-5000-01-01T00:00:00Z")),
        (&caseworker, paths::query(paths::VICTIMS, "identified_from=-5000-01-01")),
        (&caseworker, paths::query(paths::VICTIMS, "identified_from=+12000-01-01")),
    ] {
        let problem = who.get(&path).await.assert_problem(422, "validation");
        assert!(!problem.to_string().contains("5000"), "{problem}");
    }
}
