//! The OpenAPI document: metadata here, operations collected from `routes::configure`.

use actix_web::App;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::error::{FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Haven API",
        description = "Case records, referrals and anonymised statistics for organisations that assist victims of \
human trafficking.\n\n\
Authenticate with `POST /api/v1/auth/login`, then send `Authorization: Bearer <access_token>`. Access tokens \
last 15 minutes; exchange the single-use refresh token at `/api/v1/auth/refresh`.\n\n\
Errors are RFC 9457 `application/problem+json` documents with a stable `type` \
(`urn:haven:problem:<slug>`); validation errors list the offending `errors[].field`. Lists are \
cursor-paginated: pass `next_cursor` back as `cursor`. Updates need `If-Match` with the record's ETag.\n\n\
Victim identities are only ever shown to the caseworkers entitled to them."
    ),
    modifiers(&BearerScheme),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "auth", description = "Log in, refresh, log out, and who am I"),
        (name = "organizations", description = "Organisations using this deployment"),
        (name = "users", description = "Staff accounts and their roles"),
        (name = "audit", description = "The append-only audit log"),
        (name = "operations", description = "Health, readiness and metrics (outside /api/v1)"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some("Access token from /api/v1/auth/login".into());
        openapi.components.get_or_insert_with(Default::default).add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// The document as the running service serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc
}

/// Pretty JSON with a trailing newline, as committed in `openapi/openapi.json`.
pub fn document_json() -> String {
    let mut json = document().to_pretty_json().expect("the document serialises");
    json.push('\n');
    json
}
