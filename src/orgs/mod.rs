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

/// A trimmed organisation name of 1 to 200 characters.
pub fn parse_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    match name.chars().count() {
        0 => Err("must not be empty"),
        1..=200 => Ok(name),
        _ => Err("must be at most 200 characters"),
    }
}
