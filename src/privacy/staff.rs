//! Who works a case is its organisation's to know (D113, D165). A case's records name staff (a
//! task's assignee, who created a goal, closed the case, recorded a consent, asked for a
//! transfer); other organisations see those records too (a receiver of a referral, a former
//! owner, the new owner of a transferred case). A view holds such an id only as
//! `StaffSight::show` gives it, and a `StaffSight` is only made here, from the organisation each
//! named person belongs to and the policy's one rule (`policy::sees_staff_of`).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::users;
use crate::domain::Principal;
use crate::domain::policy;

/// The staff ids one caller may be shown, among those some records name, and the organisation of
/// each named person.
#[derive(Debug)]
pub struct StaffSight {
    shown: HashSet<Uuid>,
    organizations: HashMap<Uuid, Uuid>,
}

impl StaffSight {
    /// What `principal` may see of the staff `named`: one query for the organisation of each.
    /// (The names are gathered before the future is made, so it holds no borrowed iterator: such
    /// a future inside a transaction's closure is not provably `Send`.)
    pub fn of<'a>(
        conn: &'a mut AsyncPgConnection,
        principal: &'a Principal,
        named: impl IntoIterator<Item = Uuid>,
    ) -> impl Future<Output = QueryResult<StaffSight>> + Send + 'a {
        let named: Vec<Uuid> = named.into_iter().collect::<HashSet<_>>().into_iter().collect();
        async move {
            if named.is_empty() {
                return Ok(Self::decide(principal, []));
            }
            let staff: Vec<(Uuid, Uuid)> = users::table
                .filter(users::id.eq_any(&named))
                .select((users::id, users::organization_id))
                .load(conn)
                .await?;
            Ok(Self::decide(principal, staff))
        }
    }

    /// The rule applied to known staff: (person, organisation).
    fn decide(principal: &Principal, staff: impl IntoIterator<Item = (Uuid, Uuid)>) -> StaffSight {
        let organizations: HashMap<Uuid, Uuid> = staff.into_iter().collect();
        let shown = organizations
            .iter()
            .filter(|(_, org)| policy::sees_staff_of(principal, **org))
            .map(|(id, _)| *id)
            .collect();
        StaffSight { shown, organizations }
    }

    /// `id` if the caller may know it, else nothing (the field is then absent from the view).
    pub fn show(&self, id: Uuid) -> Option<Uuid> {
        self.shown.contains(&id).then_some(id)
    }

    /// `id`, when there is one and the caller may know it.
    pub fn show_some(&self, id: Option<Uuid>) -> Option<Uuid> {
        id.and_then(|id| self.show(id))
    }

    /// The organisation a named person belongs to: what an audit event says of an actor the
    /// caller is not shown (which organisation read or refused, not who).
    pub fn organization_of(&self, id: Uuid) -> Option<Uuid> {
        self.organizations.get(&id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn principal(role: Role, org: Uuid, is_host: bool) -> Principal {
        Principal { user_id: Uuid::now_v7(), organization_id: org, role, session_id: Uuid::now_v7(), is_host }
    }

    #[test]
    fn staff_are_shown_to_their_own_organisation_and_its_overseers_only() {
        let (own, other, host) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (ours, theirs, operator) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let staff = [(ours, own), (theirs, other), (operator, host)];
        for role in [Role::Caseworker, Role::Admin, Role::Auditor] {
            let sight = StaffSight::decide(&principal(role, own, false), staff);
            assert_eq!(sight.show(ours), Some(ours), "{role:?}: its own staff");
            assert_eq!(sight.show(theirs), None, "{role:?}: another organisation's");
            assert_eq!(sight.show(operator), None, "{role:?}: the host's, too");
            assert_eq!(sight.organization_of(theirs), Some(other), "which organisation is not hidden");
        }
        let overseer = StaffSight::decide(&principal(Role::Auditor, host, true), staff);
        assert_eq!((overseer.show(ours), overseer.show(theirs)), (Some(ours), Some(theirs)));
        let host_admin = StaffSight::decide(&principal(Role::Admin, host, true), staff);
        assert_eq!(
            (host_admin.show(ours), host_admin.show(theirs), host_admin.show(operator)),
            (None, None, Some(operator))
        );
        let partner = StaffSight::decide(&principal(Role::Partner, own, false), staff);
        assert_eq!(partner.show(ours), None);
        assert_eq!(StaffSight::decide(&principal(Role::Caseworker, own, false), staff).show(Uuid::now_v7()), None);
    }
}
