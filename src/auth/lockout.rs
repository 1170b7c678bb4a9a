//! The lockout, kept in one place for every endpoint that checks a password: the login, the
//! second-factor enrolment (`/auth/second-factor`, `/confirm`) and the password change. Each reads
//! the lock before any hashing and counts a wrong password against the same threshold, so none of
//! them is a way to keep guessing while the others refuse (D139). An email with no account is
//! locked like one that has (`login_lockouts`), so the answers do not tell who has an account.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Int4, Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::db::Pool;
use crate::db::schema::users;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestContext;
use crate::state::AppState;

/// A statement that finds an account by email (`$1`, normalised) together with its lock, or, when
/// no account has the email, the lock of the email itself (`$2`, `SharedLimits::account_key`): one
/// statement for both, so a known and an unknown email cost the same round trips. The columns
/// given select from the account `u`; the lock columns for [`Lock`] follow them.
macro_rules! by_email {
    ($columns:literal) => {
        concat!(
            "SELECT ",
            $columns,
            ", u.locked_until, k.locked_until AS unknown_locked_until
    FROM (SELECT 1) AS one
    LEFT JOIN users u ON lower(u.email) = $1
    LEFT JOIN login_lockouts k ON k.account_key = $2 AND u.id IS NULL"
        )
    };
}
pub(crate) use by_email;

/// The lock columns of a [`by_email`] statement.
#[derive(QueryableByName)]
pub struct Lock {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    locked_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    unknown_locked_until: Option<DateTime<Utc>>,
}

impl Lock {
    /// The lock that holds: the account's when there is one, else the email's.
    pub fn until(&self, account_found: bool) -> Option<DateTime<Utc>> {
        if account_found { self.locked_until } else { self.unknown_locked_until }
    }
}

/// Whose lock a password check reads and counts.
#[derive(Clone, Copy)]
pub enum Whose<'a> {
    Account {
        id: Uuid,
        role: Role,
        organization_id: Uuid,
    },
    /// A normalised email that belongs to no account.
    NoAccount(&'a str),
}

/// Where a password was checked, written into the audit record of a refusal.
#[derive(Clone, Copy)]
pub enum Endpoint {
    Login,
    SecondFactor,
    PasswordChange,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Login => "login",
            Endpoint::SecondFactor => "second_factor",
            Endpoint::PasswordChange => "password_change",
        }
    }
}

/// Counts one wrong password or code; returns whether the lock holds after it. One atomic
/// statement each, so parallel guesses cannot slip under the threshold. Only a login that succeeds
/// in full (password and second factor) clears the count: a right password alone elsewhere does
/// not, or someone who knows it could clear the count their wrong codes built.
pub async fn count_failure(state: &AppState, conn: &mut AsyncPgConnection, whose: Whose<'_>) -> ApiResult<bool> {
    let (threshold, minutes) = (state.settings.lockout_threshold, state.settings.lockout_minutes);
    match whose {
        Whose::NoAccount(email) => state.throttle.shared.record_unknown_failure(conn, email, threshold, minutes).await,
        Whose::Account { id, .. } => {
            let until: Option<DateTime<Utc>> = diesel::update(users::table.find(id))
                .set((
                    users::failed_logins.eq(diesel::dsl::sql::<Int4>(&format!(
                        "CASE WHEN failed_logins + 1 >= {threshold} THEN 0 ELSE failed_logins + 1 END"
                    ))),
                    users::locked_until.eq(diesel::dsl::sql::<Nullable<Timestamptz>>(&format!(
                        "CASE WHEN failed_logins + 1 >= {threshold} THEN now() + interval '{minutes} minutes' ELSE locked_until END"
                    ))),
                ))
                .returning(users::locked_until)
                .get_result(conn)
                .await?;
            Ok(until.is_some_and(|t| t > Utc::now()))
        }
    }
}

/// The first step of every password check: while the lock holds, refuse (429 with Retry-After)
/// and record it, without hashing. A connection is taken only to record a refusal.
pub async fn refuse_while_locked(
    pool: &Pool,
    ctx: &RequestContext,
    whose: Whose<'_>,
    endpoint: Endpoint,
    locked_until: Option<DateTime<Utc>>,
) -> ApiResult<()> {
    let Some(left) = locked_until.filter(|t| *t > Utc::now()).map(|t| t - Utc::now()) else { return Ok(()) };
    audit::record(&mut *pool.get().await?, ctx, refused(whose, endpoint, AuditOutcome::Denied, "locked", false))
        .await?;
    Err(ApiError::TooManyRequests { retry_after_secs: left.num_seconds().max(1) as u64 })
}

/// Whether a right password came too late: a lock set by parallel guesses while it was hashed
/// must refuse it like a wrong one (recorded as `locked`), or the answer would tell the guesser
/// which of their guesses was right. The caller answers as it answers a wrong password.
pub async fn overtaken(
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    whose: Whose<'_>,
    endpoint: Endpoint,
    account: Uuid,
) -> ApiResult<bool> {
    let until: Option<DateTime<Utc>> =
        users::table.find(account).select(users::locked_until).first(conn).await.optional()?.flatten();
    if until.is_none_or(|t| t <= Utc::now()) {
        return Ok(false);
    }
    audit::record(conn, ctx, refused(whose, endpoint, AuditOutcome::Failure, "locked", true)).await?;
    Ok(true)
}

/// The audit record of a refused check: `reason` is `locked`, `bad_password`, `bad_second_factor`,
/// `unknown_account`, `disabled`, `awaiting_approval` or `account_changed` (its sessions were
/// ended, by a reset, a role change or a move, while a login was checking its password);
/// `locked` tells whether the lock holds after this attempt.
pub fn refused(whose: Whose<'_>, endpoint: Endpoint, outcome: AuditOutcome, reason: &str, locked: bool) -> Event {
    let mut details = serde_json::json!({ "reason": reason, "locked": locked });
    if !matches!(endpoint, Endpoint::Login) {
        details["endpoint"] = endpoint.name().into();
    }
    let event = Event::new(AuditAction::LoginFailed, outcome).details(details);
    match whose {
        Whose::Account { id, role, organization_id } => {
            event.actor(id, role).in_org(organization_id).target("user", id)
        }
        Whose::NoAccount(_) => event,
    }
}
