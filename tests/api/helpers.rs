use std::sync::{LazyLock, Mutex, OnceLock};

use base64::Engine;
use diesel_async::RunQueryDsl;
use haven::config::Settings;
use haven::db::local_cluster::{self, ClusterOptions, LocalCluster};
use haven::domain::{OrganizationKind, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::paths;

/// The password of every user the helpers create.
pub const PASSWORD: &str = "tidal-mango-lantern-42";

/// A fixed signing key so tests can forge tokens with it (or with others).
pub const KEY_SECRET: [u8; 32] = *b"haven-test-signing-key-32-bytes!";
pub const KEY_ID: &str = "test1";

/// Fixed identity keys, so tests can decrypt what is stored and rotate keys.
pub const IDENTITY_KEY_SPEC: &str = "id1:aGF2ZW4tdGVzdC1pZGVudGl0eS1rZXktMzItYnl0ZXM=";
pub const BLIND_INDEX_KEY: &str = "aGF2ZW4tdGVzdC1ibGluZC1pbmRleC1rZXktMzJieXQ=";

pub fn key_spec() -> String {
    format!("{KEY_ID}:{}", base64::engine::general_purpose::STANDARD.encode(KEY_SECRET))
}

static PASSWORD_HASH: LazyLock<String> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    std::thread::spawn(move || runtime.block_on(haven::auth::PasswordHasher::new(1).hash(PASSWORD)).unwrap())
        .join()
        .unwrap()
});

struct TestServer {
    /// URL of the server's maintenance database, for CREATE DATABASE.
    admin_url: String,
    /// Builds the URL of a database on that server.
    url_for: Box<dyn Fn(&str) -> String + Send + Sync>,
    template: String,
    /// The key vault every test's service shares: victims' data keys are addressed by random
    /// victim ids, so tests cannot collide in it.
    vault: String,
    _cluster: Option<LocalCluster>,
}

static SERVER: OnceLock<TestServer> = OnceLock::new();
static CREATE_LOCK: Mutex<()> = Mutex::new(());

/// With `DATABASE_URL`, tests use that server; otherwise a private throw-away cluster that dies
/// with the test process.
fn server() -> &'static TestServer {
    SERVER.get_or_init(|| {
        let template = format!("haven_template_{}", std::process::id());
        let server = match std::env::var("DATABASE_URL") {
            Ok(url) => {
                let base = url.split('?').next().unwrap_or(&url).to_owned();
                let query = url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
                let prefix = base.rsplit_once('/').map(|(p, _)| p.to_owned()).unwrap_or(base);
                let url_for = move |db: &str| format!("{prefix}/{db}{query}");
                TestServer {
                    admin_url: url_for("postgres"),
                    vault: url_for(&format!("haven_vault_{}", std::process::id())),
                    url_for: Box::new(url_for),
                    template: template.clone(),
                    _cluster: None,
                }
            }
            Err(_) => {
                let root = std::env::temp_dir().join(format!("haven-test-{}", std::process::id()));
                let options = ClusterOptions { root, ephemeral: true, bin_dir: None };
                let cluster = LocalCluster::start(&options).expect("start the test PostgreSQL cluster");
                let base = cluster.url("DBNAME");
                TestServer {
                    admin_url: cluster.url("postgres"),
                    vault: cluster.url(&format!("haven_vault_{}", std::process::id())),
                    url_for: Box::new(move |db: &str| base.replace("DBNAME", db)),
                    template: template.clone(),
                    _cluster: Some(cluster),
                }
            }
        };
        local_cluster::ensure_database(&server.admin_url, &server.template, None).expect("create template");
        haven::db::run_migrations(&(server.url_for)(&server.template)).expect("migrate template");
        let vault = format!("haven_vault_{}", std::process::id());
        local_cluster::ensure_database(&server.admin_url, &vault, None).expect("create the key vault");
        haven::privacy::vault::prepare(&server.vault).expect("prepare the key vault");
        server
    })
}

/// A fresh, migrated database; returns its URL.
pub fn fresh_database() -> String {
    let server = server();
    let name = format!("t_{}", Uuid::new_v4().simple());
    {
        let _guard = CREATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        local_cluster::ensure_database(&server.admin_url, &name, Some(&server.template)).expect("create test database");
    }
    (server.url_for)(&name)
}

/// A new database with nothing in it (not from the migrated template); returns its URL.
pub fn empty_database() -> String {
    let server = server();
    let name = format!("e_{}", Uuid::new_v4().simple());
    local_cluster::ensure_database(&server.admin_url, &name, None).expect("create an empty database");
    (server.url_for)(&name)
}

/// The URL of the tests' key vault.
pub fn vault_url() -> String {
    server().vault.clone()
}

/// A key vault of one test's own, for a test that rewraps or destroys every key in it.
pub fn fresh_vault() -> String {
    let server = server();
    let name = format!("v_{}", Uuid::new_v4().simple());
    local_cluster::ensure_database(&server.admin_url, &name, None).expect("create a key vault");
    let url = (server.url_for)(&name);
    haven::privacy::vault::prepare(&url).expect("prepare the key vault");
    url
}

/// The key vault at `url`, seen through `keys` (say, rotated ones).
pub fn vault_at(url: &str, keys: haven::privacy::crypto::IdentityKeyring) -> haven::privacy::vault::Vault {
    let pool = haven::db::build_pool(url, 2, std::time::Duration::from_secs(10)).expect("vault pool");
    haven::privacy::vault::Vault::new(pool, std::sync::Arc::new(keys))
}

pub fn test_settings(database_url: &str) -> Settings {
    let mut s = Settings::defaults();
    s.database_url = Some(database_url.into());
    s.key_vault_url = Some(vault_url().into());
    s.jwt_keys = Some(key_spec().into());
    s.identity_keys = Some(IDENTITY_KEY_SPEC.into());
    s.blind_index_key = Some(BLIND_INDEX_KEY.into());
    s.workers = Some(1);
    s.db_pool_size = 4;
    s.hash_concurrency = Some(2);
    s.login_per_address_per_minute = 10_000;
    s.login_per_account_burst = 1_000;
    s.lockout_threshold = 1_000;
    // The least noise the settings allow (noise cannot be turned off for guarded releases), so
    // tests can check released figures within a few noise deviations.
    s.dp_rho = 1.0;
    s.dp_allowance = 1000.0;
    s.dp_cap = 100_000.0;
    // Webhook receivers in tests listen on loopback, and retries come quickly.
    s.webhook_allow_local = true;
    s.webhook_poll_ms = 250;
    s.webhook_retry_ms = 200;
    s
}

pub struct TestApp {
    pub url: String,
    pub address: String,
    pub client: reqwest::Client,
    pub pool: haven::db::Pool,
    /// Where the metrics are served (apart from the API).
    pub metrics_address: String,
    /// The host organisation and its admin, made for every test.
    pub host_org: Uuid,
    pub host_admin: TestUser,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
}

/// A signed-in person making requests as themselves: their account and the access token they
/// hold, so a test never passes a bare token around.
#[derive(Clone)]
pub struct Caller<'a> {
    app: &'a TestApp,
    pub user: TestUser,
    pub token: String,
}

impl<'a> Caller<'a> {
    /// The same person, with the same token, talking to another Haven process.
    pub fn at<'b>(&self, app: &'b TestApp) -> Caller<'b> {
        Caller { app, user: self.user.clone(), token: self.token.clone() }
    }

    /// The same person holding another token (a refreshed or a forged one).
    pub fn with_token(&self, token: impl Into<String>) -> Caller<'a> {
        Caller { app: self.app, user: self.user.clone(), token: token.into() }
    }

    pub fn id(&self) -> Uuid {
        self.user.id
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.app.request(method, path, Some(&self.token), body).await
    }

    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        self.app.request_with(method, path, Some(&self.token), body, headers).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Response {
        self.request(Method::PUT, path, Some(body)).await
    }

    /// A PATCH with `If-Match: version`.
    pub async fn patch(&self, path: &str, version: &str, body: Value) -> Response {
        self.request_with(Method::PATCH, path, Some(body), &[("if-match", version)]).await
    }
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and type slug.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, slug: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "body: {}", self.text);
        let body = self.json();
        assert_eq!(body["type"], format!("urn:haven:problem:{slug}"), "body: {}", self.text);
        assert_eq!(body["status"], status);
        assert!(body["title"].is_string() && body["detail"].is_string());
        body
    }
}

/// `haven serve` as its own process on `port`, against the test app's database and keys, with
/// `env` on top. Its log goes to `dir` with the extension `log` (see [`wait_ready`]).
pub fn spawn_binary(app: &TestApp, port: u16, dir: &std::path::Path, env: &[(&str, &str)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_haven"));
    command
        .arg("serve")
        .env("DATABASE_URL", &app.url)
        .env("HAVEN_KEY_VAULT_URL", vault_url())
        .env("HAVEN_DATA_DIR", dir)
        .env("HAVEN_BIND", format!("127.0.0.1:{port}"))
        .env("HAVEN_JWT_KEYS", key_spec())
        .env("HAVEN_IDENTITY_KEYS", IDENTITY_KEY_SPEC)
        .env("HAVEN_BLIND_INDEX_KEY", BLIND_INDEX_KEY)
        .env("HAVEN_WORKERS", "2")
        .env("HAVEN_LOG", "warn")
        .env("HAVEN_LOG_FORMAT", "pretty")
        .env("HAVEN_METRICS_BIND", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.with_extension("log")).expect("a log file"))
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("start haven")
}

/// Waits for `/readyz`; on failure, shows the log of the process started with `dir`.
pub async fn wait_ready(client: &reqwest::Client, base: &str, dir: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Ok(resp) = client.get(format!("{base}/readyz")).send().await
            && resp.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
    panic!("haven at {base} did not become ready:\n{log}");
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Serves the application on `url` with `settings` on a free loopback port, and its metrics on
/// another; returns the API's address and pool.
pub fn serve(settings: Settings, url: &str) -> (String, haven::db::Pool) {
    let (address, pool, _) = serve_with_metrics(settings, url);
    (address, pool)
}

/// As [`serve`], also returning the metrics address. Built as `haven serve` builds it
/// (`startup::Application`), on free loopback ports.
pub fn serve_with_metrics(mut settings: Settings, url: &str) -> (String, haven::db::Pool, String) {
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.metrics_bind = "127.0.0.1:0".into();
    let keys = haven::startup::keys(&settings).expect("keys");
    let vault = secrecy::ExposeSecret::expose_secret(settings.key_vault_url.as_ref().expect("a key vault")).to_owned();
    let app = haven::startup::Application::build(settings, url, &vault, keys).expect("application");
    let pool = app.state().pool.clone();
    let address = format!("http://{}", app.address().unwrap());
    let metrics_address = format!("http://{}", app.metrics_address().unwrap());
    tokio::spawn(app.run_until_stopped());
    (address, pool, metrics_address)
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(fresh_database(), adjust).await
}

/// As [`spawn_app_with`], on the migrated database at `url` (say, on a cluster of the test's own).
pub async fn spawn_app_on(url: String, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(&url);
    adjust(&mut settings);
    let (address, pool, metrics_address) = serve_with_metrics(settings, &url);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut app = TestApp {
        url,
        address,
        client,
        pool,
        metrics_address,
        host_org: Uuid::nil(),
        host_admin: TestUser { id: Uuid::nil(), email: String::new() },
    };
    app.host_org = app.create_org_of_kind("Host", OrganizationKind::Host, None).await;
    app.host_admin = app.create_user(app.host_org, Role::Admin).await;
    app
}

impl TestApp {
    /// Another Haven process on this app's database: `haven serve` run as a process of its own,
    /// with the same keys and `env` on top. Returns the process (killed when dropped) and a
    /// `TestApp` that talks to it (same database, same host organisation).
    pub async fn another_process(&self, env: &[(&str, &str)]) -> (tokio::process::Child, TestApp) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("hp-{}", &Uuid::new_v4().simple().to_string()[..8]));
        let child = spawn_binary(self, port, &dir, env);
        let address = format!("http://127.0.0.1:{port}");
        wait_ready(&self.client, &address, &dir).await;
        let other = TestApp {
            url: self.url.clone(),
            address,
            client: self.client.clone(),
            pool: self.pool.clone(),
            metrics_address: String::new(),
            host_org: self.host_org,
            host_admin: self.host_admin.clone(),
        };
        (child, other)
    }

    pub async fn create_org_of_kind(&self, name: &str, kind: OrganizationKind, country: Option<&str>) -> Uuid {
        let mut conn = self.pool.get().await.unwrap();
        haven::orgs::insert(&mut conn, name, kind, country, true).await.unwrap().id
    }

    /// An NGO with a unique name.
    pub async fn create_org(&self) -> Uuid {
        let name = format!("NGO {}", &Uuid::new_v4().simple().to_string()[..8]);
        self.create_org_of_kind(&name, OrganizationKind::Ngo, Some("SEN")).await
    }

    /// A user with password [`PASSWORD`], inserted directly.
    pub async fn create_user(&self, org: Uuid, role: Role) -> TestUser {
        let email = format!("{}-{}@example.org", role, &Uuid::new_v4().simple().to_string()[..10]);
        let mut conn = self.pool.get().await.unwrap();
        let user = haven::users::insert(
            &mut conn,
            org,
            &email,
            role,
            haven::users::NewCredential::Password(Some(&PASSWORD_HASH)),
        )
        .await
        .unwrap();
        TestUser { id: user.id, email }
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        self.request_with(method, path, token, body, &[]).await
    }

    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self.client.request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request sent");
        Response { status: resp.status(), headers: resp.headers().clone(), text: resp.text().await.unwrap() }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn login_raw(&self, email: &str, password: &str) -> Response {
        self.post(paths::LOGIN, None, json!({ "email": email, "password": password })).await
    }

    /// Logs in and returns (access token, refresh token).
    pub async fn login(&self, user: &TestUser) -> (String, String) {
        let resp = self.login_raw(&user.email, PASSWORD).await;
        assert_eq!(resp.status, StatusCode::OK, "login failed: {}", resp.text);
        let body = resp.json();
        (body["access_token"].as_str().unwrap().to_owned(), body["refresh_token"].as_str().unwrap().to_owned())
    }

    /// Redeems an enrolment or reset token with `password`; returns the answer's body.
    pub async fn enrol(&self, token: &str, password: &str) -> Value {
        let resp = self.post(paths::ENROL, None, json!({ "token": token, "password": password })).await;
        assert_eq!(resp.status, StatusCode::OK, "enrolment failed: {}", resp.text);
        resp.json()
    }

    /// An admin resets `user`'s password and the person sets `password` with the token.
    pub async fn reset_and_enrol(&self, admin: &Caller<'_>, user: Uuid, password: &str) -> Value {
        let resp = admin.post(&paths::user_reset(user), json!({})).await;
        assert_eq!(resp.status, StatusCode::OK, "reset failed: {}", resp.text);
        self.enrol(resp.json()["enrolment"]["token"].as_str().unwrap(), password).await
    }

    /// A new user of `role` in `org`, signed in.
    pub async fn caller(&self, org: Uuid, role: Role) -> Caller<'_> {
        let user = self.create_user(org, role).await;
        self.sign_in(&user).await
    }

    /// `user`, signed in with [`PASSWORD`].
    pub async fn sign_in(&self, user: &TestUser) -> Caller<'_> {
        self.sign_in_with(user, PASSWORD).await
    }

    /// `user`, signed in with a password of their own choosing.
    pub async fn sign_in_with(&self, user: &TestUser, password: &str) -> Caller<'_> {
        let resp = self.login_raw(&user.email, password).await;
        assert_eq!(resp.status, StatusCode::OK, "login failed: {}", resp.text);
        let token = resp.json()["access_token"].as_str().unwrap().to_owned();
        Caller { app: self, user: user.clone(), token }
    }

    /// The host organisation's admin, signed in.
    pub async fn host_admin(&self) -> Caller<'_> {
        self.sign_in(&self.host_admin).await
    }

    pub async fn count(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.unwrap();
        let c: Count =
            diesel::sql_query(format!("SELECT count(*) AS n FROM {table}")).get_result(&mut conn).await.unwrap();
        c.n
    }

    /// Audit events with this action, as JSON, read straight from the table.
    pub async fn audit_actions(&self) -> Vec<(String, String)> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            action: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            outcome: String,
        }
        let mut conn = self.pool.get().await.unwrap();
        let rows: Vec<Row> =
            diesel::sql_query("SELECT action, outcome FROM audit_events ORDER BY id").load(&mut conn).await.unwrap();
        rows.into_iter().map(|r| (r.action, r.outcome)).collect()
    }
}
