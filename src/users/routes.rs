use actix_web::{HttpResponse, get, http::header, patch, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{User, UserView};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::{Principal, sessions};
use crate::db::schema::users;
use crate::domain::{Email, NewPassword, Role, policy};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiJson, ApiQuery, IfMatch, RequestContext, etag};
use crate::pagination::{self, Page};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Organisation whose users to list (default: your own; host admins and auditors may name any).
    pub organization_id: Option<Uuid>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A new staff account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: Email,
    pub role: Role,
    /// Initial password: 12 to 128 characters, not a common password.
    #[schema(
        write_only,
        min_length = 12,
        max_length = 128,
        example = "ferry-lagos-quiet-orchid"
    )]
    pub password: String,
    /// Organisation of the account (default: yours; host admins may name any).
    pub organization_id: Option<Uuid>,
}

/// Changes to a staff account; at least one field. Each change ends the user's sessions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new password (a reset); also lifts a lockout.
    #[schema(write_only, min_length = 12, max_length = 128)]
    pub password: Option<String>,
}

fn parse_password(raw: String) -> ApiResult<NewPassword> {
    NewPassword::parse(raw).map_err(|m| ApiError::validation("password", m))
}

/// List staff accounts.
#[utoipa::path(
    tag = "users",
    params(UserQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users, oldest first", body = Page<UserView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    principal: Principal,
    query: ApiQuery<UserQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.0;
    let org = q.organization_id.unwrap_or(principal.organization_id);
    policy::read_users(&principal, org).require()?;
    let limit = pagination::limit(q.limit)?;
    let after: Option<Uuid> = pagination::decode(q.cursor.as_deref())?;
    let mut sql = users::table
        .filter(users::organization_id.eq(org))
        .select(User::as_select())
        .into_boxed();
    if let Some(role) = q.role {
        sql = sql.filter(users::role.eq(role));
    }
    if let Some(disabled) = q.disabled {
        sql = sql.filter(users::disabled.eq(disabled));
    }
    if let Some(after) = after {
        sql = sql.filter(users::id.gt(after));
    }
    let mut conn = state.pool.get().await?;
    let rows = sql
        .order(users::id.asc())
        .limit(limit + 1)
        .load(&mut conn)
        .await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |u| u.id, UserView::from)))
}

/// Create a staff account.
///
/// Admins create accounts in their organisation; host-organisation admins in any (that is how a
/// new organisation gets its first admin).
#[utoipa::path(
    tag = "users",
    request_body = CreateUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = UserView, headers(("ETag" = String, description = "Version of the record"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    body: ApiJson<CreateUser>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let org = body.organization_id.unwrap_or(principal.organization_id);
    policy::manage_users(&principal, org).require()?;
    let password = parse_password(body.password)?;
    let mut conn = state.pool.get().await?;
    if crate::orgs::find(&mut conn, org).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let hash = state.hasher.hash(password.expose()).await?;
    let user = (*conn)
        .transaction::<_, ApiError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
            let user = super::insert(conn, org, body.email.as_str(), &hash, body.role)
                .await
                .map_err(|e| {
                    if super::is_unique_violation(&e) {
                        ApiError::Conflict("An account with this email already exists.".into())
                    } else {
                        e.into()
                    }
                })?;
            let event = Event::new(AuditAction::UserCreated, AuditOutcome::Success)
                .by(&principal)
                .in_org(org)
                .target("user", user.id)
                .details(serde_json::json!({ "role": user.role }));
            audit::record(conn, &ctx, event).await?;
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, etag(user.version)))
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)))
        .json(UserView::from(user)))
}

/// Read a staff account. Everyone can read their own; admins and auditors their organisation's.
#[utoipa::path(
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserView, headers(("ETag" = String, description = "Version of the record"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let user = super::find(&mut conn, *id)
        .await?
        .ok_or(ApiError::NotFound)?;
    policy::read_user(&principal, user.id, user.organization_id).require()?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(user.version)))
        .json(UserView::from(user)))
}

/// Change a staff account's role, disable or enable it, or reset its password.
///
/// Requires `If-Match` with the version last read. Any change ends the user's sessions and
/// invalidates their access tokens at once. Admins cannot change their own role or disable
/// themselves.
#[utoipa::path(
    tag = "users",
    params(
        ("id" = Uuid, Path, description = "User id"),
        ("If-Match" = String, Header, description = "ETag of the version you read, e.g. \"3\""),
    ),
    request_body = UpdateUser,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = UserView, headers(("ETag" = String, description = "New version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 412, response = crate::openapi::responses::PreconditionFailed),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 428, response = crate::openapi::responses::PreconditionRequired),
    )
)]
#[patch("/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ApiJson<UpdateUser>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    let current = super::find(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    policy::manage_users(&principal, current.organization_id).require()?;
    if body.role.is_none() && body.disabled.is_none() && body.password.is_none() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "body",
            "must change at least one field",
        )]));
    }
    if id == principal.user_id
        && (body.role.is_some_and(|r| r != current.role) || body.disabled == Some(true))
    {
        return Err(ApiError::Conflict(
            "You cannot change your own role or disable yourself.".into(),
        ));
    }
    let hash = match body.password {
        Some(raw) => Some(state.hasher.hash(parse_password(raw)?.expose()).await?),
        None => None,
    };
    let org = current.organization_id;
    let update = async move {
        (*conn)
            .transaction::<_, ApiError, _>(
                async move |conn: &mut diesel_async::AsyncPgConnection| {
                    let changed =
                        diesel::update(users::table.find(id).filter(users::version.eq(if_match.0)))
                            .set((
                                body.role.map(|r| users::role.eq(r)),
                                body.disabled.map(|d| users::disabled.eq(d)),
                                hash.as_deref().map(|h| users::password_hash.eq(h)),
                                hash.as_ref().map(|_| users::failed_logins.eq(0)),
                                hash.as_ref().map(|_| {
                                    users::locked_until.eq(None::<chrono::DateTime<chrono::Utc>>)
                                }),
                                users::version.eq(users::version + 1),
                                users::updated_at.eq(diesel::dsl::now),
                            ))
                            .execute(conn)
                            .await?;
                    if changed == 0 {
                        return Err(ApiError::PreconditionFailed);
                    }
                    sessions::revoke_user(conn, id).await?;
                    let base = |action| {
                        Event::new(action, AuditOutcome::Success)
                            .by(&principal)
                            .in_org(org)
                            .target("user", id)
                    };
                    if let Some(role) = body.role.filter(|r| *r != current.role) {
                        let details = serde_json::json!({ "from": current.role, "to": role });
                        audit::record(
                            conn,
                            &ctx,
                            base(AuditAction::UserRoleChanged).details(details),
                        )
                        .await?;
                    }
                    match body.disabled {
                        Some(true) if !current.disabled => {
                            audit::record(conn, &ctx, base(AuditAction::UserDisabled)).await?
                        }
                        Some(false) if current.disabled => {
                            audit::record(conn, &ctx, base(AuditAction::UserEnabled)).await?
                        }
                        _ => {}
                    }
                    if hash.is_some() {
                        audit::record(conn, &ctx, base(AuditAction::UserPasswordReset)).await?;
                    }
                    audit::record(conn, &ctx, base(AuditAction::UserUpdated)).await?;
                    let user = super::find(conn, id).await?.ok_or(ApiError::NotFound)?;
                    Ok(user)
                },
            )
            .await
    };
    // It ends the user's sessions: no remembered check may outlive them, even if this request is
    // dropped while it commits.
    let updated = crate::auth::session_cache::revoking(state.sessions.clone(), update).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(updated.version)))
        .json(UserView::from(updated)))
}
