//! The whitelisted dimensions a report may group by, each with the SQL that computes it. Only
//! these fragments ever reach SQL; values from callers are bound parameters. Geography stops at
//! the country, time at the month, age at CTDC bands: the finest grain the guard allows.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::text_enum;

text_enum! {
    /// A dimension of a report table.
    pub enum Dimension {
        Citizenship => "citizenship",
        CitizenshipSubregion => "citizenship_subregion",
        CitizenshipRegion => "citizenship_region",
        CountryOfExploitation => "country_of_exploitation",
        ExploitationSubregion => "exploitation_subregion",
        ExploitationRegion => "exploitation_region",
        ExploitationType => "exploitation_type",
        Gender => "gender",
        AgeBand => "age_band",
        MinorOrAdult => "minor_or_adult",
        RecruitmentMethod => "recruitment_method",
        MeansOfControl => "means_of_control",
        RecruiterRelation => "recruiter_relation",
        TraffickingStatus => "trafficking_status",
        IdentifiedBy => "identified_by",
        IdentifiedMonth => "identified_month",
        IdentifiedQuarter => "identified_quarter",
        IdentifiedYear => "identified_year",
        AssistanceKind => "assistance_kind",
        ReferralService => "referral_service",
        ReferralStatus => "referral_status",
        ReferralResponseTime => "referral_response_time",
        Figure => "figure",
    }
}

/// A join a dimension needs (each added once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    Citizenship,
    CitizenshipRegion,
    ExploitationRegion,
    ExploitationType,
    Recruitment,
    Control,
    Assistance,
    Referrals,
    Figures,
}

impl Join {
    pub fn sql(self) -> &'static str {
        match self {
            Join::Citizenship => "CROSS JOIN LATERAL unnest(CASE WHEN cardinality(v.citizenship) = 0 THEN ARRAY['unknown'] ELSE v.citizenship END) AS cit(code)",
            Join::CitizenshipRegion => "LEFT JOIN country_regions cr_cit ON cr_cit.country = cit.code",
            Join::ExploitationRegion => "LEFT JOIN country_regions cr_exp ON cr_exp.country = v.country_of_exploitation",
            Join::ExploitationType => "CROSS JOIN LATERAL unnest(CASE WHEN cardinality(v.exploitation_types) = 0 THEN ARRAY['unknown'] ELSE v.exploitation_types END) AS et(kind)",
            Join::Recruitment => "CROSS JOIN LATERAL unnest(CASE WHEN cardinality(v.recruitment_methods) = 0 THEN ARRAY['unknown'] ELSE v.recruitment_methods END) AS rm(method)",
            Join::Control => "CROSS JOIN LATERAL unnest(CASE WHEN cardinality(v.means_of_control) = 0 THEN ARRAY['unknown'] ELSE v.means_of_control END) AS mc(means)",
            Join::Assistance => "JOIN assistance_records a ON a.victim_id = v.id",
            Join::Referrals => "JOIN referrals r ON r.victim_id = v.id",
            // The headline figures a victim counts towards (a victim counts once per figure).
            Join::Figures => {
                "LEFT JOIN LATERAL unnest(array_remove(ARRAY[
                    CASE WHEN v.is_minor THEN 'minors' END,
                    CASE WHEN v.trafficking_status = 'actual' THEN 'confirmed_victims' END,
                    CASE WHEN EXISTS (SELECT 1 FROM assistance_records a WHERE a.victim_id = v.id) THEN 'assisted' END,
                    CASE WHEN EXISTS (SELECT 1 FROM referrals r WHERE r.victim_id = v.id) THEN 'referred' END,
                    CASE WHEN EXISTS (SELECT 1 FROM referrals r WHERE r.victim_id = v.id AND r.accepted_at IS NOT NULL) THEN 'referral_accepted' END,
                    CASE WHEN EXISTS (SELECT 1 FROM referrals r WHERE r.victim_id = v.id AND r.status = 'completed') THEN 'referral_completed' END
                 ], NULL)) AS fig(name) ON true"
            }
        }
    }
}

impl Dimension {
    /// The SQL expression (never NULL) and the joins it needs.
    pub fn sql(self) -> (&'static str, &'static [Join]) {
        use Dimension::*;
        match self {
            Citizenship => ("cit.code", &[Join::Citizenship]),
            CitizenshipSubregion => ("coalesce(cr_cit.subregion, 'unknown')", &[Join::Citizenship, Join::CitizenshipRegion]),
            CitizenshipRegion => ("coalesce(cr_cit.region, 'unknown')", &[Join::Citizenship, Join::CitizenshipRegion]),
            CountryOfExploitation => ("coalesce(v.country_of_exploitation::text, 'unknown')", &[]),
            ExploitationSubregion => ("coalesce(cr_exp.subregion, 'unknown')", &[Join::ExploitationRegion]),
            ExploitationRegion => ("coalesce(cr_exp.region, 'unknown')", &[Join::ExploitationRegion]),
            ExploitationType => ("et.kind", &[Join::ExploitationType]),
            Gender => ("v.gender", &[]),
            AgeBand => (
                "CASE WHEN v.age_at_identification IS NULL THEN (CASE WHEN v.is_minor THEN 'minor_age_unknown' ELSE 'unknown' END) \
                 WHEN v.age_at_identification <= 8 THEN '0-8' WHEN v.age_at_identification <= 17 THEN '9-17' \
                 WHEN v.age_at_identification <= 20 THEN '18-20' WHEN v.age_at_identification <= 23 THEN '21-23' \
                 WHEN v.age_at_identification <= 26 THEN '24-26' WHEN v.age_at_identification <= 29 THEN '27-29' \
                 WHEN v.age_at_identification <= 38 THEN '30-38' WHEN v.age_at_identification <= 47 THEN '39-47' ELSE '48+' END",
                &[],
            ),
            MinorOrAdult => ("CASE WHEN v.is_minor THEN 'minor' ELSE 'adult' END", &[]),
            RecruitmentMethod => ("rm.method", &[Join::Recruitment]),
            MeansOfControl => ("mc.means", &[Join::Control]),
            RecruiterRelation => ("coalesce(v.recruiter_relation, 'unknown')", &[]),
            TraffickingStatus => ("v.trafficking_status", &[]),
            IdentifiedBy => ("coalesce(v.identified_by, 'unknown')", &[]),
            IdentifiedMonth => ("to_char(v.identified_on, 'YYYY-MM')", &[]),
            IdentifiedQuarter => ("to_char(v.identified_on, 'YYYY-\"Q\"Q')", &[]),
            IdentifiedYear => ("to_char(v.identified_on, 'YYYY')", &[]),
            AssistanceKind => ("a.kind", &[Join::Assistance]),
            ReferralService => ("r.service", &[Join::Referrals]),
            ReferralStatus => ("r.status", &[Join::Referrals]),
            ReferralResponseTime => (
                "CASE WHEN coalesce(r.accepted_at, r.declined_at) IS NULL THEN 'no_response' \
                 WHEN coalesce(r.accepted_at, r.declined_at) - r.created_at < interval '1 day' THEN 'under_1_day' \
                 WHEN coalesce(r.accepted_at, r.declined_at) - r.created_at < interval '4 days' THEN '1_to_3_days' \
                 WHEN coalesce(r.accepted_at, r.declined_at) - r.created_at < interval '8 days' THEN '4_to_7_days' \
                 WHEN coalesce(r.accepted_at, r.declined_at) - r.created_at < interval '31 days' THEN '8_to_30_days' \
                 ELSE 'over_30_days' END",
                &[Join::Referrals],
            ),
            Figure => ("coalesce(fig.name, 'none_of_these')", &[Join::Figures]),
        }
    }
}

impl Dimension {
    /// Every value the dimension can take, when that is a fixed vocabulary (including `unknown`
    /// where the SQL yields it); `None` for geography and time, whose values are data-driven.
    pub fn vocabulary(self) -> Option<Vec<String>> {
        use crate::domain::case_vocab as v;
        fn all<T: Copy + std::fmt::Display>(items: &[T]) -> Vec<String> {
            items.iter().map(|x| x.to_string()).collect()
        }
        let with_unknown = |mut values: Vec<String>| {
            if !values.iter().any(|x| x == "unknown") {
                values.push("unknown".into());
            }
            values
        };
        use Dimension::*;
        Some(match self {
            ExploitationType => with_unknown(all(v::ExploitationType::ALL)),
            RecruitmentMethod => with_unknown(all(v::RecruitmentMethod::ALL)),
            MeansOfControl => with_unknown(all(v::MeansOfControl::ALL)),
            RecruiterRelation => with_unknown(all(v::RecruiterRelation::ALL)),
            Gender => all(v::Gender::ALL),
            TraffickingStatus => all(v::TraffickingStatus::ALL),
            IdentifiedBy => with_unknown(all(v::IdentifiedBy::ALL)),
            AssistanceKind | ReferralService => all(v::ServiceKind::ALL),
            ReferralStatus => all(v::ReferralStatus::ALL),
            MinorOrAdult => vec!["minor".into(), "adult".into()],
            AgeBand => ["0-8", "9-17", "18-20", "21-23", "24-26", "27-29", "30-38", "39-47", "48+", "minor_age_unknown", "unknown"]
                .iter()
                .map(|x| x.to_string())
                .collect(),
            ReferralResponseTime => ["under_1_day", "1_to_3_days", "4_to_7_days", "8_to_30_days", "over_30_days", "no_response"]
                .iter()
                .map(|x| x.to_string())
                .collect(),
            Figure => FIGURES.iter().map(|x| x.to_string()).collect(),
            _ => return None,
        })
    }
}

/// The headline figures of the `figure` dimension. (The number identified is the total.)
pub const FIGURES: [&str; 7] =
    ["minors", "confirmed_victims", "assisted", "referred", "referral_accepted", "referral_completed", "none_of_these"];

/// A month, `YYYY-MM`: the finest time grain of a report parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2026-09")]
pub struct Month(pub chrono::NaiveDate);

impl TryFrom<String> for Month {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        chrono::NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d")
            .map(Month)
            .map_err(|_| "must be a month, YYYY-MM".to_owned())
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
