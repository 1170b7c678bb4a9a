use std::collections::HashMap;

use super::choice;
use crate::error::ApiError;
use crate::reports::catalogue::Dimension;
use crate::reports::{ParamSpec, ReportPlugin, TableQuery};

/// Referrals by service and outcome, with time to response in bands.
pub struct ReferralOutcomes;

impl ReportPlugin for ReferralOutcomes {
    fn id(&self) -> &str {
        "referral-outcomes"
    }
    fn title(&self) -> &str {
        "Referral outcomes"
    }
    fn description(&self) -> &str {
        "Referred victims by service needed and referral status, or by service and time the receiving \
         organisation took to accept or decline (bands: under 1 day, 1-3, 4-7, 8-30, over 30 days, no response)."
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        vec![ParamSpec {
            name: "by",
            description: "Second dimension: referral status, or time to response.",
            values: vec!["status", "response_time"],
            default: Some("status"),
        }]
    }
    fn table(&self, params: &HashMap<String, String>) -> Result<TableQuery, ApiError> {
        let second = if choice(params, "by", "status") == "response_time" {
            Dimension::ReferralResponseTime
        } else {
            Dimension::ReferralStatus
        };
        Ok(TableQuery { dimensions: vec![Dimension::ReferralService, second], ..Default::default() })
    }
}
