use std::collections::HashMap;

use super::choice;
use crate::error::ApiError;
use crate::reports::catalogue::Dimension;
use crate::reports::{ParamSpec, ReportPlugin, TableQuery};

/// Headline figures for a period and/or an operation tag (`from`, `to`, `operation`).
pub struct OperationSummary;

impl ReportPlugin for OperationSummary {
    fn id(&self) -> &str {
        "operation-summary"
    }
    fn title(&self) -> &str {
        "Operation summary"
    }
    fn description(&self) -> &str {
        "Headline figures for a period and/or an operation: victims identified, confirmed, minors, assisted, \
         referred, with referrals accepted and completed; optionally by country of exploitation or assistance kind."
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "by",
            description: "Break the figures down by country of exploitation, or show victims by assistance kind.",
            values: vec!["none", "country_of_exploitation", "assistance_kind"],
            default: Some("none"),
        }]
    }
    fn table(&self, params: &HashMap<String, String>) -> Result<TableQuery, ApiError> {
        let dimensions = match choice(params, "by", "none") {
            "country_of_exploitation" => vec![Dimension::Figure, Dimension::CountryOfExploitation],
            "assistance_kind" => vec![Dimension::AssistanceKind],
            _ => vec![Dimension::Figure],
        };
        Ok(TableQuery { dimensions, ..Default::default() })
    }
}
