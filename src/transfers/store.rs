//! Transfers as stored, and what an accepted one does to the case.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{NewTransfer, TransferRow};
use crate::db::schema::{
    case_assignments, referrals, restricted_cases, support_plan_goals, tasks, transfers, victim_identities, victims,
};
use crate::domain::case_vocab::{DeclineReason, TransferStatus};
use crate::domain::policy::LIVE;
use crate::victims::{custody, store as victim_store};

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<TransferRow>> {
    transfers::table.find(id).select(TransferRow::as_select()).first(conn).await.optional()
}

/// Locks a transfer for the rest of the transaction.
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<TransferRow>> {
    transfers::table.find(id).select(TransferRow::as_select()).for_update().first(conn).await.optional()
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewTransfer) -> QueryResult<Option<TransferRow>> {
    diesel::insert_into(transfers::table)
        .values(new)
        .on_conflict(transfers::id)
        .do_nothing()
        .returning(TransferRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Whether `org`'s live referrals of the victim (pending or accepted) stand in the way: they are
/// settled before the case moves, so no organisation works the person on the strength of an owner
/// that no longer holds the case.
pub async fn has_live_referrals(conn: &mut AsyncPgConnection, victim: Uuid, org: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        referrals::table
            .filter(referrals::victim_id.eq(victim))
            .filter(referrals::from_organization_id.eq(org))
            .filter(referrals::status.eq_any(LIVE)),
    ))
    .get_result(conn)
    .await
}

/// Whether a transfer of the victim is waiting.
pub async fn has_pending(conn: &mut AsyncPgConnection, victim: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        transfers::table.filter(transfers::victim_id.eq(victim)).filter(transfers::status.eq(TransferStatus::Pending)),
    ))
    .get_result(conn)
    .await
}

/// Moves a transfer from `pending` to `to`, by `by`. The decision's time is taken when the
/// statement runs, after the case's lock: a hand-over's is the time up to which the former owner
/// still reads the case's records (D165), and a write of the former owner's that committed while
/// the hand-over waited for the lock began before it.
pub async fn decide(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    to: TransferStatus,
    decline_reason: Option<DeclineReason>,
    to_case_number: Option<i32>,
    by: Uuid,
) -> QueryResult<TransferRow> {
    diesel::update(transfers::table.find(id))
        .set((
            transfers::status.eq(to),
            transfers::decline_reason.eq(decline_reason),
            transfers::to_case_number.eq(to_case_number),
            transfers::decided_at.eq(crate::db::clock_nullable()),
            transfers::decided_by.eq(Some(by)),
            transfers::updated_at.eq(diesel::dsl::now),
        ))
        .returning(TransferRow::as_returning())
        .get_result(conn)
        .await
}

/// Hands the case over to the receiving organisation, inside the transaction that locked it: a case
/// number of the receiver's, the identity's search scope, the acceptor as its one assigned
/// caseworker, no restriction (the receiver decides its own), the sender's open tasks cancelled,
/// its clients told to forget the identity (`changes`), and a new version of the case. Returns the
/// new case number.
pub async fn hand_over(conn: &mut AsyncPgConnection, t: &TransferRow, acceptor: Uuid) -> QueryResult<i32> {
    let number = victim_store::next_case_number(conn, t.to_organization_id).await?;
    diesel::update(victims::table.find(t.victim_id))
        .set((
            victims::organization_id.eq(t.to_organization_id),
            victims::case_number.eq(number),
            victims::version.eq(victims::version + 1),
            victims::updated_at.eq(diesel::dsl::now),
            victims::updated_by.eq(acceptor),
        ))
        .execute(conn)
        .await?;
    // What the sender reads from now on (D166): the case file as it was handed over, whatever the
    // receiver changes or wherever it sends the case next. Without the create request's digest: a
    // keyed hash of a request that held the identity, which an erasure replaces in the case and
    // must not find kept here.
    diesel::sql_query(
        "UPDATE transfers SET case_file = (SELECT to_jsonb(v) || jsonb_build_object('create_digest', '\\x') \
         FROM victims v WHERE v.id = $1) WHERE id = $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(t.victim_id)
    .bind::<diesel::sql_types::Uuid, _>(t.id)
    .execute(conn)
    .await?;
    diesel::update(victim_identities::table.filter(victim_identities::victim_id.eq(t.victim_id)))
        .set(victim_identities::organization_id.eq(t.to_organization_id))
        .execute(conn)
        .await?;
    // The case's tasks and plan are the case's organisation's, history included.
    diesel::update(tasks::table.filter(tasks::victim_id.eq(t.victim_id)))
        .set(tasks::organization_id.eq(t.to_organization_id))
        .execute(conn)
        .await?;
    diesel::update(support_plan_goals::table.filter(support_plan_goals::victim_id.eq(t.victim_id)))
        .set(support_plan_goals::organization_id.eq(t.to_organization_id))
        .execute(conn)
        .await?;
    diesel::delete(case_assignments::table.filter(case_assignments::victim_id.eq(t.victim_id))).execute(conn).await?;
    custody::assign_creator(conn, t.victim_id, t.to_organization_id, acceptor).await?;
    diesel::delete(restricted_cases::table.find(t.victim_id)).execute(conn).await?;
    crate::tasks::cancel_open(conn, t.victim_id, acceptor).await?;
    let gone = crate::changes::LeaveReason::Transferred;
    crate::changes::for_organization(conn, t.from_organization_id, t.victim_id, crate::changes::Forget::Identity, gone)
        .await?;
    Ok(number)
}
