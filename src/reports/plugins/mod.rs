//! The built-in report plugins.

pub mod exploitation_profile;
pub mod labour_and_migration;
pub mod operation_summary;
pub mod recruitment_and_control;
pub mod referral_outcomes;
pub mod route_corridors;
pub mod trafficking_flows;
pub mod trends;

use std::collections::HashMap;

/// The chosen value of a declared parameter (validated by the framework), or its default.
pub(crate) fn choice<'a>(params: &'a HashMap<String, String>, name: &str, default: &'a str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or(default)
}
