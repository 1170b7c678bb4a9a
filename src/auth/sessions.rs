//! Login sessions and their refresh tokens. A refresh token is 256 random bits shown once and
//! stored only as its SHA-256; each use rotates it; presenting one that was already used means
//! it was stolen or replayed, and the whole session is revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::schema::{refresh_tokens, sessions, users};

pub const REVOKED_LOGOUT: &str = "logout";
pub const REVOKED_REUSE: &str = "refresh_reuse";
pub const REVOKED_USER_CHANGED: &str = "user_changed";
pub const REVOKED_PASSWORD_CHANGED: &str = "password_changed";

fn new_refresh_token() -> (String, Vec<u8>) {
    let raw: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(raw);
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    (token, hash)
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Starts a session and returns (session id, refresh token).
pub async fn start(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    organization_id: Uuid,
    expires_at: DateTime<Utc>,
) -> QueryResult<(Uuid, String)> {
    let session_id = Uuid::now_v7();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(session_id),
            sessions::user_id.eq(user_id),
            sessions::organization_id.eq(organization_id),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    let token = add_token(conn, session_id).await?;
    Ok((session_id, token))
}

async fn add_token(conn: &mut AsyncPgConnection, session_id: Uuid) -> QueryResult<String> {
    let (token, hash) = new_refresh_token();
    diesel::insert_into(refresh_tokens::table)
        .values((refresh_tokens::token_hash.eq(hash), refresh_tokens::session_id.eq(session_id)))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The result of presenting a refresh token.
pub enum Rotation {
    /// A fresh refresh token for the same session.
    Rotated { session_id: Uuid, user_id: Uuid, refresh_token: String },
    /// The token had been used before: the session is now revoked.
    Reused { session_id: Uuid, user_id: Uuid },
    /// Unknown token, or its session is revoked or expired.
    Invalid,
}

/// A refresh token as presented, with its session.
#[derive(Queryable)]
struct PresentedToken {
    used_at: Option<DateTime<Utc>>,
    session_id: Uuid,
    user_id: Uuid,
    revoked_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

/// Rotates a refresh token. Call inside a transaction: the token row is locked so two
/// concurrent uses cannot both succeed.
pub async fn rotate(conn: &mut AsyncPgConnection, presented: &str) -> QueryResult<Rotation> {
    let hash = hash_token(presented);
    let found: Option<PresentedToken> = refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(&hash))
        .select((refresh_tokens::used_at, sessions::id, sessions::user_id, sessions::revoked_at, sessions::expires_at))
        .for_update()
        .first(conn)
        .await
        .optional()?;
    let Some(PresentedToken { used_at, session_id, user_id, revoked_at, expires_at }) = found else {
        return Ok(Rotation::Invalid);
    };
    if used_at.is_some() {
        if revoked_at.is_none() {
            revoke(conn, session_id, REVOKED_REUSE).await?;
        }
        return Ok(Rotation::Reused { session_id, user_id });
    }
    if revoked_at.is_some() || expires_at <= Utc::now() {
        return Ok(Rotation::Invalid);
    }
    diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(&hash)))
        .set(refresh_tokens::used_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    diesel::update(sessions::table.find(session_id))
        .set(sessions::last_used_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    let refresh_token = add_token(conn, session_id).await?;
    Ok(Rotation::Rotated { session_id, user_id, refresh_token })
}

pub async fn revoke(conn: &mut AsyncPgConnection, session_id: Uuid, reason: &str) -> QueryResult<()> {
    diesel::update(sessions::table.find(session_id).filter(sessions::revoked_at.is_null()))
        .set((sessions::revoked_at.eq(diesel::dsl::now), sessions::revoked_reason.eq(reason)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every session of a user and invalidates their access tokens (role change, disable,
/// password reset).
///
/// The account is locked first (as every reset does, D152): a login in flight holds it until
/// its session is committed, so the session is there to be ended rather than started just after
/// the sessions were read (D153).
pub async fn revoke_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<()> {
    users::table.find(user_id).select(users::id).for_no_key_update().execute(conn).await?;
    diesel::update(sessions::table.filter(sessions::user_id.eq(user_id)).filter(sessions::revoked_at.is_null()))
        .set((sessions::revoked_at.eq(diesel::dsl::now), sessions::revoked_reason.eq(REVOKED_USER_CHANGED)))
        .execute(conn)
        .await?;
    diesel::update(users::table.find(user_id))
        .set(users::token_version.eq(users::token_version + 1))
        .execute(conn)
        .await?;
    Ok(())
}
