//! What a second factor is in the database, apart from the handlers that enrol and check it, so
//! that access grants (which remove a factor when a reset is approved) need not import handlers.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::{recovery_codes, users};

/// Removes a person's second factor and recovery codes.
pub async fn remove(conn: &mut AsyncPgConnection, user: Uuid) -> QueryResult<()> {
    diesel::update(users::table.find(user))
        .set((
            users::totp_active.eq(false),
            users::totp_key_id.eq(None::<String>),
            users::totp_nonce.eq(None::<Vec<u8>>),
            users::totp_ciphertext.eq(None::<Vec<u8>>),
            users::totp_last_step.eq(None::<i64>),
        ))
        .execute(conn)
        .await?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user))).execute(conn).await?;
    Ok(())
}
