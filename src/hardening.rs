//! Security headers on every response. API responses carry a Content-Security-Policy that allows
//! nothing (a JSON body opened in a browser runs no script and loads nothing); the vendored
//! Swagger UI under `/docs` gets the least it needs: its own scripts and styles (it sets inline
//! styles), images from itself or `data:` URIs, and requests to this origin ("Try it out"). No
//! page may be framed (clickjacking), no response is sniffed into another type, and no URL leaks
//! in a Referer header.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;

pub const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// The headers every response carries; `docs` for the Swagger UI pages.
pub fn security_headers(docs: bool) -> [(HeaderName, &'static str); 5] {
    [
        (header::CONTENT_SECURITY_POLICY, if docs { DOCS_POLICY } else { API_POLICY }),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ]
}

/// Adds the security headers to every response that passes through. An error raised by an inner
/// middleware (the deadline) is turned into its response later, by `ApiError::error_response`,
/// which adds the same headers.
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let docs = req.path().starts_with("/docs");
    let mut response = next.call(req).await?;
    let set = response.headers_mut();
    for (name, value) in security_headers(docs) {
        if !set.contains_key(&name) {
            set.insert(name, HeaderValue::from_static(value));
        }
    }
    Ok(response)
}
