//! Sends what the outbox holds: every poll, claims the deliveries that are due (`FOR UPDATE SKIP
//! LOCKED` and a lease, so any number of Haven processes share the work), posts each event signed
//! with its webhook's secret, a few at a time so one slow receiver holds up nobody else, and
//! records the outcome, unless the lease was lost meanwhile; a failure is retried with
//! exponential backoff, up to [`MAX_ATTEMPTS`]. Delivery is at least once: receivers
//! de-duplicate by the `Haven-Delivery` header. Names resolve to public addresses only (unless
//! `HAVEN_WEBHOOK_ALLOW_LOCAL`), no proxy from the environment is used and no redirect followed.
//! Every half minute it also raises the events that time brings (`referral.overdue`,
//! `task.due`), each once.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int4, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::{DeliveryStatus, WebhookEvent};
use crate::db::Pool;
use crate::db::schema::{webhook_deliveries as deliveries, webhook_events as events, webhooks};
use crate::privacy::crypto::{IdentityKeyring, Purpose, Sealed};

/// After this many attempts a delivery is given up (`failed`).
pub const MAX_ATTEMPTS: i32 = 10;
/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "Haven-Signature";
/// How long a claimed delivery is left to its claimer before another may try it.
const LEASE_SECONDS: i32 = 60;
/// Deliveries in flight at once in one process: few, so the API keeps its pooled connections.
const IN_FLIGHT: usize = 4;
const SCAN_EVERY: Duration = Duration::from_secs(30);
/// Referrals (and tasks) noticed per transaction when time raises their events.
const NOTICE_BATCH: std::num::NonZeroU16 = std::num::NonZeroU16::new(500).expect("not zero");

/// What the worker needs; cheap to clone.
#[derive(Clone)]
pub struct Worker {
    pub pool: Pool,
    pub keys: std::sync::Arc<IdentityKeyring>,
    pub poll: Duration,
    pub retry: Duration,
    allow_local: bool,
    client: reqwest::Client,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Worker {
    pub fn new(
        pool: Pool,
        keys: std::sync::Arc<IdentityKeyring>,
        poll: Duration,
        retry: Duration,
        allow_local: bool,
    ) -> Result<Worker, String> {
        let mut client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // A receiver answers where it is: following a redirect could post an event elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("Haven-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_local {
            client = client.dns_resolver(std::sync::Arc::new(PublicOnly));
        }
        let client = client.build().map_err(|e| format!("the webhook client cannot be built: {e}"))?;
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        Ok(Worker { pool, keys, poll, retry, allow_local, client, slots })
    }

    /// Runs the worker for the life of the runtime, starting it again if it ever stops (a panic).
    pub async fn supervise(self) {
        loop {
            match tokio::spawn(self.clone().run()).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::error!(%error, "the webhook worker stopped; starting it again");
                    tokio::time::sleep(self.poll).await;
                }
            }
        }
    }

    /// Runs until the runtime stops.
    pub async fn run(self) {
        let mut last_scan: Option<std::time::Instant> = None;
        loop {
            tokio::time::sleep(self.poll).await;
            if last_scan.is_none_or(|t| t.elapsed() >= SCAN_EVERY) {
                last_scan = Some(std::time::Instant::now());
                if let Err(error) = self.raise_timed_events().await {
                    tracing::warn!(%error, "webhook notices could not be raised this round");
                }
            }
            if let Err(error) = self.deliver_due().await {
                tracing::warn!(%error, "webhook deliveries could not be sent this round");
            }
        }
    }

    /// Starts sending as many due deliveries as there are free slots; returns how many.
    pub async fn deliver_due(&self) -> Result<usize, String> {
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        let claimed: Vec<Claimed> = diesel::sql_query(include_str!("claim.sql"))
            .bind::<Int4, _>(LEASE_SECONDS)
            .bind::<BigInt, _>(free as i64)
            .load(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        drop(conn);
        let started = claimed.len();
        for c in claimed {
            let Ok(slot) = self.slots.clone().acquire_owned().await else { break };
            let worker = self.clone();
            tokio::spawn(async move {
                if let Err(error) = worker.try_deliver(&c).await {
                    tracing::warn!(delivery_id = c.id, %error, "a webhook delivery could not be recorded");
                }
                drop(slot);
            });
        }
        Ok(started)
    }

    async fn try_deliver(&self, c: &Claimed) -> Result<(), String> {
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        type Hook = (String, bool, String, Vec<u8>, Vec<u8>);
        let hook: Option<Hook> = webhooks::table
            .find(c.webhook_id)
            .select((
                webhooks::url,
                webhooks::disabled,
                webhooks::secret_key_id,
                webhooks::secret_nonce,
                webhooks::secret_ciphertext,
            ))
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| e.to_string())?;
        let (url, _, key_id, nonce, ciphertext) = match hook {
            Some(hook) if !hook.1 => hook,
            _ => return record(&mut conn, c, Outcome::GivenUp(None, "the webhook is disabled".into())).await,
        };
        let event: Option<(String, Uuid, serde_json::Value, chrono::DateTime<Utc>)> = events::table
            .find(c.event_id)
            .select((events::event, events::organization_id, events::payload, events::created_at))
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| e.to_string())?;
        let Some((kind, org, payload, at)) = event else {
            return record(&mut conn, c, Outcome::GivenUp(None, "the event is gone".into())).await;
        };
        let Ok(secret) = self.keys.open(Purpose::WebhookSecret, c.webhook_id, &Sealed { key_id, nonce, ciphertext })
        else {
            // A key no longer held (a rotation not finished): nothing can be signed, now or later.
            tracing::error!(webhook_id = %c.webhook_id, "a webhook secret cannot be opened");
            return record(&mut conn, c, Outcome::GivenUp(None, "the webhook's secret cannot be opened".into())).await;
        };
        drop(conn);
        let literal = reqwest::Url::parse(&url).ok().and_then(|u| u.host_str().and_then(super::routes::literal_ip));
        if !self.allow_local && literal.is_some_and(|ip| !super::is_public(ip)) {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            return record(&mut conn, c, Outcome::GivenUp(None, "the receiver is not at a public address".into()))
                .await;
        }
        let body = serde_json::to_vec(&serde_json::json!({
            "id": c.event_id, "event": kind, "organization_id": org, "occurred_at": at, "data": payload,
        }))
        .map_err(|e| e.to_string())?;
        let timestamp = Utc::now().timestamp();
        let response = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Haven-Event", &kind)
            .header("Haven-Delivery", c.id.to_string())
            .header(SIGNATURE_HEADER, signature(&secret, timestamp, &body))
            .body(body)
            .send()
            .await;
        let outcome = match response {
            Ok(r) if r.status().is_success() => Outcome::Delivered(r.status().as_u16()),
            Ok(r) => self.retry_or_give_up(c, Some(r.status().as_u16()), format!("answered {}", r.status().as_u16())),
            // The error's own words may name the URL, which is the webhook's, not a person's.
            Err(e) if e.is_timeout() => self.retry_or_give_up(c, None, "timed out".into()),
            Err(e) if certificate_refused(&e) => {
                self.retry_or_give_up(c, None, "the receiver's certificate was not accepted".into())
            }
            Err(_) => self.retry_or_give_up(c, None, "could not connect".into()),
        };
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        record(&mut conn, c, outcome).await
    }

    fn retry_or_give_up(&self, c: &Claimed, status: Option<u16>, error: String) -> Outcome {
        let attempts = c.attempts + 1;
        if attempts >= MAX_ATTEMPTS {
            return Outcome::GivenUp(status, error);
        }
        let wait = self.retry.saturating_mul(1 << (attempts - 1).min(20)).min(Duration::from_secs(3600));
        Outcome::Retry { status, error, wait }
    }

    /// Raises `referral.overdue` for pending referrals past their urgency's time and `task.due`
    /// for open tasks reaching their due date, each once (`webhook_notices`).
    pub async fn raise_timed_events(&self) -> Result<usize, String> {
        self.raise_timed_events_by(NOTICE_BATCH).await
    }

    /// [`Self::raise_timed_events`], `batch` records of each kind per transaction, until a batch
    /// comes back short; returns how many notices were raised. A backlog (the first start after
    /// an import or a long outage: tens of thousands of referrals at once) is thus never loaded
    /// whole into memory nor locked in one transaction (docs/DECISIONS.md D146).
    pub async fn raise_timed_events_by(&self, batch: std::num::NonZeroU16) -> Result<usize, String> {
        let batch = i64::from(batch.get());
        let mut raised = 0;
        loop {
            let (overdue, due) = self.raise_timed_batch(batch).await?;
            raised += overdue + due;
            if (overdue.max(due) as i64) < batch {
                return Ok(raised);
            }
        }
    }

    /// One batch of each kind, with their events, in one transaction.
    async fn raise_timed_batch(&self, batch: i64) -> Result<(usize, usize), String> {
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        (*conn)
            .transaction::<_, diesel::result::Error, _>(async |conn: &mut AsyncPgConnection| {
                let overdue: Vec<Overdue> =
                    diesel::sql_query(include_str!("overdue.sql")).bind::<BigInt, _>(batch).load(conn).await?;
                for r in &overdue {
                    let data = serde_json::json!({
                        "referral_id": r.id, "victim_id": r.victim_id, "from_organization_id": r.from_organization_id,
                        "to_organization_id": r.to_organization_id, "urgency": r.urgency, "created_at": r.created_at,
                    });
                    let orgs = [r.to_organization_id, r.from_organization_id];
                    super::emit(conn, &orgs, WebhookEvent::ReferralOverdue, data).await?;
                }
                let due: Vec<Due> =
                    diesel::sql_query(include_str!("due.sql")).bind::<BigInt, _>(batch).load(conn).await?;
                for t in &due {
                    let data = serde_json::json!({
                        "task_id": t.id, "victim_id": t.victim_id, "assignee_id": t.assignee_id,
                        "kind": t.kind, "due_on": t.due_on,
                    });
                    super::emit(conn, &[t.organization_id], WebhookEvent::TaskDue, data).await?;
                }
                Ok((overdue.len(), due.len()))
            })
            .await
            .map_err(|e| e.to_string())
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<body>">` under the webhook's secret.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    event_id: i64,
    #[diesel(sql_type = SqlUuid)]
    webhook_id: Uuid,
    #[diesel(sql_type = Int4)]
    attempts: i32,
}

#[derive(QueryableByName)]
struct Overdue {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    victim_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    from_organization_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    to_organization_id: Uuid,
    #[diesel(sql_type = Text)]
    urgency: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: chrono::DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    victim_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    organization_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    assignee_id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Date)]
    due_on: chrono::NaiveDate,
}

/// Whether the connection failed because the receiver's TLS certificate did not verify (expired,
/// self-signed, for another name): worth telling the admin apart from an unreachable receiver.
fn certificate_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    if matches!(error.downcast_ref::<rustls::Error>(), Some(rustls::Error::InvalidCertificate(_))) {
        return true;
    }
    // An `io::Error` hides what it wraps from `source()` (and the TLS error comes wrapped twice):
    // its `get_ref` reaches it.
    if let Some(inner) = error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
        && certificate_refused(inner)
    {
        return true;
    }
    error.source().is_some_and(certificate_refused)
}

enum Outcome {
    Delivered(u16),
    Retry { status: Option<u16>, error: String, wait: Duration },
    GivenUp(Option<u16>, String),
}

/// Records how an attempt went, unless the claim was lost meanwhile (the lease ran out and another
/// process took the delivery): then that process's outcome stands.
async fn record(conn: &mut AsyncPgConnection, c: &Claimed, outcome: Outcome) -> Result<(), String> {
    let row = deliveries::table
        .find(c.id)
        .filter(deliveries::status.eq(DeliveryStatus::Pending))
        .filter(deliveries::attempts.eq(c.attempts));
    let done = match outcome {
        Outcome::Delivered(status) => {
            diesel::update(row)
                .set((
                    deliveries::status.eq(DeliveryStatus::Delivered),
                    deliveries::attempts.eq(deliveries::attempts + 1),
                    deliveries::last_attempt_at.eq(crate::db::now_nullable()),
                    deliveries::delivered_at.eq(crate::db::now_nullable()),
                    deliveries::response_status.eq(Some(i32::from(status))),
                    deliveries::last_error.eq(None::<String>),
                ))
                .execute(conn)
                .await
        }
        Outcome::Retry { status, error, wait } => {
            let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            diesel::update(row)
                .set((
                    deliveries::attempts.eq(deliveries::attempts + 1),
                    deliveries::last_attempt_at.eq(crate::db::now_nullable()),
                    deliveries::next_attempt_at.eq(next),
                    deliveries::response_status.eq(status.map(i32::from)),
                    deliveries::last_error.eq(Some(error)),
                ))
                .execute(conn)
                .await
        }
        Outcome::GivenUp(status, error) => {
            diesel::update(row)
                .set((
                    deliveries::status.eq(DeliveryStatus::Failed),
                    deliveries::attempts.eq(deliveries::attempts + 1),
                    deliveries::last_attempt_at.eq(crate::db::now_nullable()),
                    deliveries::next_attempt_at.eq(diesel::dsl::now),
                    deliveries::response_status.eq(status.map(i32::from)),
                    deliveries::last_error.eq(Some(error)),
                ))
                .execute(conn)
                .await
        }
    };
    done.map(|_| ()).map_err(|e| e.to_string())
}

/// Resolves a receiver's name to its public addresses only: a name that points inside (loopback,
/// a private network, a cloud's metadata address) is not posted to.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public: Vec<std::net::SocketAddr> = found.filter(|a| super::is_public(a.ip())).collect();
            if public.is_empty() {
                return Err("the receiver's name has no public address".into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
