use crate::text_enum;

text_enum! {
    /// What a user may do (README, "Roles and what each sees").
    pub enum Role {
        /// Logs and reads the case files of their organisation, identities included.
        Caseworker => "caseworker",
        /// Manages their organisation's users; never sees identities.
        Admin => "admin",
        /// Reads records and the audit log; never sees identities.
        Auditor => "auditor",
        /// Anonymised statistics only.
        Partner => "partner",
    }
}

text_enum! {
    /// Kind of organisation (`host` is the one running the deployment and cannot be created through the API).
    pub enum OrganizationKind {
        Ngo => "ngo",
        LawEnforcement => "law_enforcement",
        Government => "government",
        Health => "health",
        Legal => "legal",
        InternationalOrganization => "international_organization",
        Host => "host",
    }
}

/// The kind of an organisation made or changed through the API: any kind but `host`, of which
/// there is exactly one (made by `haven bootstrap`). The schema lists only these, so a generated
/// client cannot offer what the server refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartnerKind(OrganizationKind);

impl PartnerKind {
    pub fn get(self) -> OrganizationKind {
        self.0
    }
}

impl<'de> serde::Deserialize<'de> for PartnerKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match OrganizationKind::deserialize(d)? {
            OrganizationKind::Host => {
                Err(serde::de::Error::custom("must not be host: there is exactly one host organisation"))
            }
            kind => Ok(PartnerKind(kind)),
        }
    }
}

impl utoipa::PartialSchema for PartnerKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(
                OrganizationKind::ALL.iter().filter(|k| **k != OrganizationKind::Host).map(|k| k.as_str()),
            ))
            .description(Some(
                "Kind of organisation (`host`, the one running the deployment, is not made through the API)",
            ))
            .into()
    }
}

impl utoipa::ToSchema for PartnerKind {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_kinds_are_every_kind_but_host() {
        let parse = |v: &str| serde_json::from_value::<PartnerKind>(serde_json::json!(v));
        assert!(parse("host").is_err());
        assert_eq!(parse("ngo").unwrap().get(), OrganizationKind::Ngo);
        let schema = serde_json::to_value(<PartnerKind as utoipa::PartialSchema>::schema()).unwrap();
        let listed: Vec<&str> = schema["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(listed.len(), OrganizationKind::ALL.len() - 1);
        assert!(listed.iter().all(|k| parse(k).is_ok()));
    }
}
