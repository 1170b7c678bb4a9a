use actix_web::{HttpResponse, delete, get, http::header, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{DeliveryStatus, WebhookEvent};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{webhook_deliveries as deliveries, webhook_events as events, webhooks};
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IfMatch, RequestContext, etag};
use crate::pagination::{self, Page};
use crate::privacy::crypto::Purpose;
use crate::state::AppState;

fn unique_events() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::RefOr::Ref(utoipa::openapi::Ref::from_schema_name("WebhookEvent")))
        .min_items(Some(1))
        .unique_items(true)
        .build()
}

/// A webhook to create: where to post, and which events.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// An `https` URL (plain `http` only where the deployment allows it), without credentials.
    #[schema(format = "uri", max_length = 2000, pattern = "^https?://[^\\s/?#@]+(/[^\\s]*)?$")]
    pub url: String,
    #[schema(schema_with = unique_events)]
    pub events: Vec<WebhookEvent>,
}

/// Changes to a webhook; at least one field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct WebhookPatch {
    #[serde(default)]
    #[schema(value_type = String, format = "uri", max_length = 2000, pattern = "^https?://[^\\s/?#@]+(/[^\\s]*)?$")]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(schema_with = unique_events)]
    pub events: Option<Vec<WebhookEvent>>,
    /// A disabled webhook is sent nothing; its waiting deliveries are given up.
    #[serde(default)]
    #[schema(value_type = bool)]
    pub disabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct Webhook {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub url: String,
    #[schema(value_type = Vec<WebhookEvent>)]
    #[diesel(deserialize_as = Vec<String>)]
    pub events: Events,
    pub disabled: bool,
    /// Also its `ETag` (send it as `If-Match` to change the webhook).
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub updated_at: DateTime<Utc>,
}

/// A webhook's events as stored (codes, which the schema lists).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Events(Vec<String>);

impl From<Vec<String>> for Events {
    fn from(v: Vec<String>) -> Events {
        Events(v)
    }
}

/// A new webhook and its signing secret, shown this once: keep it to verify `Haven-Signature`.
#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

/// One delivery of an event to a webhook: the delivery log.
#[derive(Debug, Serialize, ToSchema, Queryable)]
pub struct Delivery {
    pub id: i64,
    pub event_id: i64,
    #[schema(value_type = WebhookEvent)]
    pub event: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status at the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

fn check_url(state: &AppState, url: &str) -> ApiResult<()> {
    let refused = |why: &str| Err(ApiError::validation("url", why));
    let Ok(parsed) = reqwest::Url::parse(url) else { return refused("must be an absolute URL") };
    let local = state.settings.webhook_allow_local;
    match parsed.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return refused("must be an https URL"),
    }
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else { return refused("must name a host") };
    if !local && literal_ip(host).is_some_and(|ip| !super::is_public(ip)) {
        return refused("must be a public address");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refused("must not carry credentials");
    }
    Ok(())
}

/// The address a URL's host names literally (`203.0.113.9`, `[2001:db8::1]`), if it does.
pub(super) fn literal_ip(host: &str) -> Option<std::net::IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn codes(events: &[WebhookEvent]) -> Vec<String> {
    events.iter().map(|e| e.as_str().to_owned()).collect()
}

async fn find(conn: &mut AsyncPgConnection, p: &Principal, id: Uuid) -> ApiResult<Webhook> {
    // Refused by role before any lookup, so only admins can tell an id that exists from one that
    // does not, and only in their own organisation.
    policy::manage_webhooks(p, p.organization_id).require()?;
    let hook = webhooks::table.find(id).select(Webhook::as_select()).first(conn).await.optional()?;
    let hook = hook.ok_or(ApiError::NotFound)?;
    policy::manage_webhooks(p, hook.organization_id).require()?;
    Ok(hook)
}

/// List your organisation's webhooks (its admins).
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The organisation's webhooks", body = Page<Webhook>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
    )
)]
#[get("/webhooks")]
pub async fn list_webhooks(state: web::Data<AppState>, principal: Principal) -> ApiResult<HttpResponse> {
    policy::manage_webhooks(&principal, principal.organization_id).require()?;
    let mut conn = state.pool.get().await?;
    let items: Vec<Webhook> = webhooks::table
        .filter(webhooks::organization_id.eq(principal.organization_id))
        .order(webhooks::created_at.asc())
        .select(Webhook::as_select())
        .load(&mut conn)
        .await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: None }))
}

/// Subscribe a URL to events (your organisation's admins).
///
/// The answer holds the signing secret, this once. Every delivery is a `POST` of
/// `{"id", "event", "organization_id", "occurred_at", "data"}` (ids and codes only) with the
/// headers `Haven-Event`, `Haven-Delivery` (the same on every retry) and `Haven-Signature:
/// t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>`. Answer 2xx; anything
/// else is retried with backoff.
#[utoipa::path(
    tag = "webhooks",
    request_body = WebhookInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Subscribed", body = CreatedWebhook, headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    body: ApiJson<WebhookInput>,
) -> ApiResult<HttpResponse> {
    let input = body.0;
    let org = principal.organization_id;
    policy::manage_webhooks(&principal, org).require()?;
    check_url(&state, &input.url)?;
    let id = Uuid::now_v7();
    let secret = format!("whsec_{}", {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    });
    let sealed = state.identity_keys.seal(Purpose::WebhookSecret, id, secret.as_bytes());
    let mut conn = state.pool.get().await?;
    let hook = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let hook: Webhook = diesel::insert_into(webhooks::table)
                .values((
                    webhooks::id.eq(id),
                    webhooks::organization_id.eq(org),
                    webhooks::url.eq(&input.url),
                    webhooks::events.eq(codes(&input.events)),
                    webhooks::secret_key_id.eq(&sealed.key_id),
                    webhooks::secret_nonce.eq(&sealed.nonce),
                    webhooks::secret_ciphertext.eq(&sealed.ciphertext),
                    webhooks::created_by.eq(principal.user_id),
                ))
                .returning(Webhook::as_returning())
                .get_result(conn)
                .await?;
            let event = Event::new(AuditAction::WebhookCreated, AuditOutcome::Success)
                .by(&principal)
                .target("webhook", id)
                .details(serde_json::json!({ "events": hook.events }));
            audit::record(conn, &ctx, event).await?;
            Ok(hook)
        })
        .await?;
    let version = hook.version;
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, etag(version)))
        .json(CreatedWebhook { webhook: hook, secret }))
}

/// Read one of your organisation's webhooks (its admins).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The webhook", body = Webhook, headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/webhooks/{id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let hook = find(&mut conn, &principal, id.into_inner()).await?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(hook.version))).json(hook))
}

/// Change a webhook's URL or events, or disable it (your organisation's admins). Requires
/// `If-Match`.
#[utoipa::path(
    tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "Webhook id"),
        ("If-Match" = String, Header, description = "ETag of the version you read, e.g. \"3\" (a list of them, or `*` for whatever version exists)"),
    ),
    request_body = WebhookPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Webhook, headers(("ETag" = String, description = "New version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 412, response = crate::openapi::responses::PreconditionFailed),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 428, response = crate::openapi::responses::PreconditionRequired),
    )
)]
#[patch("/webhooks/{id}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ApiJson<WebhookPatch>,
) -> ApiResult<HttpResponse> {
    let patch = body.0;
    if let Some(url) = &patch.url {
        check_url(&state, url)?;
    }
    let mut conn = state.pool.get().await?;
    let hook = find(&mut conn, &principal, id.into_inner()).await?;
    let version = if_match.against(hook.version)?;
    let updated = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let updated: Webhook = diesel::update(webhooks::table.find(hook.id).filter(webhooks::version.eq(version)))
                .set((
                    patch.url.as_ref().map(|u| webhooks::url.eq(u)),
                    patch.events.as_deref().map(|e| webhooks::events.eq(codes(e))),
                    patch.disabled.map(|d| webhooks::disabled.eq(d)),
                    webhooks::version.eq(webhooks::version + 1),
                    webhooks::updated_at.eq(diesel::dsl::now),
                ))
                .returning(Webhook::as_returning())
                .get_result(conn)
                .await
                .optional()?
                .ok_or(ApiError::PreconditionFailed)?;
            let event = Event::new(AuditAction::WebhookUpdated, AuditOutcome::Success)
                .by(&principal)
                .target("webhook", hook.id)
                .details(serde_json::json!({ "events": updated.events, "disabled": updated.disabled }));
            audit::record(conn, &ctx, event).await?;
            Ok(updated)
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(updated.version))).json(updated))
}

/// Remove a webhook and its delivery log (your organisation's admins).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let hook = find(&mut conn, &principal, id.into_inner()).await?;
    (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            diesel::delete(webhooks::table.find(hook.id)).execute(conn).await?;
            let event = Event::new(AuditAction::WebhookDeleted, AuditOutcome::Success)
                .by(&principal)
                .target("webhook", hook.id);
            audit::record(conn, &ctx, event).await?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    #[param(inline)]
    pub status: Option<DeliveryStatus>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$")]
    pub cursor: Option<String>,
}

/// A webhook's delivery log, newest first (your organisation's admins).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"), DeliveryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<Delivery>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    query: ApiQuery<DeliveryQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.0;
    let limit = pagination::limit(q.limit)?;
    let before: Option<i64> = pagination::decode(q.cursor.as_deref())?;
    let mut conn = state.pool.get().await?;
    let hook = find(&mut conn, &principal, id.into_inner()).await?;
    let mut sql = deliveries::table
        .inner_join(events::table)
        .filter(deliveries::webhook_id.eq(hook.id))
        .select((
            deliveries::id,
            deliveries::event_id,
            events::event,
            deliveries::status,
            deliveries::attempts,
            deliveries::next_attempt_at,
            deliveries::last_attempt_at,
            deliveries::response_status,
            deliveries::last_error,
            deliveries::delivered_at,
        ))
        .into_boxed();
    if let Some(status) = q.status {
        sql = sql.filter(deliveries::status.eq(status));
    }
    if let Some(before) = before {
        sql = sql.filter(deliveries::id.lt(before));
    }
    let rows: Vec<Delivery> = sql.order(deliveries::id.desc()).limit(limit + 1).load(&mut conn).await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, limit, |d| d.id, |d| d)))
}
