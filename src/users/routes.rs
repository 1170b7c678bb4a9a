use actix_web::{HttpResponse, get, http::header, patch, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::reset::Issue;
use super::{User, UserView};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::enrolments::{self, EnrolmentToken, Purpose};
use crate::auth::{Principal, sessions};
use crate::db::schema::users;
use crate::domain::policy::{self, UserChange};
use crate::domain::{Email, Role};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiJson, ApiQuery, IfMatch, RequestContext, etag};
use crate::grants::{self, GrantKind, GrantView};
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
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// A new staff account. It has no password until the person redeems the enrolment token that the
/// response carries; a caseworker is usable only once a second person also approves.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: Email,
    pub role: Role,
    /// Organisation of the account (default: yours; a host admin may name another organisation to
    /// create its first admin).
    pub organization_id: Option<Uuid>,
}

/// Changes to a staff account; at least one field. A promotion to caseworker, or enabling a
/// disabled caseworker, is not applied but filed as an access grant for a second person to approve
/// (202), and must come alone. Every applied change ends the user's sessions. Passwords are never
/// set here: see `POST /users/{id}/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateUser {
    #[serde(default)]
    #[schema(value_type = Role)]
    pub role: Option<Role>,
    #[serde(default)]
    #[schema(value_type = bool)]
    pub disabled: Option<bool>,
}

/// A created account and the token its person redeems.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    pub user: UserView,
    /// Pass it to the person, in person or by a trusted channel; it is shown only here.
    pub enrolment: EnrolmentToken,
    /// For a caseworker: the grant a second person approves once the person has set their password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantView>,
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
    let mut sql = users::table.filter(users::organization_id.eq(org)).select(User::as_select()).into_boxed();
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
    let rows = sql.order(users::id.asc()).limit(limit + 1).load(&mut conn).await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |u| u.id, UserView::from)))
}

/// Create a staff account.
///
/// Admins create accounts in their organisation; a host admin creates another organisation's first
/// admin. The response carries a single-use enrolment token for the person, who sets their own
/// password with it; no admin chooses or learns it. A new caseworker also waits for a second
/// person's approval (the grant in the response).
#[utoipa::path(
    tag = "users",
    request_body = CreateUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedUser, headers(("ETag" = String, description = "Version of the record"))),
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
    let mut conn = state.pool.get().await?;
    let staff = crate::grants::staff(&mut conn, org).await?;
    policy::change_user(&principal, org, None, UserChange::Create(body.role), staff).require()?;
    if crate::orgs::find(&mut conn, org).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let ttl = state.settings.enrolment_ttl_hours;
    let created = (*conn)
        .transaction::<_, ApiError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
            let caseworker = policy::reaches_identities(body.role);
            let credential =
                super::NewCredential::Enrolment { issued_by: principal.user_id, awaiting_approval: caseworker };
            let user = super::insert(conn, org, body.email.as_str(), body.role, credential).await.map_err(|e| {
                if crate::db::is_unique_violation(&e) {
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
            let enrolment = enrolments::issue(conn, user.id, Purpose::Enrolment, principal.user_id, ttl).await?;
            let grant = match caseworker {
                true => Some(grants::request(conn, &ctx, &principal, org, user.id, GrantKind::NewCaseworker).await?),
                false => None,
            };
            Ok(CreatedUser { grant: grant.map(|g| GrantView::new(g, false)), user: UserView::from(user), enrolment })
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, etag(created.user.version)))
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", created.user.id)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(created))
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
    let user = super::find(&mut conn, *id).await?.ok_or(ApiError::NotFound)?;
    policy::read_user(&principal, user.id, user.organization_id).require()?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(user.version))).json(UserView::from(user)))
}

/// A promotion or a re-enabling, filed for a second person's approval.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessRequested {
    pub grant: GrantView,
    /// When no approval has confirmed the account's password since an admin issued or reset it
    /// (an account created or reset as another role), or it has none, the password is void: the
    /// person sets a new one with this single-use token, and the grant is approved only after
    /// they have (shown only here; pass it on as the token of a new account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<EnrolmentToken>,
}

/// Change a staff account's role, or disable or enable it.
///
/// Requires `If-Match` with the version last read. Any applied change ends the user's sessions and
/// invalidates their access tokens at once. Admins cannot change their own role or disable
/// themselves. A promotion to caseworker or enabling a disabled caseworker is filed as an access
/// grant instead (202): it takes effect when a second person approves it. If no approval has
/// confirmed the account's password since an admin issued or reset it (or it has none), the
/// password is void and the answer carries a token for the person to set a new one, as a reset
/// does. A host admin may only disable accounts of another organisation.
#[utoipa::path(
    tag = "users",
    params(
        ("id" = Uuid, Path, description = "User id"),
        ("If-Match" = String, Header, description = "ETag of the version you read, e.g. \"3\" (a list of them, or `*` for whatever version exists)"),
    ),
    request_body = UpdateUser,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = UserView, headers(("ETag" = String, description = "New version"))),
        (status = 202, description = "Filed for a second person's approval", body = AccessRequested, headers(("ETag" = String, description = "The account's version (a voided password changes it)"))),
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
    let current = super::find(&mut conn, id).await?.ok_or(ApiError::NotFound)?;
    let org = current.organization_id;
    let staff = crate::grants::staff(&mut conn, org).await?;
    let change = if body.disabled == Some(true) && body.role.is_none_or(|r| r == current.role) {
        UserChange::Disable
    } else {
        UserChange::Change
    };
    policy::change_user(&principal, org, Some(current.role), change, staff).require()?;
    let role = body.role.filter(|r| *r != current.role);
    let enable = body.disabled == Some(false) && current.disabled;
    if body.role.is_none() && body.disabled.is_none() {
        return Err(ApiError::Validation(vec![FieldError::new("body", "must change at least one field")]));
    }
    if id == principal.user_id && (role.is_some() || body.disabled == Some(true)) {
        return Err(ApiError::Conflict("You cannot change your own role or disable yourself.".into()));
    }
    let grant_kind = match (role, enable) {
        (Some(new), false) if policy::reaches_identities(new) => Some(GrantKind::Promotion),
        (None, true) if policy::reaches_identities(current.role) => Some(GrantKind::ReEnable),
        (Some(new), true) if policy::reaches_identities(new) => {
            return Err(ApiError::validation(
                "body",
                "a promotion to caseworker and enabling the account are approved separately; enable it first",
            ));
        }
        _ => None,
    };
    if grant_kind == Some(GrantKind::Promotion) && body.disabled == Some(true) && !current.disabled {
        // The promotion waits for a second person and the disabling would not: neither may be lost.
        return Err(ApiError::validation(
            "body",
            "a promotion to caseworker waits for a second person and disabling does not; disable the account alone",
        ));
    }
    let version = if_match.against(current.version)?;
    if let Some(kind) = grant_kind {
        let ttl = state.settings.enrolment_ttl_hours;
        let request = async move {
            (*conn)
                .transaction::<_, ApiError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
                    // The account is locked before its grant is filed, the order a reset takes
                    // them in (D150), and the precondition is judged again under the lock.
                    let (now, password_set, issued_by): (i32, bool, Option<Uuid>) = users::table
                        .find(id)
                        .select((users::version, users::password_hash.is_not_null(), users::credential_issued_by))
                        .for_no_key_update()
                        .first(conn)
                        .await?;
                    if now != version {
                        return Err(ApiError::PreconditionFailed);
                    }
                    let grant = grants::request(conn, &ctx, &principal, org, id, kind).await?;
                    // A password set with a token an admin received, and not confirmed by a second
                    // person since, may be the requester's own (a reset of an auditor files no
                    // grant): the person sets a new one, which the approver confirms (D164). So
                    // does an account without one, which nothing else could give a token to.
                    let enrolment = match issued_by.is_some() || !password_set {
                        true => {
                            let issue = Issue { org, user: id, ttl, awaiting_approval: None, grant: Some(grant.id) };
                            Some(super::reset::void_credential(conn, &ctx, &principal, issue).await?)
                        }
                        false => None,
                    };
                    let credential_set = password_set && enrolment.is_none();
                    let version = now + i32::from(enrolment.is_some());
                    Ok((AccessRequested { grant: GrantView::new(grant, credential_set), enrolment }, version))
                })
                .await
        };
        // A new password ends the account's sessions: a revocation.
        let (requested, version) = crate::auth::session_cache::revoking(state.sessions.clone(), request).await?;
        return Ok(HttpResponse::Accepted()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::ETAG, etag(version)))
            .json(requested));
    }
    let update = async move {
        (*conn)
            .transaction::<_, ApiError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
                let leaves_caseworker = role.is_some() && policy::reaches_identities(current.role);
                let changed = diesel::update(users::table.find(id).filter(users::version.eq(version)))
                    .set((
                        leaves_caseworker.then(|| users::awaiting_approval.eq(false)),
                        role.map(|r| users::role.eq(r)),
                        body.disabled.map(|d| users::disabled.eq(d)),
                        users::version.eq(users::version + 1),
                        users::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    return Err(ApiError::PreconditionFailed);
                }
                // Leaving the caseworker role ends any wait for caseworker access. The account is
                // locked (updated) before its grant, as a reset and an approval lock them (D150).
                if leaves_caseworker {
                    grants::withdraw_pending(conn, &ctx, &principal, id, false).await?;
                }
                sessions::revoke_user(conn, id).await?;
                let base =
                    |action| Event::new(action, AuditOutcome::Success).by(&principal).in_org(org).target("user", id);
                if let Some(role) = role {
                    let details = serde_json::json!({ "from": current.role, "to": role });
                    audit::record(conn, &ctx, base(AuditAction::UserRoleChanged).details(details)).await?;
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
                audit::record(conn, &ctx, base(AuditAction::UserUpdated)).await?;
                let user = super::find(conn, id).await?.ok_or(ApiError::NotFound)?;
                Ok(user)
            })
            .await
    };
    // It ends the user's sessions: no remembered check may outlive them, even if this request is
    // dropped while it commits.
    let updated = crate::auth::session_cache::revoking(state.sessions.clone(), update).await?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(updated.version))).json(UserView::from(updated)))
}
