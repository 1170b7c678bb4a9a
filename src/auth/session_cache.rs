//! A short memory of session checks, so an authenticated request does not cost a database round
//! trip each time (the token itself is verified once and remembered: `verified_tokens`).
//!
//! Every revocation made by this process (logout, refresh-token reuse, a user's role, status or
//! password changed) forgets everything after it commits, so here it takes effect at once. One made
//! by another Haven process on the same database, or by hand, is announced by a trigger and heard
//! through `LISTEN` (`auth::revocations`), which forgets everything too. The memory is used only
//! while that listener hears its own heartbeat notices: before the first is heard, and whenever its
//! connection drops or one goes unheard, every request checks the database. The time-to-live
//! (`HAVEN_SESSION_CACHE_MS`, 0 = check the database on every request) bounds what a notice lost
//! in a silent network failure could cost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{OrganizationKind, Role};

/// What the database said of a session and its user.
#[derive(Debug, Clone, Copy)]
pub struct SessionFacts {
    pub user_id: Uuid,
    pub role: Role,
    pub organization_id: Uuid,
    pub disabled: bool,
    pub token_version: i32,
    pub kind: OrganizationKind,
    pub expires_at: DateTime<Utc>,
}

/// Far more sessions than a deployment has at once; past it the memory starts afresh.
const MAX_ENTRIES: usize = 100_000;

pub struct SessionCache {
    ttl: Duration,
    /// Whether revocations by others are being heard; without it nothing is recalled.
    listening: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every `forget_all`, so a check that read the database before a revocation
    /// committed cannot store what it read afterwards.
    generation: u64,
    entries: HashMap<Uuid, (Instant, SessionFacts)>,
}

impl SessionCache {
    pub fn new(ttl: Duration) -> SessionCache {
        SessionCache { ttl, listening: AtomicBool::new(false), inner: Mutex::new(Inner::default()) }
    }

    /// The revocation listener heard its first heartbeat notice (`true`) or lost its connection or
    /// a heartbeat (`false`). Either way everything remembered is forgotten: notices may have been
    /// missed meanwhile.
    pub fn set_listening(&self, listening: bool) {
        let mut inner = self.lock();
        self.listening.store(listening, Ordering::SeqCst);
        inner.generation += 1;
        inner.entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The facts about `session` if checked less than the time-to-live ago, with the generation
    /// to pass to [`SessionCache::remember`] after a database check.
    pub fn recall(&self, session: Uuid) -> (Option<SessionFacts>, u64) {
        let inner = self.lock();
        if !self.listening.load(Ordering::SeqCst) {
            return (None, inner.generation);
        }
        let fresh = inner
            .entries
            .get(&session)
            .filter(|(at, facts)| at.elapsed() < self.ttl && facts.expires_at > Utc::now())
            .map(|(_, facts)| *facts);
        (fresh, inner.generation)
    }

    pub fn remember(&self, session: Uuid, facts: SessionFacts, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation || !self.listening.load(Ordering::SeqCst) {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(session, (Instant::now(), facts));
    }

    /// After a revocation has committed, here or (announced) anywhere.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}

/// Runs a revocation (a transaction that ends sessions or changes what a session may do) to its
/// end even if the request is dropped meanwhile (deadline, client gone), then forgets every
/// remembered check, also when it failed: a COMMIT whose answer was lost may still have landed.
pub async fn revoking<T: 'static>(
    cache: std::sync::Arc<SessionCache>,
    work: impl std::future::Future<Output = crate::error::ApiResult<T>> + 'static,
) -> crate::error::ApiResult<T> {
    revoking_when(cache, work, |_| true).await
}

/// [`revoking`] for work that revokes only sometimes: `revoked` tells from a successful outcome
/// whether it did (a failed one is always taken as a possible revocation).
pub async fn revoking_when<T: 'static>(
    cache: std::sync::Arc<SessionCache>,
    work: impl std::future::Future<Output = crate::error::ApiResult<T>> + 'static,
    revoked: impl FnOnce(&T) -> bool + 'static,
) -> crate::error::ApiResult<T> {
    let task = actix_web::rt::spawn(async move {
        let outcome = work.await;
        if outcome.as_ref().map_or(true, revoked) {
            cache.forget_all();
        }
        outcome
    });
    task.await.map_err(|e| crate::error::ApiError::Internal(format!("revocation task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> SessionFacts {
        SessionFacts {
            user_id: Uuid::nil(),
            role: Role::Caseworker,
            organization_id: Uuid::nil(),
            disabled: false,
            token_version: 1,
            kind: OrganizationKind::Ngo,
            expires_at: Utc::now() + chrono::Duration::hours(1),
        }
    }

    fn listening(ttl: Duration) -> SessionCache {
        let cache = SessionCache::new(ttl);
        cache.set_listening(true);
        cache
    }

    #[test]
    fn remembers_for_the_ttl_and_forgets_on_revocation() {
        let cache = listening(Duration::from_secs(60));
        let sid = Uuid::new_v4();
        let (none, generation) = cache.recall(sid);
        assert!(none.is_none());
        cache.remember(sid, facts(), generation);
        assert!(cache.recall(sid).0.is_some());
        cache.forget_all();
        assert!(cache.recall(sid).0.is_none());
    }

    #[test]
    fn a_check_that_raced_a_revocation_is_not_stored() {
        let cache = listening(Duration::from_secs(60));
        let sid = Uuid::new_v4();
        let (_, generation) = cache.recall(sid);
        cache.forget_all(); // a revocation commits while the check is at the database
        cache.remember(sid, facts(), generation);
        assert!(cache.recall(sid).0.is_none());
    }

    #[actix_web::test]
    async fn only_work_that_revoked_or_failed_forgets() {
        let cache = std::sync::Arc::new(listening(Duration::from_secs(60)));
        let sid = Uuid::new_v4();
        cache.remember(sid, facts(), cache.recall(sid).1);
        let kept = revoking_when(cache.clone(), async { Ok(false) }, |revoked| *revoked).await.unwrap();
        assert!(!kept && cache.recall(sid).0.is_some(), "a plain rotation keeps what is remembered");
        let failed =
            revoking_when(cache.clone(), async { Err::<bool, _>(crate::error::ApiError::Unavailable) }, |r| *r).await;
        assert!(failed.is_err() && cache.recall(sid).0.is_none(), "a failed revocation may have committed");
        cache.remember(sid, facts(), cache.recall(sid).1);
        revoking(cache.clone(), async { Ok(()) }).await.unwrap();
        assert!(cache.recall(sid).0.is_none());
    }

    #[test]
    fn zero_ttl_and_expired_sessions_are_never_recalled() {
        let off = listening(Duration::ZERO);
        let sid = Uuid::new_v4();
        off.remember(sid, facts(), 0);
        assert!(off.recall(sid).0.is_none());
        let cache = listening(Duration::from_secs(60));
        cache.remember(sid, SessionFacts { expires_at: Utc::now() - chrono::Duration::seconds(1), ..facts() }, 0);
        assert!(cache.recall(sid).0.is_none());
    }

    #[test]
    fn nothing_is_recalled_while_revocations_are_not_heard() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let sid = Uuid::new_v4();
        cache.remember(sid, facts(), cache.recall(sid).1);
        assert!(cache.recall(sid).0.is_none(), "not yet listening");
        cache.set_listening(true);
        cache.remember(sid, facts(), cache.recall(sid).1);
        assert!(cache.recall(sid).0.is_some());
        cache.set_listening(false);
        assert!(cache.recall(sid).0.is_none(), "the listener's connection dropped");
        cache.set_listening(true);
        assert!(cache.recall(sid).0.is_none(), "what was remembered before the drop is gone");
    }
}
