//! Creates that a client may retry. Offline clients choose a record's id and send the create
//! again until they hear back; the first request creates, a retry with the same body is answered
//! with the stored record (200 instead of 201), and the same id with other content is a conflict
//! (409). Retries can race: the insert does nothing on a conflicting id and the winner's row is
//! read back. Each create keeps the keyed digest of its body (`digest`) on the row to tell a retry
//! from a conflict. (The find / insert / read-back flow itself is still written out in each of the
//! three creates: a generic version over async closures hit rustc's "Send is not general enough"
//! limit inside diesel-async transactions.)

use actix_web::HttpResponseBuilder;

use crate::privacy::crypto::IdentityKeyring;

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
