//! `/docs` renders the operations in a real headless browser with no internet access: Swagger UI
//! is vendored into the binary, and the page loads nothing from elsewhere.

use crate::helpers::spawn_app;

fn browser() -> std::path::PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(found) = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()) {
            return found;
        }
    }
    panic!("no headless browser found: install Debian's `chromium` package (.ci/run does)");
}

#[tokio::test]
async fn docs_page_renders_operations_offline() {
    let chromium = browser();
    let app = spawn_app().await;
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
    for operation in ["/api/v1/auth/login", "/api/v1/organizations", "/api/v1/audit-events"] {
        assert!(dom.contains(operation), "{operation} not rendered");
    }
    assert!(dom.contains("opblock"), "operations are not rendered as Swagger UI blocks");
}
