//! The code lists with their HTCDS and CTDC names and four languages, and the HTCDS fields a case
//! file gained with them.

use haven::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::spawn_app;
use crate::paths;
use crate::victims::{create_victim, victim_body};

fn list<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["lists"].as_array().unwrap().iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("no list {name}"))
}

fn code<'a>(list: &'a Value, code: &str) -> &'a Value {
    list["codes"].as_array().unwrap().iter().find(|c| c["code"] == code).unwrap_or_else(|| panic!("no code {code}"))
}

#[tokio::test]
async fn every_signed_in_user_reads_the_code_lists_in_four_languages() {
    let app = spawn_app().await;
    let partner = app.caller(app.create_org().await, Role::Partner).await;
    let resp = partner.get(paths::VOCABULARIES).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let body = resp.json();
    assert_eq!(body["languages"], json!(["en", "fr", "es", "pt"]));
    assert_eq!(resp.header("etag").unwrap(), format!("\"{}\"", body["version"].as_str().unwrap()));

    let exploitation = list(&body, "exploitation_type");
    assert_eq!(exploitation["htcds_field"], "vic_TypeOfExploitation");
    let scams = code(exploitation, "forced_criminality");
    assert_eq!(scams["htcds"], "Other", "finer than HTCDS: exported as Other");
    assert_eq!(scams["htcds_import"], json!([]), "Other imports as `other`, not as forced criminality");
    assert!(exploitation["notes"].as_str().unwrap().contains("forced_criminality"));
    let servitude = code(exploitation, "domestic_servitude");
    assert_eq!(servitude["labels"]["fr"], "Servitude domestique");
    assert_eq!(servitude["labels"]["pt"], "Servidão doméstica");
    for (list_name, value) in [
        ("means_of_control", "uses_children"),
        ("exploitation_type", "surrogacy"),
        ("exploitation_type", "forced_adoption"),
        ("migrant_status", "returnee"),
        ("migrant_status", "deportee"),
        ("sex_exploitation_type", "remote_interactive_services"),
        ("platform", "telegram"),
        ("perpetrator_role", "recruiter_or_intermediary"),
    ] {
        let found = code(list(&body, list_name), value);
        for lang in ["en", "fr", "es", "pt"] {
            assert!(!found["labels"][lang].as_str().unwrap().is_empty(), "{list_name}.{value} {lang}");
        }
    }
    assert_eq!(code(list(&body, "means_of_control"), "uses_children")["ctdc"], "meansOfControlUsesChildren");
    assert_eq!(
        code(list(&body, "gender"), "trans_or_non_conforming")["htcds_import"],
        json!(["NonConforming", "TransgenderFeminine", "TransgenderMasculine"])
    );

    // An offline client holding the current version is told nothing changed.
    let etag = resp.header("etag").unwrap().to_owned();
    let again = partner.request_with(Method::GET, paths::VOCABULARIES, None, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.text.is_empty());
    let stale =
        partner.request_with(Method::GET, paths::VOCABULARIES, None, &[("if-none-match", "\"1999.1.1\"")]).await;
    assert_eq!(stale.status, StatusCode::OK);
    app.request(Method::GET, paths::VOCABULARIES, None, None).await.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_case_file_holds_the_htcds_fields_and_everyone_who_reads_it_sees_them() {
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let mut body = victim_body(Uuid::new_v4());
    let details = json!({
        "sex_exploitation_types": ["remote_interactive_services"],
        "recruitment_platforms": ["telegram", "facebook", "telegram"],
        "exploitation_platforms": ["whatsapp"],
        "perpetrator_roles": ["recruiter_or_intermediary", "exploiter"],
        "age_when_trafficked": 22,
        "primary_language": "spa",
        "secondary_language": "por",
    });
    for (k, v) in details.as_object().unwrap() {
        body[k] = v.clone();
    }
    body["means_of_control"] = json!(["uses_children", "debt_bondage"]);
    body["migrant_status"] = json!("stranded_migrant");
    let resp = caseworker.post(paths::VICTIMS, body.clone()).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let id = resp.json()["id"].as_str().unwrap().to_owned();

    // Identity-free case data: an admin reads it as the caseworker does.
    let admin = app.caller(org, Role::Admin).await;
    let seen = admin.get(&paths::victim(&id)).await.json();
    assert_eq!(seen["recruitment_platforms"], json!(["facebook", "telegram"]), "sorted, once each");
    assert_eq!(seen["perpetrator_roles"], json!(["recruiter_or_intermediary", "exploiter"]));
    assert_eq!(seen["means_of_control"], json!(["debt_bondage", "uses_children"]));
    for key in [
        "sex_exploitation_types",
        "exploitation_platforms",
        "age_when_trafficked",
        "primary_language",
        "secondary_language",
    ] {
        assert_eq!(seen[key], details[key], "{key}");
    }
    assert_eq!(seen["migrant_status"], "stranded_migrant");

    // A merge patch changes one and leaves the others.
    let patched = caseworker.patch(&paths::victim(&id), "\"1\"", json!({ "primary_language": "wol" })).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json()["primary_language"], "wol");
    assert_eq!(patched.json()["secondary_language"], "por");

    // A language is an assigned ISO 639-3 code.
    for bad in [json!("xqz"), json!("es"), json!("SPA")] {
        let problem = caseworker.patch(&paths::victim(&id), "*", json!({ "primary_language": bad })).await;
        let problem = problem.assert_problem(422, "validation");
        assert_eq!(problem["errors"][0]["field"], "primary_language", "{problem}");
    }
    let problem = caseworker.patch(&paths::victim(&id), "*", json!({ "age_when_trafficked": 121 })).await;
    problem.assert_problem(422, "validation");
    let (_, _) = create_victim(&app, org).await; // the plain body still creates: every new field is optional
}
