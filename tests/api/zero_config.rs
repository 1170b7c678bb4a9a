//! The binary itself: zero-configuration start with a private cluster, credentials shown once,
//! clean stop on SIGTERM, start-up refusals with clear messages, and `haven bootstrap`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{fresh_database, serve, test_settings};
use crate::paths;

fn haven() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haven"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("HAVEN_JWT_KEYS")
        .env_remove("HAVEN_ENV")
        .env("HAVEN_LOG_FORMAT", "json")
        // Tests run side by side: each process takes a free metrics port.
        .env("HAVEN_METRICS_BIND", "127.0.0.1:0")
        .kill_on_drop(true);
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn data_dir() -> PathBuf {
    // Short: the cluster's Unix socket lives inside it.
    std::env::temp_dir().join(format!("hz-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]))
}

type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Starts `haven serve` and returns it with the printed admin password (if one was printed)
/// and its log lines so far and to come.
async fn start(dir: &Path, port: u16) -> (Child, Option<String>, Log) {
    let mut child = haven()
        .env("HAVEN_DATA_DIR", dir)
        .env("HAVEN_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut password = None;
    let log: Log = Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        tokio::select! {
            line = stdout.next_line() => {
                if let Ok(Some(line)) = line && let Some(p) = first_admin_password(&line) {
                    password = Some(p);
                }
            }
            line = stderr.next_line() => match line {
                Ok(Some(line)) => {
                    assert!(!line.contains("\"level\":\"ERROR\""), "start-up error: {line}");
                    log.lock().unwrap().push(line.clone());
                    if line.contains("Haven is listening") {
                        break;
                    }
                }
                _ => panic!("haven exited during start-up"),
            },
            _ = tokio::time::sleep_until(deadline) => panic!("haven did not start in time"),
        }
    }
    // The banner is printed before the "listening" log line, but the two pipes race: read what
    // stdout already holds.
    while password.is_none() {
        match tokio::time::timeout(Duration::from_millis(500), stdout.next_line()).await {
            Ok(Ok(Some(line))) => {
                if let Some(p) = first_admin_password(&line) {
                    password = Some(p);
                }
            }
            _ => break,
        }
    }
    // Keep draining output so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    (child, password, log)
}

/// The first admin's password from the start-up banner (`    admin@haven.local   <password>`).
fn first_admin_password(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    (words.next() == Some("admin@haven.local")).then(|| words.next().map(str::to_owned)).flatten()
}

async fn stop(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.expect("stops in time").unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn zero_configuration_start_persists_and_stops_cleanly() {
    let dir = data_dir();
    let port = free_port();
    let (child, password, log) = start(&dir, port).await;
    let password = password.expect("first admin's password printed on first start");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let login = |password: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .post(format!("{base}{}", paths::LOGIN))
                .json(&json!({ "email": "admin@haven.local", "password": password }))
                .send()
                .await
                .unwrap()
        }
    };
    let resp = login(password.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The binary serves on a database of its own, not a test app's: its admin's token is held as
    // it came, and is also looked for in the log below.
    let admin_token = resp.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let created = client
        .post(format!("{base}{}", paths::ORGANIZATIONS))
        .bearer_auth(&admin_token)
        .json(&json!({ "name": "Casa Refugio Lima", "kind": "ngo", "country": "PER" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    // Again, now that the caller may be remembered: found without the database (D137), and still
    // named in the request's log line.
    for _ in 0..2 {
        let listed =
            client.get(format!("{base}{}", paths::ORGANIZATIONS)).bearer_auth(&admin_token).send().await.unwrap();
        assert_eq!(listed.status(), StatusCode::OK);
    }

    let secrets = dir.join("secrets.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777, 0o600);
    let failed = login("not-the-password-Maria-Lopez".into()).await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);

    // Graceful shutdown: requests in flight when SIGTERM arrives are answered, not dropped.
    // Logins queue behind the bounded password hasher, so these are still running.
    let in_flight: Vec<_> = (0..12)
        .map(|i| {
            let client = client.clone();
            let url = format!("{base}{}", paths::LOGIN);
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({ "email": format!("u{i}@example.org"), "password": "whatever-it-is" }))
                    .send()
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let pid_file = dir.join("pg/data/postmaster.pid");
    assert!(pid_file.exists(), "cluster running");
    stop(child).await;
    for request in in_flight {
        let resp = request.await.unwrap().expect("in-flight request answered during shutdown");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(!pid_file.exists(), "the private cluster stopped with Haven");

    // Logs are JSON lines; requests carry their id and route template; nothing secret is logged.
    let lines = log.lock().unwrap().clone();
    let requests: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .filter(|v| v["message"] == "request")
        .collect();
    assert!(requests.len() >= 3, "request log lines: {lines:?}");
    assert!(requests.iter().all(|r| r["span"]["request_id"].as_str().is_some_and(|id| !id.is_empty())));
    assert!(requests.iter().any(|r| r["span"]["route"] == paths::LOGIN));
    // A route of a later group too: the template is read after routing (D130).
    assert!(requests.iter().any(|r| r["span"]["route"] == paths::ORGANIZATIONS), "{requests:?}");
    let callers: Vec<_> = requests.iter().filter(|r| r["span"]["route"] == paths::ORGANIZATIONS).collect();
    assert_eq!(callers.len(), 3, "{callers:?}");
    assert!(callers.iter().all(|r| r["span"]["user_id"].as_str().is_some_and(|id| id.parse::<uuid::Uuid>().is_ok())));
    let all = lines.join("\n");
    for secret in [password.as_str(), "Maria-Lopez", &admin_token, "u3@example.org"] {
        assert!(!all.contains(secret), "`{secret}` appeared in the log");
    }

    // Second start: same data, no new credentials shown, the same password still works.
    let (child, again, _) = start(&dir, port).await;
    assert!(again.is_none(), "credentials are shown only once");
    assert_eq!(login(password).await.status(), StatusCode::OK);
    stop(child).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_cluster_dies_with_a_killed_haven() {
    let dir = data_dir();
    let (mut child, _, _) = start(&dir, free_port()).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let pid_file = dir.join("pg/data/postmaster.pid");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pid_file.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!pid_file.exists(), "postgres outlived a killed Haven");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn production_without_secrets_refuses_to_start() {
    let out = haven().env("HAVEN_ENV", "production").arg("serve").output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HAVEN_JWT_KEYS"), "{stderr}");
}

/// Keys beside the data they erase would be restored with every physical backup of it: in
/// production the key vault must be on another cluster, whatever its URL says (D176).
#[tokio::test]
async fn production_refuses_a_key_vault_on_the_cluster_of_the_data() {
    use crate::helpers::{BLIND_INDEX_KEY, IDENTITY_KEY_SPEC, key_spec, spawn_app, vault_url};
    let app = spawn_app().await;
    let run = haven()
        .env("HAVEN_ENV", "production")
        .env("DATABASE_URL", &app.url)
        .env("HAVEN_KEY_VAULT_URL", vault_url())
        .env("HAVEN_JWT_KEYS", key_spec())
        .env("HAVEN_IDENTITY_KEYS", IDENTITY_KEY_SPEC)
        .env("HAVEN_BLIND_INDEX_KEY", BLIND_INDEX_KEY)
        .env("HAVEN_BIND", "127.0.0.1:0")
        .arg("serve")
        .output();
    // Were it accepted, the service would start and serve until killed.
    let out =
        tokio::time::timeout(std::time::Duration::from_secs(60), run).await.expect("refused, not served").unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HAVEN_KEY_VAULT_URL") && stderr.contains("another PostgreSQL cluster"), "{stderr}");
}

#[tokio::test]
async fn invalid_settings_are_named() {
    let out = haven().env("HAVEN_ACCESS_TOKEN_TTL", "5").arg("serve").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HAVEN_ACCESS_TOKEN_TTL"));
    let out = haven().env("HAVEN_BIND", "not-an-address").arg("serve").output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bind"));
}

#[tokio::test]
async fn missing_postgresql_binaries_name_the_package_and_the_alternative() {
    let dir = data_dir();
    let out = haven()
        .env("HAVEN_DATA_DIR", &dir)
        .env("HAVEN_PG_BIN_DIR", "/nonexistent/postgresql/bin")
        .arg("serve")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HAVEN_PG_BIN_DIR") && stderr.contains("/nonexistent/postgresql/bin"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unreachable_data_directory_is_explained() {
    if !nix::unistd::geteuid().is_root() {
        // Without root the cluster runs as the caller, who can always reach the directory.
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let private = data_dir();
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = haven().env("HAVEN_DATA_DIR", private.join("data")).arg("serve").output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach") && stderr.contains("HAVEN_DATA_DIR"), "{stderr}");
    let _ = std::fs::remove_dir_all(&private);
}

#[tokio::test]
async fn serve_help_lists_every_setting() {
    let out = haven().args(["serve", "--help"]).output().await.unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in ["HAVEN_BIND", "DATABASE_URL", "HAVEN_DATA_DIR", "HAVEN_JWT_KEYS", "HAVEN_ENV", "HAVEN_PG_BIN_DIR"] {
        assert!(help.contains(var), "{var} missing from --help");
    }
}

#[tokio::test]
async fn bootstrap_creates_the_first_admin_once() {
    let url = fresh_database();
    let run = || {
        let mut cmd = haven();
        cmd.env("DATABASE_URL", &url)
            .env("HAVEN_BOOTSTRAP_PASSWORD", "steady-baobab-river-31")
            .args(["bootstrap", "--org", "Haven Host", "--email", "Root@Example.org", "--country", "NLD"])
            .stdin(Stdio::null());
        cmd
    };
    let out = run().output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = run().output().await.unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already bootstrapped"));
    // Without --org: a second host admin, who sets their own password at the console.
    let second = haven()
        .env("DATABASE_URL", &url)
        .env("HAVEN_BOOTSTRAP_PASSWORD", "quiet-tamarind-sextant-8")
        .args(["bootstrap", "--email", "second@example.org"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));

    // The admin can log in on a service using that database.
    let (address, _) = serve(test_settings(&url), &url);
    for (email, password) in
        [("root@example.org", "steady-baobab-river-31"), ("second@example.org", "quiet-tamarind-sextant-8")]
    {
        let resp = reqwest::Client::new()
            .post(format!("{address}{}", paths::LOGIN))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{email}");
    }

    // Weak passwords are refused before anything is written.
    let weak = haven()
        .env("DATABASE_URL", fresh_database())
        .env("HAVEN_BOOTSTRAP_PASSWORD", "password")
        .args(["bootstrap", "--org", "X", "--email", "x@example.org"])
        .output()
        .await
        .unwrap();
    assert!(!weak.status.success());
}

#[tokio::test]
async fn links_planted_in_the_cluster_directory_are_refused() {
    // As root, Haven changes owners inside a directory the server user controls; a link there
    // must not make it chown some other file.
    let dir = data_dir();
    let target = std::env::temp_dir().join(format!("haven-link-target-{}", uuid::Uuid::new_v4()));
    std::fs::write(&target, "x").unwrap();
    std::fs::create_dir_all(dir.join("pg")).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("pg/run")).unwrap();
    let out = haven().env("HAVEN_DATA_DIR", &dir).arg("serve").output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"), "{}", String::from_utf8_lossy(&out.stderr));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), nix::unistd::geteuid().as_raw(), "target untouched");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&target);
}

#[tokio::test]
async fn a_bad_report_plugin_file_stops_start_up_with_its_name_and_line() {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("broken.toml"),
        "id = \"x\"\ntitle = \"X\"\ndescription = \"X\"\nroles = [\"partner\"]\ndimensions = [\"home_address\"]\n",
    )
    .unwrap();
    let out = haven()
        .env("DATABASE_URL", fresh_database())
        .env("HAVEN_REPORTS_DIR", &dir)
        .arg("serve")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.toml: line 5: field `dimensions`: unknown dimension `home_address`"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each command's `--help` lists the settings it uses, and only those.
#[tokio::test]
async fn each_command_lists_only_its_own_settings() {
    let help = |command: &'static str| async move {
        let out = haven().args([command, "--help"]).output().await.unwrap();
        assert!(out.status.success(), "{command} --help");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let serve = help("serve").await;
    for flag in ["--bind", "--database-url", "--dp-rho", "--jwt-keys"] {
        assert!(serve.contains(flag), "serve lists {flag}");
    }
    let openapi = help("openapi").await;
    for flag in ["--bind", "--jwt-keys", "--database-url"] {
        assert!(!openapi.contains(flag), "openapi lists {flag}: {openapi}");
    }
    for command in ["migrate", "bootstrap", "recover-admin", "rekey", "seed"] {
        let text = help(command).await;
        assert!(text.contains("--database-url"), "{command} lists where the database is");
        for server_only in ["--bind", "--dp-rho", "--workers", "--body-limit"] {
            assert!(!text.contains(server_only), "{command} lists {server_only}");
        }
        assert!(text.lines().count() < 100, "{command} --help is {} lines", text.lines().count());
    }
}
