//! Tombstones for offline clients (`GET /changes`): when a case, or what identifies the person in
//! it, leaves the sight of an organisation (or of one person in it), a row says so, written in the
//! transaction of the change, so a client deletes its local copy. Ids and codes only.

pub mod routes;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::{case_assignments, referrals, sight_changes, users, victims};
use crate::domain::Role;
use crate::domain::policy::LIVE;
use crate::text_enum;

text_enum! {
    /// What a client deletes.
    pub enum Forget {
        /// The identity and every identity-grade text (notes, reasons, plan texts); the case file
        /// stays.
        Identity => "identity",
        /// The identity alone: the case's notes, reasons and plan texts stay, and are still served.
        IdentityOnly => "identity_only",
        /// The whole record: it is no longer yours to see.
        Record => "record",
        /// What you read of a case you once handed over, since you handed it over: delete the
        /// record and fetch it again (`GET /victims/{id}` and its lists without `updated_since`:
        /// tasks, assistance, plan, closures, referrals outside Haven), which serves what you
        /// keep, the case file as you handed it over and your records up to then.
        SinceHandOver => "since_hand_over",
    }
}

text_enum! {
    /// Why it left your sight.
    pub enum LeaveReason {
        /// The identity and every identity-grade text were erased (`POST /victims/{id}/erase`, or
        /// the retention schedule).
        IdentityErased => "identity_erased",
        /// The identity was removed from the case file by a patch; the texts about the person stay.
        IdentityRemoved => "identity_removed",
        /// The person withdrew their consent to sharing with referral partners.
        ConsentWithdrawn => "consent_withdrawn",
        /// The case was transferred to another organisation.
        Transferred => "transferred",
        /// The case was restricted to caseworkers you are not among.
        Restricted => "restricted",
        /// The referral that gave your organisation the case ended.
        ReferralEnded => "referral_ended",
    }
}

/// Tells every client of `org` to forget `what` of the victim.
pub async fn for_organization(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    victim: Uuid,
    what: Forget,
    why: LeaveReason,
) -> QueryResult<()> {
    diesel::insert_into(sight_changes::table)
        .values((
            sight_changes::organization_id.eq(org),
            sight_changes::victim_id.eq(victim),
            sight_changes::forget.eq(what),
            sight_changes::reason.eq(why),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Tells every holder of the victim's identity to forget `what` of it: the owning organisation's
/// clients, and those of receivers of live referrals made with it shared (its erasure or removal).
pub async fn for_holders(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    victim: Uuid,
    what: Forget,
    why: LeaveReason,
) -> QueryResult<()> {
    for_organization(conn, owner, victim, what, why).await?;
    for_receivers(conn, victim, what, why).await
}

/// Tells the organisations that hold the victim's identity through a live referral made with it
/// shared to forget `what` of it (its erasure or removal, or the consent withdrawn).
pub async fn for_receivers(
    conn: &mut AsyncPgConnection,
    victim: Uuid,
    what: Forget,
    why: LeaveReason,
) -> QueryResult<()> {
    let receivers: Vec<Uuid> = referrals::table
        .filter(referrals::victim_id.eq(victim))
        .filter(referrals::status.eq_any(LIVE))
        .filter(referrals::identity_shared.eq(true))
        .select(referrals::to_organization_id)
        .distinct()
        .load(conn)
        .await?;
    for org in receivers {
        for_organization(conn, org, victim, what, why).await?;
    }
    Ok(())
}

/// A restricted case: each caseworker of `org` who is not assigned to it forgets its identity.
pub async fn for_unassigned(conn: &mut AsyncPgConnection, org: Uuid, victim: Uuid) -> QueryResult<()> {
    let assigned =
        case_assignments::table.filter(case_assignments::victim_id.eq(victim)).select(case_assignments::user_id);
    let left_out: Vec<Uuid> = users::table
        .filter(users::organization_id.eq(org))
        .filter(users::role.eq(Role::Caseworker))
        .filter(users::id.ne_all(assigned))
        .select(users::id)
        .load(conn)
        .await?;
    let rows: Vec<_> = left_out
        .into_iter()
        .map(|user| {
            (
                sight_changes::organization_id.eq(org),
                sight_changes::user_id.eq(Some(user)),
                sight_changes::victim_id.eq(victim),
                sight_changes::forget.eq(Forget::Identity),
                sight_changes::reason.eq(LeaveReason::Restricted),
            )
        })
        .collect();
    if !rows.is_empty() {
        diesel::insert_into(sight_changes::table).values(rows).execute(conn).await?;
    }
    Ok(())
}

/// A referral to `org` ended: unless another live referral of the victim to it remains (or it
/// holds the case itself), its clients forget the case (what it read since its hand-over, if it
/// handed the case over before: D171); when the live referrals that remain were all made without
/// the identity shared, they forget the identity the ended one may have shown.
pub async fn after_referral(conn: &mut AsyncPgConnection, org: Uuid, victim: Uuid) -> QueryResult<()> {
    let live = || {
        referrals::table
            .filter(referrals::victim_id.eq(victim))
            .filter(referrals::to_organization_id.eq(org))
            .filter(referrals::status.eq_any(LIVE))
    };
    let owned = || victims::table.filter(victims::id.eq(victim)).filter(victims::organization_id.eq(org));
    let (still, identity): (bool, bool) = diesel::select((
        diesel::dsl::exists(live()).or(diesel::dsl::exists(owned())),
        diesel::dsl::exists(live().filter(referrals::identity_shared.eq(true))).or(diesel::dsl::exists(owned())),
    ))
    .get_result(conn)
    .await?;
    match (still, identity) {
        (false, _) => {
            let kept = crate::victims::store::handed_over_by(conn, victim, org).await?.is_some();
            let what = if kept { Forget::SinceHandOver } else { Forget::Record };
            for_organization(conn, org, victim, what, LeaveReason::ReferralEnded).await
        }
        (true, false) => for_organization(conn, org, victim, Forget::Identity, LeaveReason::ReferralEnded).await,
        (true, true) => Ok(()),
    }
}
