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
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "255.255.255.255",
            // Translated, relayed or tunnelled to a private IPv4 address, or not global unicast.
            "64:ff9b::a00:5",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:5",
            "2002:a00:5::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "::a00:5",
            "::ffff:0:a00:5",
            "100::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "2001:2::1",
        ] {
            assert!(!super::is_public(private.parse().unwrap()), "{private}");
        }
        for public in
            ["8.8.8.8", "151.101.1.1", "2a00:1450:4001::1", "64:ff9b::808:808", "2002:808:808::1", "2620:fe::fe"]
        {
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
        /// The person withdrew a consent (to the owning organisation only: receivers' clients are
        /// told by `GET /changes`).
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
/// private, link-local, shared (carrier-grade NAT), documentation, benchmarking, reserved,
/// multicast or unspecified, so a webhook cannot be aimed at the services beside Haven. IPv6 must be
/// global unicast (`2000::/3`) outside the protocol and documentation blocks; an IPv6 address that
/// carries an IPv4 one to a translator or relay (mapped, NAT64's well-known prefix, 6to4) is judged
/// by the IPv4 address it reaches, and tunnels that hide it (Teredo) are refused.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            let shared = a == 100 && (64..128).contains(&b);
            let protocol_assignments = a == 192 && b == 0 && c == 0;
            let benchmarking = a == 198 && (b == 18 || b == 19);
            let reserved = a >= 240;
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || shared
                || protocol_assignments
                || benchmarking
                || reserved
                || a == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
            // NAT64's well-known prefix (RFC 6052) translates to the IPv4 address in its last 32 bits.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(IpAddr::V4(embedded(s[6], s[7])));
            }
            // 6to4 (RFC 3056) relays to the IPv4 address in bits 16-48.
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(embedded(s[1], s[2])));
            }
            let global_unicast = s[0] & 0xe000 == 0x2000;
            // 2001::/23 holds Teredo, benchmarking and ORCHID; 2001:db8::/32 and 3fff::/20 are
            // documentation.
            let protocol_assignments = s[0] == 0x2001 && s[1] < 0x0200;
            let documentation = (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000);
            global_unicast && !protocol_assignments && !documentation
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
