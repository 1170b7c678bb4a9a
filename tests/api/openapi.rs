//! The committed spec equals the generated one, every documented operation is served, and the
//! operations of the contract are documented.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::spawn_app;

fn spec() -> Value {
    serde_json::from_str(&haven::openapi::document_json()).unwrap()
}

#[test]
fn committed_spec_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
        .expect("openapi/openapi.json exists");
    assert!(
        committed == haven::openapi::document_json(),
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[tokio::test]
async fn served_spec_is_the_generated_one() {
    let app = spawn_app().await;
    let served = app.client.get(format!("{}/openapi.json", app.address)).send().await.unwrap().text().await.unwrap();
    // With the deployment's own limits: the tests' cap on allowances is not the default.
    let mut expected = haven::openapi::document_for(&haven::reports::Registry::shipped());
    haven::openapi::deployment_limits(&mut expected, &crate::helpers::test_settings("postgres://unused"));
    assert_eq!(served, haven::openapi::to_json(&expected));
    let allowance = |doc: &str| {
        serde_json::from_str::<serde_json::Value>(doc).unwrap()["components"]["schemas"]["AllowanceChange"]["properties"]["allowance"]["maximum"].clone()
    };
    assert_eq!(allowance(&served), 100_000.0);
    assert_ne!(
        allowance(&served),
        allowance(&haven::openapi::document_json()),
        "the committed document gives the default cap"
    );
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let spec = spec();
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
            let body = matches!(*method, "post" | "patch").then(|| serde_json::json!({}));
            let resp =
                app.request(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &concrete, None, body).await;
            let text = &resp.text;
            assert!(
                !text.contains("urn:haven:problem:route-not-found")
                    && !text.contains("urn:haven:problem:method-not-allowed"),
                "{method} {path} is documented but not served: {} {text}",
                resp.status
            );
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} operations checked");
}

#[test]
fn the_contract_routes_are_documented() {
    let spec = spec();
    let paths = spec["paths"].as_object().unwrap();
    for (method, path) in [
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/organizations"),
        ("post", "/api/v1/organizations"),
        ("get", "/api/v1/organizations/{id}"),
        ("patch", "/api/v1/organizations/{id}"),
        ("get", "/api/v1/users"),
        ("post", "/api/v1/users"),
        ("get", "/api/v1/users/{id}"),
        ("patch", "/api/v1/users/{id}"),
        ("post", "/api/v1/users/{id}/reset"),
        ("post", "/api/v1/auth/enrol"),
        ("post", "/api/v1/me/password"),
        ("get", "/api/v1/access-grants"),
        ("post", "/api/v1/access-grants/{id}/approve"),
        ("post", "/api/v1/access-grants/{id}/refuse"),
        ("get", "/api/v1/audit-events"),
        ("get", "/healthz"),
        ("get", "/readyz"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing from the spec");
    }
}

#[test]
fn every_operation_is_documented_for_a_developer() {
    let spec = spec();
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(!spec["info"]["description"].as_str().unwrap().is_empty());
    assert!(!spec["info"]["license"]["name"].as_str().unwrap_or_default().is_empty());
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let op = &item[*method];
            let name = format!("{method} {path}");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{name}: no tag");
            assert!(op["summary"].is_string() || op["description"].is_string(), "{name}: no description");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|k| k.starts_with('2')), "{name}: no success response");
            let secured = op.get("security").is_some();
            if secured {
                assert!(responses.contains_key("401"), "{name}: secured but 401 undocumented");
            }
            if path.starts_with("/api") {
                assert!(responses.contains_key("503"), "{name}: database outage (503) undocumented");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(status), "{name}: {status} undocumented for a body");
                }
            }
            for (status, resp) in responses {
                let resp = match resp["$ref"].as_str() {
                    Some(reference) => {
                        let name = reference.trim_start_matches("#/components/responses/");
                        spec["components"]["responses"].get(name).unwrap_or_else(|| panic!("{name}: dangling $ref"))
                    }
                    None => resp,
                };
                if status.starts_with('4') || (status.starts_with('5') && path.starts_with("/api")) {
                    assert!(
                        resp["content"].get("application/problem+json").is_some(),
                        "{name}: {status} is not documented as problem+json"
                    );
                }
            }
        }
    }
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Found by schemathesis: a query parameter referred to a schema that was never published.
#[test]
fn every_reference_resolves() {
    let spec = spec();
    let mut found = Vec::new();
    refs(&spec, &mut found);
    for r in found {
        let path = r.strip_prefix("#/").unwrap_or_else(|| panic!("external reference {r}"));
        let target = path.split('/').try_fold(&spec, |node, key| node.get(key));
        assert!(target.is_some(), "{r} does not resolve");
    }
}

/// Found by schemathesis: enums were documented with Rust's variant names ("Caseworker") while
/// the API speaks snake_case ("caseworker").
#[test]
fn enums_are_documented_with_their_wire_values() {
    let schemas = &spec()["components"]["schemas"];
    let listed = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let wire = |values: Vec<String>| values;
    assert_eq!(listed("Role"), wire(haven::domain::Role::ALL.iter().map(|r| r.as_str().to_owned()).collect()));
    assert_eq!(
        listed("Dimension"),
        wire(
            haven::reports::catalogue::Dimension::ALL
                .iter()
                .map(|d| serde_json::to_value(d).unwrap().as_str().unwrap().to_owned())
                .collect()
        )
    );
    // And the redacted views, whose fuller variant also matches the other, are anyOf.
    for view in ["VictimView", "ReferralView", "AssistanceView"] {
        assert!(schemas[view]["anyOf"].is_array(), "{view} must be anyOf");
    }
}
