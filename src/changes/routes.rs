use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Forget, LeaveReason};
use crate::auth::Principal;
use crate::db::schema::{sight_changes, transfers, victims};
use crate::domain::policy;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::pagination::{self, Page};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Changes at or after this time (the start of your last sync, less the deployment's request
    /// timeout: a change is dated when it began, and may commit up to that long after); all of
    /// them when absent.
    pub since: Option<DateTime<Utc>>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$")]
    pub cursor: Option<String>,
}

/// A record, or what identifies the person in it, that left your sight: delete your local copy.
#[derive(Debug, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = sight_changes)]
pub struct Tombstone {
    /// Increasing: the order in which to apply them.
    #[diesel(column_name = id)]
    pub sequence: i64,
    pub victim_id: Uuid,
    /// `identity`: delete the identity, assistance notes, referral reasons, task notes and plan
    /// texts of the case, and keep its case file; `identity_only`: delete the identity and keep
    /// the rest (it is still served); `record`: delete the case and everything under it;
    /// `since_hand_over`: delete the case and everything under it, and fetch it again in full,
    /// its lists without `updated_since` (a case your organisation handed over: what is served is
    /// what it keeps). Delete nothing more: what is still served comes back in a sync only when it
    /// changes.
    pub forget: Forget,
    pub reason: LeaveReason,
    #[diesel(column_name = created_at)]
    pub at: DateTime<Utc>,
}

/// What left your sight since a time: cases (or their identities) erased or removed, transferred
/// away, restricted, or no longer shared with your organisation, so an offline client deletes its
/// copy.
///
/// Ask with the time your last sync started; apply in `sequence` order. Another organisation's
/// records, and records that only changed, are not here: sync those with `updated_since`. Admins
/// and auditors (but host auditors) are given those of the cases their organisation holds, and of
/// those it handed over up to the hand-over; a case referred to it is its caseworkers'.
#[utoipa::path(
    tag = "changes",
    params(ChangesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tombstones, oldest first", body = Page<Tombstone>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/changes")]
pub async fn list_changes(
    state: web::Data<AppState>,
    principal: Principal,
    query: ApiQuery<ChangesQuery>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let q = query.0;
    let limit = pagination::limit(q.limit)?;
    let after: Option<i64> = pagination::decode(q.cursor.as_deref())?;
    let mut sql = sight_changes::table
        .filter(sight_changes::organization_id.eq(principal.organization_id))
        .filter(sight_changes::user_id.is_null().or(sight_changes::user_id.eq(principal.user_id)))
        .select(Tombstone::as_select())
        .into_boxed();
    if !policy::reads_tombstones_of_referred_cases(&principal) {
        let org = principal.organization_id;
        let holds =
            victims::table.filter(victims::id.eq(sight_changes::victim_id)).filter(victims::organization_id.eq(org));
        // Of a case it handed over, those written up to the hand-over (its `transferred` among
        // them): what became of the person since is not theirs to learn (D165).
        let handed = transfers::table
            .filter(transfers::victim_id.eq(sight_changes::victim_id))
            .filter(transfers::from_organization_id.eq(org))
            // Written out, as the partial index `transfers_by_victim` states it.
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("transfers.status = 'accepted'"))
            .filter(sight_changes::created_at.le(transfers::decided_at.assume_not_null()));
        sql = sql.filter(diesel::dsl::exists(holds).or(diesel::dsl::exists(handed)));
    }
    if let Some(since) = q.since {
        sql = sql.filter(sight_changes::created_at.ge(since));
    }
    if let Some(after) = after {
        sql = sql.filter(sight_changes::id.gt(after));
    }
    let mut conn = state.pool.get().await?;
    let rows: Vec<Tombstone> = sql.order(sight_changes::id.asc()).limit(limit + 1).load(&mut conn).await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |t| t.sequence, |t| t)))
}
