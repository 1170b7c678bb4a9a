//! The tag of a named operation (a multi-country operation, for example `OP-SENTINEL-2026`).

use serde::{Deserialize, Deserializer, Serialize};

/// At most 100 characters, with a character other than a space, tab or line break, and no NUL.
/// Spaces and line breaks (ASCII) around it are dropped. The document states exactly this (see
/// `PATTERN`), so every string the schema allows is taken and every other one refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(transparent)]
pub struct OperationTag(String);

const MAX_CHARS: usize = 100;
/// ECMA 262, as JSON Schema reads it: no NUL, and at least one character that is not ASCII
/// whitespace (what `str::trim_ascii` removes).
const PATTERN: &str = "^[^\\u0000]*[^\\u0000\\t\\n\\f\\r ][^\\u0000]*$";

impl OperationTag {
    pub fn parse(raw: &str) -> Result<OperationTag, &'static str> {
        if raw.chars().count() > MAX_CHARS {
            return Err("must be at most 100 characters");
        }
        if raw.contains('\0') {
            return Err("must not contain the NUL character (U+0000)");
        }
        let tag = raw.trim_ascii();
        if tag.is_empty() {
            return Err("must contain a character other than spaces and line breaks");
        }
        Ok(OperationTag(tag.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for OperationTag {
    fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
        <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(self.as_str(), out)
    }
}

/// A stored tag that no longer parses is an error, never silently dropped (a later patch would
/// otherwise erase it).
impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for OperationTag {
    fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let text = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg>>::from_sql(bytes)?;
        OperationTag::parse(&text).map_err(|m| m.into())
    }
}

impl<'de> Deserialize<'de> for OperationTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        OperationTag::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for OperationTag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_CHARS))
            .pattern(Some(PATTERN))
            .description(Some("Tag of a named operation, e.g. a multi-country operation; spaces around it are dropped"))
            .examples([serde_json::json!("OP-SENTINEL-2026")])
            .into()
    }
}

impl utoipa::ToSchema for OperationTag {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schema_allows(value: &str) -> bool {
        let schema = serde_json::to_value(<OperationTag as utoipa::PartialSchema>::schema()).unwrap();
        jsonschema::is_valid(&schema, &serde_json::json!(value))
    }

    #[test]
    fn trims_and_refuses_what_the_schema_refuses() {
        assert_eq!(OperationTag::parse("  OP-1\n").unwrap().as_str(), "OP-1");
        for bad in ["", " ", "\t\r\n\x0c", "a\0", &"x".repeat(101)] {
            assert!(OperationTag::parse(bad).is_err(), "{bad:?}");
            assert!(!schema_allows(bad), "{bad:?}");
        }
        assert!(OperationTag::parse(&"é".repeat(100)).is_ok());
    }

    proptest! {
        /// The server and the document agree on every string, including Unicode spaces (which are
        /// kept: only ASCII whitespace is trimmed).
        #[test]
        fn the_schema_and_the_parser_agree(raw in "[ \\t\\n\\x0b\\x0c\\r\\u{a0}\\u{2003}\\u{feff}\\x00a-zé]{0,4}|.{95,105}") {
            prop_assert_eq!(schema_allows(&raw), OperationTag::parse(&raw).is_ok(), "{:?}", raw);
        }
    }
}
