use serde::{Deserialize, Deserializer, Serialize};

/// An ISO 3166-1 alpha-3 country code, checked against the `keshvar` country database.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(transparent)]
pub struct CountryCode(#[serde(serialize_with = "ser_code")] [u8; 3]);

fn ser_code<S: serde::Serializer>(code: &[u8; 3], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(std::str::from_utf8(code).unwrap_or("???"))
}

impl CountryCode {
    pub fn parse(input: &str) -> Result<CountryCode, &'static str> {
        let Ok(letters) = <[u8; 3]>::try_from(input.trim().as_bytes()) else {
            return Err("must be an ISO 3166-1 alpha-3 country code");
        };
        let code = letters.map(|b| b.to_ascii_uppercase());
        if !code.iter().all(u8::is_ascii_uppercase) {
            return Err("must be an ISO 3166-1 alpha-3 country code");
        }
        // The codes `keshvar` knows, sorted once: a case file read holds several countries, and
        // `keshvar::Alpha3::try_from` allocates and compares its way through every code each time.
        if alpha3_codes().binary_search_by(|known| known.as_bytes().cmp(&code[..])).is_err() {
            return Err("is not an ISO 3166-1 alpha-3 country code");
        }
        Ok(CountryCode(code))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII by construction")
    }

    /// Also takes an alpha-2 code (HTCDS allows them; spreadsheets hold them): for imports.
    pub fn parse_alpha2_or_3(input: &str) -> Result<CountryCode, &'static str> {
        let upper = input.trim().to_ascii_uppercase();
        if upper.len() != 2 {
            return CountryCode::parse(&upper);
        }
        let alpha2 = keshvar::Alpha2::try_from(upper.as_str()).map_err(|_| "is not an ISO 3166-1 country code")?;
        CountryCode::parse(alpha2.to_country().alpha3().to_string().as_str())
    }
}

impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for CountryCode {
    fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
        <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(self.as_str(), out)
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for CountryCode {
    fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        CountryCode::parse(std::str::from_utf8(bytes.as_bytes())?).map_err(|m| m.into())
    }
}

/// In JSON bodies and query parameters a code is exactly what the schema lists (assigned codes, in
/// capitals), so a client generated from the spec and the server agree; the command line also
/// takes lower case (`parse`).
impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(serde::de::Error::custom("must be an ISO 3166-1 alpha-3 country code in capitals, e.g. SEN"));
        }
        CountryCode::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for CountryCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(alpha3_codes().iter().map(String::as_str)))
            .description(Some("ISO 3166-1 alpha-3 country code (an assigned one, in capitals)"))
            .examples([serde_json::json!("SEN")])
            .into()
    }
}

impl utoipa::ToSchema for CountryCode {}

/// Every country `keshvar` knows, with its UN M49 region and sub-region (`unknown` where it has
/// none): the one source for validation, the `country_regions` table and report grids.
pub struct CountryRegion {
    pub alpha3: String,
    pub region: String,
    pub subregion: String,
}

static COUNTRIES: std::sync::LazyLock<Vec<CountryRegion>> = std::sync::LazyLock::new(|| {
    let mut all: Vec<CountryRegion> = keshvar::SUPPORTED_ALPHA2_LIST
        .iter()
        .map(|alpha2| alpha2.to_country())
        .map(|country| CountryRegion {
            alpha3: country.alpha3().to_string(),
            region: country.maybe_region().map(|r| r.to_string()).unwrap_or_else(|| "unknown".into()),
            subregion: country.maybe_subregion().map(|r| r.to_string()).unwrap_or_else(|| "unknown".into()),
        })
        .collect();
    all.sort_by(|a, b| a.alpha3.cmp(&b.alpha3));
    all
});

pub fn countries() -> &'static [CountryRegion] {
    &COUNTRIES
}

fn distinct(field: fn(&CountryRegion) -> &str) -> Vec<String> {
    let mut values: Vec<String> = COUNTRIES.iter().map(|c| field(c).to_owned()).collect();
    values.sort();
    values.dedup();
    values
}

static ALPHA3: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| distinct(|c| &c.alpha3));
static REGIONS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| distinct(|c| &c.region));
static SUBREGIONS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| distinct(|c| &c.subregion));

/// Every alpha-3 code, sorted.
pub fn alpha3_codes() -> &'static [String] {
    &ALPHA3
}

/// Every UN M49 region (with `unknown` for countries without one), sorted.
pub fn regions() -> &'static [String] {
    &REGIONS
}

/// Every UN M49 sub-region (with `unknown`), sorted.
pub fn subregions() -> &'static [String] {
    &SUBREGIONS
}

#[cfg(test)]
mod tests {
    use super::CountryCode;

    #[test]
    fn accepts_real_codes_only() {
        assert_eq!(CountryCode::parse("per").unwrap().as_str(), "PER");
        assert!(CountryCode::parse("SEN").is_ok());
        for bad in ["", "PE", "PERU", "XYZ", "12A"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn accepts_exactly_what_keshvar_knows() {
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                for c in b'A'..=b'Z' {
                    let code = String::from_utf8(vec![a, b, c]).expect("ASCII");
                    assert_eq!(
                        CountryCode::parse(&code).is_ok(),
                        keshvar::Alpha3::try_from(code.as_str()).is_ok(),
                        "{code}"
                    );
                }
            }
        }
    }

    #[test]
    fn json_takes_exactly_the_schema_values() {
        let parse = |v: &str| serde_json::from_value::<CountryCode>(serde_json::json!(v));
        assert_eq!(parse("PER").unwrap().as_str(), "PER");
        for bad in ["per", " PER", "XYZ", "AAA"] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
        let schema = serde_json::to_value(<CountryCode as utoipa::PartialSchema>::schema()).unwrap();
        let listed: Vec<&str> = schema["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(listed.contains(&"SEN") && !listed.contains(&"XYZ"));
        assert!(listed.iter().all(|c| parse(c).is_ok()), "every listed code is accepted");
    }
}
