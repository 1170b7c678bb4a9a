//! Queries for victims and their identities.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::model::{VictimInput, VictimRow};
use crate::db::schema::{case_counters, referrals, victim_identities, victims};
use crate::domain::case_vocab::ReferralStatus;
use crate::privacy::crypto::Sealed;
use crate::privacy::identity::StoredIdentity;
use crate::privacy::redaction::Referral;

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<VictimRow>> {
    victims::table.find(id).select(VictimRow::as_select()).first(conn).await.optional()
}

/// The victim and its live referral to `org`, in one query, if the victim is a candidate for the
/// caller's sight: its organisation's, referred to it, or any (`org` none: host auditors). The
/// policy (`redaction::victim_sight`) still decides; this filter only makes a record the caller
/// cannot see cost what an unknown id costs, so response times do not reveal which ids exist
/// (README, "Roles and what each sees"): neither is read, decoded or sent.
pub async fn find_in_scope(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    org: Option<Uuid>,
) -> QueryResult<Option<(VictimRow, Referral)>> {
    // Two fixed query shapes (no boxing, no SQL literal), so diesel prepares each once per
    // connection: this is the hottest read of the service.
    let caller = org.unwrap_or(Uuid::nil());
    let base = victims::table
        .left_join(
            referrals::table.on(referrals::victim_id
                .eq(victims::id)
                .and(referrals::to_organization_id.eq(caller))
                .and(referrals::status.eq_any(LIVE))),
        )
        .filter(victims::id.eq(id))
        .select((VictimRow::as_select(), referrals::identity_shared.nullable()));
    let rows: Vec<(VictimRow, Option<bool>)> = match org {
        Some(org) => {
            base.filter(victims::organization_id.eq(org).or(referrals::victim_id.is_not_null())).load(conn).await?
        }
        None => base.load(conn).await?,
    };
    // One row per live referral to the caller (or one with none).
    let shared = rows.iter().filter_map(|(_, s)| *s).reduce(|a, b| a || b);
    Ok(rows.into_iter().next().map(|(row, _)| {
        let referral = match shared {
            None => Referral::None,
            // Shared only while the victim's consent to sharing still stands.
            Some(at_referral) => {
                Referral::Referred { identity_shared: at_referral && row.consent_share_with_referral_partners }
            }
        };
        (row, referral)
    }))
}

/// The organisation that holds a victim, if it exists (for filing a refusal in its audit log).
pub async fn owner_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Uuid>> {
    victims::table.find(id).select(victims::organization_id).first(conn).await.optional()
}

/// Referral states in which the receiving organisation may see the victim's record.
pub const LIVE: [ReferralStatus; 2] = [ReferralStatus::Pending, ReferralStatus::Accepted];

pub async fn next_case_number(conn: &mut AsyncPgConnection, org: Uuid) -> QueryResult<i32> {
    diesel::insert_into(case_counters::table)
        .values((case_counters::organization_id.eq(org), case_counters::last_number.eq(1)))
        .on_conflict(case_counters::organization_id)
        .do_update()
        .set(case_counters::last_number.eq(case_counters::last_number + 1))
        .returning(case_counters::last_number)
        .get_result(conn)
        .await
}

/// The columns of a case file from validated input (identity excluded).
macro_rules! case_columns {
    ($input:expr) => {{
        let i: &$crate::victims::model::VictimInput = $input;
        (
            victims::status.eq(i.status),
            victims::trafficking_status.eq(i.trafficking_status),
            victims::identified_on.eq(i.identified_on),
            victims::identified_in.eq(i.identified_in),
            victims::identified_by.eq(i.identified_by),
            victims::operation.eq(i.operation.clone()),
            victims::gender.eq(i.gender),
            victims::age_at_identification.eq(i.age_at_identification),
            victims::is_minor.eq(i.is_minor.unwrap_or(false)),
            victims::citizenship.eq(i.citizenship.clone()),
            victims::migrant_status.eq(i.migrant_status),
            victims::country_of_exploitation.eq(i.country_of_exploitation),
            (
                victims::exploitation_types.eq(i.exploitation_types.clone()),
                victims::labour_sector.eq(i.labour_sector.clone()),
                victims::recruitment_methods.eq(i.recruitment_methods.clone()),
                victims::means_of_control.eq(i.means_of_control.clone()),
                victims::recruiter_relation.eq(i.recruiter_relation),
                victims::route.eq(serde_json::to_value(&i.route).unwrap_or_default()),
                victims::consent_services.eq(i.consent.services),
                victims::consent_share_with_referral_partners.eq(i.consent.share_with_referral_partners),
                victims::consent_anonymised_statistics.eq(i.consent.anonymised_statistics),
                victims::consent_recorded_at.eq(i.consent.recorded_at.or_else(|| Some(chrono::Utc::now()))),
            ),
        )
    }};
}

pub(crate) use case_columns;

pub struct NewVictim<'a> {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub case_number: i32,
    pub input: &'a VictimInput,
    pub digest: Vec<u8>,
}

/// Inserts the victim; `None` if a record with this id appeared meanwhile (a concurrent retry:
/// the statement waits for that transaction and then does nothing).
pub async fn insert(conn: &mut AsyncPgConnection, new: NewVictim<'_>) -> QueryResult<Option<VictimRow>> {
    diesel::insert_into(victims::table)
        .values((
            victims::id.eq(new.id),
            victims::organization_id.eq(new.organization_id),
            victims::case_number.eq(new.case_number),
            victims::create_digest.eq(new.digest),
            victims::created_by.eq(new.user_id),
            victims::updated_by.eq(new.user_id),
            case_columns!(new.input),
        ))
        .on_conflict(victims::id)
        .do_nothing()
        .returning(VictimRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn delete_identity(conn: &mut AsyncPgConnection, victim: Uuid) -> QueryResult<()> {
    diesel::delete(victim_identities::table.find(victim)).execute(conn).await?;
    Ok(())
}

/// Writes a new version of the case file if `version` is still current; `None` when stale.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    version: i32,
    user: Uuid,
    input: &VictimInput,
) -> QueryResult<Option<VictimRow>> {
    diesel::update(victims::table.find(id).filter(victims::version.eq(version)))
        .set((
            case_columns!(input),
            victims::version.eq(victims::version + 1),
            victims::updated_at.eq(diesel::dsl::now),
            victims::updated_by.eq(user),
        ))
        .returning(VictimRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn store_identity(
    conn: &mut AsyncPgConnection,
    victim: Uuid,
    org: Uuid,
    stored: StoredIdentity,
) -> QueryResult<()> {
    let values = (
        victim_identities::victim_id.eq(victim),
        victim_identities::organization_id.eq(org),
        victim_identities::key_id.eq(stored.sealed.key_id),
        victim_identities::nonce.eq(stored.sealed.nonce),
        victim_identities::ciphertext.eq(stored.sealed.ciphertext),
        victim_identities::name_index.eq(stored.name_index),
        victim_identities::document_index.eq(stored.document_index),
        victim_identities::updated_at.eq(diesel::dsl::now),
    );
    diesel::insert_into(victim_identities::table)
        .values(values.clone())
        .on_conflict(victim_identities::victim_id)
        .do_update()
        .set(values)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn sealed_identity(conn: &mut AsyncPgConnection, victim: Uuid) -> QueryResult<Option<Sealed>> {
    let row: Option<(String, Vec<u8>, Vec<u8>)> = victim_identities::table
        .find(victim)
        .select((victim_identities::key_id, victim_identities::nonce, victim_identities::ciphertext))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(key_id, nonce, ciphertext)| Sealed { key_id, nonce, ciphertext }))
}

pub async fn sealed_identities(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<(Uuid, Sealed)>> {
    let rows: Vec<(Uuid, String, Vec<u8>, Vec<u8>)> = victim_identities::table
        .filter(victim_identities::victim_id.eq_any(ids))
        .select((
            victim_identities::victim_id,
            victim_identities::key_id,
            victim_identities::nonce,
            victim_identities::ciphertext,
        ))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|(id, key_id, nonce, ciphertext)| (id, Sealed { key_id, nonce, ciphertext })).collect())
}
