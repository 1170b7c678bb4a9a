//! Request bodies checked against the schemas the OpenAPI document publishes for them, with the
//! `jsonschema` crate: the spec and the server agree on what is valid by construction, and every
//! problem of a body is reported at once (up to `MAX_PROBLEMS`), each with its field, a code and
//! a message that says what is expected. Messages are made from the schema, never from the value
//! sent (it could be a victim's name typed into the wrong field).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
use jsonschema::paths::{Location, LocationSegment};
use serde_json::{Value, json};

use crate::error::{ApiError, FieldError, FieldErrorCode as Code};

/// More is noise: a client sending a wrong document gets the first this many problems.
pub const MAX_PROBLEMS: usize = 50;

/// The shipped document's component schemas, without a deployment's limits
/// (`deployment_limits`), which the handlers check against the deployment's own settings; and the
/// names of the schemas its operations take as request bodies.
static DOCUMENT: LazyLock<(Value, Vec<String>)> = LazyLock::new(|| {
    let doc =
        serde_json::to_value(crate::openapi::document_for(&crate::reports::Registry::shipped())).unwrap_or(Value::Null);
    let mut bodies = Vec::new();
    for operation in doc["paths"].as_object().into_iter().flat_map(|paths| paths.values()) {
        for op in operation.as_object().into_iter().flat_map(|ops| ops.values()) {
            references(&op["requestBody"], &mut bodies);
        }
    }
    bodies.sort();
    bodies.dedup();
    (doc["components"]["schemas"].clone(), bodies)
});

fn schemas() -> &'static Value {
    &DOCUMENT.0
}

/// The component names `value` refers to (`#/components/schemas/Name`), at any depth.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(SCHEMA_REF)) {
                found.push(name.to_owned());
            }
            map.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

const SCHEMA_REF: &str = "#/components/schemas/";

/// The component schemas `name` reaches through references, itself included: all its validator
/// needs. (Each validator keeps its own copy of its root document, so a root holding every
/// component cost the process about 200 MB for the 160 schemas.)
fn reachable(name: &str) -> serde_json::Map<String, Value> {
    let mut reached = serde_json::Map::new();
    let mut next = vec![name.to_owned()];
    while let Some(name) = next.pop() {
        if reached.contains_key(&name) {
            continue;
        }
        let Some(schema) = schemas().get(&name) else { continue };
        references(schema, &mut next);
        reached.insert(name, schema.clone());
    }
    reached
}

/// Compiles the validator of every schema an operation takes as its request body now, so that no
/// request pays for it; the name of one that does not compile is an error (the service must not
/// start taking bodies it cannot check).
pub fn warm() -> Result<(), String> {
    match DOCUMENT.1.iter().find(|name| validator(name).is_none()) {
        Some(name) => Err(format!("the request schema {name} does not compile")),
        None => Ok(()),
    }
}

static VALIDATORS: LazyLock<Mutex<HashMap<String, Option<Arc<jsonschema::Validator>>>>> =
    LazyLock::new(Default::default);

/// The validator of a component schema, or `None` when the document has no schema of that name
/// (a body taken as free JSON, like a merge patch before it is applied).
fn validator(name: &str) -> Option<Arc<jsonschema::Validator>> {
    if let Some(known) = VALIDATORS.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
        return known.clone();
    }
    let built = schemas().get(name).and_then(|_| {
        // The component is reached through the document's own `$ref`, so the references between
        // components resolve inside it.
        let root = json!({ "$ref": format!("{SCHEMA_REF}{name}"), "components": { "schemas": reachable(name) } });
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| tracing::error!(schema = name, error = %e, "request schema does not compile"))
            .ok()
            .map(Arc::new)
    });
    VALIDATORS.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), built.clone());
    built
}

/// Whether the document has a schema of this name (bodies without one are free JSON).
pub fn has_schema(name: &str) -> bool {
    schemas().get(name).is_some()
}

/// Everything wrong with `value` as an instance of the component schema `name` (empty when it is
/// valid, or when there is no such schema). A schema the document has but that does not compile
/// refuses every body (fails closed) rather than letting it through unchecked.
pub fn problems(name: &str, value: &Value) -> Result<Vec<FieldError>, ApiError> {
    let Some(validator) = validator(name) else {
        return match has_schema(name) {
            true => Err(ApiError::Internal(format!("the request schema {name} does not compile"))),
            false => Ok(Vec::new()),
        };
    };
    let mut found = Vec::new();
    for error in validator.iter_errors(value) {
        describe(error.kind(), error.instance_path(), &mut found);
        if found.len() >= MAX_PROBLEMS {
            break;
        }
    }
    found.truncate(MAX_PROBLEMS);
    found.dedup();
    Ok(found)
}

/// `route[0].country` from `/route/0/country`; `body` for the document itself.
fn field_of(location: &Location, then: Option<&str>) -> String {
    let mut field = String::new();
    for segment in location.iter() {
        match segment {
            LocationSegment::Index(i) => field.push_str(&format!("[{i}]")),
            LocationSegment::Property(name) => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(&clean(&name));
            }
        }
    }
    if let Some(name) = then {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(&clean(name));
    }
    if field.is_empty() { "body".into() } else { field }
}

/// Property names come from the client: keep only what a real field name has.
fn clean(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect()
}

fn describe(kind: &Kind, at: &Location, found: &mut Vec<FieldError>) {
    let here = || field_of(at, None);
    let problem = match kind {
        Kind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            FieldError::coded(field_of(at, Some(name)), Code::Required, "is required")
        }
        // The names are the client's and are not repeated: a name or a document number typed as
        // a key would come back in the answer.
        Kind::AdditionalProperties { unexpected } | Kind::UnevaluatedProperties { unexpected } => {
            FieldError::coded(here(), Code::Unknown, unknown_fields(unexpected.len()))
        }
        Kind::Enum { options } => FieldError::coded(here(), Code::Enum, one_of(options)),
        Kind::Constant { expected_value } => FieldError::coded(here(), Code::Enum, one_of(&json!([**expected_value]))),
        Kind::Type { kind } => FieldError::coded(here(), Code::Type, format!("must be {}", type_name(kind))),
        Kind::Format { format } => FieldError::coded(here(), Code::Format, format_message(format)),
        Kind::Pattern { pattern } if pattern.contains("u0000") => {
            FieldError::coded(here(), Code::Format, "must not contain the NUL character (U+0000)")
        }
        Kind::Pattern { pattern } => {
            FieldError::coded(here(), Code::Format, format!("must match the pattern {pattern}"))
        }
        Kind::MinLength { limit } => {
            FieldError::coded(here(), Code::Length, format!("must be at least {limit} characters"))
        }
        Kind::MaxLength { limit } => {
            FieldError::coded(here(), Code::Length, format!("must be at most {limit} characters"))
        }
        Kind::MinItems { limit } => {
            FieldError::coded(here(), Code::Length, format!("must have at least {limit} entries"))
        }
        Kind::MaxItems { limit } => {
            FieldError::coded(here(), Code::Length, format!("must have at most {limit} entries"))
        }
        Kind::Minimum { limit } => FieldError::coded(here(), Code::Range, format!("must be at least {limit}")),
        Kind::Maximum { limit } => FieldError::coded(here(), Code::Range, format!("must be at most {limit}")),
        Kind::ExclusiveMinimum { limit } => {
            FieldError::coded(here(), Code::Range, format!("must be more than {limit}"))
        }
        Kind::ExclusiveMaximum { limit } => {
            FieldError::coded(here(), Code::Range, format!("must be less than {limit}"))
        }
        Kind::UniqueItems => FieldError::coded(here(), Code::Conflict, "must not repeat a value"),
        // The document's `not`s rule out combinations of fields; each says which in its
        // description (see `openapi::minor_agrees_with_age`).
        Kind::Not { schema } => FieldError::coded(
            here(),
            Code::Conflict,
            schema.get("description").and_then(Value::as_str).unwrap_or("holds fields that contradict each other"),
        ),
        // A nullable field (`anyOf` of its schema and null): what is wrong is what its schema says.
        Kind::AnyOf { context } => match closest(context) {
            Some(errors) => {
                for error in errors {
                    describe(error.kind(), error.instance_path(), found);
                }
                return;
            }
            None => FieldError::coded(here(), Code::Invalid, "is not valid"),
        },
        _ => FieldError::coded(here(), Code::Invalid, "is not valid"),
    };
    found.push(problem);
}

/// The alternative that came nearest (fewest problems), ignoring a bare `null`'s type complaint.
fn closest<'a>(
    context: &'a [Vec<jsonschema::ValidationError<'static>>],
) -> Option<&'a [jsonschema::ValidationError<'static>]> {
    context
        .iter()
        .filter(|errors| !errors.is_empty())
        .filter(|errors| {
            !(errors.len() == 1
                && matches!(errors[0].kind(), Kind::Type { kind: TypeKind::Single(t) } if t.to_string() == "null"))
        })
        .min_by_key(|errors| errors.len())
        .map(Vec::as_slice)
}

/// The message for fields the schema does not know, which never names them.
pub fn unknown_fields(count: usize) -> String {
    match count {
        1 => "holds a field this operation does not take (its name is not repeated back)".into(),
        n => format!("holds {n} fields this operation does not take (their names are not repeated back)"),
    }
}

fn one_of(options: &Value) -> String {
    let values: Vec<String> = options
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
        .collect();
    match values.len() {
        0 => "is not one of the allowed values".into(),
        1..=30 => format!("must be one of: {}", values.join(", ")),
        _ if values.iter().all(|v| v.len() == 3 && v.bytes().all(|b| b.is_ascii_uppercase())) => {
            "must be an assigned ISO 3166-1 alpha-3 country code, in capitals (e.g. SEN)".into()
        }
        n => format!("must be one of the {n} values the API schema lists (for example {})", values[0]),
    }
}

fn type_name(kind: &TypeKind) -> String {
    let article = |t: String| match t.as_str() {
        "array" | "integer" | "object" => format!("an {t}"),
        "null" => t,
        _ => format!("a {t}"),
    };
    match kind {
        TypeKind::Single(t) => article(t.to_string()),
        TypeKind::Multiple(set) => set.iter().map(|t| article(t.to_string())).collect::<Vec<_>>().join(" or "),
    }
}

fn format_message(format: &str) -> String {
    match format {
        "date" => "must be a date, YYYY-MM-DD".into(),
        "date-time" => "must be a date and time, RFC 3339 (2026-10-14T09:30:00Z)".into(),
        "uuid" => "must be a UUID (8-4-4-4-12 hexadecimal digits)".into(),
        "email" => "must be an email address".into(),
        other => format!("must be in the {other} format"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(problems: &[FieldError]) -> Vec<(&str, Code)> {
        problems.iter().map(|p| (p.field.as_str(), p.code)).collect()
    }

    #[test]
    fn every_request_body_compiles_from_only_the_components_it_reaches() {
        assert!(DOCUMENT.1.len() >= 30 && DOCUMENT.1.iter().any(|n| n == "VictimInput"), "{:?}", DOCUMENT.1);
        assert_eq!(warm(), Ok(()));
        let reached = reachable("VictimInput");
        assert!(reached.contains_key("VictimInput") && reached.len() > 1, "{:?}", reached.keys());
        assert!(reached.len() < schemas().as_object().map_or(0, |s| s.len()) / 2);
    }

    #[test]
    fn an_empty_victim_names_every_missing_field() {
        let found = problems("VictimInput", &json!({})).unwrap();
        let got = fields(&found);
        for field in ["trafficking_status", "identified_on", "gender"] {
            assert!(got.contains(&(field, Code::Required)), "{field} missing from {got:?}");
        }
    }

    #[test]
    fn every_problem_at_once_with_what_is_expected_and_never_the_value() {
        let body = json!({
            "trafficking_status": "MARKERGIVEN", "identified_on": "14/10/2026", "gender": "woman",
            "age_at_identification": 130, "citizenship": ["PER", "XYZ"], "labour_sector": "Z",
            "route": [{"kind": "transit", "country": "per"}], "MARKERFAMILY": 1,
        });
        let found = problems("VictimInput", &body).unwrap();
        let got = fields(&found);
        for expected in [
            ("trafficking_status", Code::Enum),
            ("identified_on", Code::Format),
            ("age_at_identification", Code::Range),
            ("citizenship[1]", Code::Enum),
            ("labour_sector", Code::Format),
            ("route[0].country", Code::Enum),
            ("body", Code::Unknown),
        ] {
            assert!(got.contains(&expected), "{expected:?} missing from {got:?}");
        }
        let status = found.iter().find(|p| p.field == "trafficking_status").unwrap();
        assert!(status.message.starts_with("must be one of: "), "{}", status.message);
        let date = found.iter().find(|p| p.field == "identified_on").unwrap();
        assert!(date.message.contains("YYYY-MM-DD"));
        let text = serde_json::to_string(&found).unwrap();
        assert!(!text.contains("MARKERGIVEN") && !text.contains("14/10/2026"), "a value was echoed: {text}");
        assert!(!text.contains("MARKERFAMILY"), "a key the client typed was echoed: {text}");
    }

    #[test]
    fn a_valid_body_and_an_unknown_schema_have_no_problems() {
        let body = json!({"trafficking_status": "actual", "identified_on": "2026-10-14", "gender": "woman"});
        assert!(problems("VictimInput", &body).unwrap().is_empty(), "{:?}", problems("VictimInput", &body));
        assert!(problems("NoSuchSchema", &json!({"anything": 1})).unwrap().is_empty());
    }

    #[test]
    fn nul_is_named_as_such() {
        let found = problems("LoginRequest", &json!({"email": "a@b.example", "password": "x\u{0}y"})).unwrap();
        assert!(found.iter().any(|p| p.field == "password" && p.message.contains("NUL")), "{found:?}");
    }
}
