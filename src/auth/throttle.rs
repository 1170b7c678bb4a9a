//! Login throttling before any hashing: per client address and per account (keyed by the
//! submitted email, whether or not it exists, so throttling does not reveal accounts).
//! In-memory per instance; the lockout after repeated failures is in the database and so holds
//! across instances.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

pub struct LoginThrottle {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
}

/// After the burst, an account may try once per this period.
const ACCOUNT_REPLENISH: Duration = Duration::from_secs(180);

impl LoginThrottle {
    pub fn new(per_address_per_minute: u32, per_account_burst: u32) -> LoginThrottle {
        let per_minute = NonZeroU32::new(per_address_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(per_account_burst).unwrap_or(NonZeroU32::MIN);
        LoginThrottle {
            per_address: RateLimiter::keyed(Quota::per_minute(per_minute)),
            per_account: RateLimiter::keyed(
                Quota::with_period(ACCOUNT_REPLENISH).expect("non-zero period").allow_burst(burst),
            ),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    pub fn check(&self, address: IpAddr, account: &str) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.per_address.retain_recent();
            self.per_account.retain_recent();
        }
        self.per_address
            .check_key(&address)
            .and_then(|_| self.per_account.check_key(&account.to_owned()))
            .map_err(|not_until| {
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
        let t = LoginThrottle::new(100, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(t.check(a, "x@example.org").is_ok());
        }
        assert!(matches!(t.check(a, "x@example.org"), Err(ApiError::TooManyRequests { .. })));
        assert!(t.check(a, "y@example.org").is_ok(), "another account is not affected");

        let t = LoginThrottle::new(2, 100);
        assert!(t.check(a, "a@example.org").is_ok());
        assert!(t.check(a, "b@example.org").is_ok());
        assert!(t.check(a, "c@example.org").is_err(), "address limit spans accounts");
        assert!(t.check("10.0.0.2".parse().unwrap(), "c@example.org").is_ok());
    }
}
