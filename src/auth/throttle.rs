//! Login throttling before any hashing: per client address and per account (keyed by the
//! submitted email, whether or not it exists, so throttling does not reveal accounts). Every
//! attempt takes a cell of each rate limit *before* the password is hashed, so a flood is refused
//! early even while its first attempts are still being checked; an attempt that succeeds gives its
//! cells back (as a credit the key's next attempt uses), so only failures count in the end: an
//! office behind one address, or a developer re-running a walk-through, is never throttled for
//! logging in right. The in-memory limiter is the first line (a flood is refused without a database
//! round trip); what it lets through is counted again in the limits every process shares
//! (`shared_limits`), so several processes on one database hold the same rates as one. The lockout
//! after repeated failures is in the database too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::shared_limits::{Rate, SharedLimits};
use crate::db::Pool;
use crate::error::{ApiError, ApiResult};

/// Accounts are keyed by a hash of the submitted email: bounded memory whatever is submitted.
type AccountKey = [u8; 32];

pub struct LoginThrottle {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<AccountKey>,
    clock: DefaultClock,
    checks: AtomicU64,
    /// Cells given back by successful attempts, per key, each worth one future attempt.
    credits: Mutex<HashMap<Gate, u32>>,
    /// The same rates, across every process on the database.
    pub shared: SharedLimits,
}

/// Bounds the credits kept, whatever is submitted.
const CREDITS_CAPACITY: usize = 100_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Gate {
    Address(IpAddr),
    Account(AccountKey),
}

/// At most this many credits per key: enough for a whole office logging in at once.
const MAX_CREDITS: u32 = 64;

fn account_key(account: &str) -> AccountKey {
    Sha256::digest(account.as_bytes()).into()
}

/// IPv6 clients usually hold a whole /64: throttle the prefix, not each address in it.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 => v4,
    }
}

/// After the burst, an account may try once per this period.
const ACCOUNT_REPLENISH: Duration = Duration::from_secs(180);

impl LoginThrottle {
    /// `key` keys the digests accounts are known by in the database.
    pub fn new(per_address_per_minute: u32, per_account_burst: u32, key: [u8; 32]) -> LoginThrottle {
        let per_minute = NonZeroU32::new(per_address_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(per_account_burst).unwrap_or(NonZeroU32::MIN);
        let per_address = Rate { period: 60.0 / f64::from(per_minute.get()), burst: per_minute.get() };
        let per_account = Rate { period: ACCOUNT_REPLENISH.as_secs_f64(), burst: burst.get() };
        LoginThrottle {
            per_address: RateLimiter::keyed(Quota::per_minute(per_minute)),
            per_account: RateLimiter::keyed(
                Quota::with_period(ACCOUNT_REPLENISH).expect("non-zero period").allow_burst(burst),
            ),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
            credits: Mutex::new(HashMap::new()),
            shared: SharedLimits::new(key, per_address, per_account),
        }
    }

    /// Takes a cell of the address's and the account's limits, here and then across processes;
    /// 429 when either is spent. Call before any password work.
    pub async fn admit(&self, pool: &Pool, address: IpAddr, account: &str) -> ApiResult<()> {
        self.check(address, account)?;
        self.shared.take(&mut *pool.get().await?, address_key(address), Some(account)).await
    }

    /// As [`admit`](Self::admit), for attempts that name no account (redeeming an enrolment token).
    pub async fn admit_address(&self, pool: &Pool, address: IpAddr) -> ApiResult<()> {
        self.check_address(address)?;
        self.shared.take(&mut *pool.get().await?, address_key(address), None).await
    }

    /// The attempt succeeded: its cells come back, here and across processes. Failing to give
    /// them back only leaves the limits stricter, so it is logged, not answered.
    pub async fn succeeded(&self, pool: &Pool, address: IpAddr, account: Option<&str>) {
        self.record_success(address, account);
        let shared = async { self.shared.give_back(&mut *pool.get().await?, address_key(address), account).await };
        if let Err(e) = shared.await {
            tracing::warn!(error = %e, "could not give login attempts back");
        }
    }

    /// Takes a cell (or a credit) of the address's and the account's limits in this process; 429
    /// when either is spent.
    fn check(&self, address: IpAddr, account: &str) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.per_address.retain_recent();
            self.per_account.retain_recent();
        }
        let address = address_key(address);
        let account = account_key(account);
        self.take(Gate::Address(address), || self.per_address.check_key(&address))?;
        self.take(Gate::Account(account), || self.per_account.check_key(&account))
    }

    fn check_address(&self, address: IpAddr) -> Result<(), ApiError> {
        let address = address_key(address);
        self.take(Gate::Address(address), || self.per_address.check_key(&address))
    }

    fn record_success(&self, address: IpAddr, account: Option<&str>) {
        let mut credits = self.credits.lock().unwrap_or_else(|e| e.into_inner());
        if credits.len() >= CREDITS_CAPACITY {
            credits.clear();
        }
        let gates = [Some(Gate::Address(address_key(address))), account.map(|a| Gate::Account(account_key(a)))];
        for gate in gates.into_iter().flatten() {
            let credit = credits.entry(gate).or_insert(0);
            *credit = (*credit + 1).min(MAX_CREDITS);
        }
    }

    fn take(
        &self,
        gate: Gate,
        cell: impl FnOnce() -> Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
    ) -> Result<(), ApiError> {
        {
            let mut credits = self.credits.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(credit) = credits.get_mut(&gate).filter(|c| **c > 0) {
                *credit -= 1;
                return Ok(());
            }
        }
        cell().map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::TooManyRequests { retry_after_secs: wait.as_secs() + 1 }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_account_and_per_address() {
        let t = LoginThrottle::new(100, 3, [0; 32]);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(t.check(a, "x@example.org").is_ok());
        }
        assert!(matches!(t.check(a, "x@example.org"), Err(ApiError::TooManyRequests { .. })));
        assert!(t.check(a, "y@example.org").is_ok(), "another account is not affected");

        let t = LoginThrottle::new(2, 100, [0; 32]);
        assert!(t.check(a, "a@example.org").is_ok());
        assert!(t.check(a, "b@example.org").is_ok());
        assert!(t.check(a, "c@example.org").is_err(), "address limit spans accounts");
        assert!(t.check("10.0.0.2".parse().unwrap(), "c@example.org").is_ok());

        let t = LoginThrottle::new(1, 100, [0; 32]);
        assert!(t.check("2001:db8::1".parse().unwrap(), "a@example.org").is_ok());
        assert!(t.check("2001:db8::2".parse().unwrap(), "b@example.org").is_err(), "same /64");
        assert!(t.check("2001:db9::1".parse().unwrap(), "b@example.org").is_ok());
    }

    #[test]
    fn successful_attempts_give_their_cells_back() {
        let t = LoginThrottle::new(2, 2, [0; 32]);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..50 {
            assert!(t.check(a, "x@example.org").is_ok(), "logging in right is never throttled");
            t.record_success(a, Some("x@example.org"));
        }
        assert!(t.check(a, "x@example.org").is_ok());
        assert!(t.check(a, "x@example.org").is_ok());
        assert!(t.check(a, "x@example.org").is_err(), "failures still count");
        assert!(t.check_address("10.0.0.3".parse().unwrap()).is_ok());
    }
}
