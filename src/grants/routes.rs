use actix_web::{HttpResponse, get, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Grant, GrantStatus, GrantView};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{access_grants, users};
use crate::domain::policy::{self, GrantParties};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, RequestContext};
use crate::pagination::{self, Page};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    /// Organisation whose grants to list (default: your own; host admins and auditors may name any).
    pub organization_id: Option<Uuid>,
    /// Only grants in this state (for example `pending`, the ones waiting for a second person).
    pub status: Option<GrantStatus>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// Why a grant is refused or withdrawn.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantDecision {
    /// Staff-facing reason, at most 500 characters (never details about a victim).
    #[schema(max_length = 500, example = "Could not confirm with her in person yet.")]
    pub reason: Option<String>,
}

/// List access grants: caseworker access waiting for, or given by, a second person.
#[utoipa::path(
    tag = "access grants",
    params(GrantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of grants, oldest first", body = Page<GrantView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/access-grants")]
pub async fn list_grants(
    state: web::Data<AppState>,
    principal: Principal,
    query: ApiQuery<GrantQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.0;
    let org = q.organization_id.unwrap_or(principal.organization_id);
    policy::read_grants(&principal, org).require()?;
    let limit = pagination::limit(q.limit)?;
    let after: Option<Uuid> = pagination::decode(q.cursor.as_deref())?;
    let mut sql = access_grants::table
        .inner_join(users::table)
        .filter(access_grants::organization_id.eq(org))
        .select((Grant::as_select(), super::held()))
        .into_boxed();
    if let Some(status) = q.status {
        sql = sql.filter(access_grants::status.eq(status));
    }
    if let Some(after) = after {
        sql = sql.filter(access_grants::id.gt(after));
    }
    let rows: Vec<(Grant, super::Held)> =
        sql.order(access_grants::id.asc()).limit(limit + 1).load(&mut *state.pool.get().await?).await?;
    let view = |(g, held): (Grant, super::Held)| {
        let set = g.kind.credential_set(held);
        GrantView::new(g, set)
    };
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |(g, _)| g.id, view)))
}

/// Read an access grant.
#[utoipa::path(
    tag = "access grants",
    params(("id" = Uuid, Path, description = "Grant id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grant", body = GrantView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/access-grants/{id}")]
pub async fn get_grant(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (grant, set) = super::find(&mut *state.pool.get().await?, *id).await?.ok_or(ApiError::NotFound)?;
    policy::read_grants(&principal, grant.organization_id).require()?;
    Ok(HttpResponse::Ok().json(GrantView::new(grant, set)))
}

/// Approve an access grant, as the second person.
///
/// The approver is another admin or a caseworker of the organisation, or a host admin where the
/// organisation has a single admin; never the requester, the account itself, or someone whose
/// credential one of them issued (or who issued theirs). A grant is approved only once the person
/// has set their password (`credential_set`; for a second factor, enrolled it too). For a new
/// caseworker, a reset, and a promotion or re-enabling of an account whose password no second
/// person has confirmed (the request voids it and issues a token, as a reset does), that is a
/// password set with the token issued with the request: confirm with them, in person, that they
/// set it.
#[utoipa::path(
    tag = "access grants",
    params(("id" = Uuid, Path, description = "Grant id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Approved; the access is given and the account's sessions end", body = GrantView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
    )
)]
#[post("/access-grants/{id}/approve")]
pub async fn approve_grant(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    let approve = async move {
        (*conn)
            .transaction::<_, ApiError, _>(async move |conn: &mut AsyncPgConnection| {
                let (grant, credential_set) = locked(conn, &principal, id).await?;
                let staff = super::staff(conn, grant.organization_id).await?;
                policy::decide_grant(&principal, grant.organization_id, staff).require()?;
                still_pending(&grant)?;
                let approver_chain = super::issuer_chain(conn, principal.user_id).await?;
                let requester_chain = super::issuer_chain(conn, grant.requested_by).await?;
                let subject_chain = super::issuer_chain(conn, grant.user_id).await?;
                policy::independent(&GrantParties {
                    approver: principal.user_id,
                    approver_chain: &approver_chain,
                    requester: grant.requested_by,
                    requester_chain: &requester_chain,
                    subject: grant.user_id,
                    subject_chain: &subject_chain,
                })
                .map_err(ApiError::SecondPersonRequired)?;
                if !credential_set {
                    return Err(ApiError::Conflict(
                        "The person has not set their password (or second factor) yet; approve once they have, after \
                         confirming with them in person that they did. If their enrolment token expired: for a \
                         promotion or a re-enabling, the requester withdraws this grant and asks again (a new token \
                         comes with it); otherwise an admin resets the password."
                            .into(),
                    ));
                }
                let decided = decide(conn, &grant, &principal, GrantStatus::Approved, None).await?;
                super::apply(conn, &decided).await?;
                let event = Event::new(AuditAction::GrantApproved, AuditOutcome::Success)
                    .by(&principal)
                    .in_org(grant.organization_id)
                    .target("user", grant.user_id)
                    .details(serde_json::json!({
                        "grant": grant.id, "kind": grant.kind, "requested_by": grant.requested_by,
                    }));
                audit::record(conn, &ctx, event).await?;
                Ok(GrantView::new(decided, credential_set))
            })
            .await
    };
    // Approval changes the account (role, enabled state), ending its sessions: a revocation.
    let view = crate::auth::session_cache::revoking(state.sessions.clone(), approve).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Refuse an access grant, or withdraw your own request.
///
/// Anyone who may approve may refuse; the requester may withdraw. A refused new caseworker or reset
/// leaves the account without a usable password until a new reset is issued and approved; so does
/// a refused or withdrawn promotion or re-enabling whose new enrolment token was never used.
#[utoipa::path(
    tag = "access grants",
    params(("id" = Uuid, Path, description = "Grant id")),
    request_body = GrantDecision,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Refused or withdrawn", body = GrantView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/access-grants/{id}/refuse")]
pub async fn refuse_grant(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<GrantDecision>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let reason = body.0.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500 || r.contains('\0')) {
        return Err(ApiError::validation("reason", "must be at most 500 characters, without NUL"));
    }
    let mut conn = state.pool.get().await?;
    let view = (*conn)
        .transaction::<_, ApiError, _>(async move |conn: &mut AsyncPgConnection| {
            let (grant, credential_set) = locked(conn, &principal, id).await?;
            let (status, action) = if grant.requested_by == principal.user_id {
                (GrantStatus::Withdrawn, AuditAction::GrantWithdrawn)
            } else {
                let staff = super::staff(conn, grant.organization_id).await?;
                policy::decide_grant(&principal, grant.organization_id, staff).require()?;
                if grant.user_id == principal.user_id {
                    return Err(ApiError::SecondPersonRequired("Nobody decides on their own access."));
                }
                (GrantStatus::Refused, AuditAction::GrantRefused)
            };
            still_pending(&grant)?;
            let decided = decide(conn, &grant, &principal, status, reason).await?;
            super::void(conn, &decided).await?;
            let event = Event::new(action, AuditOutcome::Success)
                .by(&principal)
                .in_org(grant.organization_id)
                .target("user", grant.user_id)
                .details(
                    serde_json::json!({ "grant": grant.id, "kind": grant.kind, "requested_by": grant.requested_by }),
                );
            audit::record(conn, &ctx, event).await?;
            // A refused or withdrawn grant's credential is void (`void` above); of a promotion or a
            // re-enabling, its token is, but a password the account has stays: its own confirmed
            // one, or one set with the request's token, whose issuer is still the requester (a
            // later request voids it again).
            let kept = matches!(grant.kind, super::GrantKind::Promotion | super::GrantKind::ReEnable);
            Ok(GrantView::new(decided, credential_set && kept))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The grant and whether its subject holds what it waits for (`GrantKind::credential_set`), both
/// locked, if the caller may see it.
///
/// The grant is seen before anything is locked: nobody waits on a grant they may not see, and
/// its subject, organisation and kind never change. The account is locked before the grant, the
/// order a reset and a role change take them in (the account, then its pending grant, D150).
async fn locked(conn: &mut AsyncPgConnection, principal: &Principal, id: Uuid) -> ApiResult<(Grant, bool)> {
    let grant = || access_grants::table.find(id).select(Grant::as_select());
    let seen: Grant = grant().first(conn).await.optional()?.ok_or(ApiError::NotFound)?;
    policy::read_grants(principal, seen.organization_id).require()?;
    let subject = users::table.find(seen.user_id);
    let held: super::Held = subject.select(super::held()).for_no_key_update().first(conn).await?;
    let credential_set = seen.kind.credential_set(held);
    Ok((grant().for_update().first(conn).await?, credential_set))
}

fn still_pending(grant: &Grant) -> ApiResult<()> {
    match grant.status {
        GrantStatus::Pending => Ok(()),
        done => Err(ApiError::Conflict(format!("This grant was already {done}."))),
    }
}

async fn decide(
    conn: &mut AsyncPgConnection,
    grant: &Grant,
    by: &Principal,
    status: GrantStatus,
    reason: Option<String>,
) -> ApiResult<Grant> {
    Ok(diesel::update(access_grants::table.find(grant.id))
        .set((
            access_grants::status.eq(status),
            access_grants::decided_by.eq(by.user_id),
            access_grants::decided_at.eq(diesel::dsl::now),
            access_grants::reason.eq(reason),
        ))
        .returning(Grant::as_returning())
        .get_result(conn)
        .await?)
}
