use actix_web::{HttpResponse, get, http::header, patch, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Organization, OrganizationView};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::organizations;
use crate::domain::{CountryCode, OrganizationKind, PartnerKind, policy};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiJson, ApiQuery, IfMatch, RequestContext, etag};
use crate::pagination::{self, Page};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrganizationQuery {
    pub kind: Option<OrganizationKind>,
    pub country: Option<CountryCode>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// A new partner organisation. `host` cannot be created: there is one, made by `haven bootstrap`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    /// Spaces inside are collapsed and spaces around it dropped.
    #[schema(
        example = "Refuge Dakar",
        max_length = 200,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub name: String,
    pub kind: PartnerKind,
    pub country: CountryCode,
    #[serde(default)]
    pub shares_statistics: bool,
}

/// Changes to an organisation; at least one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateOrganization {
    /// Spaces inside are collapsed and spaces around it dropped.
    #[serde(default)]
    #[schema(value_type = String, max_length = 200, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    pub name: Option<String>,
    /// Not for the host organisation, whose kind never changes.
    #[serde(default)]
    #[schema(value_type = PartnerKind)]
    pub kind: Option<PartnerKind>,
    #[serde(default)]
    #[schema(value_type = CountryCode)]
    pub country: Option<CountryCode>,
    #[serde(default)]
    #[schema(value_type = bool)]
    pub shares_statistics: Option<bool>,
}

fn name_conflict(err: diesel::result::Error) -> ApiError {
    if crate::db::is_unique_violation(&err) {
        ApiError::Conflict("An organisation with this name already exists.".into())
    } else {
        err.into()
    }
}

/// List organisations visible to you: your own, or all of them for host admins and auditors.
#[utoipa::path(
    tag = "organizations",
    params(OrganizationQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of organisations, oldest first", body = Page<OrganizationView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/organizations")]
pub async fn list_organizations(
    state: web::Data<AppState>,
    principal: Principal,
    query: ApiQuery<OrganizationQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.0;
    let limit = pagination::limit(q.limit)?;
    let after: Option<Uuid> = pagination::decode(q.cursor.as_deref())?;
    let mut sql = organizations::table.select(Organization::as_select()).into_boxed();
    if let Some(own) = policy::organization_list_scope(&principal) {
        sql = sql.filter(organizations::id.eq(own));
    }
    if let Some(kind) = q.kind {
        sql = sql.filter(organizations::kind.eq(kind));
    }
    if let Some(code) = q.country {
        sql = sql.filter(organizations::country.eq(code.as_str().to_owned()));
    }
    if let Some(after) = after {
        sql = sql.filter(organizations::id.gt(after));
    }
    let mut conn = state.pool.get().await?;
    let rows = sql.order(organizations::id.asc()).limit(limit + 1).load(&mut conn).await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |o| o.id, OrganizationView::from)))
}

/// Create an organisation (host-organisation admins only).
#[utoipa::path(
    tag = "organizations",
    request_body = CreateOrganization,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = OrganizationView, headers(("ETag" = String, description = "Version of the record"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/organizations")]
pub async fn create_organization(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    body: ApiJson<CreateOrganization>,
) -> ApiResult<HttpResponse> {
    policy::manage_organizations(&principal).require()?;
    let body = body.0;
    let name = super::parse_name(&body.name).map_err(|m| ApiError::validation("name", m))?;
    let mut conn = state.pool.get().await?;
    let org = (*conn)
        .transaction::<_, ApiError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
            let org = super::insert(conn, &name, body.kind.get(), Some(body.country.as_str()), body.shares_statistics)
                .await
                .map_err(name_conflict)?;
            let event = Event::new(AuditAction::OrganizationCreated, AuditOutcome::Success)
                .by(&principal)
                .target("organization", org.id)
                .details(serde_json::json!({ "kind": org.kind, "shares_statistics": org.shares_statistics }));
            audit::record(conn, &ctx, event.clone()).await?;
            audit::record(conn, &ctx, event.in_org(org.id)).await?;
            Ok(org)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, etag(org.version)))
        .insert_header((header::LOCATION, format!("/api/v1/organizations/{}", org.id)))
        .json(OrganizationView::from(org)))
}

/// Read an organisation: your own, or any for host admins and auditors.
#[utoipa::path(
    tag = "organizations",
    params(("id" = Uuid, Path, description = "Organisation id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The organisation", body = OrganizationView, headers(("ETag" = String, description = "Version of the record"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/organizations/{id}")]
pub async fn get_organization(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::read_organization(&principal, *id).require()?;
    let mut conn = state.pool.get().await?;
    let org = super::find(&mut conn, *id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(org.version))).json(OrganizationView::from(org)))
}

/// Change an organisation (host-organisation admins only). Requires `If-Match`.
#[utoipa::path(
    tag = "organizations",
    params(
        ("id" = Uuid, Path, description = "Organisation id"),
        ("If-Match" = String, Header, description = "ETag of the version you read, e.g. \"3\" (a list of them, or `*` for whatever version exists)"),
    ),
    request_body = UpdateOrganization,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = OrganizationView, headers(("ETag" = String, description = "New version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 412, response = crate::openapi::responses::PreconditionFailed),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 428, response = crate::openapi::responses::PreconditionRequired),
    )
)]
#[patch("/organizations/{id}")]
pub async fn update_organization(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ApiJson<UpdateOrganization>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    policy::manage_organization(&principal, id).require()?;
    let body = body.0;
    if body.name.is_none() && body.kind.is_none() && body.country.is_none() && body.shares_statistics.is_none() {
        return Err(ApiError::Validation(vec![FieldError::new("body", "must change at least one field")]));
    }
    let name = match &body.name {
        Some(raw) => Some(super::parse_name(raw).map_err(|m| ApiError::validation("name", m))?),
        None => None,
    };
    let mut conn = state.pool.get().await?;
    let current = super::find(&mut conn, id).await?.ok_or(ApiError::NotFound)?;
    let version = if_match.against(current.version)?;
    let is_host = current.kind == OrganizationKind::Host;
    if is_host && body.kind.is_some() {
        return Err(ApiError::validation(
            "kind",
            "must not be given for the host organisation, whose kind never changes",
        ));
    }
    let org = (*conn)
        .transaction::<_, ApiError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
            let changed = diesel::update(organizations::table.find(id).filter(organizations::version.eq(version)))
                .set((
                    name.as_deref().map(|n| organizations::name.eq(n)),
                    body.kind.map(|k| organizations::kind.eq(k.get())),
                    body.country.map(|c| organizations::country.eq(c.as_str().to_owned())),
                    body.shares_statistics.map(|s| organizations::shares_statistics.eq(s)),
                    organizations::version.eq(organizations::version + 1),
                    organizations::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await
                .map_err(name_conflict)?;
            if changed == 0 {
                return Err(ApiError::PreconditionFailed);
            }
            let fields: Vec<&str> = [
                name.as_ref().map(|_| "name"),
                body.kind.map(|_| "kind"),
                body.country.map(|_| "country"),
                body.shares_statistics.map(|_| "shares_statistics"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let event = Event::new(AuditAction::OrganizationUpdated, AuditOutcome::Success)
                .by(&principal)
                .target("organization", id)
                .details(serde_json::json!({ "fields": fields }));
            audit::record(conn, &ctx, event.clone()).await?;
            if id != principal.organization_id {
                audit::record(conn, &ctx, event.in_org(id)).await?;
            }
            super::find(conn, id).await?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(org.version))).json(OrganizationView::from(org)))
}
