//! Report plugins: caseworkers' exact figures checked against counts computed here from the
//! rows, who is counted, rollups, declarative plugins, the replica. Guarded releases (noise,
//! budgets, the ledger) are in `releases.rs`.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use haven::db::schema::{organizations, victims};
use haven::domain::Role;
use haven::privacy::crypto::IdentityKeyring;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{BLIND_INDEX_KEY, IDENTITY_KEY_SPEC, TestApp, spawn_app, spawn_app_with};
use crate::paths;

/// The bounding key the test apps derive from their fixed blind-index key.
pub fn bounding_key() -> haven::reports::counting::BoundingKey {
    let keys = IdentityKeyring::parse(IDENTITY_KEY_SPEC, BLIND_INDEX_KEY).unwrap();
    haven::reports::counting::BoundingKey::new(keys.derive(haven::reports::counting::BOUNDING_PURPOSE))
}
use crate::victims::victim_body;

pub async fn seed(app: &TestApp, victims: u64) {
    let keys = IdentityKeyring::parse(IDENTITY_KEY_SPEC, BLIND_INDEX_KEY).unwrap();
    let options = haven::seed::SeedOptions { victims, rng_seed: 11, organizations: 4, progress: false };
    haven::seed::run(&app.pool, &crate::helpers::vault_at(&crate::helpers::vault_url(), keys), &options).await.unwrap();
}

/// An organisation that holds (seeded) cases.
pub async fn an_organisation_with_cases(app: &TestApp) -> Uuid {
    let mut conn = app.pool.get().await.unwrap();
    victims::table.select(victims::organization_id).first(&mut conn).await.unwrap()
}

/// Distinct victims per (citizenship region, exploitation region), computed here from the rows:
/// every victim of `org`, or (`org` None) the pooled population: consent to statistics, sharing
/// organisations.
pub async fn independent_flows(app: &TestApp, org: Option<Uuid>) -> HashMap<(String, String), i64> {
    let mut conn = app.pool.get().await.unwrap();
    let sharing: HashSet<Uuid> = organizations::table
        .filter(organizations::shares_statistics.eq(true))
        .select(organizations::id)
        .load::<Uuid>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    type Row = (Uuid, Uuid, bool, Vec<String>, Option<String>);
    let rows: Vec<Row> = victims::table
        .select((
            victims::id,
            victims::organization_id,
            victims::consent_anonymised_statistics,
            victims::citizenship,
            victims::country_of_exploitation,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    let region = |code: &str| {
        keshvar::Alpha3::try_from(code)
            .ok()
            .and_then(|c| c.to_country().maybe_region())
            .map(|r| r.to_string())
            .unwrap_or("unknown".into())
    };
    let mut sets: HashMap<(String, String), HashSet<Uuid>> = HashMap::new();
    for (id, owner, consent, citizenship, exploited) in rows {
        let counted = match org {
            Some(org) => owner == org,
            None => consent && sharing.contains(&owner),
        };
        if !counted {
            continue;
        }
        let to = exploited.as_deref().map(region).unwrap_or("unknown".into());
        for from in citizenship.iter().map(|c| region(c)) {
            sets.entry((from.clone(), to.clone())).or_default().insert(id);
            sets.entry((from, "_total".into())).or_default().insert(id);
        }
        sets.entry(("_total".into(), to.clone())).or_default().insert(id);
        sets.entry(("_total".into(), "_total".into())).or_default().insert(id);
    }
    sets.into_iter().map(|(k, v)| (k, v.len() as i64)).collect()
}

#[tokio::test]
async fn a_caseworkers_flows_match_independent_counts_exactly() {
    let app = spawn_app().await;
    seed(&app, 2000).await;
    let org: Uuid = {
        let mut conn = app.pool.get().await.unwrap();
        victims::table.select(victims::organization_id).first(&mut conn).await.unwrap()
    };
    let caseworker = app.caller(org, Role::Caseworker).await;
    let resp = caseworker.get(&paths::query(paths::report("trafficking-flows"), "level=region")).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let body = resp.json();
    assert_eq!(body["privacy"]["guarded"], false);
    assert_eq!(body["privacy"]["k"], 1);
    assert!(body.get("release").is_none(), "a caseworker's own figures are not a release");
    let expected = independent_flows(&app, Some(org)).await;
    let cells = body["cells"].as_array().unwrap();
    for cell in cells {
        let key: Vec<&str> = cell["key"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let truth = expected.get(&(key[0].to_owned(), key[1].to_owned())).copied().unwrap_or(0);
        assert_eq!(cell["victims"].as_i64(), Some(truth), "{key:?}");
        assert_eq!((cell["margin"].as_i64(), cell["withheld"].as_bool()), (Some(0), Some(false)));
    }
    assert_eq!(cells.len(), expected.len(), "every occurring combination, and only those");
}

/// The pooled population of a guarded release, counted exactly here (the release itself is
/// noisy): what it measures.
async fn pooled_total(app: &TestApp, caller: Uuid, report: &str) -> i64 {
    use haven::reports::counting::{Counting, Filters, Population, count_direct};
    let registry = haven::reports::Registry::shipped();
    let table = registry.get(report).unwrap().table(&HashMap::new()).unwrap();
    let mut conn = app.pool.get().await.unwrap();
    let entries = count_direct(&mut conn, &table, Counting::Exact, Population::Pooled { caller }, &Filters::default())
        .await
        .unwrap();
    entries.iter().find(|e| e.key.iter().all(Option::is_none)).map(|e| e.count).unwrap_or(0)
}

#[tokio::test]
async fn consent_and_sharing_decide_who_is_counted() {
    let app = spawn_app().await;
    let sharing = app.create_org().await;
    let private = app.create_org_of_kind("Private NGO", haven::domain::OrganizationKind::Ngo, Some("PER")).await;
    {
        let mut conn = app.pool.get().await.unwrap();
        diesel::update(organizations::table.find(private))
            .set(organizations::shares_statistics.eq(false))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for (org, consent, n) in [(sharing, true, 40), (sharing, false, 25), (private, true, 30)] {
        let caseworker = app.caller(org, Role::Caseworker).await;
        for _ in 0..n {
            let mut body = victim_body(Uuid::new_v4());
            body["consent"]["anonymised_statistics"] = json!(consent);
            assert_eq!(caseworker.post(paths::VICTIMS, body).await.status, StatusCode::CREATED);
        }
    }
    assert_eq!(
        pooled_total(&app, app.host_org, "trends").await,
        40,
        "only consenting victims of sharing organisations"
    );
    let partner = app.caller(app.host_org, Role::Partner).await;
    let body = partner.get(&paths::query(paths::report("trends"), "period=quarter")).await.json();
    let grand =
        body["cells"].as_array().unwrap().iter().find(|c| c["key"] == json!(["_total", "_total"])).unwrap().clone();
    let released = grand["victims"].as_i64().unwrap();
    // Noise of sd about 1.7 here: 65 (consent ignored) or 70 (sharing ignored) would be far off.
    assert!((released - 40).abs() <= 10, "the release measures the 40 who count: {grand}");
    // A caseworker's own report counts their whole case load, unguarded.
    let caseworker = app.caller(sharing, Role::Caseworker).await;
    let own = caseworker.get(&paths::report("trends")).await.json();
    assert_eq!(own["privacy"]["guarded"], false);
    let grand =
        own["cells"].as_array().unwrap().iter().find(|c| c["key"] == json!(["_total", "_total"])).unwrap().clone();
    assert_eq!(grand["victims"], 65);
}

#[tokio::test]
async fn catalogue_roles_parameters_csv_audit_and_ledger() {
    let app = spawn_app().await;
    seed(&app, 600).await;
    let partner = app.caller(app.host_org, Role::Partner).await;
    let auditor = app.caller(app.host_org, Role::Auditor).await;
    let caseworker = app.caller(app.create_org().await, Role::Caseworker).await;
    let catalogue = partner.get(paths::REPORTS).await.json();
    let ids: Vec<&str> = catalogue.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    for id in [
        "trafficking-flows",
        "exploitation-profile",
        "recruitment-and-control",
        "trends",
        "route-corridors",
        "labour-and-migration",
    ] {
        assert!(ids.contains(&id), "{id} missing from the catalogue");
    }
    // Each report states its bounds, mechanism and expected error per cell at these settings.
    let rc = catalogue.as_array().unwrap().iter().find(|r| r["id"] == "recruitment-and-control").unwrap();
    assert_eq!(rc["privacy"]["bounds"], json!({ "means_of_control": 5, "recruitment_method": 2 }));
    assert_eq!(rc["privacy"]["sensitivity"], 18);
    assert_eq!(rc["privacy"]["noise"]["mechanism"], "discrete_gaussian");
    assert_eq!(rc["privacy"]["alternative"]["mechanism"], "discrete_laplace");
    assert_eq!(rc["privacy"]["noise"]["noise_sd"], 3.0, "sigma = sqrt(18 / (2 rho)) at rho 1");
    assert_eq!(rc["privacy"]["cell_margin"], 6);
    let trends = paths::report("trends");
    auditor.get(paths::REPORTS).await.assert_problem(403, "forbidden");
    auditor.get(&trends).await.assert_problem(403, "forbidden");
    partner.get(&paths::report("no-such-report")).await.assert_problem(404, "not-found");
    partner.get(&paths::query(&trends, "period=week")).await.assert_problem(422, "validation");
    partner.get(&paths::query(&trends, "k=1")).await.assert_problem(422, "validation");
    partner.get(&paths::query(&trends, "from=2026-13")).await.assert_problem(422, "validation");
    partner.get(&paths::query(&trends, "period=month&from=2010-01")).await.assert_problem(422, "validation");
    let corridors_by_country = paths::query(paths::report("route-corridors"), "level=country");
    partner.get(&corridors_by_country).await.assert_problem(422, "validation");

    let csv = partner.get(&paths::query(paths::report("exploitation-profile"), "format=csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "exploitation_type,gender,age_band,victims,margin,withheld");
    assert!(
        lines.iter().skip(1).any(|l| l.ends_with(",true") && l.split(',').nth(3) == Some("")),
        "withheld cells carry no count"
    );
    assert!(lines.iter().skip(1).all(|l| l.split(',').count() == 6));
    assert_eq!(
        lines.len() - 1,
        14 * 5 * 12,
        "the full grid: (12 types + unknown + total) x (4 genders + total) x (11 bands + total)"
    );
    let via_accept = partner.request_with(reqwest::Method::GET, &trends, None, &[("accept", "text/csv")]).await;
    assert!(via_accept.text.starts_with("identified_quarter,exploitation_type,victims,margin,withheld\r\n"));

    let window = partner.get(&paths::query(&trends, "period=month&from=2026-01&to=2026-03")).await.json();
    for cell in window["cells"].as_array().unwrap() {
        let month = cell["key"][0].as_str().unwrap();
        assert!(month == "_total" || ("2026-01"..="2026-03").contains(&month), "{month} outside the window");
    }

    caseworker.get(&trends).await;
    let mut conn = app.pool.get().await.unwrap();
    let releases: i64 = haven::db::schema::report_releases::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(releases, 3, "every partner release is in the ledger, the caseworker's own report is not");
    drop(conn);
    let runs = app.audit_actions().await.iter().filter(|(a, _)| a == "report.run").count();
    assert_eq!(runs, 4, "every run is audited");
}

#[test]
fn a_withheld_cell_carries_no_count_but_the_same_fields() {
    let cell = haven::reports::output::Cell { key: vec!["a".into()], victims: None, margin: 4, withheld: true };
    assert_eq!(
        serde_json::to_value(cell).unwrap(),
        json!({ "key": ["a"], "victims": null, "margin": 4, "withheld": true })
    );
}

pub fn figure(body: &Value, key: Value) -> Option<i64> {
    body["cells"].as_array().unwrap().iter().find(|c| c["key"] == key).and_then(|c| c["victims"].as_i64())
}

#[tokio::test]
async fn operation_summary_and_referral_outcomes_match_independent_counts() {
    use haven::db::schema::{assistance_records, referrals};
    let app = spawn_app().await;
    seed(&app, 1500).await;
    // The caseworker view of one seeded organisation is exact (unguarded): compare with the rows.
    let mut conn = app.pool.get().await.unwrap();
    let org: Uuid = victims::table.select(victims::organization_id).first(&mut conn).await.unwrap();
    let ids: Vec<(Uuid, bool, String)> = victims::table
        .filter(victims::organization_id.eq(org))
        .select((victims::id, victims::is_minor, victims::trafficking_status))
        .load(&mut conn)
        .await
        .unwrap();
    let own: HashSet<Uuid> = ids.iter().map(|r| r.0).collect();
    let assisted: HashSet<Uuid> = assistance_records::table
        .select(assistance_records::victim_id)
        .load::<Uuid>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|v| own.contains(v))
        .collect();
    let refs: Vec<(Uuid, String, String)> = referrals::table
        .select((referrals::victim_id, referrals::status, referrals::service))
        .load(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|r: &(Uuid, String, String)| own.contains(&r.0))
        .collect();
    drop(conn);
    let caseworker = app.caller(org, Role::Caseworker).await;
    let body = caseworker.get(&paths::report("operation-summary")).await.json();
    assert_eq!(figure(&body, json!(["_total"])), Some(ids.len() as i64), "the total is the number identified");
    assert_eq!(figure(&body, json!(["minors"])).unwrap_or(0), ids.iter().filter(|r| r.1).count() as i64);
    assert_eq!(
        figure(&body, json!(["confirmed_victims"])).unwrap_or(0),
        ids.iter().filter(|r| r.2 == "actual").count() as i64
    );
    assert_eq!(figure(&body, json!(["assisted"])), Some(assisted.len() as i64));
    let referred: HashSet<Uuid> = refs.iter().map(|r| r.0).collect();
    assert_eq!(figure(&body, json!(["referred"])), Some(referred.len() as i64));
    let completed: HashSet<Uuid> = refs.iter().filter(|r| r.1 == "completed").map(|r| r.0).collect();
    assert_eq!(figure(&body, json!(["referral_completed"])).unwrap_or(0), completed.len() as i64);

    let outcomes = caseworker.get(&paths::report("referral-outcomes")).await.json();
    let mut by_pair: HashMap<(String, String), HashSet<Uuid>> = HashMap::new();
    for (victim, status, service) in &refs {
        by_pair.entry((service.clone(), status.clone())).or_default().insert(*victim);
    }
    for ((service, status), victims) in by_pair {
        assert_eq!(figure(&outcomes, json!([service, status])), Some(victims.len() as i64), "{service} {status}");
    }
    let bands = caseworker.get(&paths::query(paths::report("referral-outcomes"), "by=response_time")).await.json();
    assert_eq!(bands["dimensions"], json!(["referral_service", "referral_response_time"]));
    let partner = app.caller(app.host_org, Role::Partner).await;
    let by_country = "by=country_of_exploitation&operation=OP-SENTINEL-2026";
    let pooled = partner.get(&paths::query(paths::report("operation-summary"), by_country)).await;
    assert_eq!(pooled.status, StatusCode::OK, "{}", pooled.text);
}

/// Why cases closed, and after how long: a caseworker's exact figures against the closures
/// counted here.
#[tokio::test]
async fn case_outcomes_count_closures_by_reason_and_duration() {
    use haven::db::schema::case_closures;
    let app = spawn_app().await;
    seed(&app, 600).await;
    let mut conn = app.pool.get().await.unwrap();
    let org: Uuid = victims::table.select(victims::organization_id).first(&mut conn).await.unwrap();
    let statuses: Vec<String> = victims::table
        .filter(victims::organization_id.eq(org))
        .select(victims::status)
        .load::<haven::domain::case_vocab::CaseStatus>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.to_string())
        .collect();
    let reasons: Vec<String> = case_closures::table
        .inner_join(victims::table.on(victims::id.eq(case_closures::victim_id)))
        .filter(victims::organization_id.eq(org))
        .filter(case_closures::reopened_at.is_null())
        .select(case_closures::reason)
        .load::<haven::domain::case_vocab::ClosureReason>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.to_string())
        .collect();
    drop(conn);
    let closed = statuses.iter().filter(|s| s.starts_with("closed")).count();
    assert!(closed > 0 && closed == reasons.len(), "every seeded closed case has its closure");
    let caseworker = app.caller(org, Role::Caseworker).await;
    let report = caseworker.get(&paths::report("case-outcomes")).await.json();
    let open = statuses.len() - closed;
    assert_eq!(figure(&report, json!(["open", "open"])), Some(open as i64), "{report}");
    for reason in ["goals_met", "returned_home", "referred_elsewhere", "lost_contact"] {
        let expected = reasons.iter().filter(|r| *r == reason).count() as i64;
        assert_eq!(figure(&report, json!([reason, "_total"])).unwrap_or(0), expected, "{reason}");
    }
    let durations: i64 = ["under_3_months", "3_to_6_months", "6_to_12_months", "1_to_2_years", "over_2_years"]
        .iter()
        .map(|band| figure(&report, json!(["_total", band])).unwrap_or(0))
        .sum();
    assert_eq!(durations, closed as i64, "each closed case in one duration band");
}

#[tokio::test]
async fn declarative_plugins_run_like_compiled_ones() {
    let dir = std::env::temp_dir().join(format!("haven-reports-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("minors.toml"),
        "id = \"minors-by-gender\"\ntitle = \"Minors by gender\"\ndescription = \"Minors by gender.\"\n\
         roles = [\"caseworker\", \"partner\"]\ndimensions = [\"gender\"]\n\n[filters]\nminor_or_adult = [\"minor\"]\n",
    )
    .unwrap();
    let reports_dir = dir.clone();
    let app = spawn_app_with(move |s| s.reports_dir = Some(reports_dir)).await;
    seed(&app, 1200).await;
    let mut conn = app.pool.get().await.unwrap();
    let org: Uuid = victims::table.select(victims::organization_id).first(&mut conn).await.unwrap();
    let rows: Vec<(bool, Vec<String>, String)> = victims::table
        .filter(victims::organization_id.eq(org))
        .select((victims::is_minor, victims::exploitation_types, victims::gender))
        .load(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let caseworker = app.caller(org, Role::Caseworker).await;

    // The shipped declarative report: only forced criminality is counted.
    let scam_path = paths::report("scam-compound-recruitment");
    let scam = caseworker.get(&scam_path).await.json();
    let expected = rows.iter().filter(|r| r.1.contains(&"forced_criminality".to_owned())).count() as i64;
    assert_eq!(figure(&scam, json!(["_total", "_total"])), Some(expected), "{scam}");
    let women = caseworker.get(&paths::query(&scam_path, "gender=woman")).await.json();
    let expected_women =
        rows.iter().filter(|r| r.1.contains(&"forced_criminality".to_owned()) && r.2 == "woman").count() as i64;
    assert_eq!(figure(&women, json!(["_total", "_total"])).unwrap_or(0), expected_women);
    caseworker.get(&paths::query(&scam_path, "gender=robot")).await.assert_problem(422, "validation");

    // The directory's report: in the catalogue, the served spec, and counting what it says.
    let catalogue = caseworker.get(paths::REPORTS).await.json();
    assert!(catalogue.as_array().unwrap().iter().any(|r| r["id"] == "minors-by-gender"));
    let spec: Value =
        app.client.get(format!("{}/openapi.json", app.address)).send().await.unwrap().json().await.unwrap();
    let minors_path = paths::report("minors-by-gender");
    assert!(spec["paths"].get(&minors_path).is_some());
    let minors = caseworker.get(&minors_path).await.json();
    assert_eq!(figure(&minors, json!(["_total"])), Some(rows.iter().filter(|r| r.0).count() as i64));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn pooled_releases_leave_out_the_callers_own_organisation() {
    let app = spawn_app().await;
    let (own, other) = (app.create_org().await, app.create_org().await);
    for (org, n) in [(own, 40), (other, 15)] {
        let caseworker = app.caller(org, Role::Caseworker).await;
        for _ in 0..n {
            caseworker.post(paths::VICTIMS, victim_body(Uuid::new_v4())).await;
        }
    }
    assert_eq!(pooled_total(&app, own, "operation-summary").await, 15, "only the other organisation's victims");
    let admin = app.caller(own, Role::Admin).await;
    let body = admin.get(&paths::report("operation-summary")).await.json();
    let total = figure(&body, json!(["_total"])).unwrap();
    assert!((total - 15).abs() <= 8, "measured over the 15 others, not 55: {body}");
}

/// The upkeep takes each dirty partition once, however many transactions marked it: a bulk load
/// leaves a marker per transaction and partition (about a million after seeding a million victims),
/// and loading them all into the service had raised its resident memory by 47 MB at start.
#[tokio::test]
async fn the_upkeep_takes_each_dirty_partition_once_however_many_writes_marked_it() {
    use haven::reports::rollup;
    let app = spawn_app().await;
    let mut conn = app.pool.get().await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    // In one transaction, so the upkeep that starts with the service cannot take them first.
    let (taken, left) = diesel_async::AsyncConnection::transaction::<_, diesel::result::Error, _>(
        &mut *conn,
        async |conn: &mut diesel_async::AsyncPgConnection| {
            diesel::sql_query(
                "INSERT INTO report_rollup_dirty (organization_id, month, txid) \
                 SELECT $1, DATE '2025-01-01', t FROM generate_series(1, 300) t \
                 UNION ALL SELECT $2, DATE '2025-02-01', t FROM generate_series(1, 200) t \
                 UNION ALL SELECT $1, DATE '2025-03-01', 7",
            )
            .bind::<diesel::sql_types::Uuid, _>(a)
            .bind::<diesel::sql_types::Uuid, _>(b)
            .execute(conn)
            .await?;
            let taken = rollup::take_dirty(conn).await?;
            let left: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM report_rollup_dirty)",
            ))
            .get_result(conn)
            .await?;
            Ok((taken, left))
        },
    )
    .await
    .unwrap();
    let date = |m| chrono::NaiveDate::from_ymd_opt(2025, m, 1).unwrap();
    let mut expected = vec![(a, date(1)), (a, date(3)), (b, date(2))];
    expected.sort();
    assert_eq!(taken, expected, "501 markers of three partitions");
    assert_eq!(left, 0, "every marker taken");
}

/// Rollups give exactly what counting the records directly gives, also after records change
/// (new victims, an identity erased, a victim moved to another month, consent withdrawn,
/// assistance added).
#[tokio::test]
async fn rollups_stay_equal_to_direct_counts_as_records_change() {
    use haven::reports::counting::{Counting, Entry, Filters, Population, count_direct};
    use haven::reports::rollup::{self, Shape};
    let app = spawn_app().await;
    seed(&app, 900).await;
    let registry = haven::reports::Registry::shipped();
    let key = bounding_key();
    let mut conn = app.pool.get().await.unwrap();
    let org: Uuid = victims::table.select(victims::organization_id).first(&mut conn).await.unwrap();
    let host = app.host_org;
    let check = async |conn: &mut diesel_async::AsyncPgConnection| {
        for plugin in &registry.plugins {
            let table = plugin.table(&HashMap::new()).unwrap();
            for bounded in [false, true] {
                let shape = Shape { table: &table, bounded };
                rollup::maintain(conn, &shape, &key).await.unwrap();
                let (counting, populations) = if bounded {
                    (
                        Counting::Bounded(&key),
                        vec![Population::Pooled { caller: host }, Population::Pooled { caller: org }],
                    )
                } else {
                    (Counting::Exact, vec![Population::OwnOrganization(org)])
                };
                for population in populations {
                    for filters in [
                        Filters::default(),
                        Filters {
                            from: chrono::NaiveDate::from_ymd_opt(2025, 1, 1),
                            to_exclusive: chrono::NaiveDate::from_ymd_opt(2025, 7, 1),
                            operation: None,
                        },
                        Filters { operation: Some("OP-SENTINEL-2026".into()), ..Default::default() },
                    ] {
                        let sorted = |mut e: Vec<Entry>| {
                            e.sort_by(|a, b| a.key.cmp(&b.key));
                            e.retain(|x| x.count > 0);
                            e
                        };
                        let direct = sorted(count_direct(conn, &table, counting, population, &filters).await.unwrap());
                        let rolled = sorted(rollup::read(conn, &shape, &key, population, &filters).await.unwrap());
                        assert_eq!(direct, rolled, "{} bounded={bounded} {population:?} {filters:?}", plugin.id());
                    }
                }
            }
        }
    };
    check(&mut conn).await;
    // Change records through the API: the next maintenance rebuilds exactly the dirty partitions.
    let caseworker = app.caller(org, Role::Caseworker).await;
    let created: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    for id in &created {
        caseworker.post(paths::VICTIMS, victim_body(*id)).await;
    }
    // An erasure leaves the identity-free case file, counted as before.
    let erased =
        caseworker.post(&paths::case_step(created[0], "erase"), json!({ "reason": "data_subject_request" })).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    let some: Uuid =
        victims::table.filter(victims::organization_id.eq(org)).select(victims::id).first(&mut conn).await.unwrap();
    let path = paths::victim(some);
    let version = caseworker.get(&path).await.json()["version"].to_string();
    let resp = caseworker
        .patch(
            &path,
            &format!("\"{version}\""),
            json!({ "identified_on": "2025-03-03", "consent": { "anonymised_statistics": false }, "gender": "man" }),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    caseworker.post(&paths::assistance(some), json!({ "kind": "legal", "provided_on": "2026-11-01" })).await;
    // Closed if it was open, reopened if it was closed: either moves its closure cells.
    let closed = caseworker.post(&paths::case_step(some, "close"), json!({ "reason": "returned_home" })).await;
    let moved = match closed.status {
        StatusCode::CONFLICT => caseworker.post(&paths::case_step(some, "reopen"), json!({ "reason": "other" })).await,
        _ => closed,
    };
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    check(&mut conn).await;
    // An organisation stops sharing statistics: the pooled figures lose its victims.
    let other: Uuid = victims::table
        .filter(victims::organization_id.ne(org))
        .select(victims::organization_id)
        .first(&mut conn)
        .await
        .unwrap();
    diesel::update(organizations::table.find(other))
        .set(organizations::shares_statistics.eq(false))
        .execute(&mut conn)
        .await
        .unwrap();
    check(&mut conn).await;
}
