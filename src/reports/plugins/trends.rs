use std::collections::HashMap;

use super::choice;
use crate::error::ApiError;
use crate::reports::catalogue::Dimension;
use crate::reports::{ParamSpec, ReportPlugin, TableQuery};

/// New identifications over time, by exploitation type.
pub struct Trends;

impl ReportPlugin for Trends {
    fn id(&self) -> &str {
        "trends"
    }
    fn title(&self) -> &str {
        "Trends"
    }
    fn description(&self) -> &str {
        "Newly identified victims by month or quarter of identification and type of exploitation."
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "period",
            description: "Time grain.",
            values: vec!["month", "quarter"],
            default: Some("quarter"),
        }]
    }
    fn table(&self, params: &HashMap<String, String>) -> Result<TableQuery, ApiError> {
        let period = if choice(params, "period", "quarter") == "month" {
            Dimension::IdentifiedMonth
        } else {
            Dimension::IdentifiedQuarter
        };
        Ok(TableQuery { dimensions: vec![period, Dimension::ExploitationType], ..Default::default() })
    }
}
