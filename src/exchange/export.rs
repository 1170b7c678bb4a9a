//! `GET /exports/htcds`: an organisation's cases in HTCDS v2.0 columns, as CSV or XLSX (D114).

use actix_web::{HttpResponse, get, http::header, web};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use futures_util::StreamExt;

use super::columns::{self, Column};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{case_closures, victims};
use crate::domain::case_vocab::ClosureReason;
use crate::domain::policy::{self, Relation};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, RequestContext};
use crate::privacy::redaction;
use crate::state::AppState;
use crate::victims::access;
use crate::victims::custody;
use crate::victims::model::{CaseFile, VictimRow};
use crate::victims::store;

/// The file an export writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Csv,
    Xlsx,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (the default) or `xlsx`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    /// `true`: add the identity columns (names, birth date, contacts, document, notes). Each
    /// identity exported is audited.
    pub include_identity: Option<bool>,
}

/// Cases are read and written a batch at a time, so memory stays flat however many there are.
const BATCH: i64 = 500;

/// Your organisation's cases in HTCDS v2.0 columns (caseworkers).
///
/// Column headers are HTCDS field names with their prefixes (`prs_Gender`, `vic_TypeOfExploitation`,
/// `cas_Status`…) and values are HTCDS value names, several in a cell separated by `;`; `hvn_`
/// columns carry what HTCDS has no field for, and Haven's own codes where HTCDS is coarser (see `GET
/// /vocabularies`). Identity columns are written only with `include_identity=true`, and only for the
/// cases whose identity you may see (of a restricted case, its assigned caseworkers); every identity
/// exported is audited. A value a spreadsheet would take for a formula is written after an
/// apostrophe. CSV is streamed as it is read; XLSX is sent when the workbook is complete.
#[utoipa::path(
    tag = "exchange",
    params(ExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cases, one row each", content(
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/exports/htcds")]
pub async fn export_htcds(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    query: ApiQuery<ExportQuery>,
) -> ApiResult<HttpResponse> {
    policy::exchange_cases(&principal).require()?;
    let format = query.0.format.unwrap_or_default();
    let with_identity = query.0.include_identity.unwrap_or(false);
    let mut conn = state.pool.get().await?;
    let event = Event::new(AuditAction::CasesExported, AuditOutcome::Success)
        .by(&principal)
        .details(json!({ "standard": "htcds", "format": format, "identity": with_identity }));
    audit::record(&mut conn, &ctx, event).await?;
    let header_row: Vec<&'static str> = columns::exported(with_identity).map(|c| c.name).collect();
    let pages = Pages { state: state.clone(), principal, ctx, with_identity, after: None, done: false };
    match format {
        ExportFormat::Csv => {
            let header = csv_line(&header_row);
            let body = futures_util::stream::once(async move { Ok::<_, ApiError>(web::Bytes::from(header)) }).chain(
                futures_util::stream::unfold(pages, |mut pages| async move {
                    match pages.next().await {
                        Ok(Some(rows)) => {
                            let text: String = rows.iter().map(|r| csv_line(r)).collect();
                            Some((Ok(web::Bytes::from(text)), pages))
                        }
                        Ok(None) => None,
                        Err(e) => Some((Err(e), pages.finished())),
                    }
                }),
            );
            Ok(HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
                .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"haven-htcds.csv\""))
                .streaming(body))
        }
        ExportFormat::Xlsx => {
            let mut pages = pages;
            let mut rows = vec![header_row.iter().map(|s| s.to_string()).collect::<Vec<String>>()];
            while let Some(batch) = pages.next().await? {
                rows.extend(batch);
            }
            let bytes = web::block(move || super::sheet::xlsx(&rows))
                .await
                .map_err(|e| ApiError::internal("xlsx", e))?
                .map_err(|e| ApiError::internal("xlsx", e))?;
            Ok(HttpResponse::Ok()
                .insert_header((
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ))
                .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"haven-htcds.xlsx\""))
                .body(bytes))
        }
    }
}

/// Every field quoted: a spreadsheet set to split on `;` (as in many European locales) would take
/// an unquoted `x;=1+1`, which holds several values, as two cells, the second a formula that the
/// apostrophe before a cell's first character cannot guard.
fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    let _ = writer.write_record(cells.iter().map(AsRef::as_ref));
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The organisation's cases, a batch of encoded rows at a time, in case-number order.
struct Pages {
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    with_identity: bool,
    after: Option<i32>,
    done: bool,
}

impl Pages {
    fn finished(mut self) -> Pages {
        self.done = true;
        self
    }

    async fn next(&mut self) -> ApiResult<Option<Vec<Vec<String>>>> {
        if self.done {
            return Ok(None);
        }
        let mut conn = self.state.pool.get().await?;
        let org = self.principal.organization_id;
        let mut sql = victims::table
            .filter(victims::organization_id.eq(org))
            .select(VictimRow::as_select())
            .order(victims::case_number.asc())
            .limit(BATCH)
            .into_boxed();
        if let Some(after) = self.after {
            sql = sql.filter(victims::case_number.gt(after));
        }
        // Each batch in one snapshot: the identities are those of the custody it was judged on.
        let (state, ctx, principal, with_identity) = (&self.state, &self.ctx, &self.principal, self.with_identity);
        let batch = access::one_snapshot(&mut conn)
            .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
                // A stream outlives the request that was judged: a session ended or an account
                // changed since sends no more (D177).
                crate::auth::principal::still_standing(conn, principal).await?;
                let rows: Vec<VictimRow> = sql.load(conn).await?;
                let Some(last) = rows.last().map(|r| r.case_number) else { return Ok((None, Vec::new())) };
                Ok((Some(last), encode_batch(state, conn, ctx, principal, &rows, with_identity).await?))
            })
            .await?;
        match batch {
            (None, _) => {
                self.done = true;
                Ok(None)
            }
            (last, encoded) => {
                self.after = last;
                Ok(Some(encoded))
            }
        }
    }
}

async fn encode_batch(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    rows: &[VictimRow],
    with_identity: bool,
) -> ApiResult<Vec<Vec<String>>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let closures: Vec<(Uuid, ClosureReason)> = case_closures::table
        .filter(case_closures::victim_id.eq_any(&ids))
        .filter(case_closures::reopened_at.is_null())
        .select((case_closures::victim_id, case_closures::reason))
        .load(conn)
        .await?;
    let mut identities = std::collections::HashMap::new();
    if with_identity {
        let custody = custody::custody_of(conn, &ids, principal.user_id).await?;
        let entitled: Vec<Uuid> = rows
            .iter()
            .filter(|r| {
                redaction::sight(principal, r.id, r.organization_id, Relation::None, custody(r.id))
                    .is_ok_and(|s| s.grant().is_some())
            })
            .map(|r| r.id)
            .collect();
        let sealed = store::sealed_identities(conn, &entitled).await?;
        let openers = state.vault.openers(&entitled).await?;
        for (id, sealed) in &sealed {
            identities.insert(*id, access::open_identity(&openers.of(*id), *id, sealed)?);
        }
        if !identities.is_empty() {
            // Written before the rows leave: an identity is never exported unrecorded.
            let read: Vec<Uuid> = sealed.iter().map(|(id, _)| *id).collect();
            let event = Event::new(AuditAction::IdentityRead, AuditOutcome::Success)
                .by(principal)
                .details(json!({ "victim_ids": read, "export": "htcds" }));
            audit::record(conn, ctx, event).await?;
        }
    }
    let columns: Vec<&Column> = columns::exported(with_identity).collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut document = serde_json::to_value(CaseFile::from(row)).map_err(|e| ApiError::internal("export", e))?;
        let closure = closures.iter().find(|(v, _)| *v == row.id).map(|(_, r)| *r);
        document["closure_reason"] = json!(closure);
        let recruited = document["route"]
            .as_array()
            .and_then(|legs| legs.iter().find(|l| l["kind"] == "recruitment").map(|l| l["country"].clone()));
        document["recruited_in"] = recruited.unwrap_or(Value::Null);
        if let Some(identity) = identities.get(&row.id) {
            document["identity"] = serde_json::to_value(identity).map_err(|e| ApiError::internal("export", e))?;
        }
        out.push(columns.iter().map(|c| columns::encode(c, &document)).collect());
    }
    Ok(out)
}
