use actix_web::{HttpResponse, get, http::header, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{GoalInput, GoalPatch, GoalRow, NewGoal, PlanText, SupportGoal, SupportGoalView};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::support_plan_goals as goals;
use crate::domain::case_vocab::GoalStatus;
use crate::domain::policy::{self, Relation};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IfMatch, RequestContext, etag, from_value};
use crate::pagination::{self, Page};
use crate::privacy::crypto::{Purpose, Sealed};
use crate::privacy::redaction::{self, IdentityGrant};
use crate::privacy::staff::StaffSight;
use crate::privacy::vault::Opens;
use crate::state::AppState;
use crate::victims::access::{self, CaseRecord, Visible};

/// Which goals to list: a page at a time, for sync from a time on.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlanQuery {
    /// Changed at or after this time (for client sync).
    pub updated_since: Option<DateTime<Utc>>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

fn not_future(field: &str, day: Option<NaiveDate>) -> ApiResult<()> {
    match day {
        Some(day) if day > Utc::now().date_naive() => Err(ApiError::validation(field, "must not be in the future")),
        _ => Ok(()),
    }
}

async fn seal(state: &AppState, victim: Uuid, id: Uuid, text: &PlanText) -> ApiResult<Option<Sealed>> {
    if text.is_empty() {
        return Ok(None);
    }
    let document = zeroize::Zeroizing::new(serde_json::to_vec(text).map_err(|e| ApiError::internal("plan text", e))?);
    Ok(Some(state.vault.sealer(victim).await?.seal(Purpose::SupportPlanText, id, &document)))
}

pub(crate) fn open(opener: &impl Opens, row: &GoalRow) -> ApiResult<(PlanText, bool)> {
    let parts = (&row.text_key_id, &row.text_nonce, &row.text_ciphertext);
    match opener.open_text(Purpose::SupportPlanText, row.id, parts)? {
        Some(document) => {
            // serde's message could quote the text: the record is named, never its content.
            let text = serde_json::from_str(&document)
                .map_err(|_| ApiError::Internal(format!("sealed support-plan text of {} is not a plan", row.id)))?;
            Ok((text, true))
        }
        None => Ok((PlanText::default(), false)),
    }
}

/// Add a goal or planned service to a case's support plan (caseworkers who may write the case;
/// not on a closed case).
#[utoipa::path(
    tag = "support-plan",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = GoalInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Added", body = SupportGoalView, headers(("ETag" = String, description = "Version"))),
        (status = 200, description = "Already added with this body (a retry)", body = SupportGoalView, headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims/{id}/support-plan")]
pub async fn create_goal(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    let victim_id = id.into_inner();
    let digest = crate::idempotency::digest(&state.identity_keys, &body.0);
    let input: GoalInput = from_value(body.0)?;
    not_future("actual_end_on", input.actual_end_on)?;
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row: victim, custody, .. } =
        access::load_visible(&state, &mut conn, &ctx, &principal, victim_id).await?;
    policy::write_victim(&principal, victim.organization_id, custody).require()?;
    let id = input.id.unwrap_or_else(Uuid::now_v7);
    let text = PlanText { objectives: input.objectives, action_plan: input.action_plan };
    let (text_key_id, text_nonce, text_ciphertext) = Sealed::columns(seal(&state, victim_id, id, &text).await?);
    let new = NewGoal {
        id,
        victim_id,
        organization_id: victim.organization_id,
        kind: input.kind,
        status: input.status.unwrap_or(GoalStatus::Planned),
        planned_end_on: input.planned_end_on,
        actual_end_on: input.actual_end_on,
        text_key_id,
        text_nonce,
        text_ciphertext,
        create_digest: digest,
        created_by: principal.user_id,
        updated_by: principal.user_id,
    };
    let (row, created, custody) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let custody = access::lock_open_case(conn, &principal, victim_id, victim.organization_id).await?;
            let (row, created) = crate::idempotency::create_once(conn, &new).await?;
            if created {
                let event = Event::new(AuditAction::SupportGoalCreated, AuditOutcome::Success)
                    .by(&principal)
                    .target("victim", victim_id)
                    .details(serde_json::json!({ "goal_id": row.id, "kind": row.kind, "status": row.status }));
                audit::record(conn, &ctx, event).await?;
            }
            Ok((row, created, custody))
        })
        .await?;
    let sight = redaction::sight(&principal, victim_id, victim.organization_id, Relation::None, custody)?;
    let staff = StaffSight::of(&mut conn, &principal, SupportGoal::staff(&row)).await?;
    let goal = SupportGoal::of(&row, &staff);
    let view = match sight.grant() {
        Some(grant) => SupportGoalView::disclosed(grant, goal, text),
        None => SupportGoalView::redacted(goal),
    };
    Ok(crate::idempotency::answer(created).insert_header((header::ETAG, etag(row.version))).json(view))
}

async fn views(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    owner: Uuid,
    rows: &[GoalRow],
    grants: Vec<Option<IdentityGrant>>,
) -> ApiResult<Vec<SupportGoalView>> {
    let staff = StaffSight::of(conn, principal, rows.iter().flat_map(SupportGoal::staff)).await?;
    let record = |r: &GoalRow| (r.id, SupportGoal::of(r, &staff));
    let victims: Vec<Uuid> = rows.iter().map(|r| r.victim_id).collect();
    let openers = state.vault.openers(&victims).await?;
    let open = |r: &GoalRow| open(&openers.of(r.victim_id), r);
    access::gated_views(conn, ctx, principal, owner, "support_plan_goals", rows, grants, record, open).await
}

/// A case's support plan: its goals, a page at a time in a stable order (by id).
///
/// Whoever may read the case file sees the goals; their objectives and action plans only those
/// who may see the identity (reading them is audited, one event per page).
#[utoipa::path(
    tag = "support-plan",
    params(("id" = Uuid, Path, description = "Victim id"), PlanQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the plan's goals", body = Page<SupportGoalView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/victims/{id}/support-plan")]
pub async fn list_goals(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    query: ApiQuery<PlanQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.0;
    let limit = pagination::limit(q.limit)?;
    let after: Option<Uuid> = pagination::decode(q.cursor.as_deref())?;
    policy::refuse_partners(&principal)?;
    let victim_id = id.into_inner();
    let mut sql = goals::table.filter(goals::victim_id.eq(victim_id)).select(GoalRow::as_select()).into_boxed();
    if let Some(since) = q.updated_since {
        sql = sql.filter(goals::updated_at.ge(since));
    }
    if let Some(after) = after {
        sql = sql.filter(goals::id.gt(after));
    }
    let mut conn = state.pool.get().await?;
    let page = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let Visible { row: victim, sight, until, .. } =
                access::load_visible(&state, conn, &ctx, &principal, victim_id).await?;
            let sql = match until {
                Some(until) => sql.filter(goals::updated_at.le(until)),
                None => sql,
            };
            let mut rows: Vec<GoalRow> = sql.order(goals::id.asc()).limit(limit + 1).load(conn).await?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            let next_cursor = if more { rows.last().map(|r| pagination::encode(&r.id)) } else { None };
            let grants = vec![sight.grant(); rows.len()];
            let items = views(&state, conn, &ctx, &principal, victim.organization_id, &rows, grants).await?;
            Ok(Page { items, next_cursor })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A goal and the case it belongs to, as the caller may see it (404 for a goal of a case they may
/// not see).
async fn load_goal(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<(GoalRow, Visible)> {
    policy::refuse_partners(principal)?;
    let visible = access::load_record_case(state, conn, ctx, principal, CaseRecord::SupportPlanGoal, id).await?;
    let goal = goals::table.find(id).select(GoalRow::as_select()).first(conn).await.optional()?;
    let goal = goal.filter(|g| g.victim_id == visible.row.id && visible.holds(g.updated_at));
    Ok((goal.ok_or(ApiError::NotFound)?, visible))
}

async fn one(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    row: GoalRow,
    grant: Option<IdentityGrant>,
) -> ApiResult<HttpResponse> {
    let version = row.version;
    let mut items = views(state, conn, ctx, principal, row.organization_id, &[row], vec![grant]).await?;
    let view = items.pop().ok_or_else(|| ApiError::Internal("no view of a goal".into()))?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(version))).json(view))
}

/// Read one goal of a support plan (whoever may read its case).
#[utoipa::path(
    tag = "support-plan",
    params(("id" = Uuid, Path, description = "Goal id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The goal", body = SupportGoalView, headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/support-plan-goals/{id}")]
pub async fn get_goal(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let (goal, visible) = load_goal(&state, conn, &ctx, &principal, id).await?;
            one(&state, conn, &ctx, &principal, goal, visible.sight.grant()).await
        })
        .await
}

/// Change a goal of a support plan: its status, dates, type or text (caseworkers who may write
/// the case; not on a closed case).
///
/// Requires `If-Match` with the version last read.
#[utoipa::path(
    tag = "support-plan",
    params(
        ("id" = Uuid, Path, description = "Goal id"),
        ("If-Match" = String, Header, description = "ETag of the version you read, e.g. \"3\" (a list of them, or `*` for whatever version exists)"),
    ),
    request_body = GoalPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = SupportGoalView, headers(("ETag" = String, description = "New version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 412, response = crate::openapi::responses::PreconditionFailed),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 428, response = crate::openapi::responses::PreconditionRequired),
    )
)]
#[patch("/support-plan-goals/{id}")]
pub async fn update_goal(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ApiJson<GoalPatch>,
) -> ApiResult<HttpResponse> {
    let patch = body.0;
    not_future("actual_end_on", patch.actual_end_on.flatten())?;
    let mut conn = state.pool.get().await?;
    let (goal, Visible { row: victim, custody, .. }) =
        load_goal(&state, &mut conn, &ctx, &principal, id.into_inner()).await?;
    policy::write_victim(&principal, victim.organization_id, custody).require()?;
    let version = if_match.against(goal.version)?;
    let touches_text = patch.objectives.is_some() || patch.action_plan.is_some();
    let text = if touches_text {
        let (mut text, _) = open(&state.vault.opener(goal.victim_id).await?, &goal)?;
        if let Some(objectives) = patch.objectives {
            text.objectives = objectives;
        }
        if let Some(action_plan) = patch.action_plan {
            text.action_plan = action_plan;
        }
        Some(Sealed::columns(seal(&state, goal.victim_id, goal.id, &text).await?))
    } else {
        None
    };
    let fields: Vec<&str> = [
        ("kind", patch.kind.is_some()),
        ("status", patch.status.is_some()),
        ("planned_end_on", patch.planned_end_on.is_some()),
        ("actual_end_on", patch.actual_end_on.is_some()),
        ("text", touches_text),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect();
    let (key_id, nonce, ciphertext) = match text {
        Some((k, n, c)) => {
            (Some(goals::text_key_id.eq(k)), Some(goals::text_nonce.eq(n)), Some(goals::text_ciphertext.eq(c)))
        }
        None => (None, None, None),
    };
    let (updated, custody) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let custody = access::lock_open_case(conn, &principal, victim.id, victim.organization_id).await?;
            let updated: GoalRow = diesel::update(goals::table.find(goal.id).filter(goals::version.eq(version)))
                .set((
                    patch.kind.map(|k| goals::kind.eq(k)),
                    patch.status.map(|s| goals::status.eq(s)),
                    patch.planned_end_on.map(|d| goals::planned_end_on.eq(d)),
                    patch.actual_end_on.map(|d| goals::actual_end_on.eq(d)),
                    key_id,
                    nonce,
                    ciphertext,
                    goals::version.eq(goals::version + 1),
                    goals::updated_at.eq(diesel::dsl::now),
                    goals::updated_by.eq(principal.user_id),
                ))
                .returning(GoalRow::as_returning())
                .get_result(conn)
                .await
                .optional()?
                .ok_or(ApiError::PreconditionFailed)?;
            let event = Event::new(AuditAction::SupportGoalUpdated, AuditOutcome::Success)
                .by(&principal)
                .target("victim", victim.id)
                .details(serde_json::json!({ "goal_id": goal.id, "fields": fields, "status": updated.status }));
            audit::record(conn, &ctx, event).await?;
            Ok((updated, custody))
        })
        .await?;
    let sight = redaction::sight(&principal, victim.id, victim.organization_id, Relation::None, custody)?;
    one(&state, &mut conn, &ctx, &principal, updated, sight.grant()).await
}
