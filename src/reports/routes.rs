//! The reports' HTTP face: parses requests and renders answers. What a caller receives is
//! decided by `release.rs`; budgets by `budget.rs`.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, http::header, put, web};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::budget::{self, AllowanceChange, Budget};
use super::filters::{ReportFormat, ReportParameters, ReportWindow, parse_parameters};
use super::listing::ReportInfo;
use super::output;
use super::release::{self, Ask};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, RequestContext};
use crate::state::AppState;

/// The report catalogue: the reports your role may run.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reports you may run", body = Vec<ReportInfo>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
    )
)]
#[get("/reports")]
pub async fn list_reports(state: web::Data<AppState>, principal: Principal) -> ApiResult<HttpResponse> {
    policy::run_reports(&principal).require()?;
    Ok(catalogue_of(&state, principal.role))
}

/// The catalogue `role` sees, as served (also by the benchmark's unauthenticated twin).
pub fn catalogue_of(state: &AppState, role: crate::domain::Role) -> HttpResponse {
    let json = state.report_catalogue.get(&role).cloned().unwrap_or_default();
    HttpResponse::Ok().content_type("application/json").body(json)
}

/// The format an `Accept` header asks for, when it names CSV or SVG.
fn accepted(req: &HttpRequest) -> Option<ReportFormat> {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok())?;
    // A media type refused with q=0 is not asked for.
    let refused = |m: &str| m.split(';').skip(1).any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
    accept.split(',').map(str::trim).filter(|m| !refused(m)).find_map(|m| match m {
        m if m.starts_with("text/csv") => Some(ReportFormat::Csv),
        m if m.starts_with("image/svg+xml") => Some(ReportFormat::Svg),
        _ => None,
    })
}

/// Run a report. Parameters are the report's own (see the catalogue) plus `from` and `to`
/// (months, YYYY-MM, inclusive; a report by month, quarter or year lists the last 36 months, 12
/// quarters or 10 years by default), `operation` (a tag) and `format` (`json`, `csv` or `svg`, a
/// chart of the table; or send `Accept: text/csv` or `Accept: image/svg+xml`).
///
/// A caseworker gets their own organisation's case load, exact. Anyone else gets a guarded
/// release: distinct victims who consented to anonymised statistics, of organisations that share
/// statistics, other than the caller's; every cell and total of a grid fixed by the report and its
/// parameters, measured once with OpenDP noise (each victim's values bounded per multi-valued
/// dimension), made consistent (non-negative integers, parts adding up to their totals), counts
/// below k withheld, each with its 95% margin. A new question costs the organisation `rho` of its
/// allowance for the period (see `/api/v1/reports/budget`); when that or the deployment's cap is
/// spent: 403 `urn:haven:problem:privacy-budget-exhausted`. The same question again in the same
/// period (report, parameters, window, population) is answered from the release ledger with the
/// same numbers, in JSON or CSV, at no cost. `privacy` says what was done. Every run is audited.
#[utoipa::path(
    tag = "reports",
    params(
        ("id" = String, Path, description = "Report id from the catalogue"),
        ReportWindow,
        ("format" = Option<ReportFormat>, Query, description = "`json` (default), `csv`, or `svg` (a chart of the table); `GET /api/v1/reports/{id}/csv` is the same table as CSV only"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The table: JSON; CSV with `format=csv` or `Accept: text/csv`; a chart with `format=svg` or `Accept: image/svg+xml`", content(
            (output::ReportResult = "application/json"),
            (String = "text/csv", example = json!("citizenship,country_of_exploitation,victims,margin,withheld\r\nPER,SEN,41,9,false\r\nPER,total,212,13,false\r\n")),
            (String = "image/svg+xml")
        )),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/reports/{id}")]
pub async fn run_report(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    req: HttpRequest,
    id: web::Path<String>,
    query: ApiQuery<HashMap<String, String>>,
) -> ApiResult<HttpResponse> {
    answer(&state, &principal, &ctx, &id, query.0, accepted(&req)).await
}

/// Run a report and receive its table as CSV: the same release as `GET /api/v1/reports/{id}`
/// (from the ledger when asked before in the period, at no cost), for clients that want one
/// declared media type per operation.
#[utoipa::path(
    tag = "reports",
    params(
        ("id" = String, Path, description = "Report id from the catalogue"),
        ReportWindow,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The table as CSV, one row per cell with its margin", body = String, content_type = "text/csv",
            example = json!("citizenship,country_of_exploitation,victims,margin,withheld\r\nPER,SEN,41,9,false\r\nPER,total,212,13,false\r\n")),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/reports/{id}/csv")]
pub async fn run_report_csv(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<String>,
    query: ApiQuery<HashMap<String, String>>,
) -> ApiResult<HttpResponse> {
    if query.0.contains_key("format") {
        return Err(ApiError::validation("format", "is not a parameter of the CSV operation, which answers CSV only"));
    }
    answer(&state, &principal, &ctx, &id, query.0, Some(ReportFormat::Csv)).await
}

async fn answer(
    state: &AppState,
    principal: &Principal,
    ctx: &RequestContext,
    id: &str,
    query: HashMap<String, String>,
    negotiated: Option<ReportFormat>,
) -> ApiResult<HttpResponse> {
    let plugin = state.reports.get(id).ok_or(ApiError::NotFound)?;
    policy::run_report(principal, plugin.roles()).require()?;
    let ReportParameters { own, filters, format } = parse_parameters(plugin, query)?;
    let result = release::answer(state, principal, ctx, Ask { plugin, own, filters }).await?;
    // The query's format, else the operation's own or the Accept header's (the CSV operation
    // refuses a `format` parameter).
    let mut ok = HttpResponse::Ok();
    // The same URL answers JSON, CSV or a chart, by the Accept header.
    ok.insert_header((header::VARY, "Accept"));
    Ok(match format.or(negotiated).unwrap_or(ReportFormat::Json) {
        ReportFormat::Csv => ok.content_type("text/csv; charset=utf-8; header=present").body(output::csv(&result)),
        ReportFormat::Svg => {
            // Drawing a large grid takes a while: off the request threads.
            let svg = web::block(move || super::chart::svg(&result))
                .await
                .map_err(|e| ApiError::internal("chart", e))?
                .map_err(|e| ApiError::internal("chart", e))?;
            ok.content_type("image/svg+xml").body(svg)
        }
        ReportFormat::Json => ok
            .content_type("application/json")
            .body(output::json(&result).map_err(|e| ApiError::internal("report JSON", e))?),
    })
}

/// Your organisation's privacy budget: what new statistical releases it may still receive this
/// period, and when the allowance renews. Free: it spends nothing and releases nothing.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The budget", body = Budget),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
    )
)]
#[get("/reports/budget")]
pub async fn own_budget(state: web::Data<AppState>, principal: Principal) -> ApiResult<HttpResponse> {
    policy::run_reports(&principal).require()?;
    let mut conn = state.pool.get().await?;
    Ok(HttpResponse::Ok()
        .json(budget::current(&mut conn, &state.settings, principal.organization_id, chrono::Utc::now()).await?))
}

/// An organisation's privacy budget: your own, or any for host-organisation admins and auditors.
#[utoipa::path(
    tag = "reports",
    params(("id" = Uuid, Path, description = "Organisation id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The budget", body = Budget),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/organizations/{id}/report-budget")]
pub async fn organization_budget(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::read_organization(&principal, *id).require()?;
    let mut conn = state.pool.get().await?;
    crate::orgs::find(&mut conn, *id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(budget::current(&mut conn, &state.settings, *id, chrono::Utc::now()).await?))
}

/// Set an organisation's privacy allowance per period (host-organisation admins only; audited).
/// At most the deployment's cap, which still bounds all organisations together.
#[utoipa::path(
    tag = "reports",
    params(("id" = Uuid, Path, description = "Organisation id")),
    request_body = AllowanceChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The budget with its new allowance", body = Budget),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[put("/organizations/{id}/report-budget")]
pub async fn set_organization_allowance(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<AllowanceChange>,
) -> ApiResult<HttpResponse> {
    let org = id.into_inner();
    policy::manage_organization(&principal, org).require()?;
    let allowance = body.0.allowance;
    if !(allowance.is_finite() && (0.0..=state.settings.dp_cap).contains(&allowance)) {
        return Err(ApiError::validation(
            "allowance",
            format!("must be 0 to the deployment's cap ({})", state.settings.dp_cap),
        ));
    }
    let mut conn = state.pool.get().await?;
    let budget = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut diesel_async::AsyncPgConnection| {
            crate::orgs::find(conn, org).await?.ok_or(ApiError::NotFound)?;
            let previous = budget::set_allowance(conn, org, allowance, principal.user_id).await?;
            let details = serde_json::json!({ "previous": previous, "allowance": allowance, "default": state.settings.dp_allowance });
            let event = Event::new(AuditAction::ReportAllowanceSet, AuditOutcome::Success)
                .by(&principal)
                .target("organization", org)
                .details(details);
            audit::record(conn, &ctx, event).await?;
            budget::current(conn, &state.settings, org, chrono::Utc::now()).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(budget))
}
