//! Referrals of a victim from one organisation to another for a service, and their life cycle:
//! `pending` -> `accepted` | `declined`; `accepted` -> `completed`; `pending` | `accepted` ->
//! `cancelled` (by the sender). The identity travels only when the victim consented to sharing.

pub mod external;
pub mod routes;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::referrals;
use crate::domain::case_vocab::{DeclineReason, ReferralStatus, ServiceKind, Urgency};
use crate::idempotency::CreateOnce;
use crate::privacy::redaction::{Gated, View};

/// A transition and who may make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Accept,
    Decline,
    Complete,
    Cancel,
}

impl Transition {
    /// The status after the transition, if allowed from `from`.
    pub fn apply(self, from: ReferralStatus) -> Option<ReferralStatus> {
        use ReferralStatus::*;
        match (self, from) {
            (Transition::Accept, Pending) => Some(Accepted),
            (Transition::Decline, Pending) => Some(Declined),
            (Transition::Complete, Accepted) => Some(Completed),
            (Transition::Cancel, Pending | Accepted) => Some(Cancelled),
            _ => None,
        }
    }

    /// Whether the receiving organisation (true) or the sender (false) makes it.
    pub fn by_receiver(self) -> bool {
        !matches!(self, Transition::Cancel)
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralInput {
    /// Client-chosen id; repeating a create with the same id and body returns the referral.
    #[serde(default)]
    pub id: Option<Uuid>,
    pub victim_id: Uuid,
    pub to_organization_id: Uuid,
    pub service: ServiceKind,
    #[serde(default = "default_urgency")]
    pub urgency: Urgency,
    /// Identity-grade free text: encrypted; shown to the sender's caseworkers, and to the
    /// receiver's only when the identity is shared.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub reason: Option<String>,
}

fn default_urgency() -> Urgency {
    Urgency::Routine
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineInput {
    pub reason: DeclineReason,
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<ReferralRow>> {
    referrals::table.find(id).select(ReferralRow::as_select()).first(conn).await.optional()
}

/// A new referral, created once however often the client retries (`idempotency`).
#[derive(Insertable)]
#[diesel(table_name = referrals)]
pub struct NewReferral {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub from_organization_id: Uuid,
    pub from_user_id: Uuid,
    pub to_organization_id: Uuid,
    pub service: ServiceKind,
    pub urgency: Urgency,
    pub reason_key_id: Option<String>,
    pub reason_nonce: Option<Vec<u8>>,
    pub reason_ciphertext: Option<Vec<u8>>,
    pub status: ReferralStatus,
    pub identity_shared: bool,
    pub create_digest: Vec<u8>,
}

impl CreateOnce for NewReferral {
    type Row = ReferralRow;

    async fn find(&self, conn: &mut AsyncPgConnection) -> QueryResult<Option<ReferralRow>> {
        find(conn, self.id).await
    }

    async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<Option<ReferralRow>> {
        diesel::insert_into(referrals::table)
            .values(self)
            .on_conflict(referrals::id)
            .do_nothing()
            .returning(ReferralRow::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    fn is_retry_of(&self, existing: &ReferralRow) -> bool {
        existing.from_organization_id == self.from_organization_id && existing.create_digest == self.create_digest
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = referrals)]
pub struct ReferralRow {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub from_organization_id: Uuid,
    pub from_user_id: Uuid,
    pub to_organization_id: Uuid,
    pub service: ServiceKind,
    pub urgency: Urgency,
    pub reason_key_id: Option<String>,
    pub reason_nonce: Option<Vec<u8>>,
    pub reason_ciphertext: Option<Vec<u8>>,
    pub status: ReferralStatus,
    pub identity_shared: bool,
    pub decline_reason: Option<DeclineReason>,
    pub create_digest: Vec<u8>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub declined_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A referral and its history (the time of each transition), without the free-text reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct Referral {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub from_organization_id: Uuid,
    pub to_organization_id: Uuid,
    pub service: ServiceKind,
    pub urgency: Urgency,
    pub status: ReferralStatus,
    /// Whether the receiving organisation's caseworkers see the victim's identity.
    pub identity_shared: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declined_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    pub version: i32,
}

// A referral's free-text reason, for callers holding an identity grant (no doc comment: it would
// become a schema description).
#[derive(Serialize, ToSchema)]
pub struct ReasonPart {
    /// Always present in this view, `null` when none was given: its presence is what tells this
    /// view from the one without it.
    #[schema(required = true)]
    pub reason: Option<String>,
}

impl Gated for Referral {
    type Part = ReasonPart;

    const VIEW: &'static str = "ReferralView";
    const VIEW_DESCRIPTION: &'static str =
        "A referral as one caller may see it: with the reason (caseworkers entitled to the identity) or without.";
    const DISCLOSED: &'static str = "ReferralWithReason";
    const DISCLOSED_DESCRIPTION: &'static str = "A referral with its reason, for callers holding an identity grant.";

    fn victim_id(&self) -> Uuid {
        self.victim_id
    }
}

/// A referral as one caller may see it.
pub type ReferralView = View<Referral>;

impl From<&ReferralRow> for Referral {
    fn from(r: &ReferralRow) -> Referral {
        Referral {
            id: r.id,
            victim_id: r.victim_id,
            from_organization_id: r.from_organization_id,
            to_organization_id: r.to_organization_id,
            service: r.service,
            urgency: r.urgency,
            status: r.status,
            identity_shared: r.identity_shared,
            decline_reason: r.decline_reason,
            created_at: r.created_at,
            accepted_at: r.accepted_at,
            declined_at: r.declined_at,
            completed_at: r.completed_at,
            cancelled_at: r.cancelled_at,
            version: r.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Transition::*;
    use crate::domain::case_vocab::ReferralStatus::{self, *};

    #[test]
    fn only_the_allowed_transitions() {
        let all = [Pending, Accepted, Declined, Completed, Cancelled];
        let allowed = |t: super::Transition, from: ReferralStatus| t.apply(from);
        for from in all {
            assert_eq!(allowed(Accept, from), (from == Pending).then_some(Accepted));
            assert_eq!(allowed(Decline, from), (from == Pending).then_some(Declined));
            assert_eq!(allowed(Complete, from), (from == Accepted).then_some(Completed));
            assert_eq!(allowed(Cancel, from), matches!(from, Pending | Accepted).then_some(Cancelled));
        }
    }
}
