//! `PUT /organizations/{id}/retention` (the schedule) and `/victims/{id}/legal-hold`.

use actix_web::{HttpResponse, delete, get, put, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{legal_holds, organizations};
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::orgs::{Organization, OrganizationView};
use crate::state::AppState;
use crate::victims::access::{self, Visible};
use crate::victims::custody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSchedule {
    /// Identities (with notes, reasons and plan texts) of cases closed this many months ago are
    /// erased, unless a legal hold stands; `null`: kept until erased by hand.
    #[schema(minimum = 1, maximum = 1200)]
    pub erase_identities_after_months: Option<i16>,
}

/// Set an organisation's retention schedule (its admins, and host admins).
///
/// The schedule is applied by the server every `HAVEN_RETENTION_INTERVAL_MIN` minutes and by
/// `haven retention`; `haven retention --dry-run` lists what it would erase. Audited.
#[utoipa::path(
    tag = "organizations",
    params(("id" = Uuid, Path, description = "Organisation id")),
    request_body = RetentionSchedule,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Set", body = OrganizationView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[put("/organizations/{id}/retention")]
pub async fn set_retention(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<RetentionSchedule>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    policy::set_retention(&principal, id).require()?;
    let months = body.0.erase_identities_after_months;
    if months.is_some_and(|m| !(1..=1200).contains(&m)) {
        return Err(ApiError::validation("erase_identities_after_months", "must be between 1 and 1200"));
    }
    let mut conn = state.pool.get().await?;
    let org = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let org = diesel::update(organizations::table.find(id))
                .set((
                    organizations::erase_identities_after_months.eq(months),
                    organizations::version.eq(organizations::version + 1),
                    organizations::updated_at.eq(diesel::dsl::now),
                ))
                .returning(Organization::as_returning())
                .get_result(conn)
                .await
                .optional()?
                .ok_or(ApiError::NotFound)?;
            let event = Event::new(AuditAction::RetentionSet, AuditOutcome::Success)
                .by(&principal)
                .in_org(id)
                .target("organization", id)
                .details(serde_json::json!({ "erase_identities_after_months": months }));
            audit::record(conn, &ctx, event).await?;
            Ok(org)
        })
        .await?;
    Ok(HttpResponse::Ok().json(OrganizationView::from(org)))
}

crate::text_enum! {
    /// Why a case must be kept.
    pub enum LegalHoldBasis {
        Litigation => "litigation",
        CriminalInvestigation => "criminal_investigation",
        RegulatoryInquiry => "regulatory_inquiry",
        Other => "other",
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalHoldInput {
    pub basis: LegalHoldBasis,
}

/// A legal hold on a case: neither the retention schedule nor anyone by hand erases it.
#[derive(Debug, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = legal_holds)]
pub struct LegalHold {
    pub victim_id: Uuid,
    pub basis: LegalHoldBasis,
    pub placed_at: DateTime<Utc>,
    /// The account that placed it.
    pub placed_by: Uuid,
}

/// The case, if the caller may place or lift its hold; the case's lock is taken on `conn`.
async fn holdable(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    victim: Uuid,
) -> ApiResult<Uuid> {
    policy::refuse_partners(principal)?;
    let Visible { row, .. } = access::load_visible(state, conn, ctx, principal, victim).await?;
    let custody = custody::lock(conn, row.id, principal.user_id, row.organization_id).await?;
    policy::hold_case(principal, row.organization_id, custody).require()?;
    Ok(row.organization_id)
}

/// A case's legal hold (whoever may read the case file; 404 when there is none).
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The hold", body = LegalHold),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/victims/{id}/legal-hold")]
pub async fn get_legal_hold(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row, .. } = access::load_visible(&state, &mut conn, &ctx, &principal, id.into_inner()).await?;
    let hold: LegalHold = legal_holds::table
        .find(row.id)
        .select(LegalHold::as_select())
        .first(&mut conn)
        .await
        .optional()?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(hold))
}

/// Place (or change the basis of) a legal hold on a case: the owning organisation's admins and the
/// caseworkers who may write the case. Audited.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = LegalHoldInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The hold", body = LegalHold),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[put("/victims/{id}/legal-hold")]
pub async fn place_legal_hold(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<LegalHoldInput>,
) -> ApiResult<HttpResponse> {
    let basis = body.0.basis;
    let victim = id.into_inner();
    let mut conn = state.pool.get().await?;
    let hold = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let org = holdable(&state, conn, &ctx, &principal, victim).await?;
            let hold: LegalHold = diesel::insert_into(legal_holds::table)
                .values((
                    legal_holds::victim_id.eq(victim),
                    legal_holds::organization_id.eq(org),
                    legal_holds::basis.eq(basis),
                    legal_holds::placed_by.eq(principal.user_id),
                ))
                .on_conflict(legal_holds::victim_id)
                .do_update()
                .set((legal_holds::basis.eq(basis), legal_holds::placed_by.eq(principal.user_id)))
                .returning(LegalHold::as_returning())
                .get_result(conn)
                .await?;
            let event = Event::new(AuditAction::LegalHoldPlaced, AuditOutcome::Success)
                .by(&principal)
                .in_org(org)
                .target("victim", victim)
                .details(serde_json::json!({ "basis": basis }));
            audit::record(conn, &ctx, event).await?;
            Ok(hold)
        })
        .await?;
    Ok(HttpResponse::Ok().json(hold))
}

/// Lift a case's legal hold (who may place it); 204 whether or not one stood. Audited when one did.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Lifted"),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
    )
)]
#[delete("/victims/{id}/legal-hold")]
pub async fn lift_legal_hold(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let victim = id.into_inner();
    let mut conn = state.pool.get().await?;
    (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let org = holdable(&state, conn, &ctx, &principal, victim).await?;
            let lifted = diesel::delete(legal_holds::table.find(victim)).execute(conn).await?;
            if lifted == 0 {
                return Ok(());
            }
            let event = Event::new(AuditAction::LegalHoldLifted, AuditOutcome::Success)
                .by(&principal)
                .in_org(org)
                .target("victim", victim);
            audit::record(conn, &ctx, event).await?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
