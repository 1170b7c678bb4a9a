use actix_web::{HttpResponse, get, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::{AssistanceInput, AssistanceRow, AssistanceView};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::assistance_records;
use crate::domain::Role;
use crate::domain::case_vocab::ReferralStatus;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext, from_value};
use crate::pagination::Page;
use crate::privacy::crypto::Purpose;
use crate::privacy::redaction::Sight;
use crate::state::AppState;
use crate::victims::routes::load_in_sight;

/// Record assistance given to a victim.
///
/// Caseworkers of the victim's organisation, and of an organisation that accepted a referral of
/// the victim, record what their organisation provided.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = AssistanceInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = AssistanceView),
        (status = 200, description = "Already recorded with this body (a retry)", body = AssistanceView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims/{id}/assistance")]
pub async fn create_assistance(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    let victim_id = id.into_inner();
    let digest = crate::idempotency::digest(&state.identity_keys, &body.0);
    let input: AssistanceInput = from_value(body.0)?;
    if input.provided_on > chrono::Utc::now().date_naive() {
        return Err(ApiError::validation("provided_on", "must not be in the future"));
    }
    crate::privacy::redaction::refuse_partners(&principal)?;
    let (victim, sight) = load_in_sight(&state, &mut *state.pool.get().await?, &ctx, &principal, victim_id).await?;
    let org = principal.organization_id;
    let mut conn = state.pool.get().await?;
    if principal.role != Role::Caseworker {
        return Err(ApiError::Forbidden);
    }
    if victim.organization_id != org && !accepted_referral(&mut conn, victim_id, org).await? {
        return Err(ApiError::Forbidden);
    }
    let record_id = input.id.unwrap_or_else(Uuid::now_v7);
    let sealed =
        input.notes.as_ref().map(|n| state.identity_keys.seal(Purpose::AssistanceNotes, record_id, n.as_bytes()));
    let retry_of = |existing: AssistanceRow| {
        if existing.organization_id == org && existing.victim_id == victim_id && existing.create_digest == digest {
            Ok((existing, false))
        } else {
            Err(ApiError::Conflict("A record with this id already exists with other content.".into()))
        }
    };
    let find = async |conn: &mut AsyncPgConnection| -> ApiResult<Option<AssistanceRow>> {
        Ok(assistance_records::table.find(record_id).select(AssistanceRow::as_select()).first(conn).await.optional()?)
    };
    let (row, created) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            if let Some(existing) = find(conn).await? {
                return retry_of(existing);
            }
            let row: Option<AssistanceRow> = diesel::insert_into(assistance_records::table)
                .values((
                    assistance_records::id.eq(record_id),
                    assistance_records::victim_id.eq(victim_id),
                    assistance_records::organization_id.eq(org),
                    assistance_records::kind.eq(input.kind),
                    assistance_records::provided_on.eq(input.provided_on),
                    assistance_records::provided_by.eq(org),
                    assistance_records::notes_key_id.eq(sealed.as_ref().map(|s| s.key_id.clone())),
                    assistance_records::notes_nonce.eq(sealed.as_ref().map(|s| s.nonce.clone())),
                    assistance_records::notes_ciphertext.eq(sealed.as_ref().map(|s| s.ciphertext.clone())),
                    assistance_records::create_digest.eq(&digest),
                    assistance_records::created_by.eq(principal.user_id),
                ))
                .on_conflict(assistance_records::id)
                .do_nothing()
                .returning(AssistanceRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(row) = row else {
                // A concurrent retry created it first.
                return retry_of(find(conn).await?.ok_or(ApiError::NotFound)?);
            };
            let event = Event::new(AuditAction::AssistanceCreated, AuditOutcome::Success)
                .by(&principal)
                .target("victim", victim_id)
                .details(serde_json::json!({ "assistance_id": row.id, "kind": row.kind }));
            audit::record(conn, &ctx, event.clone()).await?;
            if victim.organization_id != org {
                audit::record(conn, &ctx, event.in_org(victim.organization_id)).await?;
            }
            Ok((row, true))
        })
        .await?;
    let view = match sight {
        Sight::Identity(grant) => AssistanceView::with_notes(grant, &row, input.notes.clone()),
        Sight::CaseOnly => AssistanceView::without_notes(&row),
    };
    Ok(crate::idempotency::answer(created).json(view))
}

async fn accepted_referral(conn: &mut AsyncPgConnection, victim: Uuid, org: Uuid) -> ApiResult<bool> {
    use crate::db::schema::referrals;
    let n: i64 = referrals::table
        .filter(referrals::victim_id.eq(victim))
        .filter(referrals::to_organization_id.eq(org))
        .filter(referrals::status.eq(ReferralStatus::Accepted))
        .count()
        .get_result(conn)
        .await?;
    Ok(n > 0)
}

/// List the assistance a victim received, oldest first.
///
/// Whoever may read the victim's case file sees the records; notes only those who may see the
/// identity (reading them is audited).
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All assistance records of the victim", body = Page<AssistanceView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/victims/{id}/assistance")]
pub async fn list_assistance(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let victim_id = id.into_inner();
    crate::privacy::redaction::refuse_partners(&principal)?;
    let (victim, sight) = load_in_sight(&state, &mut *state.pool.get().await?, &ctx, &principal, victim_id).await?;
    let mut conn = state.pool.get().await?;
    let items = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let rows: Vec<AssistanceRow> = assistance_records::table
                .filter(assistance_records::victim_id.eq(victim_id))
                .order((assistance_records::provided_on.asc(), assistance_records::id.asc()))
                .limit(1000)
                .select(AssistanceRow::as_select())
                .load(conn)
                .await?;
            let Some(grant) = sight.grant() else {
                return Ok(rows.iter().map(AssistanceView::without_notes).collect::<Vec<_>>());
            };
            let mut views = Vec::with_capacity(rows.len());
            let mut with_notes = 0;
            for row in &rows {
                let notes = state.identity_keys.open_text(
                    Purpose::AssistanceNotes,
                    row.id,
                    (&row.notes_key_id, &row.notes_nonce, &row.notes_ciphertext),
                )?;
                with_notes += usize::from(notes.is_some());
                views.push(AssistanceView::with_notes(grant, row, notes));
            }
            if with_notes > 0 {
                let event = Event::new(AuditAction::IdentityRead, AuditOutcome::Success)
                    .by(&principal)
                    .target("victim", victim_id)
                    .details(serde_json::json!({ "assistance_notes": with_notes }));
                audit::record_read(conn, &ctx, event, victim.organization_id).await?;
            }
            Ok(views)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: None }))
}
