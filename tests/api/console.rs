//! The partner console (`/console`): its files are served with a strict Content-Security-Policy and
//! load nothing from elsewhere; and in Debian's chromium, driven through WebDriver
//! (tests/console/drive.py, Selenium and chromium-driver, installed by `.ci/run`), a partner signs
//! in, runs two reports, sees chart and table match the JSON release, downloads the CSV and reads
//! the budget, at a desktop and a phone width, with no serious accessibility violation (axe-core,
//! vendored); a caseworker sees their own exact figures; no identity appears.

use haven::domain::{OrganizationKind, Role};
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, spawn_app};
use crate::reports::seed;
use crate::victims::{MARKERS, create_victim};

fn browser_tools() -> Result<(), &'static str> {
    if !std::path::Path::new("/usr/bin/chromedriver").is_file() {
        return Err("chromium-driver is not installed (apt-get install chromium-driver, or run .ci/run)");
    }
    let selenium = std::process::Command::new("python3").args(["-c", "import selenium"]).output();
    if !selenium.is_ok_and(|o| o.status.success()) {
        return Err("Selenium is not installed: pip install -r tests/console/requirements.txt (or run .ci/run)");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser_and_loads_nothing_from_elsewhere() {
    let app = spawn_app().await;
    for (path, kind) in
        [("/console", "text/html"), ("/console/console.js", "text/javascript"), ("/console/console.css", "text/css")]
    {
        let resp = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(header("content-type").starts_with(kind), "{path}");
        assert_eq!(header("content-security-policy"), haven::console::POLICY, "{path}");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("http://") && !body.contains("https://"), "{path} names another origin");
        assert!(!body.contains("style=\"") && !body.contains("<script>"), "{path}: inline code the policy forbids");
    }

    if let Err(reason) = browser_tools() {
        // Mandatory in CI (`.ci/run` installs them); elsewhere the test says why it skips.
        assert!(std::env::var_os("CI").is_none(), "{reason}");
        eprintln!("skipped the console's browser test: {reason}");
        return;
    }
    seed(&app, 1500).await;
    let partners =
        app.create_org_of_kind("Observatorio", OrganizationKind::InternationalOrganization, Some("PER")).await;
    let partner = app.caller(partners, Role::Partner).await;
    // A caseworker of an organisation with cases, one of them holding identity markers.
    let org = crate::reports::an_organisation_with_cases(&app).await;
    let (_, caseworker) = create_victim(&app, org).await;
    let drive = tokio::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/console/drive.py"))
        .env("HAVEN_BASE", &app.address)
        .env("PARTNER_EMAIL", &partner.user.email)
        .env("CASEWORKER_EMAIL", &caseworker.user.email)
        .env("PASSWORD", PASSWORD)
        .env("MARKERS", MARKERS.join(","))
        .env("AXE", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/console/axe-core/axe.min.js"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), drive)
        .await
        .expect("the browser test finishes within five minutes")
        .expect("run python3");
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{log}");
    assert!(log.contains("console checks passed"), "{log}");
}
