//! Every report as a chart: valid SVG with a title and a description, one mark per released cell
//! of the chart and none for a withheld one, the same numbers as the JSON release (from the
//! ledger: no second cost).

use haven::domain::{OrganizationKind, Role};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;
use crate::paths;
use crate::reports::seed;

/// `#1F77B4`, `haven::reports::chart::MARK`.
const MARK: &str = "#1F77B4";

/// The cells a chart draws: without totals, unless the table has no dimension (its total is all).
fn charted(release: &Value) -> Vec<&Value> {
    let cells = release["cells"].as_array().unwrap();
    if release["dimensions"].as_array().unwrap().is_empty() {
        return cells.iter().collect();
    }
    cells.iter().filter(|c| !c["key"].as_array().unwrap().iter().any(|k| k == "_total")).collect()
}

fn released(cell: &Value) -> Option<(i64, i64)> {
    (!cell["withheld"].as_bool().unwrap())
        .then(|| (cell["victims"].as_i64().unwrap(), cell["margin"].as_i64().unwrap()))
}

/// Checks one chart against its JSON release.
fn check(report: &str, svg: &str, release: &Value) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{report}: not XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{report}");
    assert_eq!(root.attribute("role"), Some("img"), "{report}");
    let child = |name: &str| root.children().find(|n| n.tag_name().name() == name).and_then(|n| n.text());
    let title = child("title").unwrap_or_else(|| panic!("{report}: no <title>"));
    assert!(title.starts_with(release["title"].as_str().unwrap()), "{report}: {title}");
    let desc = child("desc").unwrap_or_else(|| panic!("{report}: no <desc>"));
    let cells = charted(release);
    let shown: Vec<(i64, i64)> = cells.iter().filter_map(|c| released(c)).collect();
    assert!(desc.contains(&format!("{} values released", shown.len())), "{report}: {desc}");
    let marks = doc
        .descendants()
        .filter(|n| matches!(n.tag_name().name(), "rect" | "circle"))
        .filter(|n| n.attribute("fill").is_some_and(|f| f.eq_ignore_ascii_case(MARK)))
        .count();
    // A matrix larger than the chart shows says how many of its released values it drew.
    let drawn = desc
        .split("; ")
        .find_map(|part| part.strip_suffix(" drawn, the rest in the table only").and_then(|n| n.parse().ok()))
        .unwrap_or(shown.len());
    assert_eq!(marks, drawn, "{report}: one mark per released cell, none for a withheld one");
    // What the chart itself writes (its <text> elements), not its description.
    let texts: Vec<&str> =
        doc.descendants().filter(|n| n.tag_name().name() == "text").filter_map(|n| n.text()).map(str::trim).collect();
    let text = texts.join("\n");
    assert!(text.contains(release["privacy"]["population"].as_str().unwrap()), "{report}: the population is named");
    let guarded = release["privacy"]["guarded"].as_bool().unwrap();
    assert!(text.contains(if guarded { "noisy counts, 95% margins" } else { "exact counts" }), "{report}");
    if cells.len() > shown.len() {
        assert!(text.contains("withheld"), "{report}: withheld cells are shown as withheld");
    }
    // Each released value, with its margin, is written in the chart or its description (line
    // charts label their axis and describe the largest values; bars and matrices label each).
    let kind = desc.split(" of ").next().unwrap();
    if kind != "Line chart" && drawn == shown.len() {
        for (v, m) in &shown {
            assert!(texts.contains(&format!("{v} ±{m}").as_str()), "{report}: {v} ±{m} is not written");
        }
    }
}

#[tokio::test]
async fn every_report_is_a_chart_of_its_release() {
    let app = spawn_app().await;
    seed(&app, 1500).await;
    let partners = app.create_org_of_kind("IOM", OrganizationKind::InternationalOrganization, Some("CHE")).await;
    let partner = app.caller(partners, Role::Partner).await;
    let catalogue = partner.get(paths::REPORTS).await.json();
    let ids: Vec<String> = catalogue.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert!(ids.len() >= 7, "{ids:?}");
    for id in &ids {
        let path = paths::report(id);
        let release = partner.get(&path).await;
        assert_eq!(release.status, StatusCode::OK, "{id}: {}", release.text);
        let release = release.json();
        let left = release["release"]["budget_left"].as_f64().unwrap();
        let chart = partner.get(&paths::query(path.clone(), "format=svg")).await;
        assert_eq!(chart.status, StatusCode::OK, "{id}: {}", chart.text);
        assert_eq!(chart.header("content-type"), Some("image/svg+xml"), "{id}");
        check(id, &chart.text, &release);
        // The chart is the recorded release: nothing more was spent.
        let again = partner.get(&path).await.json();
        assert_eq!(again["release"]["budget_left"].as_f64().unwrap(), left, "{id}");
        assert_eq!(again["release"]["repeat"], true, "{id}");
    }
    // Asked with Accept, and a caseworker's exact figures, charted alike.
    let negotiated = partner
        .request_with(reqwest::Method::GET, &paths::report("trends"), None, &[("accept", "image/svg+xml")])
        .await;
    assert_eq!(negotiated.header("content-type"), Some("image/svg+xml"));
    let listed = partner.get(&paths::query(paths::report("trends"), "format=json")).await.json();
    check("trends (Accept)", &negotiated.text, &listed);
    let org = crate::reports::an_organisation_with_cases(&app).await;
    let caseworker = app.caller(org, Role::Caseworker).await;
    let path = paths::report("recruitment-and-control");
    let exact = caseworker.get(&path).await.json();
    let chart = caseworker.get(&paths::query(path.clone(), "format=svg")).await;
    check("recruitment-and-control (exact)", &chart.text, &exact);
}
