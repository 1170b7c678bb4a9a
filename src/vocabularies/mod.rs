//! Every code list Haven serves, mapped to HTCDS v2.0 and CTDC, with labels in the languages of the
//! people using it (D112). `codes.tsv` is the one table of names and labels; `LISTS` says which
//! Haven vocabulary each list is and which HTCDS field it fills. The HTCDS export and import read
//! their value names from here, never from a table of their own.

pub mod routes;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::case_vocab::*;
use crate::domain::{OrganizationKind, Role};

/// Changes whenever a code, a mapping or a label does (a test pins the served lists' digest to it), so
/// an offline client knows when to fetch the lists again.
pub const VERSION: &str = "2026.12.2";

/// The languages every label is given in: English, French (Senegal), Spanish (Peru) and
/// Portuguese (Guinea-Bissau, Brazil).
pub const LANGUAGES: [&str; 4] = ["en", "fr", "es", "pt"];

/// ISIC rev. 4 sections, Haven's `labour_sector`.
const ISIC_SECTIONS: [&str; 21] =
    ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U"];

fn all<T: Copy>(values: &'static [T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    values.iter().map(|v| name(*v)).collect()
}

/// What a list is: its Haven vocabulary, the fields that take it, and its HTCDS and CTDC fields.
pub struct ListSpec {
    pub name: &'static str,
    pub used_by: &'static [&'static str],
    /// The HTCDS v2.0 field (with its prefix) the list's codes export to and import from.
    pub htcds_field: Option<&'static str>,
    /// Whether the HTCDS import reads this field (every HTCDS value then has one Haven code).
    pub imported: bool,
    pub notes: &'static str,
    codes: fn() -> Vec<&'static str>,
}

pub static LISTS: &[ListSpec] = &[
    ListSpec {
        name: "case_status",
        used_by: &["CaseFile.status"],
        htcds_field: Some("cas_Status"),
        imported: true,
        notes: "",
        codes: || all(CaseStatus::ALL, CaseStatus::as_str),
    },
    ListSpec {
        name: "trafficking_status",
        used_by: &["CaseFile.trafficking_status"],
        htcds_field: Some("vic_TraffickingStatus"),
        imported: true,
        notes: "",
        codes: || all(TraffickingStatus::ALL, TraffickingStatus::as_str),
    },
    ListSpec {
        name: "identified_by",
        used_by: &["CaseFile.identified_by"],
        htcds_field: Some("vic_TraffickingStatusDecisionMakingOrg"),
        imported: true,
        notes: "HTCDS has no self-identification: `self` exports as Other, and Other imports as `other`.",
        codes: || all(IdentifiedBy::ALL, IdentifiedBy::as_str),
    },
    ListSpec {
        name: "gender",
        used_by: &["CaseFile.gender"],
        htcds_field: Some("prs_Gender"),
        imported: true,
        notes: "Haven counts gender as CTDC does: HTCDS's TransgenderFeminine, TransgenderMasculine and NonConforming all import as `trans_or_non_conforming`, which exports as NonConforming.",
        codes: || all(Gender::ALL, Gender::as_str),
    },
    ListSpec {
        name: "exploitation_type",
        used_by: &["CaseFile.exploitation_types"],
        htcds_field: Some("vic_TypeOfExploitation"),
        imported: true,
        notes: "Haven is finer than HTCDS: `forced_criminality` (scam compounds, online fraud) exports as Other; HTCDS Servitude is Haven's `domestic_servitude`.",
        codes: || all(ExploitationType::ALL, ExploitationType::as_str),
    },
    ListSpec {
        name: "sex_exploitation_type",
        used_by: &["CaseFile.sex_exploitation_types"],
        htcds_field: Some("vic_TypeOfSexExploitation"),
        imported: true,
        notes: "",
        codes: || all(SexExploitationType::ALL, SexExploitationType::as_str),
    },
    ListSpec {
        name: "platform",
        used_by: &["CaseFile.recruitment_platforms", "CaseFile.exploitation_platforms"],
        htcds_field: Some("vic_RecruitmentWebsitesAndApps"),
        imported: true,
        notes: "The same list fills vic_ExploitationWebsitesAndApps.",
        codes: || all(Platform::ALL, Platform::as_str),
    },
    ListSpec {
        name: "recruitment_method",
        used_by: &["CaseFile.recruitment_methods"],
        htcds_field: Some("vic_MethodOfRecruitment"),
        imported: true,
        notes: "HTCDS records where or through what a person was recruited; Haven also records how. `deceptive_job_offer`, `intimate_partner` and `abduction` export as Other, `recruitment_agency` as AtAPlaceOfBusiness and `peer_recruitment_pyramid` as ThroughFriendsOrSocialEvents; each HTCDS value imports as the Haven code that exports as it.",
        codes: || all(RecruitmentMethod::ALL, RecruitmentMethod::as_str),
    },
    ListSpec {
        name: "means_of_control",
        used_by: &["CaseFile.means_of_control"],
        htcds_field: Some("vic_MethodsOfControl"),
        imported: true,
        notes: "`restricts_movement` and `uses_children` are CTDC's and export to HTCDS as Other.",
        codes: || all(MeansOfControl::ALL, MeansOfControl::as_str),
    },
    ListSpec {
        name: "recruiter_relation",
        used_by: &["CaseFile.recruiter_relation"],
        htcds_field: Some("vic_RelationshipToTrafficker"),
        imported: true,
        notes: "HTCDS has three degrees (Familial, Acquainted, Unaquainted, spelt as the standard spells it); Haven's finer relations export to the degree they fall under, and `other` and `unknown` export empty.",
        codes: || all(RecruiterRelation::ALL, RecruiterRelation::as_str),
    },
    ListSpec {
        name: "migrant_status",
        used_by: &["CaseFile.migrant_status"],
        htcds_field: None,
        imported: false,
        notes: "HTCDS v2.0 has no migration-status field; the codes follow IOM's and CTDC's categories and travel in the export as Haven's own column.",
        codes: || all(MigrantStatus::ALL, MigrantStatus::as_str),
    },
    ListSpec {
        name: "perpetrator_role",
        used_by: &["CaseFile.perpetrator_roles"],
        htcds_field: Some("per_RoleInProcess"),
        imported: true,
        notes: "",
        codes: || all(PerpetratorRole::ALL, PerpetratorRole::as_str),
    },
    ListSpec {
        name: "labour_sector",
        used_by: &["CaseFile.labour_sector"],
        htcds_field: Some("vic_ForcedLabourIndustry"),
        imported: true,
        notes: "ISIC rev. 4 sections.",
        codes: || ISIC_SECTIONS.to_vec(),
    },
    ListSpec {
        name: "route_leg_kind",
        used_by: &["RouteLeg.kind"],
        htcds_field: Some("hte_Type"),
        imported: true,
        notes: "",
        codes: || all(RouteLegKind::ALL, RouteLegKind::as_str),
    },
    ListSpec {
        name: "transfer_reason",
        used_by: &["Transfer.reason"],
        htcds_field: Some("cas_ReasonForOutgoingReferral"),
        imported: false,
        notes: "",
        codes: || all(TransferReason::ALL, TransferReason::as_str),
    },
    ListSpec {
        name: "support_kind",
        used_by: &["SupportGoal.kind"],
        htcds_field: Some("spl_Type"),
        imported: false,
        notes: "",
        codes: || all(SupportKind::ALL, SupportKind::as_str),
    },
    ListSpec {
        name: "closure_reason",
        used_by: &["CaseClosure.reason"],
        htcds_field: Some("cas_ReasonForCaseClosure"),
        imported: true,
        notes: "HTCDS leaves the reason as free text: the export writes the English label, and the import reads it back.",
        codes: || all(ClosureReason::ALL, ClosureReason::as_str),
    },
    ListSpec {
        name: "organization_kind",
        used_by: &["Organization.kind"],
        htcds_field: Some("org_Type"),
        imported: false,
        notes: "HTCDS's local government and immigration services are Haven's `government`; it has no international organisations.",
        codes: || all(OrganizationKind::ALL, OrganizationKind::as_str),
    },
    ListSpec {
        name: "service_kind",
        used_by: &["Assistance.kind", "Referral.service", "ExternalReferral.service"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(ServiceKind::ALL, ServiceKind::as_str),
    },
    ListSpec {
        name: "referral_status",
        used_by: &["Referral.status"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(ReferralStatus::ALL, ReferralStatus::as_str),
    },
    ListSpec {
        name: "urgency",
        used_by: &["Referral.urgency"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(Urgency::ALL, Urgency::as_str),
    },
    ListSpec {
        name: "decline_reason",
        used_by: &["Referral.decline_reason"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(DeclineReason::ALL, DeclineReason::as_str),
    },
    ListSpec {
        name: "transfer_status",
        used_by: &["Transfer.status"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(TransferStatus::ALL, TransferStatus::as_str),
    },
    ListSpec {
        name: "reopen_reason",
        used_by: &["CaseClosure.reopen_reason"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(ReopenReason::ALL, ReopenReason::as_str),
    },
    ListSpec {
        name: "task_kind",
        used_by: &["Task.kind"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(TaskKind::ALL, TaskKind::as_str),
    },
    ListSpec {
        name: "task_status",
        used_by: &["Task.status"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(TaskStatus::ALL, TaskStatus::as_str),
    },
    ListSpec {
        name: "goal_status",
        used_by: &["SupportGoal.status"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(GoalStatus::ALL, GoalStatus::as_str),
    },
    ListSpec {
        name: "consent_method",
        used_by: &["Consent.method"],
        htcds_field: None,
        imported: false,
        notes: "HTCDS con_Consent is a yes/no; how consent was given is Haven's.",
        codes: || all(ConsentMethod::ALL, ConsentMethod::as_str),
    },
    ListSpec {
        name: "role",
        used_by: &["User.role"],
        htcds_field: None,
        imported: false,
        notes: "",
        codes: || all(Role::ALL, Role::as_str),
    },
];

/// A code's names elsewhere and its labels.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Code {
    pub code: &'static str,
    /// The HTCDS v2.0 value name this code exports as (absent: HTCDS has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub htcds: Option<&'static str>,
    /// The HTCDS value names that import as this code.
    pub htcds_import: Vec<&'static str>,
    /// The CTDC global-dataset name (a value, or the indicator column of a multi-valued field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctdc: Option<&'static str>,
    /// Labels keyed by language (`en`, `fr`, `es`, `pt`).
    pub labels: BTreeMap<&'static str, &'static str>,
}

/// One code list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CodeList {
    pub name: &'static str,
    /// The schema fields that take these codes.
    pub used_by: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub htcds_field: Option<&'static str>,
    /// How Haven's codes and the standard's differ, where they do.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub notes: &'static str,
    pub codes: Vec<Code>,
}

const TABLE: &str = include_str!("codes.tsv");

/// The table's rows by list, in table order (checked against the vocabularies by a test).
static ROWS: LazyLock<HashMap<&'static str, Vec<Code>>> = LazyLock::new(|| {
    let mut rows: HashMap<&'static str, Vec<Code>> = HashMap::new();
    for line in TABLE.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let f: Vec<&'static str> = line.split('\t').collect();
        let [list, code, htcds, import, ctdc, en, fr, es, pt] = f[..] else {
            panic!("codes.tsv: a row without nine columns: {line}");
        };
        let some = |s: &'static str| (!s.is_empty()).then_some(s);
        let labels = LANGUAGES.into_iter().zip([en, fr, es, pt]).collect();
        let htcds_import = import.split('|').filter(|s| !s.is_empty()).collect();
        rows.entry(list).or_default().push(Code { code, htcds: some(htcds), htcds_import, ctdc: some(ctdc), labels });
    }
    rows
});

/// A list's codes in the vocabulary's own order (the enum decides which codes exist; the table
/// what they are called).
fn list(spec: &ListSpec) -> CodeList {
    let rows = ROWS.get(spec.name).map(Vec::as_slice).unwrap_or_default();
    let codes = (spec.codes)().into_iter().filter_map(|c| rows.iter().find(|r| r.code == c).cloned()).collect();
    CodeList {
        name: spec.name,
        used_by: spec.used_by.to_vec(),
        htcds_field: spec.htcds_field,
        notes: spec.notes,
        codes,
    }
}

/// Every list, as served.
pub fn lists() -> Vec<CodeList> {
    LISTS.iter().map(list).collect()
}

/// The HTCDS value a Haven code exports as.
pub fn to_htcds(list_name: &str, code: &str) -> Option<&'static str> {
    ROWS.get(list_name)?.iter().find(|c| c.code == code)?.htcds
}

/// The Haven code an HTCDS value imports as (case-insensitive, as spreadsheets are typed by hand).
pub fn from_htcds(list_name: &str, value: &str) -> Option<&'static str> {
    let rows = ROWS.get(list_name)?;
    rows.iter().find(|c| c.htcds_import.iter().any(|v| v.eq_ignore_ascii_case(value.trim()))).map(|c| c.code)
}

/// A code's CTDC name.
pub fn ctdc(list_name: &str, code: &str) -> Option<&'static str> {
    ROWS.get(list_name)?.iter().find(|c| c.code == code)?.ctdc
}

/// A code's English label (what HTCDS free-text fields receive).
pub fn label(list_name: &str, code: &str) -> Option<&'static str> {
    ROWS.get(list_name)?.iter().find(|c| c.code == code)?.labels.get("en").copied()
}

#[cfg(test)]
mod tests;
