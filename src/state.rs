//! What every request handler shares.

use std::sync::Arc;

use crate::auth::{Keyring, LoginThrottle, PasswordHasher};
use crate::config::Settings;
use crate::db::Pool;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    /// The streaming replica report rollups are read from, when one is configured.
    pub replica: Option<Arc<crate::reports::replica::Replica>>,
    pub settings: Arc<Settings>,
    pub keyring: Arc<Keyring>,
    /// Encrypts identity-grade data and computes blind indexes.
    pub identity_keys: Arc<crate::privacy::crypto::IdentityKeyring>,
    /// Each victim's data key, under which their identity-grade values are sealed.
    pub vault: crate::privacy::vault::Vault,
    pub hasher: Arc<PasswordHasher>,
    pub throttle: Arc<LoginThrottle>,
    /// Recent session checks (see `auth::session_cache`).
    pub sessions: Arc<crate::auth::session_cache::SessionCache>,
    pub metrics: Arc<Metrics>,
    /// Chooses which of a victim's values count in guarded releases.
    pub bounding_key: Arc<crate::reports::counting::BoundingKey>,
    /// The report plugins of this deployment.
    pub reports: Arc<crate::reports::Registry>,
    /// Each role's report catalogue, as JSON.
    pub report_catalogue: Arc<std::collections::HashMap<crate::domain::Role, String>>,
    /// The served OpenAPI document, serialised once.
    pub openapi_json: Arc<String>,
    /// Path templates of the spec, to tell 405 from 404.
    pub routes: Arc<crate::openapi::route_table::RouteTable>,
}
