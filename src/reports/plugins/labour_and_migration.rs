use std::collections::HashMap;

use super::choice;
use crate::error::ApiError;
use crate::reports::catalogue::Dimension;
use crate::reports::{ParamSpec, ReportPlugin, TableQuery};

/// The sectors people were exploited in and their migration status when identified.
pub struct LabourAndMigration;

impl ReportPlugin for LabourAndMigration {
    fn id(&self) -> &str {
        "labour-and-migration"
    }
    fn title(&self) -> &str {
        "Labour sector and migration status"
    }
    fn description(&self) -> &str {
        "Victims by the labour sector they were exploited in (ISIC Rev. 4 section, e.g. A agriculture, C \
         manufacturing, F construction, I accommodation and food; `unknown` where none was recorded), their migration \
         status at identification (citizen, regular or irregular migrant, asylum seeker, refugee, stateless), and \
         gender or minor/adult."
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "by",
            description: "Third dimension: gender, or minor/adult.",
            values: vec!["gender", "minor_or_adult"],
            default: Some("gender"),
        }]
    }
    fn table(&self, params: &HashMap<String, String>) -> Result<TableQuery, ApiError> {
        let third = if choice(params, "by", "gender") == "minor_or_adult" {
            Dimension::MinorOrAdult
        } else {
            Dimension::Gender
        };
        Ok(TableQuery {
            dimensions: vec![Dimension::LabourSector, Dimension::MigrantStatus, third],
            ..Default::default()
        })
    }
}
