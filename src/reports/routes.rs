use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, http::header, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use super::catalogue::{Dimension, Month};
use super::engine::{self, Cell, Filters, Population, PrivacyReport};
use super::{ParamSpec, ReportPlugin};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::report_releases;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiQuery, RequestContext};
use crate::state::AppState;

/// A report of the catalogue.
#[derive(Serialize, ToSchema)]
pub struct ReportInfo {
    #[schema(example = "trafficking-flows")]
    pub id: String,
    pub title: String,
    pub description: String,
    /// Its own parameters; every report also takes `from`, `to` (YYYY-MM), `operation` and `format`.
    pub parameters: Vec<ParamSpec>,
    /// Dimensions of its table with default parameters.
    pub dimensions: Vec<Dimension>,
    pub roles: Vec<Role>,
}

/// A released report.
#[derive(Serialize, ToSchema)]
pub struct ReportResult {
    pub report: String,
    pub title: String,
    pub dimensions: Vec<Dimension>,
    /// Every cell and every total (a `_total` value) of the table.
    pub cells: Vec<Cell>,
    pub privacy: PrivacyReport,
}


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
    if principal.role == Role::Auditor {
        return Err(ApiError::Forbidden);
    }
    let json = state.report_catalogue.get(&principal.role).cloned().unwrap_or_default();
    Ok(HttpResponse::Ok().content_type("application/json").body(json))
}

/// The catalogue each role sees, serialised once at start: the registry never changes while
/// the service runs.
pub fn catalogues(registry: &super::Registry) -> HashMap<Role, String> {
    Role::ALL
        .iter()
        .map(|role| {
            let infos: Vec<ReportInfo> = registry
                .plugins
                .iter()
                .filter(|p| p.roles().contains(role))
                .map(|p| ReportInfo {
                    id: p.id().to_owned(),
                    title: p.title().to_owned(),
                    description: p.description().to_owned(),
                    parameters: p.parameters(),
                    dimensions: p.table(&HashMap::new()).map(|t| t.dimensions).unwrap_or_default(),
                    roles: p.roles().to_vec(),
                })
                .collect();
            (*role, serde_json::to_string(&infos).unwrap_or_else(|_| "[]".into()))
        })
        .collect()
}

const FRAMEWORK_PARAMS: [&str; 4] = ["from", "to", "operation", "format"];

/// A report run's query, checked: the report's own parameters, the framework's filters, and
/// whether CSV was asked for.
pub struct ReportParameters {
    pub own: HashMap<String, String>,
    pub filters: Filters,
    pub csv: bool,
}

pub fn parse_parameters(plugin: &dyn ReportPlugin, raw: HashMap<String, String>) -> ApiResult<ReportParameters> {
    let specs = plugin.parameters();
    let mut errors = Vec::new();
    let mut own = HashMap::new();
    for (name, value) in &raw {
        if FRAMEWORK_PARAMS.contains(&name.as_str()) {
            continue;
        }
        match specs.iter().find(|s| s.name == name) {
            None => errors.push(FieldError::new(sanitize(name), "is not a parameter of this report")),
            Some(spec) if !spec.values.contains(&value.as_str()) => {
                errors.push(FieldError::new(spec.name, format!("must be one of: {}", spec.values.join(", "))))
            }
            Some(_) => {
                own.insert(name.clone(), value.clone());
            }
        }
    }
    let month = |name: &'static str, errors: &mut Vec<FieldError>| {
        raw.get(name).and_then(|v| match Month::try_from(v.clone()) {
            Ok(m) => Some(m.0),
            Err(e) => {
                errors.push(FieldError::new(name, e));
                None
            }
        })
    };
    let from = month("from", &mut errors);
    let to_exclusive = month("to", &mut errors).and_then(|d| d.checked_add_months(chrono::Months::new(1)));
    if let (Some(f), Some(t)) = (from, to_exclusive)
        && f >= t
    {
        errors.push(FieldError::new("to", "must not be before from"));
    }
    let operation = raw.get("operation").map(|o| o.trim().to_owned());
    if operation.as_ref().is_some_and(|o| o.is_empty() || o.chars().count() > 100) {
        errors.push(FieldError::new("operation", "must be 1 to 100 characters"));
    }
    let csv = match raw.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            errors.push(FieldError::new("format", "must be json or csv"));
            false
        }
    };
    if errors.is_empty() { Ok(ReportParameters { own, filters: Filters { from, to_exclusive, operation }, csv }) } else { Err(ApiError::Validation(errors)) }
}

fn sanitize(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect()
}

fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|m| m.trim().starts_with("text/csv")))
}

/// RFC 4180: a header row, CRLF line ends, fields quoted when they need it.
fn csv(result: &ReportResult) -> String {
    fn field(value: &str) -> String {
        // A leading = + - @ would make a spreadsheet evaluate the cell.
        let value = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_owned() };
        if value.contains([',', '"', '\r', '\n']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
    }
    let mut out = String::new();
    let mut header: Vec<String> = result.dimensions.iter().map(|d| d.to_string()).collect();
    header.push("victims".into());
    header.push("suppressed".into());
    out.push_str(&header.iter().map(|h| field(h)).collect::<Vec<_>>().join(","));
    out.push_str("\r\n");
    for cell in &result.cells {
        let mut row: Vec<String> = cell.key.iter().map(|v| field(v)).collect();
        row.push(cell.victims.map(|n| n.to_string()).unwrap_or_default());
        row.push(cell.suppressed.to_string());
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Run a report. Parameters are the report's own (see the catalogue) plus `from` and `to`
/// (months, YYYY-MM, inclusive), `operation` (a tag) and `format` (`json` or `csv`; or send
/// `Accept: text/csv`).
///
/// Anyone but a caseworker (who sees their own organisation's case load) gets pooled, anonymised
/// counts: distinct victims who consented to anonymised statistics, of organisations that share
/// statistics; counts below k suppressed, with complementary suppression so that no suppressed
/// count can be recomputed from the totals; then differential-privacy noise (OpenDP) on every
/// released count, spending the organisation's privacy budget: once spent, 403
/// `urn:haven:problem:privacy-budget-exhausted`. `privacy` says what was done. Every run is
/// audited; every release to a non-caseworker is recorded in the release ledger.
#[utoipa::path(
    tag = "reports",
    params(
        ("id" = String, Path, description = "Report id from the catalogue"),
        ("from" = Option<String>, Query, description = "First month, YYYY-MM"),
        ("to" = Option<String>, Query, description = "Last month, YYYY-MM"),
        ("operation" = Option<String>, Query, description = "Only victims identified in this operation"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The table", body = ReportResult, content_type = "application/json"),
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
    let plugin = state.reports.get(id.as_str()).ok_or(ApiError::NotFound)?;
    if !plugin.roles().contains(&principal.role) {
        return Err(ApiError::Forbidden);
    }
    let raw = query.0;
    let ReportParameters { own, filters, csv: csv_param } = parse_parameters(plugin, raw.clone())?;
    let table = plugin.table(&own)?;
    let guarded = principal.role != Role::Caseworker;
    let population = if guarded {
        Population::Pooled { caller: principal.organization_id }
    } else {
        Population::OwnOrganization(principal.organization_id)
    };
    let k = state.settings.report_k;
    let epsilon = state.settings.dp_epsilon;
    let noisy = guarded && epsilon > 0.0;
    let org = principal.organization_id;
    let budget = state.settings.dp_budget;
    // The budget is checked under the organisation's lock below, after the count: checking it
    // before as well would spare the count of a refused run at the price of a query on every run.
    // The counting may run on a read replica; the budget, ledger and audit always on the primary.
    super::rollup::maintain(&mut *state.pool.get().await?, &table).await?;
    let entries = super::rollup::read(&mut *state.reports_pool.get().await?, &table, population, &filters).await?;
    let mut conn = state.pool.get().await?;
    let (mut cells, mut privacy) = engine::publish(&table.dimensions, entries, guarded, k);
    let parameters = serde_json::to_value(&raw).unwrap_or_default();
    // Budget check, noise, ledger and audit in one transaction, serialised per organisation, so two
    // concurrent requests cannot both spend the last of a budget.
    let outcome = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut diesel_async::AsyncPgConnection| {
            if guarded {
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind::<diesel::sql_types::Text, _>(org.to_string())
                    .execute(conn)
                    .await?;
            }
            if noisy {
                let spent = spent_budget(conn, org).await?;
                if spent + epsilon > budget + 1e-9 {
                    return Err(ApiError::BudgetExhausted);
                }
                engine::add_noise(&mut cells, &mut privacy, epsilon, super::noise::sensitivity(&table.dimensions))?;
                privacy.budget_left = Some((budget - spent - privacy.epsilon_spent).max(0.0));
            }
            let details = serde_json::json!({
                "report": plugin.id(), "parameters": parameters, "cells": privacy.cells,
                "suppressed": privacy.cells_suppressed, "guarded": guarded, "epsilon": privacy.epsilon_spent,
            });
            audit::record(conn, &ctx, Event::new(AuditAction::ReportRun, AuditOutcome::Success).by(&principal).details(details)).await?;
            if guarded {
                diesel::insert_into(report_releases::table)
                    .values((
                        report_releases::user_id.eq(principal.user_id),
                        report_releases::organization_id.eq(org),
                        report_releases::report_id.eq(plugin.id()),
                        report_releases::parameters.eq(&parameters),
                        report_releases::k.eq(k as i32),
                        report_releases::cells_released.eq((privacy.cells - privacy.cells_suppressed) as i32),
                        report_releases::cells_suppressed.eq(privacy.cells_suppressed as i32),
                        report_releases::epsilon_spent.eq(privacy.epsilon_spent),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(privacy)
        })
        .await;
    let privacy = match outcome {
        Err(ApiError::BudgetExhausted) => return refuse_spent(&state, &ctx, &principal, plugin.id()).await,
        other => other?,
    };
    let result = ReportResult { report: plugin.id().to_owned(), title: plugin.title().to_owned(), dimensions: table.dimensions.clone(), cells, privacy };
    if csv_param || wants_csv(&req) {
        return Ok(HttpResponse::Ok().content_type("text/csv; charset=utf-8; header=present").body(csv(&result)));
    }
    Ok(HttpResponse::Ok().json(result))
}

async fn spent_budget(conn: &mut diesel_async::AsyncPgConnection, org: uuid::Uuid) -> ApiResult<f64> {
    let spent: Option<f64> = report_releases::table
        .filter(report_releases::organization_id.eq(org))
        .select(diesel::dsl::sum(report_releases::epsilon_spent))
        .first(conn)
        .await?;
    Ok(spent.unwrap_or(0.0))
}

/// A refused run is audited too (outside the refused transaction).
async fn refuse_spent(state: &AppState, ctx: &RequestContext, principal: &Principal, report: &str) -> ApiResult<HttpResponse> {
    let event = Event::new(AuditAction::ReportRun, AuditOutcome::Denied)
        .by(principal)
        .details(serde_json::json!({ "report": report, "reason": "privacy_budget_spent" }));
    audit::record(&mut *state.pool.get().await?, ctx, event).await?;
    Err(ApiError::BudgetExhausted)
}
