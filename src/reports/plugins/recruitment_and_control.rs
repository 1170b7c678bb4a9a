use std::collections::HashMap;

use super::choice;
use crate::error::ApiError;
use crate::reports::catalogue::Dimension;
use crate::reports::{ParamSpec, ReportPlugin, TableQuery};

/// How people were recruited and controlled.
pub struct RecruitmentAndControl;

impl ReportPlugin for RecruitmentAndControl {
    fn id(&self) -> &str {
        "recruitment-and-control"
    }
    fn title(&self) -> &str {
        "Recruitment and means of control"
    }
    fn description(&self) -> &str {
        "Victims by recruitment method (deceptive job offers, pyramid recruitment of friends and family, ...) crossed \
         with the means of control used on them or with the recruiter's relation to them."
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "by",
            description: "What to cross recruitment methods with.",
            values: vec!["means_of_control", "recruiter_relation"],
            default: Some("means_of_control"),
        }]
    }
    fn table(&self, params: &HashMap<String, String>) -> Result<TableQuery, ApiError> {
        let second = if choice(params, "by", "means_of_control") == "recruiter_relation" {
            Dimension::RecruiterRelation
        } else {
            Dimension::MeansOfControl
        };
        Ok(TableQuery { dimensions: vec![Dimension::RecruitmentMethod, second], ..Default::default() })
    }
}
