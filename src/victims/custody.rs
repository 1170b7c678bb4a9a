//! Who works a case: its assigned caseworkers, and whether it is restricted to them. What that
//! allows is the policy's (`policy::Custody`); this is its storage.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::{case_assignments, restricted_cases, users, victims};
use crate::domain::Role;
use crate::domain::policy::Custody;
use crate::error::{ApiError, ApiResult};

/// The custody of each of `victims` as it concerns `user`, in at most two queries (for a page of a
/// list); none for no victims.
pub async fn custody_of(
    conn: &mut AsyncPgConnection,
    victims: &[Uuid],
    user: Uuid,
) -> QueryResult<impl Fn(Uuid) -> Custody + use<>> {
    let restricted: HashSet<Uuid> = if victims.is_empty() {
        HashSet::new()
    } else {
        restricted_cases::table
            .filter(restricted_cases::victim_id.eq_any(victims))
            .select(restricted_cases::victim_id)
            .load::<Uuid>(conn)
            .await?
            .into_iter()
            .collect()
    };
    let assigned: HashSet<Uuid> = if restricted.is_empty() {
        HashSet::new()
    } else {
        case_assignments::table
            .filter(case_assignments::user_id.eq(user))
            .filter(case_assignments::victim_id.eq_any(victims))
            .select(case_assignments::victim_id)
            .load::<Uuid>(conn)
            .await?
            .into_iter()
            .collect()
    };
    Ok(move |victim: Uuid| Custody { restricted: restricted.contains(&victim), assigned: assigned.contains(&victim) })
}

/// Locks the victim's row for the rest of the transaction and reads its custody as it concerns
/// `user`: a write that depends on custody (a hand-over, a patch, a referral, assistance) is judged
/// against the custody no concurrent hand-over can change before it commits. `held_by` is the
/// organisation the write was judged for: a case that moved meanwhile (an accepted transfer) is a
/// conflict, never a write on the new owner's case in the old owner's name.
pub async fn lock(conn: &mut AsyncPgConnection, victim: Uuid, user: Uuid, held_by: Uuid) -> ApiResult<Custody> {
    let owner: Uuid = victims::table.find(victim).select(victims::organization_id).for_update().first(conn).await?;
    if owner != held_by {
        return Err(ApiError::Conflict("The case has moved to another organisation meanwhile.".into()));
    }
    Ok(custody_of(conn, &[victim], user).await?(victim))
}

/// Takes the case's row for key share before anything else of the case is locked: the lock a
/// write that only names the case (a row referring to it) takes anyway, taken first so that it is
/// taken in the order the case's writers lock (the case, then its referrals, tasks and notes).
/// Taken after them, it deadlocks with a writer that holds the case and waits for them.
/// Returns the organisation that holds the case.
pub async fn reference(conn: &mut AsyncPgConnection, victim: Uuid) -> QueryResult<Uuid> {
    victims::table.find(victim).select(victims::organization_id).for_key_share().first::<Uuid>(conn).await
}

/// A case's assigned caseworkers at `org` (by the time they were assigned, then id) and whether it
/// is restricted: never another organisation's staff, whatever the case's owner is by now.
pub async fn assignment(conn: &mut AsyncPgConnection, victim: Uuid, org: Uuid) -> QueryResult<(Vec<Uuid>, bool)> {
    let caseworkers = case_assignments::table
        .filter(case_assignments::victim_id.eq(victim))
        .filter(case_assignments::organization_id.eq(org))
        .order((case_assignments::assigned_at.asc(), case_assignments::user_id.asc()))
        .select(case_assignments::user_id)
        .load(conn)
        .await?;
    let restricted = diesel::select(diesel::dsl::exists(restricted_cases::table.find(victim))).get_result(conn).await?;
    Ok((caseworkers, restricted))
}

/// Of `candidates`, those who are not enabled caseworkers of `org` (who may not work its cases).
/// The eligible accounts are held for share until the transaction ends: under a case's lock, a
/// disabling, demotion or reset of one of them waits for the assignment, or the assignment for it
/// (D177).
pub async fn not_caseworkers_of(conn: &mut AsyncPgConnection, org: Uuid, candidates: &[Uuid]) -> QueryResult<usize> {
    let eligible: Vec<Uuid> = users::table
        .filter(users::id.eq_any(candidates))
        .filter(users::organization_id.eq(org))
        .filter(users::role.eq(Role::Caseworker))
        .filter(users::disabled.eq(false))
        // A caseworker whose access still waits for a second person cannot work a case yet.
        .filter(users::awaiting_approval.eq(false))
        .select(users::id)
        .for_share()
        .load(conn)
        .await?;
    Ok(candidates.len().saturating_sub(eligible.len()))
}

/// Assigns a new case to its creator: one statement, in the create's transaction.
pub async fn assign_creator(
    conn: &mut impl crate::db::Runs,
    victim: Uuid,
    org: Uuid,
    creator: Uuid,
) -> QueryResult<()> {
    diesel::insert_into(case_assignments::table)
        .values((
            case_assignments::victim_id.eq(victim),
            case_assignments::user_id.eq(creator),
            case_assignments::organization_id.eq(org),
            case_assignments::assigned_by.eq(creator),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes `caseworkers` the case's assigned caseworkers (keeping the assignment time of those who
/// stay) and sets its restriction, as a new version of the case: a client that syncs with
/// `updated_since` sees it again, and drops an identity it may no longer see. Call inside the
/// transaction that locked the case ([`lock`]) and audits the change.
pub async fn assign(
    conn: &mut AsyncPgConnection,
    victim: Uuid,
    org: Uuid,
    caseworkers: &[Uuid],
    restricted: bool,
    by: Uuid,
) -> QueryResult<()> {
    diesel::delete(
        case_assignments::table
            .filter(case_assignments::victim_id.eq(victim))
            .filter(case_assignments::user_id.ne_all(caseworkers)),
    )
    .execute(conn)
    .await?;
    let rows: Vec<_> = caseworkers
        .iter()
        .map(|user| {
            (
                case_assignments::victim_id.eq(victim),
                case_assignments::user_id.eq(*user),
                case_assignments::organization_id.eq(org),
                case_assignments::assigned_by.eq(by),
            )
        })
        .collect();
    diesel::insert_into(case_assignments::table).values(rows).on_conflict_do_nothing().execute(conn).await?;
    diesel::update(victims::table.find(victim))
        .set((
            victims::version.eq(victims::version + 1),
            victims::updated_at.eq(diesel::dsl::now),
            victims::updated_by.eq(by),
        ))
        .execute(conn)
        .await?;
    if restricted {
        diesel::insert_into(restricted_cases::table)
            .values((
                restricted_cases::victim_id.eq(victim),
                restricted_cases::organization_id.eq(org),
                restricted_cases::restricted_by.eq(by),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        // Whoever it now leaves out deletes their copy of the identity.
        crate::changes::for_unassigned(conn, org, victim).await?;
    } else {
        diesel::delete(restricted_cases::table.find(victim)).execute(conn).await?;
    }
    Ok(())
}
