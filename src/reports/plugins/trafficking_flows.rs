use std::collections::HashMap;

use super::choice;
use crate::error::ApiError;
use crate::reports::catalogue::Dimension;
use crate::reports::{ParamSpec, ReportPlugin, TableQuery};

/// Citizenship -> country of exploitation, by country or UN M49 (sub-)region.
pub struct TraffickingFlows;

impl ReportPlugin for TraffickingFlows {
    fn id(&self) -> &str {
        "trafficking-flows"
    }
    fn title(&self) -> &str {
        "Trafficking flows"
    }
    fn description(&self) -> &str {
        "Victims by citizenship and country of exploitation, at country level or grouped into UN M49 regions or \
         sub-regions (e.g. South America -> Africa)."
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "level",
            description: "Geographic level of both ends of the flow.",
            values: vec!["country", "subregion", "region"],
            default: Some("region"),
        }]
    }
    fn table(&self, params: &HashMap<String, String>) -> Result<TableQuery, ApiError> {
        let dimensions = match choice(params, "level", "region") {
            "country" => vec![Dimension::Citizenship, Dimension::CountryOfExploitation],
            "subregion" => vec![Dimension::CitizenshipSubregion, Dimension::ExploitationSubregion],
            _ => vec![Dimension::CitizenshipRegion, Dimension::ExploitationRegion],
        };
        Ok(TableQuery { dimensions, ..Default::default() })
    }
}
