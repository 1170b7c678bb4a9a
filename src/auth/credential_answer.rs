//! The answer that hands out credentials: an access and refresh token pair, never cached.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT to send as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Opaque, single-use: exchange it at `/auth/refresh` for a new pair.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
}

pub fn tokens(
    state: &AppState,
    user: Uuid,
    org: Uuid,
    role: Role,
    session: Uuid,
    version: i32,
    refresh_token: String,
) -> ApiResult<TokenResponse> {
    let access_token =
        state.keyring.issue(user, org, role, session, version).map_err(|e| ApiError::internal("issuing token", e))?;
    Ok(TokenResponse { access_token, refresh_token, token_type: "Bearer", expires_in: state.keyring.ttl_secs() })
}

pub fn no_store() -> (actix_web::http::header::HeaderName, &'static str) {
    (actix_web::http::header::CACHE_CONTROL, "no-store")
}
