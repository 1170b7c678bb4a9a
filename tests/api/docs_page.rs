//! `/docs` renders the operations in a real headless browser with no internet access and under
//! its Content-Security-Policy: Swagger UI is vendored into the binary, the page loads nothing from
//! elsewhere, and the browser reports no policy violation.

use crate::helpers::spawn_app;
use crate::paths;

/// The headless browser, or none outside CI (the test then says why it skips; in CI, where
/// `.ci/run` installs Debian's `chromium`, a missing browser fails).
fn browser() -> Option<std::path::PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(found) = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()) {
            return Some(found);
        }
    }
    let reason = "no headless browser found: install Debian's `chromium` package (.ci/run does)";
    if std::env::var_os("CI").is_some() {
        panic!("{reason}");
    }
    eprintln!("skipped docs_page_renders_operations_offline: {reason}");
    None
}

#[tokio::test]
async fn docs_page_renders_operations_offline() {
    let Some(chromium) = browser() else { return };
    let app = spawn_app().await;
    let page = app.client.get(format!("{}/docs/", app.address)).send().await.unwrap();
    let policy =
        page.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(policy, haven::hardening::DOCS_POLICY);
    assert_eq!(page.headers().get("x-frame-options").and_then(|v| v.to_str().ok()), Some("DENY"));
    let profile = std::env::temp_dir().join(format!("haven-chromium-{}", uuid::Uuid::new_v4()));
    let output = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            // Everything but our server is unreachable, as on a machine without internet.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            // Console messages, CSP violations among them, go to stderr.
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("{}/docs/", app.address))
        .kill_on_drop(true)
        .output()
        .await
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains("Haven API"), "title not rendered; stderr: {}", String::from_utf8_lossy(&output.stderr));
    for operation in [paths::LOGIN, paths::ORGANIZATIONS, paths::AUDIT_EVENTS] {
        assert!(dom.contains(operation), "{operation} not rendered");
    }
    assert!(dom.contains("opblock"), "operations are not rendered as Swagger UI blocks");
    let log = String::from_utf8_lossy(&output.stderr);
    let violations: Vec<&str> = log.lines().filter(|l| l.contains("Content Security Policy")).collect();
    assert!(violations.is_empty(), "the page breaks its Content-Security-Policy:\n{}", violations.join("\n"));
}
