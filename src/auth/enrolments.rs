//! Enrolment tokens: how a person sets their own password. An admin who creates an account or
//! resets a password receives a single-use token (256 random bits, shown once, stored only as its
//! SHA-256, short-lived) to pass on; the person redeems it with a password of their choosing, which
//! no admin chooses or learns. A newer token for the same person replaces any older one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::sessions::hash_token;
use crate::db::schema::enrolments;

crate::text_enum! {
    /// Why a token was issued.
    pub enum Purpose {
        /// A new account.
        Enrolment => "enrolment",
        /// A password reset.
        Reset => "reset",
    }
}

/// A freshly issued token, for the admin to pass on in person or by a trusted channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentToken {
    /// Single use. The person sends it, with a password of their choosing, to
    /// `POST /api/v1/auth/enrol`. It is shown only here: Haven keeps only its hash.
    #[schema(example = "p3Hq0sV8m1oE6N2yXo1l5qk9bC7dR4tUw0aZ2cF8gJk")]
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Voids every unredeemed token of `user`.
pub async fn supersede(conn: &mut AsyncPgConnection, user: Uuid) -> QueryResult<()> {
    diesel::update(
        enrolments::table
            .filter(enrolments::user_id.eq(user))
            .filter(enrolments::redeemed_at.is_null())
            .filter(enrolments::superseded_at.is_null()),
    )
    .set(enrolments::superseded_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Issues a token for `user`, replacing any older unredeemed one. Call inside the transaction that
/// creates the account or voids its password.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    purpose: Purpose,
    issued_by: Uuid,
    ttl_hours: u64,
) -> QueryResult<EnrolmentToken> {
    supersede(conn, user).await?;
    let raw: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(raw);
    let expires_at = Utc::now() + chrono::Duration::hours(ttl_hours as i64);
    diesel::insert_into(enrolments::table)
        .values((
            enrolments::token_hash.eq(hash_token(&token)),
            enrolments::user_id.eq(user),
            enrolments::purpose.eq(purpose),
            enrolments::issued_by.eq(issued_by),
            enrolments::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(EnrolmentToken { token, expires_at })
}

/// A live token: not redeemed, not replaced, not expired.
pub struct Live {
    pub user_id: Uuid,
    pub purpose: Purpose,
    pub issued_by: Uuid,
}

/// Finds the live token and locks it; call inside the transaction that redeems it, so two
/// redemptions of one token cannot both succeed.
pub async fn find_live(conn: &mut AsyncPgConnection, token: &str) -> QueryResult<Option<Live>> {
    let found: Option<(Uuid, Purpose, Uuid)> = enrolments::table
        .filter(enrolments::token_hash.eq(hash_token(token)))
        .filter(enrolments::redeemed_at.is_null())
        .filter(enrolments::superseded_at.is_null())
        .filter(enrolments::expires_at.gt(diesel::dsl::now))
        .select((enrolments::user_id, enrolments::purpose, enrolments::issued_by))
        .for_update()
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(user_id, purpose, issued_by)| Live { user_id, purpose, issued_by }))
}

pub async fn mark_redeemed(conn: &mut AsyncPgConnection, token: &str) -> QueryResult<()> {
    diesel::update(enrolments::table.filter(enrolments::token_hash.eq(hash_token(token))))
        .set(enrolments::redeemed_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(())
}
