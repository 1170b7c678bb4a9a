//! Fictional but realistic case data, shaped like the patterns partners ask about: South America
//! and Asia into Africa, the West African coast, Peru/Brazil overland, scam compounds in South-East
//! Asia. Every name is invented; no record describes a real person.

use chrono::{Duration, NaiveDate};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use crate::domain::case_vocab::*;
use crate::domain::{CountryCode, OperationTag};
use crate::victims::model::{Consent, RouteLeg, ValidVictim, VictimInput};

pub struct Pattern {
    pub weight: u32,
    pub origins: &'static [&'static str],
    pub transits: &'static [&'static str],
    pub destinations: &'static [&'static str],
    pub exploitation: &'static [(ExploitationType, u32)],
    pub recruitment: &'static [(RecruitmentMethod, u32)],
    pub women_share: f64,
    pub minor_share: f64,
}

pub const PATTERNS: &[Pattern] = &[
    // South America into Africa.
    Pattern {
        weight: 18,
        origins: &["PER", "BRA", "COL", "VEN", "BOL"],
        transits: &["BRA", "CPV"],
        destinations: &["SEN", "GNB", "MAR", "NGA"],
        exploitation: &[
            (ExploitationType::SexualExploitation, 5),
            (ExploitationType::ForcedLabour, 3),
            (ExploitationType::ForcedCriminality, 2),
        ],
        recruitment: &[
            (RecruitmentMethod::DeceptiveJobOffer, 6),
            (RecruitmentMethod::OnlineSocialNetwork, 3),
            (RecruitmentMethod::IntimatePartner, 1),
        ],
        women_share: 0.7,
        minor_share: 0.12,
    },
    // Asia into Africa.
    Pattern {
        weight: 14,
        origins: &["CHN", "VNM", "PHL", "IND", "BGD", "NPL"],
        transits: &["ARE", "ETH"],
        destinations: &["NGA", "GHA", "KEN", "ZAF", "AGO"],
        exploitation: &[
            (ExploitationType::ForcedLabour, 6),
            (ExploitationType::DomesticServitude, 3),
            (ExploitationType::SexualExploitation, 2),
        ],
        recruitment: &[
            (RecruitmentMethod::RecruitmentAgency, 5),
            (RecruitmentMethod::DeceptiveJobOffer, 4),
            (RecruitmentMethod::FamilyOrFriends, 1),
        ],
        women_share: 0.45,
        minor_share: 0.08,
    },
    // Along the West African coast.
    Pattern {
        weight: 26,
        origins: &["NGA", "GHA", "GIN", "SLE", "LBR", "CIV", "MLI"],
        transits: &["SEN", "GNB", "MRT"],
        destinations: &["MAR", "DZA", "SEN", "GNB"],
        exploitation: &[
            (ExploitationType::SexualExploitation, 4),
            (ExploitationType::ForcedLabour, 3),
            (ExploitationType::ForcedBegging, 2),
            (ExploitationType::ChildLabour, 1),
        ],
        recruitment: &[
            (RecruitmentMethod::FamilyOrFriends, 4),
            (RecruitmentMethod::DeceptiveJobOffer, 4),
            (RecruitmentMethod::PeerRecruitmentPyramid, 2),
        ],
        women_share: 0.6,
        minor_share: 0.3,
    },
    // Overland through Peru and Brazil.
    Pattern {
        weight: 17,
        origins: &["VEN", "COL", "BOL", "ECU", "HTI"],
        transits: &["PER", "BOL"],
        destinations: &["BRA", "PER", "CHL"],
        exploitation: &[
            (ExploitationType::ForcedLabour, 5),
            (ExploitationType::SexualExploitation, 4),
            (ExploitationType::ForcedBegging, 1),
        ],
        recruitment: &[
            (RecruitmentMethod::DeceptiveJobOffer, 5),
            (RecruitmentMethod::OnlineAdvertisement, 3),
            (RecruitmentMethod::FamilyOrFriends, 2),
        ],
        women_share: 0.55,
        minor_share: 0.18,
    },
    // Online-scam compounds: forced criminality.
    Pattern {
        weight: 25,
        origins: &["KEN", "UGA", "ETH", "IDN", "PHL", "IND", "VNM", "CHN", "LKA"],
        transits: &["THA", "ARE"],
        destinations: &["MMR", "KHM", "LAO"],
        exploitation: &[(ExploitationType::ForcedCriminality, 9), (ExploitationType::ForcedLabour, 1)],
        recruitment: &[
            (RecruitmentMethod::DeceptiveJobOffer, 6),
            (RecruitmentMethod::OnlineSocialNetwork, 3),
            (RecruitmentMethod::PeerRecruitmentPyramid, 2),
        ],
        women_share: 0.35,
        minor_share: 0.04,
    },
];

const GIVEN: &[&str] = &[
    "Amara",
    "Kofi",
    "Lucía",
    "Thanh",
    "Ifeoma",
    "Mateo",
    "Siti",
    "Juma",
    "Rosa",
    "Arjun",
    "Nia",
    "Tomás",
    "Mei",
    "Yaw",
    "Valentina",
    "Dawit",
];
const FAMILY: &[&str] = &[
    "Sesay-Fict",
    "Okonkwo-Fict",
    "Quispe-Fict",
    "Nguyen-Fict",
    "Mensah-Fict",
    "Rojas-Fict",
    "Putri-Fict",
    "Otieno-Fict",
    "Diallo-Fict",
    "Silva-Fict",
];

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, options: &[(T, u32)]) -> T {
    let total: u32 = options.iter().map(|o| o.1).sum();
    let mut pick = rng.random_range(0..total);
    for (value, weight) in options {
        if pick < *weight {
            return *value;
        }
        pick -= weight;
    }
    options[0].0
}

fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("seed countries are valid")
}

fn pick<'a>(rng: &mut ChaCha8Rng, from: &'a [&'a str]) -> &'a str {
    from.choose(rng).copied().expect("non-empty")
}

pub fn pattern(rng: &mut ChaCha8Rng) -> &'static Pattern {
    let weights: Vec<(usize, u32)> = PATTERNS.iter().enumerate().map(|(i, p)| (i, p.weight)).collect();
    &PATTERNS[weighted(rng, &weights)]
}

/// A case file following `p`, identified between 2024-01-01 and 2026-10-31.
pub fn victim(rng: &mut ChaCha8Rng, p: &Pattern) -> ValidVictim {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    let identified_on = start + Duration::days(rng.random_range(0..1035));
    let minor = rng.random_bool(p.minor_share);
    let age: i16 = if minor { rng.random_range(9..18) } else { rng.random_range(18..55) };
    let origin = pick(rng, p.origins);
    let destination = pick(rng, p.destinations);
    let gender = if rng.random_bool(0.02) {
        Gender::TransOrNonConforming
    } else if rng.random_bool(p.women_share) {
        Gender::Woman
    } else {
        Gender::Man
    };
    let primary = weighted(rng, p.exploitation);
    let mut exploitation_types = vec![primary];
    if rng.random_bool(0.15) {
        exploitation_types.push(weighted(rng, p.exploitation));
    }
    let mut means_of_control = vec![MeansOfControl::FalsePromises];
    for (means, chance) in [
        (MeansOfControl::DebtBondage, 0.45),
        (MeansOfControl::WithholdsDocuments, 0.5),
        (MeansOfControl::RestrictsMovement, 0.4),
        (MeansOfControl::Threats, 0.35),
        (MeansOfControl::PhysicalAbuse, 0.2),
        (MeansOfControl::ExcessiveWorkingHours, 0.3),
        (MeansOfControl::ThreatensFamily, 0.1),
    ] {
        if rng.random_bool(chance) {
            means_of_control.push(means);
        }
    }
    let month = |d: NaiveDate| Some(d.format("%Y-%m").to_string());
    let recruited = identified_on - Duration::days(rng.random_range(60..400));
    let exploited = identified_on - Duration::days(rng.random_range(10..59));
    let mut route =
        vec![RouteLeg { kind: RouteLegKind::Recruitment, country: country(origin), month: month(recruited) }];
    if rng.random_bool(0.6) {
        route.push(RouteLeg { kind: RouteLegKind::Transit, country: country(pick(rng, p.transits)), month: None });
    }
    route.push(RouteLeg { kind: RouteLegKind::Exploitation, country: country(destination), month: month(exploited) });
    // A named two-week operation in September 2026 tags its cases.
    let in_operation = identified_on >= NaiveDate::from_ymd_opt(2026, 9, 7).expect("date")
        && identified_on <= NaiveDate::from_ymd_opt(2026, 9, 20).expect("date");
    let input = VictimInput {
        id: None,
        status: weighted(
            rng,
            &[
                (CaseStatus::Active, 4),
                (CaseStatus::FollowUp, 3),
                (CaseStatus::Closed, 2),
                (CaseStatus::ClosedReferred, 1),
            ],
        ),
        trafficking_status: weighted(
            rng,
            &[(TraffickingStatus::Actual, 6), (TraffickingStatus::Possible, 3), (TraffickingStatus::NotAVictim, 1)],
        ),
        identified_on,
        identified_in: Some(country(destination)),
        identified_by: Some(weighted(
            rng,
            &[
                (IdentifiedBy::Police, 4),
                (IdentifiedBy::Ngo, 4),
                (IdentifiedBy::SelfIdentified, 1),
                (IdentifiedBy::Government, 1),
            ],
        )),
        operation: in_operation.then(|| OperationTag::parse("OP-SENTINEL-2026").expect("a valid tag")),
        gender,
        age_at_identification: rng.random_bool(0.9).then_some(age),
        is_minor: Some(minor),
        citizenship: vec![country(origin)],
        migrant_status: Some(weighted(
            rng,
            &[
                (MigrantStatus::IrregularMigrant, 5),
                (MigrantStatus::RegularMigrant, 2),
                (MigrantStatus::AsylumSeeker, 1),
                (MigrantStatus::Unknown, 1),
            ],
        )),
        country_of_exploitation: Some(country(destination)),
        exploitation_types,
        labour_sector: (primary == ExploitationType::ForcedLabour)
            .then(|| ["A", "C", "F", "I"].choose(rng).expect("non-empty").to_string()),
        recruitment_methods: vec![weighted(rng, p.recruitment)],
        means_of_control,
        recruiter_relation: Some(weighted(
            rng,
            &[
                (RecruiterRelation::Stranger, 3),
                (RecruiterRelation::FriendOrAcquaintance, 3),
                (RecruiterRelation::RecruitmentAgent, 2),
                (RecruiterRelation::Family, 1),
                (RecruiterRelation::IntimatePartner, 1),
            ],
        )),
        route,
        consent: Consent {
            services: rng.random_bool(0.95),
            share_with_referral_partners: rng.random_bool(0.7),
            anonymised_statistics: rng.random_bool(0.85),
            recorded_at: None,
            // Chosen without drawing, so every other seeded value stays what it was.
            method: Some(if minor { ConsentMethod::Guardian } else { ConsentMethod::Verbal }),
        },
        sex_exploitation_types: Vec::new(),
        recruitment_platforms: Vec::new(),
        exploitation_platforms: Vec::new(),
        perpetrator_roles: Vec::new(),
        age_when_trafficked: None,
        primary_language: None,
        secondary_language: None,
        identity: None,
    };
    ValidVictim::try_from(input).expect("generated records are valid")
}

pub fn identity(rng: &mut ChaCha8Rng, n: u64) -> crate::privacy::identity::Identity {
    crate::privacy::identity::Identity {
        given_names: Some(pick(rng, GIVEN).to_owned()),
        family_names: Some(pick(rng, FAMILY).to_owned()),
        document_type: Some("passport".into()),
        document_number: Some(format!("FX{n:09}")),
        notes: rng.random_bool(0.2).then(|| "Fictional seed record.".to_owned()),
        ..Default::default()
    }
}

pub fn assistance_kind(rng: &mut ChaCha8Rng) -> ServiceKind {
    weighted(
        rng,
        &[
            (ServiceKind::Shelter, 5),
            (ServiceKind::Medical, 4),
            (ServiceKind::Psychosocial, 4),
            (ServiceKind::Legal, 3),
            (ServiceKind::Interpretation, 2),
            (ServiceKind::Repatriation, 2),
            (ServiceKind::FamilyReunification, 1),
            (ServiceKind::Financial, 1),
            (ServiceKind::Livelihood, 1),
        ],
    )
}

/// Why a seeded case was closed: `referred_elsewhere` is what `closed_referred` means; the rest
/// weighted as reasons come in practice.
pub fn closure_reason(rng: &mut ChaCha8Rng, status: CaseStatus) -> ClosureReason {
    if status == CaseStatus::ClosedReferred {
        return ClosureReason::ReferredElsewhere;
    }
    weighted(
        rng,
        &[
            (ClosureReason::GoalsMet, 40),
            (ClosureReason::ReturnedHome, 25),
            (ClosureReason::LostContact, 15),
            (ClosureReason::DeclinedFurtherSupport, 10),
            (ClosureReason::MovedAway, 10),
        ],
    )
}

pub fn referral_outcome(rng: &mut ChaCha8Rng) -> ReferralStatus {
    weighted(
        rng,
        &[
            (ReferralStatus::Completed, 40),
            (ReferralStatus::Accepted, 20),
            (ReferralStatus::Pending, 15),
            (ReferralStatus::Declined, 15),
            (ReferralStatus::Cancelled, 10),
        ],
    )
}

/// Organisations of the seed: (name, kind, country).
pub const ORGANIZATIONS: &[(&str, OrganizationKindSeed, &str)] = &[
    ("Refuge Dakar (fictional)", OrganizationKindSeed::Ngo, "SEN"),
    ("Casa Andina (fictional)", OrganizationKindSeed::Ngo, "PER"),
    ("Lagos Anti-Trafficking Unit (fictional)", OrganizationKindSeed::LawEnforcement, "NGA"),
    ("Bissau Safe Harbour (fictional)", OrganizationKindSeed::Ngo, "GNB"),
    ("Rabat Legal Aid (fictional)", OrganizationKindSeed::Legal, "MAR"),
    ("Manaus Health Outreach (fictional)", OrganizationKindSeed::Health, "BRA"),
    ("Mekong Rescue Network (fictional)", OrganizationKindSeed::Ngo, "THA"),
    ("Nairobi Return Desk (fictional)", OrganizationKindSeed::Government, "KEN"),
    ("Accra Shelter Trust (fictional)", OrganizationKindSeed::Ngo, "GHA"),
    ("Algiers Migrant Support (fictional)", OrganizationKindSeed::Ngo, "DZA"),
    ("Phnom Penh Recovery (fictional)", OrganizationKindSeed::Ngo, "KHM"),
    ("Regional Migration Office (fictional)", OrganizationKindSeed::InternationalOrganization, "SEN"),
];

pub type OrganizationKindSeed = crate::domain::OrganizationKind;
