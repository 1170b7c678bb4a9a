//! Webhooks with a real receiver: signed deliveries, a retry after a failure, the delivery log,
//! nothing for a change that rolled back, events that time raises, who manages them, and no
//! delivery to a receiver whose TLS certificate is not trusted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use diesel_async::AsyncConnection;
use haven::domain::Role;
use haven::webhooks::WebhookEvent;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::paths;
use crate::victims::{MARKERS, create_victim};

/// One request the receiver got: its headers of interest and its body.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    delivery: String,
    signature: String,
    body: String,
}

/// An HTTP receiver on loopback that records every request and answers 500 to the first
/// `failures` of them, 200 after.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(failures: usize) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        let server = HttpServer::new(move || {
            let seen = seen.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let seen = seen.clone();
                async move {
                    let header = |name: &str| {
                        req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
                    };
                    let mut all = seen.lock().unwrap();
                    all.push(Received {
                        event: header("haven-event"),
                        delivery: header("haven-delivery"),
                        signature: header("haven-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    if all.len() <= failures {
                        HttpResponse::InternalServerError().finish()
                    } else {
                        HttpResponse::Ok().finish()
                    }
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind the receiver");
        let url = format!("http://{}/hooks/haven", server.addrs()[0]);
        tokio::spawn(server.run());
        Receiver { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (up to 15 s) until `done` holds for what was received.
    async fn wait_for(&self, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..150 {
            let got = self.received();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the receiver did not get what was expected: {:?}", self.received());
    }
}

/// Checks `Haven-Signature` (`t=..,v1=..`) against the body, computed here independently.
fn verifies(secret: &str, r: &Received) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in r.signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", r.body).as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    expected == v1
}

async fn subscribe(app: &TestApp, org: uuid::Uuid, url: &str, events: Value) -> (String, String) {
    let admin = app.caller(org, Role::Admin).await;
    let resp = admin.post(paths::WEBHOOKS, json!({ "url": url, "events": events })).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let created = resp.json();
    (created["webhook"]["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn deliveries_are_signed_retried_logged_and_sent_only_for_committed_changes() {
    let app = spawn_app().await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let receiver = Receiver::start(1);
    let (hook, secret) =
        subscribe(&app, lima, &receiver.url, json!(["referral.created", "consent.withdrawn", "transfer.created"]))
            .await;

    // A change that rolls back leaves no event behind: the outbox row goes with it.
    let mut conn = app.pool.get().await.unwrap();
    let rolled_back = (*conn)
        .transaction::<(), diesel::result::Error, _>(async |conn| {
            haven::webhooks::emit(conn, &[lima], WebhookEvent::ReferralCreated, json!({ "rolled": "back" })).await?;
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(rolled_back.is_err());
    drop(conn);

    // A referral to Lima, with a reason that must never travel.
    let (victim, caseworker) = create_victim(&app, dakar).await;
    let referral = json!({ "victim_id": victim, "to_organization_id": lima, "service": "shelter",
        "urgency": "emergency", "reason": "MARKERNOTES safe house" });
    let resp = caseworker.post(paths::REFERRALS, referral).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let referral_id = resp.json()["id"].as_str().unwrap().to_owned();

    // Answered 500 first, then retried: the same delivery, signed, about this referral only.
    let got = receiver.wait_for(|got| got.len() >= 2).await;
    assert_eq!(got[0].delivery, got[1].delivery, "a retry is the same delivery");
    for r in &got {
        assert_eq!(r.event, "referral.created");
        assert!(verifies(&secret, r), "the signature verifies: {r:?}");
        assert!(!verifies("whsec_wrong", r), "and only under the webhook's secret");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["event"], "referral.created");
        assert_eq!(body["data"]["referral_id"], json!(referral_id));
        assert_eq!(body["data"]["urgency"], "emergency");
        for marker in MARKERS {
            assert!(!r.body.contains(marker), "no identity or reason in a payload: {}", r.body);
        }
        assert!(!r.body.contains("rolled"), "nothing of the rolled-back change");
    }
    let admin = app.caller(lima, Role::Admin).await;
    let log = admin.get(&format!("{}/{hook}/deliveries", paths::WEBHOOKS)).await.json();
    let first = &log["items"][0];
    assert_eq!((first["status"].as_str(), first["attempts"].as_i64()), (Some("delivered"), Some(2)), "{log}");
    assert_eq!(first["response_status"], 200);
    let delivered = admin.get(&format!("{}/{hook}/deliveries?status=delivered", paths::WEBHOOKS)).await.json();
    assert_eq!(delivered["items"].as_array().unwrap().len(), 1);
    admin.get(&format!("{}/{hook}/deliveries?status=", paths::WEBHOOKS)).await.assert_problem(422, "validation");

    // Lima accepts: an event its webhook is not subscribed to, so nothing is sent for it.
    let lima_caseworker = app.caller(lima, Role::Caseworker).await;
    let accepted = lima_caseworker.post(&paths::referral_step(&referral_id, "accept"), json!({})).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    // The consent to sharing withdrawn: Dakar, the owner, is told; Lima, which held the identity
    // through the referral, is not (its admins may not read the case, D174): its caseworkers'
    // clients are told to forget the identity by `GET /changes`.
    let owner_receiver = Receiver::start(0);
    let (_, owner_secret) = subscribe(&app, dakar, &owner_receiver.url, json!(["consent.withdrawn"])).await;
    let version = format!("\"{}\"", caseworker.get(&paths::victim(victim)).await.json()["version"]);
    let withdraw = json!({ "consent": { "services": true, "share_with_referral_partners": false, "anonymised_statistics": true } });
    assert_eq!(caseworker.patch(&paths::victim(victim), &version, withdraw).await.status, StatusCode::OK);
    let got = owner_receiver.wait_for(|got| got.iter().any(|r| r.event == "consent.withdrawn")).await;
    let told = got.iter().find(|r| r.event == "consent.withdrawn").unwrap();
    let body: Value = serde_json::from_str(&told.body).unwrap();
    assert_eq!(body["data"], json!({ "victim_id": victim, "withdrawn": ["share_with_referral_partners"] }));
    assert!(verifies(&owner_secret, told));
    // The event is written in the patch's transaction, so the receiver's log is already final.
    let log = admin.get(&format!("{}/{hook}/deliveries", paths::WEBHOOKS)).await.json();
    let events: Vec<&str> = log["items"].as_array().unwrap().iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["referral.created"], "the receiver hears nothing of the withdrawal: {log}");
    // Events nobody subscribed to are not sent.
    let got = receiver.received();
    assert!(got.iter().all(|r| r.event != "referral.accepted" && r.event != "consent.withdrawn"), "{got:?}");
}

/// A webhook worker of the test's own, to raise timed events when the test says.
fn timed_worker(app: &TestApp) -> haven::webhooks::delivery::Worker {
    let keys = std::sync::Arc::new(
        haven::privacy::crypto::IdentityKeyring::parse(
            crate::helpers::IDENTITY_KEY_SPEC,
            crate::helpers::BLIND_INDEX_KEY,
        )
        .unwrap(),
    );
    let poll = (Duration::from_millis(100), Duration::from_millis(200));
    haven::webhooks::delivery::Worker::new(app.pool.clone(), keys, poll.0, poll.1, true).unwrap()
}

#[tokio::test]
async fn time_raises_overdue_referrals_and_due_tasks_once() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let app = spawn_app().await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let receiver = Receiver::start(0);
    subscribe(&app, dakar, &receiver.url, json!(["referral.overdue", "task.due"])).await;
    let (victim, caseworker) = create_victim(&app, dakar).await;
    let referral =
        json!({ "victim_id": victim, "to_organization_id": lima, "service": "medical", "urgency": "emergency" });
    let referral = caseworker.post(paths::REFERRALS, referral).await.json()["id"].as_str().unwrap().to_owned();
    let today = chrono::Utc::now().date_naive().to_string();
    let task = json!({ "kind": "safety_check", "due_on": today, "notes": "MARKERNOTES check the address" });
    let task = caseworker.post(&paths::tasks_of(victim), task).await.json()["id"].as_str().unwrap().to_owned();
    let later = json!({ "kind": "follow_up", "due_on": "2099-01-01" });
    assert_eq!(caseworker.post(&paths::tasks_of(victim), later).await.status, StatusCode::CREATED);

    // An emergency referral unanswered for two hours is overdue.
    let mut conn = app.pool.get().await.unwrap();
    use haven::db::schema::referrals;
    let id: uuid::Uuid = referral.parse().unwrap();
    diesel::update(referrals::table.find(id))
        .set(referrals::created_at.eq(chrono::Utc::now() - chrono::Duration::hours(2)))
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let worker = timed_worker(&app);
    worker.raise_timed_events().await.unwrap();
    // A later round does not lock what an earlier one noticed (the lock would change xmax): it
    // would otherwise lock every referral ever left unanswered, every round.
    let locked_by = async || {
        use diesel::dsl::sql;
        use diesel::sql_types::Text;
        use haven::db::schema::tasks;
        let mut conn = app.pool.get().await.unwrap();
        let referral: String =
            referrals::table.find(id).select(sql::<Text>("xmax::text")).get_result(&mut conn).await.unwrap();
        let task_id: uuid::Uuid = task.parse().unwrap();
        let task: String =
            tasks::table.find(task_id).select(sql::<Text>("xmax::text")).get_result(&mut conn).await.unwrap();
        (referral, task)
    };
    let after_first = locked_by().await;
    worker.raise_timed_events().await.unwrap();
    assert_eq!(locked_by().await, after_first, "the second round locked rows the first had noticed");
    let got = receiver.wait_for(|got| got.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = if receiver.received().len() > got.len() { receiver.received() } else { got };
    let events: Vec<&str> = got.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(events.iter().filter(|e| **e == "referral.overdue").count(), 1, "once: {events:?}");
    assert_eq!(
        events.iter().filter(|e| **e == "task.due").count(),
        1,
        "once, and not the task due in 2099: {events:?}"
    );
    let due = got.iter().find(|r| r.event == "task.due").unwrap();
    let body: Value = serde_json::from_str(&due.body).unwrap();
    assert_eq!(body["data"]["task_id"], json!(task));
    assert!(!due.body.contains("MARKERNOTES"), "a task's notes never travel");
}

/// A backlog (after an import or an outage) is raised a batch per transaction until none is left,
/// so it is never held in memory or locked whole: here batches of one.
#[tokio::test]
async fn time_raises_a_backlog_in_batches_each_notice_once() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use haven::db::schema::{referrals, webhook_notices};
    // The service's own worker first scans a poll after start: an hour here, so only ours raises.
    let app = spawn_app_with(|s| s.webhook_poll_ms = 3_600_000).await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let (victim, caseworker) = create_victim(&app, dakar).await;
    for service in ["medical", "shelter", "legal"] {
        let referral =
            json!({ "victim_id": victim, "to_organization_id": lima, "service": service, "urgency": "emergency" });
        assert_eq!(caseworker.post(paths::REFERRALS, referral).await.status, StatusCode::CREATED);
    }
    let today = chrono::Utc::now().date_naive().to_string();
    for kind in ["safety_check", "follow_up"] {
        let task = json!({ "kind": kind, "due_on": today });
        assert_eq!(caseworker.post(&paths::tasks_of(victim), task).await.status, StatusCode::CREATED);
    }
    let mut conn = app.pool.get().await.unwrap();
    diesel::update(referrals::table)
        .set(referrals::created_at.eq(chrono::Utc::now() - chrono::Duration::hours(2)))
        .execute(&mut conn)
        .await
        .unwrap();
    let worker = timed_worker(&app);
    let one = std::num::NonZeroU16::MIN;
    assert_eq!(worker.raise_timed_events_by(one).await.unwrap(), 5, "three overdue referrals and two due tasks");
    assert_eq!(worker.raise_timed_events_by(one).await.unwrap(), 0, "each once");
    let notices: i64 = webhook_notices::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(notices, 5);
    // Each batch its own transaction: the three referrals' notices were written by three.
    let writers: i64 = webhook_notices::table
        .filter(webhook_notices::kind.eq("referral.overdue"))
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>("count(DISTINCT xmin::text)"))
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(writers, 3, "one transaction per batch of one");
}

#[tokio::test]
async fn only_an_organisations_admins_manage_its_webhooks() {
    let app = spawn_app().await;
    let (org, other) = (app.create_org().await, app.create_org().await);
    let admin = app.caller(org, Role::Admin).await;
    let body = json!({ "url": "https://receiver.example/haven", "events": ["task.due"] });
    for role in [Role::Caseworker, Role::Auditor, Role::Partner] {
        app.caller(org, role).await.post(paths::WEBHOOKS, body.clone()).await.assert_problem(403, "forbidden");
    }
    for (url, why) in [("ftp://receiver.example/x", "scheme"), ("https://user:pw@receiver.example/x", "credentials")] {
        let problem = admin.post(paths::WEBHOOKS, json!({ "url": url, "events": ["task.due"] })).await;
        assert_eq!(problem.assert_problem(422, "validation")["errors"][0]["field"], "url", "{why}");
    }
    let twice = json!({ "url": "https://receiver.example/haven", "events": ["task.due", "task.due"] });
    admin.post(paths::WEBHOOKS, twice).await.assert_problem(422, "validation");
    let created = admin.post(paths::WEBHOOKS, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["webhook"]["id"].as_str().unwrap().to_owned();
    let path = format!("{}/{id}", paths::WEBHOOKS);
    assert!(admin.get(&path).await.json().get("secret").is_none(), "the secret is shown once");
    app.caller(other, Role::Admin).await.get(&path).await.assert_problem(404, "not-found");
    let disabled = admin.patch(&path, "\"1\"", json!({ "disabled": true })).await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    assert_eq!(disabled.json()["disabled"], true);
    let gone = admin.request(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    admin.get(&path).await.assert_problem(404, "not-found");
    let actions = app.audit_actions().await;
    for action in ["webhook.create", "webhook.update", "webhook.delete"] {
        assert!(actions.iter().any(|(a, _)| a == action), "{action} not audited");
    }
}

/// An HTTPS receiver on loopback whose self-signed certificate nobody trusts: it counts the TLS
/// handshakes begun and the requests that got through one.
struct UntrustedReceiver {
    url: String,
    handshakes: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl UntrustedReceiver {
    async fn start() -> UntrustedReceiver {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("a certificate");
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key.into())
            .expect("a server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let url = format!("https://{}/hooks/haven", listener.local_addr().unwrap());
        let (handshakes, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (begun, through) = (handshakes.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                begun.fetch_add(1, Ordering::SeqCst);
                let Ok(mut tls) = acceptor.accept(stream).await else { continue };
                let mut head = [0u8; 1024];
                if matches!(tls.read(&mut head).await, Ok(n) if n > 0) {
                    through.fetch_add(1, Ordering::SeqCst);
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                }
            }
        });
        UntrustedReceiver { url, handshakes, requests }
    }
}

#[tokio::test]
async fn deliveries_refuse_a_receiver_whose_certificate_is_not_trusted() {
    let app = spawn_app().await;
    let (dakar, lima) = (app.create_org().await, app.create_org().await);
    let receiver = UntrustedReceiver::start().await;
    let (hook, _) = subscribe(&app, lima, &receiver.url, json!(["referral.created"])).await;
    let (victim, caseworker) = create_victim(&app, dakar).await;
    let referral =
        json!({ "victim_id": victim, "to_organization_id": lima, "service": "shelter", "urgency": "routine" });
    assert_eq!(caseworker.post(paths::REFERRALS, referral).await.status, StatusCode::CREATED);

    // Haven reaches the receiver, refuses its certificate, and says so in the delivery log.
    let admin = app.caller(lima, Role::Admin).await;
    let log_path = format!("{}/{hook}/deliveries", paths::WEBHOOKS);
    let mut log = Value::Null;
    for _ in 0..150 {
        log = admin.get(&log_path).await.json();
        if log["items"][0]["attempts"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attempt = &log["items"][0];
    assert!(receiver.handshakes.load(Ordering::SeqCst) >= 1, "Haven tried the receiver: {log}");
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 0, "nothing was sent through an untrusted connection");
    assert_ne!(attempt["status"], "delivered", "{log}");
    assert_eq!(attempt["response_status"], Value::Null, "{log}");
    assert_eq!(attempt["last_error"], "the receiver's certificate was not accepted", "{log}");
}
