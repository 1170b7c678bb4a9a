//! Hearing revocations made anywhere on the database: triggers (migrations 17 and 18) announce every
//! change that may end a session or change what it may do on the channel `haven_revocations`, and
//! each process listens on a connection of its own and forgets its remembered session checks
//! (`session_cache`) at each notice, so a logout or a disabled account on one process is refused
//! by every other within a round trip.
//!
//! The safe fallback: the memory is used only while this connection is up and listening. When it
//! drops (or a heartbeat goes unanswered), the cache is switched off and every request checks the
//! database until the listener is back; reconnecting forgets everything, as notices may have been
//! missed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use super::session_cache::SessionCache;

pub const CHANNEL: &str = "haven_revocations";
/// How the listening connection shows in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "haven-revocations";

/// How often the listening connection is asked whether it is still there: a network failure that
/// drops packets silently is noticed within this plus the answer's timeout.
const HEARTBEAT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens for as long as the process runs, reconnecting with backoff.
pub async fn listen(url: String, cache: Arc<SessionCache>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Err(e) = listen_once(&url, &cache, &mut backoff).await {
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
    #[error("no answer to the heartbeat")]
    Silent,
}

async fn listen_once(url: &str, cache: &Arc<SessionCache>, backoff: &mut Duration) -> Result<(), Lost> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.application_name(APPLICATION_NAME);
    let (client, mut connection) = config.connect(NoTls).await?;
    let heard = cache.clone();
    let mut driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => heard.forget_all(),
                Ok(_) => {}
                Err(e) => return Lost::Database(e),
            }
        }
        Lost::Ended
    });
    let outcome = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        cache.set_listening(true);
        *backoff = Duration::from_millis(100);
        tracing::info!("hearing revocations from every process");
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            match tokio::time::timeout(HEARTBEAT, client.simple_query("SELECT 1")).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(Lost::Database(e)),
                Err(_) => return Err(Lost::Silent),
            }
        }
    };
    let lost = tokio::select! {
        lost = outcome => lost,
        ended = &mut driver => Err(ended.unwrap_or(Lost::Ended)),
    };
    driver.abort();
    lost
}
