//! A deadline for every request (`HAVEN_REQUEST_TIMEOUT`): whatever a request waits on (a stuck
//! database, a lock), the client gets a 503 problem by then instead of a hung connection. The
//! handler's future is dropped; a transaction it held is rolled back when its connection is
//! discarded.

use std::time::Duration;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::error::ApiError;

/// The answer past the deadline is an error (the request itself went to the handler, so there
/// is nothing left to build a response from); actix turns it into the problem document.
pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let limit = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|s| Duration::from_secs(s.settings.request_timeout))
        .unwrap_or(Duration::from_secs(30));
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request exceeded its deadline");
            Err(ApiError::Unavailable.into())
        }
    }
}
