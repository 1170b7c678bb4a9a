//! Transfers: a case moving to another organisation with the person (a repatriation from Dakar to
//! Lima). The sender asks, with the victim's consent to sharing with referral partners; the
//! receiver accepts or declines. On acceptance the receiver owns the case under a case number of
//! its own, and the sender keeps the case file and its history, read-only and without the identity
//! (`policy::Relation::FormerOwner`).

pub mod routes;
mod store;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::transfers;
use crate::domain::Principal;
use crate::domain::case_vocab::{DeclineReason, TransferReason, TransferStatus};
use crate::privacy::staff::StaffSight;

/// A transfer as the sender asks for it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    /// Client-chosen id; repeating a create with the same id and body returns the transfer.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// The organisation that is to take the case over.
    pub to_organization_id: Uuid,
    pub reason: TransferReason,
}

/// A new transfer, asked once however often the client retries (`idempotency`).
#[derive(Insertable)]
#[diesel(table_name = transfers)]
pub struct NewTransfer {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub from_organization_id: Uuid,
    pub from_user_id: Uuid,
    pub to_organization_id: Uuid,
    pub reason: TransferReason,
    pub from_case_number: i32,
    pub create_digest: Vec<u8>,
}

impl crate::idempotency::CreateOnce for NewTransfer {
    type Row = TransferRow;

    async fn find(&self, conn: &mut diesel_async::AsyncPgConnection) -> QueryResult<Option<TransferRow>> {
        store::find(conn, self.id).await
    }

    async fn insert(&self, conn: &mut diesel_async::AsyncPgConnection) -> QueryResult<Option<TransferRow>> {
        store::insert(conn, self).await
    }

    fn is_retry_of(&self, existing: &TransferRow) -> bool {
        existing.from_organization_id == self.from_organization_id
            && existing.victim_id == self.victim_id
            && existing.create_digest == self.create_digest
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = transfers)]
pub struct TransferRow {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub from_organization_id: Uuid,
    pub from_user_id: Uuid,
    pub to_organization_id: Uuid,
    pub reason: TransferReason,
    pub status: TransferStatus,
    pub from_case_number: i32,
    pub to_case_number: Option<i32>,
    pub decline_reason: Option<DeclineReason>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    pub create_digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A transfer: ids and codes only, nothing that identifies the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct Transfer {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub from_organization_id: Uuid,
    /// The caseworker who asked for it; absent for the receiving organisation but host auditors
    /// (who works a case is its organisation's to know).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_user_id: Option<Uuid>,
    pub to_organization_id: Uuid,
    pub reason: TransferReason,
    pub status: TransferStatus,
    /// The case's number at the sending organisation.
    pub from_case_number: i32,
    /// The case's number at the receiving organisation, once accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_case_number: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
    /// When it was accepted, declined or cancelled, and by whom (`decided_by` only for the
    /// organisation of the person who decided).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// The last change (for client sync).
    pub updated_at: DateTime<Utc>,
}

impl Transfer {
    /// The staff a transfer names, for the `StaffSight` its view is built with.
    pub fn staff(r: &TransferRow) -> impl Iterator<Item = Uuid> {
        std::iter::once(r.from_user_id).chain(r.decided_by)
    }

    /// The view of one transfer as `principal` may see it.
    pub async fn view(
        conn: &mut diesel_async::AsyncPgConnection,
        principal: &Principal,
        r: TransferRow,
    ) -> QueryResult<Transfer> {
        let staff = StaffSight::of(conn, principal, Transfer::staff(&r)).await?;
        Ok(Transfer::of(r, &staff))
    }

    pub fn of(r: TransferRow, staff: &StaffSight) -> Transfer {
        Transfer {
            id: r.id,
            victim_id: r.victim_id,
            from_organization_id: r.from_organization_id,
            from_user_id: staff.show(r.from_user_id),
            to_organization_id: r.to_organization_id,
            reason: r.reason,
            status: r.status,
            from_case_number: r.from_case_number,
            to_case_number: r.to_case_number,
            decline_reason: r.decline_reason,
            decided_at: r.decided_at,
            decided_by: staff.show_some(r.decided_by),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}
