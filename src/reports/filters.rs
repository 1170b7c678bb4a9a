//! What a report may be restricted by: the framework's month window and the whitelisted filter
//! fields (fixed in a declarative plugin, or set by the caller where the plugin allows it), and a
//! run's query read as a whole (`parse_parameters`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ReportPlugin;
use super::counting::Filters;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::text_enum;

/// A month, `YYYY-MM`: the finest time grain of a report parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2026-09")]
pub struct Month(pub chrono::NaiveDate);

/// What `Month` takes, as the API document states it.
pub const MONTH_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])$";

impl TryFrom<String> for Month {
    type Error = String;
    /// Exactly `MONTH_PATTERN` (chrono alone would also take `2026-1` or `+2026-01`).
    fn try_from(value: String) -> Result<Self, String> {
        let b = value.as_bytes();
        let shaped = b.len() == 7 && b[4] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || c.is_ascii_digit());
        shaped
            .then(|| chrono::NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d").ok())
            .flatten()
            .map(Month)
            .ok_or_else(|| "must be a month, YYYY-MM".to_owned())
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        m.0.format("%Y-%m").to_string()
    }
}

text_enum! {
    /// A field a report may be restricted by (fixed in a declarative plugin, or set by the caller
    /// where the plugin allows it).
    pub enum FilterField {
        TraffickingStatus => "trafficking_status",
        Gender => "gender",
        Status => "status",
        ExploitationType => "exploitation_type",
        RecruitmentMethod => "recruitment_method",
        MinorOrAdult => "minor_or_adult",
        Citizenship => "citizenship",
        CountryOfExploitation => "country_of_exploitation",
    }
}

/// A restriction: the field takes one of `values` (for list fields: shares one with them).
#[derive(Debug, Clone)]
pub struct Filter {
    pub field: FilterField,
    pub values: Vec<String>,
}

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|v| name(*v)).collect()
}

impl FilterField {
    /// The values it takes; `None` for countries (any ISO 3166-1 alpha-3 code).
    pub fn values(self) -> Option<Vec<&'static str>> {
        use crate::domain::case_vocab as v;
        Some(match self {
            FilterField::TraffickingStatus => names(v::TraffickingStatus::ALL, |x| x.as_str()),
            FilterField::Gender => names(v::Gender::ALL, |x| x.as_str()),
            FilterField::Status => names(v::CaseStatus::ALL, |x| x.as_str()),
            FilterField::ExploitationType => names(v::ExploitationType::ALL, |x| x.as_str()),
            FilterField::RecruitmentMethod => names(v::RecruitmentMethod::ALL, |x| x.as_str()),
            FilterField::MinorOrAdult => vec!["minor", "adult"],
            FilterField::Citizenship | FilterField::CountryOfExploitation => return None,
        })
    }

    pub fn check(self, value: &str) -> Result<(), String> {
        match self.values() {
            Some(values) if values.contains(&value) => Ok(()),
            Some(values) => Err(format!("`{value}` is not a {self} (one of: {})", values.join(", "))),
            None => crate::domain::CountryCode::parse(value).map(|_| ()).map_err(|m| format!("`{value}` {m}")),
        }
    }

    /// The predicate, with `{}` standing for the bound `text[]` of values.
    pub fn sql(self) -> &'static str {
        match self {
            FilterField::TraffickingStatus => "v.trafficking_status = ANY({})",
            FilterField::Gender => "v.gender = ANY({})",
            FilterField::Status => "v.status = ANY({})",
            FilterField::ExploitationType => "v.exploitation_types && {}",
            FilterField::RecruitmentMethod => "v.recruitment_methods && {}",
            FilterField::MinorOrAdult => "(CASE WHEN v.is_minor THEN 'minor' ELSE 'adult' END) = ANY({})",
            FilterField::Citizenship => "v.citizenship && {}",
            FilterField::CountryOfExploitation => "v.country_of_exploitation::text = ANY({})",
        }
    }
}

const FRAMEWORK_PARAMS: [&str; 4] = ["from", "to", "operation", "format"];

/// A report run's query, checked: the report's own parameters, the framework's filters, and
/// the format asked for, if any.
pub struct ReportParameters {
    pub own: HashMap<String, String>,
    pub filters: Filters,
    pub format: Option<ReportFormat>,
}

pub fn parse_parameters(plugin: &dyn ReportPlugin, raw: HashMap<String, String>) -> ApiResult<ReportParameters> {
    let specs = plugin.parameters();
    let mut errors = Vec::new();
    let mut own = HashMap::new();
    for (name, value) in &raw {
        if FRAMEWORK_PARAMS.contains(&name.as_str()) {
            continue;
        }
        match specs.iter().find(|s| s.name == name) {
            // The name is the client's and is not repeated back.
            // Said once, however many there are: a long query string is not a long answer.
            None if errors.iter().any(|e: &FieldError| e.field == "query") => {}
            None => errors.push(FieldError::new(
                "query",
                "holds a parameter this report does not take (its name is not repeated back)",
            )),
            Some(spec) if !spec.values.contains(&value.as_str()) => {
                errors.push(FieldError::new(spec.name, format!("must be one of: {}", spec.values.join(", "))))
            }
            Some(_) => {
                own.insert(name.clone(), value.clone());
            }
        }
    }
    let month = |name: &'static str, errors: &mut Vec<FieldError>| {
        raw.get(name).and_then(|v| match Month::try_from(v.clone()) {
            Ok(m) => Some(m.0),
            Err(e) => {
                errors.push(FieldError::new(name, e));
                None
            }
        })
    };
    let from = month("from", &mut errors);
    let to_exclusive = month("to", &mut errors).and_then(|d| d.checked_add_months(chrono::Months::new(1)));
    if let (Some(f), Some(t)) = (from, to_exclusive)
        && f >= t
    {
        errors.push(FieldError::new("to", "must not be before from"));
    }
    let operation = raw.get("operation").and_then(|o| match crate::domain::OperationTag::parse(o) {
        Ok(tag) => Some(tag.into_string()),
        Err(message) => {
            errors.push(FieldError::new("operation", message));
            None
        }
    });
    let format = match raw.get("format").map(String::as_str) {
        None => None,
        Some("json") => Some(ReportFormat::Json),
        Some("csv") => Some(ReportFormat::Csv),
        Some("svg") => Some(ReportFormat::Svg),
        Some(_) => {
            errors.push(FieldError::new("format", "must be one of: json, csv, svg"));
            None
        }
    };
    if errors.is_empty() {
        Ok(ReportParameters { own, filters: Filters { from, to_exclusive, operation }, format })
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The framework's filters every report takes (documentation: the query is read as a whole by
/// `parse_parameters`, with the report's own parameters).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReportWindow {
    /// First month, YYYY-MM.
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    from: Option<String>,
    /// Last month, YYYY-MM, not before `from`.
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    to: Option<String>,
    /// Only victims identified in this operation.
    operation: Option<crate::domain::OperationTag>,
}

/// How a report's table is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Json,
    Csv,
    /// A chart of the table (SVG).
    Svg,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_a_report_does_not_take_are_refused_once_however_many() {
        let plugins = crate::reports::compiled();
        let plugin = plugins.iter().find(|p| p.id() == "trends").expect("trends");
        let raw: HashMap<String, String> = (0..5_000).map(|i| (format!("p{i}"), "x".to_owned())).collect();
        let Err(ApiError::Validation(fields)) = parse_parameters(plugin.as_ref(), raw) else {
            panic!("refused as invalid")
        };
        assert_eq!(fields.iter().filter(|f| f.field == "query").count(), 1, "{}", fields.len());
    }
}
