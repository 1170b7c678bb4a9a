//! The whitelisted dimensions a report may group by: what values each can take (the grid a
//! guarded release lists, fixed by the vocabulary and never by the data), and how many of them
//! one victim may count under. Geography stops at the country, time at the month, age at CTDC
//! bands: the finest grain the guard allows. Their SQL is in `sql.rs`.

use crate::domain::country;
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
        RecruitmentCountry => "recruitment_country",
        RecruitmentSubregion => "recruitment_subregion",
        RecruitmentRegion => "recruitment_region",
        TransitCountry => "transit_country",
        TransitSubregion => "transit_subregion",
        TransitRegion => "transit_region",
        ExploitationType => "exploitation_type",
        LabourSector => "labour_sector",
        Gender => "gender",
        AgeBand => "age_band",
        MinorOrAdult => "minor_or_adult",
        MigrantStatus => "migrant_status",
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
        ClosureReason => "closure_reason",
        CaseDuration => "case_duration",
        Figure => "figure",
    }
}

/// The headline figures of the `figure` dimension. (The number identified is the total.)
pub const FIGURES: [&str; 7] =
    ["minors", "confirmed_victims", "assisted", "referred", "referral_accepted", "referral_completed", "none_of_these"];

/// Time grains: their values depend on the window asked for, not on a vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeGrain {
    Month,
    Quarter,
    Year,
}

/// ISIC Rev. 4 sections, the grain of `labour_sector`.
const ISIC_SECTIONS: &str = "ABCDEFGHIJKLMNOPQRSTU";

impl Dimension {
    /// How many values of this dimension one victim may count under in a guarded release (their
    /// contribution bound), or `None` for a dimension where each victim has exactly one value.
    /// A victim with more values counts under that many of them, chosen by a keyed hash of the
    /// victim and value so every release makes the same choice (see `sql.rs`). The bounds keep
    /// the noise proportionate; each is set above what most case files hold, so that truncation
    /// rarely drops a value (docs/DECISIONS.md D63).
    pub fn bound(self) -> Option<u32> {
        use Dimension::*;
        match self {
            Citizenship | CitizenshipSubregion | CitizenshipRegion => Some(2),
            RecruitmentCountry | RecruitmentSubregion | RecruitmentRegion => Some(2),
            TransitCountry | TransitSubregion | TransitRegion => Some(2),
            ExploitationType => Some(2),
            RecruitmentMethod => Some(2),
            MeansOfControl => Some(5),
            AssistanceKind => Some(3),
            // Referral dimensions come from the victim's referrals, of which two count.
            ReferralService | ReferralStatus | ReferralResponseTime => Some(2),
            // At most six figures apply to one victim by construction (`none_of_these` excludes
            // the others): no truncation needed.
            Figure => Some(6),
            // Listed one by one, so a new dimension must be placed on purpose.
            CountryOfExploitation
            | ExploitationSubregion
            | ExploitationRegion
            | LabourSector
            | Gender
            | AgeBand
            | MinorOrAdult
            | MigrantStatus
            | RecruiterRelation
            | TraffickingStatus
            | IdentifiedBy
            | ClosureReason
            | CaseDuration
            | IdentifiedMonth
            | IdentifiedQuarter
            | IdentifiedYear => None,
        }
    }

    pub fn time_grain(self) -> Option<TimeGrain> {
        match self {
            Dimension::IdentifiedMonth => Some(TimeGrain::Month),
            Dimension::IdentifiedQuarter => Some(TimeGrain::Quarter),
            Dimension::IdentifiedYear => Some(TimeGrain::Year),
            _ => None,
        }
    }

    /// Every value the dimension can take, including `unknown` (and `none` for transit) where the
    /// SQL yields it; `None` for time, whose values are the periods of the window asked for.
    pub fn values(self) -> Option<Vec<String>> {
        use crate::domain::case_vocab as v;
        use Dimension::*;
        fn all<T: Copy + std::fmt::Display>(items: &[T]) -> Vec<String> {
            items.iter().map(|x| x.to_string()).collect()
        }
        fn with(mut values: Vec<String>, extra: &[&str]) -> Vec<String> {
            for e in extra {
                if !values.iter().any(|x| x == e) {
                    values.push((*e).to_owned());
                }
            }
            values
        }
        fn listed(items: &[&str]) -> Vec<String> {
            items.iter().map(|x| x.to_string()).collect()
        }
        let alpha3 = || country::alpha3_codes().to_vec();
        let regions = || country::regions().to_vec();
        let subregions = || country::subregions().to_vec();
        Some(match self {
            Citizenship | CountryOfExploitation | RecruitmentCountry => with(alpha3(), &["unknown"]),
            CitizenshipRegion | ExploitationRegion | RecruitmentRegion => with(regions(), &["unknown"]),
            CitizenshipSubregion | ExploitationSubregion | RecruitmentSubregion => with(subregions(), &["unknown"]),
            TransitCountry => with(alpha3(), &["none", "unknown"]),
            TransitRegion => with(regions(), &["none", "unknown"]),
            TransitSubregion => with(subregions(), &["none", "unknown"]),
            ExploitationType => with(all(v::ExploitationType::ALL), &["unknown"]),
            LabourSector => with(ISIC_SECTIONS.chars().map(String::from).collect(), &["unknown"]),
            RecruitmentMethod => with(all(v::RecruitmentMethod::ALL), &["unknown"]),
            MeansOfControl => with(all(v::MeansOfControl::ALL), &["unknown"]),
            RecruiterRelation => with(all(v::RecruiterRelation::ALL), &["unknown"]),
            MigrantStatus => with(all(v::MigrantStatus::ALL), &["unknown"]),
            Gender => all(v::Gender::ALL),
            TraffickingStatus => all(v::TraffickingStatus::ALL),
            IdentifiedBy => with(all(v::IdentifiedBy::ALL), &["unknown"]),
            AssistanceKind | ReferralService => all(v::ServiceKind::ALL),
            ReferralStatus => all(v::ReferralStatus::ALL),
            MinorOrAdult => listed(&["minor", "adult"]),
            AgeBand => listed(&[
                "0-8",
                "9-17",
                "18-20",
                "21-23",
                "24-26",
                "27-29",
                "30-38",
                "39-47",
                "48+",
                "minor_age_unknown",
                "unknown",
            ]),
            ReferralResponseTime => {
                listed(&["under_1_day", "1_to_3_days", "4_to_7_days", "8_to_30_days", "over_30_days", "no_response"])
            }
            // A closed case's reason and how long it was open, from identification to closure;
            // `open` for a case that is not closed, `unknown` for one closed without a recorded
            // closure (before closures were kept).
            ClosureReason => with(all(v::ClosureReason::ALL), &["open", "unknown"]),
            CaseDuration => listed(&[
                "under_3_months",
                "3_to_6_months",
                "6_to_12_months",
                "1_to_2_years",
                "over_2_years",
                "open",
                "unknown",
            ]),
            Figure => listed(&FIGURES),
            IdentifiedMonth | IdentifiedQuarter | IdentifiedYear => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dimension_is_placed_and_has_values_or_a_grain() {
        for d in Dimension::ALL {
            assert!(d.values().is_some() != d.time_grain().is_some(), "{d}: values or a time grain, not both");
            if let Some(values) = d.values() {
                let mut sorted = values.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), values.len(), "{d}: duplicate values");
                assert!(!values.iter().any(|v| v == "_total"), "{d}: `_total` is reserved");
            }
        }
        assert!(Dimension::Citizenship.values().unwrap().len() > 240);
        assert!(Dimension::TransitRegion.values().unwrap().contains(&"none".to_owned()));
    }
}
