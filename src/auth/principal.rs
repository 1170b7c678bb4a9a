//! How the authenticated caller is found. Extracting a `Principal` (the caller itself is a domain
//! type, `domain::Principal`, which the policy reads without knowing of HTTP) verifies the bearer
//! token and then checks the database (or its short memory of that check, `session_cache`), so a
//! revoked session, a disabled user or a changed role stops a token.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::session_cache::SessionFacts;
use crate::db::schema::{organizations, sessions, users};
use crate::domain::{OrganizationKind, Principal, Role};
use crate::error::ApiError;
use crate::state::AppState;

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Principal, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("app state missing".into()))?;
            let token = token.ok_or(ApiError::Unauthorized)?;
            let bearer = state.keyring.bearer(&token).map_err(|reason| {
                tracing::debug!(?reason, "access token refused");
                ApiError::InvalidToken
            })?;
            let facts = match state.sessions.recall(bearer.session) {
                (Some(facts), _) => facts,
                (None, generation) => {
                    let mut conn = state.pool.get().await?;
                    let row: Option<(Role, Uuid, bool, i32, OrganizationKind, chrono::DateTime<chrono::Utc>)> =
                        sessions::table
                            .inner_join(users::table.inner_join(organizations::table))
                            .filter(sessions::id.eq(bearer.session))
                            .filter(sessions::user_id.eq(bearer.user))
                            .filter(sessions::revoked_at.is_null())
                            .filter(sessions::expires_at.gt(chrono::Utc::now()))
                            .select((
                                users::role,
                                users::organization_id,
                                users::disabled,
                                users::token_version,
                                organizations::kind,
                                sessions::expires_at,
                            ))
                            .first(&mut conn)
                            .await
                            .optional()?;
                    let Some((role, organization_id, disabled, token_version, kind, expires_at)) = row else {
                        return Err(ApiError::InvalidToken);
                    };
                    let facts = SessionFacts {
                        user_id: bearer.user,
                        role,
                        organization_id,
                        disabled,
                        token_version,
                        kind,
                        expires_at,
                    };
                    state.sessions.remember(bearer.session, facts, generation);
                    facts
                }
            };
            let SessionFacts { user_id, role, organization_id, disabled, token_version: version, kind, .. } = facts;
            if user_id != bearer.user
                || disabled
                || version != bearer.version
                || role != bearer.role
                || organization_id != bearer.organization
            {
                return Err(ApiError::InvalidToken);
            }
            let principal = Principal {
                user_id: bearer.user,
                organization_id,
                role,
                session_id: bearer.session,
                is_host: kind == OrganizationKind::Host,
            };
            tracing::Span::current().record("user_id", tracing::field::display(principal.user_id));
            Ok(principal)
        })
    }
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}
