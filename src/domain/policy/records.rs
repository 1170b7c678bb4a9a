//! Who may see and change case records: victims, the assistance they receive and their referrals
//! (README, "Roles and what each sees"). What a decision lets a caller see of an identity becomes
//! a type in `privacy::redaction`, which alone turns an `Identity` decision into a grant.

use uuid::Uuid;

use super::Access;
use crate::domain::case_vocab::ReferralStatus;
use crate::domain::{Principal, Role};
use crate::error::ApiError;

/// Referral states in which the receiving organisation may see the victim's record.
pub const LIVE: [ReferralStatus; 2] = [ReferralStatus::Pending, ReferralStatus::Accepted];

/// How a victim relates to the caller's organisation through referrals to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// No live referral of the victim to the caller's organisation. (For the owning organisation
    /// the policy ignores referrals: what one gives is the receiver's business.)
    None,
    /// Referred to the caller's organisation and not yet finished.
    Referred {
        /// The identity travels with the referral (see [`relation`]).
        identity_shared: bool,
        /// The caller's organisation accepted a referral, so it provides services.
        accepted: bool,
    },
    /// The caller's organisation held the case and transferred it to another: it keeps the case
    /// file and its history, read-only and without the identity.
    FormerOwner,
}

/// The one rule for what referrals to an organisation give it: a referral counts while it is live
/// (pending or accepted), and shares the identity when it was made with the identity shared and
/// the victim's consent to sharing still stands. `referrals` are (status, identity shared when
/// made) of the referrals of one victim to one organisation.
pub fn relation(referrals: impl IntoIterator<Item = (ReferralStatus, bool)>, consent_to_share: bool) -> Relation {
    referrals.into_iter().filter(|(status, _)| LIVE.contains(status)).fold(Relation::None, |seen, (status, shared)| {
        let (was_shared, was_accepted) = match seen {
            Relation::None | Relation::FormerOwner => (false, false),
            Relation::Referred { identity_shared, accepted } => (identity_shared, accepted),
        };
        Relation::Referred {
            identity_shared: was_shared || (shared && consent_to_share),
            accepted: was_accepted || status == ReferralStatus::Accepted,
        }
    })
}

/// Who works a case inside its organisation, as it concerns the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Custody {
    /// The case is restricted (a minor, a high-risk case): its identity reaches only its assigned
    /// caseworkers.
    pub restricted: bool,
    /// The caller is one of its assigned caseworkers.
    pub assigned: bool,
}

impl Custody {
    /// The custody of a case its creator has just recorded: assigned to them, not restricted.
    pub const CREATOR: Custody = Custody { restricted: false, assigned: true };

    /// Custody not read yet: a write judged on role and organisation alone, before the case is
    /// locked, so that a caller who may not write it never waits on its lock nor learns from a 409
    /// that it moved on (D169). The custody read under the lock judges it again.
    pub const NOT_YET_READ: Custody = Custody { restricted: false, assigned: false };

    /// Whether the restriction keeps the caller to the case file.
    fn keeps_out(self) -> bool {
        self.restricted && !self.assigned
    }
}

/// What a caller may see of one victim, when they may see it at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VictimSight {
    Identity,
    CaseOnly,
}

/// Caseworkers see the identities of their organisation's victims (of a restricted case, only its
/// assigned caseworkers) and of victims referred to it with the identity shared; otherwise the case
/// only. An organisation that transferred a case keeps its case file, never its identity. Admins
/// and auditors see case files of their organisation (host auditors: all), never identities.
/// Partners see no individual record (403). Anything else is hidden (404). A restriction is the
/// owning organisation's: what a referral made with consent shares with the receiver follows
/// [`relation`].
pub fn victim_sight(
    p: &Principal,
    victim_org: Uuid,
    relation: Relation,
    custody: Custody,
) -> Result<VictimSight, ApiError> {
    let own = p.organization_id == victim_org;
    // What another organisation's referral gives is the receiver's business, never the owner's.
    let relation = if own { Relation::None } else { relation };
    let access = match p.role {
        Role::Partner => Access::Forbidden,
        Role::Caseworker => match (own, relation) {
            (true, _) if custody.keeps_out() => return Ok(VictimSight::CaseOnly),
            (true, _) | (false, Relation::Referred { identity_shared: true, .. }) => return Ok(VictimSight::Identity),
            (false, Relation::Referred { identity_shared: false, .. } | Relation::FormerOwner) => {
                return Ok(VictimSight::CaseOnly);
            }
            (false, Relation::None) => Access::Hidden,
        },
        Role::Admin if own || relation == Relation::FormerOwner => Access::Allowed,
        Role::Auditor if own || p.is_host || relation == Relation::FormerOwner => Access::Allowed,
        Role::Admin | Role::Auditor => Access::Hidden,
    };
    access.require().map(|_| VictimSight::CaseOnly)
}

/// Whether the caller is given the tombstones (`GET /changes`) of cases referred to its
/// organisation: caseworkers and host auditors, who may read such cases, are; other admins and
/// auditors, who may not (`victim_sight`), are given only those of cases their organisation holds
/// or handed over. A tombstone of a referred case (a withdrawal of consent, an erasure) would tell
/// them what became of a person they cannot see.
pub fn reads_tombstones_of_referred_cases(p: &Principal) -> bool {
    p.role == Role::Caseworker || (p.is_host && p.role == Role::Auditor)
}

/// Partners see no individual record, whether or not it exists: refused before any lookup, so a
/// 403-versus-404 difference cannot reveal which ids exist.
pub fn refuse_partners(p: &Principal) -> Result<(), ApiError> {
    if p.role == Role::Partner { Err(ApiError::Forbidden) } else { Ok(()) }
}

/// Whose victims a caller may list: `None` means every organisation's (host auditors).
pub fn victim_list_scope(p: &Principal) -> Result<Option<Uuid>, ApiError> {
    match p.role {
        Role::Partner => Err(ApiError::Forbidden),
        Role::Auditor if p.is_host => Ok(None),
        _ => Ok(Some(p.organization_id)),
    }
}

/// Writing a victim's case file (create, update), referring the victim and changing who works the
/// case: caseworkers of the owning organisation; of a restricted case, its assigned caseworkers.
pub fn write_victim(p: &Principal, victim_org: Uuid, custody: Custody) -> Access {
    let works_it = p.role == Role::Caseworker && p.organization_id == victim_org && !custody.keeps_out();
    if works_it { Access::Allowed } else { Access::Forbidden }
}

/// Placing a legal hold on a case: the owning organisation's admins (who answer for its records)
/// and the caseworkers who may write the case.
pub fn place_hold(p: &Principal, victim_org: Uuid, custody: Custody) -> Access {
    match p.role == Role::Admin && p.organization_id == victim_org {
        true => Access::Allowed,
        false => write_victim(p, victim_org, custody),
    }
}

/// Lifting one: the owning organisation's admins only, so a caseworker cannot lift a hold and
/// erase the case alone.
pub fn lift_hold(p: &Principal, victim_org: Uuid) -> Access {
    if p.role == Role::Admin && p.organization_id == victim_org { Access::Allowed } else { Access::Forbidden }
}

/// Reading a case's legal hold: the owning organisation's staff and host auditors. A hold, and
/// its basis (a criminal investigation, litigation), is the owner's instrument over its records; a
/// receiving organisation reads the case for the service it gives, not that (D177).
pub fn read_hold(p: &Principal, victim_org: Uuid) -> Access {
    if sees_staff_of(p, victim_org) { Access::Allowed } else { Access::Forbidden }
}

/// Reading who works a case: the owning organisation's staff (partners see no record at all) and
/// host auditors; a receiving organisation sees the case, not the owner's staffing.
pub fn read_assignment(p: &Principal, victim_org: Uuid) -> Access {
    if sees_staff_of(p, victim_org) { Access::Allowed } else { Access::Forbidden }
}

/// Who on an organisation's staff works a case, or recorded, closed or decided something of it,
/// is that organisation's to know and its overseers' (host auditors, whose log names every actor):
/// never a receiving, sending or former owner's (D113, D165). Staff ids reach views through
/// `privacy::staff::StaffSight`, which applies this rule.
pub fn sees_staff_of(p: &Principal, staff_org: Uuid) -> bool {
    let overseer = p.is_host && p.role == Role::Auditor;
    p.role != Role::Partner && (p.organization_id == staff_org || overseer)
}

/// Exporting and importing an organisation's cases (HTCDS files): its caseworkers, who work the
/// cases; identities in them still follow each case's own rules.
pub fn exchange_cases(p: &Principal) -> Access {
    if p.role == Role::Caseworker { Access::Allowed } else { Access::Forbidden }
}

/// Producing the organisation's CTDC contribution file: its admins, who send it (k-anonymised and
/// identity-free, it is still the organisation's to give).
pub fn contribute_to_ctdc(p: &Principal) -> Access {
    if p.role == Role::Admin { Access::Allowed } else { Access::Forbidden }
}

/// Searching identities by name or document: caseworkers, in their own organisation.
pub fn search_victims(p: &Principal) -> Access {
    if p.role == Role::Caseworker { Access::Allowed } else { Access::Forbidden }
}

/// Recording assistance: caseworkers of the victim's organisation (of a restricted case, its
/// assigned caseworkers, since notes are identity-grade), and of an organisation that accepted a
/// referral of the victim (it provides the service).
pub fn record_assistance(p: &Principal, victim_org: Uuid, relation: Relation, custody: Custody) -> Access {
    if p.organization_id == victim_org {
        return write_victim(p, victim_org, custody);
    }
    let accepted = matches!(relation, Relation::Referred { accepted: true, .. });
    if p.role == Role::Caseworker && accepted { Access::Allowed } else { Access::Forbidden }
}

/// Seeing a referral: both organisations' staff, and host auditors; partners never (403).
pub fn see_referral(p: &Principal, from_org: Uuid, to_org: Uuid) -> Access {
    if p.role == Role::Partner {
        return Access::Forbidden;
    }
    let party = p.organization_id == from_org || p.organization_id == to_org;
    if party || (p.is_host && p.role == Role::Auditor) { Access::Allowed } else { Access::Hidden }
}

/// Moving a referral on (accept, decline, complete, cancel): caseworkers of the organisation whose
/// move it is; on the sender's side, a write on its case (of a restricted case, by its assigned
/// caseworkers).
pub fn move_referral(p: &Principal, side_org: Uuid, custody: Custody) -> Access {
    write_victim(p, side_org, custody)
}

/// Seeing a transfer: both organisations' staff, and host auditors; partners never (403).
pub fn see_transfer(p: &Principal, from_org: Uuid, to_org: Uuid) -> Access {
    see_referral(p, from_org, to_org)
}

/// Accepting or declining a transfer: caseworkers of the receiving organisation, since taking the
/// case takes its identity.
pub fn receive_transfer(p: &Principal, to_org: Uuid) -> Access {
    if p.role == Role::Caseworker && p.organization_id == to_org { Access::Allowed } else { Access::Forbidden }
}

/// Whose referrals a caller may list: `None` means every organisation's (host auditors); partners
/// none.
pub fn referral_list_scope(p: &Principal) -> Result<Option<Uuid>, ApiError> {
    refuse_partners(p)?;
    Ok(if p.is_host && p.role == Role::Auditor { None } else { Some(p.organization_id) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::case_vocab::ReferralStatus::*;

    fn principal(role: Role, org: Uuid, is_host: bool) -> Principal {
        Principal { user_id: Uuid::new_v4(), organization_id: org, role, session_id: Uuid::new_v4(), is_host }
    }

    #[test]
    fn the_role_table() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let sight = |p: &Principal, r| {
            victim_sight(p, a, r, Custody::default()).map_err(|e| actix_web::ResponseError::status_code(&e).as_u16())
        };
        let shared = Relation::Referred { identity_shared: true, accepted: false };
        let unshared = Relation::Referred { identity_shared: false, accepted: true };

        assert_eq!(sight(&principal(Role::Caseworker, a, false), Relation::None), Ok(VictimSight::Identity));
        assert_eq!(sight(&principal(Role::Caseworker, b, false), shared), Ok(VictimSight::Identity));
        assert_eq!(sight(&principal(Role::Caseworker, b, false), unshared), Ok(VictimSight::CaseOnly));
        assert_eq!(sight(&principal(Role::Caseworker, b, false), Relation::None), Err(404));
        for role in [Role::Admin, Role::Auditor] {
            assert_eq!(sight(&principal(role, a, false), Relation::None), Ok(VictimSight::CaseOnly));
            assert_eq!(
                sight(&principal(role, a, false), shared),
                Ok(VictimSight::CaseOnly),
                "{role}: never identities"
            );
            assert_eq!(sight(&principal(role, b, false), shared), Err(404));
        }
        assert_eq!(sight(&principal(Role::Auditor, b, true), Relation::None), Ok(VictimSight::CaseOnly));
        assert_eq!(sight(&principal(Role::Admin, b, true), Relation::None), Err(404), "host admins do not");
        assert_eq!(sight(&principal(Role::Partner, a, false), shared), Err(403));
        for role in [Role::Caseworker, Role::Admin, Role::Auditor] {
            let former = sight(&principal(role, b, false), Relation::FormerOwner);
            assert_eq!(former, Ok(VictimSight::CaseOnly), "{role}: a transferred case, without its identity");
        }
        assert_eq!(sight(&principal(Role::Partner, b, false), Relation::FormerOwner), Err(403));
    }

    #[test]
    fn what_referrals_give() {
        assert_eq!(relation([], true), Relation::None);
        assert_eq!(relation([(Completed, true), (Declined, true), (Cancelled, true)], true), Relation::None);
        assert_eq!(relation([(Pending, true)], true), Relation::Referred { identity_shared: true, accepted: false });
        assert_eq!(relation([(Pending, true)], false), Relation::Referred { identity_shared: false, accepted: false });
        assert_eq!(
            relation([(Accepted, false), (Pending, true)], true),
            Relation::Referred { identity_shared: true, accepted: true }
        );
        assert_eq!(
            relation([(Completed, true), (Pending, false)], true),
            Relation::Referred { identity_shared: false, accepted: false }
        );
    }

    #[test]
    fn who_records_assistance() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let accepted = Relation::Referred { identity_shared: false, accepted: true };
        let pending = Relation::Referred { identity_shared: true, accepted: false };
        let free = Custody::default();
        let kept_out = Custody { restricted: true, assigned: false };
        let cw_a = principal(Role::Caseworker, a, false);
        assert_eq!(record_assistance(&cw_a, a, Relation::None, free), Access::Allowed);
        assert_eq!(record_assistance(&cw_a, a, Relation::None, kept_out), Access::Forbidden);
        assert_eq!(record_assistance(&principal(Role::Caseworker, b, false), a, accepted, free), Access::Allowed);
        assert_eq!(record_assistance(&principal(Role::Caseworker, b, false), a, pending, free), Access::Forbidden);
        assert_eq!(record_assistance(&principal(Role::Admin, a, false), a, Relation::None, free), Access::Forbidden);
    }

    #[test]
    fn a_restricted_case_keeps_its_identity_to_its_assigned_caseworkers() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let cw_a = principal(Role::Caseworker, a, false);
        let restricted = Custody { restricted: true, assigned: false };
        let assigned = Custody { restricted: true, assigned: true };
        assert_eq!(victim_sight(&cw_a, a, Relation::None, restricted).unwrap(), VictimSight::CaseOnly);
        assert_eq!(victim_sight(&cw_a, a, Relation::None, assigned).unwrap(), VictimSight::Identity);
        assert_eq!(write_victim(&cw_a, a, restricted), Access::Forbidden);
        assert_eq!(write_victim(&cw_a, a, assigned), Access::Allowed);
        // The receiver of a referral made with consent is another organisation: the owner's
        // restriction does not apply to it, whatever custody is passed.
        let shared = Relation::Referred { identity_shared: true, accepted: true };
        let cw_b = principal(Role::Caseworker, b, false);
        assert_eq!(victim_sight(&cw_b, a, shared, restricted).unwrap(), VictimSight::Identity);
        for role in [Role::Admin, Role::Auditor] {
            assert_eq!(
                victim_sight(&principal(role, a, false), a, Relation::None, assigned).unwrap(),
                VictimSight::CaseOnly
            );
        }
    }
}
