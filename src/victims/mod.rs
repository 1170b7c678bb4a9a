//! Victims: case files, their encrypted identities, and the handlers in `routes`.

pub mod filters;
pub mod model;
pub mod routes;
pub mod search;
pub mod store;

use crate::privacy::crypto::IdentityKeyring;

/// Keyed digest (HMAC-SHA256) of a JSON document with object keys sorted, so the same body sent
/// twice (in any key order) has the same digest: how idempotent creates recognise a retry.
pub fn canonical_digest(keys: &IdentityKeyring, value: &serde_json::Value) -> Vec<u8> {
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
            serde_json::Value::Number(n) if n.is_f64() => {
                match n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                    Some(whole) => out.push_str(&(whole as i64).to_string()),
                    None => out.push_str(&n.to_string()),
                }
            }
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
        assert_eq!(super::canonical_digest(&keys, &a), super::canonical_digest(&keys, &b));
        assert_ne!(super::canonical_digest(&keys, &a), super::canonical_digest(&keys, &c));
    }
}
