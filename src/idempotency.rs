//! Creates that a client may retry. Offline clients choose a record's id and send the create
//! again until they hear back; the first request creates, a retry with the same body is answered
//! with the stored record (200 instead of 201), and the same id with other content is a conflict
//! (409). Retries can race: the insert does nothing on a conflicting id and the winner's row is
//! read back. Each create keeps the keyed digest of its body (`digest`) on the row to tell a retry
//! from a conflict. The flow is [`create_once`], over what each resource says in [`CreateOnce`].

use std::future::Future;

use actix_web::HttpResponseBuilder;
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use crate::error::{ApiError, ApiResult};
use crate::privacy::crypto::IdentityKeyring;

/// A create a client may retry, as one resource makes it.
pub trait CreateOnce: Sync {
    type Row: Send;

    /// The stored row with this create's id, if any.
    fn find(&self, conn: &mut AsyncPgConnection) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send;

    /// Inserts the row; `None` when a row with the id appeared meanwhile (`ON CONFLICT DO
    /// NOTHING`: the statement waits for a concurrent retry's transaction, then does nothing).
    fn insert(&self, conn: &mut AsyncPgConnection) -> impl Future<Output = QueryResult<Option<Self::Row>>> + Send;

    /// Whether `existing` was made by this same create: the same organisation (and victim, where
    /// the record is about one) and the same body digest.
    fn is_retry_of(&self, existing: &Self::Row) -> bool;
}

/// [`CreateOnce`] for a new row about one victim whose client-chosen id is its primary key: found
/// by id, inserted unless the id appeared meanwhile, and a retry when the same organisation sent
/// the same body about the same victim. `create_once_by_id!(NewRow => Row, table)`.
#[macro_export]
macro_rules! create_once_by_id {
    ($new:ty => $row:ty, $table:ident) => {
        impl $crate::idempotency::CreateOnce for $new {
            type Row = $row;

            async fn find(&self, conn: &mut diesel_async::AsyncPgConnection) -> diesel::QueryResult<Option<$row>> {
                use diesel::{OptionalExtension, QueryDsl, SelectableHelper};
                // Called by path: the caller's module may hold diesel's synchronous `RunQueryDsl`.
                let query = $crate::db::schema::$table::table.find(self.id).select(<$row>::as_select());
                diesel_async::RunQueryDsl::first(query, conn).await.optional()
            }

            async fn insert(&self, conn: &mut diesel_async::AsyncPgConnection) -> diesel::QueryResult<Option<$row>> {
                use diesel::{OptionalExtension, SelectableHelper};
                let statement = diesel::insert_into($crate::db::schema::$table::table)
                    .values(self)
                    .on_conflict($crate::db::schema::$table::id)
                    .do_nothing()
                    .returning(<$row>::as_returning());
                diesel_async::RunQueryDsl::get_result(statement, conn).await.optional()
            }

            // Only its creator retries a create: compared for anyone else, the body's digest would
            // confirm a guess at what was created (a task's assignee, to a case's later owner).
            fn is_retry_of(&self, existing: &$row) -> bool {
                existing.organization_id == self.organization_id
                    && existing.victim_id == self.victim_id
                    && existing.created_by == self.created_by
                    && existing.create_digest == self.create_digest
            }
        }
    };
}

/// Runs a create once, inside the caller's transaction: the new row and `true`, or the row of an
/// earlier identical create and `false` (nothing else to do), or 409 for the same id with other
/// content.
pub async fn create_once<C: CreateOnce>(conn: &mut AsyncPgConnection, create: &C) -> ApiResult<(C::Row, bool)> {
    let (row, created, ()) = create_once_with(conn, create, async { Ok(()) }).await?;
    Ok((row, created))
}

/// `create_once`, with `alongside` (work of its own, such as storing a data key) polled together
/// with the look for an earlier create: its output, whether or not this request creates. It is
/// finished, and its failure fails the create, before anything is written.
pub async fn create_once_with<C: CreateOnce, T>(
    conn: &mut AsyncPgConnection,
    create: &C,
    alongside: impl Future<Output = ApiResult<T>>,
) -> ApiResult<(C::Row, bool, T)> {
    let (earlier, beside) = tokio::join!(create.find(conn), alongside);
    let (earlier, beside) = (earlier?, beside?);
    let retry = |existing: C::Row| {
        if create.is_retry_of(&existing) {
            Ok((existing, false))
        } else {
            Err(ApiError::Conflict("A record with this id already exists with other content.".into()))
        }
    };
    if let Some(existing) = earlier {
        return retry(existing).map(|(row, created)| (row, created, beside));
    }
    match create.insert(conn).await? {
        Some(row) => Ok((row, true, beside)),
        // A concurrent retry created it first.
        None => retry(create.find(conn).await?.ok_or(ApiError::NotFound)?).map(|(row, created)| (row, created, beside)),
    }
}

/// 201 for the request that created the record, 200 for a retry.
pub fn status(created: bool) -> actix_web::http::StatusCode {
    if created { actix_web::http::StatusCode::CREATED } else { actix_web::http::StatusCode::OK }
}

/// A response with that status.
pub fn answer(created: bool) -> HttpResponseBuilder {
    HttpResponseBuilder::new(status(created))
}

/// Keyed digest (HMAC-SHA256) of a JSON document with object keys sorted, so the same body sent
/// twice (in any key order) has the same digest: how idempotent creates recognise a retry.
pub fn digest(keys: &IdentityKeyring, value: &serde_json::Value) -> Vec<u8> {
    fn canonical(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push(':');
                    canonical(&map[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            // `10.0` and `10` are one number to the schema and to the stored record.
            serde_json::Value::Number(n) => match crate::extract::whole_float(n) {
                Some(whole) => out.push_str(&whole.to_string()),
                None => out.push_str(&n.to_string()),
            },
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    canonical(value, &mut text);
    keys.request_digest(text.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn digest_ignores_key_order_only() {
        let keys = crate::privacy::crypto::IdentityKeyring::parse(
            &crate::privacy::crypto::IdentityKeyring::generate_key_spec(),
            &crate::privacy::crypto::IdentityKeyring::generate_index_key(),
        )
        .unwrap();
        let a = serde_json::json!({"a": 1, "b": {"x": [1, 2], "y": null}});
        let b = serde_json::json!({"b": {"y": null, "x": [1, 2]}, "a": 1});
        let c = serde_json::json!({"b": {"y": null, "x": [2, 1]}, "a": 1});
        assert_eq!(super::digest(&keys, &a), super::digest(&keys, &b));
        assert_ne!(super::digest(&keys, &a), super::digest(&keys, &c));
        // One number however it is written; a real fraction stays apart.
        let whole = serde_json::json!({"age": 10.0});
        assert_eq!(super::digest(&keys, &whole), super::digest(&keys, &serde_json::json!({"age": 10})));
        assert_ne!(super::digest(&keys, &serde_json::json!({"age": 10.5})), super::digest(&keys, &whole));
    }
}
