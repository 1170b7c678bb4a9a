//! The login limits every Haven process on one database shares (migration 17): the same rates as
//! the in-memory first line in `throttle`, kept in PostgreSQL, so N processes behind a proxy do not
//! give an attacker N times the attempts. The in-memory limiter still refuses a flood without a
//! database round trip; only attempts it lets through reach these rows, at most its own rate per
//! process, so the rows stay cool.
//!
//! Each key is one row holding its theoretical arrival time (the generic cell rate algorithm): an
//! attempt is let through when `tat <= now + tolerance`, and moves `tat` one period on from
//! `max(tat, now)`. A success moves it one period back, never below now: unlike the in-memory
//! limiter, the shared one saves no credits beyond a full burst, so idle time never buys extra
//! attempts. Keys are keyed digests of the submitted email or the client address, never either in
//! clear.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::sql_types::{Bool, Bytea, Double, Int4, Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::fixed::fixed;
use crate::error::ApiError;

/// One rate: a cell every `period` seconds, `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub period: f64,
    pub burst: u32,
}

impl Rate {
    fn tolerance(&self) -> f64 {
        self.period * f64::from(self.burst.saturating_sub(1))
    }
}

pub struct SharedLimits {
    key: [u8; 32],
    per_address: Rate,
    per_account: Rate,
    checks: AtomicU64,
}

#[derive(diesel::QueryableByName)]
struct Taken {
    #[diesel(sql_type = Bool)]
    taken: bool,
    #[diesel(sql_type = Double)]
    wait: f64,
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    locked_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Takes a cell, or says how long to wait for one. One statement: the row is locked while it is
/// judged, so concurrent attempts on any process are counted one after another.
const TAKE: &str = "WITH taken AS (
        INSERT INTO login_limits AS l (gate, tat) VALUES ($1, now() + make_interval(secs => $2))
        ON CONFLICT (gate) DO UPDATE
            SET tat = greatest(l.tat, now()) + make_interval(secs => $2)
            WHERE l.tat <= now() + make_interval(secs => $3)
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM taken) AS taken,
        coalesce((SELECT extract(epoch FROM tat - now())::float8 - $3 FROM login_limits WHERE gate = $1), 0) AS wait";

const GIVE_BACK: &str = "UPDATE login_limits
    SET tat = greatest(tat - make_interval(secs => $2), now()) WHERE gate = $1";

/// Rows that have been full for an hour carry nothing an absent row would not.
const PRUNE: &str = "DELETE FROM login_limits WHERE tat < now() - interval '1 hour'";

/// Counts a failure of an email that has no account, exactly as `login` counts one for a real
/// account; returns the lock's end when this failure locked it.
const UNKNOWN_FAILURE: &str = "INSERT INTO login_lockouts AS k (account_key, failed_logins, locked_until)
        VALUES ($1, CASE WHEN 1 >= $2 THEN 0 ELSE 1 END,
                CASE WHEN 1 >= $2 THEN now() + make_interval(mins => $3) END)
    ON CONFLICT (account_key) DO UPDATE SET
        failed_logins = CASE WHEN k.failed_logins + 1 >= $2 THEN 0 ELSE k.failed_logins + 1 END,
        locked_until = CASE WHEN k.failed_logins + 1 >= $2 THEN now() + make_interval(mins => $3)
                            ELSE k.locked_until END,
        updated_at = now()
    RETURNING k.locked_until";

/// Unknown emails' counts are forgotten after a month without failures (the table would otherwise
/// hold every email ever tried). A real account's count is not, which an attacker patient enough to
/// wait a month between guesses could tell apart; DECISIONS D121 weighs that.
const PRUNE_LOCKOUTS: &str = "DELETE FROM login_lockouts
    WHERE updated_at < now() - interval '30 days' AND (locked_until IS NULL OR locked_until < now())";

impl SharedLimits {
    pub fn new(key: [u8; 32], per_address: Rate, per_account: Rate) -> SharedLimits {
        SharedLimits { key, per_address, per_account, checks: AtomicU64::new(0) }
    }

    /// The keyed digest an account is known by in `login_limits` and `login_lockouts`.
    pub fn account_key(&self, account: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(account.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn gate_of_account(&self, account: &str) -> Vec<u8> {
        let mut gate = vec![b'e'];
        gate.extend(self.account_key(account));
        gate
    }

    fn gate_of_address(&self, address: IpAddr) -> Vec<u8> {
        let octets = match address {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"address");
        mac.update(&[0]);
        mac.update(&octets);
        let mut gate = vec![b'a'];
        gate.extend(mac.finalize().into_bytes());
        gate
    }

    /// Takes a cell of the address's limit and, when one is named, of the account's: 429 when
    /// either is spent. `address` is already reduced to what is throttled (an IPv6 /64).
    pub async fn take(
        &self,
        conn: &mut AsyncPgConnection,
        address: IpAddr,
        account: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            fixed(PRUNE).execute(conn).await?;
            fixed(PRUNE_LOCKOUTS).execute(conn).await?;
        }
        for (gate, rate) in self.gates(address, account) {
            take(conn, gate, rate).await?;
        }
        Ok(())
    }

    /// The attempt succeeded: its cells come back, as in the in-memory limiter.
    pub async fn give_back(
        &self,
        conn: &mut AsyncPgConnection,
        address: IpAddr,
        account: Option<&str>,
    ) -> Result<(), ApiError> {
        for (gate, rate) in self.gates(address, account) {
            give_back(conn, gate, rate).await?;
        }
        Ok(())
    }

    /// The keys an attempt counts against, with their rates: the address's, then the account's.
    fn gates(&self, address: IpAddr, account: Option<&str>) -> Vec<(Vec<u8>, Rate)> {
        let mut gates = vec![(self.gate_of_address(address), self.per_address)];
        gates.extend(account.map(|a| (self.gate_of_account(a), self.per_account)));
        gates
    }

    /// Counts a failed login for an email with no account; returns whether it is now locked.
    pub async fn record_unknown_failure(
        &self,
        conn: &mut AsyncPgConnection,
        account: &str,
        threshold: u32,
        lock_minutes: u64,
    ) -> Result<bool, ApiError> {
        let row: Locked = fixed(UNKNOWN_FAILURE)
            .bind::<Bytea, _>(self.account_key(account))
            .bind::<Int4, _>(threshold.min(i32::MAX as u32) as i32)
            .bind::<Int4, _>(lock_minutes.min(i32::MAX as u64) as i32)
            .get_result(conn)
            .await?;
        Ok(row.locked_until.is_some_and(|t| t > chrono::Utc::now()))
    }
}

async fn take(conn: &mut AsyncPgConnection, gate: Vec<u8>, rate: Rate) -> Result<(), ApiError> {
    let outcome: Taken = fixed(TAKE)
        .bind::<Bytea, _>(gate)
        .bind::<Double, _>(rate.period)
        .bind::<Double, _>(rate.tolerance())
        .get_result(conn)
        .await?;
    if outcome.taken {
        return Ok(());
    }
    Err(ApiError::TooManyRequests { retry_after_secs: outcome.wait.max(0.0).ceil() as u64 + 1 })
}

async fn give_back(conn: &mut AsyncPgConnection, gate: Vec<u8>, rate: Rate) -> Result<(), ApiError> {
    fixed(GIVE_BACK).bind::<Bytea, _>(gate).bind::<Double, _>(rate.period).execute(conn).await?;
    Ok(())
}
