//! The consent history: every consent the person gave or withdrew, as it stood after each change,
//! with who recorded it, when it was given and how (D112). The table is append-only.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::access::{self, Visible};
use super::model::VictimRow;
use crate::auth::Principal;
use crate::changes::{self, Forget, LeaveReason};
use crate::db::schema::consent_events;
use crate::domain::case_vocab::ConsentMethod;
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestContext;
use crate::pagination::Page;
use crate::privacy::staff::StaffSight;
use crate::state::AppState;
use crate::webhooks::{self, WebhookEvent};

/// One recorded state of a person's consent.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = consent_events)]
pub struct ConsentEvent {
    pub services: bool,
    pub share_with_referral_partners: bool,
    pub anonymised_statistics: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<ConsentMethod>,
    /// When the person gave (or withdrew) it.
    pub given_at: DateTime<Utc>,
    /// The caseworker who recorded it; absent for other organisations' callers but host auditors
    /// (who works a case is its organisation's to know).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[diesel(select_expression = consent_events::recorded_by.nullable())]
    #[diesel(select_expression_type = diesel::dsl::Nullable<consent_events::recorded_by>)]
    pub recorded_by: Option<Uuid>,
    /// When it was written down here.
    pub recorded_at: DateTime<Utc>,
}

fn consent_of(row: &VictimRow) -> (bool, bool, bool, Option<ConsentMethod>, Option<DateTime<Utc>>) {
    (
        row.consent_services,
        row.consent_share_with_referral_partners,
        row.consent_anonymised_statistics,
        row.consent_method,
        row.consent_recorded_at,
    )
}

/// Records the consent a case file holds now, if it differs from what it held before (`None`: a
/// new case). Called in the transaction of the write.
pub async fn record(
    conn: &mut impl crate::db::Runs,
    before: Option<&VictimRow>,
    after: &VictimRow,
    user: Uuid,
) -> QueryResult<()> {
    if before.is_some_and(|b| consent_of(b) == consent_of(after)) {
        return Ok(());
    }
    diesel::insert_into(consent_events::table)
        .values((
            consent_events::victim_id.eq(after.id),
            consent_events::organization_id.eq(after.organization_id),
            consent_events::services.eq(after.consent_services),
            consent_events::share_with_referral_partners.eq(after.consent_share_with_referral_partners),
            consent_events::anonymised_statistics.eq(after.consent_anonymised_statistics),
            consent_events::method.eq(after.consent_method),
            consent_events::given_at.eq(after.consent_recorded_at.unwrap_or(after.updated_at)),
            consent_events::recorded_by.eq(user),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Tells of consent withdrawn by a write (a patch, an import), in its transaction: the owner hears
/// of it by webhook, and when the consent to sharing went, the clients of the receivers holding the
/// identity through live referrals are told to delete their copies. Receivers get no webhook: it
/// goes to their admins' endpoint, and their admins may not read the case (D174).
pub async fn announce_withdrawal(
    conn: &mut AsyncPgConnection,
    before: &VictimRow,
    after: &VictimRow,
) -> QueryResult<()> {
    let withdrawn: Vec<&str> = [
        ("services", before.consent_services, after.consent_services),
        (
            "share_with_referral_partners",
            before.consent_share_with_referral_partners,
            after.consent_share_with_referral_partners,
        ),
        ("anonymised_statistics", before.consent_anonymised_statistics, after.consent_anonymised_statistics),
    ]
    .into_iter()
    .filter_map(|(name, was, is)| (was && !is).then_some(name))
    .collect();
    if withdrawn.is_empty() {
        return Ok(());
    }
    if withdrawn.contains(&"share_with_referral_partners") {
        changes::for_receivers(conn, after.id, Forget::Identity, LeaveReason::ConsentWithdrawn).await?;
    }
    let data = serde_json::json!({ "victim_id": after.id, "withdrawn": withdrawn });
    webhooks::emit(conn, &[before.organization_id], WebhookEvent::ConsentWithdrawn, data).await?;
    Ok(())
}

/// Starts the history of cases written in bulk (the seed), from the consent they hold.
pub async fn record_bulk(conn: &mut AsyncPgConnection, victims: &[Uuid]) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO consent_events (victim_id, organization_id, services, share_with_referral_partners, \
         anonymised_statistics, method, given_at, recorded_by) \
         SELECT id, organization_id, consent_services, consent_share_with_referral_partners, \
         consent_anonymised_statistics, consent_method, coalesce(consent_recorded_at, created_at), created_by \
         FROM victims WHERE id = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(victims)
    .execute(conn)
    .await?;
    Ok(())
}

/// A case's consent history, oldest first, as `principal` sees it: the entries recorded up to
/// `until` (a former owner's hand-over, `access::Visible::until`), each naming who recorded it
/// only where `StaffSight` shows it.
pub async fn history(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    victim: Uuid,
    until: Option<DateTime<Utc>>,
) -> QueryResult<Vec<ConsentEvent>> {
    let mut query = consent_events::table.filter(consent_events::victim_id.eq(victim)).into_boxed();
    if let Some(until) = until {
        query = query.filter(consent_events::recorded_at.le(until));
    }
    let mut items: Vec<ConsentEvent> =
        query.order(consent_events::id.asc()).select(ConsentEvent::as_select()).load(conn).await?;
    let staff = StaffSight::of(conn, principal, items.iter().filter_map(|e| e.recorded_by)).await?;
    items.iter_mut().for_each(|e| e.recorded_by = staff.show_some(e.recorded_by));
    Ok(items)
}

/// A case's consent history, oldest first (whoever may read the case file).
///
/// Each entry is the consent as it stood after a change: what the person agreed to, how and when
/// they gave it, and who recorded it. The current consent is the last entry.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every recorded consent", body = Page<ConsentEvent>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/victims/{id}/consent-history")]
pub async fn consent_history(
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
