//! Organisations: the model, its view, and the handlers in `routes`.

pub mod routes;
pub mod second_factor;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::organizations;
use crate::domain::OrganizationKind;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub kind: OrganizationKind,
    pub country: Option<String>,
    pub shares_statistics: bool,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub require_second_factor: Option<bool>,
    pub erase_identities_after_months: Option<i16>,
    pub retention_effective_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: Uuid,
    #[schema(example = "Refuge Dakar")]
    pub name: String,
    pub kind: OrganizationKind,
    /// ISO 3166-1 alpha-3; absent only for the host organisation when none was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "SEN")]
    pub country: Option<String>,
    /// Whether this organisation's records count in anonymised statistics for partners.
    pub shares_statistics: bool,
    /// Whether its caseworkers must log in with a second factor; absent: the deployment's default
    /// (required in production, optional otherwise). Set with `PUT /organizations/{id}/second-factor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_second_factor: Option<bool>,
    /// The retention schedule: identities of cases closed this many months ago are erased
    /// (`PUT /organizations/{id}/retention`); absent: kept until erased by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erase_identities_after_months: Option<i16>,
    /// From when the schedule is applied: a new or shorter schedule 30 days after it was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_effective_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version; send it back as `If-Match: "<version>"` to update.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        OrganizationView {
            id: o.id,
            name: o.name,
            kind: o.kind,
            country: o.country,
            shares_statistics: o.shares_statistics,
            require_second_factor: o.require_second_factor,
            erase_identities_after_months: o.erase_identities_after_months,
            retention_effective_at: o.retention_effective_at,
            version: o.version,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Organization>> {
    organizations::table.find(id).select(Organization::as_select()).first(conn).await.optional()
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    name: &str,
    kind: OrganizationKind,
    country: Option<&str>,
    shares_statistics: bool,
) -> QueryResult<Organization> {
    diesel::insert_into(organizations::table)
        .values((
            organizations::id.eq(Uuid::now_v7()),
            organizations::name.eq(name),
            organizations::kind.eq(kind),
            organizations::country.eq(country),
            organizations::shares_statistics.eq(shares_statistics),
        ))
        .returning(Organization::as_returning())
        .get_result(conn)
        .await
}

/// What `parse_name` takes, as the document states it (on `CreateOrganization` and
/// `UpdateOrganization`, with `maxLength` 200): no NUL, and a character that is not whitespace as
/// Rust's `split_whitespace` counts it (Unicode White_Space, listed: ECMA 262's `\s` differs).
pub const NAME_PATTERN: &str = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$";

/// A trimmed organisation name of 1 to 200 characters.
pub fn parse_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    match name.chars().count() {
        0 => Err("must not be empty"),
        1..=200 => Ok(name),
        _ => Err("must be at most 200 characters"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schema(name: &str) -> serde_json::Value {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi::document_json()).unwrap();
        doc["components"]["schemas"][name]["properties"]["name"].clone()
    }

    #[test]
    fn the_document_states_the_name_rule() {
        for component in ["CreateOrganization", "UpdateOrganization"] {
            assert_eq!(schema(component)["pattern"], NAME_PATTERN, "{component}");
            assert_eq!(schema(component)["maxLength"], 200, "{component}");
        }
    }

    proptest! {
        /// Every name the schema allows is taken, whatever the spaces; within 200 characters and
        /// without NUL, no other (the schema is checked first, so what it refuses never reaches
        /// the parser, which would collapse a longer name's spaces).
        #[test]
        fn the_schema_and_the_parser_agree(raw in "[ \\t\\n\\x0b\\x0c\\r\\u{85}\\u{a0}\\u{2003}\\u{3000}\\u{feff}\\x00aé]{0,4}|.{195,205}") {
            let allowed = jsonschema::is_valid(&schema("CreateOrganization"), &serde_json::json!(raw));
            let parsed = parse_name(&raw).is_ok();
            prop_assert!(!allowed || parsed, "{:?}", raw);
            if raw.chars().count() <= 200 && !raw.contains('\0') {
                prop_assert_eq!(allowed, parsed, "{:?}", raw);
            }
        }
    }
}
