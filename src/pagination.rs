//! Cursor pagination: opaque cursors, stable order, `limit` between 1 and 200.
//!
//! A cursor is the base64url (unpadded) of the last item's sort key in fixed width: the 16 bytes
//! of a UUID, or the 8 big-endian bytes of a sequence number. Every string of that shape names a
//! position in the order, so the patterns the API document gives (`UUID_CURSOR`,
//! `SEQUENCE_CURSOR`) say exactly which cursors the server takes: a client or fuzzer that holds
//! to them is never refused. Clients should still treat cursors as opaque.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub fn limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::validation("limit", "must be between 1 and 200")),
    }
}

/// The pattern of a cursor over UUIDs: 22 characters, the last holding 2 bits of the key and 4
/// zero bits (keep equal to the `#[param(pattern)]` of the lists that use it; a test checks).
pub const UUID_CURSOR: &str = "^[A-Za-z0-9_-]{21}[AQgw]$";
/// The pattern of a cursor over sequence numbers: 11 characters, the last holding 4 bits.
pub const SEQUENCE_CURSOR: &str = "^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$";

/// A sort key that a cursor can carry, in fixed width.
pub trait CursorKey: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

impl CursorKey for Uuid {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Uuid> {
        Uuid::from_slice(bytes).ok()
    }
}

impl CursorKey for i64 {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<i64> {
        bytes.try_into().ok().map(i64::from_be_bytes)
    }
}

pub fn encode<K: CursorKey>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(key.to_bytes())
}

pub fn decode<K: CursorKey>(cursor: Option<&str>) -> Result<Option<K>, ApiError> {
    let Some(cursor) = cursor else { return Ok(None) };
    URL_SAFE_NO_PAD.decode(cursor).ok().and_then(|bytes| K::from_bytes(&bytes)).map(Some).ok_or_else(|| {
        ApiError::Validation(vec![crate::error::FieldError::coded(
            "cursor",
            crate::error::FieldErrorCode::Format,
            "must be a `next_cursor` this API issued",
        )])
    })
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says there is more.
pub fn page<R, T: ToSchema, K: CursorKey>(
    mut rows: Vec<R>,
    limit: i64,
    key: impl Fn(&R) -> K,
    view: impl Fn(R) -> T,
) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| encode(&key(r))) } else { None };
    Page { items: rows.into_iter().map(view).collect(), next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Judged by the same regular-expression engine (ECMA 262) that validates requests.
    fn matches(pattern: &str, cursor: &str) -> bool {
        jsonschema::is_valid(&serde_json::json!({ "type": "string", "pattern": pattern }), &serde_json::json!(cursor))
    }

    #[test]
    fn every_cursor_of_the_documented_shape_is_taken_and_no_other() {
        for id in [Uuid::nil(), Uuid::max(), Uuid::new_v4(), Uuid::new_v4()] {
            let cursor = encode(&id);
            assert!(matches(UUID_CURSOR, &cursor), "{cursor}");
            assert_eq!(decode::<Uuid>(Some(&cursor)).unwrap(), Some(id));
        }
        for n in [0_i64, 1, -1, i64::MAX, i64::MIN, 1234567] {
            let cursor = encode(&n);
            assert!(matches(SEQUENCE_CURSOR, &cursor), "{cursor}");
            assert_eq!(decode::<i64>(Some(&cursor)).unwrap(), Some(n));
        }
        // Every last character the patterns allow decodes; the others carry bits past the key.
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for last in alphabet.chars() {
            let uuid_cursor = format!("{}{last}", "a".repeat(21));
            assert_eq!(matches(UUID_CURSOR, &uuid_cursor), decode::<Uuid>(Some(&uuid_cursor)).is_ok(), "{uuid_cursor}");
            let seq_cursor = format!("{}{last}", "a".repeat(10));
            assert_eq!(matches(SEQUENCE_CURSOR, &seq_cursor), decode::<i64>(Some(&seq_cursor)).is_ok(), "{seq_cursor}");
        }
        for bad in ["", "garbage", "aaaaaaaaaaaaaaaaaaaaaaA", "aaaaaaaaaaaaaaaaaaaa=A"] {
            assert!(decode::<Uuid>(Some(bad)).is_err(), "{bad}");
        }
    }

    /// The patterns are written as literals in each list's `#[param]`; they must be these.
    #[test]
    fn the_document_gives_every_list_these_patterns() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi::document_json()).unwrap();
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for op in item.as_object().unwrap().values() {
                for param in op["parameters"].as_array().into_iter().flatten() {
                    let pattern = param["schema"]["pattern"].as_str();
                    match param["name"].as_str() {
                        Some("cursor") => {
                            let by_sequence =
                                path.contains("audit") || path.ends_with("/changes") || path.ends_with("/deliveries");
                            let expected = if by_sequence { SEQUENCE_CURSOR } else { UUID_CURSOR };
                            assert_eq!(pattern, Some(expected), "{path}");
                            seen += 1;
                        }
                        Some("from" | "to") if path.contains("/reports/") => {
                            assert_eq!(pattern, Some(crate::reports::filters::MONTH_PATTERN), "{path}");
                        }
                        _ => {}
                    }
                }
            }
        }
        assert!(seen >= 6, "only {seen} lists have a cursor");
    }
}
