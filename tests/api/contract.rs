//! The contract as generated clients and schema-driven tools read it: what the spec promises is
//! what the server does (issue 11).

use haven::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Caller, spawn_app};
use crate::paths;
use crate::victims::create_victim;

fn spec() -> Value {
    serde_json::from_str(&haven::openapi::document_json()).unwrap()
}

/// The component a `$ref` names, if the content's schema is one.
fn schema_name(content: &Value) -> Option<&str> {
    content["schema"]["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/"))
}

#[test]
fn every_example_matches_its_schema() {
    let spec = spec();
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let bodies = op["requestBody"]["content"].as_object().into_iter().flatten();
            let responses = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(_, r)| r["content"].as_object().into_iter().flatten());
            for (media, content) in bodies.chain(responses) {
                let Some(name) = schema_name(content) else { continue };
                let examples = content["example"]
                    .as_object()
                    .map(|_| content["example"].clone())
                    .into_iter()
                    .chain(content["examples"].as_object().into_iter().flatten().map(|(_, e)| e["value"].clone()));
                for example in examples {
                    let problems = haven::openapi::validate::problems(name, &example).unwrap();
                    assert!(
                        problems.is_empty(),
                        "{method} {path} {media}: the example is not a valid {name}: {problems:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    for (name, response) in spec["components"]["responses"].as_object().unwrap() {
        let content = &response["content"]["application/problem+json"];
        let examples = content["examples"].as_object().unwrap_or_else(|| panic!("{name} has no examples"));
        for (label, example) in examples {
            let problems = haven::openapi::validate::problems("Problem", &example["value"]).unwrap();
            assert!(problems.is_empty(), "{name}/{label}: {problems:?}");
            // Named for its problem type, or for the type and a cause when two share it.
            let slug = example["value"]["type"].as_str().unwrap_or_default().trim_start_matches("urn:haven:problem:");
            assert!(label == slug || label.starts_with(&format!("{slug}-")), "{name}/{label} is of type {slug}");
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} examples were checked");
}

#[tokio::test]
async fn the_documented_create_victim_example_is_accepted() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let example =
        spec()["paths"][paths::VICTIMS]["post"]["requestBody"]["content"]["application/json"]["example"].clone();
    assert!(example.get("id").is_none(), "no shared example id: each client chooses its own");
    let resp = caseworker.post(paths::VICTIMS, example).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
}

#[tokio::test]
async fn validation_names_every_problem_at_once() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let problem = caseworker.post(paths::VICTIMS, json!({})).await.assert_problem(422, "validation");
    let errors: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    for field in ["trafficking_status", "identified_on", "gender"] {
        assert!(errors.contains(&(field.to_owned(), "required".to_owned())), "{field} not named: {errors:?}");
    }
    let problem = caseworker
        .post(
            paths::VICTIMS,
            json!({ "trafficking_status": "sometimes", "identified_on": "14/10/2026", "gender": "woman" }),
        )
        .await
        .assert_problem(422, "validation");
    let by_field =
        |f: &str| problem["errors"].as_array().unwrap().iter().find(|e| e["field"] == f).cloned().unwrap_or_default();
    assert_eq!(by_field("trafficking_status")["code"], "enum");
    assert!(
        by_field("trafficking_status")["message"].as_str().unwrap().contains("actual"),
        "the allowed values are listed"
    );
    assert_eq!(by_field("identified_on")["code"], "format");
    assert!(by_field("identified_on")["message"].as_str().unwrap().contains("YYYY-MM-DD"), "the format is named");
}

async fn version(reader: &Caller<'_>, path: &str) -> String {
    reader.get(path).await.header("etag").unwrap().to_owned()
}

#[tokio::test]
async fn if_match_takes_star_lists_and_strong_tags_only() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (id, caseworker) = create_victim(&app, org).await;
    let path = paths::victim(id);
    let patch = |tag: &'static str, status: &'static str| {
        let (path, caseworker) = (path.clone(), caseworker.clone());
        async move { caseworker.patch(&path, tag, json!({ "status": status })).await }
    };
    assert_eq!(patch("*", "follow_up").await.status, StatusCode::OK, "* matches the existing record");
    assert_eq!(version(&caseworker, &path).await, "\"2\"");
    assert_eq!(patch("\"1\", \"2\"", "active").await.status, StatusCode::OK, "a list matches if one tag does");
    patch("W/\"3\"", "closed").await.assert_problem(412, "precondition-failed");
    patch("\"2\"", "closed").await.assert_problem(412, "precondition-failed");
    // `*` for a record that does not exist is still not found.
    let missing = paths::victim(Uuid::new_v4());
    caseworker.patch(&missing, "*", json!({ "status": "closed" })).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn a_merge_patch_is_typed_as_one_and_accepted_as_such() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let (id, caseworker) = create_victim(&app, org).await;
    let path = paths::victim(id);
    let resp = app
        .client
        .patch(format!("{}{path}", app.address))
        .bearer_auth(&caseworker.token)
        .header("if-match", "\"1\"")
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"identity": {"phone": null}, "status": "follow_up"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["status"], "follow_up");
    assert!(view["identity"].get("phone").is_none(), "null removed the phone");
    // The spec's patch schema requires nothing, so a one-field patch is a valid instance.
    assert!(haven::openapi::validate::problems("VictimPatch", &json!({ "status": "closed" })).unwrap().is_empty());
    assert!(
        !haven::openapi::validate::problems("VictimPatch", &json!({ "id": Uuid::new_v4() })).unwrap().is_empty(),
        "id is not patchable"
    );
}

#[tokio::test]
async fn a_literal_path_asked_with_a_templates_method_is_405() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let resp =
        caseworker.request_with(Method::PATCH, paths::VICTIM_SEARCH, Some(json!({})), &[("if-match", "*")]).await;
    resp.assert_problem(405, "method-not-allowed");
    assert_eq!(resp.header("allow"), Some("POST"));
    // A malformed id at the template is still a bad request.
    let resp = caseworker.get(&format!("{}/not-a-uuid", paths::VICTIMS)).await;
    resp.assert_problem(400, "bad-request");
}

#[tokio::test]
async fn the_fuller_view_always_carries_its_field() {
    let app = spawn_app().await;
    let (from, to) = (app.create_org().await, app.create_org().await);
    let (victim, sender) = create_victim(&app, from).await;
    let referral = sender
        .post(
            paths::REFERRALS,
            json!({ "victim_id": victim, "to_organization_id": to, "service": "shelter", "urgency": "urgent" }),
        )
        .await;
    assert_eq!(referral.status, StatusCode::CREATED, "{}", referral.text);
    let view = referral.json();
    assert!(view.as_object().unwrap().contains_key("reason") && view["reason"].is_null(), "{view}");
    let admin = app.caller(from, Role::Admin).await;
    let as_admin = admin.get(&paths::referral(view["id"].as_str().unwrap())).await.json();
    assert!(!as_admin.as_object().unwrap().contains_key("reason"), "{as_admin}");
}
