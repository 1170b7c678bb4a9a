use actix_web::{HttpResponse, get, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Principal;
use super::credential_answer::{TokenResponse, no_store, tokens};
use super::session_cache::{revoking, revoking_when};
use super::sessions::{self, Rotation};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::db::schema::users;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::orgs::OrganizationView;
use crate::state::AppState;
use crate::users::UserView;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh; it is single-use.
    pub refresh_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserView,
    pub organization: OrganizationView,
}

/// Exchange a refresh token for a new access and refresh token.
///
/// Each refresh token works once. Presenting one that was already used revokes the whole
/// session (it was copied), and every token of that session stops working.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 400, response = crate::openapi::responses::BadRequest),
        (status = 401, response = crate::openapi::responses::CredentialsRefused),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: ApiJson<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let presented = body.0.refresh_token;
    let mut conn = state.pool.get().await?;
    let rotation = async move {
        (*conn)
            .transaction::<_, ApiError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
                let rotation = sessions::rotate(conn, &presented).await?;
                match rotation {
                    Rotation::Rotated { session_id, user_id, refresh_token } => {
                        let user: (Uuid, Role, bool, i32) = users::table
                            .find(user_id)
                            .select((users::organization_id, users::role, users::disabled, users::token_version))
                            .first(conn)
                            .await?;
                        Ok((Some((session_id, user_id, refresh_token, user)), false))
                    }
                    Rotation::Reused { session_id, user_id } => {
                        let (org, role): (Uuid, Role) = users::table
                            .find(user_id)
                            .select((users::organization_id, users::role))
                            .first(conn)
                            .await?;
                        let event = Event::new(AuditAction::RefreshReused, AuditOutcome::Denied)
                            .actor(user_id, role)
                            .in_org(org)
                            .target("session", session_id);
                        audit::record(conn, &ctx, event).await?;
                        Ok((None, true))
                    }
                    Rotation::Invalid => Ok((None, false)),
                }
            })
            .await
    };
    // Reuse of a spent refresh token ends the session: a revocation. A plain rotation is not, and
    // leaves the remembered session checks alone.
    let (outcome, _) = revoking_when(state.sessions.clone(), rotation, |(_, reused)| *reused).await?;
    match outcome {
        Some((session_id, user_id, new_token, (org, role, false, version))) => Ok(HttpResponse::Ok()
            .insert_header(no_store())
            .json(tokens(&state, user_id, org, role, session_id, version, new_token)?)),
        _ => Err(ApiError::InvalidCredentials),
    }
}

/// Log out: revoke the current session (its access and refresh tokens stop working).
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, response = crate::openapi::responses::Unauthorized),
    )
)]
#[post("/auth/logout")]
pub async fn logout(state: web::Data<AppState>, principal: Principal, ctx: RequestContext) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let logout = async move {
        (*conn)
            .transaction::<_, ApiError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
                sessions::revoke(conn, principal.session_id, sessions::REVOKED_LOGOUT).await?;
                let event = Event::new(AuditAction::Logout, AuditOutcome::Success)
                    .by(&principal)
                    .target("session", principal.session_id);
                audit::record(conn, &ctx, event).await?;
                Ok(())
            })
            .await
    };
    revoking(state.sessions.clone(), logout).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Who am I: your account and organisation.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your account", body = MeResponse),
        (status = 401, response = crate::openapi::responses::Unauthorized),
    )
)]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, principal: Principal) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let user = crate::users::find(&mut conn, principal.user_id).await?.ok_or(ApiError::InvalidToken)?;
    let org = crate::orgs::find(&mut conn, principal.organization_id).await?.ok_or(ApiError::InvalidToken)?;
    Ok(HttpResponse::Ok().json(MeResponse { user: user.into(), organization: org.into() }))
}
