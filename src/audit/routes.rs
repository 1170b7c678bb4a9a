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
use crate::privacy::staff::StaffSight;
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

/// An audit event as stored.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEventRow {
    id: i64,
    occurred_at: DateTime<Utc>,
    organization_id: Option<Uuid>,
    actor_user_id: Option<Uuid>,
    actor_role: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<Uuid>,
    outcome: String,
    request_id: Option<String>,
    client_address: Option<String>,
    details: serde_json::Value,
}

/// One audit event. Carries ids and codes only, never identity values.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    /// The log it is filed in.
    pub organization_id: Option<Uuid>,
    /// Who acted; `null`, with `client_address`, where the actor belongs to another organisation
    /// (an event filed in both organisations' logs: a referral, a transfer, assistance or a read of
    /// the identity by a receiver, a refused probe): who works a case is its organisation's to
    /// know, and each organisation's own log names its people. Host auditors see every actor.
    pub actor_user_id: Option<Uuid>,
    /// The organisation of the account that acted, also where the account is not named.
    pub actor_organization_id: Option<Uuid>,
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

impl AuditEventView {
    fn of(r: AuditEventRow, staff: &StaffSight) -> AuditEventView {
        let shown = staff.show_some(r.actor_user_id);
        AuditEventView {
            id: r.id,
            occurred_at: r.occurred_at,
            organization_id: r.organization_id,
            actor_user_id: shown,
            actor_organization_id: r.actor_user_id.and_then(|a| staff.organization_of(a)),
            actor_role: r.actor_role,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            outcome: r.outcome,
            request_id: r.request_id,
            // The address an actor worked from goes with who they are.
            client_address: if shown.is_some() || r.actor_user_id.is_none() { r.client_address } else { None },
            details: r.details,
        }
    }
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
    let mut sql = audit_events::table.select(AuditEventRow::as_select()).into_boxed();
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
    // An account the caller may not be shown cannot be looked for either: the page would say
    // where it acted.
    if let Some(actor) = q.actor_user_id
        && StaffSight::of(&mut conn, &principal, [actor]).await?.show(actor).is_none()
    {
        return Ok(HttpResponse::Ok().json(Page::<AuditEventView> { items: Vec::new(), next_cursor: None }));
    }
    let rows: Vec<AuditEventRow> = sql.order(audit_events::id.desc()).limit(limit + 1).load(&mut conn).await?;
    let staff = StaffSight::of(&mut conn, &principal, rows.iter().filter_map(|r| r.actor_user_id)).await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |r| r.id, |r| AuditEventView::of(r, &staff))))
}
