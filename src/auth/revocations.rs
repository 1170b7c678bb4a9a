//! Hearing revocations made anywhere on the database: triggers (migrations 17 and 18) announce every
//! change that may end a session or change what it may do on the channel `haven_revocations`, and
//! each process listens on a connection of its own and forgets its remembered session checks
//! (`session_cache`) at each notice, so a logout or a disabled account on one process is refused
//! by every other within a round trip.
//!
//! The safe fallback: the memory is used only while notices are known to arrive. The heartbeat is
//! itself a notice, sent through the connection pool, the way a revocation by anyone else travels,
//! and the memory is switched on only once it has been heard on the listening connection. A
//! connection that answers queries but is not handed its notices (a pooler in transaction mode, a
//! URL whose hosts lead the pool and the listener to different servers) therefore never switches
//! it on. When the connection drops, or a heartbeat is not heard in time, the cache is switched
//! off and every request checks the database until the listener is back; reconnecting forgets
//! everything, as notices may have been missed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use super::session_cache::SessionCache;
use crate::db::Pool;

pub const CHANNEL: &str = "haven_revocations";
/// How the listening connection shows in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "haven-revocations";

/// How often a heartbeat notice is sent: a network failure that drops packets silently, or a path
/// that stops delivering notices, is noticed within this plus the time a heartbeat may take.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How the heartbeat's payload begins. The triggers' notices are empty; any other payload is taken
/// for a revocation, so an older Haven on the same database only forgets more often.
const HEARTBEAT_PREFIX: &str = "heartbeat ";
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens for as long as the process runs, reconnecting with backoff. `pool` sends the heartbeats.
pub async fn listen(url: String, cache: Arc<SessionCache>, pool: Pool) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Err(e) = listen_once(&url, &cache, &pool, &mut backoff).await {
            tracing::warn!(error = %e, "not hearing revocations: every request checks the database until reconnected");
        }
        cache.set_listening(false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("{0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("the connection ended")]
    Ended,
    #[error("the heartbeat notice was not heard in time")]
    Silent,
    #[error("could not send the heartbeat: {0}")]
    Heartbeat(String),
}

async fn listen_once(url: &str, cache: &Arc<SessionCache>, pool: &Pool, backoff: &mut Duration) -> Result<(), Lost> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.application_name(APPLICATION_NAME);
    // Bounded, so a network that swallows packets cannot hold the listener before it can retry.
    let connecting = tokio::time::timeout(HEARTBEAT, config.connect(NoTls)).await;
    let (client, mut connection) = connecting.map_err(|_| Lost::Silent)??;
    // This connection's heartbeats only: another process's, or an earlier connection's, prove
    // nothing about this one.
    let ours = format!("{HEARTBEAT_PREFIX}{} ", Uuid::new_v4().simple());
    let (heard_tx, mut heard) = watch::channel(0u64);
    let (forget, prefix) = (cache.clone(), ours.clone());
    let mut driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notice)) => match Notice::of(notice.payload(), &prefix) {
                    Notice::OurHeartbeat(n) => {
                        heard_tx.send_replace(n);
                    }
                    Notice::OtherHeartbeat => {}
                    Notice::Revocation => forget.forget_all(),
                },
                Ok(_) => {}
                Err(e) => return Lost::Database(e),
            }
        }
        Lost::Ended
    });
    let outcome = async {
        let listen = format!("LISTEN {CHANNEL}");
        tokio::time::timeout(HEARTBEAT, client.batch_execute(&listen)).await.map_err(|_| Lost::Silent)??;
        for n in 1u64.. {
            beat(pool, &format!("{ours}{n}"), &mut heard, n).await?;
            if n == 1 {
                cache.set_listening(true);
                *backoff = Duration::from_millis(100);
                tracing::info!("hearing revocations from every process");
            }
            tokio::time::sleep(HEARTBEAT).await;
        }
        Ok::<(), Lost>(())
    };
    let lost = tokio::select! {
        lost = outcome => lost,
        ended = &mut driver => Err(ended.unwrap_or(Lost::Ended)),
    };
    driver.abort();
    lost
}

/// Sends heartbeat `n` through the pool and waits until the listening connection has heard it:
/// that number exactly, so a stray notice naming a later one (anyone may NOTIFY) proves nothing.
async fn beat(pool: &Pool, payload: &str, heard: &mut watch::Receiver<u64>, n: u64) -> Result<(), Lost> {
    let sent = async {
        {
            // Given back before the wait: a path that delivers nothing must not keep it.
            let mut conn = pool.get().await.map_err(|e| Lost::Heartbeat(e.to_string()))?;
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(CHANNEL)
                .bind::<Text, _>(payload)
                .execute(&mut conn)
                .await
                .map_err(|e| Lost::Heartbeat(e.to_string()))?;
        }
        heard.wait_for(|last| *last == n).await.map_err(|_| Lost::Ended)?;
        Ok(())
    };
    tokio::time::timeout(HEARTBEAT, sent).await.map_err(|_| Lost::Silent)?
}

/// What a notice on the channel says.
#[derive(Debug, PartialEq)]
enum Notice {
    OurHeartbeat(u64),
    OtherHeartbeat,
    Revocation,
}

impl Notice {
    fn of(payload: &str, ours: &str) -> Notice {
        match payload.strip_prefix(ours).map(str::parse) {
            Some(Ok(n)) => Notice::OurHeartbeat(n),
            _ if payload.starts_with(HEARTBEAT_PREFIX) => Notice::OtherHeartbeat,
            _ => Notice::Revocation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_or_unknown_payload_is_a_revocation() {
        let ours = "heartbeat 0123abcd ";
        assert_eq!(Notice::of("", ours), Notice::Revocation);
        assert_eq!(Notice::of("something else", ours), Notice::Revocation);
        assert_eq!(Notice::of("heartbeat 0123abcd 7", ours), Notice::OurHeartbeat(7));
        assert_eq!(Notice::of("heartbeat ffff 7", ours), Notice::OtherHeartbeat);
        assert_eq!(Notice::of("heartbeat 0123abcd x", ours), Notice::OtherHeartbeat);
    }
}
