use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AuditAction, AuditOutcome};
use crate::auth::Principal;
use crate::db::schema::audit_events;
use crate::domain::policy;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::pagination::{self, Page};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Organisation whose log to read (default: your own; host auditors may name any).
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub action: Option<AuditAction>,
    pub outcome: Option<AuditOutcome>,
    /// Events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Events before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$")]
    pub cursor: Option<String>,
}

/// One audit event. Carries ids and codes only, never identity values.
#[derive(Debug, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEventView {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub actor_role: Option<String>,
    #[schema(value_type = AuditAction)]
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    #[schema(value_type = AuditOutcome)]
    pub outcome: String,
    pub request_id: Option<String>,
    pub client_address: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// List audit events, newest first.
///
/// Admins and auditors read their organisation's log; host-organisation auditors read every
/// organisation's, including events that belong to none (failed logins for unknown accounts).
#[utoipa::path(
    tag = "audit",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events", body = Page<AuditEventView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/audit-events")]
pub async fn list_audit_events(
    state: web::Data<AppState>,
    principal: Principal,
    query: ApiQuery<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.0;
    let limit = pagination::limit(q.limit)?;
    let after: Option<i64> = pagination::decode(q.cursor.as_deref())?;
    let scope = policy::audit_scope(&principal, q.organization_id)?;
    let mut sql = audit_events::table.select(AuditEventView::as_select()).into_boxed();
    if let Some(org) = scope {
        sql = sql.filter(audit_events::organization_id.eq(org));
    }
    if let Some(actor) = q.actor_user_id {
        sql = sql.filter(audit_events::actor_user_id.eq(actor));
    }
    if let Some(target) = q.target_id {
        sql = sql.filter(audit_events::target_id.eq(target));
    }
    if let Some(action) = q.action {
        sql = sql.filter(audit_events::action.eq(action.as_str()));
    }
    if let Some(outcome) = q.outcome {
        sql = sql.filter(audit_events::outcome.eq(outcome.as_str()));
    }
    if let Some(since) = q.since {
        sql = sql.filter(audit_events::occurred_at.ge(since));
    }
    if let Some(until) = q.until {
        sql = sql.filter(audit_events::occurred_at.lt(until));
    }
    if let Some(after) = after {
        sql = sql.filter(audit_events::id.lt(after));
    }
    let mut conn = state.pool.get().await?;
    let rows = sql.order(audit_events::id.desc()).limit(limit + 1).load(&mut conn).await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |r| r.id, |r| r)))
}
