//! Reports: anonymised statistics from report plugins. A plugin says what to count (up to three
//! whitelisted dimensions and fixed filters); the framework gives it a catalogue entry, routing,
//! parameter validation, OpenAPI documentation, auditing, JSON and CSV output and the privacy
//! guard (README, "What the privacy guard does"). Adding a compiled plugin is one file in `plugins/` plus one line in
//! `compiled()`.
//!
//! Where things are: `catalogue` (dimensions, their values and bounds), `filters`, `counting`
//! (the SQL and populations), `rollup` (pre-aggregates), `grid` (the fixed grid of a release),
//! `measure` (the OpenDP measurement), `consistency` (post-processing), `release` (the release
//! policy: who gets what), `budget` (allowances and spending), `output` (JSON, CSV, ledger form),
//! `routes` (HTTP).

pub mod budget;
pub mod catalogue;
pub mod chart;
pub mod consistency;
pub mod counting;
pub mod declarative;
pub mod filters;
pub mod grid;
pub mod listing;
pub mod measure;
pub mod noisy_table;
pub mod output;
pub mod plugins;
#[cfg(test)]
mod privacy_audit;
pub mod release;
pub mod replica;
pub mod rollup;
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
    /// Used when the parameter is absent (none: no restriction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<&'static str>,
}

/// What a report counts: distinct victims, grouped by up to three dimensions, optionally
/// restricted by whitelisted filters.
#[derive(Debug, Clone, Default)]
pub struct TableQuery {
    pub dimensions: Vec<Dimension>,
    pub filters: Vec<filters::Filter>,
}

impl TableQuery {
    /// A stable name for the table: its dimensions and fixed filters (values sorted).
    pub fn signature(&self) -> String {
        let dims: Vec<&str> = self.dimensions.iter().map(|d| d.as_str()).collect();
        let mut filters: Vec<String> = self
            .filters
            .iter()
            .map(|f| {
                let mut values = f.values.clone();
                values.sort();
                format!("{}={}", f.field, values.join("|"))
            })
            .collect();
        filters.sort();
        format!("{};{}", dims.join(","), filters.join(";"))
    }
}

pub trait ReportPlugin: Send + Sync {
    fn id(&self) -> &str;
    fn title(&self) -> &str;
    fn description(&self) -> &str;
    fn roles(&self) -> &[Role] {
        &[Role::Caseworker, Role::Admin, Role::Partner]
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        Vec::new()
    }
    /// The table for these (validated) plugin parameters.
    fn table(&self, params: &std::collections::HashMap<String, String>) -> Result<TableQuery, ApiError>;
}

/// The reports of a deployment: compiled plugins, the declarative ones shipped in `reports/`, and
/// those of the directory named in settings.
pub struct Registry {
    pub plugins: Vec<Box<dyn ReportPlugin>>,
}

impl Registry {
    /// Compiled and shipped declarative plugins (what `haven openapi` documents).
    pub fn shipped() -> Registry {
        let mut plugins = compiled();
        for (name, text) in declarative::SHIPPED {
            let plugin = declarative::parse(name, text).expect("shipped report plugins are valid (a test checks)");
            assert!(!plugins.iter().any(|p| p.id() == plugin.id()), "{name}: report id taken (a test checks)");
            plugins.push(Box::new(plugin));
        }
        Registry { plugins }
    }

    /// Adds the declarative plugins of `dir`; a bad file is an error naming the file, line and problem.
    pub fn load(dir: Option<&std::path::Path>) -> Result<Registry, String> {
        let mut registry = Registry::shipped();
        if let Some(dir) = dir {
            for plugin in declarative::load_dir(dir)? {
                if registry.get(plugin.id()).is_some() || RESERVED_IDS.contains(&plugin.id()) {
                    return Err(format!("{}: report id `{}` is already taken", plugin.source, plugin.id()));
                }
                registry.plugins.push(Box::new(plugin));
            }
        }
        Ok(registry)
    }

    pub fn get(&self, id: &str) -> Option<&dyn ReportPlugin> {
        self.plugins.iter().find(|p| p.id() == id).map(|p| p.as_ref())
    }
}

/// Paths under `/reports/` that are not reports.
pub const RESERVED_IDS: [&str; 1] = ["budget"];

pub(crate) fn compiled() -> Vec<Box<dyn ReportPlugin>> {
    vec![
        Box::new(plugins::operation_summary::OperationSummary),
        Box::new(plugins::trafficking_flows::TraffickingFlows),
        Box::new(plugins::exploitation_profile::ExploitationProfile),
        Box::new(plugins::recruitment_and_control::RecruitmentAndControl),
        Box::new(plugins::referral_outcomes::ReferralOutcomes),
        Box::new(plugins::trends::Trends),
        Box::new(plugins::route_corridors::RouteCorridors),
        Box::new(plugins::labour_and_migration::LabourAndMigration),
    ]
}
