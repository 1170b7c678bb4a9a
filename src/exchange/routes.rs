use actix_web::{HttpMessage, HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::import::{self, ImportReport};
use super::sheet::Format;
use crate::auth::Principal;
use crate::domain::policy;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiQuery, RequestContext};
use crate::state::AppState;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `true`: check every row and report what would happen, writing nothing.
    pub dry_run: Option<bool>,
}

/// Import cases from an HTCDS v2.0 file (caseworkers).
///
/// The body is the file itself, sent as `application/octet-stream`: CSV text, or an XLSX workbook
/// (its first sheet), told apart by their content (`text/csv` and the XLSX media type are taken
/// too). The header row
/// holds HTCDS field names (`prs_Gender`, `vic_TypeOfExploitation`…; IOM's Excel template as it
/// is, with its row of labels, is read too) and `hvn_` columns as the export writes them; other
/// columns are listed and ignored. A row whose `hvn_CaseId` is one of your organisation's cases
/// updates it, from the version the file gives (`hvn_Version`; a case changed since is a row
/// error); one naming a case your organisation transferred away is a row error; any other row
/// creates a case whose id is derived from the file, so importing the same file again changes
/// nothing. Every row is checked first: with `dry_run=true` the report
/// lists every error (row, column, message) and nothing is written; otherwise an import with any
/// error is refused (422, the errors as fields `row <n>: <column>`) and an import without writes
/// every row in one transaction. Identities in the file are sealed as any other; a row may not
/// close or reopen an existing case. The file's size limit is `HAVEN_IMPORT_LIMIT`.
#[utoipa::path(
    tag = "exchange",
    params(ImportQuery),
    request_body(description = "The HTCDS file (CSV or XLSX)", content = [u8], content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the import did, or a dry run would do", body = ImportReport),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 413, response = crate::openapi::responses::PayloadTooLarge),
        (status = 415, response = crate::openapi::responses::UnsupportedMediaType),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/imports/htcds")]
pub async fn import_htcds(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    request: HttpRequest,
    query: ApiQuery<ImportQuery>,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    policy::exchange_cases(&principal).require()?;
    let declared = request.mime_type().ok().flatten();
    let declared = declared.as_ref().map(|m| m.essence_str());
    if !matches!(declared, Some("application/octet-stream" | "text/csv" | XLSX)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let limit = state.settings.import_limit;
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadRequest("The request body could not be read.".into()))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    // An XLSX workbook is a zip archive; anything else is read as CSV text.
    let format = if bytes.starts_with(b"PK\x03\x04") { Format::Xlsx } else { Format::Csv };
    let dry_run = query.0.dry_run.unwrap_or(false);
    let hidden = indicatif::ProgressBar::hidden();
    let report = import::run(&state.pool, &state.vault, &principal, &ctx, format, &bytes, dry_run, &hidden).await?;
    if !dry_run && !report.errors.is_empty() {
        let fields = report
            .errors
            .iter()
            .map(|e| {
                FieldError::new(format!("row {}: {}", e.row, e.column.as_deref().unwrap_or("row")), e.message.clone())
            })
            .collect();
        return Err(ApiError::Validation(fields));
    }
    Ok(HttpResponse::Ok().json(report))
}
