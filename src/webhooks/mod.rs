//! Webhooks: an organisation's admins subscribe a URL to events (a referral made to them, a
//! transfer, a consent withdrawn, a task falling due). An event is written to the outbox
//! (`webhook_events`) and fanned out to the subscribed webhooks (`webhook_deliveries`) in the
//! transaction of the change it tells of ([`emit`]), so it is sent if and only if that change
//! committed; `delivery` sends, signs and retries. Payloads carry ids and codes only.

pub mod delivery;
pub mod routes;

use diesel::QueryResult;
use diesel::sql_types::{Jsonb, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::text_enum;

text_enum! {
    /// What a webhook is told of.
    pub enum WebhookEvent {
        /// A referral was made (to the receiving and the sending organisation).
        ReferralCreated => "referral.created",
        ReferralAccepted => "referral.accepted",
        ReferralDeclined => "referral.declined",
        ReferralCompleted => "referral.completed",
        ReferralCancelled => "referral.cancelled",
        /// A pending referral went unanswered past its urgency's time (emergency 1 hour, urgent
        /// 1 day, routine 7 days).
        ReferralOverdue => "referral.overdue",
        TransferCreated => "transfer.created",
        TransferAccepted => "transfer.accepted",
        TransferDeclined => "transfer.declined",
        TransferCancelled => "transfer.cancelled",
        /// The person withdrew a consent (to the owning organisation, and to the receivers of
        /// live referrals when it is the consent to sharing).
        ConsentWithdrawn => "consent.withdrawn",
        /// An open task reached its due date.
        TaskDue => "task.due",
    }
}

/// Writes `event` with `data` for each of `orgs` that has a webhook subscribed to it, and one
/// pending delivery per such webhook, in one statement per organisation: call it inside the
/// transaction of the change. Organisations without a subscriber get no row at all.
pub async fn emit(
    conn: &mut AsyncPgConnection,
    orgs: &[Uuid],
    event: WebhookEvent,
    data: serde_json::Value,
) -> QueryResult<()> {
    let mut seen = Vec::with_capacity(orgs.len());
    for org in orgs {
        if seen.contains(org) {
            continue;
        }
        seen.push(*org);
        diesel::sql_query(include_str!("emit.sql"))
            .bind::<SqlUuid, _>(*org)
            .bind::<Text, _>(event.as_str())
            .bind::<Jsonb, _>(&data)
            .execute(conn)
            .await?;
    }
    Ok(())
}
