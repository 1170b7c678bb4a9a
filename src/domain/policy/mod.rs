//! Who may do what (README, "Roles and what each sees"), in one place: organisations, users,
//! grants and the audit log here, case records in `records`. Handlers ask these questions; none
//! decides access on its own.

mod records;

pub use records::*;
use uuid::Uuid;

use super::Principal;
use super::Role;

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
/// Managing an organisation's webhooks (where its events are posted): its admins.
pub fn manage_webhooks(p: &Principal, org: Uuid) -> Access {
    match (p.role, p.organization_id == org) {
        (Role::Admin, true) => Access::Allowed,
        (_, true) => Access::Forbidden,
        (_, false) => Access::Hidden,
    }
}

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

/// Requiring a second factor of an organisation's caseworkers: its admins, and host admins.
pub fn set_second_factor_policy(p: &Principal, org: Uuid) -> Access {
    scoped(p, org, &[Role::Admin], true)
}

/// An organisation's retention schedule: its own admins only. Host admins, who cannot see its
/// cases, do not decide when they are erased.
pub fn set_retention(p: &Principal, org: Uuid) -> Access {
    scoped(p, org, &[Role::Admin], false)
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

/// Whether an account of this role reaches identities: only caseworkers do, so only their
/// credentials, access and second factors wait for a second person (the two-person rule).
pub fn reaches_identities(role: Role) -> bool {
    role == Role::Caseworker
}

/// A change to a staff account, as the policy weighs it. (Whether it also waits for a second
/// person is the grant rule's business, not this one's.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// A new account of this role.
    Create(Role),
    /// Disabling it: taking access away is always safe.
    Disable,
    /// Any other change of role or enabled state.
    Change,
    /// Issuing a reset (enrolment) token.
    Reset,
}

/// Facts about the organisation whose user changes.
#[derive(Debug, Clone, Copy)]
pub struct OrgStaff {
    /// Admin accounts of the organisation, disabled ones included.
    pub admins: i64,
    /// Enabled admins of the organisation.
    pub enabled_admins: i64,
}

/// Creating and changing users. Admins manage their own organisation's users. In another
/// organisation a host admin may only create its first admin (it has never had one: disabling its
/// admins does not make room for a host's own), reset the admin of an organisation that has only
/// that one (a recovery), and disable anyone: so no host admin can make, promote, reset or
/// re-enable anyone who would reach identities (README, "Roles and what each sees").
pub fn change_user(p: &Principal, org: Uuid, target_role: Option<Role>, change: UserChange, staff: OrgStaff) -> Access {
    match scoped(p, org, &[Role::Admin], true) {
        Access::Allowed if p.organization_id == org => Access::Allowed,
        Access::Allowed => {
            let allowed = match change {
                UserChange::Create(role) => role == Role::Admin && staff.admins == 0,
                UserChange::Reset => target_role == Some(Role::Admin) && staff.admins == 1,
                UserChange::Disable => true,
                UserChange::Change => false,
            };
            if allowed { Access::Allowed } else { Access::Forbidden }
        }
        other => other,
    }
}

/// Reading the access grants of an organisation: whoever may approve them, and its auditors; host
/// admins and auditors for every organisation.
pub fn read_grants(p: &Principal, org: Uuid) -> Access {
    scoped(p, org, &[Role::Admin, Role::Caseworker, Role::Auditor], true)
}

/// Approving or refusing a grant in `org`: another admin or a caseworker of the organisation; a
/// host admin only where the organisation has a single enabled admin. Who the people are is
/// checked by [`independent`].
pub fn decide_grant(p: &Principal, org: Uuid, staff: OrgStaff) -> Access {
    if p.organization_id == org {
        return if matches!(p.role, Role::Admin | Role::Caseworker) { Access::Allowed } else { Access::Forbidden };
    }
    match scoped(p, org, &[Role::Admin], true) {
        Access::Allowed if staff.enabled_admins == 1 => Access::Allowed,
        Access::Allowed => Access::Forbidden,
        other => other,
    }
}

/// The people around a grant, each with the chain of whoever issued their credential (the issuer,
/// the issuer's issuer, and so on).
pub struct GrantParties<'a> {
    pub approver: Uuid,
    pub approver_chain: &'a [Uuid],
    pub requester: Uuid,
    pub requester_chain: &'a [Uuid],
    pub subject: Uuid,
    pub subject_chain: &'a [Uuid],
}

/// Whether the approver is a second person (README, "Roles and what each sees"). The approver must hold a confirmed
/// credential: one they set themselves at the console (bootstrap), or one a second person
/// confirmed by approving a grant. A credential someone issued and nobody confirmed may be in the
/// issuer's hands, so its holder approves nothing (an admin's puppet accounts cannot approve for
/// it). Nor may the approver be the requester, the account that gains access, or anyone who issued
/// the requester's or that account's credential. What no rule can see (two accounts held by one
/// person who redeemed both tokens) is why approvers confirm in person that the person set their
/// own password.
pub fn independent(g: &GrantParties) -> Result<(), &'static str> {
    if g.approver == g.requester {
        return Err("You requested this grant; another person must approve it.");
    }
    if g.approver == g.subject {
        return Err("Nobody approves their own access.");
    }
    if !g.approver_chain.is_empty() {
        return Err(
            "Your credential was issued by someone and never confirmed by a second person, so you cannot approve.",
        );
    }
    if g.requester_chain.contains(&g.approver) {
        return Err("You issued the requester's credential; another person must approve.");
    }
    if g.subject_chain.contains(&g.approver) {
        return Err("You issued this account's credential; another person must approve.");
    }
    Ok(())
}

/// Whose audit log a caller reads, asked for `requested` (or their own): `None` means every
/// organisation's, with the events that belong to none (failed logins for unknown accounts), which
/// only host auditors read. Admins and auditors read their organisation's.
pub fn audit_scope(p: &Principal, requested: Option<Uuid>) -> Result<Option<Uuid>, crate::error::ApiError> {
    let host_auditor = p.is_host && p.role == Role::Auditor;
    match requested {
        None if host_auditor => Ok(None),
        _ if host_auditor => Ok(requested),
        requested => {
            let org = requested.unwrap_or(p.organization_id);
            scoped(p, org, &[Role::Admin, Role::Auditor], false).require().map(|_| Some(org))
        }
    }
}

/// Running reports and reading one's own budget: everyone but auditors, whose role is the log.
pub fn run_reports(p: &Principal) -> Access {
    if p.role == Role::Auditor { Access::Forbidden } else { Access::Allowed }
}

/// Running one report: the roles its plugin names (the catalogue lists each role's).
pub fn run_report(p: &Principal, roles: &[Role]) -> Access {
    if roles.contains(&p.role) { Access::Allowed } else { Access::Forbidden }
}

/// Whose organisations a caller lists: `None` means all (host admins and auditors).
pub fn organization_list_scope(p: &Principal) -> Option<Uuid> {
    let sees_all = p.is_host && matches!(p.role, Role::Admin | Role::Auditor);
    if sees_all { None } else { Some(p.organization_id) }
}
