//! The one place that decides what a caller sees of a victim, and the view types that make the
//! decision stick: a `VictimView` can only carry an identity when built with an `IdentityGrant`,
//! and only `victim_sight` creates grants.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::identity::Identity;
use crate::domain::policy::Access;
use crate::domain::{Principal, Role};
use crate::error::ApiError;
use crate::victims::model::CaseFile;

/// Proof that the caller may see this victim's identity. Not constructible outside this module.
#[derive(Debug, Clone, Copy)]
pub struct IdentityGrant {
    victim: Uuid,
}

impl IdentityGrant {
    /// The victim this grant is for.
    pub fn victim(&self) -> Uuid {
        self.victim
    }
}

/// How a victim's organisation relates to the caller's, beyond owning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Referral {
    /// No live referral of this victim to the caller's organisation.
    None,
    /// Referred to the caller's organisation (pending, accepted or completed).
    Referred { identity_shared: bool },
}

/// What a caller may see of one victim.
#[derive(Debug, Clone, Copy)]
pub enum Sight {
    Identity(IdentityGrant),
    CaseOnly,
}

impl Sight {
    pub fn grant(&self) -> Option<IdentityGrant> {
        match self {
            Sight::Identity(g) => Some(*g),
            Sight::CaseOnly => None,
        }
    }
}

/// README, "Roles and what each sees": caseworkers see identities of their organisation's victims and of victims
/// referred to it with identity shared; referred without it, the case only. Admins and auditors
/// see case files of their organisation (host auditors: all), never identities. Partners see no
/// individual records (403). Anything else is hidden (404).
pub fn victim_sight(p: &Principal, victim: Uuid, victim_org: Uuid, referral: Referral) -> Result<Sight, ApiError> {
    let own = p.organization_id == victim_org;
    let access = match p.role {
        Role::Partner => Access::Forbidden,
        Role::Caseworker => match (own, referral) {
            (true, _) | (false, Referral::Referred { identity_shared: true }) => {
                return Ok(Sight::Identity(IdentityGrant { victim }));
            }
            (false, Referral::Referred { identity_shared: false }) => return Ok(Sight::CaseOnly),
            (false, Referral::None) => Access::Hidden,
        },
        Role::Admin => {
            if own {
                Access::Allowed
            } else {
                Access::Hidden
            }
        }
        Role::Auditor => {
            if own || p.is_host {
                Access::Allowed
            } else {
                Access::Hidden
            }
        }
    };
    access.require().map(|_| Sight::CaseOnly)
}

/// Partners see no individual record, whether or not it exists: refuse them before any lookup, so
/// a 403-versus-404 difference cannot reveal which ids exist.
pub fn refuse_partners(p: &Principal) -> Result<(), ApiError> {
    if p.role == Role::Partner { Err(ApiError::Forbidden) } else { Ok(()) }
}

/// Who may list victims at all, and whose: `None` means every organisation (host auditors).
pub fn victim_list_scope(p: &Principal) -> Result<Option<Uuid>, ApiError> {
    match p.role {
        Role::Partner => Err(ApiError::Forbidden),
        Role::Auditor if p.is_host => Ok(None),
        _ => Ok(Some(p.organization_id)),
    }
}

/// Writing a victim's case file (create, update): caseworkers of the owning organisation.
pub fn may_write_victim(p: &Principal, victim_org: Uuid) -> Result<(), ApiError> {
    match (p.role, p.organization_id == victim_org) {
        (Role::Caseworker, true) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

/// A case file with the identity, for callers holding a grant.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseFileWithIdentity {
    #[serde(flatten)]
    pub case: CaseFile,
    pub identity: Identity,
}

/// A victim as one caller may see it: with identity (entitled caseworkers) or without.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    clippy::large_enum_variant,
    reason = "a view lives for one response; boxing would allocate for every identity read"
)]
pub enum VictimView {
    WithIdentity(CaseFileWithIdentity),
    CaseOnly(CaseFile),
}

impl VictimView {
    pub fn case_only(case: CaseFile) -> VictimView {
        VictimView::CaseOnly(case)
    }

    /// Panics if the grant is for another victim: that would be a programming error, never input.
    pub fn with_identity(grant: IdentityGrant, case: CaseFile, identity: Identity) -> VictimView {
        assert_eq!(grant.victim, case.id, "identity grant used for another victim");
        VictimView::WithIdentity(CaseFileWithIdentity { case, identity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, org: Uuid, is_host: bool) -> Principal {
        Principal { user_id: Uuid::new_v4(), organization_id: org, role, session_id: Uuid::new_v4(), is_host }
    }

    #[test]
    fn the_role_table() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let v = Uuid::new_v4();
        let sees_identity = |p: &Principal, r| matches!(victim_sight(p, v, a, r), Ok(Sight::Identity(_)));
        let case_only = |p: &Principal, r| matches!(victim_sight(p, v, a, r), Ok(Sight::CaseOnly));
        let status = |p: &Principal, r| {
            victim_sight(p, v, a, r).err().map(|e| actix_web::ResponseError::status_code(&e).as_u16())
        };
        let shared = Referral::Referred { identity_shared: true };
        let unshared = Referral::Referred { identity_shared: false };

        assert!(sees_identity(&principal(Role::Caseworker, a, false), Referral::None));
        assert!(sees_identity(&principal(Role::Caseworker, b, false), shared));
        assert!(case_only(&principal(Role::Caseworker, b, false), unshared));
        assert_eq!(status(&principal(Role::Caseworker, b, false), Referral::None), Some(404));
        for role in [Role::Admin, Role::Auditor] {
            assert!(case_only(&principal(role, a, false), Referral::None));
            assert!(case_only(&principal(role, a, false), shared), "{role}: never identities");
            assert_eq!(status(&principal(role, b, false), shared), Some(404));
        }
        assert!(case_only(&principal(Role::Auditor, b, true), Referral::None), "host auditors read all");
        assert_eq!(status(&principal(Role::Admin, b, true), Referral::None), Some(404), "host admins do not");
        assert_eq!(status(&principal(Role::Partner, a, false), shared), Some(403));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::Caseworker), Just(Role::Admin), Just(Role::Auditor), Just(Role::Partner)]
    }

    fn referral() -> impl Strategy<Value = Referral> {
        prop_oneof![
            Just(Referral::None),
            any::<bool>().prop_map(|identity_shared| Referral::Referred { identity_shared })
        ]
    }

    proptest! {
        /// For any caller, organisation and referral: identities only ever reach caseworkers of the
        /// owning organisation or of one it referred the victim to with consent; partners never see
        /// a record; outsiders without a referral never learn that it exists.
        #[test]
        fn visibility_rule(role in role(), same_org in any::<bool>(), is_host in any::<bool>(), referral in referral()) {
            let victim_org = Uuid::from_u128(1);
            let caller_org = if same_org { victim_org } else { Uuid::from_u128(2) };
            let p = Principal { user_id: Uuid::from_u128(3), organization_id: caller_org, role, session_id: Uuid::from_u128(4), is_host };
            let victim = Uuid::from_u128(5);
            let outcome = victim_sight(&p, victim, victim_org, referral);
            let status = outcome.as_ref().err().map(|e| actix_web::ResponseError::status_code(e).as_u16());
            if let Ok(Sight::Identity(grant)) = &outcome {
                prop_assert_eq!(grant.victim(), victim);
                prop_assert_eq!(role, Role::Caseworker);
                let shared = Referral::Referred { identity_shared: true };
                prop_assert!(same_org || referral == shared);
            }
            if role == Role::Partner {
                prop_assert_eq!(status, Some(403));
            }
            if !same_org && referral == Referral::None && !(is_host && role == Role::Auditor) && role != Role::Partner {
                prop_assert_eq!(status, Some(404));
            }
            if same_org && role != Role::Partner {
                prop_assert!(outcome.is_ok(), "own organisation's staff read the case file");
            }
        }
    }
}
