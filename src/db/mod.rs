//! Database access: the connection pool, embedded migrations and the private local cluster.

pub mod fixed;
pub mod local_cluster;
pub mod migrations;
pub mod schema;

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

pub use diesel_async::pooled_connection::deadpool::PoolError;
pub use migrations::{Patience, run_migrations, run_migrations_with};

pub type Pool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;
pub type Conn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

/// What a statement runs on: `&mut AsyncPgConnection`, or `&mut &AsyncPgConnection` to pipeline
/// independent statements on one connection by polling their futures together (D133): they are
/// sent at once and PostgreSQL answers them in order, so they cost one round trip, not one each.
pub trait Runs: diesel_async::AsyncConnectionCore<Backend = diesel::pg::Pg> + Send {}

impl<C: diesel_async::AsyncConnectionCore<Backend = diesel::pg::Pg> + Send> Runs for C {}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("could not build the database pool: {0}")]
    Pool(String),
    #[error("could not apply migrations: {0}")]
    Migrations(String),
}

/// A pool whose waits and connection attempts are bounded, so a database outage turns into a
/// prompt 503 rather than a hung request, and which recovers on its own when the database returns
/// (broken connections are discarded on recycle).
pub fn build_pool(url: &str, size: usize, timeout: Duration) -> Result<Pool, DbSetupError> {
    pool_of(url, size, timeout, diesel_async::pooled_connection::ManagerConfig::default())
}

/// A pool for requests that end at `deadline`: the server gives up a statement, and a transaction
/// left idle, once the request it served is over. A request dropped at its deadline stops waiting
/// for the database, not the database's work: without these its statement ran on, and a transaction
/// it left open kept its locks (the organisation's case counter, the cases of an import) until the
/// pool happened to hand the connection out again (D177).
pub fn build_request_pool(url: &str, size: usize, timeout: Duration, deadline: Duration) -> Result<Pool, DbSetupError> {
    let limit = deadline.as_millis();
    let mut config = diesel_async::pooled_connection::ManagerConfig::default();
    config.custom_setup = Box::new(move |url| {
        use diesel_async::{AsyncConnection, SimpleAsyncConnection};
        use futures_util::FutureExt;
        let url = url.to_owned();
        async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            let bounds = format!("SET statement_timeout = {limit}; SET idle_in_transaction_session_timeout = {limit}");
            conn.batch_execute(&bounds).await.map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        }
        .boxed()
    });
    pool_of(url, size, timeout, config)
}

fn pool_of(
    url: &str,
    size: usize,
    timeout: Duration,
    mut config: diesel_async::pooled_connection::ManagerConfig<AsyncPgConnection>,
) -> Result<Pool, DbSetupError> {
    // Fast recycling: no `SELECT 1` on every checkout (it doubled the round trips of a request).
    // A connection the server dropped fails its next query (503) and is discarded then, because
    // the pool does not take back a broken connection.
    config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DbSetupError::Pool(e.to_string()))
}

/// `true` when the database answers a trivial query within the pool timeout.
pub async fn ping(pool: &Pool) -> bool {
    use diesel_async::RunQueryDsl;
    let Ok(mut conn) = pool.get().await else { return false };
    let probe = diesel::sql_query("SELECT 1").execute(&mut conn);
    matches!(tokio::time::timeout(Duration::from_secs(2), probe).await, Ok(Ok(_)))
}

/// Whether a statement failed on a unique constraint (a name or email already taken).
pub fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(err, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

/// The transaction's time for a nullable `timestamptz` column (diesel's `now` is a `timestamp`,
/// which such a column does not take).
pub fn now_nullable() -> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>> {
    diesel::dsl::sql("now()")
}

/// The time the statement runs (not the transaction's start), for a nullable `timestamptz`: what
/// a transaction that waited for locks did happened after what committed while it waited.
pub fn clock_nullable() -> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>> {
    diesel::dsl::sql("clock_timestamp()")
}
