//! Closing and reopening a case, each with its reason; the history stays
//! (`POST /victims/{id}/close`, `POST /victims/{id}/reopen`, `GET /victims/{id}/closures`).

use actix_web::{HttpResponse, get, http::header, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::access::{self, Visible};
use super::custody;
use super::model::{VictimRow, VictimView};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{case_closures, victims};
use crate::domain::case_vocab::{CaseStatus, ClosureReason, ReopenReason};
use crate::domain::policy::{self, Relation};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext, etag};
use crate::pagination::Page;
use crate::privacy::redaction;
use crate::privacy::staff::StaffSight;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseInput {
    pub reason: ClosureReason,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenInput {
    pub reason: ReopenReason,
}

/// One closure of a case, and its reopening if it was reopened.
#[derive(Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = case_closures)]
pub struct Closure {
    pub reason: ClosureReason,
    pub closed_at: DateTime<Utc>,
    /// The caseworker who closed it; absent for other organisations' callers but host auditors (who
    /// works a case is its organisation's to know).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[diesel(select_expression = case_closures::closed_by.nullable())]
    #[diesel(select_expression_type = diesel::dsl::Nullable<case_closures::closed_by>)]
    pub closed_by: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reopen_reason: Option<ReopenReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reopened_at: Option<DateTime<Utc>>,
    /// Who reopened it; absent for other organisations' callers but host auditors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reopened_by: Option<Uuid>,
}

/// A case's closures, oldest first, as `principal` sees them: those made up to `until` (a former
/// owner's hand-over, `access::Visible::until`; a reopening after it is left out too), naming
/// staff only where `StaffSight` shows them.
pub async fn history(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    victim: Uuid,
    until: Option<DateTime<Utc>>,
) -> QueryResult<Vec<Closure>> {
    let mut items: Vec<Closure> = case_closures::table
        .filter(case_closures::victim_id.eq(victim))
        .order(case_closures::id.asc())
        .select(Closure::as_select())
        .load(conn)
        .await?;
    if let Some(until) = until {
        items.retain(|c| c.closed_at <= until);
        for c in items.iter_mut().filter(|c| c.reopened_at.is_some_and(|at| at > until)) {
            (c.reopen_reason, c.reopened_at, c.reopened_by) = (None, None, None);
        }
    }
    let named = items.iter().flat_map(|c| [c.closed_by, c.reopened_by]).flatten();
    let staff = StaffSight::of(conn, principal, named).await?;
    for c in &mut items {
        (c.closed_by, c.reopened_by) = (staff.show_some(c.closed_by), staff.show_some(c.reopened_by));
    }
    Ok(items)
}

/// Records a case's closure with its reason and ends its open tasks (a closed case has nothing left
/// to do); returns the status the case takes and how many tasks ended. The caller sets the status.
pub async fn record_closure(
    conn: &mut AsyncPgConnection,
    victim: Uuid,
    org: Uuid,
    reason: ClosureReason,
    by: Uuid,
) -> QueryResult<(CaseStatus, usize)> {
    let closed = match reason {
        ClosureReason::ReferredElsewhere => CaseStatus::ClosedReferred,
        _ => CaseStatus::Closed,
    };
    diesel::insert_into(case_closures::table)
        .values((
            case_closures::victim_id.eq(victim),
            case_closures::organization_id.eq(org),
            case_closures::reason.eq(reason),
            case_closures::closed_by.eq(by),
        ))
        .execute(conn)
        .await?;
    let cancelled = crate::tasks::cancel_open(conn, victim, by).await?;
    Ok((closed, cancelled))
}

/// Which way a case moves.
enum Move {
    Close(ClosureReason),
    Reopen(ReopenReason),
}

/// Close a case, with a reason (caseworkers who may write it).
///
/// `referred_elsewhere` closes it as `closed_referred`, any other reason as `closed`. A closed case
/// is opened again only with `POST /victims/{id}/reopen`; its status cannot be patched.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = CloseInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The closed case file", body = VictimView, headers(("ETag" = String, description = "New version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims/{id}/close")]
pub async fn close_case(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<CloseInput>,
) -> ApiResult<HttpResponse> {
    change(&state, &principal, &ctx, id.into_inner(), Move::Close(body.0.reason)).await
}

/// Reopen a closed case, with a reason (caseworkers who may write it). It becomes `active`.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = ReopenInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reopened case file", body = VictimView, headers(("ETag" = String, description = "New version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims/{id}/reopen")]
pub async fn reopen_case(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<ReopenInput>,
) -> ApiResult<HttpResponse> {
    change(&state, &principal, &ctx, id.into_inner(), Move::Reopen(body.0.reason)).await
}

async fn change(
    state: &AppState,
    principal: &Principal,
    ctx: &RequestContext,
    id: Uuid,
    to: Move,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row, custody, .. } = access::load_visible(state, &mut conn, ctx, principal, id).await?;
    // Judged before the lock as well: a former owner, a receiver or a role that may not write is
    // refused without taking the case's lock, and without a 409 telling it the case moved (D169).
    policy::write_victim(principal, row.organization_id, custody).require()?;
    let (updated, view) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let custody = custody::lock(conn, id, principal.user_id, row.organization_id).await?;
            policy::write_victim(principal, row.organization_id, custody).require()?;
            let status: CaseStatus = victims::table.find(id).select(victims::status).first(conn).await?;
            let (new_status, action, details) = match (&to, status.is_closed()) {
                (Move::Close(reason), false) => {
                    let (closed, cancelled) =
                        record_closure(conn, id, row.organization_id, *reason, principal.user_id).await?;
                    let details = serde_json::json!({ "reason": reason, "tasks_cancelled": cancelled });
                    (closed, AuditAction::VictimClosed, details)
                }
                (Move::Reopen(reason), true) => {
                    let open = case_closures::table
                        .filter(case_closures::victim_id.eq(id))
                        .filter(case_closures::reopened_at.is_null());
                    diesel::update(open)
                        .set((
                            case_closures::reopen_reason.eq(Some(*reason)),
                            case_closures::reopened_at.eq(crate::db::now_nullable()),
                            case_closures::reopened_by.eq(Some(principal.user_id)),
                        ))
                        .execute(conn)
                        .await?;
                    (CaseStatus::Active, AuditAction::VictimReopened, serde_json::json!({ "reason": reason }))
                }
                (Move::Close(_), true) => return Err(ApiError::Conflict("This case is already closed.".into())),
                (Move::Reopen(_), false) => return Err(ApiError::Conflict("This case is not closed.".into())),
            };
            let updated: VictimRow = diesel::update(victims::table.find(id))
                .set((
                    victims::status.eq(new_status),
                    victims::version.eq(victims::version + 1),
                    victims::updated_at.eq(diesel::dsl::now),
                    victims::updated_by.eq(principal.user_id),
                ))
                .returning(VictimRow::as_returning())
                .get_result(conn)
                .await?;
            let event = Event::new(action, AuditOutcome::Success).by(principal).target("victim", id).details(details);
            audit::record(conn, ctx, event).await?;
            let sight = redaction::sight(principal, id, updated.organization_id, Relation::None, custody)?;
            let view = access::view_of(state, conn, ctx, principal, &updated, sight).await?;
            Ok((updated, view))
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(updated.version))).json(view))
}

/// A case's closures and reopenings, oldest first (whoever may read the case file).
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every closure of the case", body = Page<Closure>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/victims/{id}/closures")]
pub async fn list_closures(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let id = id.into_inner();
    let items = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let Visible { row, until, .. } = access::load_visible(&state, conn, &ctx, &principal, id).await?;
            Ok(history(conn, &principal, row.id, until).await?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: None }))
}
