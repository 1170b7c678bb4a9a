//! Referrals to providers outside Haven (a clinic, a lawyer, a consulate): the case's organisation
//! records whom it sent the person to, for what and how it went. Nothing is shared: the provider
//! has no account here and Haven sends it nothing, so no consent to sharing is asked and there is
//! no identity-grade text (`GET|POST /victims/{id}/external-referrals`, `PATCH
//! /external-referrals/{id}`).

use actix_web::{HttpResponse, get, http::header, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::external_referrals as ext;
use crate::domain::CountryCode;
use crate::domain::case_vocab::ServiceKind;
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IfMatch, RequestContext, etag, from_value};
use crate::pagination::Page;
use crate::privacy::staff::StaffSight;
use crate::state::AppState;
use crate::text_enum;
use crate::victims::access::{self, CaseRecord, Visible};
use crate::victims::custody;

text_enum! {
    /// How a referral outside Haven went, as the referring caseworker learnt it.
    pub enum ExternalStatus {
        Referred => "referred",
        Completed => "completed",
        NotProvided => "not_provided",
        Cancelled => "cancelled",
    }
}

/// A referral to a provider outside Haven, as a client records it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalReferralInput {
    /// Client-chosen id; repeating a create with the same id and body returns the record.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// The provider's name (an organisation or service, never anything about the person).
    #[schema(min_length = 1, max_length = 200)]
    pub provider_name: String,
    /// Where the provider is (ISO 3166-1 alpha-3).
    pub provider_country: CountryCode,
    pub service: ServiceKind,
    /// When the person was referred (not in the future).
    pub referred_on: NaiveDate,
}

/// Changes to a referral outside Haven; at least one field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct ExternalReferralPatch {
    #[serde(default)]
    #[schema(value_type = ExternalStatus)]
    pub status: Option<ExternalStatus>,
    #[serde(default)]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub provider_name: Option<String>,
}

/// A referral outside Haven as stored.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = ext)]
pub struct ExternalReferralRow {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub organization_id: Uuid,
    pub provider_name: String,
    pub provider_country: CountryCode,
    pub service: ServiceKind,
    pub referred_on: NaiveDate,
    pub status: ExternalStatus,
    pub version: i32,
    pub create_digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalReferral {
    pub id: Uuid,
    pub victim_id: Uuid,
    /// The organisation that made it (the case's).
    pub organization_id: Uuid,
    pub provider_name: String,
    pub provider_country: CountryCode,
    pub service: ServiceKind,
    pub referred_on: NaiveDate,
    pub status: ExternalStatus,
    /// Also its `ETag` (send it as `If-Match` to change it).
    pub version: i32,
    pub created_at: DateTime<Utc>,
    /// Who recorded it; absent for other organisations' callers but host auditors (who works a case
    /// is its organisation's to know).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Uuid>,
    pub updated_at: DateTime<Utc>,
}

impl ExternalReferral {
    fn of(r: &ExternalReferralRow, staff: &StaffSight) -> ExternalReferral {
        ExternalReferral {
            id: r.id,
            victim_id: r.victim_id,
            organization_id: r.organization_id,
            provider_name: r.provider_name.clone(),
            provider_country: r.provider_country,
            service: r.service,
            referred_on: r.referred_on,
            status: r.status,
            version: r.version,
            created_at: r.created_at,
            created_by: staff.show(r.created_by),
            updated_at: r.updated_at,
        }
    }

    /// The views of `rows` as `principal` may see them.
    pub async fn views(
        conn: &mut AsyncPgConnection,
        principal: &Principal,
        rows: &[ExternalReferralRow],
    ) -> QueryResult<Vec<ExternalReferral>> {
        let staff = StaffSight::of(conn, principal, rows.iter().map(|r| r.created_by)).await?;
        Ok(rows.iter().map(|r| ExternalReferral::of(r, &staff)).collect())
    }

    async fn view(
        conn: &mut AsyncPgConnection,
        principal: &Principal,
        row: &ExternalReferralRow,
    ) -> QueryResult<ExternalReferral> {
        let mut views = Self::views(conn, principal, std::slice::from_ref(row)).await?;
        Ok(views.remove(0))
    }
}

/// Record a referral to a provider outside Haven (caseworkers who may write the case; not on a
/// closed case). Nothing is shared with the provider through Haven.
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = ExternalReferralInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = ExternalReferral, headers(("ETag" = String, description = "Version"))),
        (status = 200, description = "Already recorded with this body (a retry)", body = ExternalReferral, headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims/{id}/external-referrals")]
pub async fn create_external_referral(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    let victim_id = id.into_inner();
    let digest = crate::idempotency::digest(&state.identity_keys, &body.0);
    let input: ExternalReferralInput = from_value(body.0)?;
    if input.referred_on > Utc::now().date_naive() {
        return Err(ApiError::validation("referred_on", "must not be in the future"));
    }
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row: victim, custody, .. } =
        access::load_visible(&state, &mut conn, &ctx, &principal, victim_id).await?;
    policy::write_victim(&principal, victim.organization_id, custody).require()?;
    let id = input.id.unwrap_or_else(Uuid::now_v7);
    let (row, created) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            access::lock_open_case(conn, &principal, victim_id, victim.organization_id).await?;
            if let Some(existing) = find(conn, id).await? {
                let retry = existing.organization_id == victim.organization_id
                    && existing.victim_id == victim_id
                    && existing.create_digest == digest;
                return if retry {
                    Ok((existing, false))
                } else {
                    Err(ApiError::Conflict("A record with this id already exists with other content.".into()))
                };
            }
            let row: ExternalReferralRow = diesel::insert_into(ext::table)
                .values((
                    ext::id.eq(id),
                    ext::victim_id.eq(victim_id),
                    ext::organization_id.eq(victim.organization_id),
                    ext::provider_name.eq(&input.provider_name),
                    ext::provider_country.eq(input.provider_country),
                    ext::service.eq(input.service),
                    ext::referred_on.eq(input.referred_on),
                    ext::create_digest.eq(&digest),
                    ext::created_by.eq(principal.user_id),
                    ext::updated_by.eq(principal.user_id),
                ))
                .returning(ExternalReferralRow::as_returning())
                .get_result(conn)
                .await?;
            let event = Event::new(AuditAction::ExternalReferralCreated, AuditOutcome::Success)
                .by(&principal)
                .target("victim", victim_id)
                .details(serde_json::json!({ "external_referral_id": id, "service": row.service }));
            audit::record(conn, &ctx, event).await?;
            Ok((row, true))
        })
        .await?;
    let view = ExternalReferral::view(&mut conn, &principal, &row).await?;
    Ok(crate::idempotency::answer(created).insert_header((header::ETAG, etag(row.version))).json(view))
}

async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<ExternalReferralRow>> {
    ext::table.find(id).select(ExternalReferralRow::as_select()).first(conn).await.optional()
}

/// A referral outside Haven and its case, as the caller may see them (404 for one of a case they
/// may not see, in the time of an unknown id, and for a former owner's of one made after its
/// hand-over).
async fn load(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<(ExternalReferralRow, Visible)> {
    let visible = access::load_record_case(state, conn, ctx, principal, CaseRecord::ExternalReferral, id).await?;
    match find(conn, id).await? {
        Some(row) if row.victim_id == visible.row.id && visible.holds(row.updated_at) => Ok((row, visible)),
        _ => Err(ApiError::NotFound),
    }
}

/// A case's referrals outside Haven, oldest first: those written (made or last changed) up to
/// `until` when one is given (a former owner's hand-over, `access::Visible::until`).
pub async fn for_victim(
    conn: &mut AsyncPgConnection,
    victim: Uuid,
    until: Option<DateTime<Utc>>,
) -> QueryResult<Vec<ExternalReferralRow>> {
    let mut query = ext::table.filter(ext::victim_id.eq(victim)).into_boxed();
    if let Some(until) = until {
        query = query.filter(ext::updated_at.le(until));
    }
    query.order(ext::id.asc()).select(ExternalReferralRow::as_select()).load(conn).await
}

/// A case's referrals outside Haven, oldest first (whoever may read the case file).
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "Victim id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The case's referrals outside Haven", body = Page<ExternalReferral>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/victims/{id}/external-referrals")]
pub async fn list_external_referrals(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    let items = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let Visible { row, until, .. } = access::load_visible(&state, conn, &ctx, &principal, id).await?;
            let rows = for_victim(conn, row.id, until).await?;
            Ok(ExternalReferral::views(conn, &principal, &rows).await?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: None }))
}

/// Read one referral outside Haven (whoever may read its case).
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "External referral id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The referral outside Haven", body = ExternalReferral, headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/external-referrals/{id}")]
pub async fn get_external_referral(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let id = id.into_inner();
    let (row, view) = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let (row, _) = load(&state, conn, &ctx, &principal, id).await?;
            let view = ExternalReferral::view(conn, &principal, &row).await?;
            Ok((row, view))
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(row.version))).json(view))
}

/// Record how a referral outside Haven went, or correct the provider's name (caseworkers who may
/// write the case). Requires `If-Match`.
#[utoipa::path(
    tag = "referrals",
    params(
        ("id" = Uuid, Path, description = "External referral id"),
        ("If-Match" = String, Header, description = "ETag of the version you read, e.g. \"3\" (a list of them, or `*` for whatever version exists)"),
    ),
    request_body = ExternalReferralPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = ExternalReferral, headers(("ETag" = String, description = "New version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 412, response = crate::openapi::responses::PreconditionFailed),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 428, response = crate::openapi::responses::PreconditionRequired),
    )
)]
#[patch("/external-referrals/{id}")]
pub async fn update_external_referral(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ApiJson<ExternalReferralPatch>,
) -> ApiResult<HttpResponse> {
    let patch = body.0;
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let (current, Visible { row: victim, custody, .. }) =
        load(&state, &mut conn, &ctx, &principal, id.into_inner()).await?;
    policy::write_victim(&principal, victim.organization_id, custody).require()?;
    let version = if_match.against(current.version)?;
    let updated = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let custody = custody::lock(conn, victim.id, principal.user_id, victim.organization_id).await?;
            policy::write_victim(&principal, victim.organization_id, custody).require()?;
            let updated: ExternalReferralRow =
                diesel::update(ext::table.find(current.id).filter(ext::version.eq(version)))
                    .set((
                        patch.status.map(|s| ext::status.eq(s)),
                        patch.provider_name.as_ref().map(|n| ext::provider_name.eq(n)),
                        ext::version.eq(ext::version + 1),
                        ext::updated_at.eq(diesel::dsl::now),
                        ext::updated_by.eq(principal.user_id),
                    ))
                    .returning(ExternalReferralRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?
                    .ok_or(ApiError::PreconditionFailed)?;
            let event = Event::new(AuditAction::ExternalReferralUpdated, AuditOutcome::Success)
                .by(&principal)
                .target("victim", victim.id)
                .details(serde_json::json!({ "external_referral_id": current.id, "status": updated.status }));
            audit::record(conn, &ctx, event).await?;
            Ok(updated)
        })
        .await?;
    let view = ExternalReferral::view(&mut conn, &principal, &updated).await?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(updated.version))).json(view))
}
