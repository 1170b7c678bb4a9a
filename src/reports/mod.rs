//! Reports: anonymised statistics from report plugins. A plugin says what to count (up to three
//! whitelisted dimensions and fixed filters); the framework gives it a catalogue entry, routing,
//! parameter validation, OpenAPI documentation, auditing, JSON and CSV output and the privacy
//! guard (DESIGN section 6). Adding a compiled plugin is one file in `plugins/` plus one line in
//! `registry()`.

pub mod catalogue;
pub mod engine;
pub mod guard;
pub mod noise;
pub mod plugins;
pub mod routes;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Role;
use crate::error::ApiError;
use catalogue::Dimension;

/// A parameter a report accepts (besides the framework's own `from`, `to`, `operation`, `format`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParamSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// Allowed values.
    pub values: Vec<&'static str>,
    /// Used when the parameter is absent.
    pub default: &'static str,
}

/// What a report counts: distinct victims, grouped by up to three dimensions.
#[derive(Debug, Clone)]
pub struct TableQuery {
    pub dimensions: Vec<Dimension>,
}

pub trait ReportPlugin: Send + Sync {
    fn id(&self) -> &'static str;
    fn title(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn roles(&self) -> &'static [Role] {
        &[Role::Caseworker, Role::Admin, Role::Partner]
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        Vec::new()
    }
    /// The table for these (validated) plugin parameters.
    fn table(&self, params: &std::collections::HashMap<String, String>) -> Result<TableQuery, ApiError>;
}

/// Every report this deployment offers.
pub fn registry() -> Vec<Box<dyn ReportPlugin>> {
    vec![
        Box::new(plugins::operation_summary::OperationSummary),
        Box::new(plugins::trafficking_flows::TraffickingFlows),
        Box::new(plugins::exploitation_profile::ExploitationProfile),
        Box::new(plugins::recruitment_and_control::RecruitmentAndControl),
        Box::new(plugins::referral_outcomes::ReferralOutcomes),
        Box::new(plugins::trends::Trends),
    ]
}
