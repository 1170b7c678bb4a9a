//! The case file: what a client sends (`VictimInput`), what is stored (`VictimRow`) and the
//! non-identifying view everyone entitled to the record sees (`CaseFile`).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::victims;
use crate::domain::case_vocab::*;
use crate::domain::{CountryCode, LanguageCode, OperationTag};
use crate::error::FieldError;
use crate::privacy::identity::Identity;
use crate::privacy::redaction::{Gated, View};

/// One stage of the journey: where and (at month precision) when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteLeg {
    pub kind: RouteLegKind,
    pub country: CountryCode,
    /// `YYYY-MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2026-03")]
    pub month: Option<String>,
}

/// What the person agreed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// To receive services.
    #[serde(default)]
    pub services: bool,
    /// To have their identity shared with organisations they are referred to.
    #[serde(default)]
    pub share_with_referral_partners: bool,
    /// To be counted in anonymised statistics.
    #[serde(default)]
    pub anonymised_statistics: bool,
    /// When consent was recorded (default: when the server stored it).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::domain::timestamp::rfc3339_option"
    )]
    pub recorded_at: Option<DateTime<Utc>>,
    /// How it was given. Every change of consent is kept in the case's consent history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<ConsentMethod>,
}

/// A victim's case file as a client writes it. `identity` is accepted from caseworkers of the
/// owning organisation only. Updates are JSON merge patches (RFC 7396) of this document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VictimInput {
    /// Client-chosen id (UUID), so an offline client can create and retry safely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(default = "default_status")]
    pub status: CaseStatus,
    pub trafficking_status: TraffickingStatus,
    pub identified_on: NaiveDate,
    #[serde(default)]
    pub identified_in: Option<CountryCode>,
    #[serde(default)]
    pub identified_by: Option<IdentifiedBy>,
    #[serde(default)]
    pub operation: Option<OperationTag>,
    pub gender: Gender,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 120)]
    pub age_at_identification: Option<i16>,
    /// Derived from the age when the age is given.
    #[serde(default)]
    pub is_minor: Option<bool>,
    #[serde(default)]
    #[schema(max_items = 5)]
    pub citizenship: Vec<CountryCode>,
    #[serde(default)]
    pub migrant_status: Option<MigrantStatus>,
    #[serde(default)]
    pub country_of_exploitation: Option<CountryCode>,
    #[serde(default)]
    pub exploitation_types: Vec<ExploitationType>,
    /// ISIC rev. 4 section letter (A-U).
    #[serde(default)]
    #[schema(pattern = "^[A-U]$", example = "C")]
    pub labour_sector: Option<String>,
    #[serde(default)]
    pub recruitment_methods: Vec<RecruitmentMethod>,
    #[serde(default)]
    pub means_of_control: Vec<MeansOfControl>,
    #[serde(default)]
    pub recruiter_relation: Option<RecruiterRelation>,
    /// Only meaningful with `sexual_exploitation` among the exploitation types.
    #[serde(default)]
    pub sex_exploitation_types: Vec<SexExploitationType>,
    /// Websites and apps through which the person was recruited.
    #[serde(default)]
    pub recruitment_platforms: Vec<Platform>,
    /// Websites and apps through which the person was exploited.
    #[serde(default)]
    pub exploitation_platforms: Vec<Platform>,
    /// What the perpetrators did (HTCDS `per_RoleInProcess`).
    #[serde(default)]
    pub perpetrator_roles: Vec<PerpetratorRole>,
    /// Age in years when the trafficking began.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 120)]
    pub age_when_trafficked: Option<i16>,
    /// For interpretation.
    #[serde(default)]
    pub primary_language: Option<LanguageCode>,
    #[serde(default)]
    pub secondary_language: Option<LanguageCode>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub route: Vec<RouteLeg>,
    #[serde(default)]
    pub consent: Consent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

fn default_status() -> CaseStatus {
    CaseStatus::Active
}

fn sorted_unique<T: Ord + Clone>(values: &[T]) -> Vec<T> {
    let mut v = values.to_vec();
    v.sort();
    v.dedup();
    v
}

/// A case file that passed every check and is normalised (sorted sets, derived `is_minor`): what
/// storage takes. Only `TryFrom<VictimInput>` makes one.
#[derive(Debug, Clone)]
pub struct ValidVictim(VictimInput);

impl std::ops::Deref for ValidVictim {
    type Target = VictimInput;

    fn deref(&self) -> &VictimInput {
        &self.0
    }
}

impl TryFrom<VictimInput> for ValidVictim {
    type Error = Vec<FieldError>;

    /// Checks what the schema cannot, and normalises.
    fn try_from(mut input: VictimInput) -> Result<ValidVictim, Vec<FieldError>> {
        let mut errors = Vec::new();
        if input.identified_on > Utc::now().date_naive() {
            errors.push(FieldError::new("identified_on", "must not be in the future"));
        }
        // Limits, patterns and the age agreeing with `is_minor` are the schema's, checked before
        // an input exists (`extract::from_value`); only what depends on the day is checked here.
        match (input.age_at_identification, input.is_minor) {
            (Some(age), _) => input.is_minor = Some(age < 18),
            (None, None) => input.is_minor = Some(false),
            (None, Some(_)) => {}
        }
        if let Some(identity) = &input.identity {
            identity.validate(&mut errors);
        }
        input.citizenship = sorted_unique(&input.citizenship);
        input.exploitation_types = sorted_unique(&input.exploitation_types);
        input.recruitment_methods = sorted_unique(&input.recruitment_methods);
        input.means_of_control = sorted_unique(&input.means_of_control);
        input.sex_exploitation_types = sorted_unique(&input.sex_exploitation_types);
        input.recruitment_platforms = sorted_unique(&input.recruitment_platforms);
        input.exploitation_platforms = sorted_unique(&input.exploitation_platforms);
        input.perpetrator_roles = sorted_unique(&input.perpetrator_roles);
        if errors.is_empty() { Ok(ValidVictim(input)) } else { Err(errors) }
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = victims)]
pub struct VictimRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub case_number: i32,
    pub status: CaseStatus,
    pub trafficking_status: TraffickingStatus,
    pub identified_on: NaiveDate,
    pub identified_in: Option<CountryCode>,
    pub identified_by: Option<IdentifiedBy>,
    pub operation: Option<OperationTag>,
    pub gender: Gender,
    pub age_at_identification: Option<i16>,
    pub is_minor: bool,
    pub citizenship: Vec<CountryCode>,
    pub migrant_status: Option<MigrantStatus>,
    pub country_of_exploitation: Option<CountryCode>,
    pub exploitation_types: Vec<ExploitationType>,
    pub labour_sector: Option<String>,
    pub recruitment_methods: Vec<RecruitmentMethod>,
    pub means_of_control: Vec<MeansOfControl>,
    pub recruiter_relation: Option<RecruiterRelation>,
    pub route: serde_json::Value,
    pub consent_services: bool,
    pub consent_share_with_referral_partners: bool,
    pub consent_anonymised_statistics: bool,
    pub consent_recorded_at: Option<DateTime<Utc>>,
    pub create_digest: Vec<u8>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub updated_by: Uuid,
    pub sex_exploitation_types: Vec<SexExploitationType>,
    pub recruitment_platforms: Vec<Platform>,
    pub exploitation_platforms: Vec<Platform>,
    pub perpetrator_roles: Vec<PerpetratorRole>,
    pub age_when_trafficked: Option<i16>,
    pub primary_language: Option<LanguageCode>,
    pub secondary_language: Option<LanguageCode>,
    pub consent_method: Option<ConsentMethod>,
    pub erased_at: Option<DateTime<Utc>>,
}

/// A victim's case file without any identifying detail: what admins, auditors and caseworkers
/// without identity access see. This type has no identity field, so it cannot leak one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseFile {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// Sequential per organisation.
    pub case_number: i32,
    pub status: CaseStatus,
    pub trafficking_status: TraffickingStatus,
    pub identified_on: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identified_in: Option<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identified_by: Option<IdentifiedBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationTag>,
    pub gender: Gender,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_at_identification: Option<i16>,
    pub is_minor: bool,
    pub citizenship: Vec<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrant_status: Option<MigrantStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_of_exploitation: Option<CountryCode>,
    pub exploitation_types: Vec<ExploitationType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labour_sector: Option<String>,
    pub recruitment_methods: Vec<RecruitmentMethod>,
    pub means_of_control: Vec<MeansOfControl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recruiter_relation: Option<RecruiterRelation>,
    pub sex_exploitation_types: Vec<SexExploitationType>,
    pub recruitment_platforms: Vec<Platform>,
    pub exploitation_platforms: Vec<Platform>,
    pub perpetrator_roles: Vec<PerpetratorRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_when_trafficked: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_language: Option<LanguageCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secondary_language: Option<LanguageCode>,
    pub route: Vec<RouteLeg>,
    pub consent: Consent,
    /// When the person's identity and every identity-grade text about them were erased
    /// (`POST /victims/{id}/erase`, or the retention schedule). The case file stays.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::domain::timestamp::rfc3339_option")]
    pub erased_at: Option<DateTime<Utc>>,
    /// Send back as `If-Match: "<version>"` to update.
    pub version: i32,
    #[serde(serialize_with = "crate::domain::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl From<&VictimRow> for CaseFile {
    fn from(r: &VictimRow) -> CaseFile {
        CaseFile {
            id: r.id,
            organization_id: r.organization_id,
            case_number: r.case_number,
            status: r.status,
            trafficking_status: r.trafficking_status,
            identified_on: r.identified_on,
            identified_in: r.identified_in,
            identified_by: r.identified_by,
            operation: r.operation.clone(),
            gender: r.gender,
            age_at_identification: r.age_at_identification,
            is_minor: r.is_minor,
            citizenship: r.citizenship.clone(),
            migrant_status: r.migrant_status,
            country_of_exploitation: r.country_of_exploitation,
            exploitation_types: r.exploitation_types.clone(),
            labour_sector: r.labour_sector.clone(),
            recruitment_methods: r.recruitment_methods.clone(),
            means_of_control: r.means_of_control.clone(),
            recruiter_relation: r.recruiter_relation,
            sex_exploitation_types: r.sex_exploitation_types.clone(),
            recruitment_platforms: r.recruitment_platforms.clone(),
            exploitation_platforms: r.exploitation_platforms.clone(),
            perpetrator_roles: r.perpetrator_roles.clone(),
            age_when_trafficked: r.age_when_trafficked,
            primary_language: r.primary_language,
            secondary_language: r.secondary_language,
            // Read from the row's value in place: a clone of it was fourteen strings per read.
            route: <Vec<RouteLeg> as serde::Deserialize>::deserialize(&r.route).unwrap_or_default(),
            consent: Consent {
                services: r.consent_services,
                share_with_referral_partners: r.consent_share_with_referral_partners,
                anonymised_statistics: r.consent_anonymised_statistics,
                recorded_at: r.consent_recorded_at,
                method: r.consent_method,
            },
            erased_at: r.erased_at,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl CaseFile {
    /// The writable part of the record, as the base of a merge patch.
    pub fn as_input(&self) -> VictimInput {
        VictimInput {
            id: None,
            status: self.status,
            trafficking_status: self.trafficking_status,
            identified_on: self.identified_on,
            identified_in: self.identified_in,
            identified_by: self.identified_by,
            operation: self.operation.clone(),
            gender: self.gender,
            age_at_identification: self.age_at_identification,
            is_minor: Some(self.is_minor),
            citizenship: self.citizenship.clone(),
            migrant_status: self.migrant_status,
            country_of_exploitation: self.country_of_exploitation,
            exploitation_types: self.exploitation_types.clone(),
            labour_sector: self.labour_sector.clone(),
            recruitment_methods: self.recruitment_methods.clone(),
            means_of_control: self.means_of_control.clone(),
            recruiter_relation: self.recruiter_relation,
            sex_exploitation_types: self.sex_exploitation_types.clone(),
            recruitment_platforms: self.recruitment_platforms.clone(),
            exploitation_platforms: self.exploitation_platforms.clone(),
            perpetrator_roles: self.perpetrator_roles.clone(),
            age_when_trafficked: self.age_when_trafficked,
            primary_language: self.primary_language,
            secondary_language: self.secondary_language,
            route: self.route.clone(),
            consent: self.consent.clone(),
            identity: None,
        }
    }
}

// The identity-grade part of a case file (no doc comment: it would become a schema description).
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityPart {
    pub identity: Identity,
}

impl Gated for CaseFile {
    type Part = IdentityPart;

    const VIEW: &'static str = "VictimView";
    const VIEW_DESCRIPTION: &'static str =
        "A victim as one caller may see it: with identity (entitled caseworkers) or without.";
    const DISCLOSED: &'static str = "CaseFileWithIdentity";
    const DISCLOSED_DESCRIPTION: &'static str = "A case file with the identity, for callers holding a grant.";

    fn victim_id(&self) -> Uuid {
        self.id
    }
}

/// A victim as one caller may see it.
pub type VictimView = View<CaseFile>;
