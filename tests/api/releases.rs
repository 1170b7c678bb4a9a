//! Guarded releases: what leaves the server for anyone but a caseworker on their own
//! organisation. One noisy measurement per question; its shape fixed by the question; the same
//! question answered again from the ledger; budgets per organisation and period under a
//! deployment-wide cap.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use haven::db::schema::{report_releases, report_spend};
use haven::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Caller, spawn_app, spawn_app_with};
use crate::paths;
use crate::reports::seed;
use crate::victims::victim_body;

fn cells(body: &Value) -> &Vec<Value> {
    body["cells"].as_array().unwrap_or_else(|| panic!("no cells: {body}"))
}

fn fields(cell: &Value) -> Vec<String> {
    let mut names: Vec<String> = cell.as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

/// Every report with its default parameters, and the variants the neighbouring test needs.
fn questions() -> Vec<String> {
    let registry = haven::reports::Registry::shipped();
    let mut questions: Vec<String> = registry.plugins.iter().map(|p| paths::report(p.id())).collect();
    let asked = |id: &str, parameters: &str| paths::query(paths::report(id), parameters);
    questions.extend([
        asked("operation-summary", "operation=OP-ONLY-ONE"),
        asked("operation-summary", "by=country_of_exploitation&operation=OP-ONLY-ONE"),
        asked("trafficking-flows", "level=country"),
        asked("exploitation-profile", "age=minor_adult"),
        asked("trends", "period=month"),
        asked("route-corridors", "level=subregion"),
        asked("labour-and-migration", "by=minor_or_adult"),
    ]);
    questions
}

/// Adding one consenting victim (a unique operation tag, a rare citizenship and transit country,
/// a minor) leaves every release with the same keys in the same order, the same fields in every
/// cell and the same statement: only noisy numbers may differ. Two partner organisations ask,
/// one before and one after, so each gets a new release from a full budget.
#[tokio::test]
async fn one_victim_more_changes_no_releases_shape() {
    let app = spawn_app().await;
    seed(&app, 600).await;
    let before = app
        .caller(
            app.create_org_of_kind(
                "Partner A",
                haven::domain::OrganizationKind::InternationalOrganization,
                Some("CHE"),
            )
            .await,
            Role::Partner,
        )
        .await;
    let after = app
        .caller(
            app.create_org_of_kind("Partner B", haven::domain::OrganizationKind::Government, Some("SEN")).await,
            Role::Partner,
        )
        .await;
    let mut first = HashMap::new();
    for path in questions() {
        let resp = before.get(&path).await;
        assert_eq!(resp.status, StatusCode::OK, "{path}: {}", resp.text);
        first.insert(path, resp.json());
    }
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let mut one = victim_body(Uuid::new_v4());
    one["operation"] = json!("OP-ONLY-ONE");
    one["citizenship"] = json!(["TUV"]);
    one["age_at_identification"] = json!(12);
    one["route"] = json!([{"kind": "recruitment", "country": "TUV"}, {"kind": "transit", "country": "NRU"}, {"kind": "exploitation", "country": "SEN"}]);
    assert_eq!(caseworker.post(paths::VICTIMS, one).await.status, StatusCode::CREATED);
    for path in questions() {
        let second = after.get(&path).await.json();
        let first = &first[&path];
        let keys = |b: &Value| cells(b).iter().map(|c| c["key"].clone()).collect::<Vec<_>>();
        assert_eq!(keys(first), keys(&second), "{path}: the keys changed");
        for (a, b) in cells(first).iter().zip(cells(&second)) {
            assert_eq!(fields(a), fields(b), "{path}: the fields of {} changed", a["key"]);
            assert_eq!(fields(a), ["key", "margin", "victims", "withheld"], "{path}");
        }
        assert_eq!(first["privacy"], second["privacy"], "{path}: the statement changed");
        assert_eq!(fields(&first["release"]), fields(&second["release"]), "{path}");
        assert_eq!(first["release"]["budget_left"], second["release"]["budget_left"], "{path}");
        assert_eq!(second["privacy"]["guarded"], true);
    }
}

/// A repeated question is answered from the ledger: the same numbers, in JSON and in CSV, at no
/// cost. So asking again and averaging gains nothing.
#[tokio::test]
async fn a_repeated_question_is_the_same_release_free_in_json_and_csv() {
    let app = spawn_app_with(|s| s.dp_rho = 0.25).await;
    seed(&app, 500).await;
    let partner = app.caller(app.host_org, Role::Partner).await;
    let profile = paths::report("exploitation-profile");
    let path = paths::query(&profile, "age=minor_adult");
    let first = partner.get(&path).await.json();
    assert_eq!(first["release"]["repeat"], false);
    let spent = |b: &Value| b["spent"].as_f64().unwrap();
    let budget = partner.get(paths::OWN_BUDGET).await.json();
    assert_eq!((spent(&budget), budget["releases"].as_i64()), (0.25, Some(1)));
    for _ in 0..4 {
        let again = partner.get(&path).await.json();
        assert_eq!(again["release"]["repeat"], true);
        assert_eq!(again["release"]["id"], first["release"]["id"]);
        assert_eq!(again["cells"], first["cells"], "the recorded release, not a new draw");
        assert_eq!(again["privacy"], first["privacy"]);
    }
    // Parameters in another order, and the default made explicit, are the same question.
    let explicit = partner.get(&paths::query(&profile, "format=json&age=minor_adult")).await.json();
    assert_eq!(explicit["release"]["id"], first["release"]["id"]);
    let csv = partner.get(&format!("{path}&format=csv")).await;
    let rows: Vec<Vec<String>> = csv
        .text
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), cells(&first).len());
    for (row, cell) in rows.iter().zip(cells(&first)) {
        let key: Vec<String> = cell["key"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        assert_eq!(row[..3], key[..]);
        assert_eq!(row[3], cell["victims"].as_i64().map(|n| n.to_string()).unwrap_or_default());
        assert_eq!(row[4], cell["margin"].to_string());
        assert_eq!(row[5], cell["withheld"].to_string());
    }
    // The CSV-only operation (one media type, for generated clients) is the same release.
    let csv_only = partner.get(&paths::query(paths::report_csv("exploitation-profile"), "age=minor_adult")).await;
    assert_eq!(csv_only.status, StatusCode::OK, "{}", csv_only.text);
    assert!(csv_only.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(csv_only.text, csv.text, "the CSV operation answers the recorded release");
    let budget = partner.get(paths::OWN_BUDGET).await.json();
    assert_eq!(spent(&budget), 0.25, "repeats and formats cost nothing");
    let mut conn = app.pool.get().await.unwrap();
    let recorded: i64 = report_releases::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(recorded, 1, "one release in the ledger");
    drop(conn);
    let repeats = app.audit_actions().await.iter().filter(|(a, o)| a == "report.run" && o == "success").count();
    assert_eq!(repeats, 8, "every answer is audited, repeats included");
}

/// Released counts are the measured ones within their margins (nearly always), never below k,
/// and the table is consistent: totals over a single-valued dimension add up.
#[tokio::test]
async fn released_counts_are_close_consistent_and_at_least_k() {
    let app = spawn_app().await;
    seed(&app, 2000).await;
    let partner = app.caller(app.host_org, Role::Partner).await;
    let body = partner.get(&paths::query(paths::report("trafficking-flows"), "level=region")).await.json();
    let truth = crate::reports::independent_flows(&app, None).await;
    let (mut released, mut close) = (0, 0);
    for cell in cells(&body) {
        let key: Vec<String> = cell["key"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        if let Some(n) = cell["victims"].as_i64() {
            assert!(n >= 11, "released below k: {cell}");
            released += 1;
            let exact = truth.get(&(key[0].clone(), key[1].clone())).copied().unwrap_or(0);
            if (n - exact).abs() <= cell["margin"].as_i64().unwrap() {
                close += 1;
            }
        }
    }
    assert!(released >= 10, "{body}");
    assert!(close * 10 >= released * 8, "{close} of {released} released cells within their 95% margin");
    // Exploitation regions are single-valued: each row of cells adds up to its total.
    let all = cells(&body);
    let value = |k0: &str, k1: &str| all.iter().find(|c| c["key"] == json!([k0, k1])).map(|c| c["victims"].as_i64());
    let regions: Vec<String> = all
        .iter()
        .filter(|c| c["key"][0] == "_total" && c["key"][1] != "_total")
        .map(|c| c["key"][1].as_str().unwrap().to_owned())
        .collect();
    let total = value("_total", "_total").unwrap().unwrap();
    let parts: Vec<Option<i64>> = regions.iter().map(|r| value("_total", r).unwrap()).collect();
    let shown: i64 = parts.iter().flatten().sum();
    assert!(shown <= total, "released parts exceed their total");
    assert_eq!(body["privacy"]["method"].as_str().map(|m| m.contains("add up")), Some(true));
}

#[tokio::test]
async fn allowances_and_the_deployment_cap_bound_new_releases() {
    let app = spawn_app_with(|s| {
        s.dp_rho = 1.0;
        s.dp_allowance = 2.0;
        s.dp_cap = 5.0;
    })
    .await;
    let (a, b) = (app.create_org().await, app.create_org().await);
    let partner_a = app.caller(a, Role::Partner).await;
    let partner_b = app.caller(b, Role::Partner).await;
    let host_admin = app.host_admin().await;
    let ask = async |partner: &Caller<'_>, n: usize| {
        partner.get(&paths::query(paths::report("trends"), format!("from=2025-{n:02}"))).await
    };
    for n in 1..=2 {
        assert_eq!(ask(&partner_a, n).await.status, StatusCode::OK);
    }
    let refused = ask(&partner_a, 3).await;
    let problem = refused.assert_problem(403, "privacy-budget-exhausted");
    assert!(problem["detail"].as_str().unwrap().contains("allowance"), "{problem}");
    assert_eq!(ask(&partner_a, 1).await.status, StatusCode::OK, "an answered question is still answered, free");
    let budget = partner_a.get(paths::OWN_BUDGET).await.json();
    assert_eq!(
        (budget["left"].as_f64(), budget["new_releases_left"].as_i64(), budget["limited_by"].as_str()),
        (Some(0.0), Some(0), Some("allowance"))
    );
    assert!(budget["renews_at"].as_str().unwrap().ends_with("T00:00:00Z"));

    // A host admin raises A's allowance; the change is audited.
    let raised = host_admin.put(&paths::organization_budget(a), json!({ "allowance": 4.0 })).await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.text);
    assert_eq!(
        (raised.json()["allowance"].as_f64(), raised.json()["default_allowance"].as_bool()),
        (Some(4.0), Some(false))
    );
    assert!(app.audit_actions().await.contains(&("report.allowance_set".into(), "success".into())));
    let too_much = host_admin.put(&paths::organization_budget(a), json!({ "allowance": 6.0 })).await;
    too_much.assert_problem(422, "validation");
    assert_eq!(ask(&partner_a, 3).await.status, StatusCode::OK);

    // The cap holds across organisations: B (allowed 4 too) gets two, then nobody gets more.
    let put = host_admin.put(&paths::organization_budget(b), json!({ "allowance": 4.0 })).await;
    assert_eq!(put.status, StatusCode::OK);
    for n in 1..=2 {
        assert_eq!(ask(&partner_b, n).await.status, StatusCode::OK);
    }
    let refused = ask(&partner_b, 3).await;
    let problem = refused.assert_problem(403, "privacy-budget-exhausted");
    assert!(problem["detail"].as_str().unwrap().contains("deployment"), "{problem}");
    ask(&partner_a, 4).await.assert_problem(403, "privacy-budget-exhausted");
    let budget = partner_b.get(paths::OWN_BUDGET).await.json();
    assert_eq!(budget["limited_by"], "deployment_cap");
    let denied = app.audit_actions().await.iter().filter(|(a, o)| a == "report.run" && o == "denied").count();
    assert_eq!(denied, 3, "refusals are audited");
    let mut conn = app.pool.get().await.unwrap();
    let ledger: f64 = report_releases::table
        .select(diesel::dsl::sum(report_releases::rho))
        .first::<Option<f64>>(&mut conn)
        .await
        .unwrap()
        .unwrap();
    let running: f64 = report_spend::table
        .select(diesel::dsl::sum(report_spend::rho))
        .first::<Option<f64>>(&mut conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ledger, running), (5.0, 5.0), "the running totals are the ledger's");
}

/// Allowances renew each period: what was spent, and what was answered, in an earlier period
/// neither counts nor is served now.
#[tokio::test]
async fn a_new_period_brings_a_fresh_allowance_and_fresh_releases() {
    let app = spawn_app_with(|s| s.dp_allowance = 1.0).await;
    let (c, d) = (app.create_org().await, app.create_org().await);
    let partner_c = app.caller(c, Role::Partner).await;
    let partner_d = app.caller(d, Role::Partner).await;
    let path = paths::query(paths::report("trends"), "from=2025-01&to=2025-12");
    assert_eq!(partner_d.get(&path).await.status, StatusCode::OK);
    let today = chrono::Utc::now().date_naive();
    let this_period =
        haven::reports::budget::Period::containing(chrono::Utc::now(), haven::config::BudgetPeriod::Month).start;
    let last_period = this_period - chrono::Months::new(1);
    assert!(last_period < today);
    let mut conn = app.pool.get().await.unwrap();
    // Last month C spent far more than its allowance, and asked this very question.
    diesel::insert_into(report_spend::table)
        .values((
            report_spend::period.eq(last_period),
            report_spend::organization_id.eq(c),
            report_spend::rho.eq(50.0),
            report_spend::releases.eq(50),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let (question, release, user): (Option<String>, Option<Value>, Uuid) = report_releases::table
        .select((report_releases::question, report_releases::release, report_releases::user_id))
        .first(&mut conn)
        .await
        .unwrap();
    diesel::insert_into(report_releases::table)
        .values((
            report_releases::user_id.eq(user),
            report_releases::organization_id.eq(c),
            report_releases::report_id.eq("trends"),
            report_releases::parameters.eq(json!({})),
            report_releases::k.eq(11),
            report_releases::cells_released.eq(0),
            report_releases::cells_suppressed.eq(0),
            report_releases::period.eq(last_period),
            report_releases::question.eq(question),
            report_releases::rho.eq(1.0),
            report_releases::release.eq(release),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let budget = partner_c.get(paths::OWN_BUDGET).await.json();
    assert_eq!((budget["spent"].as_f64(), budget["left"].as_f64()), (Some(0.0), Some(1.0)), "{budget}");
    let answer = partner_c.get(&path).await.json();
    assert_eq!(answer["release"]["repeat"], false, "last period's release is not this period's");
    assert_eq!(answer["release"]["period"], json!(this_period.to_string()));
}

#[tokio::test]
async fn refused_runs_are_audited() {
    let app = spawn_app_with(|s| s.dp_allowance = 0.0).await;
    let partner = app.caller(app.host_org, Role::Partner).await;
    partner.get(&paths::report("trends")).await.assert_problem(403, "privacy-budget-exhausted");
    assert!(app.audit_actions().await.contains(&("report.run".into(), "denied".into())));
}

/// Each victim counts under at most `bound` values of a multi-valued dimension in guarded
/// releases, the same ones every time; caseworkers' own figures count them all.
#[tokio::test]
async fn a_victims_contribution_is_bounded_the_same_way_every_time() {
    use haven::reports::TableQuery;
    use haven::reports::catalogue::Dimension;
    use haven::reports::counting::{Counting, Filters, Population, count_direct};
    let app = spawn_app().await;
    let org = app.create_org().await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let mut many = victim_body(Uuid::new_v4());
    many["means_of_control"] = json!([
        "debt_bondage",
        "withholds_documents",
        "threats",
        "physical_abuse",
        "sexual_abuse",
        "false_promises",
        "threatens_family",
        "restricts_movement"
    ]);
    many["recruitment_methods"] =
        json!(["deceptive_job_offer", "online_social_network", "family_or_friends", "abduction"]);
    assert_eq!(caseworker.post(paths::VICTIMS, many).await.status, StatusCode::CREATED);
    let key = crate::reports::bounding_key();
    let table =
        TableQuery { dimensions: vec![Dimension::MeansOfControl, Dimension::RecruitmentMethod], ..Default::default() };
    let mut conn = app.pool.get().await.unwrap();
    let values = |entries: &[haven::reports::counting::Entry], d: usize| -> Vec<String> {
        let mut v: Vec<String> = entries
            .iter()
            .filter(|e| e.key[d].is_some() && e.key[1 - d].is_none())
            .map(|e| e.key[d].clone().unwrap())
            .collect();
        v.sort();
        v
    };
    let population = Population::OwnOrganization(org);
    let exact = count_direct(&mut conn, &table, Counting::Exact, population, &Filters::default()).await.unwrap();
    assert_eq!((values(&exact, 0).len(), values(&exact, 1).len()), (8, 4));
    let bounded =
        count_direct(&mut conn, &table, Counting::Bounded(&key), population, &Filters::default()).await.unwrap();
    assert_eq!((values(&bounded, 0).len(), values(&bounded, 1).len()), (5, 2), "bounds: 5 means of control, 2 methods");
    for _ in 0..3 {
        let again =
            count_direct(&mut conn, &table, Counting::Bounded(&key), population, &Filters::default()).await.unwrap();
        assert_eq!(values(&again, 0), values(&bounded, 0), "the same values every time");
    }
    let other = haven::reports::counting::BoundingKey::new([7; 32]);
    let elsewhere =
        count_direct(&mut conn, &table, Counting::Bounded(&other), population, &Filters::default()).await.unwrap();
    assert_eq!(values(&elsewhere, 0).len(), 5);
    drop(conn);
    // Bounded in partners' releases, unbounded in the caseworker's own figures.
    let own = caseworker.get(&paths::report("recruitment-and-control")).await.json();
    assert_eq!(cells(&own).iter().filter(|c| c["key"][0] == "_total" && c["key"][1] != "_total").count(), 8);
}
