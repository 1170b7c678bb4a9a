//! Exact-match search by name or document number, through blind indexes: the query is hashed
//! with the index key and compared with stored hashes, so no plaintext is ever in the database.
//! A POST, so the searched name is never in a URL (proxy and server access logs).

use actix_web::{HttpResponse, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::access::list_views;
use super::model::VictimRow;
use super::model::VictimView;
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{case_assignments, restricted_cases, victim_identities, victims};
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::pagination::Page;
use crate::state::AppState;

/// Exactly one of `name` or `document_number`. Case, accents, punctuation and spacing are
/// ignored; otherwise the match is exact (a full name in either order, or an alias). A value with
/// no letter or digit matches nobody. Read as one struct (an untagged enum would buffer another
/// copy of the name); the document's `oneOf` of two closed objects, checked before it is read,
/// guarantees exactly one field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VictimSearch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    document_number: Option<String>,
}

/// Search by full name or alias.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // the schema of one alternative (`deny_unknown_fields` closes it)
#[serde(deny_unknown_fields)]
struct NameSearch {
    #[schema(example = "Maria Lopez")]
    name: String,
}

/// Search by identity document number.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // the schema of one alternative (`deny_unknown_fields` closes it)
#[serde(deny_unknown_fields)]
struct DocumentSearch {
    #[schema(example = "PE-4481220")]
    document_number: String,
}

impl utoipa::PartialSchema for VictimSearch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(<NameSearch as utoipa::PartialSchema>::schema())
            .item(<DocumentSearch as utoipa::PartialSchema>::schema())
            .description(Some("Exactly one of `name` or `document_number`."))
            .into()
    }
}

impl ToSchema for VictimSearch {}

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
    policy::search_victims(&principal).require()?;
    let keys = &state.identity_keys;
    let VictimSearch { name, document_number } = body.0;
    let (name, document_number) = (name.map(Zeroizing::new), document_number.map(Zeroizing::new));
    let (by, hash) = match (&name, &document_number) {
        (Some(n), None) => ("name", keys.name_index(n)),
        (None, Some(d)) => ("document_number", keys.document_index(d)),
        // The schema, checked before the body is read, lets only one through.
        _ => return Err(ApiError::validation("body", "must give exactly one of name or document_number")),
    };
    let org = principal.organization_id;
    let mut conn = state.pool.get().await?;
    let items = super::access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            // Nothing to compare (no letter or digit): nobody matches; still audited as a search.
            let rows: Vec<VictimRow> = match &hash {
                None => Vec::new(),
                Some(hash) => {
                    // A restricted case is found only by its assigned caseworkers: a match alone
                    // would tell anyone else whose case it is.
                    let restricted = restricted_cases::table.filter(restricted_cases::victim_id.eq(victims::id));
                    let mine = case_assignments::table
                        .filter(case_assignments::victim_id.eq(victims::id))
                        .filter(case_assignments::user_id.eq(principal.user_id));
                    let mut sql = victims::table
                        .inner_join(victim_identities::table)
                        .filter(victims::organization_id.eq(org))
                        .filter(diesel::dsl::not(diesel::dsl::exists(restricted)).or(diesel::dsl::exists(mine)))
                        .select(VictimRow::as_select())
                        .into_boxed();
                    sql = if by == "name" {
                        sql.filter(victim_identities::name_index.contains(vec![hash.clone()]))
                    } else {
                        sql.filter(victim_identities::document_index.eq(hash.clone()))
                    };
                    sql.order(victims::id.asc()).limit(MAX_MATCHES).load(conn).await?
                }
            };
            let event = Event::new(AuditAction::VictimSearched, AuditOutcome::Success)
                .by(&principal)
                .details(serde_json::json!({ "by": by, "matches": rows.len() }));
            audit::record(conn, &ctx, event).await?;
            list_views(&state, conn, &ctx, &principal, rows).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: None }))
}
