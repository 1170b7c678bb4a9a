use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{Assistance, AssistanceInput, AssistanceRow, AssistanceView, NewAssistance, NotesPart};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::assistance_records;
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, RequestContext, from_value};
use crate::pagination::{self, Page};
use crate::privacy::crypto::{Purpose, Sealed};
use crate::privacy::vault::Opens;
use crate::state::AppState;
use crate::victims::access::{self, Visible};
use crate::victims::custody;

/// Record assistance given to a victim.
///
/// Caseworkers of the victim's organisation (of a restricted case, its assigned caseworkers), and
/// of an organisation that accepted a referral of the victim, record what their organisation
/// provided.
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
    let Visible { row: victim, sight, relation, custody, .. } =
        access::load_visible(&state, &mut conn, &ctx, &principal, victim_id).await?;
    let org = principal.organization_id;
    policy::record_assistance(&principal, victim.organization_id, relation, custody).require()?;
    let id = input.id.unwrap_or_else(Uuid::now_v7);
    let sealed = match &input.notes {
        Some(n) => Some(state.vault.sealer(victim_id).await?.seal(Purpose::AssistanceNotes, id, n.as_bytes())),
        None => None,
    };
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
            // Judged again under the case's lock: a concurrent hand-over may have restricted it. A
            // receiver's, under its referrals' locks: one completed, declined or cancelled while
            // this request was on its way no longer lets it record what it provides.
            if victim.organization_id == org {
                let custody = custody::lock(conn, victim_id, principal.user_id, victim.organization_id).await?;
                policy::record_assistance(&principal, victim.organization_id, relation, custody).require()?;
            } else {
                let owner = custody::reference(conn, victim_id).await?;
                let relation = crate::victims::store::relation_locked(conn, victim_id, org).await?;
                // Its referral first: a receiver whose referral ended is refused (403) whether or
                // not the case moved on since (D169).
                policy::record_assistance(&principal, victim.organization_id, relation, custody).require()?;
                if owner != victim.organization_id {
                    return Err(ApiError::Conflict("The case has moved to another organisation meanwhile.".into()));
                }
            }
            if new.notes_ciphertext.is_some() {
                crate::victims::erasure::refuse_text_after_erasure(conn, victim_id, "notes are").await?;
            }
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

/// Which assistance records to list: a page at a time, for sync from a time on.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssistanceQuery {
    /// Recorded at or after this time (for client sync: records are not changed once made).
    pub updated_since: Option<DateTime<Utc>>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// List the assistance a victim received, a page at a time, in a stable order (by id).
///
/// Whoever may read the victim's case file sees the records; notes only those who may see the
/// identity (reading them is audited, one event per page).
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id"), AssistanceQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the victim's assistance records", body = Page<AssistanceView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/victims/{id}/assistance")]
pub async fn list_assistance(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    query: ApiQuery<AssistanceQuery>,
) -> ApiResult<HttpResponse> {
    let victim_id = id.into_inner();
    let q = query.0;
    let limit = pagination::limit(q.limit)?;
    let after: Option<Uuid> = pagination::decode(q.cursor.as_deref())?;
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let mut sql = assistance_records::table
        .filter(assistance_records::victim_id.eq(victim_id))
        .select(AssistanceRow::as_select())
        .into_boxed();
    if let Some(since) = q.updated_since {
        sql = sql.filter(assistance_records::created_at.ge(since));
    }
    if let Some(after) = after {
        sql = sql.filter(assistance_records::id.gt(after));
    }
    let page = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let Visible { row: victim, sight, until, .. } =
                access::load_visible(&state, conn, &ctx, &principal, victim_id).await?;
            let sql = match until {
                Some(until) => sql.filter(assistance_records::created_at.le(until)),
                None => sql,
            };
            let mut rows: Vec<AssistanceRow> =
                sql.order(assistance_records::id.asc()).limit(limit + 1).load(conn).await?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            let next_cursor = if more { rows.last().map(|r| pagination::encode(&r.id)) } else { None };
            let Some(grant) = sight.grant() else {
                let items = rows.iter().map(|row| AssistanceView::redacted(row.into())).collect();
                return Ok(Page { items, next_cursor });
            };
            let mut items = Vec::with_capacity(rows.len());
            let mut with_notes = 0;
            let opener = state.vault.opener(victim_id).await?;
            for row in &rows {
                let notes = opener.open_text(
                    Purpose::AssistanceNotes,
                    row.id,
                    (&row.notes_key_id, &row.notes_nonce, &row.notes_ciphertext),
                )?;
                with_notes += usize::from(notes.is_some());
                items.push(AssistanceView::disclosed(grant, row.into(), NotesPart { notes }));
            }
            if with_notes > 0 {
                let event = Event::new(AuditAction::IdentityRead, AuditOutcome::Success)
                    .by(&principal)
                    .target("victim", victim_id)
                    .details(serde_json::json!({ "assistance_notes": with_notes }));
                audit::record_read(conn, &ctx, event, victim.organization_id).await?;
            }
            Ok(Page { items, next_cursor })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}
