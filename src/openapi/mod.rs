//! The OpenAPI document: metadata here, operations collected from `routes::configure`, and the
//! error responses every operation shares added in one place (`CommonResponses`).

pub mod responses;

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
are short-lived (15 minutes by default); exchange the single-use refresh token at `/api/v1/auth/refresh`.\n\n\
Errors are RFC 9457 `application/problem+json` documents with a stable `type` \
(`urn:haven:problem:<slug>`); validation errors list the offending `errors[].field`. Lists are \
cursor-paginated: pass `next_cursor` back as `cursor`. Updates need `If-Match` with the record's ETag.\n\n\
Victim identities are only ever shown to the caseworkers entitled to them."
    ),
    modifiers(&BearerScheme, &CommonResponses),
    components(
        schemas(Problem, FieldError),
        responses(
            responses::BadRequest,
            responses::Unauthorized,
            responses::Forbidden,
            responses::NotFound,
            responses::Conflict,
            responses::PreconditionFailed,
            responses::PreconditionRequired,
            responses::Invalid,
            responses::PayloadTooLarge,
            responses::UnsupportedMediaType,
            responses::TooManyRequests,
            responses::Unavailable,
        )
    ),
    tags(
        (name = "auth", description = "Log in, refresh, log out, and who am I"),
        (name = "organizations", description = "Organisations using this deployment"),
        (name = "users", description = "Staff accounts and their roles"),
        (name = "victims", description = "Victims' case files; identities only for the caseworkers entitled to them"),
        (name = "referrals", description = "Referrals between organisations and their life cycle"),
        (name = "reports", description = "Anonymised statistics from report plugins, behind the privacy guard"),
        (name = "audit", description = "The append-only audit log"),
        (name = "operations", description = "Health and readiness (outside /api/v1)"),
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

/// Answers the framework gives to any operation, so handlers need not list them: 503 when the
/// database is down (every `/api/v1` operation), 400/413/415 for bodies and 400 for path parameters.
struct CommonResponses;

impl CommonResponses {
    fn apply(op: &mut utoipa::openapi::path::Operation, path: &str) {
        use utoipa::openapi::{Ref, RefOr};
        let mut add = |status: &str, name: &str| {
            op.responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
        };
        if path.starts_with(crate::routes::API_PREFIX) {
            add("503", "Unavailable");
        }
        if path.contains('{') {
            add("400", "BadRequest");
        }
        if op.request_body.is_some() {
            add("400", "BadRequest");
            add("413", "PayloadTooLarge");
            add("415", "UnsupportedMediaType");
        }
    }
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten() {
                CommonResponses::apply(op, path);
            }
        }
    }
}

/// The redacted views (a victim with or without identity, and the like) are untagged enums whose
/// fuller variant extends the other, so a full value matches both: `anyOf` says what `oneOf`
/// (exactly one) cannot. Applied wherever such a choice appears, also inlined in `Page<T>`.
/// Found by schemathesis.
fn views_as_any_of(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayItems, Schema};
    fn walk(schema: &mut RefOr<Schema>) {
        let RefOr::T(inner) = schema else { return };
        match inner {
            Schema::OneOf(one_of) if one_of.items.iter().all(|i| matches!(i, RefOr::Ref(_))) => {
                let builder = one_of.items.drain(..).fold(AnyOfBuilder::new(), |b, item| b.item(item));
                *schema = RefOr::T(Schema::AnyOf(builder.description(one_of.description.take()).build()));
            }
            Schema::Object(object) => object.properties.values_mut().for_each(walk),
            Schema::Array(array) => {
                if let ArrayItems::RefOrSchema(items) = &mut array.items {
                    walk(items);
                }
            }
            Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(components) = doc.components.as_mut() {
        components.schemas.values_mut().for_each(walk);
    }
}

/// One documented path per report plugin, with its own parameters, derived from the generic
/// `/reports/{id}` operation: served by it, documented from the registry, so a new plugin is
/// documented without touching this file.
struct ReportPaths<'a>(&'a crate::reports::Registry);

impl Modify for ReportPaths<'_> {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, ParameterBuilder, ParameterIn, PathItem};
        use utoipa::openapi::{ObjectBuilder, Required, schema::Type};
        let generic_path = format!("{}/reports/{{id}}", crate::routes::API_PREFIX);
        let Some(generic) = openapi.paths.paths.get(&generic_path).and_then(|item| item.get.clone()) else { return };
        for plugin in &self.0.plugins {
            let mut op = generic.clone();
            op.operation_id = Some(format!("run_report_{}", plugin.id().replace('-', "_")));
            op.summary = Some(plugin.title().to_owned());
            op.description = Some(format!(
                "{}\n\nRoles: {}. Same behaviour, privacy guard and output as `GET /api/v1/reports/{{id}}`.",
                plugin.description(),
                plugin.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
            ));
            let mut params: Vec<_> = op.parameters.take().unwrap_or_default().into_iter().filter(|p| !matches!(p, utoipa::openapi::RefOr::T(param) if param.name == "id")).collect();
            for spec in plugin.parameters() {
                let schema = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(spec.values.clone()))
                    .default(spec.default.map(|d| serde_json::json!(d)));
                params.push(
                    ParameterBuilder::new()
                        .name(spec.name)
                        .parameter_in(ParameterIn::Query)
                        .required(Required::False)
                        .description(Some(spec.description))
                        .schema(Some(schema))
                        .build()
                        .into(),
                );
            }
            op.parameters = Some(params);
            let path = format!("{}/reports/{}", crate::routes::API_PREFIX, plugin.id());
            openapi.paths.paths.insert(path, PathItem::new(HttpMethod::Get, op));
        }
    }
}

/// The document of the shipped build (compiled and shipped declarative reports): what
/// `haven openapi` prints and `openapi/openapi.json` holds.
pub fn document() -> utoipa::openapi::OpenApi {
    document_for(&crate::reports::Registry::shipped())
}

/// The document for a registry (a deployment may add declarative reports from a directory).
pub fn document_for(registry: &crate::reports::Registry) -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    // Modifiers ran before the routes were collected; apply the shared responses to them now.
    ReportPaths(registry).modify(&mut doc);
    CommonResponses.modify(&mut doc);
    views_as_any_of(&mut doc);
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc
}

/// Pretty JSON with a trailing newline, as committed in `openapi/openapi.json`.
pub fn document_json() -> String {
    to_json(&document())
}

pub fn to_json(doc: &utoipa::openapi::OpenApi) -> String {
    let mut json = doc.to_pretty_json().expect("the document serialises");
    json.push('\n');
    json
}
