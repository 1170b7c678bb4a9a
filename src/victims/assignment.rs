//! Who works a case: `GET` and `PUT /victims/{id}/assignment`.

use actix_web::{HttpResponse, get, put, web};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::access::{self, Visible};
use super::custody;
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::state::AppState;

/// Who works a case.
#[derive(Serialize, ToSchema)]
pub struct Assignment {
    /// Its assigned caseworkers (user ids), in the order they were assigned.
    pub caseworkers: Vec<Uuid>,
    /// Whether the case is restricted: its identity (and assistance notes, referral reasons)
    /// reaches only its assigned caseworkers; the organisation's other caseworkers see the case
    /// file only, and a search by name or document does not find it for them.
    pub restricted: bool,
}

/// Who is to work a case from now on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentInput {
    /// Enabled caseworkers of the case's organisation, each once.
    #[schema(schema_with = caseworkers_schema)]
    pub caseworkers: Vec<Uuid>,
    /// Restrict the case to them (for a minor, a high-risk case), or lift the restriction.
    pub restricted: bool,
}

/// 1 to 20 user ids, each once (utoipa has no attribute for `uniqueItems`).
fn caseworkers_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        )
        .min_items(Some(1))
        .max_items(Some(20))
        .unique_items(true)
        .description(Some("Enabled caseworkers of the case's organisation, each once."))
        .build()
}

/// Who works a case: its assigned caseworkers and whether it is restricted to them.
///
/// The owning organisation's staff (and host auditors) read it; a receiving organisation sees
/// the case, not who works it at the owner.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who works the case", body = Assignment),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/victims/{id}/assignment")]
pub async fn get_assignment(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let id = id.into_inner();
    // Decided and read in one snapshot (D157): read apart, a transfer accepted in between let the
    // former owner through on the case as it was and showed it the receiver's caseworker (D177).
    let (caseworkers, restricted) = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let Visible { row, .. } = access::load_visible(&state, conn, &ctx, &principal, id).await?;
            policy::read_assignment(&principal, row.organization_id).require()?;
            Ok(custody::assignment(conn, row.id, row.organization_id).await?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Assignment { caseworkers, restricted }))
}

/// Assign a case (caseworkers of its organisation; of a restricted case, its assigned ones).
///
/// Replaces the assigned caseworkers and sets the restriction; the change is audited. A
/// caseworker may hand a case over without keeping it.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = AssignmentInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who works the case now", body = Assignment),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[put("/victims/{id}/assignment")]
pub async fn assign_case(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<AssignmentInput>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let AssignmentInput { caseworkers, restricted } = body.0;
    let mut conn = state.pool.get().await?;
    let Visible { row, custody, .. } =
        access::load_visible(&state, &mut conn, &ctx, &principal, id.into_inner()).await?;
    policy::write_victim(&principal, row.organization_id, custody).require()?;
    if custody::not_caseworkers_of(&mut conn, row.organization_id, &caseworkers).await? > 0 {
        return Err(ApiError::validation("caseworkers", "must all be enabled caseworkers of the case's organisation"));
    }
    let (org, victim) = (row.organization_id, row.id);
    let assignment = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            // Judged again under the case's lock: a concurrent hand-over may have changed it.
            let custody = custody::lock(conn, victim, principal.user_id, org).await?;
            policy::write_victim(&principal, org, custody).require()?;
            // And who may be assigned: an account disabled, demoted or reset meanwhile may not.
            if custody::not_caseworkers_of(conn, org, &caseworkers).await? > 0 {
                return Err(ApiError::validation(
                    "caseworkers",
                    "must all be enabled caseworkers of the case's organisation",
                ));
            }
            custody::assign(conn, victim, org, &caseworkers, restricted, principal.user_id).await?;
            let event = Event::new(AuditAction::VictimAssigned, AuditOutcome::Success)
                .by(&principal)
                .target("victim", victim)
                .details(serde_json::json!({ "caseworkers": caseworkers, "restricted": restricted }));
            audit::record(conn, &ctx, event).await?;
            let (caseworkers, restricted) = custody::assignment(conn, victim, org).await?;
            Ok(Assignment { caseworkers, restricted })
        })
        .await?;
    Ok(HttpResponse::Ok().json(assignment))
}
