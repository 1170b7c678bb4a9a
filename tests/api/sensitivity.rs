//! The sensitivity a release is calibrated to, checked on real data: adding one victim with as
//! many values, route legs, assistance records and referrals as the API allows moves at most
//! `sensitivity` measured entries of any report, each by at most one.

use std::collections::HashMap;

use haven::domain::Role;
use haven::reports::counting::{Counting, Entry, Filters, Population, count_direct};
use haven::reports::measure::Plan;
use haven::reports::{TableQuery, grid};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app};
use crate::paths;
use crate::reports::{bounding_key, seed};
use crate::victims::victim_body;

/// Every table the shipped reports can be asked for: each parameter value on its own.
fn tables() -> Vec<(String, TableQuery)> {
    let registry = haven::reports::Registry::shipped();
    let mut tables = Vec::new();
    for plugin in &registry.plugins {
        tables.push((plugin.id().to_owned(), plugin.table(&HashMap::new()).unwrap()));
        for spec in plugin.parameters() {
            for value in &spec.values {
                let params = HashMap::from([(spec.name.to_owned(), (*value).to_owned())]);
                tables.push((format!("{}?{}={value}", plugin.id(), spec.name), plugin.table(&params).unwrap()));
            }
        }
    }
    tables
}

/// The measured entries' counts, by dense index, for the pooled population.
async fn measured(app: &TestApp, table: &TableQuery, plan: &Plan, filters: &Filters) -> HashMap<usize, i64> {
    let key = bounding_key();
    let mut conn = app.pool.get().await.unwrap();
    let entries: Vec<Entry> =
        count_direct(&mut conn, table, Counting::Bounded(&key), Population::Pooled { caller: app.host_org }, filters)
            .await
            .unwrap();
    let index: Vec<HashMap<&str, usize>> =
        plan.values.iter().map(|v| v.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect()).collect();
    let mut counts = HashMap::new();
    for entry in entries {
        let key: Option<Vec<usize>> = entry
            .key
            .iter()
            .enumerate()
            .map(|(d, v)| match v {
                None => Some(plan.total_index(d)),
                Some(v) => index[d].get(v.as_str()).copied(),
            })
            .collect();
        let dense = plan.dense(&key.expect("every counted value is on the grid"));
        counts.insert(dense, entry.count);
    }
    plan.measured.iter().map(|d| (*d, counts.get(d).copied().unwrap_or(0))).collect()
}

async fn add_the_busiest_victim(app: &TestApp) {
    let (org, other) = (app.create_org().await, app.create_org().await);
    let caseworker = app.caller(org, Role::Caseworker).await;
    let receiver = app.caller(other, Role::Caseworker).await;
    let id = Uuid::new_v4();
    let mut body = victim_body(id);
    body["age_at_identification"] = json!(15);
    body["citizenship"] = json!(["PER", "NGA", "VNM", "UKR", "FJI"]);
    body["exploitation_types"] = json!([
        "sexual_exploitation",
        "forced_labour",
        "forced_criminality",
        "forced_begging",
        "domestic_servitude",
        "forced_marriage",
        "child_labour",
        "forced_military",
        "organ_removal",
        "other"
    ]);
    body["recruitment_methods"] = json!([
        "deceptive_job_offer",
        "online_social_network",
        "online_advertisement",
        "recruitment_agency",
        "family_or_friends",
        "peer_recruitment_pyramid",
        "intimate_partner",
        "abduction",
        "other"
    ]);
    body["means_of_control"] = json!([
        "debt_bondage",
        "takes_earnings",
        "withholds_documents",
        "restricts_movement",
        "threats",
        "physical_abuse",
        "sexual_abuse",
        "psychological_abuse",
        "false_promises",
        "psychoactive_substances",
        "excessive_working_hours",
        "withholds_necessities",
        "restricts_medical_care",
        "restricts_financial_access",
        "threat_of_law_enforcement",
        "threatens_family",
        "other"
    ]);
    body["route"] = json!([
        {"kind": "recruitment", "country": "PER"}, {"kind": "recruitment", "country": "VNM"}, {"kind": "recruitment", "country": "FJI"},
        {"kind": "transit", "country": "BRA"}, {"kind": "transit", "country": "THA"}, {"kind": "transit", "country": "DEU"},
        {"kind": "exploitation", "country": "SEN"}]);
    let resp = caseworker.post(paths::VICTIMS, body).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    for kind in ["shelter", "medical", "legal", "psychosocial", "financial"] {
        let resp = caseworker.post(&paths::assistance(id), json!({ "kind": kind, "provided_on": "2026-11-01" })).await;
        assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    }
    for (service, accept) in [("shelter", true), ("medical", false), ("legal", true), ("repatriation", false)] {
        let resp = caseworker
            .post(paths::REFERRALS, json!({ "victim_id": id, "to_organization_id": other, "service": service }))
            .await;
        assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
        if accept {
            let referral = resp.json()["id"].as_str().unwrap().to_owned();
            let resp = receiver.post(&paths::referral_step(&referral, "accept"), json!({})).await;
            assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        }
    }
}

#[tokio::test]
async fn one_victim_moves_at_most_sensitivity_measured_entries_by_one() {
    let app = spawn_app().await;
    seed(&app, 300).await;
    let today = chrono::Utc::now().date_naive();
    let mut before = Vec::new();
    for (name, table) in tables() {
        let filters = grid::resolve_window(&table.dimensions, Filters::default(), today).unwrap();
        let plan = Plan::new(table.dimensions.clone(), grid::values(&table.dimensions, &filters).unwrap());
        let counts = measured(&app, &table, &plan, &filters).await;
        before.push((name, table, filters, plan, counts));
    }
    add_the_busiest_victim(&app).await;
    for (name, table, filters, plan, counts) in before {
        let after = measured(&app, &table, &plan, &filters).await;
        let moved: Vec<i64> =
            plan.measured.iter().map(|d| after[d] - counts[d]).filter(|change| *change != 0).collect();
        assert!(moved.iter().all(|change| *change == 1), "{name}: an entry moved by more than one: {moved:?}");
        // A caller filter can leave the victim out (she is not a man); every default table counts her.
        assert!(!moved.is_empty() || name.contains('?'), "{name}: the victim counts nowhere");
        assert!(
            moved.len() as u64 <= plan.sensitivity(),
            "{name}: one victim moved {} measured entries; the noise is calibrated to {}",
            moved.len(),
            plan.sensitivity()
        );
    }
}
