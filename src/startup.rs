//! Wiring: the database (given or private), secrets, shared state and the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config, SwaggerUi};

use secrecy::{ExposeSecret, SecretString};

use crate::auth::{Keyring, LoginThrottle, PasswordHasher};
use crate::config::{Environment, Settings};
use crate::db::local_cluster::{self, ClusterOptions, LocalCluster};
use crate::openapi::route_table::RouteTable;
use crate::privacy::crypto::IdentityKeyring;
use crate::state::AppState;
use crate::telemetry::{HavenRootSpan, Metrics};

pub const LOCAL_DATABASE: &str = "haven";
/// The key vault's database in the private cluster.
pub const LOCAL_VAULT: &str = "haven_vault";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Cluster(#[from] local_cluster::ClusterError),
    #[error(transparent)]
    Db(#[from] crate::db::DbSetupError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("invalid JWT keys: {0}")]
    Keys(String),
    #[error("cannot listen on {addr}: {detail}")]
    Bind { addr: String, detail: String },
    #[error(transparent)]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
    #[error("{0}")]
    Task(String),
}

/// The database in use; holds the private cluster (if any) until dropped.
pub struct Database {
    pub url: String,
    /// The key vault (see `privacy::vault`); none in production until HAVEN_KEY_VAULT_URL is set,
    /// which only the commands that touch identities require.
    pub vault_url: Option<String>,
    pub cluster: Option<LocalCluster>,
}

impl Database {
    pub fn vault_url(&self) -> Result<&str, StartupError> {
        self.vault_url.as_deref().ok_or_else(|| StartupError::Task("HAVEN_KEY_VAULT_URL is required".into()))
    }
}

/// The key vault, for a command run outside the server (`rekey`, `seed`, `import`).
pub fn vault(
    database: &Database,
    keys: IdentityKeyring,
    pool_size: usize,
) -> Result<crate::privacy::vault::Vault, StartupError> {
    let pool = crate::db::build_pool(database.vault_url()?, pool_size, Duration::from_secs(30))?;
    Ok(crate::privacy::vault::Vault::new(pool, Arc::new(keys)))
}

/// `url` with its database name replaced by `name`, and the URL of the same server's `postgres`
/// database: `postgres://u:p@h:5432/haven?x=y` -> (`.../haven_vault?x=y`, `.../postgres?x=y`).
fn sibling_database(url: &str, name: &str) -> Option<(String, String)> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://")?;
    let (authority, _) = rest.rsplit_once('/')?;
    Some((format!("{scheme}://{authority}/{name}{query}"), format!("{scheme}://{authority}/postgres{query}")))
}

/// The key vault's URL, its table created: HAVEN_KEY_VAULT_URL, else the private cluster's
/// vault database, else (outside production) `<database>_vault` beside DATABASE_URL's.
fn prepare_vault(
    settings: &Settings,
    url: &str,
    cluster: Option<&LocalCluster>,
) -> Result<Option<String>, StartupError> {
    let vault = match (&settings.key_vault_url, cluster) {
        // Keys beside the data they erase would be restored with every backup of it.
        (Some(given), _) if given.expose_secret() == url => {
            return Err(StartupError::Task("HAVEN_KEY_VAULT_URL must name another database than DATABASE_URL".into()));
        }
        (Some(given), _) => {
            let given = given.expose_secret().to_owned();
            // Another name for the same cluster (a host alias, another database in it) would put
            // the keys in every physical backup of the data they erase.
            let production = settings.env == Environment::Production;
            let clusters = crate::privacy::vault::cluster_of(&given)
                .and_then(|vault| crate::privacy::vault::cluster_of(url).map(|data| (vault, data)));
            match clusters {
                Ok((vault, data)) if vault == data && production => {
                    return Err(StartupError::Task(
                        "HAVEN_KEY_VAULT_URL must name a database on another PostgreSQL cluster than DATABASE_URL \
                         (the two report one system identifier: the same cluster, or one made from the other's \
                         backup): a physical backup of a cluster holds every database in it"
                            .into(),
                    ));
                }
                Ok((vault, data)) if vault == data => {
                    tracing::warn!(
                        "the key vault is on the cluster of the case data; give it one of its own in production"
                    )
                }
                Ok(_) => {}
                // Production starts only once it knows the keys are apart from the data.
                Err(e) if production => return Err(e.into()),
                Err(error) => tracing::warn!(%error, "could not tell whether the key vault has a cluster of its own"),
            }
            given
        }
        (None, Some(cluster)) => {
            local_cluster::ensure_database(&cluster.url("postgres"), LOCAL_VAULT, None)?;
            cluster.url(LOCAL_VAULT)
        }
        (None, None) if settings.env == Environment::Production => return Ok(None),
        (None, None) => {
            let database = url.split('?').next().and_then(|b| b.rsplit_once('/')).map(|(_, d)| d).unwrap_or("haven");
            let name = format!("{database}_vault");
            let (vault, admin) = sibling_database(url, &name).ok_or_else(|| {
                StartupError::Task("cannot derive the key vault from DATABASE_URL: set HAVEN_KEY_VAULT_URL".into())
            })?;
            local_cluster::ensure_database(&admin, &name, None).map_err(|e| {
                StartupError::Task(format!(
                    "cannot create the key vault database `{name}` ({e}): set HAVEN_KEY_VAULT_URL"
                ))
            })?;
            tracing::warn!(database = %name, "the key vault shares the database server; give it one of its own in production");
            vault
        }
    };
    crate::privacy::vault::prepare(&vault)?;
    Ok(Some(vault))
}

/// Connects to `DATABASE_URL` or starts the private cluster, then applies migrations.
/// Blocking: call it before starting the async runtime.
pub fn prepare_database(settings: &Settings) -> Result<Database, StartupError> {
    let (url, cluster) = match &settings.database_url {
        Some(url) => (url.expose_secret().to_owned(), None),
        None => {
            local_cluster::prepare_data_dir(&settings.data_dir)?;
            let options = ClusterOptions {
                root: settings.data_dir.join("pg"),
                ephemeral: false,
                bin_dir: settings.pg_bin_dir.clone(),
            };
            let cluster = LocalCluster::start(&options)?;
            local_cluster::ensure_database(&cluster.url("postgres"), LOCAL_DATABASE, None)?;
            match cluster.started_here() {
                true => tracing::info!(data_dir = %settings.data_dir.display(), "private PostgreSQL cluster started"),
                false => {
                    tracing::info!(data_dir = %settings.data_dir.display(), "using the private PostgreSQL cluster another Haven process runs")
                }
            }
            (cluster.url(LOCAL_DATABASE), Some(cluster))
        }
    };
    let applied = crate::db::run_migrations(&url)?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "migrations applied");
    }
    let vault_url = prepare_vault(settings, &url, cluster.as_ref())?;
    Ok(Database { url, vault_url, cluster })
}

/// The keys of the service: from settings, or (local mode only, for whatever settings do not
/// give) from the secrets file generated in the data directory.
pub struct Keys {
    pub jwt: Keyring,
    pub identity: IdentityKeyring,
}

pub fn keys(settings: &Settings) -> Result<Keys, StartupError> {
    let mut local = None;
    let mut from_file =
        |pick: fn(&crate::secrets::LocalSecrets) -> String, name: &str| -> Result<String, StartupError> {
            if settings.env != Environment::Local {
                return Err(StartupError::Keys(format!("{name} is required in production")));
            }
            if local.is_none() {
                let (secrets, created) = crate::secrets::load_or_create(&settings.data_dir)?;
                if created {
                    tracing::warn!(
                        path = %crate::secrets::path(&settings.data_dir).display(),
                        "generated local secrets (JWT signing key, identity encryption and index keys) with 0600 \
                         permissions; set HAVEN_JWT_KEYS, HAVEN_IDENTITY_KEYS and HAVEN_BLIND_INDEX_KEY in production"
                    );
                }
                local = Some(secrets);
            }
            Ok(pick(local.as_ref().expect("loaded")))
        };
    let jwt_spec = match &settings.jwt_keys {
        Some(spec) => spec.expose_secret().to_owned(),
        None => from_file(|s| s.jwt_keys.clone(), "HAVEN_JWT_KEYS")?,
    };
    let identity_spec = match &settings.identity_keys {
        Some(spec) => spec.expose_secret().to_owned(),
        None => from_file(|s| s.identity_keys.clone(), "HAVEN_IDENTITY_KEYS")?,
    };
    let index_key = match &settings.blind_index_key {
        Some(key) => key.expose_secret().to_owned(),
        None => from_file(|s| s.blind_index_key.clone(), "HAVEN_BLIND_INDEX_KEY")?,
    };
    Ok(Keys {
        jwt: Keyring::parse(&jwt_spec, &settings.jwt_issuer, &settings.jwt_audience, settings.access_token_ttl)
            .map_err(StartupError::Keys)?,
        identity: IdentityKeyring::parse(&identity_spec, &index_key).map_err(StartupError::Keys)?,
    })
}

/// Connections the background tasks (the rollup warm-up, webhook deliveries, retention) share,
/// to each database: they take turns rather than take connections from requests.
const BACKGROUND_CONNECTIONS: usize = 4;

/// What an HTTP worker needs to open pools of its own, to the database and the key vault (D131).
/// A pooled connection is driven by a task on the runtime that opened it: with pools shared by
/// every worker, a worker's query went through whichever thread had opened the connection (often
/// the main one, which opened them for the warm-up), a wake-up across threads each way.
#[derive(Clone)]
struct WorkerPools {
    url: SecretString,
    vault_url: SecretString,
    /// `HAVEN_DB_POOL_SIZE` shared among the workers, at least two each.
    size: usize,
    timeout: Duration,
    /// `HAVEN_REQUEST_TIMEOUT`: what a statement or an idle transaction of a request may take.
    deadline: Duration,
}

impl WorkerPools {
    fn new(settings: &Settings, url: &str, vault_url: &str) -> WorkerPools {
        let workers = settings.workers();
        WorkerPools {
            url: SecretString::from(url),
            vault_url: SecretString::from(vault_url),
            size: settings.db_pool_size.div_ceil(workers).max(2),
            timeout: Duration::from_millis(settings.db_timeout_ms),
            deadline: Duration::from_secs(settings.request_timeout),
        }
    }

    /// `shared` with this worker's own pools. Called on the worker's thread, also when actix
    /// starts a worker again after a failure, which then gets pools of its own too. The same URLs
    /// built pools at start, so this cannot fail but for a bug; then the worker shares the
    /// background pools rather than not serving.
    fn state_for_worker(&self, shared: &AppState) -> AppState {
        let build = |url: &SecretString| {
            crate::db::build_request_pool(url.expose_secret(), self.size, self.timeout, self.deadline)
        };
        match (build(&self.url), build(&self.vault_url)) {
            (Ok(pool), Ok(vault)) => AppState {
                pool,
                vault: crate::privacy::vault::Vault::new(vault, shared.identity_keys.clone()),
                ..shared.clone()
            },
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "an HTTP worker shares the background pools");
                shared.clone()
            }
        }
    }
}

fn build_state(settings: Settings, database_url: &str, vault_url: &str, keys: Keys) -> Result<AppState, StartupError> {
    let timeout = Duration::from_millis(settings.db_timeout_ms);
    // The pools of the background tasks; the HTTP workers get their own (`WorkerPools`).
    let background = BACKGROUND_CONNECTIONS.min(settings.db_pool_size);
    let pool = crate::db::build_pool(database_url, background, timeout)?;
    let identity_keys = Arc::new(keys.identity);
    let vault = crate::privacy::vault::Vault::new(
        crate::db::build_pool(vault_url, background, timeout)?,
        identity_keys.clone(),
    );
    let replica = match &settings.reports_database_url {
        Some(url) => Some(Arc::new(crate::reports::replica::Replica::new(
            crate::db::build_pool(url.expose_secret(), settings.db_pool_size, timeout)?,
            Duration::from_millis(settings.replica_max_lag_ms),
        ))),
        None => None,
    };
    let reports = crate::reports::Registry::load(settings.reports_dir.as_deref()).map_err(StartupError::Task)?;
    let mut document = crate::openapi::document_for(&reports);
    crate::openapi::deployment_limits(&mut document, &settings);
    let routes = RouteTable::from_openapi(&document);
    crate::openapi::validate::warm().map_err(StartupError::Task)?;
    Ok(AppState {
        pool,
        replica,
        hasher: Arc::new(PasswordHasher::new(settings.hash_concurrency())),
        throttle: Arc::new(LoginThrottle::new(
            settings.login_per_address_per_minute,
            settings.login_per_account_burst,
            identity_keys.derive("login-throttle"),
        )),
        sessions: Arc::new(crate::auth::session_cache::SessionCache::new(Duration::from_millis(
            settings.session_cache_ms,
        ))),
        keyring: Arc::new(keys.jwt),
        bounding_key: Arc::new(crate::reports::counting::BoundingKey::new(
            identity_keys.derive(crate::reports::counting::BOUNDING_PURPOSE),
        )),
        identity_keys,
        vault,
        metrics: Arc::new(Metrics::new()),
        openapi_json: Arc::new(crate::openapi::to_json(&document)),
        report_catalogue: Arc::new(crate::reports::listing::catalogues(&reports, &settings)),
        reports: Arc::new(reports),
        routes: Arc::new(routes),
        settings: Arc::new(settings),
    })
}

async fn openapi_json(state: web::Data<AppState>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().content_type("application/json").body(state.openapi_json.as_str().to_owned())
}

/// A Haven built and ready to serve: what `haven serve` and the tests both start, so the tests run
/// what ships (state, listeners, the rollup warm-up).
pub struct Application {
    state: AppState,
    /// How each HTTP worker opens its own pools.
    pools: WorkerPools,
    api: TcpListener,
    metrics: Option<TcpListener>,
}

impl Application {
    /// Builds the shared state on the database at `url`, binds the API (`HAVEN_BIND`) and metrics
    /// (`HAVEN_METRICS_BIND`) addresses, starts warming the report rollups in the background,
    /// starts sending webhook deliveries and handing freed heap pages back to the system.
    /// Call it inside the runtime that will serve.
    pub fn build(settings: Settings, url: &str, vault_url: &str, keys: Keys) -> Result<Application, StartupError> {
        let bind = |addr: std::net::SocketAddr, name: &str| {
            TcpListener::bind(addr)
                .map_err(|e| StartupError::Bind { addr: format!("{addr}{name}"), detail: e.to_string() })
        };
        let api = bind(settings.bind, "")?;
        let metrics = settings.metrics_addr()?.map(|addr| bind(addr, " (HAVEN_METRICS_BIND)")).transpose()?;
        let state = build_state(settings, url, vault_url, keys)?;
        #[cfg(feature = "benchmark-twin")]
        if crate::benchmark_twin::enabled() {
            tracing::warn!(
                "benchmark build: GET /api/v1/reports with X-Haven-Benchmark-Twin: 1 answers without authentication"
            );
        }
        let (pool, reports, key) = (state.pool.clone(), state.reports.clone(), state.bounding_key.clone());
        tokio::spawn(async move { crate::reports::rollup::warm(&pool, &reports, &key).await });
        let worker = crate::webhooks::delivery::Worker::new(
            state.pool.clone(),
            state.identity_keys.clone(),
            std::time::Duration::from_millis(state.settings.webhook_poll_ms),
            std::time::Duration::from_millis(state.settings.webhook_retry_ms),
            state.settings.webhook_allow_local,
        )
        .map_err(StartupError::Task)?;
        tokio::spawn(worker.supervise());
        tokio::spawn(crate::memory::give_back_freed(crate::memory::TRIM_EVERY));
        if state.settings.session_cache_ms > 0 {
            tokio::spawn(crate::auth::revocations::listen(url.to_owned(), state.sessions.clone(), state.pool.clone()));
        }
        if state.settings.retention_interval_min > 0 {
            let every = std::time::Duration::from_secs(state.settings.retention_interval_min * 60);
            tokio::spawn(crate::retention::supervise(state.pool.clone(), state.vault.clone(), every));
        }
        let pools = WorkerPools::new(&state.settings, url, vault_url);
        Ok(Application { state, pools, api, metrics })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Where the API listens (the port chosen when the setting asked for port 0).
    pub fn address(&self) -> std::io::Result<std::net::SocketAddr> {
        self.api.local_addr()
    }

    /// Where the metrics are served, when they are.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().and_then(|m| m.local_addr().ok())
    }

    /// Serves until SIGINT/SIGTERM; the API finishes its in-flight requests, then metrics stop.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let metrics = match self.metrics {
            Some(listener) => {
                let server = run_metrics(&self.state, listener)?;
                let handle = server.handle();
                tokio::spawn(server);
                Some(handle)
            }
            None => None,
        };
        let addr = self.api.local_addr().map(|a| a.to_string()).unwrap_or_default();
        run(self.state, self.pools, self.api)?.await.map_err(|e| StartupError::Bind { addr, detail: e.to_string() })?;
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        Ok(())
    }
}

/// Serves Prometheus metrics alone on `listener` (`HAVEN_METRICS_BIND`), apart from the API: an
/// operator scrapes it on loopback or a private network, and it is never reachable where the API is.
fn run_metrics(state: &AppState, listener: TcpListener) -> Result<Server, StartupError> {
    let metrics = web::Data::from(state.metrics.clone());
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .service(crate::ops::metrics)
            .wrap(from_fn(crate::hardening::headers))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(crate::error::ApiError::RouteNotFound)
            }))
    })
    .workers(1)
    // Stopped by whoever runs it, after the API has finished its in-flight requests: two servers
    // reacting to the same SIGTERM cut the API's graceful shutdown short.
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(|e| StartupError::Bind { addr, detail: e.to_string() })?;
    Ok(server.run())
}

/// Starts serving on `listener`; the returned server stops gracefully on SIGINT/SIGTERM,
/// finishing in-flight requests within the shutdown timeout.
fn run(state: AppState, pools: WorkerPools, listener: TcpListener) -> Result<Server, StartupError> {
    let workers = state.settings.workers();
    let shutdown = state.settings.shutdown_timeout;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    // The request metrics, on their own: the middleware that records them needs nothing else.
    let metrics: web::Data<Metrics> = web::Data::from(state.metrics.clone());
    // And the route templates, for a request no route answered (telemetry::observe).
    let routes: web::Data<RouteTable> = web::Data::from(state.routes.clone());
    let server = HttpServer::new(move || {
        let data = web::Data::new(pools.state_for_worker(&state));
        let (app, _) = App::new()
            .app_data(data.clone())
            .app_data(metrics.clone())
            .app_data(routes.clone())
            .app_data(web::PathConfig::default().error_handler(|_, req| crate::routes::malformed_path(req).into()))
            .app_data(web::QueryConfig::default().error_handler(|_, _| {
                crate::error::ApiError::BadRequest("The query string is malformed.".into()).into()
            }))
            .app_data(web::PayloadConfig::new(data.settings.body_limit))
            .app_data(web::JsonConfig::default().limit(data.settings.body_limit).error_handler(|_, _| {
                crate::error::ApiError::BadRequest("The body is not valid JSON for this operation.".into()).into()
            }))
            .wrap(from_fn(crate::deadline::enforce))
            .wrap(from_fn(crate::hardening::headers))
            // Responses can hold identities: no browser, proxy or client cache may keep them.
            .wrap(
                actix_web::middleware::DefaultHeaders::new().add((actix_web::http::header::CACHE_CONTROL, "no-store")),
            )
            .wrap(from_fn(crate::telemetry::observe))
            .wrap(TracingLogger::<HavenRootSpan>::new())
            .into_utoipa_app()
            .configure(crate::routes::configure)
            .split_for_parts();
        app.service(
            web::resource(crate::routes::OPENAPI_PATH)
                .get(openapi_json)
                .default_service(web::to(crate::routes::fallback)),
        )
        .service(SwaggerUi::new("/docs/{_:.*}").config(Config::new(["/openapi.json"]).try_it_out_enabled(true)))
        .service(web::redirect("/docs", "/docs/"))
        .configure(crate::console::configure)
        .default_service(web::to(crate::routes::fallback))
    })
    .shutdown_timeout(shutdown)
    // A client must send its request head within 5 s and is dropped 1 s after its connection
    // shuts down: slow or silent clients cannot hold connections open for long.
    .client_request_timeout(Duration::from_secs(5))
    .client_disconnect_timeout(Duration::from_secs(1))
    .workers(workers)
    .listen(listener)
    .map_err(|e| StartupError::Bind { addr: addr.clone(), detail: e.to_string() })?;
    Ok(server.run())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_vault_sits_beside_the_database() {
        let (vault, admin) =
            super::sibling_database("postgres://u:p@db:5432/haven?sslmode=disable", "haven_vault").unwrap();
        assert_eq!(vault, "postgres://u:p@db:5432/haven_vault?sslmode=disable");
        assert_eq!(admin, "postgres://u:p@db:5432/postgres?sslmode=disable");
        let (vault, _) = super::sibling_database("postgres:///t1?host=%2Ftmp&port=5", "t1_vault").unwrap();
        assert_eq!(vault, "postgres:///t1_vault?host=%2Ftmp&port=5");
        assert!(super::sibling_database("not a url", "x").is_none());
    }
}
