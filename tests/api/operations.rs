use reqwest::StatusCode;

use crate::helpers::{fresh_database, serve, spawn_app, test_settings};
use crate::paths;

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let app = spawn_app().await;
    let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let id = health.headers().get("x-request-id").expect("request id header").to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = spawn_app().await;
    let admin = app.host_admin().await;
    admin.get(&paths::user(admin.id())).await;
    let on_api = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND, "metrics are not served where the API is");
    let text = app.client.get(format!("{}/metrics", app.metrics_address)).send().await.unwrap().text().await.unwrap();
    let route = paths::user("{id}");
    let counted = format!(r#"haven_http_requests_total{{method="GET",route="{route}",status="200"}} 1"#);
    assert!(text.contains(&counted), "{text}");
    assert!(text.contains("haven_http_request_duration_seconds_bucket"));
    assert!(!text.contains(&app.host_admin.id.to_string()), "raw paths must not become labels");
    // A wrong method is counted under the template its path matches, whichever group it is in.
    let wrong = app.request(reqwest::Method::DELETE, &paths::user(admin.id()), None, None).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    let text = app.client.get(format!("{}/metrics", app.metrics_address)).send().await.unwrap().text().await.unwrap();
    let refused = format!(r#"haven_http_requests_total{{method="DELETE",route="{route}",status="405"}} 1"#);
    assert!(text.contains(&refused), "{text}");
    let odd = reqwest::Method::from_bytes(b"FROBNICATE").unwrap();
    app.request(odd, "/healthz", None, None).await;
    let text = app.client.get(format!("{}/metrics", app.metrics_address)).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("FROBNICATE"), "arbitrary methods must not become labels");
    assert!(text.contains(r#"method="other""#));
}

#[tokio::test]
async fn database_outage_is_503_and_readyz_says_so() {
    // A database URL pointing nowhere: the pool cannot connect.
    let mut settings = test_settings(&fresh_database());
    let unreachable = "postgres://postgres@127.0.0.1:1/haven".to_owned();
    settings.database_url = Some(unreachable.clone().into());
    settings.db_timeout_ms = 500;
    let (address, _) = serve(settings, &unreachable);
    let client = reqwest::Client::new();
    let ready = client.get(format!("{address}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let login = client
        .post(format!("{address}{}", paths::LOGIN))
        .json(&serde_json::json!({ "email": "a@example.org", "password": "whatever-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(login.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = login.json().await.unwrap();
    assert_eq!(body["type"], "urn:haven:problem:unavailable");
    assert!(!body.to_string().contains("127.0.0.1"), "no connection details in errors");
}
