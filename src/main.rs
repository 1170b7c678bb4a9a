use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use haven::config::{BootstrapArgs, Cli, Command, Environment, ImportArgs, RecoverArgs, SeedArgs, Settings};
use haven::domain::{CountryCode, Email, NewPassword};
use haven::startup::{self, StartupError};

fn main() -> ExitCode {
    haven::memory::keep_large_allocations_returnable();
    let command = Cli::parse().command.unwrap_or_else(|| Command::Serve(Settings::defaults()));
    let settings = command.settings();
    if let Err(e) = settings.validate() {
        eprintln!("haven: {e}");
        return ExitCode::from(2);
    }
    haven::telemetry::init_logging(&settings);
    let result = match command {
        Command::Serve(_) => serve(settings),
        Command::Migrate(_) => settings
            .require_production_settings(false)
            .map_err(StartupError::from)
            .and_then(|_| startup::prepare_database(&settings).map(|_| ())),
        Command::Bootstrap(args) => bootstrap(settings, args),
        Command::RecoverAdmin(args) => recover_admin(settings, args),
        Command::Rekey(args) => rekey(settings, args.reindex),
        Command::Seed(args) => seed(settings, args),
        Command::Import(args) => import(settings, args),
        Command::Retention(args) => retention(settings, args.dry_run),
        Command::Openapi => {
            print!("{}", haven::openapi::document_json());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("haven: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> Result<(), StartupError> {
    settings.require_production_settings(true)?;
    let database = startup::prepare_database(&settings)?;
    let keys = startup::keys(&settings)?;
    // The generated first admin is for the zero-configuration start only; a database given by
    // DATABASE_URL is set up with `haven bootstrap`.
    let generate_admin = settings.env == Environment::Local && database.cluster.is_some();
    let url = database.url.clone();
    let vault_url = database.vault_url()?.to_owned();
    let result = actix_web::rt::System::new().block_on(async move {
        let app = startup::Application::build(settings, &url, &vault_url, keys)?;
        let state = app.state();
        if !generate_admin && !haven::bootstrap::host_exists(&state.pool).await? {
            tracing::warn!("no host organisation yet: create it and its first admin with `haven bootstrap`");
        }
        let admins = match generate_admin {
            true => haven::bootstrap::ensure_local_admin(&state.pool, &state.hasher).await?,
            false => Vec::new(),
        };
        let bind = app.address().map(|a| a.to_string()).unwrap_or_default();
        if !admins.is_empty() {
            // Shown once, on the terminal: they are not logged and not stored anywhere in clear.
            let listed: String = admins.iter().map(|(email, password)| format!("\n    {email}   {password}")).collect();
            println!(
                "\n  Two host admins created (shown only this once; the second approves what the first asks):{listed}\n  \
                 Whoever reads this holds both, so the two-person rule is shown here, not enforced: \
                 for real cases, each host admin sets their own password (`haven bootstrap`).\n  \
                 Log in with POST /api/v1/auth/login; API docs at http://{bind}/docs\n"
            );
            let _ = std::io::stdout().flush();
        }
        tracing::info!(address = %bind, docs = %format!("http://{bind}/docs"), "Haven is listening");
        if let Some(metrics) = app.metrics_address() {
            tracing::info!(address = %metrics, "metrics served at /metrics");
        }
        app.run_until_stopped().await?;
        tracing::info!("stopped accepting requests; in-flight requests finished");
        Ok::<_, StartupError>(())
    });
    drop(database);
    result
}

fn bootstrap(settings: Settings, args: BootstrapArgs) -> Result<(), StartupError> {
    let invalid = |m: String| StartupError::Bootstrap(haven::bootstrap::BootstrapError::Invalid(m));
    let email = Email::parse(&args.email).map_err(|m| invalid(format!("email {m}")))?;
    let country = match &args.country {
        Some(c) => Some(CountryCode::parse(c).map_err(|m| invalid(format!("country {m}")))?),
        None => None,
    };
    let raw = match std::env::var("HAVEN_BOOTSTRAP_PASSWORD") {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password("Password for the admin: ").map_err(|e| invalid(e.to_string()))?;
            let again = rpassword::prompt_password("Repeat it: ").map_err(|e| invalid(e.to_string()))?;
            if first != again {
                return Err(invalid("the passwords differ".into()));
            }
            first
        }
        Err(_) => return Err(invalid("set HAVEN_BOOTSTRAP_PASSWORD or run in a terminal to be prompted".into())),
    };
    let password = NewPassword::parse(raw, email.as_str()).map_err(|m| invalid(format!("password {m}")))?;
    settings.require_production_settings(false)?;
    let database = startup::prepare_database(&settings)?;
    let result = actix_web::rt::System::new().block_on(async {
        let pool = haven::db::build_pool(&database.url, 2, std::time::Duration::from_secs(10))?;
        let hasher = haven::auth::PasswordHasher::new(1);
        match &args.org {
            Some(org) => {
                haven::bootstrap::bootstrap(&pool, &hasher, org, country, &email, &password).await?;
                println!("Host organisation `{}` and admin {} created.", org.trim(), email.as_str());
            }
            None => {
                haven::bootstrap::add_host_admin(&pool, &hasher, &email, &password).await?;
                println!("Host admin {} added.", email.as_str());
            }
        }
        Ok::<_, StartupError>(())
    });
    drop(database);
    result
}

/// On the machine itself, for operators who already hold the database: a host admin who lost
/// their password gets a single-use enrolment token (printed once, audited). Other accounts are
/// reset by an admin through the API, under the two-person rule.
fn recover_admin(settings: Settings, args: RecoverArgs) -> Result<(), StartupError> {
    let invalid = |m: String| StartupError::Bootstrap(haven::bootstrap::BootstrapError::Invalid(m));
    let email = Email::parse(&args.email).map_err(|m| invalid(format!("email {m}")))?;
    settings.require_production_settings(false)?;
    let database = startup::prepare_database(&settings)?;
    let ttl = settings.enrolment_ttl_hours;
    let result = actix_web::rt::System::new().block_on(async {
        let pool = haven::db::build_pool(&database.url, 2, std::time::Duration::from_secs(10))?;
        let token = haven::bootstrap::recover_host_admin(&pool, &email, ttl).await?;
        println!(
            "Host admin {}: password voided and sessions ended. Enrolment token (shown only now, single use, until {}):\n\n    {}\n\n\
             They set a new password with POST /api/v1/auth/enrol {{\"token\": ..., \"password\": ...}}.",
            email.as_str(),
            token.expires_at.format("%Y-%m-%d %H:%M UTC"),
            token.token
        );
        Ok::<_, StartupError>(())
    });
    drop(database);
    result
}

fn rekey(settings: Settings, reindex: bool) -> Result<(), StartupError> {
    settings.require_production_settings(true)?;
    let keys = startup::keys(&settings)?;
    let database = startup::prepare_database(&settings)?;
    let result = actix_web::rt::System::new().block_on(async {
        let pool = haven::db::build_pool(&database.url, 2, std::time::Duration::from_secs(10))?;
        let vault = startup::vault(&database, keys.identity, 2)?;
        let report = haven::rekey::run(&pool, &vault, reindex, std::io::stderr().is_terminal())
            .await
            .map_err(|e| StartupError::Task(e.to_string()))?;
        println!(
            "Re-encrypted under `{}`: {} victim data keys rewrapped; moved under victims' own keys or re-encrypted: {} identities, {} assistance notes, {} referral reasons, {} task notes, {} support-plan goals; {} second factors, {} webhook secrets.",
            vault.keys().current_key_id(),
            report.data_keys,
            report.identities,
            report.notes,
            report.reasons,
            report.task_notes,
            report.support_plans,
            report.second_factors,
            report.webhook_secrets
        );
        Ok::<_, StartupError>(())
    });
    drop(database);
    result
}

fn seed(settings: Settings, args: SeedArgs) -> Result<(), StartupError> {
    settings.require_production_settings(true)?;
    let keys = startup::keys(&settings)?;
    let database = startup::prepare_database(&settings)?;
    let result = actix_web::rt::System::new().block_on(async {
        let pool = haven::db::build_pool(&database.url, 4, std::time::Duration::from_secs(30))?;
        let vault = startup::vault(&database, keys.identity, 4)?;
        let options = haven::seed::SeedOptions {
            victims: args.victims,
            rng_seed: args.rng_seed,
            organizations: args.organizations,
            progress: std::io::stderr().is_terminal(),
        };
        let started = std::time::Instant::now();
        let report = haven::seed::run(&pool, &vault, &options).await.map_err(|e| StartupError::Task(e.to_string()))?;
        println!(
            "Seeded {} organisations, {} victims, {} assistance records, {} referrals in {:.1} s.",
            report.organizations,
            report.victims,
            report.assistance,
            report.referrals,
            started.elapsed().as_secs_f64()
        );
        Ok::<_, StartupError>(())
    });
    drop(database);
    result
}

fn import(settings: Settings, args: ImportArgs) -> Result<(), StartupError> {
    settings.require_production_settings(true)?;
    let keys = startup::keys(&settings)?;
    let database = startup::prepare_database(&settings)?;
    let bytes = std::fs::read(&args.file).map_err(|e| StartupError::Task(format!("{}: {e}", args.file.display())))?;
    let format = match args.file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => haven::exchange::sheet::Format::Csv,
        Some("xlsx") => haven::exchange::sheet::Format::Xlsx,
        _ => return Err(StartupError::Task("the file must end in .csv or .xlsx".into())),
    };
    let email = Email::parse(&args.caseworker).map_err(|e| StartupError::Task(format!("--caseworker: {e}")))?;
    let result = actix_web::rt::System::new().block_on(async {
        let pool = haven::db::build_pool(&database.url, 2, std::time::Duration::from_secs(30))?;
        let vault = startup::vault(&database, keys.identity, 2)?;
        let principal = haven::exchange::import::caseworker(&pool, &email)
            .await
            .map_err(|e| StartupError::Task(e.to_string()))?
            .ok_or_else(|| StartupError::Task("--caseworker names no enabled, approved caseworker".into()))?;
        let progress = match std::io::stderr().is_terminal() {
            true => indicatif::ProgressBar::new(0).with_message("cases written"),
            false => indicatif::ProgressBar::hidden(),
        };
        let ctx = haven::extract::RequestContext::none();
        let report =
            haven::exchange::import::run(&pool, &vault, &principal, &ctx, format, &bytes, args.dry_run, &progress)
                .await
                .map_err(|e| StartupError::Task(e.to_string()))?;
        progress.finish_and_clear();
        for issue in &report.errors {
            eprintln!("row {}: {}: {}", issue.row, issue.column.as_deref().unwrap_or("-"), issue.message);
        }
        for issue in &report.warnings {
            eprintln!("row {} (warning): {}: {}", issue.row, issue.column.as_deref().unwrap_or("-"), issue.message);
        }
        let verb = if args.dry_run || !report.errors.is_empty() { "would create" } else { "created" };
        println!(
            "{} rows: {verb} {}, update {}, leave {} unchanged; {} errors.",
            report.rows,
            report.created,
            report.updated,
            report.unchanged,
            report.errors.len()
        );
        match report.errors.is_empty() {
            true => Ok::<_, StartupError>(()),
            false => Err(StartupError::Task("the file has errors: nothing was written".into())),
        }
    });
    drop(database);
    result
}

fn retention(settings: Settings, dry_run: bool) -> Result<(), StartupError> {
    settings.require_production_settings(true)?;
    let keys = startup::keys(&settings)?;
    let database = startup::prepare_database(&settings)?;
    let result = actix_web::rt::System::new().block_on(async {
        let pool = haven::db::build_pool(&database.url, 2, std::time::Duration::from_secs(30))?;
        let vault = startup::vault(&database, keys.identity, 2)?;
        // The listing is for whoever reads it: a closed pipe must not stop the erasures.
        let mut list = |due: &haven::retention::Due, outcome: haven::retention::Outcome| {
            use haven::retention::Outcome;
            let what = match outcome {
                Outcome::Due => "",
                Outcome::Erased => ": erased",
                Outcome::Left => ": left (reopened, held, erased elsewhere or its schedule changed meanwhile)",
                Outcome::Failed => ": could not be erased (see the log)",
            };
            let (org, case, closed) = (due.organization_id, due.case_number, due.closed_at.date_naive());
            let _ = writeln!(std::io::stdout().lock(), "organisation {org} case {case} closed {closed}{what}");
        };
        let report = haven::retention::run(&pool, &vault, chrono::Utc::now(), dry_run, &mut list)
            .await
            .map_err(|e| StartupError::Task(e.to_string()))?;
        // Written when the work is done; a reader who has gone away does not make it an error.
        let _ = match dry_run {
            true => {
                writeln!(std::io::stdout().lock(), "{} cases are due for erasure; nothing was changed.", report.due)
            }
            false => writeln!(
                std::io::stdout().lock(),
                "{} cases erased; {} could not be (see the log).",
                report.erased,
                report.failed
            ),
        };
        Ok::<_, StartupError>(())
    });
    drop(database);
    result
}
