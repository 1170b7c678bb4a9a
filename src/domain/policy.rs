//! Who may do what with organisations, users and the audit log (DESIGN section 3), in one place.
//! Handlers ask these questions; none decides access on its own.

use uuid::Uuid;

use super::Role;
use crate::auth::Principal;

/// What a caller may see of another organisation's records: `Hidden` is answered 404, so a caller
/// cannot learn that a record exists; `Forbidden` (403) is for records the caller knows of but whose
/// action their role does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    Forbidden,
    Hidden,
}

impl Access {
    pub fn require(self) -> Result<(), crate::error::ApiError> {
        match self {
            Access::Allowed => Ok(()),
            Access::Forbidden => Err(crate::error::ApiError::Forbidden),
            Access::Hidden => Err(crate::error::ApiError::NotFound),
        }
    }
}

/// `roles` may act on `org`'s records. Records of another organisation are in scope only for
/// host-organisation admins and auditors (when `host_sees_all`); for everyone else they are hidden.
fn scoped(p: &Principal, org: Uuid, roles: &[Role], host_sees_all: bool) -> Access {
    let host_overseer = p.is_host && matches!(p.role, Role::Admin | Role::Auditor);
    let in_scope = p.organization_id == org || (host_sees_all && host_overseer);
    match (in_scope, roles.contains(&p.role)) {
        (true, true) => Access::Allowed,
        (true, false) => Access::Forbidden,
        (false, _) => Access::Hidden,
    }
}

/// Reading an organisation: everyone reads their own; host admins and auditors read all.
pub fn read_organization(p: &Principal, org: Uuid) -> Access {
    if p.organization_id == org {
        return Access::Allowed;
    }
    scoped(p, org, &[Role::Admin, Role::Auditor], true)
}

/// Creating and changing organisations is for host-organisation admins.
pub fn manage_organizations(p: &Principal) -> Access {
    if p.is_host && p.role == Role::Admin { Access::Allowed } else { Access::Forbidden }
}

/// Changing one organisation: host admins; anyone else who can see it is refused, others see 404.
pub fn manage_organization(p: &Principal, org: Uuid) -> Access {
    match read_organization(p, org) {
        Access::Allowed => manage_organizations(p),
        other => other,
    }
}

/// Listing and reading users: admins and auditors of the organisation; host admins and auditors
/// for every organisation.
pub fn read_users(p: &Principal, org: Uuid) -> Access {
    scoped(p, org, &[Role::Admin, Role::Auditor], true)
}

/// Reading one user: yourself always, otherwise as `read_users`.
pub fn read_user(p: &Principal, user: Uuid, org: Uuid) -> Access {
    if p.user_id == user { Access::Allowed } else { read_users(p, org) }
}

/// Creating and changing users: admins of the organisation; host admins for any organisation.
pub fn manage_users(p: &Principal, org: Uuid) -> Access {
    scoped(p, org, &[Role::Admin], true)
}

/// Reading the audit log of an organisation: its admins and auditors; host auditors read all.
pub fn read_audit(p: &Principal, org: Uuid) -> Access {
    if p.is_host && p.role == Role::Auditor {
        return Access::Allowed;
    }
    scoped(p, org, &[Role::Admin, Role::Auditor], false)
}

/// Whether the caller reads every organisation's audit log (host auditors), which also includes
/// events that belong to no organisation (failed logins for unknown accounts).
pub fn reads_all_audit(p: &Principal) -> bool {
    p.is_host && p.role == Role::Auditor
}
