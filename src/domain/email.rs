use serde::{Deserialize, Deserializer, Serialize};

/// An email address, trimmed and lower-cased (addresses are unique case-insensitively).
/// Deliberately simple: one `@`, a non-empty local part, a dotted domain, no spaces, at most 254.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, &'static str> {
        let value = input.trim().to_lowercase();
        if value.len() > 254 || value.len() < 3 {
            return Err("must be between 3 and 254 characters");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err("must be a valid email address");
        };
        let valid = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err("must be a valid email address");
        }
        Ok(Email(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Email::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Email {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Email)))
            .max_length(Some(254))
            .examples([serde_json::json!("amina.diallo@example.org")])
            .into()
    }
}

impl utoipa::ToSchema for Email {}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn normalises_and_rejects() {
        assert_eq!(Email::parse(" Ana@Example.ORG ").unwrap().as_str(), "ana@example.org");
        for bad in ["", "a", "no-at.example", "a@b", "a@@b.org", "a b@c.org", "a@.b.org", "a@b.org."] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
