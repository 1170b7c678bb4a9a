use actix_web::{HttpResponse, get, http::header};
use serde::Serialize;
use utoipa::ToSchema;

use super::{CodeList, LANGUAGES, VERSION, lists};
use crate::auth::Principal;
use crate::error::ApiResult;

/// Every code list, with its HTCDS v2.0 and CTDC names and its labels.
#[derive(Debug, Serialize, ToSchema)]
pub struct Vocabularies {
    /// Changes whenever a code, a mapping or a label does.
    #[schema(example = "2026.12.1")]
    pub version: &'static str,
    /// The HTCDS version the mappings follow.
    #[schema(example = "2.0")]
    pub htcds_version: &'static str,
    /// The languages every label is given in.
    pub languages: Vec<&'static str>,
    pub lists: Vec<CodeList>,
}

/// Every code list (any signed-in user).
///
/// Each code comes with the HTCDS v2.0 value it exports as, the HTCDS values it imports from, its
/// CTDC name, and labels in English, French, Spanish and Portuguese. Where Haven's codes are finer
/// or coarser than the standard's, the list's `notes` say how they map. The `ETag` is the version:
/// an offline client sends it back in `If-None-Match` and gets 304 until the lists change.
#[utoipa::path(
    tag = "vocabularies",
    params(("If-None-Match" = Option<String>, Header, description = "The ETag you hold")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The code lists", body = Vocabularies, headers(("ETag" = String, description = "The version"))),
        (status = 304, description = "Unchanged since the version you hold"),
        (status = 401, response = crate::openapi::responses::Unauthorized),
    )
)]
#[get("/vocabularies")]
pub async fn list_vocabularies(_principal: Principal, request: actix_web::HttpRequest) -> ApiResult<HttpResponse> {
    let etag = format!("\"{VERSION}\"");
    let held = request.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if held.is_some_and(|h| h.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*")) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish());
    }
    let body = Vocabularies { version: VERSION, htcds_version: "2.0", languages: LANGUAGES.to_vec(), lists: lists() };
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag)).json(body))
}
