//! Timestamps written into JSON as one string, exactly as chrono writes them (RFC 3339, fractional
//! seconds as needed, `Z`). chrono's own `Serialize` hands the serializer a `Display` that writes a
//! character at a time, and serde_json runs its escaping over each write: the case file's
//! timestamps took 7,500 instructions a read that way, 3,900 as one string each (docs/DECISIONS.md
//! D149). Used where a view is read that often; elsewhere chrono's own is kept.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub fn rfc3339_option<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    #[derive(serde::Serialize)]
    struct Ours(#[serde(serialize_with = "super::rfc3339")] DateTime<Utc>);

    #[derive(serde::Serialize)]
    struct OursOption(#[serde(serialize_with = "super::rfc3339_option")] Option<DateTime<Utc>>);

    #[test]
    fn writes_what_chrono_writes() {
        let base = Utc.with_ymd_and_hms(2026, 12, 4, 21, 3, 45).single().expect("a valid time");
        let nanos = [0, 1, 420_000, 422_915_000, 500_000_000, 999_999_999, 1_999_999_999];
        for at in nanos.map(|n| base + chrono::Duration::nanoseconds(n)).into_iter().chain([DateTime::<Utc>::MIN_UTC]) {
            let chrono_writes = serde_json::to_string(&at).expect("serialises");
            assert_eq!(serde_json::to_string(&Ours(at)).expect("serialises"), chrono_writes);
            assert_eq!(serde_json::to_string(&OursOption(Some(at))).expect("serialises"), chrono_writes);
        }
        assert_eq!(serde_json::to_string(&OursOption(None)).expect("serialises"), "null");
    }
}
