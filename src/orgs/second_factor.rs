//! `PUT /organizations/{id}/second-factor`: whether an organisation's caseworkers must log in with a
//! second factor. Its own admins decide, and host admins.

use actix_web::{HttpResponse, put, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::OrganizationView;
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{organizations, users};
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorPolicy {
    /// `true`: caseworkers must log in with a second factor; `false`: optional; `null`: the
    /// deployment's default (required in production).
    pub required_for_caseworkers: Option<bool>,
}

/// Require a second factor for an organisation's caseworkers, or not.
///
/// Its admins and host admins. When it becomes required, the sessions of caseworkers without a
/// factor end; they are asked to enrol at their next login (403
/// `second-factor-enrolment-required`), and their enrolment waits for a second person's approval.
#[utoipa::path(
    tag = "organizations",
    params(("id" = Uuid, Path, description = "Organisation id")),
    request_body = SecondFactorPolicy,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Set", body = OrganizationView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[put("/organizations/{id}/second-factor")]
pub async fn set_policy(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<SecondFactorPolicy>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    policy::set_second_factor_policy(&principal, id).require()?;
    let required = body.0.required_for_caseworkers;
    let mut conn = state.pool.get().await?;
    let state_in = state.clone();
    let change = async move {
        (*conn)
            .transaction::<_, ApiError, _>(async move |conn: &mut AsyncPgConnection| {
                let state = state_in;
                let org = diesel::update(organizations::table.find(id))
                    .set((
                        organizations::require_second_factor.eq(required),
                        organizations::version.eq(organizations::version + 1),
                        organizations::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(super::Organization::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?
                    .ok_or(ApiError::NotFound)?;
                // Sessions opened with the password alone must not outlive the requirement.
                if crate::auth::second_factor::required(&state, crate::domain::Role::Caseworker, required) {
                    let without: Vec<Uuid> = users::table
                        .filter(users::organization_id.eq(id))
                        .filter(users::role.eq(crate::domain::Role::Caseworker))
                        .filter(users::totp_active.eq(false))
                        .select(users::id)
                        // One order for every writer that locks several accounts.
                        .order(users::id)
                        .load(conn)
                        .await?;
                    for user in without {
                        crate::auth::sessions::revoke_user(conn, user).await?;
                    }
                }
                let event = Event::new(AuditAction::SecondFactorPolicySet, AuditOutcome::Success)
                    .by(&principal)
                    .in_org(id)
                    .target("organization", id)
                    .details(serde_json::json!({ "required_for_caseworkers": required }));
                audit::record(conn, &ctx, event).await?;
                Ok(org)
            })
            .await
    };
    let org = crate::auth::session_cache::revoking(state.sessions.clone(), change).await?;
    Ok(HttpResponse::Ok().json(OrganizationView::from(org)))
}
