use actix_web::{HttpResponse, get, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{DeclineInput, NewReferral, ReasonPart, Referral, ReferralInput, ReferralRow, ReferralView, Transition};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{referrals, victims};
use crate::domain::case_vocab::ReferralStatus;
use crate::domain::policy::{self, Custody, Relation};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, RequestContext, from_value};
use crate::pagination::{self, Page};
use crate::privacy::crypto::{Purpose, Sealed};
use crate::privacy::redaction;
use crate::privacy::vault::Opens;
use crate::state::AppState;
use crate::victims::access::{self, Visible};
use crate::victims::custody;
use crate::webhooks::{self, WebhookEvent};

/// The view of one referral; the reason (identity-grade) only for caseworkers entitled to the
/// victim's identity through this referral, and reading it is audited.
async fn view(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    p: &Principal,
    row: &ReferralRow,
) -> ApiResult<ReferralView> {
    // What the referral gives the receiver is the policy's one rule, with the victim's consent to
    // sharing as it stands now. The owner is whoever holds the case now: a sender that has since
    // transferred the case away no longer reads what identifies the person, its own reason included.
    let (owner, consent): (Uuid, bool) = crate::db::schema::victims::table
        .find(row.victim_id)
        .select((
            crate::db::schema::victims::organization_id,
            crate::db::schema::victims::consent_share_with_referral_partners,
        ))
        .first(conn)
        .await?;
    let relation = if p.organization_id == row.to_organization_id {
        policy::relation([(row.status, row.identity_shared)], consent)
    } else {
        Relation::None
    };
    // On the owner's side a restricted case's reason, like its identity, is for its assigned
    // caseworkers.
    let custody = match p.organization_id == owner {
        true => custody::custody_of(conn, &[row.victim_id], p.user_id).await?(row.victim_id),
        false => Custody::default(),
    };
    let grant = match redaction::sight(p, row.victim_id, owner, relation, custody) {
        Ok(sight) => sight.grant(),
        Err(_) => None,
    };
    let Some(grant) = grant else { return Ok(ReferralView::redacted(row.into())) };
    let reason = state.vault.opener(row.victim_id).await?.open_text(
        Purpose::ReferralReason,
        row.id,
        (&row.reason_key_id, &row.reason_nonce, &row.reason_ciphertext),
    )?;
    if reason.is_some() {
        let event = Event::new(AuditAction::IdentityRead, AuditOutcome::Success)
            .by(p)
            .target("referral", row.id)
            .details(serde_json::json!({ "victim_id": row.victim_id, "referral_reason": true }));
        audit::record_read(conn, ctx, event, owner).await?;
    }
    Ok(ReferralView::disclosed(grant, row.into(), ReasonPart { reason }))
}

/// What a webhook is told of a referral: ids and codes, never its reason.
fn webhook_data(row: &ReferralRow) -> serde_json::Value {
    serde_json::json!({
        "referral_id": row.id, "victim_id": row.victim_id, "from_organization_id": row.from_organization_id,
        "to_organization_id": row.to_organization_id, "service": row.service, "urgency": row.urgency,
        "status": row.status, "identity_shared": row.identity_shared,
    })
}

fn both_logs(event: Event, row: &ReferralRow) -> [Event; 2] {
    [event.clone().in_org(row.from_organization_id), event.in_org(row.to_organization_id)]
}

/// Refer a victim to another organisation for a service (caseworkers of the victim's organisation;
/// of a restricted case, its assigned caseworkers).
///
/// The identity is shared with the receiving organisation's caseworkers only if the victim
/// consented to sharing with referral partners (`identity_shared` says which). A victim whose case
/// file records no consent to services (`consent.services`) is not referred: 422 on `victim_id`.
#[utoipa::path(
    tag = "referrals",
    request_body = ReferralInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Referred (pending)", body = ReferralView),
        (status = 200, description = "Already created with this body (a retry)", body = ReferralView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/referrals")]
pub async fn create_referral(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let digest = crate::idempotency::digest(&state.identity_keys, &body.0);
    let input: ReferralInput = from_value(body.0)?;
    let mut conn = state.pool.get().await?;
    let Visible { row: victim, custody, .. } =
        access::load_visible(&state, &mut conn, &ctx, &principal, input.victim_id).await?;
    policy::write_victim(&principal, victim.organization_id, custody).require()?;
    if !victim.consent_services {
        return Err(no_consent_to_services());
    }
    let org = principal.organization_id;
    if input.to_organization_id == org {
        return Err(ApiError::validation("to_organization_id", "must be another organisation"));
    }
    if crate::orgs::find(&mut conn, input.to_organization_id).await?.is_none() {
        return Err(ApiError::validation("to_organization_id", "is not an organisation"));
    }
    let id = input.id.unwrap_or_else(Uuid::now_v7);
    let sealed = match &input.reason {
        Some(r) => Some(state.vault.sealer(victim.id).await?.seal(Purpose::ReferralReason, id, r.as_bytes())),
        None => None,
    };
    let (reason_key_id, reason_nonce, reason_ciphertext) = Sealed::columns(sealed);
    let mut new = NewReferral {
        id,
        victim_id: victim.id,
        from_organization_id: org,
        from_user_id: principal.user_id,
        to_organization_id: input.to_organization_id,
        service: input.service,
        urgency: input.urgency,
        reason_key_id,
        reason_nonce,
        reason_ciphertext,
        status: ReferralStatus::Pending,
        identity_shared: victim.consent_share_with_referral_partners,
        create_digest: digest,
    };
    let (row, created) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            // Judged again under the case's lock: a concurrent hand-over may have restricted it,
            // and a withdrawal of consent committed meanwhile stands (D153).
            let custody = custody::lock(conn, victim.id, principal.user_id, victim.organization_id).await?;
            policy::write_victim(&principal, victim.organization_id, custody).require()?;
            let (services, share): (bool, bool) = victims::table
                .find(victim.id)
                .select((victims::consent_services, victims::consent_share_with_referral_partners))
                .first(conn)
                .await?;
            if !services {
                return Err(no_consent_to_services());
            }
            // A reason on a case erased since its closure would stay for good (D156).
            if new.reason_ciphertext.is_some() {
                crate::victims::erasure::refuse_text_after_erasure(conn, victim.id, "a reason is").await?;
            }
            new.identity_shared = share;
            let (row, created) = crate::idempotency::create_once(conn, &new).await?;
            if !created {
                return Ok((row, false));
            }
            let event = Event::new(AuditAction::ReferralCreated, AuditOutcome::Success)
                .actor(principal.user_id, principal.role)
                .target("referral", row.id)
                .details(serde_json::json!({ "victim_id": row.victim_id, "identity_shared": row.identity_shared }));
            for event in both_logs(event, &row) {
                audit::record(conn, &ctx, event).await?;
            }
            let parties = [row.to_organization_id, row.from_organization_id];
            webhooks::emit(conn, &parties, WebhookEvent::ReferralCreated, webhook_data(&row)).await?;
            Ok((row, true))
        })
        .await?;
    let view = view(&state, &mut conn, &ctx, &principal, &row).await?;
    Ok(crate::idempotency::answer(created).json(view))
}

/// A referral is a request for a service to the person: without their consent to services it is
/// not made (record the consent on the case file first).
fn no_consent_to_services() -> ApiError {
    ApiError::validation(
        "victim_id",
        "the victim has not consented to services (consent.services on the case file): record their consent before referring them",
    )
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Referrals your organisation received.
    Incoming,
    /// Referrals your organisation made.
    Outgoing,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReferralQuery {
    #[param(inline)]
    pub direction: Option<Direction>,
    pub status: Option<ReferralStatus>,
    pub victim_id: Option<Uuid>,
    /// Changed at or after this time (created or moved on; for client sync).
    pub updated_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// List referrals your organisation made or received (host auditors: all), without reasons.
#[utoipa::path(
    tag = "referrals",
    params(ReferralQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of referrals", body = Page<ReferralView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/referrals")]
pub async fn list_referrals(
    state: web::Data<AppState>,
    principal: Principal,
    query: ApiQuery<ReferralQuery>,
) -> ApiResult<HttpResponse> {
    let scope = policy::referral_list_scope(&principal)?;
    let q = query.0;
    let limit = pagination::limit(q.limit)?;
    let after: Option<Uuid> = pagination::decode(q.cursor.as_deref())?;
    let org = principal.organization_id;
    let mut sql = referrals::table.select(ReferralRow::as_select()).into_boxed();
    sql = match (q.direction, scope) {
        (Some(Direction::Incoming), _) => sql.filter(referrals::to_organization_id.eq(org)),
        (Some(Direction::Outgoing), _) => sql.filter(referrals::from_organization_id.eq(org)),
        (None, None) => sql,
        (None, Some(org)) => {
            sql.filter(referrals::to_organization_id.eq(org).or(referrals::from_organization_id.eq(org)))
        }
    };
    if let Some(status) = q.status {
        sql = sql.filter(referrals::status.eq(status));
    }
    if let Some(victim) = q.victim_id {
        sql = sql.filter(referrals::victim_id.eq(victim));
    }
    if let Some(since) = q.updated_since {
        sql = sql.filter(referrals::updated_at.ge(since));
    }
    if let Some(after) = after {
        sql = sql.filter(referrals::id.gt(after));
    }
    let mut conn = state.pool.get().await?;
    let rows: Vec<ReferralRow> = sql.order(referrals::id.asc()).limit(limit + 1).load(&mut conn).await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |r| r.id, |r| ReferralView::redacted(Referral::from(&r)))))
}

/// Read a referral and its history. Caseworkers entitled to the victim's identity also get the
/// reason.
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "Referral id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The referral", body = ReferralView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/referrals/{id}")]
pub async fn get_referral(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    let view = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let row = super::find(conn, id).await?.ok_or(ApiError::NotFound)?;
            policy::see_referral(&principal, row.from_organization_id, row.to_organization_id).require()?;
            view(&state, conn, &ctx, &principal, &row).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A move the referral's status does not allow.
fn not_from(status: ReferralStatus) -> ApiError {
    ApiError::Conflict(format!("This referral is {status}; that transition is not allowed from it."))
}

async fn transition(
    state: &AppState,
    principal: &Principal,
    ctx: &RequestContext,
    id: Uuid,
    step: Transition,
    decline: Option<DeclineInput>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(principal)?;
    let mut conn = state.pool.get().await?;
    // Seen before anything is locked: nobody waits on, or times, a referral they may not see. Its
    // case and parties never change, so what is judged here holds under the lock.
    let seen = super::find(&mut conn, id).await?.ok_or(ApiError::NotFound)?;
    policy::see_referral(principal, seen.from_organization_id, seen.to_organization_id).require()?;
    // And its side, before the case is locked: the other party (a receiver whose referral ended
    // among them) is refused without waiting on the case, and without a 409 telling it the case
    // moved on (D169).
    let side = if step.by_receiver() { seen.to_organization_id } else { seen.from_organization_id };
    policy::move_referral(principal, side, Custody::NOT_YET_READ).require()?;
    // A referral that ended never moves again: refused before the case is locked, so a sender
    // whose case moved on since does not wait on the new owner's writers.
    if !policy::LIVE.contains(&seen.status) {
        return Err(not_from(seen.status));
    }
    let row = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            // The sender's moves are writes on its case: a restricted case's, its assigned
            // caseworkers'. The receiver's are its own business, but they write rows that name
            // the case. Either way the case is locked before the referral, the order an erasure
            // and the other party take them in: the other order deadlocks with them.
            let custody = match step.by_receiver() {
                true => custody::reference(conn, seen.victim_id).await.map(|_| Custody::default())?,
                false => custody::lock(conn, seen.victim_id, principal.user_id, seen.from_organization_id).await?,
            };
            let row: ReferralRow = referrals::table
                .find(id)
                .select(ReferralRow::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?
                .ok_or(ApiError::NotFound)?;
            let side = if step.by_receiver() { row.to_organization_id } else { row.from_organization_id };
            policy::move_referral(principal, side, custody).require()?;
            let to = step.apply(row.status).ok_or_else(|| not_from(row.status))?;
            // A referral is a request for a service: not taken up once the person has withdrawn
            // their consent to services (read under the case's lock, after any withdrawal).
            if step == Transition::Accept {
                let services: bool =
                    victims::table.find(seen.victim_id).select(victims::consent_services).first(conn).await?;
                if !services {
                    return Err(ApiError::Conflict(
                        "The person has withdrawn their consent to services since this referral was made: it cannot be accepted, and the referring organisation may cancel it."
                            .into(),
                    ));
                }
            }
            let now = Some(chrono::Utc::now());
            let at = |t: Transition| if step == t { now } else { None };
            let row: ReferralRow = diesel::update(referrals::table.find(id))
                .set((
                    referrals::status.eq(to),
                    referrals::version.eq(referrals::version + 1),
                    referrals::updated_at.eq(diesel::dsl::now),
                    referrals::decline_reason.eq(decline.as_ref().map(|d| d.reason)),
                    at(Transition::Accept).map(|t| referrals::accepted_at.eq(t)),
                    at(Transition::Decline).map(|t| referrals::declined_at.eq(t)),
                    at(Transition::Complete).map(|t| referrals::completed_at.eq(t)),
                    at(Transition::Cancel).map(|t| referrals::cancelled_at.eq(t)),
                ))
                .returning(ReferralRow::as_returning())
                .get_result(conn)
                .await?;
            if matches!(step, Transition::Decline | Transition::Complete | Transition::Cancel) {
                crate::changes::after_referral(conn, row.to_organization_id, row.victim_id).await?;
            }
            let action = match step {
                Transition::Accept => AuditAction::ReferralAccepted,
                Transition::Decline => AuditAction::ReferralDeclined,
                Transition::Complete => AuditAction::ReferralCompleted,
                Transition::Cancel => AuditAction::ReferralCancelled,
            };
            let event = Event::new(action, AuditOutcome::Success)
                .actor(principal.user_id, principal.role)
                .target("referral", id)
                .details(serde_json::json!({ "victim_id": row.victim_id, "status": row.status }));
            for event in both_logs(event, &row) {
                audit::record(conn, ctx, event).await?;
            }
            let told = match step {
                Transition::Accept => WebhookEvent::ReferralAccepted,
                Transition::Decline => WebhookEvent::ReferralDeclined,
                Transition::Complete => WebhookEvent::ReferralCompleted,
                Transition::Cancel => WebhookEvent::ReferralCancelled,
            };
            let parties = [row.to_organization_id, row.from_organization_id];
            webhooks::emit(conn, &parties, told, webhook_data(&row)).await?;
            Ok(row)
        })
        .await?;
    let view = view(state, &mut conn, ctx, principal, &row).await?;
    Ok(HttpResponse::Ok().json(view))
}

// rustfmt re-indents the attribute inside on every run (it is not idempotent on it): kept as written.
#[rustfmt::skip]
macro_rules! transition_handler {
    ($name:ident, $path:literal, $step:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            tag = "referrals",
            params(("id" = Uuid, Path, description = "Referral id")),
            security(("bearer" = [])),
            responses(
                (status = 200, description = "The referral after the transition", body = ReferralView),
                (status = 401, response = crate::openapi::responses::Unauthorized),
                (status = 403, response = crate::openapi::responses::Forbidden),
                (status = 404, response = crate::openapi::responses::NotFound),
                (status = 409, response = crate::openapi::responses::Conflict),
            )
        )]
        #[post($path)]
        pub async fn $name(
            state: web::Data<AppState>,
            principal: Principal,
            ctx: RequestContext,
            id: web::Path<Uuid>,
        ) -> ApiResult<HttpResponse> {
            transition(&state, &principal, &ctx, id.into_inner(), $step, None).await
        }
    };
}

transition_handler!(
    accept_referral,
    "/referrals/{id}/accept",
    Transition::Accept,
    "Accept a pending referral (caseworkers of the receiving organisation)."
);
transition_handler!(
    complete_referral,
    "/referrals/{id}/complete",
    Transition::Complete,
    "Mark an accepted referral completed (caseworkers of the receiving organisation)."
);
transition_handler!(
    cancel_referral,
    "/referrals/{id}/cancel",
    Transition::Cancel,
    "Cancel a pending or accepted referral (caseworkers of the sending organisation)."
);

/// Decline a pending referral, with a reason code (caseworkers of the receiving organisation).
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "Referral id")),
    request_body = DeclineInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The referral after the transition", body = ReferralView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/referrals/{id}/decline")]
pub async fn decline_referral(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<DeclineInput>,
) -> ApiResult<HttpResponse> {
    transition(&state, &principal, &ctx, id.into_inner(), Transition::Decline, Some(body.0)).await
}
