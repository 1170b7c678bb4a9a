//! The one error type of the API, rendered as RFC 9457 `application/problem+json`.
//!
//! Messages are written for the client and never carry SQL, internal causes, secrets or values
//! the client sent (a value could be a victim's name typed in the wrong field). Internal causes are
//! logged by kind only.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details document.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:haven:problem:validation",
    "title": "Invalid request",
    "status": 422,
    "detail": "One or more fields are invalid.",
    "errors": [{"field": "email", "code": "format", "message": "must be an email address"}]
}))]
pub struct Problem {
    /// Stable identifier of the kind of problem (`urn:haven:problem:<slug>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The offending fields, for validation problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field in the request (`email`, `route[0].country`, or a query parameter name).
    pub field: String,
    /// What kind of problem, for programs.
    pub code: FieldErrorCode,
    /// What is wrong with it and what is expected (the format, the allowed values, the limits);
    /// never echoes the submitted value.
    pub message: String,
}

/// The kinds of field problems.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FieldErrorCode {
    /// Missing.
    Required,
    /// Not a field or parameter of this operation.
    Unknown,
    /// The wrong JSON type.
    Type,
    /// Not one of the allowed values.
    Enum,
    /// Not in the expected format (a date, a code, a pattern).
    Format,
    /// A number or date outside its bounds.
    Range,
    /// Too long or too short, or too many entries.
    Length,
    /// At odds with another field or with the stored record.
    Conflict,
    /// Anything else.
    Invalid,
}

impl FieldError {
    /// A problem whose code follows from the wording of `message` (the service's messages use a
    /// fixed set of phrasings; `FieldError::coded` says it outright).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        FieldError { field: field.into(), code: code_of(&message), message }
    }

    pub fn coded(field: impl Into<String>, code: FieldErrorCode, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), code, message: message.into() }
    }
}

fn code_of(message: &str) -> FieldErrorCode {
    use FieldErrorCode as C;
    let m = message;
    let any = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if m == "is required" {
        C::Required
    } else if any(&["is not a known field", "is not a parameter", "does not take"]) {
        C::Unknown
    } else if m.starts_with("has the wrong type") {
        C::Type
    } else if any(&["one of the allowed values", "must be one of"]) {
        C::Enum
    } else if any(&[
        "contradicts",
        "cannot be changed",
        "more than once",
        "must change at least one",
        "must not be host",
        "must not be given",
    ]) {
        C::Conflict
    } else if any(&["characters", "entries", "legs", "number of elements"]) {
        C::Length
    } else if any(&["between", "in the future", "before", "must be 0 to", "at least", "at most"]) {
        C::Range
    } else if any(&["date", "YYYY", "ISO", "ISIC", "NUL", "UUID", "valid email", "format", "capitals"]) {
        C::Format
    } else {
        C::Invalid
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No bearer token was sent.
    #[error("authentication required")]
    Unauthorized,
    /// A bearer token was sent and is expired, revoked or not valid (RFC 6750 `invalid_token`).
    #[error("invalid access token")]
    InvalidToken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("forbidden")]
    Forbidden,
    /// The two-person rule refuses this person (the reason names the rule, never a person).
    #[error("a second person is required")]
    SecondPersonRequired(&'static str),
    /// The account's access waits for a second person's approval.
    #[error("awaiting approval")]
    AwaitingApproval,
    /// The password was right; the second factor's code is missing.
    #[error("second factor required")]
    SecondFactorRequired,
    /// The organisation requires a second factor that the account has not enrolled.
    #[error("second factor enrolment required")]
    SecondFactorEnrolmentRequired,
    #[error("not found")]
    NotFound,
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("precondition required")]
    PreconditionRequired,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("privacy budget spent")]
    BudgetExhausted {
        renews_at: chrono::DateTime<chrono::Utc>,
        /// The deployment-wide cap was spent, not (only) the organisation's allowance.
        by_cap: bool,
    },
    #[error("service unavailable")]
    Unavailable,
    /// The database undid the request's transaction: it met another at the same rows (a
    /// deadlock, or a snapshot that could not be serialized). Sending the request again is safe, and for an erasure (whose key is destroyed
    /// before its transaction) needed.
    #[error("transaction undone by the database")]
    Undone,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        ApiError::Internal(format!("{context}: {err}"))
    }

    /// (slug, title, detail) for the document.
    fn parts(&self) -> (&'static str, &'static str, String) {
        match self {
            ApiError::BadRequest(d) => ("bad-request", "Malformed request", d.clone()),
            ApiError::Validation(_) => {
                ("validation", "Invalid request", "One or more fields are invalid.".into())
            }
            ApiError::Unauthorized => (
                "unauthorized",
                "Authentication required",
                "A valid bearer access token is required.".into(),
            ),
            // The same problem type (clients that handle 401 keep working); the header tells a
            // client to refresh.
            ApiError::InvalidToken => (
                "unauthorized",
                "Authentication required",
                "The access token is expired, revoked or not valid: refresh it, or log in again.".into(),
            ),
            ApiError::InvalidCredentials => (
                "invalid-credentials",
                "Invalid credentials",
                "The email or password is incorrect, or the token is no longer valid.".into(),
            ),
            ApiError::Forbidden => (
                "forbidden",
                "Forbidden",
                "Your role does not allow this action.".into(),
            ),
            ApiError::SecondPersonRequired(d) => ("second-person-required", "A second person is required", (*d).into()),
            ApiError::AwaitingApproval => (
                "awaiting-approval",
                "Awaiting approval",
                "This account's access waits for a second person's approval: another admin or a caseworker of your \
                 organisation."
                    .into(),
            ),
            ApiError::SecondFactorRequired => (
                "second-factor-required",
                "Second factor required",
                "Send the current code of your authenticator app as `code` (or a recovery code as `recovery_code`).".into(),
            ),
            ApiError::SecondFactorEnrolmentRequired => (
                "second-factor-enrolment-required",
                "Second factor enrolment required",
                "Your organisation requires a second factor: enrol one with POST /api/v1/auth/second-factor, then log in \
                 with its code."
                    .into(),
            ),
            ApiError::NotFound => (
                "not-found",
                "Not found",
                "The resource does not exist or is not visible to you.".into(),
            ),
            ApiError::RouteNotFound => {
                ("route-not-found", "No such route", "No operation is served at this path.".into())
            }
            ApiError::MethodNotAllowed(_) => (
                "method-not-allowed",
                "Method not allowed",
                "This path does not support the request method.".into(),
            ),
            ApiError::Conflict(d) => ("conflict", "Conflict", d.clone()),
            ApiError::PreconditionFailed => (
                "precondition-failed",
                "Stale version",
                "The record changed since you read it; fetch it again and retry.".into(),
            ),
            ApiError::PreconditionRequired => (
                "precondition-required",
                "Version required",
                "Send the record's ETag in an If-Match header.".into(),
            ),
            ApiError::PayloadTooLarge => (
                "payload-too-large",
                "Payload too large",
                "The request body exceeds the size limit.".into(),
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as JSON: application/json (or application/merge-patch+json for a patch).".into(),
            ),
            ApiError::TooManyRequests { .. } => (
                "too-many-requests",
                "Too many requests",
                "Too many attempts; retry after the time given in Retry-After.".into(),
            ),
            ApiError::BudgetExhausted { renews_at, by_cap } => (
                "privacy-budget-exhausted",
                "Privacy budget spent",
                format!(
                    "{} for this period; it renews at {}. Questions already answered this period are answered again at \
                     no cost; GET /api/v1/reports/budget shows what is left.",
                    if *by_cap {
                        "This deployment's statistical releases have used its privacy cap"
                    } else {
                        "Your organisation has spent its privacy allowance"
                    },
                    renews_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ),
            ApiError::Unavailable => (
                "unavailable",
                "Service unavailable",
                "A dependency is unavailable; retry shortly.".into(),
            ),
            ApiError::Undone => (
                "unavailable",
                "Service unavailable",
                "The request met another at the same records and was undone; send it again.".into(),
            ),
            ApiError::Internal(_) => (
                "internal",
                "Internal error",
                "An unexpected error occurred; it has been logged.".into(),
            ),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title, detail) = self.parts();
        Problem {
            problem_type: format!("urn:haven:problem:{slug}"),
            title: title.into(),
            status: self.status_code().as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized
            | ApiError::InvalidToken
            | ApiError::InvalidCredentials
            | ApiError::SecondFactorRequired => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden
            | ApiError::BudgetExhausted { .. }
            | ApiError::SecondPersonRequired(_)
            | ApiError::AwaitingApproval
            | ApiError::SecondFactorEnrolmentRequired => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable | ApiError::Undone => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(cause = %cause, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        for pair in crate::hardening::security_headers(false) {
            response.insert_header(pair);
        }
        match self {
            ApiError::Unauthorized | ApiError::InvalidCredentials | ApiError::SecondFactorRequired => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::InvalidToken => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    "Bearer error=\"invalid_token\", error_description=\"The access token is expired, revoked or not valid\"",
                ));
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.max(&1).to_string()));
            }
            ApiError::Unavailable => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            // The transaction that won may hold its locks a little longer: a second, not five.
            ApiError::Undone => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, allow.join(", ")));
            }
            _ => {}
        }
        response.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

/// Database errors: an unreachable database or a transaction undone by the database is 503 (the
/// client may retry), anything else internal.
/// Constraint violations that are the client's doing are mapped by the caller before this.
impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &err {
            Error::NotFound => ApiError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => ApiError::Unavailable,
            Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _) => ApiError::Unavailable,
            // The server is going away or not yet back (SQLSTATE 57P01-57P03); diesel does not
            // pass the code on, only PostgreSQL's message, in English where the server's
            // `lc_messages` is C (Haven's own cluster; docs/DEPLOYMENT.md asks it of others). On
            // a server that translates its messages these answer 500.
            Error::DatabaseError(_, info) if is_server_unavailable(info.message()) => ApiError::Unavailable,
            // A date the request gave that PostgreSQL cannot hold (chrono reads years past 9999
            // and before the Common Era; SQLSTATE 22008, known by its message as above).
            Error::DatabaseError(_, info) if is_date_out_of_range(info.message()) => {
                ApiError::validation("query", "holds a date out of range (years 1 to 9999)")
            }
            // The transaction met another at the same rows and PostgreSQL undid it (a deadlock,
            // SQLSTATE 40P01, known by its message as above): the request may be sent again as
            // it was. Logged, since a deadlock means two writers lock in opposite orders (D150).
            Error::DatabaseError(_, info) if info.message() == "deadlock detected" => {
                tracing::warn!(error = info.message(), "a transaction was undone; the client may retry");
                ApiError::Undone
            }
            // A snapshot read (D157) whose audit row names a row locked `FOR UPDATE` and changed
            // since its snapshot (40001, known by its kind, in any language; Haven's own writers
            // take `FOR NO KEY UPDATE` where a read could meet them, so this is rare): undone, and
            // may be sent again. A replica cancelling a report's read comes here too; the report
            // reads from the primary instead, whatever the error (`reports::replica`).
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                tracing::warn!(error = info.message(), "a snapshot was undone; the client may retry");
                ApiError::Undone
            }
            Error::DatabaseError(kind, info) => {
                // The message of a PostgreSQL error is safe to log (no row values); details
                // (which can quote a row) are not logged.
                ApiError::Internal(format!("database error {kind:?}: {}", info.message()))
            }
            other => ApiError::Internal(format!("database: {other}")),
        }
    }
}

fn is_date_out_of_range(message: &str) -> bool {
    ["date out of range", "timestamp out of range", "date/time field value out of range"]
        .iter()
        .any(|m| message.starts_with(m))
}

fn is_server_unavailable(message: &str) -> bool {
    const GOING_AWAY: [&str; 5] = [
        "terminating connection due to administrator command",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
        // A request's statement outlived its deadline (D177).
        "canceling statement due to statement timeout",
    ];
    GOING_AWAY.iter().any(|m| message.starts_with(m))
}

impl From<crate::db::PoolError> for ApiError {
    fn from(err: crate::db::PoolError) -> Self {
        tracing::warn!(error = %err, "database unavailable");
        ApiError::Unavailable
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::{FieldError, FieldErrorCode as C};

    #[test]
    fn the_service_phrasings_get_their_codes() {
        for (message, code) in [
            ("is required", C::Required),
            ("is not a known field", C::Unknown),
            ("is not a parameter of this report", C::Unknown),
            ("holds a parameter this report does not take (its name is not repeated back)", C::Unknown),
            ("has the wrong type", C::Type),
            ("must be one of: json, csv", C::Enum),
            ("is not one of the allowed values", C::Enum),
            ("must not be in the future", C::Range),
            ("must be between 0 and 120", C::Range),
            ("must not be before from", C::Range),
            ("must be 1 to 100 characters", C::Length),
            ("must have at most 20 legs", C::Length),
            ("must be a date, YYYY-MM-DD", C::Format),
            ("must be an ISO 3166-1 alpha-3 country code in capitals, e.g. SEN", C::Format),
            ("must not contain the NUL character (U+0000)", C::Format),
            ("contradicts age_at_identification", C::Conflict),
            ("cannot be changed", C::Conflict),
            ("must not be host: there is exactly one host organisation", C::Conflict),
            ("is invalid", C::Invalid),
        ] {
            assert_eq!(FieldError::new("f", message).code, code, "{message}");
        }
    }
}
