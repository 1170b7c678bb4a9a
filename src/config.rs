//! Settings: every one has a flag and a `HAVEN_*` variable (`haven serve --help` lists them all;
//! each other command lists the few it uses), and they
//! are validated once at start so a bad value is a clear message, not a failure at 3 a.m.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(
    name = "haven",
    version,
    about = "Haven: case records and anonymised statistics for organisations that assist victims of human trafficking",
    long_about = None
)]
pub struct Cli {
    /// Without a command, `serve` with its settings from the environment.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the HTTP API (the default).
    Serve(Settings),
    /// Apply the embedded database migrations and exit.
    Migrate(MachineSettings),
    /// Create the host organisation and its first admin (`--org`), or add a host admin.
    Bootstrap(BootstrapArgs),
    /// Give a host admin who lost their password a single-use enrolment token (audited).
    RecoverAdmin(RecoverArgs),
    /// Print the OpenAPI document (JSON) on standard output.
    Openapi,
    /// Re-encrypt identities, notes and reasons under the newest identity key (resumable).
    Rekey(RekeyArgs),
    /// Fill the database with realistic, entirely fictional records.
    Seed(SeedArgs),
    /// Import cases from an HTCDS v2.0 file (CSV or XLSX) into a caseworker's organisation.
    Import(ImportArgs),
    /// Apply every organisation's retention schedule now (the server also does, every
    /// HAVEN_RETENTION_INTERVAL_MIN minutes), or with --dry-run list what it would erase.
    Retention(RetentionArgs),
}

impl Command {
    /// The settings the command runs with: its own flags and environment, the rest from the
    /// environment and defaults.
    pub fn settings(&self) -> Settings {
        match self {
            Command::Serve(settings) => settings.clone(),
            Command::Migrate(machine) => Settings::with_machine(machine.clone()),
            Command::Bootstrap(args) => Settings::with_machine(args.machine.clone()),
            Command::RecoverAdmin(args) => Settings::with_machine(args.machine.clone()),
            Command::Rekey(args) => Settings::with_machine(args.machine.clone()),
            Command::Seed(args) => Settings::with_machine(args.machine.clone()),
            Command::Import(args) => Settings::with_machine(args.machine.clone()),
            Command::Retention(args) => Settings::with_machine(args.machine.clone()),
            Command::Openapi => Settings::defaults(),
        }
    }
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Name of the host organisation (the one that runs this deployment). Without it, adds a
    /// further host admin to the existing host organisation: a second person from the start, who
    /// approves what the first requests.
    #[arg(long)]
    pub org: Option<String>,
    /// Email address of the admin. The password comes from HAVEN_BOOTSTRAP_PASSWORD or a prompt.
    #[arg(long)]
    pub email: String,
    /// ISO 3166-1 alpha-3 country of the host organisation (optional).
    #[arg(long)]
    pub country: Option<String>,
    #[command(flatten)]
    pub machine: MachineSettings,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Email address of the host admin. Their password stops working, their sessions end, and a
    /// single-use enrolment token is printed once: they set a new password with it
    /// (`POST /api/v1/auth/enrol`). Recorded in the host organisation's audit log.
    #[arg(long)]
    pub email: String,
    #[command(flatten)]
    pub machine: MachineSettings,
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Also recompute every blind index (after HAVEN_BLIND_INDEX_KEY changed).
    #[arg(long)]
    pub reindex: bool,
    #[command(flatten)]
    pub machine: MachineSettings,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The HTCDS file: `.csv`, or `.xlsx` (its first sheet).
    pub file: std::path::PathBuf,
    /// The caseworker the cases are imported as (an enabled, approved caseworker; the audit log
    /// names them).
    #[arg(long)]
    pub caseworker: String,
    /// Check every row and report, writing nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub machine: MachineSettings,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// List the cases that are due (organisation, case number, when closed), erasing nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub machine: MachineSettings,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// How many victims to create.
    #[arg(long, default_value_t = 1000)]
    pub victims: u64,
    /// Seed of the random generator: the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub rng_seed: u64,
    /// How many organisations to spread the victims over.
    #[arg(long, default_value_t = 12)]
    pub organizations: u32,
    #[command(flatten)]
    pub machine: MachineSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// Development and evaluation: secrets are generated and kept in the data directory.
    Local,
    /// Secrets and the database must be given explicitly.
    Production,
}

/// How often privacy allowances renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BudgetPeriod {
    Month,
    Quarter,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// What every command that works on the database needs: where it is, the keys, and the logs.
#[derive(Debug, Clone, Args)]
pub struct MachineSettings {
    /// Deployment mode.
    #[arg(long, env = "HAVEN_ENV", value_enum, default_value = "local")]
    pub env: Environment,

    /// PostgreSQL URL. Without it Haven runs its own private cluster in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,

    /// PostgreSQL URL of the key vault, which holds each victim's data key apart from the case
    /// data so that erasure reaches backups. In production give it a PostgreSQL cluster of its own,
    /// with short-lived backups: a physical backup of a cluster holds every database in it.
    /// Default: the private cluster's `haven_vault`, or, with DATABASE_URL outside production, a
    /// database named after it with `_vault` on the same server. Never DATABASE_URL itself.
    #[arg(long, env = "HAVEN_KEY_VAULT_URL", hide_env_values = true)]
    pub key_vault_url: Option<SecretString>,

    /// Directory for the private PostgreSQL cluster and the locally generated secrets.
    #[arg(long, env = "HAVEN_DATA_DIR", default_value = ".haven")]
    pub data_dir: PathBuf,

    /// Directory holding the PostgreSQL server binaries (initdb, postgres) for the private
    /// cluster; default: the newest /usr/lib/postgresql/*/bin, then PATH.
    #[arg(long, env = "HAVEN_PG_BIN_DIR")]
    pub pg_bin_dir: Option<PathBuf>,

    /// JWT signing keys: `kid:base64key[:retired_unix_time]`, comma-separated, the first signs.
    /// A retired key verifies tokens until they expire, then nothing.
    #[arg(long, env = "HAVEN_JWT_KEYS", hide_env_values = true)]
    pub jwt_keys: Option<SecretString>,

    /// Identity encryption keys: `kid:base64key` (32 bytes each), comma-separated; the first
    /// encrypts, the others still decrypt until `haven rekey` has moved everything to the first.
    #[arg(long, env = "HAVEN_IDENTITY_KEYS", hide_env_values = true)]
    pub identity_keys: Option<SecretString>,

    /// Key of the blind indexes used for exact-match search (base64, 32 bytes). Changing it
    /// requires `haven rekey` to recompute the indexes.
    #[arg(long, env = "HAVEN_BLIND_INDEX_KEY", hide_env_values = true)]
    pub blind_index_key: Option<SecretString>,

    /// Log format.
    #[arg(long, env = "HAVEN_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "HAVEN_LOG", default_value = "info")]
    pub log: String,
}

/// Everything `haven serve` reads: the machine's settings and the server's own. Other commands
/// take only `MachineSettings` (their `--help` lists only what they use); the rest then come
/// from the environment and defaults. `settings.env` and the like reach the machine's fields.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub machine: MachineSettings,

    /// Address to listen on.
    #[arg(long, env = "HAVEN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Address of the Prometheus metrics endpoint (`GET /metrics`), kept apart from the API so it is
    /// never exposed with it; `off` disables it. Keep it on loopback or a private network.
    #[arg(long, env = "HAVEN_METRICS_BIND", default_value = "127.0.0.1:9464")]
    pub metrics_bind: String,

    /// PostgreSQL URL of a streaming replica of the main database, from which report rollups are
    /// read once it has caught up with the primary (default: the main database). Budget, ledger and
    /// audit stay on the main database.
    #[arg(long, env = "HAVEN_REPORTS_DATABASE_URL", hide_env_values = true)]
    pub reports_database_url: Option<SecretString>,

    /// How long a report waits, in milliseconds, for the replica to replay what the primary held
    /// when the question was asked; past it (or when the replica is down) the report is read from
    /// the primary, so a release is never staler than the primary.
    #[arg(long, env = "HAVEN_REPLICA_MAX_LAG_MS", default_value_t = 500)]
    pub replica_max_lag_ms: u64,

    /// `iss` claim of issued access tokens (and the only one accepted).
    #[arg(long, env = "HAVEN_JWT_ISSUER", default_value = "haven")]
    pub jwt_issuer: String,

    /// `aud` claim of issued access tokens (and the only one accepted).
    #[arg(long, env = "HAVEN_JWT_AUDIENCE", default_value = "haven-api")]
    pub jwt_audience: String,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "HAVEN_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u64,

    /// Lifetime of a login session (its refresh tokens), in hours.
    #[arg(long, env = "HAVEN_SESSION_TTL_HOURS", default_value_t = 720)]
    pub session_ttl_hours: u64,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "HAVEN_WORKERS")]
    pub workers: Option<usize>,

    /// Maximum database connections in the pool.
    #[arg(long, env = "HAVEN_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// How long a request waits for a database connection before answering 503, in milliseconds.
    #[arg(long, env = "HAVEN_DB_TIMEOUT_MS", default_value_t = 3000)]
    pub db_timeout_ms: u64,

    /// Largest accepted request body, in bytes (larger bodies are answered 413).
    #[arg(long, env = "HAVEN_BODY_LIMIT", default_value_t = 65536)]
    pub body_limit: usize,

    /// Largest HTCDS file `POST /imports/htcds` takes, in bytes (larger files are answered 413).
    #[arg(long, env = "HAVEN_IMPORT_LIMIT", default_value_t = 10 * 1024 * 1024)]
    pub import_limit: usize,

    /// Failed login attempts allowed per client address per minute (successful logins are not counted).
    #[arg(long, env = "HAVEN_LOGIN_PER_ADDRESS_PER_MINUTE", default_value_t = 30)]
    pub login_per_address_per_minute: u32,

    /// Failed login attempts allowed per account in a burst; then one every 3 minutes.
    #[arg(long, env = "HAVEN_LOGIN_PER_ACCOUNT_BURST", default_value_t = 5)]
    pub login_per_account_burst: u32,

    /// Consecutive failed password checks (or second-factor codes at login) that lock an account.
    #[arg(long, env = "HAVEN_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,

    /// How long an enrolment or reset token (with which a person sets their own password) stays
    /// valid, in hours.
    #[arg(long, env = "HAVEN_ENROLMENT_TTL_HOURS", default_value_t = 48)]
    pub enrolment_ttl_hours: u64,

    /// How long a locked account stays locked, in minutes.
    #[arg(long, env = "HAVEN_LOCKOUT_MINUTES", default_value_t = 15)]
    pub lockout_minutes: u64,

    /// Password hashes computed at once (argon2id is CPU- and memory-heavy); default: half the
    /// cores, at least one (D129).
    #[arg(long, env = "HAVEN_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Addresses of reverse proxies whose `X-Forwarded-For` is trusted for the client address
    /// (login throttling, audit), comma-separated. Without it the TCP peer is the client.
    #[arg(long, env = "HAVEN_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Smallest count a report releases to anyone but a caseworker looking at their own
    /// organisation (k-anonymity threshold; CTDC uses 11). Never below 5.
    #[arg(long, env = "HAVEN_REPORT_K", default_value_t = 11)]
    pub report_k: i64,

    /// Directory of additional declarative report plugins (`*.toml`), validated at start.
    #[arg(long, env = "HAVEN_REPORTS_DIR")]
    pub reports_dir: Option<PathBuf>,

    /// Privacy cost of each new statistical release to anyone but a caseworker on their own
    /// organisation, as zero-concentrated DP rho (a repeated question is free). Larger means less
    /// noise and faster spending: 0.01 to 1.
    #[arg(long, env = "HAVEN_DP_RHO", default_value_t = 0.25)]
    pub dp_rho: f64,

    /// Privacy allowance (zCDP rho) an organisation may spend per period, unless a host admin set
    /// its own; renewed at the start of each period.
    #[arg(long, env = "HAVEN_DP_ALLOWANCE", default_value_t = 5.0)]
    pub dp_allowance: f64,

    /// What all statistical releases of the deployment together may spend per period (zCDP rho),
    /// so that creating organisations cannot create privacy budget.
    #[arg(long, env = "HAVEN_DP_CAP", default_value_t = 25.0)]
    pub dp_cap: f64,

    /// How often allowances renew (calendar periods, UTC).
    #[arg(long, env = "HAVEN_DP_PERIOD", value_enum, default_value = "month")]
    pub dp_period: BudgetPeriod,

    /// The delta at which releases and allowances are also stated as (epsilon, delta)-DP.
    #[arg(long, env = "HAVEN_DP_DELTA", default_value_t = 1e-7)]
    pub dp_delta: f64,

    /// Seconds a request may take before it is answered 503 (a stuck dependency never hangs a client);
    /// the database then ends the request's statement, or a transaction it left idle.
    #[arg(long, env = "HAVEN_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,

    /// How long a session check is remembered, in milliseconds (0: check the database on every
    /// request). Revocations apply at once on every process sharing the database: each hears them
    /// through PostgreSQL LISTEN/NOTIFY, and remembers nothing while it cannot. This bounds only
    /// what a notice lost to a silent network failure could cost.
    #[arg(long, env = "HAVEN_SESSION_CACHE_MS", default_value_t = 1000)]
    pub session_cache_ms: u64,

    /// How often the retention schedules are applied, in minutes (0: never by the server; run
    /// `haven retention` instead).
    #[arg(long, env = "HAVEN_RETENTION_INTERVAL_MIN", default_value_t = 60)]
    pub retention_interval_min: u64,

    /// How often webhook deliveries that are due are looked for, in milliseconds.
    #[arg(long, env = "HAVEN_WEBHOOK_POLL_MS", default_value_t = 1000)]
    pub webhook_poll_ms: u64,

    /// The first retry of a failed webhook delivery waits this long, in milliseconds; each next
    /// one twice as long (at most an hour), for up to 10 attempts.
    #[arg(long, env = "HAVEN_WEBHOOK_RETRY_MS", default_value_t = 10_000)]
    pub webhook_retry_ms: u64,

    /// Allow webhook receivers over plain `http` and at loopback or private addresses (a receiver
    /// on the same machine or network, tests); otherwise only `https` URLs whose addresses are
    /// public are taken and posted to.
    #[arg(long, env = "HAVEN_WEBHOOK_ALLOW_LOCAL", default_value_t = false)]
    pub webhook_allow_local: bool,

    /// Seconds given to in-flight requests on shutdown.
    #[arg(long, env = "HAVEN_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,
}

impl std::ops::Deref for Settings {
    type Target = MachineSettings;
    fn deref(&self) -> &MachineSettings {
        &self.machine
    }
}

impl std::ops::DerefMut for Settings {
    fn deref_mut(&mut self) -> &mut MachineSettings {
        &mut self.machine
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

fn bad(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting, problem: problem.into() }
}

impl Settings {
    /// What `haven serve` would run with, without flags: the environment, then the defaults.
    pub fn defaults() -> Settings {
        match Cli::parse_from(["haven", "serve"]).command {
            Some(Command::Serve(settings)) => settings,
            _ => unreachable!("`haven serve` parses as the serve command"),
        }
    }

    /// A command's machine settings, with the server's from the environment and defaults.
    pub fn with_machine(machine: MachineSettings) -> Settings {
        Settings { machine, ..Settings::defaults() }
    }

    /// What production requires before touching a database (`needs_keys`: before serving).
    pub fn require_production_settings(&self, needs_keys: bool) -> Result<(), ConfigError> {
        if self.env == Environment::Production {
            if needs_keys && self.jwt_keys.is_none() {
                return Err(bad("HAVEN_JWT_KEYS", "required when HAVEN_ENV=production"));
            }
            if needs_keys && self.identity_keys.is_none() {
                return Err(bad("HAVEN_IDENTITY_KEYS", "required when HAVEN_ENV=production"));
            }
            if needs_keys && self.blind_index_key.is_none() {
                return Err(bad("HAVEN_BLIND_INDEX_KEY", "required when HAVEN_ENV=production"));
            }
            if self.database_url.is_none() {
                return Err(bad("DATABASE_URL", "required when HAVEN_ENV=production"));
            }
            if needs_keys && self.key_vault_url.is_none() {
                return Err(bad("HAVEN_KEY_VAULT_URL", "required when HAVEN_ENV=production"));
            }
        }
        Ok(())
    }

    /// The metrics address, or none when `HAVEN_METRICS_BIND=off`.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        match self.metrics_bind.trim() {
            "off" => Ok(None),
            addr => addr
                .parse()
                .map(Some)
                .map_err(|_| bad("HAVEN_METRICS_BIND", "must be an address like 127.0.0.1:9464, or off")),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.metrics_addr()?;
        if !(50..=60_000).contains(&self.webhook_poll_ms) {
            return Err(bad("HAVEN_WEBHOOK_POLL_MS", "must be between 50 and 60000 milliseconds"));
        }
        if !(100..=3_600_000).contains(&self.webhook_retry_ms) {
            return Err(bad("HAVEN_WEBHOOK_RETRY_MS", "must be between 100 and 3600000 milliseconds"));
        }
        if !(60..=3600).contains(&self.access_token_ttl) {
            return Err(bad("HAVEN_ACCESS_TOKEN_TTL", "must be between 60 and 3600 seconds"));
        }
        if self.session_ttl_hours == 0 || self.session_ttl_hours > 24 * 90 {
            return Err(bad("HAVEN_SESSION_TTL_HOURS", "must be between 1 and 2160 hours"));
        }
        if self.db_pool_size == 0 {
            return Err(bad("HAVEN_DB_POOL_SIZE", "must be at least 1"));
        }
        if self.body_limit < 1024 {
            return Err(bad("HAVEN_BODY_LIMIT", "must be at least 1024 bytes"));
        }
        if self.import_limit < 1024 {
            return Err(bad("HAVEN_IMPORT_LIMIT", "must be at least 1024 bytes"));
        }
        if self.login_per_address_per_minute == 0 || self.login_per_account_burst == 0 {
            return Err(bad("HAVEN_LOGIN_PER_*", "login rates must be at least 1"));
        }
        if self.session_cache_ms > 5_000 {
            return Err(bad(
                "HAVEN_SESSION_CACHE_MS",
                "must be at most 5000 (five seconds): revocations must take effect",
            ));
        }
        if self.replica_max_lag_ms > 10_000 {
            return Err(bad("HAVEN_REPLICA_MAX_LAG_MS", "must be at most 10000 (ten seconds)"));
        }
        if !(1..=3600).contains(&self.request_timeout) {
            return Err(bad("HAVEN_REQUEST_TIMEOUT", "must be 1 to 3600 seconds"));
        }
        if !(1..=336).contains(&self.enrolment_ttl_hours) {
            return Err(bad("HAVEN_ENROLMENT_TTL_HOURS", "must be 1 to 336 hours (two weeks)"));
        }
        if self.lockout_threshold == 0 || !(1..=1440).contains(&self.lockout_minutes) {
            return Err(bad("HAVEN_LOCKOUT_*", "the threshold must be at least 1 and the duration 1 to 1440 minutes"));
        }
        if !(0.01..=1.0).contains(&self.dp_rho) {
            return Err(bad("HAVEN_DP_RHO", "must be 0.01 to 1 (noise cannot be turned off)"));
        }
        if !(self.dp_allowance >= 0.0 && self.dp_allowance.is_finite() && self.dp_cap >= 0.0 && self.dp_cap.is_finite())
        {
            return Err(bad("HAVEN_DP_ALLOWANCE/HAVEN_DP_CAP", "must be non-negative numbers"));
        }
        if !(self.dp_delta > 0.0 && self.dp_delta <= 1e-3) {
            return Err(bad("HAVEN_DP_DELTA", "must be above 0 and at most 0.001"));
        }
        if self.report_k < 5 {
            return Err(bad("HAVEN_REPORT_K", "must be at least 5"));
        }
        if self.workers == Some(0) || self.hash_concurrency == Some(0) {
            return Err(bad("HAVEN_WORKERS/HAVEN_HASH_CONCURRENCY", "must be at least 1"));
        }
        if self.jwt_issuer.is_empty() || self.jwt_audience.is_empty() {
            return Err(bad("HAVEN_JWT_ISSUER/HAVEN_JWT_AUDIENCE", "must not be empty"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| bad("HAVEN_LOG", e.to_string()))?;
        Ok(())
    }

    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| default_hash_concurrency(cores()))
    }

    /// HTTP worker threads: the setting, else one per core (actix-web's own default).
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(cores)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Half the cores, at least one: a login storm can take at most half the machine from everyone
/// else's requests, and holds at most that many argon2id blocks (7 MiB each) at once (D129).
fn default_hash_concurrency(cores: usize) -> usize {
    (cores / 2).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_checks_take_at_most_half_the_cores_by_default() {
        let by_cores: Vec<usize> = [1, 2, 3, 4, 8, 16].into_iter().map(default_hash_concurrency).collect();
        assert_eq!(by_cores, [1, 1, 1, 2, 4, 8]);
        let mut settings = Settings::defaults();
        settings.hash_concurrency = Some(3);
        assert_eq!(settings.hash_concurrency(), 3, "a setting wins over the default");
    }

    /// Settings are `Debug` (clap needs it); the keys and the database URLs never show in it.
    #[test]
    fn debug_output_holds_no_secret() {
        let mut settings = Settings::defaults();
        settings.database_url = Some("postgres://haven:DBPASSWORD@db/haven".into());
        settings.reports_database_url = Some("postgres://reader:REPLICAPASSWORD@replica/haven".into());
        settings.key_vault_url = Some("postgres://vault:VAULTPASSWORD@vault/haven_vault".into());
        settings.jwt_keys = Some("k1:JWTKEYMATERIAL".into());
        settings.identity_keys = Some("i1:IDENTITYKEYMATERIAL".into());
        settings.blind_index_key = Some("INDEXKEYMATERIAL".into());
        let shown = format!("{settings:?} {:?}", settings.clone());
        for secret in [
            "DBPASSWORD",
            "REPLICAPASSWORD",
            "VAULTPASSWORD",
            "JWTKEYMATERIAL",
            "IDENTITYKEYMATERIAL",
            "INDEXKEYMATERIAL",
        ] {
            assert!(!shown.contains(secret), "{secret} shown");
        }
        assert!(shown.contains("REDACTED"), "the fields are there, their values are not");
    }
}
