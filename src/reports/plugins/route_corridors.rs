use std::collections::HashMap;

use super::choice;
use crate::error::ApiError;
use crate::reports::catalogue::Dimension;
use crate::reports::{ParamSpec, ReportPlugin, TableQuery};

/// Where victims were recruited, which countries they were moved through, and where they were
/// exploited, from the legs of their recorded routes.
pub struct RouteCorridors;

impl ReportPlugin for RouteCorridors {
    fn id(&self) -> &str {
        "route-corridors"
    }
    fn title(&self) -> &str {
        "Route corridors"
    }
    fn description(&self) -> &str {
        "Victims by where they were recruited, where they were moved through (transit legs of their route; `none` for \
         a direct route, `unknown` when no route was recorded) and where they were exploited: corridors such as South \
         America through Brazil into West Africa, at UN M49 region or (finer, slower) sub-region level."
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "level",
            description: "Geographic level of the three ends of the corridor.",
            values: vec!["region", "subregion"],
            default: Some("region"),
        }]
    }
    fn table(&self, params: &HashMap<String, String>) -> Result<TableQuery, ApiError> {
        let dimensions = match choice(params, "level", "region") {
            "subregion" => {
                vec![Dimension::RecruitmentSubregion, Dimension::TransitSubregion, Dimension::ExploitationSubregion]
            }
            _ => vec![Dimension::RecruitmentRegion, Dimension::TransitRegion, Dimension::ExploitationRegion],
        };
        Ok(TableQuery { dimensions, ..Default::default() })
    }
}
