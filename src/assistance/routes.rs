use actix_web::{HttpResponse, get, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::{Assistance, AssistanceInput, AssistanceRow, AssistanceView, NewAssistance, NotesPart};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::assistance_records;
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext, from_value};
use crate::pagination::Page;
use crate::privacy::crypto::{Purpose, Sealed};
use crate::state::AppState;
use crate::victims::access::{self, Visible};

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
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row: victim, sight, relation, custody } =
        access::load_visible(&state, &mut conn, &ctx, &principal, victim_id).await?;
    let org = principal.organization_id;
    policy::record_assistance(&principal, victim.organization_id, relation, custody).require()?;
    let id = input.id.unwrap_or_else(Uuid::now_v7);
    let sealed = input.notes.as_ref().map(|n| state.identity_keys.seal(Purpose::AssistanceNotes, id, n.as_bytes()));
    let (notes_key_id, notes_nonce, notes_ciphertext) = Sealed::columns(sealed);
    let new = NewAssistance {
        id,
        victim_id,
        organization_id: org,
        kind: input.kind,
        provided_on: input.provided_on,
        provided_by: org,
        notes_key_id,
        notes_nonce,
        notes_ciphertext,
        create_digest: digest,
        created_by: principal.user_id,
    };
    let (row, created) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let (row, created) = crate::idempotency::create_once(conn, &new).await?;
            if !created {
                return Ok((row, false));
            }
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
    let record = Assistance::from(&row);
    let view = match sight.grant() {
        Some(grant) => AssistanceView::disclosed(grant, record, NotesPart { notes: input.notes.clone() }),
        None => AssistanceView::redacted(record),
    };
    Ok(crate::idempotency::answer(created).json(view))
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
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row: victim, sight, .. } =
        access::load_visible(&state, &mut conn, &ctx, &principal, victim_id).await?;
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
                return Ok(rows.iter().map(|row| AssistanceView::redacted(row.into())).collect::<Vec<_>>());
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
                views.push(AssistanceView::disclosed(grant, row.into(), NotesPart { notes }));
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
