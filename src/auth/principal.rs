//! How the authenticated caller is found. Extracting a `Principal` (the caller itself is a domain
//! type, `domain::Principal`, which the policy reads without knowing of HTTP) verifies the bearer
//! token and then checks the database (or its short memory of that check, `session_cache`), so a
//! revoked session, a disabled user or a changed role stops a token.
//!
//! Every request pays for this, so the usual case (a token and a session already checked) is
//! answered without waiting, allocating or copying the token; only a session the memory does not
//! hold goes to the database.

use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::future::Either;
use uuid::Uuid;

use super::session_cache::SessionFacts;
use super::verified_tokens::Bearer;
use crate::db::schema::{organizations, sessions, users};
use crate::domain::{OrganizationKind, Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

type Found = Result<Principal, ApiError>;

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Either<Ready<Found>, Pin<Box<dyn Future<Output = Found>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return Either::Left(ready(Err(ApiError::Internal("app state missing".into()))));
        };
        let Some(token) = bearer_token(req) else { return Either::Left(ready(Err(ApiError::Unauthorized))) };
        let bearer = match state.keyring.bearer(token) {
            Ok(bearer) => bearer,
            Err(reason) => {
                tracing::debug!(?reason, "access token refused");
                return Either::Left(ready(Err(ApiError::InvalidToken)));
            }
        };
        match state.sessions.recall(bearer.session) {
            (Some(facts), _) => Either::Left(ready(principal(bearer, facts))),
            (None, generation) => Either::Right(Box::pin(look_up(state.clone(), bearer, generation))),
        }
    }
}

/// The session's facts from the database, remembered for the next request with it.
async fn look_up(state: web::Data<AppState>, bearer: Bearer, generation: u64) -> Found {
    let mut conn = state.pool.get().await?;
    let row: Option<(Role, Uuid, bool, i32, OrganizationKind, chrono::DateTime<chrono::Utc>)> = sessions::table
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
    let facts = SessionFacts { user_id: bearer.user, role, organization_id, disabled, token_version, kind, expires_at };
    state.sessions.remember(bearer.session, facts, generation);
    principal(bearer, facts)
}

/// Whether `principal`'s session still stands as it did when its request was judged: not revoked
/// or expired, its account enabled, in the same organisation and role. For work that outlives
/// the request that started it (a streamed export judges it at every batch, D177).
pub async fn still_standing(conn: &mut diesel_async::AsyncPgConnection, principal: &Principal) -> ApiResult<()> {
    let row: Option<(Role, Uuid, bool)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(principal.session_id))
        .filter(sessions::user_id.eq(principal.user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(chrono::Utc::now()))
        .select((users::role, users::organization_id, users::disabled))
        .first(conn)
        .await
        .optional()?;
    match row {
        Some((role, org, false)) if role == principal.role && org == principal.organization_id => Ok(()),
        _ => Err(ApiError::InvalidToken),
    }
}

/// The caller, if what the token says still matches its session's facts.
fn principal(bearer: Bearer, facts: SessionFacts) -> Found {
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
}

/// The token of an `Authorization: Bearer` header, borrowed from the request as bytes. It is not
/// read as text here: a token remembered as verified is found by its bytes, and any other is read
/// as ASCII or refused (`Keyring::bearer`), so no Unicode space around a token is trimmed away.
fn bearer_token(req: &HttpRequest) -> Option<&[u8]> {
    let value = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, token) = (&value[..space], value[space + 1..].trim_ascii());
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn token_of(header: &[u8]) -> Option<Vec<u8>> {
        let value = header::HeaderValue::from_bytes(header).unwrap();
        let req = TestRequest::default().insert_header((header::AUTHORIZATION, value)).to_http_request();
        bearer_token(&req).map(<[u8]>::to_vec)
    }

    #[test]
    fn the_bearer_scheme_is_read_without_regard_to_case_and_ascii_space_is_trimmed() {
        assert_eq!(token_of(b"Bearer abc.def").as_deref(), Some(&b"abc.def"[..]));
        assert_eq!(token_of(b"bEARER \tabc  ").as_deref(), Some(&b"abc"[..]));
        assert_eq!(token_of(b"Basic abc"), None);
        assert_eq!(token_of(b"Bearer    "), None);
        assert_eq!(token_of(b"Bearerabc"), None);
    }

    #[test]
    fn unicode_space_around_a_token_stays_part_of_it() {
        // U+00A0 (no-break space) in UTF-8 is not trimmed: it stays in the token, which `Keyring::bearer`
        // then refuses (tested in `verified_tokens`).
        assert_eq!(token_of("Bearer \u{a0}abc\u{a0}".as_bytes()).as_deref(), Some("\u{a0}abc\u{a0}".as_bytes()));
    }
}
