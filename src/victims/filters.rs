//! The victim list's query: parsed once into typed filters, so the handler only builds SQL from
//! values that are already valid (and a fuzz target can reach the parsing without a database).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::domain::case_vocab::{CaseStatus, ExploitationType, TraffickingStatus};
use crate::domain::{CountryCode, OperationTag};
use crate::error::ApiResult;
use crate::pagination;

/// Whose cases: `me` (the caller's). An enum, so other values (a colleague's id) can join later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AssignedTo {
    Me,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VictimQuery {
    pub status: Option<CaseStatus>,
    pub trafficking_status: Option<TraffickingStatus>,
    /// Victims with this exploitation type among theirs.
    pub exploitation_type: Option<ExploitationType>,
    /// Victims with this citizenship among theirs.
    pub citizenship: Option<CountryCode>,
    pub country_of_exploitation: Option<CountryCode>,
    pub operation: Option<OperationTag>,
    /// `me`: only the cases you are assigned to.
    #[param(inline)]
    pub assigned_to: Option<AssignedTo>,
    /// Identified on or after this date.
    pub identified_from: Option<NaiveDate>,
    /// Identified on or before this date.
    pub identified_to: Option<NaiveDate>,
    /// Changed at or after this time (for client sync).
    pub updated_since: Option<DateTime<Utc>>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// [`VictimQuery`] once every value is checked.
#[derive(Debug)]
pub struct VictimFilters {
    pub status: Option<CaseStatus>,
    pub trafficking_status: Option<TraffickingStatus>,
    pub exploitation_type: Option<ExploitationType>,
    pub citizenship: Option<CountryCode>,
    pub country_of_exploitation: Option<CountryCode>,
    pub operation: Option<OperationTag>,
    pub assigned_to_me: bool,
    pub identified_from: Option<NaiveDate>,
    pub identified_to: Option<NaiveDate>,
    pub updated_since: Option<DateTime<Utc>>,
    pub limit: i64,
    /// Only ids after this one (from the cursor).
    pub after: Option<Uuid>,
}

impl VictimQuery {
    pub fn parse(self) -> ApiResult<VictimFilters> {
        Ok(VictimFilters {
            limit: pagination::limit(self.limit)?,
            after: pagination::decode(self.cursor.as_deref())?,
            citizenship: self.citizenship,
            country_of_exploitation: self.country_of_exploitation,
            status: self.status,
            trafficking_status: self.trafficking_status,
            exploitation_type: self.exploitation_type,
            operation: self.operation,
            assigned_to_me: self.assigned_to == Some(AssignedTo::Me),
            identified_from: self.identified_from,
            identified_to: self.identified_to,
            updated_since: self.updated_since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse_query;

    #[test]
    fn parses_typed_values_and_refuses_bad_ones() {
        let f = parse_query::<VictimQuery>("citizenship=PER&operation=%20OP-1%20&limit=5").unwrap().parse().unwrap();
        assert_eq!(f.citizenship.map(|c| c.as_str().to_owned()), Some("PER".into()));
        assert_eq!(f.operation.as_ref().map(OperationTag::as_str), Some("OP-1"));
        assert_eq!(f.limit, 5);
        assert!(!f.assigned_to_me);
        assert!(parse_query::<VictimQuery>("assigned_to=me").unwrap().parse().unwrap().assigned_to_me);
        assert!(parse_query::<VictimQuery>("assigned_to=you").is_err());
        assert!(parse_query::<VictimQuery>("limit=0").unwrap().parse().is_err());
        // Exactly what the document lists: an assigned code, in capitals, nothing around it.
        for bad in ["ZZZ", "per", "%20PER", "PER%E3%80%80"] {
            assert!(parse_query::<VictimQuery>(&format!("citizenship={bad}")).is_err(), "{bad}");
        }
        assert!(parse_query::<VictimQuery>("cursor=not-a-cursor").unwrap().parse().is_err());
        assert!(parse_query::<VictimQuery>("unknown=1").is_err());
    }
}
