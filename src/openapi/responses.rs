//! Reusable error responses of the OpenAPI document, each an RFC 9457 problem document.

use utoipa::ToResponse;

use crate::error::Problem;

/// The body is not JSON, or a path parameter is malformed (`urn:haven:problem:bad-request`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadRequest(#[allow(dead_code)] Problem);

/// No access token, or one that is expired, revoked or not valid (`urn:haven:problem:unauthorized`).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer` without a token; `Bearer error=\"invalid_token\"` when the token sent is expired, revoked or not valid: refresh it or log in again"))
)]
pub struct Unauthorized(#[allow(dead_code)] Problem);

/// The email, password, token or code was refused (`urn:haven:problem:invalid-credentials`), or
/// the account has a second factor and the code is missing
/// (`urn:haven:problem:second-factor-required`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
pub struct CredentialsRefused(#[allow(dead_code)] Problem);

/// Your role does not allow this action (`urn:haven:problem:forbidden`); or another refusal of
/// the same status: `second-person-required`, `awaiting-approval`,
/// `second-factor-enrolment-required`, `privacy-budget-exhausted` (see each example).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Forbidden(#[allow(dead_code)] Problem);

/// The record does not exist or is not visible to you: records of other organisations that your
/// role may not see are answered 404, not 403, so their existence is not revealed
/// (`urn:haven:problem:not-found`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(#[allow(dead_code)] Problem);

/// The request conflicts with the stored state, e.g. a name or email already in use
/// (`urn:haven:problem:conflict`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Conflict(#[allow(dead_code)] Problem);

/// The record changed since you read it: fetch it again (`urn:haven:problem:precondition-failed`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PreconditionFailed(#[allow(dead_code)] Problem);

/// Updates need `If-Match` with the record's ETag (`urn:haven:problem:precondition-required`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PreconditionRequired(#[allow(dead_code)] Problem);

/// A field or query parameter is invalid; `errors` names each one (`urn:haven:problem:validation`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Invalid(#[allow(dead_code)] Problem);

/// The body exceeds the size limit (`urn:haven:problem:payload-too-large`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(#[allow(dead_code)] Problem);

/// The body is not JSON (`application/json`, or `application/merge-patch+json` for a patch)
/// (`urn:haven:problem:unsupported-media-type`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct UnsupportedMediaType(#[allow(dead_code)] Problem);

/// Too many attempts, or the account is locked for a while (`urn:haven:problem:too-many-requests`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))]
pub struct TooManyRequests(#[allow(dead_code)] Problem);

/// The database is unreachable or the request took too long, or the database undid the request's
/// transaction because it met another at the same records: retry shortly
/// (`urn:haven:problem:unavailable`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))]
pub struct Unavailable(#[allow(dead_code)] Problem);
