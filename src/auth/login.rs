//! `POST /auth/login`. Order matters: throttle (no hashing), look the account up and
//! release the connection, hash (bounded, off the executor), then write the outcome. Unknown and
//! locked-out accounts answer exactly like known ones, so responses do not reveal who has an account.

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Bytea, Int4, Nullable, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::credential_answer::{TokenResponse, no_store, tokens};
use super::lockout::{self, Endpoint, Whose};
use super::{second_factor, sessions};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::db::fixed::fixed;
use crate::db::schema::users;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "amina.diallo@example.org")]
    pub email: String,
    #[schema(write_only, example = "ferry-lagos-quiet-orchid")]
    pub password: String,
    /// The current code of your second factor, if you enrolled one (401 `second-factor-required`
    /// without it).
    #[serde(default)]
    #[schema(write_only, example = "492039")]
    pub code: Option<String>,
    /// A recovery code instead of `code`; each works once.
    #[serde(default)]
    #[schema(write_only)]
    pub recovery_code: Option<String>,
}

/// An account, or nothing but the lock of an email that has none.
const LOOKUP: &str = lockout::by_email!(
    "u.id, u.organization_id, u.password_hash, u.role, u.disabled, u.token_version, u.awaiting_approval"
);

#[derive(QueryableByName)]
struct Lookup {
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    id: Option<Uuid>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    organization_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    password_hash: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    role: Option<Role>,
    #[diesel(sql_type = Nullable<Bool>)]
    disabled: Option<bool>,
    #[diesel(sql_type = Nullable<Int4>)]
    token_version: Option<i32>,
    #[diesel(sql_type = Nullable<Bool>)]
    awaiting_approval: Option<bool>,
    #[diesel(embed)]
    lock: lockout::Lock,
}

impl Lookup {
    /// The account, if the email has one, and the lock that holds for the attempt.
    fn split(self) -> (Option<Account>, Option<DateTime<Utc>>) {
        let account = match (self.id, self.organization_id, self.role, self.disabled, self.token_version) {
            (Some(id), Some(organization_id), Some(role), Some(disabled), Some(token_version)) => Some(Account {
                id,
                organization_id,
                password_hash: self.password_hash,
                role,
                disabled,
                token_version,
                awaiting_approval: self.awaiting_approval.unwrap_or(false),
            }),
            _ => None,
        };
        let lock = self.lock.until(account.is_some());
        (account, lock)
    }
}

impl Account {
    fn whose(&self) -> Whose<'static> {
        Whose::Account { id: self.id, role: self.role, organization_id: self.organization_id }
    }
}

struct Account {
    id: Uuid,
    organization_id: Uuid,
    password_hash: Option<String>,
    role: Role,
    disabled: bool,
    token_version: i32,
    awaiting_approval: bool,
}

/// Log in with email and password.
///
/// Attempts are throttled per client address and per account before any password work (429 with
/// Retry-After); a successful login gives its attempt back, so only failures count. Repeated failures lock the
/// account for a while (also 429): wrong passwords and second-factor codes here, and wrong passwords at
/// `/auth/second-factor` and `/me/password`, count towards one lockout. Wrong email and wrong password
/// are answered alike.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, response = crate::openapi::responses::CredentialsRefused),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 429, response = crate::openapi::responses::TooManyRequests),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let ctx = RequestContext::of(&req, &state.settings);
    let LoginRequest { email, password, code, recovery_code } = body.0;
    let password = Zeroizing::new(password);
    let account = email.trim().to_lowercase();
    let address = ctx.client_address.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    state.throttle.admit(&state.pool, address, &account).await?;
    if account.len() > 254 || password.len() > 1024 {
        // No such account can exist; answer without hashing a megabyte.
        return Err(ApiError::InvalidCredentials);
    }

    // One statement for a known and an unknown email alike: the account, or the lock that an
    // email with no account carries (on every process: `login_lockouts`).
    let looked_up: Lookup = {
        let mut conn = state.pool.get().await?;
        fixed(LOOKUP)
            .bind::<Text, _>(account.clone())
            .bind::<Bytea, _>(state.throttle.shared.account_key(&account))
            .get_result(&mut conn)
            .await?
        // The connection goes back to the pool before hashing: a burst of slow logins must not
        // hold every connection.
    };
    let now = Utc::now();
    let (found, lock) = looked_up.split();
    let whose = match &found {
        Some(user) => user.whose(),
        None => Whose::NoAccount(&account),
    };
    lockout::refuse_while_locked(&state.pool, &ctx, whose, Endpoint::Login, lock).await?;

    let stored = found.as_ref().and_then(|f| f.password_hash.clone());
    // Kept only when the stored hash is outdated, to make it again if the password is right.
    let again = stored.as_deref().is_some_and(|h| state.hasher.is_outdated(h)).then(|| password.clone());
    let matched = state.hasher.verify(password, stored.clone()).await?;
    let settings = &state.settings;
    let mut conn = state.pool.get().await?;
    let Some(user) = found else {
        let locked_now = lockout::count_failure(&state, &mut conn, whose).await?;
        let event = lockout::refused(whose, Endpoint::Login, AuditOutcome::Failure, "unknown_account", locked_now);
        audit::record(&mut conn, &ctx, event).await?;
        return Err(ApiError::InvalidCredentials);
    };
    if !matched || user.disabled {
        // Counted even when the password matched: a disabled account whose right password went
        // uncounted would lock one attempt later than after a wrong one, telling a guesser which
        // guess was right (D12).
        let locked_now = lockout::count_failure(&state, &mut conn, whose).await?;
        let reason = if matched { "disabled" } else { "bad_password" };
        let event = lockout::refused(whose, Endpoint::Login, AuditOutcome::Failure, reason, locked_now);
        audit::record(&mut conn, &ctx, event).await?;
        return Err(ApiError::InvalidCredentials);
    }
    if user.awaiting_approval {
        if lockout::overtaken(&mut conn, &ctx, whose, Endpoint::Login, user.id).await? {
            return Err(ApiError::InvalidCredentials);
        }
        // The right password: the person may learn that their access waits for a second person.
        let event = lockout::refused(whose, Endpoint::Login, AuditOutcome::Denied, "awaiting_approval", false);
        audit::record(&mut conn, &ctx, event).await?;
        return Err(ApiError::AwaitingApproval);
    }
    let expires = now + chrono::Duration::hours(settings.session_ttl_hours as i64);
    let (id, org, role, version) = (user.id, user.organization_id, user.role, user.token_version);
    let (factor_state, account_email, session_ctx) = (state.clone(), account.clone(), ctx.clone());
    let checked = stored.clone();
    let started = (*conn)
        .transaction::<_, ApiError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
            // The account may have changed while the password was being checked (an admin reset
            // or disable, the person's own password change): re-read it under a row lock, so no
            // session outlives such a change.
            type Now = (i32, bool, Option<DateTime<Utc>>, bool, Role, Uuid, Option<String>);
            let (current_version, disabled, locked_until, awaiting, role_now, org_now, hash_now): Now = users::table
                .find(id)
                .select((
                    users::token_version,
                    users::disabled,
                    users::locked_until,
                    users::awaiting_approval,
                    users::role,
                    users::organization_id,
                    users::password_hash,
                ))
                // Not `FOR UPDATE`: a key-share lock (a foreign-key check naming the account, such
                // as a read's audit row in its snapshot) need not wait for it, nor fail (D157).
                .for_no_key_update()
                .first(conn)
                .await?;
            let changed = if locked_until.is_some_and(|t| t > Utc::now()) {
                Some("locked")
            } else if disabled {
                Some("disabled")
            } else if awaiting {
                Some("awaiting_approval")
            } else {
                // A password change ends the other sessions but not the tokens' version: the hash
                // checked is compared too (D153).
                (current_version != version || hash_now != checked).then_some("account_changed")
            };
            if let Some(reason) = changed {
                // Refused like a wrong password, and recorded (under the account's role and
                // organisation as they are now): committed without a session.
                let whose = Whose::Account { id, role: role_now, organization_id: org_now };
                let outcome = if reason == "awaiting_approval" { AuditOutcome::Denied } else { AuditOutcome::Failure };
                let event = lockout::refused(whose, Endpoint::Login, outcome, reason, reason == "locked");
                audit::record(conn, &session_ctx, event).await?;
                return Ok(None);
            }
            // Only after the password: the answer may tell that a second factor is needed.
            let presented = second_factor::Presented { code: code.as_deref(), recovery_code: recovery_code.as_deref() };
            match second_factor::check_login(&factor_state, conn, id, &account_email, role, &presented).await {
                // A wrong or replayed code counts towards the lockout. Counted under the row lock, so
                // parallel codes are checked one after another and none once the lock holds.
                Err(ApiError::InvalidCredentials) => {
                    let whose = Whose::Account { id, role, organization_id: org };
                    let locked_now = lockout::count_failure(&factor_state, conn, whose).await?;
                    let event = lockout::refused(
                        whose,
                        Endpoint::Login,
                        AuditOutcome::Failure,
                        "bad_second_factor",
                        locked_now,
                    );
                    audit::record(conn, &session_ctx, event).await?;
                    return Ok(None);
                }
                checked => checked?,
            }
            diesel::update(users::table.find(id))
                .set((
                    users::failed_logins.eq(0),
                    users::locked_until.eq(None::<DateTime<Utc>>),
                    users::last_login_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            let started = sessions::start(conn, id, org, expires).await?;
            let event = Event::new(AuditAction::LoginSucceeded, AuditOutcome::Success)
                .actor(id, role)
                .in_org(org)
                .target("session", started.0);
            audit::record(conn, &session_ctx, event).await?;
            Ok(Some(started))
        })
        .await?;
    let Some((session_id, refresh_token)) = started else { return Err(ApiError::InvalidCredentials) };
    // Released first: what follows takes connections of its own (D131).
    drop(conn);
    if let (Some(password), Some(old)) = (again, stored) {
        upgrade_hash(&state, id, &old, &password).await;
    }
    state.throttle.succeeded(&state.pool, address, Some(&account)).await;
    Ok(HttpResponse::Ok().insert_header(no_store()).json(tokens(
        &state,
        id,
        org,
        role,
        session_id,
        version,
        refresh_token,
    )?))
}

/// Stores the hash of a password just found right, made with the current parameters, in place of
/// one made with older parameters (D125), unless the password changed meanwhile. A failure leaves
/// the old hash, which still verifies: the login goes on.
async fn upgrade_hash(state: &AppState, user: Uuid, old: &str, password: &str) {
    // Hashed before a connection is taken: the hash waits for a permit and takes milliseconds.
    let upgraded = async {
        let new = state.hasher.hash(password).await?;
        let mut conn = state.pool.get().await?;
        diesel::update(users::table.find(user).filter(users::password_hash.eq(old)))
            .set(users::password_hash.eq(new))
            .execute(&mut conn)
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(error) = upgraded {
        tracing::warn!(%user, %error, "could not store the password's hash with the current parameters");
    }
}
