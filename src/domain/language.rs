use serde::{Deserialize, Deserializer, Serialize};

/// A language, as an ISO 639-3 code checked against the `isolang` table (HTCDS asks for ISO
/// 639-2; its terminology codes for individual languages are the same three letters, and 639-3
/// also names languages 639-2 only groups, such as Mandinka `mnk` or Guinea-Bissau Kriol `pov`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(transparent)]
pub struct LanguageCode(#[serde(serialize_with = "ser_code")] [u8; 3]);

fn ser_code<S: serde::Serializer>(code: &[u8; 3], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(std::str::from_utf8(code).unwrap_or("???"))
}

impl LanguageCode {
    /// Takes an ISO 639-3 code, or an ISO 639-1 code (what spreadsheets often hold), in any case.
    pub fn parse(input: &str) -> Result<LanguageCode, &'static str> {
        let lower = input.trim().to_ascii_lowercase();
        let language = match lower.len() {
            2 => isolang::Language::from_639_1(&lower),
            3 => isolang::Language::from_639_3(&lower),
            _ => None,
        };
        let code = language.ok_or("must be an ISO 639-3 language code, e.g. wol or por")?.to_639_3();
        let bytes = code.as_bytes();
        Ok(LanguageCode([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII by construction")
    }
}

impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for LanguageCode {
    fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
        <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(self.as_str(), out)
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for LanguageCode {
    fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let text = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg>>::from_sql(bytes)?;
        LanguageCode::parse(&text).map_err(|m| m.into())
    }
}

/// In JSON a code is exactly three lower-case letters naming an ISO 639-3 language; the import
/// also takes two-letter codes (`parse`).
impl<'de> Deserialize<'de> for LanguageCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(serde::de::Error::custom("must be an ISO 639-3 language code in lower case, e.g. wol"));
        }
        LanguageCode::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for LanguageCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        // ISO 639-3 has about 7,900 codes: listed as an enum they would swamp the document and
        // every generated client, so the schema gives the shape and the server the table.
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z]{3}$"))
            .description(Some("ISO 639-3 language code (an assigned one, in lower case)"))
            .examples([serde_json::json!("wol")])
            .into()
    }
}

impl utoipa::ToSchema for LanguageCode {}

#[cfg(test)]
mod tests {
    use super::LanguageCode;

    #[test]
    fn accepts_assigned_codes_only() {
        assert_eq!(LanguageCode::parse("fr").unwrap().as_str(), "fra");
        assert_eq!(LanguageCode::parse("WOL").unwrap().as_str(), "wol");
        assert_eq!(LanguageCode::parse("pov").unwrap().as_str(), "pov");
        for bad in ["", "f", "xqz", "fren", "1ab"] {
            assert!(LanguageCode::parse(bad).is_err(), "{bad} should be rejected");
        }
        let json = |v: &str| serde_json::from_value::<LanguageCode>(serde_json::json!(v));
        assert!(json("por").is_ok());
        assert!(json("pt").is_err() && json("POR").is_err() && json("xqz").is_err());
    }
}
