use crate::text_enum;

text_enum! {
    /// What a user may do (DESIGN section 3).
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
