//! A person's own password: set with an enrolment or reset token (`POST /auth/enrol`), or changed
//! with the current one (`POST /me/password`). Only the person ever chooses it.

use actix_web::{HttpRequest, HttpResponse, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::enrolments;
use super::lockout::{self, Endpoint, Whose};
use super::{Principal, sessions};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::db::schema::{sessions as sessions_table, users};
use crate::domain::NewPassword;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The enrolment or reset token an admin passed on.
    pub token: String,
    /// Your new password: 12 to 128 characters, hard to guess (see the password policy).
    #[schema(write_only, min_length = 12, max_length = 128, example = "ferry-lagos-quiet-orchid")]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Enrolled {
    pub user_id: Uuid,
    /// Whether the account waits for a second person's approval before it can log in (a new or
    /// reset caseworker). Tell the approver you have set your password.
    pub awaiting_approval: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(write_only)]
    pub current_password: String,
    #[schema(write_only, min_length = 12, max_length = 128)]
    pub new_password: String,
}

fn address(ctx: &RequestContext) -> std::net::IpAddr {
    ctx.client_address.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
}

/// Set your password with an enrolment or reset token.
///
/// The token works once and expires; a wrong, used or expired token is answered 401 and counts as
/// a failed attempt for the client address (throttled like logins). A new or reset caseworker can log in once a second
/// person has also approved.
#[utoipa::path(
    tag = "auth",
    request_body = EnrolRequest,
    responses(
        (status = 200, description = "Password set", body = Enrolled),
        (status = 401, response = crate::openapi::responses::CredentialsRefused),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 429, response = crate::openapi::responses::TooManyRequests),
    )
)]
#[post("/auth/enrol")]
pub async fn enrol(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<EnrolRequest>,
) -> ApiResult<HttpResponse> {
    let ctx = RequestContext::of(&req, &state.settings);
    let EnrolRequest { token, password } = body.0;
    let password = Zeroizing::new(password);
    let address = address(&ctx);
    state.throttle.admit_address(&state.pool, address).await?;
    let found = {
        let mut conn = state.pool.get().await?;
        let live = match token.len() <= 128 {
            true => enrolments::find_live(&mut conn, &token).await?,
            false => None,
        };
        match live {
            Some(live) => crate::users::find(&mut conn, live.user_id).await?,
            None => None,
        }
    };
    let Some(user) = found else {
        return Err(ApiError::InvalidCredentials);
    };
    let parsed =
        NewPassword::parse(password.to_string(), &user.email).map_err(|m| ApiError::validation("password", m))?;
    let hash = state.hasher.hash(parsed.expose()).await?;
    let mut conn = state.pool.get().await?;
    let enrolled = (*conn)
        .transaction::<_, ApiError, _>(async move |conn: &mut AsyncPgConnection| {
            // The account first, then the token, in the order a reset locks them (no deadlock).
            // Checked again under the locks: of two redemptions of one token, one wins.
            users::table.find(user.id).select(users::id).for_no_key_update().first::<Uuid>(conn).await?;
            let live = enrolments::find_live(conn, &token).await?.ok_or(ApiError::InvalidCredentials)?;
            if live.user_id != user.id {
                return Err(ApiError::InvalidCredentials);
            }
            enrolments::mark_redeemed(conn, &token).await?;
            let awaiting: bool = diesel::update(users::table.find(live.user_id))
                .set((
                    users::password_hash.eq(&hash),
                    users::failed_logins.eq(0),
                    users::locked_until.eq(None::<chrono::DateTime<chrono::Utc>>),
                    users::version.eq(users::version + 1),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .returning(users::awaiting_approval)
                .get_result(conn)
                .await?;
            let event = Event::new(AuditAction::EnrolmentRedeemed, AuditOutcome::Success)
                .actor(user.id, user.role)
                .in_org(user.organization_id)
                .target("user", user.id)
                .details(serde_json::json!({ "purpose": live.purpose, "issued_by": live.issued_by }));
            audit::record(conn, &ctx, event).await?;
            Ok(Enrolled { user_id: user.id, awaiting_approval: awaiting })
        })
        .await?;
    drop(conn); // the throttle takes a connection of its own (D131)
    state.throttle.succeeded(&state.pool, address, None).await;
    Ok(HttpResponse::Ok().insert_header(super::credential_answer::no_store()).json(enrolled))
}

/// Change your own password.
///
/// Requires the current password: a wrong one is answered 422 and counts against the login
/// throttle and the lockout, and while the account is locked the change is refused (429 with
/// Retry-After) without checking it. Your other sessions end; this one goes on.
#[utoipa::path(
    tag = "auth",
    request_body = PasswordChange,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 429, response = crate::openapi::responses::TooManyRequests),
    )
)]
#[post("/me/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    body: ApiJson<PasswordChange>,
) -> ApiResult<HttpResponse> {
    let PasswordChange { current_password, new_password } = body.0;
    let current_password = Zeroizing::new(current_password);
    let (email, hash, locked_until): (String, Option<String>, Option<chrono::DateTime<chrono::Utc>>) = users::table
        .find(principal.user_id)
        .select((users::email, users::password_hash, users::locked_until))
        .first(&mut *state.pool.get().await?)
        .await?;
    let account = email.to_lowercase();
    let address = address(&ctx);
    state.throttle.admit(&state.pool, address, &account).await?;
    let whose =
        Whose::Account { id: principal.user_id, role: principal.role, organization_id: principal.organization_id };
    lockout::refuse_while_locked(&state.pool, &ctx, whose, Endpoint::PasswordChange, locked_until).await?;
    let matched = current_password.len() <= 1024 && state.hasher.verify(current_password, hash).await?;
    let mut conn = state.pool.get().await?;
    if matched && lockout::overtaken(&mut conn, &ctx, whose, Endpoint::PasswordChange, principal.user_id).await? {
        return Err(ApiError::validation("current_password", "is not your current password"));
    }
    if !matched {
        let locked_now = lockout::count_failure(&state, &mut conn, whose).await?;
        let event =
            lockout::refused(whose, Endpoint::PasswordChange, AuditOutcome::Failure, "bad_password", locked_now);
        audit::record(&mut conn, &ctx, event).await?;
        // Not 401: the caller is authenticated, and a client must not take this for an expired token.
        return Err(ApiError::validation("current_password", "is not your current password"));
    }
    drop(conn);
    state.throttle.succeeded(&state.pool, address, Some(&account)).await;
    let parsed = NewPassword::parse(new_password, &email).map_err(|m| ApiError::validation("new_password", m))?;
    let hash = state.hasher.hash(parsed.expose()).await?;
    let mut conn = state.pool.get().await?;
    let change = async move {
        (*conn)
            .transaction::<_, ApiError, _>(async move |conn: &mut AsyncPgConnection| {
                // A reset or a disable may have committed while the passwords were hashed: it
                // ended this session, and its account lock is taken before the session is judged
                // again, so the change never lands on top of it (D152).
                users::table.find(principal.user_id).select(users::id).for_no_key_update().first::<Uuid>(conn).await?;
                let open: bool = sessions_table::table
                    .find(principal.session_id)
                    .select(sessions_table::revoked_at.is_null())
                    .first(conn)
                    .await
                    .optional()?
                    .unwrap_or(false);
                if !open {
                    return Err(ApiError::Unauthorized);
                }
                diesel::update(users::table.find(principal.user_id))
                    .set((
                        users::password_hash.eq(&hash),
                        users::version.eq(users::version + 1),
                        users::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)
                    .await?;
                diesel::update(
                    sessions_table::table
                        .filter(sessions_table::user_id.eq(principal.user_id))
                        .filter(sessions_table::id.ne(principal.session_id))
                        .filter(sessions_table::revoked_at.is_null()),
                )
                .set((
                    sessions_table::revoked_at.eq(diesel::dsl::now),
                    sessions_table::revoked_reason.eq(sessions::REVOKED_PASSWORD_CHANGED),
                ))
                .execute(conn)
                .await?;
                let event = Event::new(AuditAction::PasswordChanged, AuditOutcome::Success)
                    .by(&principal)
                    .target("user", principal.user_id);
                audit::record(conn, &ctx, event).await?;
                Ok(())
            })
            .await
    };
    super::session_cache::revoking(state.sessions.clone(), change).await?;
    Ok(HttpResponse::NoContent().finish())
}
