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
use crate::privacy::staff::StaffSight;
use crate::state::AppState;
use crate::victims::access::{self, Visible};
use crate::victims::custody;

/// How long a new or shorter schedule waits before it applies.
pub const GRACE_DAYS: i64 = 30;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSchedule {
    /// Identities (with notes, reasons and plan texts) of cases closed this many months ago are
    /// erased, unless a legal hold stands; `null`: kept until erased by hand.
    #[schema(minimum = 1, maximum = 1200)]
    pub erase_identities_after_months: Option<i16>,
}

/// Set an organisation's retention schedule (its own admins).
///
/// The schedule is applied by the server every `HAVEN_RETENTION_INTERVAL_MIN` minutes and by
/// `haven retention`; `haven retention --dry-run` lists what it would erase. A new or shorter
/// schedule applies from `retention_effective_at`, 30 days after it is set (until then nothing is
/// erased by schedule), so that a mistake or a single person cannot erase years of closed cases at
/// once; a longer one, or none, applies at once. Audited.
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
            let before: Option<i16> = organizations::table
                .find(id)
                .select(organizations::erase_identities_after_months)
                .for_no_key_update()
                .first(conn)
                .await
                .optional()?
                .ok_or(ApiError::NotFound)?;
            let shorter = match (before, months) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(old), Some(new)) => new < old,
            };
            let grace = if shorter { chrono::Duration::days(GRACE_DAYS) } else { chrono::Duration::zero() };
            let effective = months.map(|_| Utc::now() + grace);
            let org = diesel::update(organizations::table.find(id))
                .set((
                    organizations::erase_identities_after_months.eq(months),
                    organizations::retention_effective_at.eq(effective),
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
                .details(serde_json::json!({ "erase_identities_after_months": months, "effective_at": effective }));
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

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = legal_holds)]
struct HoldRow {
    victim_id: Uuid,
    basis: LegalHoldBasis,
    placed_at: DateTime<Utc>,
    placed_by: Uuid,
}

/// A legal hold on a case: neither the retention schedule nor anyone by hand erases it, and its
/// identity cannot be removed by a patch.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegalHold {
    pub victim_id: Uuid,
    pub basis: LegalHoldBasis,
    pub placed_at: DateTime<Utc>,
    /// The account that placed it; absent for other organisations' callers but host auditors (who
    /// works a case is its organisation's to know).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placed_by: Option<Uuid>,
}

impl LegalHold {
    async fn seen_by(conn: &mut AsyncPgConnection, row: HoldRow, principal: &Principal) -> ApiResult<LegalHold> {
        let staff = StaffSight::of(conn, principal, [row.placed_by]).await?;
        let placed_by = staff.show(row.placed_by);
        Ok(LegalHold { victim_id: row.victim_id, basis: row.basis, placed_at: row.placed_at, placed_by })
    }
}

/// Whether a legal hold stands on the case.
pub async fn held(conn: &mut AsyncPgConnection, victim: Uuid) -> diesel::QueryResult<bool> {
    diesel::select(diesel::dsl::exists(legal_holds::table.find(victim))).get_result(conn).await
}

/// The case's owner, with the case's lock taken on `conn`, if the caller may see the case and
/// `may` allows it: judged on what the caller saw, before the lock (a former owner or a receiver
/// is refused without taking it, and without a 409 telling it the case moved: D169), and again
/// under it.
async fn locked_case(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    victim: Uuid,
    may: impl Fn(Uuid, crate::domain::policy::Custody) -> crate::domain::policy::Access,
) -> ApiResult<Uuid> {
    policy::refuse_partners(principal)?;
    let Visible { row, custody, .. } = access::load_visible(state, conn, ctx, principal, victim).await?;
    may(row.organization_id, custody).require()?;
    let custody = custody::lock(conn, row.id, principal.user_id, row.organization_id).await?;
    may(row.organization_id, custody).require()?;
    Ok(row.organization_id)
}

/// A case's legal hold (the owning organisation's staff and host auditors; 404 when there is none).
///
/// A receiving organisation reads the case, not its owner's hold: 403 whether one stands or not.
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
    let id = id.into_inner();
    let hold = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let visible = access::load_visible(&state, conn, &ctx, &principal, id).await?;
            // A hold is the current owner's instrument over the record as it is now: lifted or
            // changed since the hand-over, it would tell the former owner what the new owner did
            // (D166). Refused before it is read, so that the time does not tell either (D169).
            if visible.until.is_some() {
                return Err(ApiError::NotFound);
            }
            // A receiver of the case is refused before the hold is read, whether one stands or not.
            policy::read_hold(&principal, visible.row.organization_id).require()?;
            let hold: HoldRow = legal_holds::table
                .find(visible.row.id)
                .select(HoldRow::as_select())
                .first(conn)
                .await
                .optional()?
                .ok_or(ApiError::NotFound)?;
            LegalHold::seen_by(conn, hold, &principal).await
        })
        .await?;
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
            let org = locked_case(&state, conn, &ctx, &principal, victim, |o, c| policy::place_hold(&principal, o, c))
                .await?;
            let hold: HoldRow = diesel::insert_into(legal_holds::table)
                .values((
                    legal_holds::victim_id.eq(victim),
                    legal_holds::basis.eq(basis),
                    legal_holds::placed_by.eq(principal.user_id),
                ))
                .on_conflict(legal_holds::victim_id)
                .do_update()
                .set((
                    legal_holds::basis.eq(basis),
                    // Placed again: by whom, and when (not the first placing's time beside a new
                    // placer).
                    legal_holds::placed_by.eq(principal.user_id),
                    legal_holds::placed_at.eq(diesel::dsl::now),
                ))
                .returning(HoldRow::as_returning())
                .get_result(conn)
                .await?;
            let event = Event::new(AuditAction::LegalHoldPlaced, AuditOutcome::Success)
                .by(&principal)
                .in_org(org)
                .target("victim", victim)
                .details(serde_json::json!({ "basis": basis }));
            audit::record(conn, &ctx, event).await?;
            LegalHold::seen_by(conn, hold, &principal).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(hold))
}

/// Lift a case's legal hold (the owning organisation's admins); 204 whether or not one stood.
/// Audited when one did.
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
            let org =
                locked_case(&state, conn, &ctx, &principal, victim, |o, _| policy::lift_hold(&principal, o)).await?;
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
