//! The OpenAPI document: metadata here, operations collected from `routes::configure`, and the
//! error responses every operation shares added in one place (`CommonResponses`).

pub mod responses;
pub mod route_table;
pub mod validate;

use actix_web::App;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::error::{FieldError, FieldErrorCode, Problem};

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
        schemas(Problem, FieldError, FieldErrorCode, crate::reports::filters::ReportFormat),
        responses(
            responses::BadRequest,
            responses::Unauthorized,
            responses::CredentialsRefused,
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
        (name = "vocabularies", description = "Every code list, mapped to HTCDS v2.0 and CTDC, with labels in English, French, Spanish and Portuguese"),
        (name = "exchange", description = "Cases in and out in HTCDS v2.0 columns (CSV, XLSX)"),
        (name = "victims", description = "Victims' case files; identities only for the caseworkers entitled to them"),
        (name = "tasks", description = "A case's follow-ups: who does what by when; notes only for the caseworkers entitled to the identity"),
        (name = "support-plan", description = "A case's support plan (HTCDS): goals and planned services with their dates and status"),
        (name = "changes", description = "Tombstones for offline clients: what left your sight, so you delete your copy"),
        (name = "transfers", description = "Cases moving to another organisation with the person: asked, accepted or declined"),
        (name = "referrals", description = "Referrals between organisations and their life cycle"),
        (name = "webhooks", description = "Where an organisation's events are posted, signed; and the delivery log"),
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
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// Answers the framework gives to any operation, so handlers need not list them: 503 when the
/// database is down or undid the transaction (every `/api/v1` operation), 400/413/415 for bodies
/// and 400 for path parameters.
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
        if path.starts_with(route_table::API_PREFIX) {
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
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
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

/// PostgreSQL text cannot hold U+0000, and the server refuses it in every string (422): the
/// document says so with a pattern on every free string, so that a client or fuzzer holding to
/// the schema never sends one. Strings with an enum, a format or a pattern of their own exclude it
/// already.
fn strings_without_nul(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema, SchemaType, Type};
    fn walk(schema: &mut RefOr<Schema>) {
        let RefOr::T(schema) = schema else { return };
        match schema {
            Schema::Object(object) => {
                let is_string = match &object.schema_type {
                    SchemaType::Type(t) => *t == Type::String,
                    SchemaType::Array(types) => types.contains(&Type::String),
                    SchemaType::AnyValue => false,
                };
                if is_string && object.enum_values.is_none() && object.format.is_none() && object.pattern.is_none() {
                    object.pattern = Some("^[^\\u0000]*$".into());
                }
                object.properties.values_mut().for_each(walk);
                if let Some(extra) = object.additional_properties.as_deref_mut()
                    && let AdditionalProperties::RefOr(extra) = extra
                {
                    walk(extra);
                }
            }
            Schema::Array(array) => {
                if let ArrayItems::RefOrSchema(items) = &mut array.items {
                    walk(items);
                }
            }
            Schema::OneOf(x) => x.items.iter_mut().for_each(walk),
            Schema::AnyOf(x) => x.items.iter_mut().for_each(walk),
            Schema::AllOf(x) => x.items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(components) = doc.components.as_mut() {
        components.schemas.values_mut().for_each(walk);
    }
    for item in doc.paths.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            for parameter in op.parameters.iter_mut().flatten() {
                if let RefOr::T(parameter) = parameter
                    && let Some(schema) = parameter.schema.as_mut()
                {
                    walk(schema);
                }
            }
        }
    }
}

/// A case file may give `is_minor` beside `age_at_identification` only when the two agree: the
/// server refuses a contradiction (a child recorded as an adult by a slip of the keyboard), and the
/// document says so, as a `not` (JSON Schema; utoipa has no field for it, so it rides in the
/// object's extension map, which is written out as is). Applies to the patch too: a patch that
/// sets both must agree with itself.
fn minor_agrees_with_age(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    let contradiction = |minor: bool, age: serde_json::Value| {
        serde_json::json!({
            "required": ["age_at_identification", "is_minor"],
            "properties": { "is_minor": { "const": minor }, "age_at_identification": age },
        })
    };
    let not = serde_json::json!({ "description": "gives is_minor contradicting age_at_identification (under 18 is a minor)", "anyOf": [
        contradiction(true, serde_json::json!({ "type": "integer", "minimum": 18 })),
        contradiction(false, serde_json::json!({ "type": "integer", "maximum": 17 })),
    ] });
    let Some(components) = doc.components.as_mut() else { return };
    for name in ["VictimInput", "VictimPatch"] {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
            object.extensions.get_or_insert_with(Default::default).insert("not".into(), not.clone());
        }
    }
}

/// Each shared error response shows what the server really sends for it: examples made from the
/// errors themselves (`ApiError::problem`), one per problem type the status carries.
fn error_examples(doc: &mut utoipa::openapi::OpenApi) {
    use crate::error::ApiError as E;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::example::ExampleBuilder;
    let renews_at =
        chrono::DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z").map(|d| d.to_utc()).unwrap_or_default();
    let catalogue: [(&str, Vec<E>); 13] = [
        ("BadRequest", vec![E::BadRequest("A path parameter is malformed.".into())]),
        ("Unauthorized", vec![E::Unauthorized, E::InvalidToken]),
        ("CredentialsRefused", vec![E::InvalidCredentials, E::SecondFactorRequired]),
        (
            "Forbidden",
            vec![
                E::Forbidden,
                E::SecondPersonRequired("Nobody decides on their own access."),
                E::AwaitingApproval,
                E::SecondFactorEnrolmentRequired,
                E::BudgetExhausted { renews_at, by_cap: false },
            ],
        ),
        ("NotFound", vec![E::NotFound]),
        ("Conflict", vec![E::Conflict("An organisation with this name already exists.".into())]),
        ("PreconditionFailed", vec![E::PreconditionFailed]),
        ("PreconditionRequired", vec![E::PreconditionRequired]),
        (
            "Invalid",
            vec![E::Validation(vec![
                FieldError::new("trafficking_status", "is required"),
                FieldError::new("identified_on", "must be a date, YYYY-MM-DD"),
            ])],
        ),
        ("PayloadTooLarge", vec![E::PayloadTooLarge]),
        ("UnsupportedMediaType", vec![E::UnsupportedMediaType]),
        ("TooManyRequests", vec![E::TooManyRequests { retry_after_secs: 30 }]),
        ("Unavailable", vec![E::Unavailable, E::Undone]),
    ];
    let Some(components) = doc.components.as_mut() else { return };
    for (name, errors) in catalogue {
        let Some(RefOr::T(response)) = components.responses.get_mut(name) else { continue };
        let Some(RefOr::T(content)) = response.content.get_mut(crate::error::PROBLEM_JSON) else { continue };
        for error in errors {
            let problem = error.problem();
            let mut slug = problem.problem_type.trim_start_matches("urn:haven:problem:").to_owned();
            // Two causes share the type: each shows its own detail under a name of its own.
            if matches!(error, E::Undone) {
                slug.push_str("-undone");
            }
            let value = serde_json::to_value(&problem).unwrap_or_default();
            content
                .examples
                .insert(slug.clone(), RefOr::T(ExampleBuilder::new().summary(slug).value(Some(value)).build()));
        }
    }
}

/// `PATCH /victims/{id}` takes a JSON merge patch (RFC 7396) of `VictimInput`: `VictimPatch` is
/// derived from it here, so the two cannot drift. Nothing is required; a field that has a default
/// or may be absent takes `null` (which removes it); `id` cannot be changed and is not offered;
/// `identity` and `consent` are patches of their own.
fn merge_patch(doc: &mut utoipa::openapi::OpenApi) {
    use serde_json::json;
    use utoipa::openapi::schema::{AnyOfBuilder, Object, Schema, SchemaType, Type};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, request_body::RequestBodyBuilder};
    fn is_null(item: &RefOr<Schema>) -> bool {
        matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
    }
    fn nullable(types: &mut SchemaType) {
        match types {
            SchemaType::Type(Type::Null) | SchemaType::AnyValue => {}
            SchemaType::Type(t) => *types = SchemaType::Array(vec![t.clone(), Type::Null]),
            SchemaType::Array(ts) if !ts.contains(&Type::Null) => ts.push(Type::Null),
            SchemaType::Array(_) => {}
        }
    }
    fn make_nullable(property: &mut RefOr<Schema>) {
        match property {
            RefOr::T(Schema::Object(o)) => nullable(&mut o.schema_type),
            RefOr::T(Schema::Array(a)) => nullable(&mut a.schema_type),
            RefOr::T(Schema::OneOf(x)) if x.items.iter().any(is_null) => {}
            RefOr::T(Schema::AnyOf(x)) if x.items.iter().any(is_null) => {}
            other => {
                *other = RefOr::T(Schema::AnyOf(
                    AnyOfBuilder::new().item(other.clone()).item(Object::with_type(Type::Null)).build(),
                ))
            }
        }
    }
    fn patch_of(schema: Option<&RefOr<Schema>>, description: &str, nested: &[(&str, &str)]) -> Option<RefOr<Schema>> {
        let Some(RefOr::T(Schema::Object(source))) = schema else { return None };
        let mut patch = source.clone();
        let required = std::mem::take(&mut patch.required);
        patch.description = Some(description.into());
        patch.properties.shift_remove("id");
        for (name, property) in patch.properties.iter_mut() {
            if let Some((_, target)) = nested.iter().find(|(field, _)| field == name) {
                *property = RefOr::Ref(Ref::from_schema_name(*target));
            }
            if !required.contains(name) {
                make_nullable(property);
            }
        }
        Some(RefOr::T(Schema::Object(patch)))
    }
    let Some(components) = doc.components.as_mut() else { return };
    let derived = [
        (
            "VictimPatch",
            patch_of(
                components.schemas.get("VictimInput"),
                "A JSON merge patch (RFC 7396) of a victim's case file: only the fields to change; `null` removes a field (or restores its default).",
                &[("identity", "IdentityPatch"), ("consent", "ConsentPatch")],
            ),
        ),
        (
            "IdentityPatch",
            patch_of(
                components.schemas.get("Identity"),
                "A merge patch of the identity: only the fields to change; `null` removes one, and `\"identity\": null` removes the whole identity.",
                &[],
            ),
        ),
        (
            "ConsentPatch",
            patch_of(
                components.schemas.get("Consent"),
                "A merge patch of the consent: only the answers that change.",
                &[],
            ),
        ),
    ];
    for (name, schema) in derived {
        if let Some(schema) = schema {
            components.schemas.insert(name.into(), schema);
        }
    }
    let path = format!("{}/victims/{{id}}", route_table::API_PREFIX);
    let Some(op) = doc.paths.paths.get_mut(&path).and_then(|item| item.patch.as_mut()) else { return };
    let content = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("VictimPatch")))
            .example(Some(json!({ "status": "closed" })))
            .build()
    };
    let description = match &op.request_body {
        Some(RefOr::T(body)) => body.description.clone(),
        _ => None,
    };
    op.request_body = Some(RefOr::T(
        RequestBodyBuilder::new()
            .description(description)
            .required(Some(Required::True))
            // `application/json` is accepted too, but not declared: generators turn two media
            // types of one schema into code that does not import (openapi-python-client 0.29).
            .content("application/merge-patch+json", content())
            .build(),
    ));
}

/// One documented path per report plugin, with its own parameters, derived from the generic
/// `/reports/{id}` operation: served by it, documented from the registry, so a new plugin is
/// documented without touching this file.
struct ReportPaths<'a>(&'a crate::reports::Registry);

impl Modify for ReportPaths<'_> {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, ParameterBuilder, ParameterIn, PathItem};
        use utoipa::openapi::{ObjectBuilder, Required, schema::Type};
        let generic_path = format!("{}/reports/{{id}}", route_table::API_PREFIX);
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
            let mut params: Vec<_> = op
                .parameters
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| !matches!(p, utoipa::openapi::RefOr::T(param) if param.name == "id"))
                .collect();
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
            let path = format!("{}/reports/{}", route_table::API_PREFIX, plugin.id());
            openapi.paths.paths.insert(path, PathItem::new(HttpMethod::Get, op));
        }
    }
}

/// The document of the shipped build (compiled and shipped declarative reports): what
/// `haven openapi` prints and `openapi/openapi.json` holds.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = document_for(&crate::reports::Registry::shipped());
    deployment_limits(&mut doc, &crate::config::Settings::defaults());
    doc
}

/// Limits that are settings of a deployment, written into the document it serves (the committed
/// document gives the defaults): the cap on an organisation's privacy allowance.
pub fn deployment_limits(doc: &mut utoipa::openapi::OpenApi, settings: &crate::config::Settings) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    let Some(RefOr::T(Schema::Object(change))) =
        doc.components.as_mut().and_then(|c| c.schemas.get_mut("AllowanceChange"))
    else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(allowance))) = change.properties.get_mut("allowance") {
        allowance.maximum = Some(utoipa::Number::Float(settings.dp_cap));
    }
}

/// The document for a registry (a deployment may add declarative reports from a directory).
pub fn document_for(registry: &crate::reports::Registry) -> utoipa::openapi::OpenApi {
    let (_, mut doc) =
        App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(crate::routes::configure).split_for_parts();
    // Modifiers ran before the routes were collected; apply the shared responses to them now.
    ReportPaths(registry).modify(&mut doc);
    merge_patch(&mut doc);
    minor_agrees_with_age(&mut doc);
    error_examples(&mut doc);
    CommonResponses.modify(&mut doc);
    views_as_any_of(&mut doc);
    strings_without_nul(&mut doc);
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
