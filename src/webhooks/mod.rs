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

#[cfg(test)]
mod tests {
    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!super::is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "151.101.1.1", "2a00:1450:4001::1"] {
            assert!(super::is_public(public.parse().unwrap()), "{public}");
        }
    }
}

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

text_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        /// Waiting, or to be retried.
        Pending => "pending",
        Delivered => "delivered",
        /// Given up.
        Failed => "failed",
    }
}

/// Whether a receiver at `ip` may be posted to without `HAVEN_WEBHOOK_ALLOW_LOCAL`: not loopback,
/// private, link-local, shared (carrier-grade NAT), documentation, multicast or unspecified, so a
/// webhook cannot be aimed at the services beside Haven.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let shared = a == 100 && (64..128).contains(&b);
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || shared
                || a == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            let unique_local = first & 0xfe00 == 0xfc00;
            let link_local = first & 0xffc0 == 0xfe80;
            let documentation = first == 0x2001 && v6.segments()[1] == 0x0db8;
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || unique_local
                || link_local
                || documentation)
        }
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
