//! Exact-match search by name or document number, through blind indexes: the query is hashed
//! with the index key and compared with stored hashes, so no plaintext is ever in the database.
//! A POST, so the searched name is never in a URL (proxy and server access logs).

use actix_web::{HttpResponse, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::model::VictimRow;
use super::routes::list_views;
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{victim_identities, victims};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::pagination::Page;
use crate::privacy::redaction::VictimView;
use crate::state::AppState;

/// Exactly one of `name` or `document_number`. Case, accents, punctuation and spacing are
/// ignored; otherwise the match is exact (a full name in either order, or an alias). A value with
/// no letter or digit matches nobody.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VictimSearch {
    ByName(NameSearch),
    ByDocument(DocumentSearch),
}

/// Search by full name or alias.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameSearch {
    #[schema(example = "Maria Lopez")]
    pub name: String,
}

/// Search by identity document number.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentSearch {
    #[schema(example = "PE-4481220")]
    pub document_number: String,
}

const MAX_MATCHES: i64 = 50;

/// Find victims of your organisation by exact name or document number (caseworkers).
#[utoipa::path(
    tag = "victims",
    request_body = VictimSearch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Matching case files with identities (at most 50)", body = Page<VictimView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims/search")]
pub async fn search_victims(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    body: ApiJson<VictimSearch>,
) -> ApiResult<HttpResponse> {
    if principal.role != Role::Caseworker {
        return Err(ApiError::Forbidden);
    }
    let keys = &state.identity_keys;
    let (by, hash) = match body.0 {
        VictimSearch::ByName(NameSearch { name }) => ("name", keys.name_index(&Zeroizing::new(name))),
        VictimSearch::ByDocument(DocumentSearch { document_number }) => {
            ("document_number", keys.document_index(&Zeroizing::new(document_number)))
        }
    };
    // Nothing to compare (no letter or digit): no match, still audited as a search.
    let hash = hash.unwrap_or_default();
    let org = principal.organization_id;
    let mut conn = state.pool.get().await?;
    let items = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let mut sql = victims::table
                .inner_join(victim_identities::table)
                .filter(victims::organization_id.eq(org))
                .select(VictimRow::as_select())
                .into_boxed();
            sql = if by == "name" {
                sql.filter(victim_identities::name_index.contains(vec![hash.clone()]))
            } else {
                sql.filter(victim_identities::document_index.eq(hash.clone()))
            };
            let rows: Vec<VictimRow> = sql.order(victims::id.asc()).limit(MAX_MATCHES).load(conn).await?;
            let event = Event::new(AuditAction::VictimSearched, AuditOutcome::Success)
                .by(&principal)
                .details(serde_json::json!({ "by": by, "matches": rows.len() }));
            audit::record(conn, &ctx, event).await?;
            list_views(&state, conn, &ctx, &principal, rows).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: None }))
}
