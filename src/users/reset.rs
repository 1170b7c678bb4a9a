//! `POST /users/{id}/reset`: an admin voids a person's password and receives a single-use token for
//! them to set a new one. A caseworker's reset is complete only when a second person approves.

use actix_web::{HttpResponse, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::enrolments::{self, EnrolmentToken, Purpose};
use crate::auth::{Principal, sessions};
use crate::db::schema::users;
use crate::domain::Role;
use crate::domain::policy::{self, UserChange};
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestContext;
use crate::grants::{self, GrantKind, GrantView};
use crate::state::AppState;

/// The organisation of the account `principal` resets, if the policy allows it; nobody resets
/// themselves (`own` says what to do instead).
async fn resettable(conn: &mut AsyncPgConnection, principal: &Principal, id: Uuid, own: &str) -> ApiResult<Uuid> {
    let current = super::find(conn, id).await?.ok_or(ApiError::NotFound)?;
    let org = current.organization_id;
    let staff = grants::staff(conn, org).await?;
    policy::change_user(principal, org, Some(current.role), UserChange::Reset, staff).require()?;
    if id == principal.user_id {
        return Err(ApiError::Conflict(own.into()));
    }
    Ok(org)
}

/// A reset: the token for the person and, for a caseworker, the grant a second person approves.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    /// Pass it to the person, in person or by a trusted channel; it is shown only here.
    pub enrolment: EnrolmentToken,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantView>,
}

/// What a voided credential's new token is for.
pub(super) struct Issue {
    pub org: Uuid,
    pub user: Uuid,
    pub ttl: u64,
    /// Whether the account waits for a second person before it logs in again (a caseworker's
    /// reset); `None` leaves it as it is (what it waits for is not this credential's to decide).
    pub awaiting_approval: Option<bool>,
    /// The grant that will confirm the new password, if any.
    pub grant: Option<Uuid>,
}

/// Voids the account's password (and a lockout), ends its sessions and issues the requester a
/// single-use token for the person to set a new one, audited. Inside the caller's transaction,
/// with the account locked.
pub(super) async fn void_credential(
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    issue: Issue,
) -> ApiResult<EnrolmentToken> {
    let Issue { org, user, ttl, awaiting_approval, grant } = issue;
    diesel::update(users::table.find(user))
        .set((
            users::password_hash.eq(None::<String>),
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<chrono::DateTime<chrono::Utc>>),
            users::credential_issued_by.eq(principal.user_id),
            awaiting_approval.map(|waits| users::awaiting_approval.eq(waits)),
            users::version.eq(users::version + 1),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    sessions::revoke_user(conn, user).await?;
    let enrolment = enrolments::issue(conn, user, Purpose::Reset, principal.user_id, ttl).await?;
    let event = Event::new(AuditAction::UserPasswordReset, AuditOutcome::Success)
        .by(principal)
        .in_org(org)
        .target("user", user)
        .details(serde_json::json!({ "expires_at": enrolment.expires_at, "grant": grant }));
    audit::record(conn, ctx, event).await?;
    Ok(enrolment)
}

/// Reset a staff account's password.
///
/// The password stops working at once, the account's sessions end, and a lockout is lifted; the
/// response carries a single-use token with which the person sets a new password of their own
/// (`POST /auth/enrol`). No admin chooses or learns it. A caseworker can log in again only when a
/// second person approves (the grant in the response), after the person has set it. Admins reset
/// accounts of their organisation; a host admin only the sole admin of another organisation.
#[utoipa::path(
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reset issued", body = PasswordReset),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
    )
)]
#[post("/users/{id}/reset")]
pub async fn reset_user(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    let org = resettable(&mut conn, &principal, id, "Change your own password with POST /api/v1/me/password.").await?;
    let ttl = state.settings.enrolment_ttl_hours;
    let reset = async move {
        (*conn)
            .transaction::<_, ApiError, _>(async move |conn: &mut AsyncPgConnection| {
                let role: Role = users::table.find(id).select(users::role).for_no_key_update().first(conn).await?;
                let caseworker = policy::reaches_identities(role);
                // Whatever waited for approval was about the old credential: a new request replaces
                // it, so an approver never confirms a password the person did not set last.
                grants::withdraw_pending(conn, &ctx, &principal, id, false).await?;
                let grant = match caseworker {
                    true => Some(grants::request(conn, &ctx, &principal, org, id, GrantKind::CredentialReset).await?),
                    false => None,
                };
                let issue = Issue {
                    org,
                    user: id,
                    ttl,
                    awaiting_approval: Some(caseworker),
                    grant: grant.as_ref().map(|g| g.id),
                };
                let enrolment = void_credential(conn, &ctx, &principal, issue).await?;
                Ok(PasswordReset { enrolment, grant: grant.map(|g| GrantView::new(g, false)) })
            })
            .await
    };
    let reset = crate::auth::session_cache::revoking(state.sessions.clone(), reset).await?;
    Ok(HttpResponse::Ok().insert_header((actix_web::http::header::CACHE_CONTROL, "no-store")).json(reset))
}

/// Reset a staff account's second factor (a lost phone).
///
/// Removes the factor and its recovery codes and ends the account's sessions. The person enrols a
/// new one (`POST /auth/second-factor`). A caseworker cannot log in until that new factor is
/// approved by a second person, who may not be the admin who reset it. Admins of the organisation,
/// and host admins for an organisation's only admin (the recovery a password reset is too).
#[utoipa::path(
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
    )
)]
#[post("/users/{id}/second-factor/reset")]
pub async fn reset_second_factor(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    let org =
        resettable(&mut conn, &principal, id, "Another admin of your organisation resets your second factor.").await?;
    let reset = async move {
        (*conn)
            .transaction::<_, ApiError, _>(async move |conn: &mut AsyncPgConnection| {
                let role: Role = users::table.find(id).select(users::role).for_no_key_update().first(conn).await?;
                grants::withdraw_pending(conn, &ctx, &principal, id, false).await?;
                crate::auth::second_factor_store::remove(conn, id).await?;
                if policy::reaches_identities(role) {
                    // The admin who reset it must not be the one to approve the next factor (D81),
                    // and until one is approved the account waits.
                    diesel::update(users::table.find(id))
                        .set((users::credential_issued_by.eq(principal.user_id), users::awaiting_approval.eq(true)))
                        .execute(conn)
                        .await?;
                }
                sessions::revoke_user(conn, id).await?;
                let event = Event::new(AuditAction::SecondFactorReset, AuditOutcome::Success)
                    .by(&principal)
                    .in_org(org)
                    .target("user", id);
                audit::record(conn, &ctx, event).await?;
                Ok(())
            })
            .await
    };
    crate::auth::session_cache::revoking(state.sessions.clone(), reset).await?;
    Ok(HttpResponse::NoContent().finish())
}
