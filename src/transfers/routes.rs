use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use uuid::Uuid;

use super::store;
use super::{NewTransfer, Transfer, TransferInput, TransferRow};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{transfers, victims};
use crate::domain::case_vocab::{CaseStatus, TransferStatus};
use crate::domain::policy::{self, Custody};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, RequestContext, from_value};
use crate::pagination::{self, Page};
use crate::privacy::staff::StaffSight;
use crate::referrals::DeclineInput;
use crate::referrals::routes::Direction;
use crate::state::AppState;
use crate::victims::access::{self, Visible};
use crate::victims::custody;
use crate::webhooks::{self, WebhookEvent};

/// What a webhook is told of a transfer: ids and codes.
fn webhook_data(t: &TransferRow) -> serde_json::Value {
    serde_json::json!({
        "transfer_id": t.id, "victim_id": t.victim_id, "from_organization_id": t.from_organization_id,
        "to_organization_id": t.to_organization_id, "reason": t.reason, "status": t.status,
        "to_case_number": t.to_case_number,
    })
}

fn both_logs(event: Event, t: &TransferRow) -> [Event; 2] {
    [event.clone().in_org(t.from_organization_id), event.in_org(t.to_organization_id)]
}

/// What stands in the way of moving a case, judged under its lock: closed, another transfer
/// waiting, the sender's live referrals, or no consent to sharing with referral partners (409).
async fn movable(conn: &mut AsyncPgConnection, victim: Uuid, from: Uuid, waiting_ok: bool) -> ApiResult<()> {
    let (status, consent): (CaseStatus, bool) = victims::table
        .find(victim)
        .select((victims::status, victims::consent_share_with_referral_partners))
        .first(conn)
        .await?;
    let conflict = |why: &str| Err(ApiError::Conflict(why.into()));
    if !consent {
        return conflict("The victim has not consented to sharing with referral partners (consent on the case file).");
    }
    if status.is_closed() {
        return conflict("The case is closed: reopen it to transfer it.");
    }
    if !waiting_ok && store::has_pending(conn, victim).await? {
        return conflict("A transfer of this case is already waiting.");
    }
    if store::has_live_referrals(conn, victim, from).await? {
        return conflict("The case has pending or accepted referrals: complete or cancel them before it moves.");
    }
    Ok(())
}

/// Transfer a case to another organisation (caseworkers who may write it; of a restricted case,
/// its assigned caseworkers).
///
/// Needs the victim's consent to sharing with referral partners, an open case and no live
/// referrals (409 otherwise). Nothing moves until the receiver accepts; the identity then goes
/// with the case, and the sender keeps the case file without it.
#[utoipa::path(
    tag = "transfers",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = TransferInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Asked (pending)", body = Transfer),
        (status = 200, description = "Already asked with this body (a retry)", body = Transfer),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims/{id}/transfers")]
pub async fn create_transfer(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    let victim_id = id.into_inner();
    let digest = crate::idempotency::digest(&state.identity_keys, &body.0);
    let input: TransferInput = from_value(body.0)?;
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row: victim, custody, .. } =
        access::load_visible(&state, &mut conn, &ctx, &principal, victim_id).await?;
    // A retry is recognised before anything else is judged: after the transfer went through, its
    // sender no longer writes the case, yet asked for exactly this.
    if let Some(id) = input.id
        && let Some(existing) = store::find(&mut conn, id).await?
    {
        let retry = existing.from_organization_id == principal.organization_id
            && existing.victim_id == victim_id
            && existing.create_digest == digest;
        if !retry {
            return Err(ApiError::Conflict("A record with this id already exists with other content.".into()));
        }
        let view = Transfer::view(&mut conn, &principal, existing).await?;
        return Ok(crate::idempotency::answer(false).json(view));
    }
    policy::write_victim(&principal, victim.organization_id, custody).require()?;
    if input.to_organization_id == victim.organization_id {
        return Err(ApiError::validation("to_organization_id", "must be another organisation"));
    }
    if crate::orgs::find(&mut conn, input.to_organization_id).await?.is_none() {
        return Err(ApiError::validation("to_organization_id", "is not an organisation"));
    }
    let new = NewTransfer {
        id: input.id.unwrap_or_else(Uuid::now_v7),
        victim_id,
        from_organization_id: victim.organization_id,
        from_user_id: principal.user_id,
        to_organization_id: input.to_organization_id,
        reason: input.reason,
        from_case_number: victim.case_number,
        create_digest: digest,
    };
    let (row, created) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let custody = custody::lock(conn, victim_id, principal.user_id, victim.organization_id).await?;
            policy::write_victim(&principal, victim.organization_id, custody).require()?;
            // A retry is answered with what it asked for, whatever has changed since.
            if crate::idempotency::CreateOnce::find(&new, conn).await?.is_none() {
                movable(conn, victim_id, victim.organization_id, false).await?;
            }
            let (row, created) = crate::idempotency::create_once(conn, &new).await?;
            if created {
                let event = Event::new(AuditAction::TransferCreated, AuditOutcome::Success)
                    .actor(principal.user_id, principal.role)
                    .target("transfer", row.id)
                    .details(serde_json::json!({ "victim_id": victim_id, "reason": row.reason }));
                for event in both_logs(event, &row) {
                    audit::record(conn, &ctx, event).await?;
                }
                let parties = [row.to_organization_id, row.from_organization_id];
                webhooks::emit(conn, &parties, WebhookEvent::TransferCreated, webhook_data(&row)).await?;
            }
            Ok((row, created))
        })
        .await?;
    let view = Transfer::view(&mut conn, &principal, row).await?;
    Ok(crate::idempotency::answer(created).json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransferQuery {
    #[param(inline)]
    pub direction: Option<Direction>,
    pub status: Option<TransferStatus>,
    pub victim_id: Option<Uuid>,
    /// Changed at or after this time (asked or decided; for client sync).
    pub updated_since: Option<DateTime<Utc>>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// List transfers your organisation asked for or received (host auditors: all).
#[utoipa::path(
    tag = "transfers",
    params(TransferQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of transfers", body = Page<Transfer>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/transfers")]
pub async fn list_transfers(
    state: web::Data<AppState>,
    principal: Principal,
    query: ApiQuery<TransferQuery>,
) -> ApiResult<HttpResponse> {
    let scope = policy::referral_list_scope(&principal)?;
    let q = query.0;
    let limit = pagination::limit(q.limit)?;
    let after: Option<Uuid> = pagination::decode(q.cursor.as_deref())?;
    let org = principal.organization_id;
    let mut sql = transfers::table.select(TransferRow::as_select()).into_boxed();
    sql = match (q.direction, scope) {
        (Some(Direction::Incoming), _) => sql.filter(transfers::to_organization_id.eq(org)),
        (Some(Direction::Outgoing), _) => sql.filter(transfers::from_organization_id.eq(org)),
        (None, None) => sql,
        (None, Some(org)) => {
            sql.filter(transfers::to_organization_id.eq(org).or(transfers::from_organization_id.eq(org)))
        }
    };
    if let Some(status) = q.status {
        sql = sql.filter(transfers::status.eq(status));
    }
    if let Some(victim) = q.victim_id {
        sql = sql.filter(transfers::victim_id.eq(victim));
    }
    if let Some(since) = q.updated_since {
        sql = sql.filter(transfers::updated_at.ge(since));
    }
    if let Some(after) = after {
        sql = sql.filter(transfers::id.gt(after));
    }
    let mut conn = state.pool.get().await?;
    let rows: Vec<TransferRow> = sql.order(transfers::id.asc()).limit(limit + 1).load(&mut conn).await?;
    let staff = StaffSight::of(&mut conn, &principal, rows.iter().flat_map(Transfer::staff)).await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |r| r.id, |r| Transfer::of(r, &staff))))
}

/// Read a transfer (both organisations' staff, host auditors).
#[utoipa::path(
    tag = "transfers",
    params(("id" = Uuid, Path, description = "Transfer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The transfer", body = Transfer),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/transfers/{id}")]
pub async fn get_transfer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let row = store::find(&mut conn, id.into_inner()).await?.ok_or(ApiError::NotFound)?;
    policy::see_transfer(&principal, row.from_organization_id, row.to_organization_id).require()?;
    Ok(HttpResponse::Ok().json(Transfer::view(&mut conn, &principal, row).await?))
}

/// Which way a transfer is decided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    Accept,
    Decline,
    Cancel,
}

/// A decision on a transfer already decided.
fn no_longer_waiting(status: TransferStatus) -> ApiError {
    ApiError::Conflict(format!("This transfer is {status}; it is no longer waiting."))
}

async fn decide(
    state: &AppState,
    principal: &Principal,
    ctx: &RequestContext,
    id: Uuid,
    decision: Decision,
    decline: Option<DeclineInput>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(principal)?;
    let mut conn = state.pool.get().await?;
    // Seen before it is locked: nobody waits on, or times, a transfer they may not see.
    let seen = store::find(&mut conn, id).await?.ok_or(ApiError::NotFound)?;
    policy::see_transfer(principal, seen.from_organization_id, seen.to_organization_id).require()?;
    // And its side, before the case is locked: the other party is refused without waiting on the
    // case, and without a 409 telling it the case moved on since (D169).
    match decision {
        Decision::Accept | Decision::Decline => policy::receive_transfer(principal, seen.to_organization_id),
        Decision::Cancel => policy::write_victim(principal, seen.from_organization_id, Custody::NOT_YET_READ),
    }
    .require()?;
    // A transfer decided never changes again: refused before the case is locked, so a sender
    // whose case moved on since does not wait on the new owner's writers.
    if seen.status != TransferStatus::Pending {
        return Err(no_longer_waiting(seen.status));
    }
    let row = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let t = store::lock(conn, id).await?.ok_or(ApiError::NotFound)?;
            match decision {
                Decision::Accept | Decision::Decline => policy::receive_transfer(principal, t.to_organization_id),
                // The sender's cancel is a write on its case: a restricted case's, its assigned
                // caseworkers'.
                Decision::Cancel => {
                    let custody = custody::lock(conn, t.victim_id, principal.user_id, t.from_organization_id).await?;
                    policy::write_victim(principal, t.from_organization_id, custody)
                }
            }
            .require()?;
            if t.status != TransferStatus::Pending {
                return Err(no_longer_waiting(t.status));
            }
            let (status, action, number) = match decision {
                Decision::Accept => {
                    custody::lock(conn, t.victim_id, principal.user_id, t.from_organization_id).await?;
                    // The receiver sees the request, not the person (D108): why the case cannot
                    // move (consent withdrawn, closed, referred elsewhere) is the sender's to say.
                    movable(conn, t.victim_id, t.from_organization_id, true).await.map_err(
                        |refusal| match refusal {
                            ApiError::Conflict(_) => ApiError::Conflict(
                                "The case can no longer be transferred as asked; the sending organisation can say why."
                                    .into(),
                            ),
                            other => other,
                        },
                    )?;
                    let number = store::hand_over(conn, &t, principal.user_id).await?;
                    (TransferStatus::Accepted, AuditAction::TransferAccepted, Some(number))
                }
                Decision::Decline => (TransferStatus::Declined, AuditAction::TransferDeclined, None),
                Decision::Cancel => (TransferStatus::Cancelled, AuditAction::TransferCancelled, None),
            };
            let reason = decline.map(|d| d.reason);
            let row = store::decide(conn, id, status, reason, number, principal.user_id).await?;
            let event = Event::new(action, AuditOutcome::Success)
                .actor(principal.user_id, principal.role)
                .target("transfer", id)
                .details(serde_json::json!({ "victim_id": row.victim_id, "status": row.status }));
            for event in both_logs(event, &row) {
                audit::record(conn, ctx, event).await?;
            }
            let told = match decision {
                Decision::Accept => WebhookEvent::TransferAccepted,
                Decision::Decline => WebhookEvent::TransferDeclined,
                Decision::Cancel => WebhookEvent::TransferCancelled,
            };
            let parties = [row.to_organization_id, row.from_organization_id];
            webhooks::emit(conn, &parties, told, webhook_data(&row)).await?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Transfer::view(&mut conn, principal, row).await?))
}

/// Accept a pending transfer (caseworkers of the receiving organisation).
///
/// Your organisation owns the case from now on, under a case number of its own, with you as its
/// assigned caseworker; the sender's open tasks end, and the sender keeps the case file without
/// the identity.
#[utoipa::path(
    tag = "transfers",
    params(("id" = Uuid, Path, description = "Transfer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The transfer, accepted", body = Transfer),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
    )
)]
#[post("/transfers/{id}/accept")]
pub async fn accept_transfer(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    decide(&state, &principal, &ctx, id.into_inner(), Decision::Accept, None).await
}

/// Decline a pending transfer, with a reason code (caseworkers of the receiving organisation).
#[utoipa::path(
    tag = "transfers",
    params(("id" = Uuid, Path, description = "Transfer id")),
    request_body = DeclineInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The transfer, declined", body = Transfer),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/transfers/{id}/decline")]
pub async fn decline_transfer(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<DeclineInput>,
) -> ApiResult<HttpResponse> {
    decide(&state, &principal, &ctx, id.into_inner(), Decision::Decline, Some(body.0)).await
}

/// Cancel a pending transfer (caseworkers of the sending organisation who may write the case).
#[utoipa::path(
    tag = "transfers",
    params(("id" = Uuid, Path, description = "Transfer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The transfer, cancelled", body = Transfer),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
    )
)]
#[post("/transfers/{id}/cancel")]
pub async fn cancel_transfer(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    decide(&state, &principal, &ctx, id.into_inner(), Decision::Cancel, None).await
}
